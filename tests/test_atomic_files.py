"""Atomic writes: the files they leave honour the umask (and an existing file's mode), exactly one
temporary file per final file, and temps left by killed writers are cleaned up by a later write
of the same file — never a temp a live writer may still be filling."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from engine.util.atomic import atomic_path, write_bytes, write_text


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
