"""Streaming building blocks: stage threads joined by bounded queues, and frame gates.

:func:`run_stages` pushes items through a chain of functions, each in its own thread, joined by
``queue.Queue(maxsize)``: a stage blocks when the next one is ``maxsize`` items behind, so at
most ``(stages + 1) × maxsize`` items (frames) are alive at once, and the slowest stage sets the
pace while the others overlap with it (decode, colour conversion, inference, encoding). Order is
kept (one thread per stage). The first error stops every stage and is raised in the caller;
cancellation is checked between items. :class:`StageStats` records, per stage, the seconds spent
working, waiting for input and waiting for room downstream — the stage breakdown of the
benchmarks.

:class:`FrameGate` lets a stage wait for frames another stage makes ready in any order (the
tracker finishes frames out of order when it merges two passes); :meth:`FrameGate.fail` wakes
every waiter with the producer's error.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.errors import Cancelled, RotoError
from engine.util.progress import CancelToken

_END = object()
POLL_S = 0.1


class LinkedCancel(CancelToken):
    """A cancel token that is also cancelled when its ``parent`` is (a shot's stages stop together)."""

    def __init__(self, parent: CancelToken | None = None) -> None:
        super().__init__()
        self.parent = parent

    @property
    def cancelled(self) -> bool:  # type: ignore[override]
        if self._event.is_set():
            return True
        if self.parent is not None and self.parent.cancelled:
            self.reason = self.parent.reason
            return True
        return False


class StageFailed(RotoError):
    """A stage could not go on because the stage it waits for failed."""

    code = "stage_failed"


@dataclass
class StageTime:
    items: int = 0
    busy: float = 0.0  # seconds inside the stage's function
    wait_in: float = 0.0  # seconds waiting for input (upstream slower)
    wait_out: float = 0.0  # seconds waiting for room downstream (downstream slower)

    def add(self, other: StageTime) -> None:
        self.items += other.items
        self.busy += other.busy
        self.wait_in += other.wait_in
        self.wait_out += other.wait_out

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.items, "busy_s": round(self.busy, 3), "wait_in_s": round(self.wait_in, 3),
                "wait_out_s": round(self.wait_out, 3)}


@dataclass
class StageStats:
    """Per-stage timing, merged across calls (thread-safe)."""

    stages: dict[str, StageTime] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get(self, name: str) -> StageTime:
        with self._lock:
            return self.stages.setdefault(name, StageTime())

    def add_busy(self, name: str, seconds: float, items: int = 1) -> None:
        t = self.get(name)
        with self._lock:
            t.busy += seconds
            t.items += items

    def merge(self, other: StageStats | dict[str, Any]) -> None:
        items = other.stages.items() if isinstance(other, StageStats) else (
            (k, StageTime(v.get("items", 0), v.get("busy_s", 0.0), v.get("wait_in_s", 0.0), v.get("wait_out_s", 0.0)))
            for k, v in other.items())
        for name, t in items:
            mine = self.get(name)
            with self._lock:
                mine.add(t)

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {k: v.to_dict() for k, v in self.stages.items()}


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> float:
    """Put with backpressure; returns seconds blocked. Gives up when ``stop`` is set."""
    t0 = time.perf_counter()
    while not stop.is_set():
        try:
            q.put(item, timeout=POLL_S)
            break
        except queue.Full:
            continue
    return time.perf_counter() - t0


def _get(q: queue.Queue, stop: threading.Event) -> tuple[Any, float]:
    t0 = time.perf_counter()
    while not stop.is_set():
        try:
            return q.get(timeout=POLL_S), time.perf_counter() - t0
        except queue.Empty:
            continue
    return _END, time.perf_counter() - t0


def run_stages(items: Iterable[Any], stages: list[tuple[str, Callable[[Any], Any]]], *, maxsize: int = 4,
               cancel: CancelToken | None = None, stats: StageStats | None = None) -> int:
    """Feed ``items`` through ``stages`` (``(name, fn)``; each fn maps one item to the next stage's
    input, the last one's result is dropped), one thread per stage, bounded queues of ``maxsize``
    between them. Returns the number of items that came out of the last stage. The first error
    (including :class:`~engine.errors.Cancelled`) stops everything and is raised here."""
    if not stages:
        return 0
    stats = stats if stats is not None else StageStats()
    stop = threading.Event()
    errors: list[BaseException] = []
    qs = [queue.Queue(maxsize=max(1, int(maxsize))) for _ in stages]
    done_count = [0]

    def fail(exc: BaseException) -> None:
        if not errors:
            errors.append(exc)
        stop.set()

    def feeder() -> None:
        t = stats.get("feed")
        try:
            for item in items:
                if stop.is_set():
                    return
                if cancel is not None and cancel.cancelled:
                    raise Cancelled(cancel.reason)
                t.wait_out += _put(qs[0], item, stop)
            _put(qs[0], _END, stop)
        except BaseException as exc:  # noqa: BLE001 - passed to the caller
            fail(exc)

    def worker(i: int, name: str, fn: Callable[[Any], Any]) -> None:
        t = stats.get(name)
        last = i == len(stages) - 1
        try:
            while True:
                item, waited = _get(qs[i], stop)
                t.wait_in += waited
                if item is _END:
                    if not last:
                        _put(qs[i + 1], _END, stop)
                    return
                if cancel is not None and cancel.cancelled:
                    raise Cancelled(cancel.reason)
                t0 = time.perf_counter()
                out = fn(item)
                t.busy += time.perf_counter() - t0
                t.items += 1
                if last:
                    done_count[0] += 1
                else:
                    t.wait_out += _put(qs[i + 1], out, stop)
        except BaseException as exc:  # noqa: BLE001 - passed to the caller
            fail(exc)

    threads = [threading.Thread(target=feeder, name="roto-feed", daemon=True)]
    threads += [threading.Thread(target=worker, args=(i, n, f), name=f"roto-{n}", daemon=True)
                for i, (n, f) in enumerate(stages)]
    for th in threads:
        th.start()
    try:
        for th in threads:
            while th.is_alive():
                th.join(POLL_S)
                if cancel is not None and cancel.cancelled and not stop.is_set():
                    fail(Cancelled(cancel.reason))
    except BaseException as exc:  # KeyboardInterrupt in the caller: stop the threads too
        fail(exc)
        for th in threads:
            th.join()
        raise
    if errors:
        raise errors[0]
    return done_count[0]


class FrameGate:
    """Frames that become ready in any order; waiters block until their frame is ready.

    ``close()`` says the producer finished: waiting for a frame that never became ready then
    raises :class:`StageFailed` (nothing will make it ready)."""

    def __init__(self, frames: Iterable[int], name: str = "frames") -> None:
        self.name = name
        self._pending = set(int(f) for f in frames)
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._closed = False

    def mark(self, frame: int) -> None:
        with self._cond:
            self._pending.discard(int(frame))
            self._cond.notify_all()

    def mark_all(self) -> None:
        with self._cond:
            self._pending.clear()
            self._cond.notify_all()

    def fail(self, exc: BaseException) -> None:
        with self._cond:
            if self._error is None:
                self._error = exc
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def ready(self, frame: int) -> bool:
        with self._cond:
            return int(frame) not in self._pending

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._pending)

    def wait(self, frame: int, cancel: CancelToken | None = None) -> float:
        """Block until ``frame`` is ready; returns the seconds waited."""
        f = int(frame)
        t0 = time.perf_counter()
        with self._cond:
            while f in self._pending:
                if self._error is not None:
                    raise StageFailed(f"the {self.name} stage failed before frame {f} was ready: "
                                      f"{getattr(self._error, 'message', None) or self._error}", frame=f)
                if self._closed:
                    raise StageFailed(f"the {self.name} stage finished without frame {f}", frame=f)
                if cancel is not None and cancel.cancelled:
                    raise Cancelled(cancel.reason)
                self._cond.wait(POLL_S)
        return time.perf_counter() - t0

    def wait_all(self, frames: Iterable[int], cancel: CancelToken | None = None) -> float:
        return sum(self.wait(f, cancel) for f in frames)
