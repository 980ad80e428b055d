"""Locks that say who holds them: one per session, and one for the GPU.

Order is always session lock, then GPU lock, so two requests can never wait on each other.
An interactive request waits ``timeout`` seconds and then answers :class:`Busy` naming the job
that holds the lock; a background job waits until it gets it or is cancelled. Standard library only.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from engine.server.errors import Busy
from engine.util.progress import CancelToken, check_cancel


class OwnedLock:
    """A re-entrant lock that remembers what holds it (``"job 3f2a… (track)"``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.RLock()
        self.owner: str | None = None
        self._depth = 0

    @contextlib.contextmanager
    def hold(self, owner: str, *, timeout: float | None = None, cancel: CancelToken | None = None) -> Iterator[None]:
        """Hold the lock as ``owner``. ``timeout``: give up with :class:`Busy`; ``cancel``: wait in
        short steps and stop with :class:`~engine.errors.Cancelled` when cancelled."""
        if cancel is not None:
            while not self._lock.acquire(timeout=0.1):
                check_cancel(cancel)
        elif not self._lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            holder = self.owner or "another request"
            raise Busy(f"the {self.name} is busy with {holder}",
                       hint="Wait for it to finish or cancel it, then try again")
        previous = self.owner
        self._depth += 1
        self.owner = owner if self._depth == 1 else previous
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.owner = None
            self._lock.release()
