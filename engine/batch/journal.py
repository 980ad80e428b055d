"""The per-shot journal: what a batch run finished, written so that a crash loses nothing finished.

Layout (inside the shot's output folder)::

    <out>/.roto-batch/journal.<scope>.jsonl   one JSON object per line, appended, flushed and fsynced
    <out>/.roto-batch/lock                    held (flock) by the process running the whole shot

``scope`` is ``main`` for a whole-shot run and ``<first>-<last>`` for a frame-chunk run (farm
tasks, which may run at the same time on several machines and so never append to one file).
Each line: ``{"t": unix time, "event": ..., "pid": ..., "host": ..., ...}`` with events
``shot_start`` / ``stage_start`` / ``done`` (a stage or a chunk of it, with the digest of what it
was made from) / ``failed`` / ``shot_done``. A torn last line (the process was killed while
writing it) is ignored.

The journal is a fast path and a record, never the only proof: before skipping work the runner
checks the outputs themselves (session results, alpha files, export digests), so a journal that
says "done" over deleted files still re-does them.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from engine.errors import SessionError

FOLDER = ".roto-batch"


class Journal:
    """Append-only JSON lines for one shot (see the module doc)."""

    def __init__(self, out_dir: str | os.PathLike[str], scope: str = "main") -> None:
        self.folder = Path(out_dir) / FOLDER
        self.scope = scope
        self.path = self.folder / f"journal.{scope}.jsonl"

    def append(self, event: str, **data: Any) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        rec = {"t": round(time.time(), 3), "event": event, "pid": os.getpid(), "host": socket.gethostname(), **data}
        line = json.dumps(rec, separators=(",", ":"), default=str) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def events(self) -> list[dict[str, Any]]:
        """Every event of every scope of this shot, oldest first (torn lines skipped)."""
        out: list[dict[str, Any]] = []
        if not self.folder.is_dir():
            return out
        for p in sorted(self.folder.glob("journal.*.jsonl")):
            try:
                text = p.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            for line in text.splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # torn by a crash
                if isinstance(rec, dict):
                    out.append(rec)
        out.sort(key=lambda r: r.get("t", 0))
        return out

    def done_units(self, stage: str, digest: str) -> set[str]:
        """The units (``"all"`` or ``"<first>-<last>"``) journalled done for ``stage`` under ``digest``."""
        return {str(e.get("unit", "all")) for e in self.events()
                if e.get("event") == "done" and e.get("stage") == stage and e.get("digest") == digest}

    def clear(self) -> None:
        for p in self.folder.glob("journal.*.jsonl") if self.folder.is_dir() else ():
            with contextlib.suppress(OSError):
                p.unlink()


class ShotLock:
    """An exclusive lock on a shot's folder for a whole-shot run (``flock``; released by the kernel
    when the process dies, so a ``kill -9`` never leaves a stale lock)."""

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        self.path = Path(out_dir) / FOLDER / "lock"
        self._fd: int | None = None

    def __enter__(self) -> ShotLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - Windows: no lock, single-runner use assumed
            pass
        except OSError:
            try:
                holder = os.read(fd, 200).decode("utf-8", "replace").strip()
            finally:
                os.close(fd)
            raise SessionError(f"another roto batch is working on this shot ({holder or 'unknown process'})",
                               path=str(self.path.parent.parent),
                               hint="Wait for it to finish, or stop it; a killed run releases the lock") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
