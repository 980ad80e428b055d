"""Propagation planning and the merge of two passes between keyframes. Pure functions.

Given an object's keyframes (locked frames) and the range to fill, :func:`plan_runs` lists the
backend runs: backward from the first keyframe to the start of the range, forward from the
last keyframe to the end, and between two keyframes a forward run from the left one and a
backward run from the right one, merged frame by frame by :func:`merge_masks`. Runs never
touch a keyframe: locked frames are never overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

DirectionChoice = Literal["forward", "backward", "both"]


@dataclass(frozen=True)
class Run:
    """Track from keyframe ``start`` (its mask conditions the run) to ``end`` inclusive."""

    start: int
    end: int
    direction: str  # "forward" | "backward"

    @property
    def frames(self) -> range:
        return range(self.start + 1, self.end + 1) if self.direction == "forward" else range(self.start - 1, self.end - 1, -1)


def plan_runs(keyframes: list[int], lo: int, hi: int, direction: DirectionChoice = "both",
              within: tuple[int, int] | None = None) -> list[Run]:
    """Runs that fill ``lo..hi`` from ``keyframes`` (sorted plate frame numbers inside or outside the range).

    ``within=(a, b)`` keeps only the runs whose frames touch ``a..b`` (a correction's
    affected range). Between two keyframes ``direction="both"`` yields a forward and a
    backward run over the same frames, to be merged.
    """
    keys = sorted(set(keyframes))
    runs: list[Run] = []
    if not keys:
        return runs
    fwd = direction in ("forward", "both")
    bwd = direction in ("backward", "both")
    first, last = keys[0], keys[-1]
    if bwd and first > lo:
        runs.append(Run(first, lo, "backward"))
    for a, b in zip(keys, keys[1:]):
        if b - a < 2:
            continue
        a_end, b_end = min(b - 1, hi), max(a + 1, lo)
        if fwd and a < hi and a_end > a:
            runs.append(Run(a, a_end, "forward"))
        if bwd and b > lo and b_end < b:
            runs.append(Run(b, b_end, "backward"))
    if fwd and last < hi:
        runs.append(Run(last, hi, "forward"))
    runs = [r for r in runs if len(r.frames) > 0 and min(r.frames) <= hi and max(r.frames) >= lo]
    if within is not None:
        a, b = within
        runs = [r for r in runs if min(r.frames) <= b and max(r.frames) >= a]
    return runs


def affected_range(keyframes: list[int], frame: int, lo: int, hi: int) -> tuple[int, int]:
    """Frames a change on ``frame`` can affect: strictly between its neighbouring keyframes."""
    keys = sorted(k for k in set(keyframes) if k != frame)
    before = [k for k in keys if k < frame]
    after = [k for k in keys if k > frame]
    return (before[-1] + 1 if before else lo, after[0] - 1 if after else hi)


def _signed_distance(mask: np.ndarray, clamp: float) -> np.ndarray:
    """Signed distance to the mask boundary in pixels (negative inside), clamped to ±clamp."""
    import cv2

    m = mask.astype(np.uint8)
    if not m.any():
        return np.full(mask.shape, clamp, np.float32)
    if m.all():
        return np.full(mask.shape, -clamp, np.float32)
    outside = cv2.distanceTransform(1 - m, cv2.DIST_L2, 3)
    inside = cv2.distanceTransform(m, cv2.DIST_L2, 3)
    return np.clip(outside - inside, -clamp, clamp).astype(np.float32)


def merge_weights(frame: int, left_key: int, right_key: int, conf_forward: float, conf_backward: float) -> tuple[float, float]:
    """Weights of the forward (from ``left_key``) and backward (from ``right_key``) passes on ``frame``.

    Each pass is trusted more near its own keyframe and in proportion to its confidence.
    """
    span = max(1, right_key - left_key)
    wf = max(1e-6, conf_forward) * (right_key - frame) / span
    wb = max(1e-6, conf_backward) * (frame - left_key) / span
    return wf, wb


def merge_masks(forward: np.ndarray, backward: np.ndarray, wf: float, wb: float, clamp: float = 64.0) -> np.ndarray:
    """Blend two bool (H, W) masks by signed-distance interpolation: the merged contour lies
    between the two contours, nearer the one with the larger weight. When the two masks mostly
    disagree (IoU < 0.3) the heavier one is returned unchanged. Returns bool (H, W).
    """
    if wf <= 0 and wb <= 0:
        wf = wb = 1.0
    inter = np.logical_and(forward, backward).sum()
    union = np.logical_or(forward, backward).sum()
    if union == 0:
        return np.zeros(forward.shape, bool)
    if inter / union < 0.3:
        # the passes disagree on where the object is: a blend would be neither; trust the stronger
        return (forward if wf >= wb else backward).astype(bool, copy=True)
    sf = _signed_distance(forward, clamp)
    sb = _signed_distance(backward, clamp)
    return ((wf * sf + wb * sb) / (wf + wb)) < 0
