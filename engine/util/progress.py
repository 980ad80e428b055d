"""Progress reporting and cancellation for long work. Standard library only.

Long operations take an optional ``progress`` callback and a ``cancel`` token::

    def propagate(..., progress: ProgressCallback | None = None, cancel: CancelToken | None = None):
        for i, frame in enumerate(frames):
            check_cancel(cancel)                  # between frames, never mid-write
            ...
            report(progress, Progress("track", i + 1, len(frames), frame=frame, started=t0))
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from engine.errors import Cancelled


@dataclass(frozen=True)
class Progress:
    """One progress step: ``done`` of ``total`` units of ``stage``; ``frame`` is the plate frame."""

    stage: str
    done: int
    total: int
    frame: int | None = None
    started: float | None = None  # time.monotonic() when the stage began
    message: str = ""

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, self.done / self.total)

    @property
    def eta_seconds(self) -> float | None:
        """Remaining seconds estimated from the mean rate so far (None before the first unit)."""
        if self.started is None or self.done <= 0 or self.total <= 0:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed / self.done * max(0, self.total - self.done)


ProgressCallback = Callable[[Progress], None]


class CancelToken:
    """Set from any thread (UI, signal handler, server request); checked between frames."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = "cancelled by the user"

    def cancel(self, reason: str | None = None) -> None:
        if reason:
            self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


def check_cancel(token: CancelToken | None) -> None:
    """Raise :class:`Cancelled` if ``token`` was cancelled."""
    if token is not None and token.cancelled:
        raise Cancelled(token.reason)


def report(callback: ProgressCallback | None, step: Progress) -> None:
    """Call ``callback`` if given."""
    if callback is not None:
        callback(step)
