"""A deterministic segmenter honouring the backend contract, for session tests.

Masks: a point prompt gives a 10-px-radius disk at the point; a box its rectangle; a mask is
taken as is. Propagation shifts the conditioning mask by ``step`` pixels per frame along x
(forward +, backward -), with confidence 0.9, and reports frames in ``occluded_frames`` as
occluded with an empty mask. Calls are counted so tests can see what was (not) re-run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from engine.backends.base import BackendInfo, MaskOut, Prompt, PropagatedFrame
from engine.media.types import ClipInfo


@dataclass
class FakeState:
    shape: tuple[int, int]
    cond: dict = field(default_factory=dict)  # (obj, frame) -> mask


class FakeSegmenter:
    info = BackendInfo("fake", "fake test", ("points", "box", "mask"), needs_weights=False)

    def __init__(self, step: int = 1, occluded_frames: tuple[int, ...] = (), cancel_after: int | None = None, token=None,
                 point_score: float = 1.0, uses_estimate: bool = True):
        self.step = step
        self.uses_estimate = uses_estimate  # whether Prompt.estimate changes its runs (the cache key says so)
        self.point_score = point_score  # the score a click or box answers (a real backend's is below 1)
        self.estimates: dict = {}  # (obj, frame) -> the ``estimate`` flag of the last mask prompt there
        self.occluded_frames = set(occluded_frames)
        self.calls = {"add_prompt": 0, "propagate": 0, "frames": 0}
        self.cancel_after = cancel_after
        self.token = token
        self.cache_token = f"fake-{step}-{sorted(self.occluded_frames)}"

    def init_state(self, source):
        return FakeState(tuple(source.shape))

    def add_prompt(self, state, frame, obj_id, prompt: Prompt) -> MaskOut:
        self.calls["add_prompt"] += 1
        h, w = state.shape
        score = 1.0
        if prompt.mask is not None and prompt.points is None and prompt.box is None:
            m = np.asarray(prompt.mask, bool)
            self.estimates[(obj_id, frame)] = prompt.estimate
        else:
            score = self.point_score
            m = np.zeros((h, w), bool)
            yy, xx = np.mgrid[0:h, 0:w]
            if prompt.points is not None:
                for (x, y), lab in zip(prompt.points, prompt.labels):
                    disk = (xx - x) ** 2 + (yy - y) ** 2 <= 100
                    m = m | disk if lab == 1 else m & ~disk
            if prompt.box is not None:
                x0, y0, x1, y1 = prompt.box
                m[int(y0):int(y1), int(x0):int(x1)] = True
        state.cond[(obj_id, frame)] = m
        return MaskOut(m, score, False)

    def propagate(self, state, start, end, direction, obj_ids=None):
        self.calls["propagate"] += 1
        sign = 1 if direction == "forward" else -1
        frames = range(start + 1, end + 1) if sign > 0 else range(start - 1, end - 1, -1)
        objs = [o for o in (obj_ids or []) if (o, start) in state.cond]
        for i, f in enumerate(frames):
            if self.cancel_after is not None and self.calls["frames"] >= self.cancel_after and self.token is not None:
                self.token.cancel("test cancel")
            self.calls["frames"] += 1
            out = {}
            for o in objs:
                if f in self.occluded_frames:
                    out[o] = MaskOut(np.zeros(state.shape, bool), 0.95, True)
                else:
                    out[o] = MaskOut(np.roll(state.cond[(o, start)], sign * self.step * (i + 1), axis=1), 0.9, False)
            yield PropagatedFrame(f, out)

    def remove_object(self, state, obj_id):
        for k in [k for k in state.cond if k[0] == obj_id]:
            del state.cond[k]

    def reset(self, state):
        state.cond.clear()


class ArrayClip:
    """The bits of :class:`engine.media.clip.Clip` a session uses, over in-memory frames."""

    def __init__(self, frames: dict[int, np.ndarray], path: str = "/mem/plate.####.exr"):
        self._frames = frames
        first, last = min(frames), max(frames)
        h, w = next(iter(frames.values())).shape[:2]
        self.info = ClipInfo(path=path, kind="sequence", format="exr", first=first, last=last, width=w, height=h,
                             fps=Fraction(24), channels=("R", "G", "B"), colourspace="Linear Rec.709 (sRGB)")
        self.content_id = "array-" + str(abs(hash(tuple(sorted(frames)))))

    @property
    def frames(self):
        return self.info.frames

    @property
    def shape(self):
        return (self.info.height, self.info.width)

    def read_uint8(self, frame):
        return self._frames[frame]

    def read_working(self, frame):
        return self._frames[frame].astype(np.float32) / 255.0


def array_clip(first: int = 1001, count: int = 20, h: int = 48, w: int = 64) -> ArrayClip:
    rng = np.random.default_rng(0)
    return ArrayClip({first + i: rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for i in range(count)})
