"""Thin straight structures attached to an object (kite lines, paraglider risers, cables, ropes).

Region-based segmentation (and any optical flow on a reduced image) erases structures one or two
pixels wide, yet they carry much of an object's outline. This module handles them apart:

* :func:`split_lines` finds the straight thin parts of a keyframe mask (what a morphological
  opening removes, then ``cv2.HoughLinesP``) and returns the mask without them plus the segments;
* each frame, :func:`track_lines` moves every segment's *attached* end with the object and
  re-fits its direction by searching the angle (and a small sideways shift) that best follows a
  thin-line response of the new frame (:func:`line_response`, a morphological top-hat);
  segments that no longer follow a line are dropped;
* :func:`draw_lines` rasterises the segments back into a mask.

Coordinates are full-resolution pixels (x, y; origin top-left). Segments are ``float32 (N, 4)`` rows
``(x_attached, y_attached, x_free, y_free)``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["split_lines", "line_response", "track_lines", "draw_lines"]


def split_lines(mask: np.ndarray, *, radius: int = 3, min_length: int = 40):
    """Split a ``bool (H, W)`` mask into ``(body bool (H, W), segments float32 (N, 4), width px)``.

    ``segments`` are the straight thin parts (narrower than ``2 * radius + 1`` px, at least
    ``min_length`` px long), oriented so the first point is the end nearer the body.
    """
    m = mask.astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    body = cv2.morphologyEx(m, cv2.MORPH_OPEN, k)
    thin = (m > 0) & (body == 0)
    empty = np.zeros((0, 4), np.float32)
    if thin.sum() < min_length:
        return mask.copy(), empty, 0.0
    segs = cv2.HoughLinesP(thin.astype(np.uint8) * 255, 1, np.pi / 360, threshold=max(20, min_length // 2),
                           minLineLength=min_length, maxLineGap=6)
    if segs is None:
        return mask.copy(), empty, 0.0
    segs = segs.reshape(-1, 4).astype(np.float32)
    # attached end = the one nearer the body
    if body.any():
        dist = cv2.distanceTransform((body == 0).astype(np.uint8), cv2.DIST_L2, 3)
        h, w = body.shape

        def d(x, y):
            return dist[int(np.clip(round(y), 0, h - 1)), int(np.clip(round(x), 0, w - 1))]

        for i, (xa, ya, xb, yb) in enumerate(segs):
            if d(xb, yb) < d(xa, ya):
                segs[i] = (xb, yb, xa, ya)
        segs = merge_collinear(segs, lambda x, y: d(x, y))
    drawn = draw_lines(mask.shape, segs, 3.0)
    covered = thin & drawn
    if covered.sum() < 0.3 * thin.sum():
        return mask.copy(), empty, 0.0
    length = float(np.hypot(segs[:, 2] - segs[:, 0], segs[:, 3] - segs[:, 1]).sum())
    width = float(np.clip(covered.sum() / max(length, 1.0), 1.0, 4.0))
    # the body: the opened mask's components (the thin parts are the lines' business)
    new_body = body > 0
    if not new_body.any():
        return mask.copy(), empty, 0.0
    return new_body, segs, width


def merge_collinear(segs: np.ndarray, dist_to_body, *, max_angle: float = 0.03, max_offset: float = 3.0) -> np.ndarray:
    """Merge Hough pieces of one physical line into one segment.

    ``segs`` are ``float32 (N, 4)`` segments; pieces whose directions differ by less than
    ``max_angle`` rad and whose two ends lie within ``max_offset`` px of the line are one line,
    which runs from its piece end nearest the body (``dist_to_body(x, y) -> px``) to the farthest.
    """
    groups: list[dict] = []
    for xa, ya, xb, yb in np.asarray(segs, np.float64):
        ang = math.atan2(yb - ya, xb - xa)
        off = -xa * math.sin(ang) + ya * math.cos(ang)
        for g in groups:
            dang = (g["ang"] - ang + math.pi / 2) % math.pi - math.pi / 2
            sn, cs = math.sin(g["ang"]), math.cos(g["ang"])
            da = abs(-xa * sn + ya * cs - g["off"])  # both ends near the group's line
            db = abs(-xb * sn + yb * cs - g["off"])
            if abs(dang) < max_angle and max(da, db) < max_offset:
                g["pts"] += [(xa, ya), (xb, yb)]
                break
        else:
            groups.append({"ang": ang, "off": off, "pts": [(xa, ya), (xb, yb)]})
    out = []
    for g in groups:
        pts = g["pts"]
        d = [dist_to_body(x, y) for x, y in pts]
        a = pts[int(np.argmin(d))]
        b = pts[int(np.argmax(d))]
        out.append((a[0], a[1], b[0], b[1]))
    return np.array(out, np.float32).reshape(-1, 4)


def line_response(grey: np.ndarray, *, size: int = 7) -> np.ndarray:
    """Thin-line evidence ``float32 (H, W)`` >= 0: max of black and white top-hats of a uint8 grey image."""
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    bh = cv2.morphologyEx(grey, cv2.MORPH_BLACKHAT, k)
    wh = cv2.morphologyEx(grey, cv2.MORPH_TOPHAT, k)
    return np.maximum(bh, wh).astype(np.float32)


def _sample(resp: np.ndarray, xa, ya, xb, yb, n: int) -> float:
    t = np.linspace(0.0, 1.0, n, dtype=np.float32)
    xs = (xa + (xb - xa) * t).astype(np.float32)
    ys = (ya + (yb - ya) * t).astype(np.float32)
    h, w = resp.shape
    inside = (xs >= 0) & (xs <= w - 1) & (ys >= 0) & (ys <= h - 1)
    if inside.sum() < 0.5 * n:
        return 0.0
    v = cv2.remap(resp, xs[inside][None, :], ys[inside][None, :], cv2.INTER_LINEAR)
    return float(v.mean())


def _to_border(ax, ay, ang, shape) -> float:
    """Length from (ax, ay) along direction ``ang`` to the frame border."""
    h, w = shape
    c, s_ = math.cos(ang), math.sin(ang)
    ts = []
    if c > 1e-6:
        ts.append((w - 1 - ax) / c)
    elif c < -1e-6:
        ts.append(-ax / c)
    if s_ > 1e-6:
        ts.append((h - 1 - ay) / s_)
    elif s_ < -1e-6:
        ts.append(-ay / s_)
    return max(1.0, min(ts)) if ts else 1.0


def line_meta(segs: np.ndarray, shape, *, border: float = 6.0) -> np.ndarray:
    """Per segment ``(keyframe angle rad, 1 if its free end touches the frame border else 0)``."""
    h, w = shape
    out = np.zeros((len(segs), 2), np.float32)
    for i, (xa, ya, xb, yb) in enumerate(segs):
        out[i, 0] = math.atan2(yb - ya, xb - xa)
        out[i, 1] = float(xb < border or yb < border or xb > w - 1 - border or yb > h - 1 - border)
    return out


def track_lines(segs: np.ndarray, resp: np.ndarray, move, *, max_turn: float = 0.04, steps: int = 17,
                shift: float = 3.0, keep: np.ndarray | None = None, min_ratio: float = 0.35,
                meta: np.ndarray | None = None, max_total_turn: float = 0.5):
    """Re-fit segments on a new frame.

    ``move(xy float (N, 2)) -> (N, 2)`` carries the attached ends with the object; ``resp`` is
    :func:`line_response` of the new frame; each segment's direction is searched within
    ``±max_turn`` rad and its attached end ``±shift`` px sideways. ``keep`` is each segment's
    reference response (from the keyframe); a segment scoring below ``min_ratio`` of it is dropped.
    Returns ``(segments float32 (M, 4), their responses float32 (M,), kept indices)``.
    """
    if len(segs) == 0:
        return segs, np.zeros(0, np.float32), np.zeros(0, int)
    att = move(segs[:, :2].astype(np.float64))
    out, scores, idx = [], [], []
    for i, (s, a) in enumerate(zip(segs, att)):
        dx, dy = s[2] - s[0], s[3] - s[1]
        length = math.hypot(dx, dy)
        if length < 1:
            continue
        ang0 = math.atan2(dy, dx)
        nx, ny = -math.sin(ang0), math.cos(ang0)
        n = max(16, int(length / 3))
        best = (-1.0, None)
        for off in np.linspace(-shift, shift, 5):
            ax, ay = a[0] + off * nx, a[1] + off * ny
            for da in np.linspace(-max_turn, max_turn, steps):
                ang = ang0 + da
                if meta is not None:
                    turn = (ang - meta[i, 0] + math.pi) % (2 * math.pi) - math.pi
                    if abs(turn) > max_total_turn:
                        continue
                ln = _to_border(ax, ay, ang, resp.shape) if (meta is not None and meta[i, 1] > 0) else length
                bx, by = ax + ln * math.cos(ang), ay + ln * math.sin(ang)
                v = _sample(resp, ax, ay, bx, by, n)
                if v > best[0]:
                    best = (v, (ax, ay, bx, by))
        if best[1] is None:
            continue
        ref = None if keep is None else float(keep[i])
        if ref is not None and best[0] < min_ratio * ref:
            continue
        out.append(best[1])
        scores.append(best[0])
        idx.append(i)
    if not out:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, int)
    return np.array(out, np.float32), np.array(scores, np.float32), np.array(idx, int)


def draw_lines(shape, segs: np.ndarray, width: float) -> np.ndarray:
    """``bool (H, W)`` with the segments drawn ``width`` px thick (anti-aliasing off)."""
    out = np.zeros(shape, np.uint8)
    t = max(1, int(round(width)))
    for xa, ya, xb, yb in np.asarray(segs, np.float64):
        cv2.line(out, (int(round(xa)), int(round(ya))), (int(round(xb)), int(round(yb))), 1, t, cv2.LINE_8)
    return out.astype(bool)
