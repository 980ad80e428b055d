"""``roto depth`` and ``roto eval depth`` from the command line: the no-weights message, EXR
channels and headers, PLY, camera files, depth mattes, the session path into ``roto export``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.cli.main import main
from engine.export.camera import read_chan
from engine.export.ply import read_ply


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    from engine.media.synthetic import generate, write_exr_sequence

    folder = tmp_path_factory.mktemp("plate")
    return write_exr_sequence(generate(width=96, height=64, frames=4, start=1001), folder)


def exr(path):
    import OpenEXR

    with OpenEXR.File(str(path)) as f:
        header = dict(f.header())
        chans = {k: np.array(v.pixels) for k, v in f.channels().items()}
    return header, chans


def test_no_weights_says_exactly_what_to_run(plate, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ROTO_MODELS", str(tmp_path / "models"))
    assert main(["depth", plate, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "roto models fetch da3-small" in err and "--model prior" in err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.exr"))


def test_prior_writes_depth_normals_points_and_mattes(plate, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["depth", plate, "--out", str(out), "--model", "prior", "--normals", "--points", "--split",
                 "--range", "2,8", "--falloff", "0.5", "--temporal", "0"]) == 0
    cap = capsys.readouterr()
    assert "depth.####.exr" in cap.out and "not a depth estimate" in cap.err
    files = sorted(p.name for p in out.glob("*.exr"))
    assert files == [f"depth.{f}.exr" for f in range(1001, 1005)]
    header, ch = exr(out / "depth.1002.exr")
    assert {"depth.Z", "N.X", "N.Y", "N.Z", "fg.A", "mg.A", "bg.A", "range.A"} <= set(ch)
    assert ch["depth.Z"].dtype == np.float32 and ch["N.X"].dtype == np.float32 and ch["depth.Z"].shape == (64, 96)
    assert header["roto/depthConvention"] == "distance" and header["roto/depthModel"] == "prior"
    assert header["roto/cameraSource"] == "assumed" and "roto/w2c" not in header
    assert np.allclose(ch["fg.A"] + ch["mg.A"] + ch["bg.A"], 1.0, atol=2e-3)  # half channels
    n = np.stack([ch["N.X"], ch["N.Y"], ch["N.Z"]], -1)
    assert np.allclose(np.linalg.norm(n[40:], axis=-1), 1.0, atol=1e-5)
    ply = read_ply(out / "points" / "depth.1002.ply")
    assert ply["colours"] is not None and len(ply["points"]) == 64 * 96 and ply["normals"] is not None
    assert any("camera space" in c for c in ply["comments"])
    assert not (out / "camera.nk").exists()  # the prior has no camera


def test_conventions_on_the_command_line(plate, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["depth", plate, "--out", str(a), "--model", "prior", "--convention", "z", "--temporal", "0"]) == 0
    assert main(["depth", plate, "--out", str(b), "--model", "prior", "--convention", "nuke", "--temporal", "0"]) == 0
    _h, za = exr(a / "depth.1001.exr")
    hb, zb = exr(b / "depth.1001.exr")
    assert hb["roto/depthConvention"] == "inverse_z"
    assert np.allclose(zb["depth.Z"], 1.0 / za["depth.Z"], rtol=1e-6)
    assert main(["depth", plate, "--out", str(b), "--model", "prior", "--convention", "disparity"]) == 2


def test_random_da3_writes_cameras_and_a_world_point_cloud(plate, tmp_path, capsys):
    pytest.importorskip("depth_anything_3", reason="depth-anything-3 is not installed (make setup)")
    out = tmp_path / "out"
    assert main(["depth", plate, "--out", str(out), "--random-weights", "--process-res", "56", "--chunk", "3",
                 "--overlap", "1", "--points", "--normals", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["run"]["model"] == "da3-small" and rep["run"]["chunks"] == 2 and len(rep["run"]["seams"]) == 1
    assert "RANDOM WEIGHTS" in rep["run"]["reason"] and rep["commercial"] is True
    header, ch = exr(out / "depth.1003.exr")
    assert "roto/w2c" in header and np.array(json.loads(header["roto/K"])).shape == (3, 3)
    chan = read_chan(out / "camera.chan")
    assert chan.shape == (4, 8) and list(chan[:, 0]) == [1001, 1002, 1003, 1004]
    assert np.allclose(chan[0, 1:7], 0.0)  # the first frame is the world origin
    nk = (out / "camera.nk").read_text()
    assert "Camera2 {" in nk and "curve x1001" in nk
    world = read_ply(rep["written"]["world_ply"])
    assert len(world["points"]) > 0 and world["colours"] is not None


def test_session_depth_reaches_roto_export(tmp_path, capsys):
    from tests.test_export_exr import make_session, oiio_read

    s = make_session(tmp_path)
    plate = s.data.clip.path
    assert main(["depth", plate, "--session", str(s.path), "--model", "prior", "--split", "--object", "hero",
                 "--out", str(tmp_path / "d"), "--temporal", "0"]) == 0
    assert "roto export writes depth.Z" in capsys.readouterr().out
    _h, ch = exr(tmp_path / "d" / "depth.1001.exr")
    hero = s.mask(s.object_by_name("hero").id, 1001)
    assert np.all(ch["fg.A"][~hero] == 0) and np.all(ch["bg.A"][~hero] == 0)  # object ∩ depth range
    assert main(["export", str(s.path), "--out", str(tmp_path / "x")]) == 0
    px, chans = oiio_read(tmp_path / "x" / "shot010.1001.exr")
    assert "depth.Z" in chans and "N.X" in chans and float(px[:, :, chans.index("depth.Z")].max()) > 0
    assert main(["depth", plate, "--model", "prior", "--object", "hero", "--out", str(tmp_path / "y")]) == 2


@pytest.mark.shared
def test_eval_depth_runs_with_the_prior_and_with_random_weights(capsys):
    from tests.conftest import evaldata_path

    root = evaldata_path("depth-rgbd-open3d")
    assert main(["eval", "depth", str(root), "--model", "prior", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert {r["sample"] for r in rep["rows"]} >= {"redwood/00000", "tum", "sun", "nyu", "redwood/clip"}
    prior, const = rep["mean"]["prior"], rep["mean"]["constant"]
    assert 0.05 < prior["abs_rel"] < 0.5 and 0.05 < const["abs_rel"] < 0.5
    pytest.importorskip("depth_anything_3", reason="depth-anything-3 is not installed (make setup)")
    assert main(["eval", "depth", str(root), "--random-weights", "--process-res", "56"]) == 0
    text = capsys.readouterr().out
    assert "RANDOM WEIGHTS" in text and "da3-small" in text and "constant" in text and "AbsRel" in text
