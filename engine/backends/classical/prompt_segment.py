"""One-frame segmentation from a prompt (mask, box or clicks), without model weights.

* **mask** — validated and returned as is (score 1); with clicks and/or a box, corrected by them
  (:func:`refine_mask`: GrabCut started from the mask).
* **box** — GrabCut (Rother et al., 2004; ``cv2.grabCut``) initialised with the box, clicks inside
  it used as hard object/background seeds; the component holding the positive clicks (or the
  largest) is kept.
* **clicks only** — the object's extent is unknown, so boxes of growing size centred on the
  positive clicks are tried; for each, GrabCut gives a candidate. A candidate that runs into its
  box's border is cut off (box too small); among the others the one whose outline follows strong
  image edges and whose colours separate best from its surroundings wins, with a mild preference
  for the smallest box where the segment stopped growing. With a nearby frame of the shot, the
  region under the clicks that moves unlike the camera may seed it instead, and long thin lines
  that start at the object and move with it (kite lines, cables) are added.

Images are ``uint8 (H, W, 3)`` RGB; points ``(x, y)`` in pixels (origin top-left); boxes
``(x0, y0, x1, y1)`` pixels, end-exclusive; masks ``bool (H, W)``. Work is done at a reduced size
(longest side ``work_size``) and the result brought back to full size.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from engine.errors import PromptError

__all__ = ["validate_points", "validate_box", "validate_mask", "segment_prompt", "grabcut_box", "refine_mask",
           "with_attached_lines"]


def validate_mask(mask, shape: tuple[int, int]) -> np.ndarray:
    """A usable ``bool (H, W)`` mask, or :class:`PromptError`."""
    m = np.asarray(mask)
    if m.ndim != 2 or m.shape != tuple(shape):
        raise PromptError(f"the mask has shape {m.shape} but the frame is {tuple(shape)}: they must match")
    m = m.astype(bool) if m.dtype != bool else m
    if not m.any():
        raise PromptError("the mask is empty: paint at least a few pixels of the object")
    return m


def validate_points(points, labels, shape: tuple[int, int], *, negatives_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(float64 (N, 2) xy, int (N,) labels)`` checked against the frame, or :class:`PromptError`.

    ``negatives_only``: background clicks alone are allowed (a painted mask says where the object is).
    """
    h, w = shape
    try:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError) as exc:
        raise PromptError(f"points must be a list of (x, y) pixel pairs ({exc})") from None
    if pts.shape[0] == 0:
        raise PromptError("no points were given: click at least once on the object")
    if labels is None:
        lab = np.ones(len(pts), dtype=int)
    else:
        lab = np.asarray(labels).reshape(-1)
        if lab.shape[0] != pts.shape[0]:
            raise PromptError(f"{pts.shape[0]} points but {lab.shape[0]} labels: give one label (1 object, 0 background) per point")
        if not np.isin(lab, (0, 1)).all():
            raise PromptError("point labels must be 1 (object) or 0 (background)")
        lab = lab.astype(int)
    if not np.isfinite(pts).all():
        raise PromptError("a point has a non-finite coordinate")
    bad = (pts[:, 0] < 0) | (pts[:, 0] > w - 1) | (pts[:, 1] < 0) | (pts[:, 1] > h - 1)
    if bad.any():
        x, y = pts[int(np.argmax(bad))]
        raise PromptError(f"the point ({x:g}, {y:g}) is outside the {w}x{h} frame")
    if not negatives_only and not (lab == 1).any():
        raise PromptError("every point is a background click: add at least one click on the object")
    return pts, lab


def validate_box(box, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """An integer box clipped to the frame, or :class:`PromptError` when it is unusable."""
    h, w = shape
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise PromptError("a box must be four numbers (x0, y0, x1, y1) in pixels") from None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise PromptError("a box coordinate is not finite")
    if x1 < x0:
        x0, x1 = x1, x0
    if y1 < y0:
        y0, y1 = y1, y0
    cx0, cy0 = max(0, int(math.floor(x0))), max(0, int(math.floor(y0)))
    cx1, cy1 = min(w, int(math.ceil(x1))), min(h, int(math.ceil(y1)))
    if cx1 - cx0 < 2 or cy1 - cy0 < 2:
        raise PromptError(f"the box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is outside the {w}x{h} frame or thinner than 2 pixels")
    return cx0, cy0, cx1, cy1


def _grabcut_labels(small: np.ndarray, gc: np.ndarray, fg_pts, bg_pts, radius: int, iters: int, *,
                    background_last: bool = False) -> np.ndarray:
    """GrabCut from the initial labels ``gc`` (``uint8 (h, w)`` of ``cv2.GC_*``, changed in place) with
    the clicks drawn as certain object / background discs (the later kind wins where they overlap);
    deterministic. The object pixels, ``bool (h, w)`` (the initial labels when GrabCut cannot run)."""
    order = [(fg_pts, cv2.GC_FGD), (bg_pts, cv2.GC_BGD)]
    for pts, label in (order if background_last else order[::-1]):
        for x, y in pts:
            cv2.circle(gc, (int(round(x)), int(round(y))), radius, label, -1)
    bgm = np.zeros((1, 65), np.float64)
    fgm = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(12345)
    try:
        cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), gc, None, bgm, fgm, iters, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        pass  # a degenerate colour model: the initial labelling stands
    return (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)


def _grabcut(small: np.ndarray, rect, fg_pts, bg_pts, radius: int, iters: int) -> np.ndarray:
    h, w = small.shape[:2]
    gc = np.full((h, w), cv2.GC_BGD, np.uint8)
    x0, y0, x1, y1 = rect
    gc[y0:y1, x0:x1] = cv2.GC_PR_FGD
    return _grabcut_labels(small, gc, fg_pts, bg_pts, radius, iters)


def _component_with(mask: np.ndarray, pts) -> np.ndarray:
    n, lab = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask
    ids = {int(lab[int(round(y)), int(round(x))]) for x, y in pts} - {0}
    if not ids:
        areas = np.bincount(lab.ravel(), minlength=n)
        areas[0] = 0
        ids = {int(np.argmax(areas))}
    return np.isin(lab, list(ids))


def _fill(mask: np.ndarray) -> np.ndarray:
    inv = (~mask).astype(np.uint8)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(inv, connectivity=4)
    h, w = mask.shape
    out = mask.copy()
    area = mask.sum()
    for i in range(1, n):
        x, y, bw, bh, a = stats[i]
        if x > 0 and y > 0 and x + bw < w and y + bh < h and a < 0.05 * area:
            out[lab == i] = True
    return out


def _to_small(image: np.ndarray, work_size: int):
    h, w = image.shape[:2]
    s = min(1.0, work_size / max(h, w))
    if s < 1.0:
        small = cv2.resize(image, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA)
    else:
        small = image
    return small, small.shape[1] / w, small.shape[0] / h


def _upsize(mask_small: np.ndarray, shape) -> np.ndarray:
    h, w = shape
    if mask_small.shape == (h, w):
        return mask_small
    m = cv2.GaussianBlur(mask_small.astype(np.float32), (0, 0), 0.7)
    return cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5


def grabcut_box(image: np.ndarray, box, *, points=None, labels=None, work_size: int = 400,
                iters: int = 5) -> tuple[np.ndarray, float]:
    """Segment the object in ``box`` (clicks optional) → ``(bool (H, W) mask, score in [0, 1])``."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = validate_box(box, (h, w))
    fg_pts, bg_pts = [], []
    if points is not None:
        pts, lab = validate_points(points, labels, (h, w)) if len(points) else (np.zeros((0, 2)), np.zeros(0, int))
        fg_pts = [tuple(p) for p, l in zip(pts, lab) if l == 1]
        bg_pts = [tuple(p) for p, l in zip(pts, lab) if l == 0]
    small, sx, sy = _to_small(image, work_size)
    rect = (int(x0 * sx), int(y0 * sy), max(int(x0 * sx) + 2, int(math.ceil(x1 * sx))), max(int(y0 * sy) + 2, int(math.ceil(y1 * sy))))
    fs = [(x * sx, y * sy) for x, y in fg_pts]
    bs = [(x * sx, y * sy) for x, y in bg_pts]
    m = _grabcut(small, rect, fs, bs, 2, iters)
    if fs:
        m = _component_with(m, fs)
    m = _fill(m)
    if not m.any():
        m = np.zeros(small.shape[:2], bool)
        m[rect[1]:rect[3], rect[0]:rect[2]] = True
        return _upsize(m, (h, w)), 0.1
    score = _score(small, m, rect)[0]
    return _upsize(m, (h, w)), score


def refine_mask(image: np.ndarray, mask: np.ndarray, *, points=None, labels=None, box=None,
                work_size: int = 768, iters: int = 4) -> tuple[np.ndarray, float]:
    """A painted mask corrected by clicks and/or a box → ``(bool (H, W) mask, score in [0, 1])``.

    GrabCut starts from the mask (inside: probably object; a band around it and around a positive
    click outside it, a quarter of the mask's size wide: probably background; farther away, and
    outside the box: background);
    positive clicks are object and negative clicks background for certain. Only the changes under a
    click are taken, so the painting stays as it was elsewhere: a negative click carves the part of
    the mask that looks like the background it was put on, a positive click outside the mask adds
    the region of object colour around it (within a quarter of the mask's size: click again for
    more), and a box cuts what was painted beyond it. The work is
    done on the part of the frame GrabCut may change, at full resolution up to ``work_size`` pixels.
    """
    h, w = image.shape[:2]
    m = validate_mask(mask, (h, w))
    fg_pts, bg_pts = [], []
    if points is not None and len(points):
        pts, lab = validate_points(points, labels, (h, w), negatives_only=True)
        fg_pts = [tuple(p) for p, l in zip(pts, lab) if l == 1]
        bg_pts = [tuple(p) for p, l in zip(pts, lab) if l == 0]
    bx = validate_box(box, (h, w)) if box is not None else None

    def painted(x, y):
        return bool(m[min(h - 1, int(round(y))), min(w - 1, int(round(x)))])

    if bx is None and all(painted(x, y) for x, y in fg_pts) and not any(painted(x, y) for x, y in bg_pts):
        return m.copy(), 1.0  # every click agrees with the painting: nothing to correct
    outside = [(x, y) for x, y in fg_pts if not painted(x, y)]  # positive clicks that may add a region
    # the part of the frame that may change: the mask and a band around it, and around positive clicks
    ys, xs = np.nonzero(m)
    size = max(8.0, float(max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)))
    grow = 0.25 * size  # the band's width: how far from the painting or a click a change may reach
    reach = int(grow) + 2
    X0, Y0, X1, Y1 = int(xs.min()) - reach, int(ys.min()) - reach, int(xs.max()) + 1 + reach, int(ys.max()) + 1 + reach
    for x, y in outside:
        X0, Y0 = min(X0, int(x) - reach), min(Y0, int(y) - reach)
        X1, Y1 = max(X1, int(x) + 1 + reach), max(Y1, int(y) + 1 + reach)
    X0, Y0, X1, Y1 = max(0, X0), max(0, Y0), min(w, X1), min(h, Y1)
    crop = np.ascontiguousarray(image[Y0:Y1, X0:X1])
    mc = m[Y0:Y1, X0:X1]
    small, sx, sy = _to_small(crop, work_size)
    hs, ws = small.shape[:2]
    ms = mc if (hs, ws) == mc.shape else cv2.resize(mc.astype(np.uint8), (ws, hs), interpolation=cv2.INTER_NEAREST).astype(bool)
    fs = [((x - X0) * sx, (y - Y0) * sy) for x, y in fg_pts]
    bs = [((x - X0) * sx, (y - Y0) * sy) for x, y in bg_pts]
    reach_s = [((x - X0) * sx, (y - Y0) * sy) for x, y in outside]
    grow_s = grow * sx
    band = max(3, int(grow_s)) | 1
    gc = np.full((hs, ws), cv2.GC_BGD, np.uint8)
    gc[cv2.dilate(ms.astype(np.uint8), np.ones((band, band), np.uint8)).astype(bool)] = cv2.GC_PR_BGD
    for x, y in reach_s:  # the region around a positive click outside the mask may join
        cv2.circle(gc, (int(round(x)), int(round(y))), int(grow_s), cv2.GC_PR_BGD, -1)
    gc[ms] = cv2.GC_PR_FGD
    if bx is not None:
        x0, y0, x1, y1 = bx
        inside = np.zeros((hs, ws), bool)
        inside[max(0, int((y0 - Y0) * sy)):max(0, math.ceil((y1 - Y0) * sy)),
               max(0, int((x0 - X0) * sx)):max(0, math.ceil((x1 - X0) * sx))] = True
        gc[~inside] = cv2.GC_BGD
        gc[inside & (gc == cv2.GC_BGD)] = cv2.GC_PR_BGD
    rad = max(2, int(0.004 * math.hypot(hs, ws)))  # a click marks a few pixels for certain, not a disc
    seg = _grabcut_labels(small, gc, fs, bs, rad, iters)
    # only the changes a click asked for: the connected parts of (GrabCut's answer XOR the painting)
    # under a click; the rest of the painting stays as painted
    change = seg ^ ms
    _, lab_ = cv2.connectedComponents(change.astype(np.uint8), connectivity=8)
    at = np.zeros((hs, ws), np.uint8)
    for x, y in fs + bs:
        cv2.circle(at, (int(round(x)), int(round(y))), rad, 1, -1)
    keep = np.unique(lab_[at.astype(bool) & change])
    kept = np.isin(lab_, keep[keep > 0])
    seg = ms ^ kept
    score = _score(small, seg, (0, 0, ws, hs))[0] if seg.any() else 0.0
    # applied to the painting at full size: what no click changed keeps its painted pixels
    full = m.copy()
    if kept.any():
        part = full[Y0:Y1, X0:X1]
        part |= _upsize(kept & seg, part.shape)
        part &= ~_upsize(kept & ~seg, part.shape)
    if bx is not None:
        x0, y0, x1, y1 = bx
        boxed = np.zeros_like(full)
        boxed[y0:y1, x0:x1] = full[y0:y1, x0:x1]
        full = boxed
    if not full.any():
        what = "the box leaves nothing of the" if bx is not None and not bs else "the clicks remove the whole"
        raise PromptError(f"{what} painted mask",
                          hint="Put negative clicks on the background only, draw the box around the object, "
                               "or paint the mask again")
    return full, score


def _score(small: np.ndarray, m: np.ndarray, rect) -> tuple[float, float]:
    """(quality in [0, 1], border-touch fraction) of a candidate segment inside ``rect``."""
    x0, y0, x1, y1 = rect
    h, w = m.shape
    b = m ^ cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    nb = int(b.sum())
    if nb == 0:
        return 0.0, 1.0
    ys, xs = np.nonzero(b)
    on_rect = ((xs <= x0 + 1) & (x0 > 0)) | ((xs >= x1 - 2) & (x1 < w)) | ((ys <= y0 + 1) & (y0 > 0)) | ((ys >= y1 - 2) & (y1 < h))
    touch = float(on_rect.mean())
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gm = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    edge = float(gm[b].mean() / (gm.mean() + 1e-3))
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2Lab).astype(np.float32)
    ring = cv2.dilate(m.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool) & ~m
    if ring.any():
        sep = float(np.linalg.norm(lab[m].mean(0) - lab[ring].mean(0)) / 40.0)
    else:
        sep = 0.0
    q = (1.0 - math.exp(-0.5 * edge)) * 0.6 + min(1.0, sep) * 0.4
    return float(np.clip(q * (1.0 - touch), 0.0, 1.0)), touch


def segment_points(image: np.ndarray, points, labels=None, *, work_size: int = 320) -> tuple[np.ndarray, float]:
    """Segment the object under positive clicks (negative clicks excluded) → ``(mask, score)``.

    Boxes of growing size around the clicks are tried on a reduced copy of the frame (longest side
    ``work_size``); each is segmented by GrabCut and scored by :func:`_score`.
    """
    h, w = image.shape[:2]
    pts, lab = validate_points(points, labels, (h, w))
    small, sx, sy = _to_small(image, work_size)
    hs, ws = small.shape[:2]
    fg = [(x * sx, y * sy) for (x, y), l in zip(pts, lab) if l == 1]
    bg = [(x * sx, y * sy) for (x, y), l in zip(pts, lab) if l == 0]
    fx = [p[0] for p in fg]
    fy = [p[1] for p in fg]
    diag = math.hypot(hs, ws)
    best = None
    prev_area = None
    for k, frac in enumerate((0.08, 0.13, 0.2, 0.3, 0.45, 0.65)):
        r = frac * diag * 0.5
        rect = (max(0, int(min(fx) - r)), max(0, int(min(fy) - r)), min(ws, int(max(fx) + r) + 1), min(hs, int(max(fy) + r) + 1))
        m = _grabcut(small, rect, fg, bg, max(1, int(0.01 * diag)), 3)
        m = _component_with(m, fg)
        m = _fill(m)
        if not m.any():
            continue
        q, touch = _score(small, m, rect)
        area = float(m.sum())
        stable = prev_area is not None and area < 1.6 * prev_area
        prev_area = area
        if touch > 0.25:
            continue
        q = q * (1.1 if stable else 1.0) * (1.0 - 0.04 * k)
        if best is None or q > best[0]:
            best = (q, m)
    if best is None:
        # fall back to a small disk around the clicks
        m = np.zeros((hs, ws), bool)
        for x, y in fg:
            cv2.circle(m.view(np.uint8), (int(round(x)), int(round(y))), max(2, int(0.03 * diag)), 1, -1)
        return _upsize(m, (h, w)), 0.05
    return _upsize(best[1], (h, w)), float(min(1.0, best[0]))


def motion_mask(image: np.ndarray, other: np.ndarray, *, work_size: int = 427) -> tuple[np.ndarray, np.ndarray, float]:
    """Where ``image`` moves unlike its dominant (camera) motion towards ``other`` (a nearby frame).

    Returns ``(moving bool (h, w), residual float32 (h, w) in pixels, scale)`` at a reduced size
    (``scale`` = reduced / full). The dominant motion is an affine model fitted with RANSAC to DIS flow.
    """
    from engine.ops.flow import dis_flow

    small, sx, _ = _to_small(image, work_size)
    osmall, _, _ = _to_small(np.asarray(other), work_size)
    if osmall.shape != small.shape:
        raise PromptError("the motion reference frame must have the same size as the prompted frame")
    flow = dis_flow(small, osmall, preset="medium")
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[2:h:6, 2:w:6]
    ys, xs = ys.ravel(), xs.ravel()
    src = np.stack([xs, ys], 1).astype(np.float32)
    dst = src + flow[ys, xs]
    a, inl = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=1.0, maxIters=500)
    if a is None:
        return np.zeros((h, w), bool), np.zeros((h, w), np.float32), sx
    gx = np.arange(w, dtype=np.float32)[None, :]
    gy = np.arange(h, dtype=np.float32)[:, None]
    bu = a[0, 0] * gx + a[0, 1] * gy + a[0, 2] - gx
    bv = a[1, 0] * gx + a[1, 1] * gy + a[1, 2] - gy
    r = np.sqrt((flow[..., 0] - bu) ** 2 + (flow[..., 1] - bv) ** 2).astype(np.float32)
    noise = float(np.percentile(r, 60))
    moving = r > max(1.0, 3.0 * noise)
    moving = cv2.morphologyEx(moving.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)
    return moving, r, sx


def _motion_candidate(small, r, moving, fg, bg):
    hs, ws = small.shape[:2]
    n, cc = cv2.connectedComponents(moving.astype(np.uint8), connectivity=8)
    ids = set()
    rad = max(2, int(0.02 * math.hypot(hs, ws)))
    for x, y in fg:
        xi, yi = int(round(x)), int(round(y))
        win = cc[max(0, yi - rad) : yi + rad + 1, max(0, xi - rad) : xi + rad + 1]
        vals = win[win > 0]
        if vals.size:
            ids.add(int(np.bincount(vals).argmax()))
    if not ids:
        return None
    m = np.isin(cc, list(ids))
    frac = m.mean()
    if frac < 0.0005 or frac > 0.6:
        return None
    gc = np.full((hs, ws), cv2.GC_BGD, np.uint8)
    k = max(3, int(0.03 * math.hypot(hs, ws))) | 1
    near = cv2.dilate(m.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)
    gc[near] = cv2.GC_PR_BGD
    gc[m] = cv2.GC_PR_FGD
    seg = _grabcut_labels(small, gc, fg, bg, 2, 4, background_last=True)
    seg = _component_with(seg, fg)
    seg = _fill(seg)
    if not seg.any():
        return None
    ring = cv2.dilate(seg.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool) & ~seg
    contrast = float(np.median(r[seg]) - np.median(r[ring])) if ring.any() else 0.0
    return seg, contrast


def motion_residual(image: np.ndarray, others, *, work_size: int = 427) -> tuple[np.ndarray, float]:
    """Normalised residual motion ``float32 (h, w)`` of ``image`` against one or several nearby frames.

    Each frame's residual (:func:`motion_mask`) is divided by its noise level (60th percentile, at
    least 0.5 px); several frames are combined by their median (3 or more) or mean, which keeps what
    moves unlike the camera in all of them and drops one-frame ghosts and flow failures.
    Returns ``(residual, scale)`` at the reduced size (``scale`` = reduced / full).
    """
    rr = []
    sx = 1.0
    for o in others:
        _, r, sx = motion_mask(image, o, work_size=work_size)
        rr.append(r / max(1.0 / 3.0, float(np.percentile(r, 60))))
    st = np.stack(rr)
    return (np.median(st, axis=0) if len(rr) > 2 else st.mean(axis=0)).astype(np.float32), sx


def segment_points_motion(image: np.ndarray, other, points, labels=None, *, work_size: int = 427):
    """Clicks + nearby frame(s): the moving region under the clicks, refined by GrabCut; or None.

    ``other`` is one frame or a list of frames of the same shot (e.g. the next five). The residual
    motion (:func:`motion_residual`) is thresholded at three times its noise; when that leaves only a
    speck under the click, relative to how the clicked point itself moves.
    """
    h, w = image.shape[:2]
    pts, lab = validate_points(points, labels, (h, w))
    others = [other] if isinstance(other, np.ndarray) else list(other)
    r, _ = motion_residual(image, others, work_size=work_size)
    small, sx, sy = _to_small(image, work_size)
    hs, ws = small.shape[:2]
    fg = [(x * sx, y * sy) for (x, y), l in zip(pts, lab) if l == 1]
    bg = [(x * sx, y * sy) for (x, y), l in zip(pts, lab) if l == 0]
    rad0 = max(2, int(0.015 * math.hypot(hs, ws)))
    rc = []
    for x, y in fg:
        xi, yi = int(round(x)), int(round(y))
        rc.append(float(np.median(r[max(0, yi - rad0) : yi + rad0 + 1, max(0, xi - rad0) : xi + rad0 + 1])))
    r_click = float(np.median(rc)) if rc else 0.0
    best = None
    for thr in (3.0, max(2.0, 0.4 * r_click)):  # (3x, 2x the noise; at least 1 px, 0.67 px raw)
        moving = cv2.morphologyEx((r > thr).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)
        got = _motion_candidate(small, r, moving, fg, bg)
        if got is not None and got[0].mean() >= 0.002:
            best = got
            break
    if best is None:
        return None
    return _upsize(best[0], (h, w)), 0.6


def with_attached_lines(image: np.ndarray, other: np.ndarray, seed: np.ndarray, *,
                        work_size: int = 960) -> np.ndarray:
    """``seed`` plus the long thin straight lines that start at it and move with it from ``image`` to
    ``other`` (kite lines, cables: :func:`.lines.find_attached_lines`, :func:`.lines.lines_moving_with`).

    The search runs on copies reduced to longest side ``work_size`` (the thin-line response is tuned
    to lines a pixel or two wide there, and the cost stays that of a 960-px frame on 4K or 8K plates);
    the lines are drawn back at full size, 2 px wide at the working size. ``bool (H, W)``."""
    from engine.backends.classical.lines import draw_lines, find_attached_lines, lines_moving_with

    h, w = seed.shape
    img_s, _, _ = _to_small(image, work_size)
    oth_s, _, _ = _to_small(other, work_size)
    seed_s = seed if img_s.shape[:2] == seed.shape else cv2.resize(
        seed.astype(np.uint8), (img_s.shape[1], img_s.shape[0]), interpolation=cv2.INTER_NEAREST).astype(bool)
    if not seed_s.any():
        return seed
    segs = find_attached_lines(img_s, seed_s)
    if len(segs):
        segs = lines_moving_with(img_s, oth_s, seed_s, segs)
    if not len(segs):
        return seed
    fx, fy = w / img_s.shape[1], h / img_s.shape[0]
    full = ((segs + 0.5) * np.array([fx, fy, fx, fy], np.float32) - 0.5).astype(np.float32)
    return seed | draw_lines(seed.shape, full, 2.0 * max(fx, fy))


def segment_prompt(image: np.ndarray, *, points=None, labels=None, box=None, mask=None,
                   motion_ref: np.ndarray | None = None, attached_lines: bool = True) -> tuple[np.ndarray, float]:
    """Prompt → ``(bool (H, W) mask, score in [0, 1])`` on one ``uint8 (H, W, 3)`` RGB frame.

    A ``mask`` alone is taken as painted; with clicks and/or a box it is corrected by them
    (:func:`refine_mask`); otherwise ``box`` and/or ``points`` are segmented.
    ``motion_ref``: optionally a nearby frame of the same shot (uint8 RGB, same size), or a list of
    them (e.g. the next five: steadier); with clicks only, the region under the clicks that moves
    unlike the camera seeds the segmentation, and (``attached_lines``) long thin lines that start at
    the object and move with it towards the first reference are added (:func:`with_attached_lines`).
    Raises :class:`engine.errors.PromptError` with a sentence on an unusable prompt.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] < 3 or img.dtype != np.uint8:
        raise PromptError(f"the frame must be 8-bit RGB (H, W, 3); got dtype {img.dtype}, shape {img.shape}")
    img = np.ascontiguousarray(img[:, :, :3])
    shape = img.shape[:2]
    if mask is not None:
        if box is not None or points is not None:
            return refine_mask(img, mask, points=points, labels=labels, box=box)
        return validate_mask(mask, shape), 1.0
    if box is not None:
        return grabcut_box(img, box, points=points, labels=labels)
    if points is not None:
        checked = []  # motion references are checked before any work
        if motion_ref is not None:
            refs = [motion_ref] if isinstance(motion_ref, np.ndarray) else list(motion_ref)
            for ref in refs:
                ref = np.asarray(ref)
                if ref.ndim != 3 or ref.shape[:2] != shape or ref.dtype != np.uint8:
                    raise PromptError(f"a motion reference frame must be 8-bit RGB of the frame's size {shape}; got {ref.dtype} {ref.shape}")
                checked.append(np.ascontiguousarray(ref[:, :, :3]))
        static = segment_points(img, points, labels)
        if not checked:
            return static
        got = segment_points_motion(img, checked, points, labels)
        seed = static
        if got is not None:
            a_m = float(got[0].mean())
            a_s = float(static[0].mean())
            # the moving region is trusted unless it is a speck or sprawls far beyond the static
            # candidate (smoke, spray and reflections move with objects)
            if a_m >= 0.002 and a_m <= 3.5 * max(a_s, 0.002):
                seed = got
        if attached_lines:
            seed = (with_attached_lines(img, checked[0], seed[0]), seed[1])
        return seed
    raise PromptError("no prompt was given: pass points, a box or a mask")
