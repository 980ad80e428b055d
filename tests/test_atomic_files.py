"""Atomic writes: the files they leave honour the umask (and an existing file's mode), exactly one
temporary file per final file, and temps left by killed writers are cleaned up by a later write
of the same file — never a temp a live writer may still be filling."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.util import atomic
from engine.util.atomic import atomic_path, remove_stale_temps, temp_path_for, write_bytes, write_text


@pytest.fixture()
def umask():
    """Set a umask for the test (restored afterwards)."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- permissions (A#4) ----------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_new_files_get_the_umask_mode_like_a_plain_open(tmp_path, umask, mask):
    umask(mask)
    want = 0o666 & ~mask
    write_text(tmp_path / "a.txt", "hello")
    write_bytes(tmp_path / "b.bin", b"\0\1")
    with atomic_path(tmp_path / "sub" / "c.exr") as tmp:
        tmp.write_bytes(b"x")
    with open(tmp_path / "plain.txt", "w") as fh:  # what a normal writer gives
        fh.write("x")
    assert mode(tmp_path / "plain.txt") == want
    for p in (tmp_path / "a.txt", tmp_path / "b.bin", tmp_path / "sub" / "c.exr"):
        assert mode(p) == want, (p.name, oct(mode(p)))


def test_replacing_a_file_keeps_its_mode(tmp_path, umask):
    umask(0o022)
    target = tmp_path / "shot.nk"
    target.write_text("old")
    os.chmod(target, 0o640)
    write_text(target, "new")
    assert target.read_text() == "new" and mode(target) == 0o640
    os.chmod(target, 0o664)
    with atomic_path(target) as tmp:
        tmp.write_text("newer")
    assert target.read_text() == "newer" and mode(target) == 0o664


def test_exported_frames_honour_the_umask(tmp_path, umask):
    from engine.export.deliver import export_session
    from tests.test_export_exr import make_session

    s = make_session(tmp_path)
    umask(0o022)
    out = tmp_path / "exr"
    export_session(s, out)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files and all(mode(p) == 0o644 for p in files), {p.name: oct(mode(p)) for p in files}
    umask(0o007)
    out = tmp_path / "png"
    export_session(s, out, format="png")
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files and all(mode(p) == 0o660 for p in files), {p.name: oct(mode(p)) for p in files}


# --- temporary files (A#8) ------------------------------------------------------------------------


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def fake_temp(folder: Path, name: str, *, pid: int | None = None, age_s: float = 0.0, legacy: str = "") -> Path:
    """A temp as a writer of ``name`` would have left it (legacy: the mkstemp names of old versions)."""
    stem, dot, ext = name.rpartition(".")
    suffix = f".{ext}" if dot else ""
    stem = stem if dot else name
    if legacy:
        p = folder / f".{stem}.{legacy}.tmp{suffix}"
    else:
        p = folder / f".{stem}.{atomic._host_tag()}-{pid}.0123abcd.tmp{suffix}"
    p.write_bytes(b"partial")
    if age_s:
        t = time.time() - age_s
        os.utime(p, (t, t))
    return p


def test_one_temp_per_final_file_in_an_export(tmp_path, monkeypatch):
    """The writers used to make a temp of the delivery job's temp (``..shot.1001.x.tmp.y.tmp.exr``)."""
    from engine.export import dpx, exr, images
    from engine.export.deliver import export_session
    from tests.test_export_exr import make_session

    seen: list[str] = []
    for mod, name in ((exr, "_exr_write"), (images, "_oiio_write"), (dpx, "_write_bytes")):
        real = getattr(mod, name)

        def spy(a, b, *rest, _real=real, _name=name):
            path = a if _name == "_oiio_write" or _name == "_write_bytes" else b
            seen.append(Path(path).name)
            return _real(a, b, *rest)

        monkeypatch.setattr(mod, name, spy)
    s = make_session(tmp_path)
    for fmt in ("exr", "png", "dpx"):
        export_session(s, tmp_path / fmt, format=fmt)
    assert seen
    for name in seen:
        assert name.startswith(".") and not name.startswith("..") and name.count(".tmp") == 1, name
    left = [p.name for fmt in ("exr", "png", "dpx") for p in (tmp_path / fmt).rglob(".*")]
    assert left == []


def test_a_later_write_removes_temps_of_dead_writers_only(tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        gone = dead_pid()
        dead = fake_temp(tmp_path, "shot010.1015.exr", pid=gone)
        live_other = fake_temp(tmp_path, "shot010.1015.exr", pid=live.pid, age_s=7200)  # old but alive
        mine = fake_temp(tmp_path, "shot010.1015.exr", pid=os.getpid(), age_s=7200)  # another thread's
        other_file = fake_temp(tmp_path, "shot010.1016.exr", pid=gone)  # not this file's
        other_ext = fake_temp(tmp_path, "shot010.1015.dpx", pid=gone)
        legacy_old = fake_temp(tmp_path, "shot010.1015.exr", legacy="ab_cd9xy", age_s=7200)
        nested_old = tmp_path / "..shot010.1015.ier24op4.tmp.8mdabh3s.tmp.exr"
        nested_old.write_bytes(b"x")
        os.utime(nested_old, (time.time() - 7200,) * 2)
        legacy_new = fake_temp(tmp_path, "shot010.1015.exr", legacy="q1w2e3r4")  # maybe an old version, still writing
        write_bytes(tmp_path / "shot010.1015.exr", b"frame")
        left = sorted(p.name for p in tmp_path.iterdir())
        assert left == sorted(p.name for p in (live_other, mine, other_file, other_ext, legacy_new)) + [
            "shot010.1015.exr"]
        assert not dead.exists() and not legacy_old.exists() and not nested_old.exists()
    finally:
        live.kill()
        live.wait()


def test_temps_of_another_machine_wait_until_old(tmp_path):
    host = "0" * 6 if atomic._host_tag() != "0" * 6 else "1" * 6
    fresh = tmp_path / f".a.{host}-1.0123abcd.tmp.png"
    old = tmp_path / f".a.{host}-2.0123abcd.tmp.png"
    for p in (fresh, old):
        p.write_bytes(b"x")
    os.utime(old, (time.time() - atomic.STALE_AGE_S - 60,) * 2)
    assert remove_stale_temps(tmp_path / "a.png") == [old]
    assert fresh.exists()


def test_a_killed_writer_leaves_a_temp_that_the_next_write_removes(tmp_path):
    """The user's case: an export killed with SIGKILL mid-frame, then run again."""
    target = tmp_path / "shot010.1015.exr"
    code = ("import sys, time; from engine.util.atomic import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n"
            "    tmp.write_bytes(b'half'); print(tmp, flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        tmp = Path(proc.stdout.readline().strip())
        assert tmp.exists() and tmp.parent == tmp_path
        assert remove_stale_temps(target) == []  # its writer is alive: kept
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert tmp.exists()
    atomic._scans.clear()  # the folder was listed less than a minute ago
    new = temp_path_for(target)
    assert not tmp.exists() and new.exists()
    new.unlink()
