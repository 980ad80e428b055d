"""The `roto` command line as users script it: exit codes, messages, outputs on disk."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from engine.cli.main import main
from engine.media.synthetic import generate, write_exr_sequence


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    """A 12-frame 160x96 scene-linear EXR plate (1001-1012) with ground truth."""
    folder = tmp_path_factory.mktemp("plate")
    sample = generate(width=160, height=96, frames=12, seed=3)
    pattern = write_exr_sequence(sample, folder)
    return pattern, sample


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    for cmd in ("demo", "info", "proxy", "track", "session", "eval", "colourspaces", "bench"):
        assert cmd in out


def test_info_text_and_json(capsys, plate):
    pattern, _ = plate
    code, out, _ = run(capsys, "info", pattern)
    assert code == 0 and "1001-1012 (12 frames" in out and "160x96" in out and "Linear Rec.709" in out
    code, out, _ = run(capsys, "info", pattern, "--json")
    data = json.loads(out)
    assert code == 0 and data["first"] == 1001 and data["last"] == 1012 and data["fps"]["num"] == 24
    assert data["channels"] == ["R", "G", "B"] and data["missing"] == []


def test_missing_frames_listed_by_info_and_refused_by_readers(capsys, plate, tmp_path):
    pattern, _ = plate
    src = os.path.dirname(pattern)
    for name in os.listdir(src):
        if name not in ("plate.1004.exr", "plate.1005.exr", "plate.1009.exr"):
            shutil.copy(os.path.join(src, name), tmp_path / name)
    gappy = str(tmp_path / "plate.####.exr")
    code, out, _ = run(capsys, "info", gappy)
    assert code == 0 and "3 frame(s): 1004-1005, 1009" in out
    code, _, err = run(capsys, "proxy", gappy, "--out", str(tmp_path / "px"))
    assert code == 2 and "1004-1005, 1009" in err and "--missing hold" in err
    code, out, _ = run(capsys, "proxy", gappy, "--missing", "hold", "--out", str(tmp_path / "px"))
    assert code == 0 and (tmp_path / "px" / "contact_sheet.png").is_file()


def test_bad_paths_are_one_sentence_exit_2(capsys, tmp_path):
    code, _, err = run(capsys, "info", str(tmp_path / "nope.1001.exr"))
    assert code == 2 and err.startswith("roto: error: ") and "does not exist" in err and "Traceback" not in err
    empty = tmp_path / "empty.mov"
    empty.write_bytes(b"")
    code, _, err = run(capsys, "info", str(empty))
    assert code == 2 and "empty.mov" in err and "Traceback" not in err


def test_debug_shows_the_traceback(tmp_path):
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-m", "engine", "--debug", "info", str(tmp_path / "nope.exr")],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "Traceback" in proc.stderr and "does not exist" in proc.stderr


def test_proxy_writes_thumbnails_and_sheet(capsys, plate, tmp_path):
    pattern, _ = plate
    code, out, _ = run(capsys, "proxy", pattern, "--out", str(tmp_path), "--width", "64", "--every", "2")
    assert code == 0
    thumbs = sorted(os.listdir(tmp_path / "thumbs"))
    assert thumbs[0] == "frame.1001.jpg" and len(thumbs) == 6
    sheet = cv2.imread(str(tmp_path / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[1] > 64 * 4


def test_track_one_click_writes_a_matte_per_frame(capsys, plate, tmp_path):
    pattern, sample = plate
    x, y = sample[0].centre
    session_file = tmp_path / "shot.roto.json"
    code, out, err = run(capsys, "track", pattern, "--point", f"{x:.1f},{y:.1f}", "--out", str(tmp_path / "m"),
                         "--session", str(session_file))
    assert code == 0, err
    assert "classical" in err  # says which backend and why
    files = sorted(os.listdir(tmp_path / "m"))
    assert files == [f"matte.{f}.png" for f in range(1001, 1013)]
    ious = []
    for f in sample:
        m = cv2.imread(str(tmp_path / "m" / f"matte.{f.frame}.png"), cv2.IMREAD_UNCHANGED)
        assert m.dtype == np.uint8 and m.ndim == 2 and set(np.unique(m)) <= {0, 255}
        ious.append(np.logical_and(m > 0, f.mask).sum() / np.logical_or(m > 0, f.mask).sum())
    assert np.mean(ious) > 0.9
    code, out, _ = run(capsys, "session", "show", str(session_file))
    assert code == 0 and "matte" in out and "12 frames with masks" in out and "keyframes 1001" in out
    # the same command again on the unchanged plate: served from the cache, same mattes
    first = cv2.imread(str(tmp_path / "m" / "matte.1012.png"), cv2.IMREAD_UNCHANGED)
    code, out, err = run(capsys, "track", pattern, "--point", f"{x:.1f},{y:.1f}", "--out", str(tmp_path / "m2"))
    assert code == 0 and "1 of 1 runs served from cache" in out
    assert np.array_equal(cv2.imread(str(tmp_path / "m2" / "matte.1012.png"), cv2.IMREAD_UNCHANGED), first)


def test_track_backward_from_a_box_on_a_later_frame(capsys, plate, tmp_path):
    pattern, sample = plate
    ys, xs = np.nonzero(sample[-1].mask)
    box = f"{xs.min() - 3},{ys.min() - 3},{xs.max() + 3},{ys.max() + 3}"
    code, _, err = run(capsys, "track", pattern, "--box", box, "--frame", "1012", "--direction", "backward",
                       "--object", "blob", "--out", str(tmp_path))
    assert code == 0, err
    m = cv2.imread(str(tmp_path / "blob.1001.png"), cv2.IMREAD_UNCHANGED) > 0
    assert np.logical_and(m, sample[0].mask).sum() / np.logical_or(m, sample[0].mask).sum() > 0.8


def test_mattes_follow_the_plates_frame_padding(capsys, plate, tmp_path):
    # a pipeline that pads to 8 digits gets 8-digit mattes (the pattern a Read node is pointed at)
    pattern, sample = plate
    src = os.path.dirname(pattern)
    folder = tmp_path / "eight"
    folder.mkdir()
    for name in sorted(os.listdir(src)):
        stem, frame, ext = name.rsplit(".", 2)
        shutil.copy(os.path.join(src, name), folder / f"{stem}.{int(frame):08d}.{ext}")
    ys, xs = np.nonzero(sample[0].mask)
    box = f"{xs.min() - 3},{ys.min() - 3},{xs.max() + 3},{ys.max() + 3}"
    code, _, err = run(capsys, "track", str(folder / "plate.########.exr"), "--box", box, "--out", str(tmp_path / "m"),
                       "--session", str(tmp_path / "shot.roto.json"))
    assert code == 0, err
    assert sorted(os.listdir(tmp_path / "m")) == [f"matte.{f:08d}.png" for f in range(1001, 1013)]
    from engine.session.session import Session

    project = tmp_path / "shot.roto.json"
    assert Session.open(project).frame_digits == 8  # kept in the project for later outputs
    code, _, err = run(capsys, "matte", str(folder / "plate.########.exr"), "--session", str(project),
                       "--out", str(tmp_path / "soft"))
    assert code == 0, err
    assert sorted(os.listdir(tmp_path / "soft")) == [f"matte.{f:08d}.png" for f in range(1001, 1013)]
    code, _, err = run(capsys, "depth", str(folder / "plate.########.exr"), "--session", str(project),
                       "--model", "prior", "--out", str(tmp_path / "depth"))
    assert code == 0, err
    assert f"depth.{1001:08d}.exr" in os.listdir(tmp_path / "depth")
    # a project written before the padding was recorded asks the plate
    doc = json.loads(project.read_text())
    doc["clip"].pop("padding")
    project.write_text(json.dumps(doc))
    assert Session.open(project).frame_digits == 8


def test_frame_padding_of_plate_names():
    from engine.export.naming import frame_digits, plate_padding

    assert [plate_padding(p) for p in ("/a/sh.########.exr", "/a/sh.%06d.dpx", "/a/sh_@@@@@.exr", "/a/sh.####.exr",
                                       "/a/sh.#.exr", "/a/sh.%d.exr", "/a/sh.mov")] == [8, 6, 5, 4, 0, 0, 0]
    assert frame_digits((1001, 1100)) == 4 and frame_digits((1, 9)) == 4  # at least 4, as before
    assert frame_digits((9990, 10010)) == 5  # one width for the whole sequence
    assert frame_digits((1001, 1100), 8) == 8


def test_track_prompts_file_two_objects(capsys, plate, tmp_path):
    pattern, sample = plate
    mask_path = tmp_path / "blob.png"
    cv2.imwrite(str(mask_path), sample[0].mask.astype(np.uint8) * 255)
    prompts = {"direction": "forward", "objects": [
        {"name": "blob", "prompts": [{"frame": 1001, "mask": "blob.png"}]},
        {"name": "corner", "prompts": [{"frame": 1001, "box": [110, 5, 155, 40]}]},
    ]}
    pf = tmp_path / "prompts.json"
    pf.write_text(json.dumps(prompts))
    code, out, err = run(capsys, "track", pattern, "--prompts", str(pf), "--out", str(tmp_path / "m"))
    assert code == 0, err
    names = os.listdir(tmp_path / "m")
    assert "blob.1012.png" in names and "corner.1012.png" in names and len(names) == 24


@pytest.mark.parametrize("content,needle", [
    ("{not json", "not valid JSON"),
    (json.dumps({"objects": []}), "objects"),
    (json.dumps({"objects": [{"name": "a", "prompts": [{"frame": 1001, "points": [[1, 2, 5]]}]}]}), "label"),
    (json.dumps({"objects": [{"name": "a"}]}), "no prompts"),
    (json.dumps({"objects": [{"name": "a", "prompts": [{"frame": 1001, "box": [1, 2]}]}], "extra": 1}), "extra"),
])
def test_invalid_prompts_file_is_explained(capsys, plate, tmp_path, content, needle):
    pattern, _ = plate
    pf = tmp_path / "p.json"
    pf.write_text(content)
    code, _, err = run(capsys, "track", pattern, "--prompts", str(pf), "--out", str(tmp_path / "m"))
    assert code == 2 and needle in err and "p.json" in err
    assert not (tmp_path / "m").exists()  # nothing written


@pytest.mark.parametrize("args,needle", [
    (["--point", "900,20"], "outside the 160x96 image"),
    (["--point", "10"], "needs 2 or 3 numbers"),
    (["--point", "10,10", "--frame", "5000"], "outside the session's range"),
    ([], "no prompt given"),
])
def test_track_bad_prompts(capsys, plate, tmp_path, args, needle):
    pattern, _ = plate
    code, _, err = run(capsys, "track", pattern, *args, "--out", str(tmp_path / "m"))
    assert code == 2 and needle in err


def test_demo_runs_end_to_end(capsys, tmp_path):
    code, out, _ = run(capsys, "demo", "--out", str(tmp_path), "--frames", "6", "--size", "160x96")
    assert code == 0
    assert (tmp_path / "proxy" / "contact_sheet.png").is_file()
    assert len(os.listdir(tmp_path / "mattes")) == 6
    iou = float(out.split("mean IoU vs ground truth ")[1].split()[0])
    assert iou > 0.9
    err = float(out.split("mean absolute alpha error vs ground truth ")[1].split()[0])
    assert err < 0.02
    exrs = sorted((tmp_path / "deliver").glob("demo.*.exr"))
    assert len(exrs) == 6
    from engine.media.readers.image import probe_image

    chans = probe_image(str(exrs[0])).channels
    assert {"R", "G", "B", "matte.A", "blob.A"} <= set(chans) and any(c.startswith("CryptoObject") for c in chans)
    nk = (tmp_path / "deliver").glob("*.nk")
    text = next(nk).read_text()
    assert "Roto {" in text or "RotoPaint {" in text
    assert "demo.####.exr" in text


def test_unknown_colourspace_is_explained(capsys, plate):
    pattern, _ = plate
    code, _, err = run(capsys, "info", pattern, "--colourspace", "Rec.709 lnear")
    assert code == 2 and "Rec.709 lnear" in err and "roto colourspaces" in err


def test_failing_command_leaves_no_partial_files(capsys, plate, tmp_path):
    """A damaged frame in the middle stops the job; what was written is complete, no temp files."""
    pattern, sample = plate
    src = os.path.dirname(pattern)
    for name in os.listdir(src):
        shutil.copy(os.path.join(src, name), tmp_path / name)
    (tmp_path / "plate.1007.exr").write_bytes((tmp_path / "plate.1007.exr").read_bytes()[:300])  # truncated
    out_dir = tmp_path / "px"
    code, _, err = run(capsys, "proxy", str(tmp_path / "plate.####.exr"), "--out", str(out_dir), "--format", "png")
    assert code == 2 and "plate.1007.exr" in err and "frame 1007" in err
    written = sorted(os.listdir(out_dir / "thumbs"))
    assert written == [f"frame.{f}.png" for f in range(1001, 1007)]
    assert all(cv2.imread(str(out_dir / "thumbs" / n)) is not None for n in written)
    leftovers = [p for p in out_dir.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp" or ".tmp" in p.name]
    assert leftovers == []
