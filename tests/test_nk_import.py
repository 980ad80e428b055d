"""Existing Nuke roto in: real public scripts (single-key, multi-key, expression-driven points, idem and
separate feather), and their import into a session as keyframes or prompts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.cache.store import Cache
from engine.cli.main import main
from engine.errors import InputError
from engine.session.session import Session
from engine.shapes.importer import import_nuke_roto
from engine.shapes.nk_reader import nk_float, parse_nk, read_nk, tcl_list
from engine.shapes.raster import rasterize_frame
from tests.conftest import evaldata_path
from tests.fakes.segmenter import FakeSegmenter, array_clip


def script(name):
    return evaldata_path("nuke-scripts", name)


def test_numbers_and_lists():
    assert nk_float("x43a00000") == 320.0 and nk_float("0") == 0.0 and nk_float("-2.5") == -2.5
    assert nk_float("=origin.x") is None
    assert tcl_list("a {b c} {d {e f}} \"g h\"") == ["a", "b c", "d {e f}", "g h"]
    nodes = parse_nk('Group {\n name G\n}\n Roto {\n  curves {{x}}\n  name R\n }\nend_group\nBlur {\n name B\n}\n')
    assert [(n.cls, n.path) for n in nodes] == [("Group", "G"), ("Roto", "G.R"), ("Blur", "B")]


def test_multi_key_shape_from_nukery():
    nk = read_nk(script("nukery_test_file.nk"))
    (s,) = nk.shapes
    assert (s.node, s.name, s.frames, s.n_points, s.closed) == ("Roto1", "Bezier1", [1, 19], 3, True)
    assert s.points[0, 0] == pytest.approx([53.99995, 269.99997], abs=1e-3)  # x4257fff4 x4386ffff
    assert s.points[1, 0] == pytest.approx([179.99994, 345.99997], abs=1e-3)  # second key
    assert s.left[:, 0] == pytest.approx(np.array([[0, -2], [0, -2]]))  # a constant channel collapsed to one value
    assert s.left[0, 2] == pytest.approx([62, -124]) and s.feather_offsets is None  # idem
    assert any("paint stroke" in n for n in nk.notes)
    assert nk.height() == 480  # from the Roto layer's centre
    shape = s.to_shape(480, 1, 19)
    a, b = rasterize_frame([shape], 1, (480, 640)), rasterize_frame([shape], 19, (480, 640))
    assert a.sum() == b.sum() > 5000  # the second key is the first moved
    assert shape.keys[1].points[0] == pytest.approx([54.0, 480 - 270.0], abs=1e-3)  # Nuke's y axis points up


def test_expression_driven_points_read_their_cached_values():
    nk = read_nk(script("jedypod_PerspectiveTools.nk"))
    assert len(nk.shapes) == 10 and all(s.expressions == 4 for s in nk.shapes)
    first = [s for s in nk.shapes if s.node.endswith("RotoPaint10") and s.name == "Bezier2"][0]
    assert first.frames is None  # {p ...}: not keyed
    assert first.points[0, 0] == pytest.approx([979.0, 690.0])  # {=origin.x x4474c000} {=origin.y x442c8000}
    assert first.points[0, 1] == pytest.approx([-0.02, 541.0], abs=1e-3)
    assert first.node.startswith("PerspectiveGuide.")  # found inside its group
    assert any("expression-driven" in n for n in first.notes)


def test_single_keys_and_separate_feather_from_flow_examples():
    nk = read_nk(script("jedypod_flow_examples.nk"))
    assert len(nk.shapes) == 34
    assert sum(s.feather_offsets is None for s in nk.shapes) == 30  # idem
    rect = [s for s in nk.shapes if s.name == "Rectangle1"][0]
    assert rect.frames == [105] and rect.feather == 10.0 and rect.feather_offsets is not None
    assert rect.attrs["ltn"] == 5 and rect.lifetime(1, 200) == (1, 200)  # no ltt: all frames
    opened = [s for s in nk.shapes if not s.closed]
    assert sorted(s.name.split("/")[-1] for s in opened) == ["OpenSpline2", "Rectangle6"]  # flag 0x100000
    only = read_nk(script("jedypod_flow_examples.nk"), nodes=["RotoPaint3"])
    assert {s.node for s in only.shapes} == {"RotoPaint3"}
    with pytest.raises(InputError, match="no Roto node"):
        read_nk(script("jedypod_flow_examples.nk"), nodes=["Nope"])


def session_640(tmp_path=None, count=20):
    clip = array_clip(first=1, count=count, h=480, w=640)
    path = None if tmp_path is None else tmp_path / "s.roto.json"
    return Session.create(clip.info.path, clip=clip, path=path, backend=FakeSegmenter(), cache=Cache(16 << 20))


def test_import_as_keyframes_and_as_prompts():
    s = session_640()
    rep = import_nuke_roto(s, script("nukery_test_file.nk"))
    assert rep.objects == {"Roto1": [1, 19]} and rep.shapes_used == 1
    roto = s.object_by_name("Roto1").id
    assert s.data.keyframes_of(roto) == [1, 19] and s.mask(roto, 19).sum() > 5000
    rep2 = import_nuke_roto(s, script("nukery_test_file.nk"), mode="prompts", by="all", object_name="hero",
                            frames="all")
    hero = s.object_by_name("hero").id
    assert rep2.objects["hero"] == list(range(1, 21))
    assert sum(1 for p in s.data.prompts.values() if p.object_id == hero and p.kind == "mask") == 20
    with pytest.raises(InputError):
        import_nuke_roto(s, script("nukery_test_file.nk"), mode="strokes")


def test_import_skips_what_is_not_an_area():
    s = session_640()
    with pytest.raises(InputError, match="no closed Roto shape"):
        import_nuke_roto(s, script("jedypod_PerspectiveTools.nk"))


def test_written_shapes_come_back_in(tmp_path):
    from engine.export.hostfiles.nuke import write_nuke
    from engine.shapes.metrics import iou
    from engine.shapes.synthetic import make_shapeset

    clip, ss = make_shapeset("ring", 240, 160, 4)
    out = write_nuke(ss, tmp_path / "ring.nk")
    frames = {f: np.zeros((160, 240, 3), np.uint8) for f in clip.frames}
    from tests.fakes.segmenter import ArrayClip

    ac = ArrayClip(frames)
    s = Session.create(ac.info.path, clip=ac, backend=FakeSegmenter(), cache=Cache(16 << 20))
    rep = import_nuke_roto(s, out, by="all", object_name="hero")
    assert rep.objects["hero"] == clip.frames
    hero = s.object_by_name("hero").id
    # shapes and holes come back as separate Roto nodes: the union of the outer shape is what imports
    from scipy.ndimage import binary_fill_holes

    assert iou(s.mask(hero, 1002), binary_fill_holes(clip.alphas[1002] >= 0.5)) >= 0.97


def test_cli_import_roto(tmp_path, capsys):
    s = session_640(tmp_path)
    path = s.path
    assert main(["import-roto", str(script("nukery_test_file.nk")), "--session", str(path), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["objects"] == {"Roto1": [1, 19]}
    again = Session.open(path)
    assert again.data.keyframes_of(again.object_by_name("Roto1").id) == [1, 19]
    assert main(["import-roto", str(tmp_path / "missing.nk"), "--session", str(path)]) == 2


def _blob_script_and_session(tmp_path, first):
    """A self-made .nk (one shape keyed on 1001-1004) and a saved session on frames first..first+3."""
    from engine.export.hostfiles.nuke import write_nuke
    from engine.shapes.synthetic import make_shapeset
    from tests.fakes.segmenter import ArrayClip

    clip, ss = make_shapeset("blob", 240, 160, 4)
    assert clip.frames == [1001, 1002, 1003, 1004]
    nk = write_nuke(ss, tmp_path / "blob.nk")
    ac = ArrayClip({f: np.zeros((160, 240, 3), np.uint8) for f in range(first, first + 4)})
    s = Session.create(ac.info.path, clip=ac, path=tmp_path / "s.roto.json", backend=FakeSegmenter(),
                       cache=Cache(16 << 20))
    s.save()
    return nk, s


def test_keys_outside_the_session_range_are_reported_not_stamped(tmp_path, capsys):
    nk, s = _blob_script_and_session(tmp_path, 2001)
    rep = import_nuke_roto(s, nk)
    assert rep.objects == {} and rep.shapes_used == 0  # nothing stamped on the session's first frame
    assert s.data.objects == {} or all(not s.data.keyframes_of(o) for o in s.data.objects)
    (o,) = rep.out_of_range
    assert (o["node"], o["keys"], o["session"], o["left_out"], o["suggest"]) == ("hero", [1001, 1004], [2001, 2004],
                                                                                  4, 1000)
    assert main(["import-roto", str(nk), "--session", str(s.path)]) == 0
    out = capsys.readouterr().out
    assert "keys 1001-1004 lie outside the session's range 2001-2004" in out and "--frame-offset 1000" in out
    assert main(["import-roto", str(nk), "--session", str(s.path), "--frame-offset", "1000", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["objects"] == {"hero": [2001, 2002, 2003, 2004]} and rep["out_of_range"] == []
    again = Session.open(s.path)
    hero = again.object_by_name("hero").id
    assert again.data.keyframes_of(hero) == [2001, 2002, 2003, 2004] and again.mask(hero, 2003).sum() > 500


def test_keys_partly_outside_import_the_ones_inside(tmp_path, capsys):
    nk, s = _blob_script_and_session(tmp_path, 1003)
    assert main(["import-roto", str(nk), "--session", str(s.path)]) == 0
    out = capsys.readouterr().out
    assert "hero: 2 keyframe(s) on 1003-1004" in out
    assert "keys 1001-1004 lie outside the session's range 1003-1006 (2 of 4 not imported)" in out
