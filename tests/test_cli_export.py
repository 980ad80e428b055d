"""``roto export``: the command line, progress, resume, cancellation and bad input."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys

import numpy as np
import pytest

from engine.cli.main import main
from engine.errors import Cancelled
from engine.export.deliver import export_session
from engine.util.progress import CancelToken
from tests.conftest import ROOT as ROOT_DIR
from tests.test_export_exr import make_session, no_temp_files, oiio_spec, random_frames


def test_export_command_writes_and_resumes(tmp_path, capsys):
    s = make_session(tmp_path)
    out = tmp_path / "out"
    assert main(["export", str(s.path), "--format", "exr", "--layers", "objects,matte,crypto,id",
                 "--compression", "piz", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"{out}/shot010.####.exr" in text and "4 written, 0 already valid" in text
    assert oiio_spec(out / "shot010.1004.exr").getattribute("compression") == "piz"
    assert main(["export", str(s.path), "--layers", "objects,matte,crypto,id", "--compression", "piz",
                 "--out", str(out)]) == 0
    assert "0 written, 4 already valid (skipped)" in capsys.readouterr().out
    assert main(["export", str(s.path), "--format", "png", "--bit-depth", "16", "--objects", "hero",
                 "--frames", "1002-1003", "--out", str(tmp_path / "png"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["frames"] == [1002, 1003] and rep["frames_written"] == 2 and rep["layers"] == ["objects", "matte"]
    assert sorted(p.name for p in (tmp_path / "png" / "hero").iterdir()) == ["shot010_1002.png", "shot010_1003.png"]
    assert not (tmp_path / "png" / "villain").exists()


def test_export_reports_progress_per_frame(tmp_path):
    s = make_session(tmp_path)
    steps = []
    export_session(s, tmp_path / "out", progress=steps.append)
    assert [(p.done, p.total, p.frame) for p in steps] == [(i + 1, 4, 1001 + i) for i in range(4)]
    steps.clear()
    export_session(s, tmp_path / "out", progress=steps.append)
    assert all(p.message == "already written" for p in steps)


def test_cancel_stops_between_frames_and_keeps_finished_ones(tmp_path):
    s = make_session(tmp_path)
    out = tmp_path / "out"
    token = CancelToken()

    def progress(step):
        if step.done == 2:
            token.cancel("test")

    with pytest.raises(Cancelled) as info:
        export_session(s, out, format="dpx", progress=progress, cancel=token)
    assert info.value.report.frames_written == 2 and info.value.report.cancelled
    assert sorted(p.name for p in (out / "hero").iterdir()) == ["shot010_1001.dpx", "shot010_1002.dpx"]
    assert no_temp_files(out)
    rep = export_session(s, out, format="dpx")
    assert rep.frames_skipped == 2 and rep.frames_written == 2


def test_bad_input_is_a_sentence_and_exit_status_2(tmp_path, capsys):
    s = make_session(tmp_path)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = [
        (["--layers", "sparkles"], "no layer 'sparkles'"),
        (["--objects", "nobody"], "no object 'nobody'"),
        (["--frames", "900-1002"], "not inside the session's range"),
        (["--format", "png", "--compression", "piz"], "PNG files are written with zip"),
        (["--template", "{shot}.exr"], "no frame number"),
    ]
    for extra, message in cases:
        assert main(["export", str(s.path), "--out", str(tmp_path / "o"), *extra]) == 2, extra
        assert message in capsys.readouterr().err
    assert main(["export", str(s.path), "--out", str(a_file)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main(["export", str(s.path), "--out", str(a_file / "sub")]) == 2
    assert "output folder cannot be used" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing.roto.json"), "--out", str(tmp_path / "o")]) == 2
    capsys.readouterr()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders; the chmod check needs a user")
def test_unwritable_folder_is_reported_before_any_work(tmp_path, capsys):
    s = make_session(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main(["export", str(s.path), "--out", str(locked)]) == 2
        assert "not writable" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


def test_permission_denied_reads_as_not_writable(tmp_path, monkeypatch):
    import errno
    import tempfile

    from engine.errors import OutputError

    s = make_session(tmp_path)

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(OutputError, match="output folder is not writable") as info:
        export_session(s, tmp_path / "out")
    assert "Choose a folder you can write to" in info.value.sentence()


def test_a_real_write_failure_leaves_no_partial_file(tmp_path):
    """The OS refuses the write half-way (file-size limit, like a full disk): clear error, no file."""
    s = make_session(tmp_path, frames=random_frames(2, 120, 160))

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4000, 4000))

    for fmt in ("exr", "dpx"):
        out = tmp_path / f"out_{fmt}"
        cmd = [sys.executable, "-m", "engine", "export", str(s.path), "--format", fmt, "--out", str(out)]
        if fmt == "exr":
            cmd += ["--layers", "all"]
        run = subprocess.run(cmd, preexec_fn=limited, capture_output=True, text=True, cwd=ROOT_DIR, timeout=120)
        assert run.returncode == 2, run.stderr
        assert "roto: error:" in run.stderr and "frame 1001" in run.stderr
        assert [p for p in out.rglob("*") if p.is_file()] == []  # nothing partial, no temporary files
        rep = export_session(s, out, format=fmt, layers=["all"] if fmt == "exr" else None)
        assert rep.frames_written == 2


def test_bench_export_suite_runs(tmp_path, capsys):
    assert main(["bench", "export", "--size", "64x48", "--frames", "1", "--workdir", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["suite"] == "export"
    assert [r["name"] for r in report["rows"]] == ["exr_64x48", "dpx_64x48"]
    assert all(r["ours_fps"] > 0 and r["raw_fps"] > 0 for r in report["rows"])


def test_mattes_export_without_the_plate_keeps_its_rate_and_timecode(tmp_path, capsys):
    """The plate went offline after tracking: mattes still carry the plate's fps and timecode."""
    import shutil

    s = make_session(tmp_path)
    shutil.rmtree(tmp_path / "plate")
    out = tmp_path / "out"
    assert main(["export", str(s.path), "--layers", "objects,matte", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "come from the session" in captured.out + captured.err
    spec = oiio_spec(out / "shot010.1002.exr")
    rate = spec.getattribute("FramesPerSecond")
    assert tuple(rate) == (24000, 1001)
    assert spec.getattribute("smpte:TimeCode") is not None


def test_resume_rewrites_frames_whose_mask_was_edited(tmp_path, capsys):
    s = make_session(tmp_path)
    out = tmp_path / "out"
    assert main(["export", str(s.path), "--layers", "objects", "--out", str(out)]) == 0
    capsys.readouterr()
    hero = s.object_by_name("hero")
    s.edit_mask(hero.id, 1003, lambda m: np.roll(m, 2, axis=1))
    assert main(["export", str(s.path), "--layers", "objects", "--out", str(out)]) == 0
    assert "1 written, 3 already valid" in capsys.readouterr().out


def test_export_writes_host_scripts_loading_the_exrs(tmp_path, capsys):
    s = make_session(tmp_path)
    out = tmp_path / "out"
    assert main(["export", str(s.path), "--host-script", "nuke", "--host-script", "fusion", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    nk = next(out.glob("*.nk"))
    setting = next(out.glob("*.setting"))
    assert f"nuke: {nk}" in text and f"fusion: {setting}" in text
    script = nk.read_text()
    assert "shot010.####.exr" in script and "Roto {" in script and "Cryptomatte" in script
    assert "shot010" in setting.read_text()


def test_host_scripts_hold_absolute_paths_whatever_the_working_folder(tmp_path, capsys, monkeypatch):
    """``--out`` typed relative: the scripts still name the EXRs (and the plate) by absolute path, so they
    open from any folder, not only from the one the export ran in."""
    s = make_session(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(s.path), "--frames", "1001-1002", "--host-script", "nuke", "--host-script", "fusion",
                 "--host-script", "flame", "--out", "sh/hs"]) == 0
    capsys.readouterr()
    out = tmp_path / "sh" / "hs"
    script = next(out.glob("*.nk")).read_text()
    assert f"file {out}/shot010.####.exr\n" in script
    assert f"file {tmp_path}/plate/plate.####.exr\n" in script
    setting = next(out.glob("*.setting")).read_text()
    assert f'Filename = "{out}/shot010.1001.exr"' in setting
    assert f'Filename = "{tmp_path}/plate/plate.1001.exr"' in setting
    flame = json.loads(next(out.glob("*_shapes.json")).read_text())
    assert flame["mattes"] == f"{out}/shot010.[1001-1002].exr"
