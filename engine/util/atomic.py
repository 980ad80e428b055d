"""Atomic file writes: write to a temporary file beside the target, then rename.

A reader never sees a half-written file, and an interrupted or failed write leaves the
previous file (or nothing) in place. Standard library only.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import socket
import stat
import threading
import time
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


# Temporary names are ``.<stem>.<host>-<pid>.<random>.tmp<suffix>``: the host tag and the pid of
# the writer let a later write of the same file tell a temp left by a killed writer from one a
# live writer is still filling (see :func:`remove_stale_temps`).
_TEMP_RE = re.compile(
    r"^\.(?P<stem>.+)\.(?P<host>[0-9a-f]{6})-(?P<pid>[0-9]+)\.[0-9a-f]{8}\.tmp(?P<suffix>(\.[^.]*)?)$")
# Names made by earlier versions (tempfile.mkstemp): no writer to ask, so only their age tells.
_LEGACY_RE = re.compile(r"^\.(?P<stem>.+)\.[a-z0-9_]{8}\.tmp(?P<suffix>(\.[^.]*)?)$")
#: A temp whose writer cannot be asked (another machine, an older version) is left alone until
#: it has not been touched for this long; no single file write stays idle that long.
STALE_AGE_S = 3600.0
#: A temp of a writer on this machine whose pid is still in use (possibly re-used) is left
#: alone until this old.
STALE_AGE_LIVE_PID_S = 86400.0
_RESCAN_S = 60.0
_scan_lock = threading.Lock()
_scans: dict[str, tuple[float, dict[str, list[str]]]] = {}


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]


def _final_name(name: str) -> str | None:
    """The file a temporary name stands for (through nested temps of old versions), or None."""
    found = None
    while True:
        m = _TEMP_RE.match(name) or _LEGACY_RE.match(name)
        if not m:
            return found
        name = found = m["stem"] + m["suffix"]


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True  # cannot tell: treat as alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists (another user's process), or cannot tell
    return True


def _is_stale(path: Path, host: str) -> bool:
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return False
    m = _TEMP_RE.match(path.name)
    if m and m["host"] == host:
        pid = int(m["pid"])
        if pid == os.getpid():
            return False  # this process's own (another thread may be writing it)
        if not _pid_alive(pid):
            return True
        return age > STALE_AGE_LIVE_PID_S
    return age > STALE_AGE_S


def _temps_by_target(folder: Path) -> dict[str, list[str]]:
    key = str(folder)
    now = time.monotonic()
    with _scan_lock:
        hit = _scans.get(key)
        if hit is not None and now - hit[0] < _RESCAN_S:
            return hit[1]
    found: dict[str, list[str]] = {}
    try:
        with os.scandir(folder) as it:
            for entry in it:
                if entry.name.startswith(".") and ".tmp" in entry.name:
                    final = _final_name(entry.name)
                    if final is not None:
                        found.setdefault(final, []).append(entry.name)
    except OSError:
        return {}
    with _scan_lock:
        if len(_scans) > 256:
            _scans.clear()
        _scans[key] = (now, found)
    return found


def remove_stale_temps(path: str | os.PathLike[str]) -> list[Path]:
    """Remove temporary files of ``path`` left beside it by writers that died; returns them.

    Only temps of this very file are considered. A temp is stale when its writer ran on this
    machine and its pid is no longer running, or when it has not been touched for
    :data:`STALE_AGE_S` (writers elsewhere, names from older versions). A temp of a live writer
    (this process included) is never removed. The folder is listed at most once a minute.
    """
    target = Path(path)
    temps = _temps_by_target(target.parent)
    names = temps.get(target.name)
    if not names:
        return []
    host = _host_tag()
    removed = []
    for name in list(names):
        tmp = target.parent / name
        if _is_stale(tmp, host):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
        if not tmp.exists():
            with contextlib.suppress(ValueError):
                names.remove(name)
    return removed


def temp_path_for(path: str | os.PathLike[str]) -> Path:
    """A fresh temporary path in the same folder as ``path`` (same filesystem, so rename is atomic).

    The suffix is kept so that writers choosing a format by extension still work. The file is
    created with mode 0o666 less the umask (as ``open(path, "w")`` would); :func:`replace`
    gives it the mode of a file it replaces. Stale temps of ``path`` left by killed writers are
    removed first.
    """
    target = Path(path)
    remove_stale_temps(target)
    prefix = f".{target.stem}.{_host_tag()}-{os.getpid()}."
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
def atomic_path(path: str | os.PathLike[str], *, direct: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed.

    Use it for writers that need a file name (OpenEXR, OpenImageIO)::

        with atomic_path(out) as tmp:
            write_exr(tmp, ...)

    ``direct`` yields ``path`` itself (no temp, no rename; errors still explained): for a caller
    that already writes to a temporary file of its own (the delivery job renames every file of
    a frame together), so that no temp of a temp is made.
    """
    target = Path(path)
    if direct:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            yield target
        except OSError as exc:
            raise _explain(exc, target) from exc
        return
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
