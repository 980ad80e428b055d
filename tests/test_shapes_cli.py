"""``roto shapes`` and ``roto bench shapes`` end to end on a small synthetic session."""

from __future__ import annotations

import json

import pytest

from engine.cache.store import Cache
from engine.cli.main import main
from engine.session.session import Session
from engine.shapes.synthetic import make_clip
from tests.fakes.segmenter import ArrayClip, FakeSegmenter

W, H = 200, 128


@pytest.fixture(scope="module")
def session_file(tmp_path_factory):
    clip = make_clip("ring", W, H, 5)
    folder = tmp_path_factory.mktemp("shapes_cli")
    ac = ArrayClip({f: clip.plates[f] for f in clip.frames})
    s = Session.create(ac.info.path, clip=ac, path=folder / "shot.roto.json", backend=FakeSegmenter(),
                       cache=Cache(16 << 20))
    hero = s.add_object("hero")
    for f in clip.frames:
        s.set_keyframe(hero.id, f, clip.alphas[f] >= 0.5)
    s.save()
    return folder / "shot.roto.json"


@pytest.mark.parametrize("host,ext", [("nuke", ".nk"), ("fusion", ".setting"), ("ae", ".jsx"), ("flame", ".json")])
def test_roto_shapes_writes_each_host(session_file, tmp_path, capsys, host, ext):
    out = tmp_path / f"shot{ext}"
    rc = main(["shapes", str(session_file), "--host", host, "--points", "16", "--tolerance", "0.6",
               "--mattes", "/deliver/shot.####.exr", "--out", str(out), "--json"])
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["host"] == host and rep["path"] == str(out) and out.is_file()
    hero = rep["report"]["hero"]
    assert hero["shapes"] == 1 and hero["holes"] == 1 and max(hero["points"]) <= 16
    assert hero["flow"] is False  # the test plate only lives in memory: outlines carry the points
    if host == "flame":
        assert len(rep["files"]) == 3


def test_saved_shapes_re_export_without_refitting(session_file, tmp_path, capsys):
    saved = tmp_path / "shapes.json"
    assert main(["shapes", str(session_file), "--host", "nuke", "--out", str(tmp_path / "a.nk"),
                 "--save-shapes", str(saved), "--keys", "needed", "--frames", "1002-1004"]) == 0
    text = capsys.readouterr().out
    assert "hero: 1 shape(s) + 1 hole(s)" in text and str(tmp_path / "a.nk") in text
    assert main(["shapes", str(saved), "--host", "ae", "--out", str(tmp_path / "a.jsx")]) == 0
    data = json.loads(saved.read_text())
    assert data["first"] == 1002 and data["last"] == 1004 and data["settings"]["keys"] == "needed"
    assert (tmp_path / "a.jsx").read_text().count('"name":"hero') == 2


def test_roto_shapes_refuses_bad_options(session_file, tmp_path, capsys):
    assert main(["shapes", str(session_file), "--host", "nuke", "--points", "2", "--out", str(tmp_path / "x.nk")]) == 2
    assert "at least 3 points" in capsys.readouterr().err
    assert main(["shapes", str(tmp_path / "nope.json"), "--host", "nuke", "--out", str(tmp_path / "x.nk")]) == 2
    assert main(["shapes", str(session_file), "--host", "nuke", "--objects", "villain",
                 "--out", str(tmp_path / "x.nk")]) == 2


def test_bench_shapes_suite_meets_its_goals():
    from engine.bench import get_suite

    suite = get_suite("shapes")
    rep = suite.run(size=(192, 128), frames=6, cases=("blob", "star"))
    assert [r.name for r in rep.rows] == ["blob", "star"]
    for r in rep.rows:
        e = r.extra
        assert r.ok and e["iou_min"] >= 0.97 and e["mbd"] < 0.5
        assert e["raw"]["points_max"] > max(e["points"])  # the per-frame polygon baseline needs many more points
        assert e["jitter"] >= 0 and r.ours_fps > 0 and r.raw_fps > 0
    d = rep.to_dict()
    assert d["suite"] == "shapes" and d["rows"][0]["ok"] is True


def test_bench_cli_json(capsys):
    assert main(["bench", "shapes", "--size", "128x96", "--frames", "5", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in d["rows"]] == ["blob", "star", "ring", "split", "soft"]


@pytest.fixture
def disk_plate(tmp_path, monkeypatch):
    """A PNG sequence ``plates/shot_1001.png``… on disk, the working folder set to ``tmp_path``."""
    from PIL import Image

    import numpy as np

    clip = make_clip("ring", W, H, 4)
    (tmp_path / "plates").mkdir()
    for f in clip.frames:
        rgb = np.clip(np.asarray(clip.plates[f], np.float32)[..., :3], 0, 1)
        Image.fromarray((rgb * 255).astype(np.uint8)).save(tmp_path / "plates" / f"shot_{f}.png")
    monkeypatch.chdir(tmp_path)
    return clip


@pytest.mark.parametrize("typed", ["plates/shot_1001.png", "plates", "plates/shot_####.png"])
def test_host_scripts_load_the_plate_sequence_by_absolute_path(disk_plate, tmp_path, typed):
    """The plate as typed (one frame, a folder, a pattern; relative) becomes the absolute sequence in
    each host's own spelling; ``--mattes`` typed relative comes out absolute too."""
    import re

    clip = disk_plate
    (tmp_path / "sess").mkdir()
    s = Session.create(typed, path="sess/shot.roto.json", backend=FakeSegmenter(), cache=Cache(16 << 20))
    hero = s.add_object("hero")
    for f in clip.frames:
        s.set_keyframe(hero.id, f, clip.alphas[f] >= 0.5)
    s.save()
    seq = f"{tmp_path}/plates/shot_####.png"
    mattes = f"{tmp_path}/deliver/m.####.exr"
    for host, ext in (("nuke", ".nk"), ("fusion", ".setting"), ("ae", ".jsx"), ("flame", ".json")):
        assert main(["shapes", "sess/shot.roto.json", "--host", host, "--points", "12", "--frames", "1002-1003",
                     "--mattes", "deliver/m.####.exr", "--out", f"out/s{ext}"]) == 0
    nk = (tmp_path / "out" / "s.nk").read_text()
    plate_read = nk[nk.index("Read {"):nk.index("name Plate")]
    assert f"file {seq}\n" in plate_read and " first 1002\n" in plate_read and " last 1003\n" in plate_read
    assert f"file {mattes}\n" in nk
    setting = (tmp_path / "out" / "s.setting").read_text()
    plate_loader = setting[setting.index("Plate = Loader"):]
    assert f'Filename = "{tmp_path}/plates/shot_1002.png"' in plate_loader  # Fusion: the first frame's file
    assert "GlobalStart = 1002" in plate_loader and "GlobalEnd = 1003" in plate_loader
    assert f'Filename = "{tmp_path}/deliver/m.1002.exr"' in setting
    data = json.loads(re.search(r"var DATA = (\{.*\});", (tmp_path / "out" / "s.jsx").read_text()).group(1))
    # AE imports a sequence from its first file with sequence import on
    assert data["plate"] == f"{tmp_path}/plates/shot_1001.png" and data["plate_sequence"] is True
    assert data["plate_first"] == 1001 and data["plate_pattern"] == seq
    flame = json.loads((tmp_path / "out" / "s.json").read_text())
    assert flame["plate"] == f"{tmp_path}/plates/shot_[1002-1003].png" and flame["plate_pattern"] == seq
    assert flame["mattes"] == f"{tmp_path}/deliver/m.[1002-1003].exr"
