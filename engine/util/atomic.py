"""Atomic file writes: write to a temporary file beside the target, then rename.

A reader never sees a half-written file, and an interrupted or failed write leaves the
previous file (or nothing) in place. Standard library only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from engine.errors import OutputError


def _explain(exc: OSError, path: Path) -> OutputError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return OutputError("the disk is full", path=str(path), hint="Free some space or choose another --out folder")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError("the folder is not writable", path=str(path), hint="Choose a folder you can write to")
    return OutputError(f"cannot write the file ({exc.strerror or exc})", path=str(path))


def temp_path_for(path: str | os.PathLike[str]) -> Path:
    """A fresh temporary path in the same folder as ``path`` (same filesystem, so rename is atomic).

    The suffix is kept so that writers choosing a format by extension still work. The file is
    created with mode 0o666 less the umask (as ``open(path, "w")`` would, default ACLs included;
    ``tempfile.mkstemp`` made every output 0600); :func:`replace` gives it the mode of a file it
    replaces.
    """
    target = Path(path)
    prefix = f".{target.stem}."
    suffix = ".tmp" + target.suffix
    for _ in range(100):
        tmp = target.parent / f"{prefix}{os.urandom(4).hex()}{suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(target))


def replace(tmp: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Rename ``tmp`` over ``path``; a file already at ``path`` keeps its permission bits."""
    with contextlib.suppress(FileNotFoundError):
        mode = stat.S_IMODE(os.stat(path).st_mode)
        os.chmod(tmp, mode)
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed.

    Use it for writers that need a file name (OpenEXR, OpenImageIO)::

        with atomic_path(out) as tmp:
            write_exr(tmp, ...)
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path_for(target)
    except OSError as exc:
        raise _explain(exc, target) from exc
    try:
        yield tmp
        replace(tmp, target)
    except OSError as exc:
        _unlink_quietly(tmp)
        raise _explain(exc, target) from exc
    except BaseException:
        _unlink_quietly(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file for writing; it replaces ``path`` only if the block succeeds."""
    binary = "b" in mode
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if binary else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as fh:
        fh.write(text)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
