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
