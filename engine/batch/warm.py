"""Cache warming: compute what will be asked for next, ahead of a moving position.

A :class:`Warmer` runs ``fn(frame)`` in a background thread for the ``ahead`` frames after the
position it follows (a playhead, the frame a propagation just finished), in the direction of
travel, skipping frames already warmed and dropping its queue when the position jumps. ``fn``
fills a cache as a side effect: :func:`frame_warmer` decodes plate frames into the clip's frame
cache (pre-decode), :func:`embedding_warmer` runs SAM 2's image encoder into the engine cache
(pre-embed) so propagation finds its features ready. Warming never fails the work it serves: an
error in ``fn`` only stops the warmer.

>>> w = frame_warmer(clip, ahead=8)          # doctest: +SKIP
>>> w.follow(1001)  # after each frame the consumer finished     # doctest: +SKIP
>>> w.close()                                # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Warmer:
    """Background ``fn(frame)`` for the frames ahead of a followed position (see the module doc)."""

    def __init__(self, fn: Callable[[int], Any], frames: range, *, ahead: int = 8, name: str = "warm") -> None:
        self.fn = fn
        self.frames = frames
        self.ahead = max(0, int(ahead))
        self._want: list[int] = []
        self._done: set[int] = set()
        self._cond = threading.Condition()
        self._stop = False
        self.warmed = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name=f"roto-{name}", daemon=True)
        self._thread.start()

    def follow(self, frame: int, step: int = 1) -> None:
        """The consumer is at ``frame`` moving by ``step`` (+1 forward, -1 backward)."""
        if self.ahead <= 0:
            return
        step = 1 if step >= 0 else -1
        want = [f for f in (frame + step * i for i in range(1, self.ahead + 1))
                if f in self.frames and f not in self._done]
        with self._cond:
            self._want = want
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._want and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                f = self._want.pop(0)
            if f in self._done:
                continue
            try:
                self.fn(f)
            except BaseException as exc:  # noqa: BLE001 - warming is best effort
                self.error = exc
                return
            self._done.add(f)
            self.warmed += 1

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout=30)


def frame_warmer(clip: Any, *, ahead: int = 8) -> Warmer:
    """Pre-decode plate frames into ``clip``'s frame cache (bounded by its byte budget)."""
    return Warmer(clip.read, clip.frames, ahead=ahead, name="predecode")


def embedding_warmer(backend: Any, state: Any, frames: range, *, ahead: int = 4) -> Warmer | None:
    """Pre-embed frames with SAM 2's image encoder into the engine cache (``sam2-features``); None for
    backends without an encoder cache (the weight-free tracker)."""
    features = getattr(backend, "_features", None)
    if features is None:
        return None
    return Warmer(lambda f: features(state, f, store=True), frames, ahead=ahead, name="preembed")
