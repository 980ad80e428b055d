"""``roto matte`` and ``roto eval matting`` from the command line."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from engine.cli.main import main
from engine.media.synthetic import SyntheticFrame, write_exr_sequence
from engine.media.synthetic_matte import generate_matte_clip


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    d = tmp_path_factory.mktemp("matte_plate")
    clip = generate_matte_clip("hair", width=128, height=72, frames=4)
    frames = [SyntheticFrame(f.frame, f.rgb, f.alpha, np.zeros_like(f.alpha), (0.0, 0.0)) for f in clip.frames_]
    write_exr_sequence(frames, d / "plate")
    cv2.imwrite(str(d / "mask.png"), clip.mask(1001).astype(np.uint8) * 255)
    return d, clip


def test_matte_from_a_mask_writes_16bit_pngs(plate, tmp_path, capsys):
    d, clip = plate
    out = tmp_path / "out"
    rc = main(["matte", str(d / "plate" / "plate.1001.exr"), "--mask", str(d / "mask.png"), "--tracker", "classical",
               "--out", str(out), "--core-edge"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "matte: " in printed and "s/frame" in printed
    for f in clip.frames:
        px = cv2.imread(str(out / f"matte.{f}.png"), cv2.IMREAD_UNCHANGED)
        assert px is not None and px.dtype == np.uint16 and px.shape == clip.shape
        a = px.astype(np.float32) / 65535
        assert ((a > 0.02) & (a < 0.98)).any()  # soft alpha, not a binary mask
        core = cv2.imread(str(out / f"matte_core.{f}.png"), cv2.IMREAD_UNCHANGED).astype(np.float32) / 65535
        edge = cv2.imread(str(out / f"matte_edge.{f}.png"), cv2.IMREAD_UNCHANGED).astype(np.float32) / 65535
        assert np.abs(core + edge - a).max() < 2e-4
    assert sorted(p.name for p in out.glob("matte.*.png")) == [f"matte.{f}.png" for f in clip.frames]


def test_matte_session_exr_and_controls(plate, tmp_path, capsys):
    import OpenEXR

    d, clip = plate
    session = tmp_path / "shot.roto.json"
    assert main(["track", str(d / "plate" / "plate.1001.exr"), "--mask", str(d / "mask.png"), "--backend", "classical",
                 "--session", str(session), "--object", "hero", "--out", str(tmp_path / "masks")]) == 0
    capsys.readouterr()
    out = tmp_path / "exr"
    rc = main(["matte", str(d / "plate" / "plate.1001.exr"), "--session", str(session), "--format", "exr",
               "--grow", "0.5", "--blur", "0.7", "--clip-black", "0.02", "--despill", "--qc", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "hero: " in printed and "QC:" in printed and "despill:" in printed
    f = OpenEXR.File(str(out / "hero.1002.exr"))
    ch = f.channels()
    assert list(ch) == ["A"] and ch["A"].pixels.dtype == np.float16
    hdr = f.header()
    assert hdr["roto/frame"] == "1002" and "framesPerSecond" in hdr
    assert (out / "despill.1002.exr").is_file()
    # the alpha went into the session: roto export delivers it without being told
    doc = json.loads(session.read_text())
    assert doc["meta"]["matte"]["1"]["backend"] == "classical" and "qc" in doc["meta"]
    assert (tmp_path / "shot.roto.json.alpha" / "1").is_dir()
    # --frames is checked against the session: outside, partly outside, backwards; --objects lists the known
    for bad in ("10-20", "1003-1009", "1003-1002"):
        assert main(["matte", str(d / "plate" / "plate.1001.exr"), "--session", str(session), "--frames", bad,
                     "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err
        assert f"--frames {bad}" in err and "1001-1004" in err
    assert not (tmp_path / "bad").exists()
    assert main(["matte", str(d / "plate" / "plate.1001.exr"), "--session", str(session), "--objects", "9",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "Known objects: 1 (hero)" in capsys.readouterr().err


def test_matte_errors(plate, tmp_path, capsys):
    d, _clip = plate
    src = str(d / "plate" / "plate.1001.exr")
    assert main(["matte", src, "--out", str(tmp_path / "o")]) == 2
    assert "--mask" in capsys.readouterr().err
    assert main(["matte", src, "--session", str(tmp_path / "none.roto.json"), "--out", str(tmp_path / "o")]) == 2
    assert main(["matte", src, "--mask", str(d / "mask.png"), "--tracker", "classical", "--backend", "nope",
                 "--out", str(tmp_path / "o")]) == 2
    assert "no matting backend named" in capsys.readouterr().err
    assert main(["matte", src, "--mask", str(d / "mask.png"), "--tracker", "classical", "--clip-black", "0.9",
                 "--clip-white", "0.1", "--out", str(tmp_path / "o")]) == 2


def test_eval_matting_command(capsys):
    assert main(["eval", "matting", "--kinds", "hair", "--size", "128x72", "--frames", "3", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    names = [m["name"] for m in doc["clips"][0]["methods"]]
    assert names == ["mask", "cf-fixed", "classical"] and "goals" in doc["clips"][0]
    assert main(["eval", "matting", "--size", "big"]) == 2


def test_unavailable_backend_fails_before_tracking(plate, tmp_path, capsys, monkeypatch):
    import engine.matting.matanyone as ma
    from engine.session.session import Session

    d, _clip = plate
    calls = []
    monkeypatch.setattr(ma, "unavailable", lambda: "the matanyone package is not installed (pip install matanyone)")
    monkeypatch.setattr(Session, "propagate", lambda self, *a, **k: calls.append("propagate"))
    rc = main(["matte", str(d / "plate" / "plate.1001.exr"), "--mask", str(d / "mask.png"), "--tracker", "classical",
               "--backend", "matanyone", "--session", str(tmp_path / "new.roto.json"), "--out", str(tmp_path / "o")])
    assert rc == 2 and calls == []  # nothing was tracked
    err = capsys.readouterr().err
    assert "matanyone matting backend cannot run" in err and "pip install" in err
    assert not (tmp_path / "new.roto.json").exists() and not (tmp_path / "o").exists()


def test_matte_rerun_is_served_from_the_alpha_store(plate, tmp_path, capsys, monkeypatch):
    from engine.matting.classical import ClassicalMatter

    d, _clip = plate
    session = tmp_path / "shot.roto.json"
    src = str(d / "plate" / "plate.1001.exr")
    assert main(["track", src, "--mask", str(d / "mask.png"), "--backend", "classical", "--session", str(session),
                 "--object", "hero", "--out", str(tmp_path / "masks")]) == 0
    frames = []
    real = ClassicalMatter.process
    monkeypatch.setattr(ClassicalMatter, "process", lambda self, state, fr: frames.append(fr.frame) or real(self, state, fr))

    def matte(out, *extra):
        assert main(["matte", src, "--session", str(session), "--out", str(tmp_path / out), *extra]) == 0
        return capsys.readouterr().out

    matte("a")
    assert frames == [1001, 1002, 1003, 1004]
    frames.clear()
    printed = matte("b")  # same masks, same settings: nothing is matted again
    assert frames == [] and "served from the session's alpha store" in printed
    for f in (1001, 1004):
        a = cv2.imread(str(tmp_path / "a" / f"hero.{f}.png"), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(tmp_path / "b" / f"hero.{f}.png"), cv2.IMREAD_UNCHANGED)
        assert a is not None and np.array_equal(a, b)
    matte("c", "--frames", "1002-1003")  # a sub-range of what is stored
    assert frames == []
    matte("d", "--grow", "1")  # other settings: matted again
    assert frames == [1001, 1002, 1003, 1004]
