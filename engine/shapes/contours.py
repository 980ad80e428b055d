"""Sub-pixel contours of a matte: the 0.5 iso-line, outer boundaries and holes, islands dropped.

The matte is sampled at pixel centres (pixel ``(col, row)`` at ``(col + 0.5, row + 0.5)``) and
the iso-line is traced by marching squares with linear interpolation along cell edges, so a
contour lies where the bilinearly interpolated matte crosses ``level``. A binary mask is first
blurred a little (``binary_sigma``): its iso-line then follows the object's real edge instead of
the pixel staircase (a straight edge stays exactly on the pixel boundary).

Each closed loop is classified by its orientation: outer boundaries run one way, holes the
other. :func:`extract_regions` returns :class:`Region` objects (an outer contour with its holes)
whose area is at least ``min_area`` pixels²; smaller islands and holes are dropped.

Contours are float64 ``(N, 2)`` arrays of (x, y) in the engine's top-left pixel coordinates,
not repeating the first point; outer contours run counter-clockwise on screen (y down: the
inside is on the left when walking), holes clockwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = ["Region", "iso_contours", "extract_regions", "prepare_matte", "edge_width", "polygon_area",
           "resample_closed", "is_binary"]

# marching-squares segments per case: (from_edge, to_edge), inside kept on the left (y down).
# edges: 0 top, 1 right, 2 bottom, 3 left. corners: TL=8, TR=4, BR=2, BL=1.
_T, _R, _B, _L = 0, 1, 2, 3
_CASES: dict[int, list[tuple[int, int]]] = {
    1: [(_B, _L)], 2: [(_R, _B)], 3: [(_R, _L)], 4: [(_T, _R)], 6: [(_T, _B)], 7: [(_T, _L)],
    8: [(_L, _T)], 9: [(_B, _T)], 11: [(_R, _T)], 12: [(_L, _R)], 13: [(_B, _R)], 14: [(_L, _B)],
}
# saddles: (centre inside, centre outside)
_SADDLES: dict[int, tuple[list[tuple[int, int]], list[tuple[int, int]]]] = {
    5: ([(_T, _L), (_B, _R)], [(_T, _R), (_B, _L)]),
    10: ([(_R, _T), (_L, _B)], [(_L, _T), (_R, _B)]),
}


@dataclass
class Region:
    """One connected piece of a matte: its outer contour and its holes (all float64 ``(N, 2)``)."""

    outer: np.ndarray
    holes: list[np.ndarray] = field(default_factory=list)

    @property
    def area(self) -> float:
        return abs(polygon_area(self.outer)) - sum(abs(polygon_area(h)) for h in self.holes)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        x0, y0 = self.outer.min(axis=0)
        x1, y1 = self.outer.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def centroid(self) -> np.ndarray:
        return polygon_centroid(self.outer)


def polygon_area(poly: np.ndarray) -> float:
    """Signed area (shoelace) of a closed polygon ``(N, 2)``; positive = counter-clockwise on screen (y down)."""
    x, y = poly[:, 0], poly[:, 1]
    # y points down, so the usual formula's sign flips: negate to call screen-CCW positive
    return float(-0.5 * (np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)))


def polygon_centroid(poly: np.ndarray) -> np.ndarray:
    x, y = poly[:, 0], poly[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    c = x * yn - xn * y
    a = c.sum() / 2.0
    if abs(a) < 1e-9:
        return poly.mean(axis=0)
    return np.array([((x + xn) * c).sum() / (6 * a), ((y + yn) * c).sum() / (6 * a)])


def is_binary(alpha: np.ndarray) -> bool:
    a = np.asarray(alpha)
    if a.dtype == bool:
        return True
    sample = a[:: max(1, a.shape[0] // 64), :: max(1, a.shape[1] // 64)]
    if np.any((sample > 0.02) & (sample < 0.98)):
        return False
    return not np.any((a > 0.02) & (a < 0.98))


def prepare_matte(alpha: np.ndarray, binary_sigma: float = 0.8) -> np.ndarray:
    """float32 matte in [0, 1]; a binary mask is blurred by ``binary_sigma`` px so its iso-line is smooth."""
    a = np.asarray(alpha)
    if a.ndim == 3:
        a = a[:, :, 0]
    binary = is_binary(a)
    f = a.astype(np.float32) if a.dtype != np.uint8 else a.astype(np.float32) / 255.0
    if binary and binary_sigma > 0:
        f = cv2.GaussianBlur(f, (0, 0), binary_sigma, borderType=cv2.BORDER_CONSTANT)
    return np.clip(f, 0.0, 1.0)


def iso_contours(matte: np.ndarray, level: float = 0.5) -> list[np.ndarray]:
    """Every closed iso-line of ``matte`` (float ``(H, W)``) at ``level``, as ``(N, 2)`` float64 loops.

    The image is padded with zeros, so loops touching the border close along it. Only the
    bounding box of the pixels at or above ``level`` (plus a margin) is traced.
    """
    m = np.asarray(matte, np.float32)
    hot = m >= level
    if not hot.any():
        return []
    rows = np.flatnonzero(hot.any(axis=1))
    cols = np.flatnonzero(hot.any(axis=0))
    r0, r1 = max(0, rows[0] - 2), min(m.shape[0], rows[-1] + 3)
    c0, c1 = max(0, cols[0] - 2), min(m.shape[1], cols[-1] + 3)
    crop = np.zeros((r1 - r0 + 2, c1 - c0 + 2), np.float32)
    crop[1:-1, 1:-1] = m[r0:r1, c0:c1]
    loops = _march(crop, level)
    offset = np.array([c0 - 1 + 0.5, r0 - 1 + 0.5])
    return [lp + offset for lp in loops]


def _march(a: np.ndarray, level: float) -> list[np.ndarray]:
    h, w = a.shape
    v = a >= level
    tl, tr, br, bl = v[:-1, :-1], v[:-1, 1:], v[1:, 1:], v[1:, :-1]
    case = tl.astype(np.uint8) * 8 + tr * 4 + br * 2 + bl * 1
    n_h = h * (w - 1)  # horizontal edges (i, j)-(i, j+1): id i*(w-1)+j
    n_v = (h - 1) * w  # vertical edges (i, j)-(i+1, j): id n_h + i*w + j

    # crossing positions on every edge (only used ones are read)
    with np.errstate(divide="ignore", invalid="ignore"):
        a0, a1 = a[:, :-1], a[:, 1:]
        th = np.clip((level - a0) / (a1 - a0), 0.0, 1.0)
        b0, b1 = a[:-1, :], a[1:, :]
        tv = np.clip((level - b0) / (b1 - b0), 0.0, 1.0)
    th = np.nan_to_num(th, nan=0.5)
    tv = np.nan_to_num(tv, nan=0.5)
    ii, jj = np.mgrid[0:h, 0:w - 1]
    hx = (jj + th).ravel()
    hy = ii.ravel().astype(np.float64)
    ii, jj = np.mgrid[0:h - 1, 0:w]
    vx = jj.ravel().astype(np.float64)
    vy = (ii + tv).ravel()
    px = np.concatenate([hx, vx])
    py = np.concatenate([hy, vy])

    ci, cj = np.nonzero((case != 0) & (case != 15))
    cs = case[ci, cj]

    def edge_ids(i, j, e):
        if e == _T:
            return i * (w - 1) + j
        if e == _B:
            return (i + 1) * (w - 1) + j
        if e == _L:
            return n_h + i * w + j
        return n_h + i * w + j + 1

    froms, tos = [], []
    for c, segs in _CASES.items():
        sel = cs == c
        if not sel.any():
            continue
        i, j = ci[sel], cj[sel]
        for e0, e1 in segs:
            froms.append(edge_ids(i, j, e0))
            tos.append(edge_ids(i, j, e1))
    for c, (joined, apart) in _SADDLES.items():
        sel = cs == c
        if not sel.any():
            continue
        i, j = ci[sel], cj[sel]
        centre = (a[i, j] + a[i, j + 1] + a[i + 1, j] + a[i + 1, j + 1]) / 4.0 >= level
        for mask, segs in ((centre, joined), (~centre, apart)):
            if mask.any():
                for e0, e1 in segs:
                    froms.append(edge_ids(i[mask], j[mask], e0))
                    tos.append(edge_ids(i[mask], j[mask], e1))
    if not froms:
        return []
    f = np.concatenate(froms)
    t = np.concatenate(tos)
    nxt = np.full(n_h + n_v, -1, np.int64)
    nxt[f] = t
    loops: list[np.ndarray] = []
    visited = np.zeros(n_h + n_v, bool)
    nxt_list = nxt.tolist()
    for start in f.tolist():
        if visited[start]:
            continue
        ids = []
        cur = start
        while cur != -1 and not visited[cur]:
            visited[cur] = True
            ids.append(cur)
            cur = nxt_list[cur]
        if len(ids) >= 3 and cur == start:
            idx = np.asarray(ids)
            loops.append(np.stack([px[idx], py[idx]], axis=1))
    return loops


def _dedupe(loop: np.ndarray) -> np.ndarray:
    d = np.linalg.norm(np.diff(np.vstack([loop, loop[:1]]), axis=0), axis=1)
    keep = d > 1e-6
    return loop[keep] if keep.sum() >= 3 else loop


def extract_regions(alpha: np.ndarray, *, level: float = 0.5, min_area: float = 16.0,
                    min_hole_area: float | None = None, binary_sigma: float = 0.8) -> list[Region]:
    """The matte's pieces (largest first): outer contours at least ``min_area`` px², with their holes."""
    m = prepare_matte(alpha, binary_sigma)
    loops = [_dedupe(lp) for lp in iso_contours(m, level)]
    min_hole = min_area if min_hole_area is None else min_hole_area
    outers, holes = [], []
    for lp in loops:
        a = polygon_area(lp)
        if a > 0 and a >= min_area:
            outers.append(lp)
        elif a < 0 and -a >= min_hole:
            holes.append(lp)
    outers.sort(key=lambda p: -polygon_area(p))
    regions = [Region(o) for o in outers]
    for hole in holes:
        probe = hole[0]
        best, best_area = None, None
        for r in regions:
            x0, y0, x1, y1 = r.bbox
            if not (x0 <= probe[0] <= x1 and y0 <= probe[1] <= y1):
                continue
            inside = cv2.pointPolygonTest(r.outer.astype(np.float32).reshape(-1, 1, 2),
                                          (float(probe[0]), float(probe[1])), False)
            if inside >= 0:
                area = polygon_area(r.outer)
                if best is None or area < best_area:
                    best, best_area = r, area
        if best is not None:
            best.holes.append(hole)
    return regions


def resample_closed(poly: np.ndarray, step: float = 1.0, min_points: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``step`` px along a closed polyline, and their arclength positions."""
    closed = np.vstack([poly, poly[:1]])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    total = s[-1]
    if total <= 0:
        return poly.copy(), np.zeros(len(poly))
    n = max(min_points, int(np.ceil(total / step)))
    t = np.linspace(0.0, total, n, endpoint=False)
    x = np.interp(t, s, closed[:, 0])
    y = np.interp(t, s, closed[:, 1])
    return np.stack([x, y], axis=1), t


def edge_width(alpha: np.ndarray, contour: np.ndarray, *, hard_below: float = 2.5) -> float:
    """The matte's edge width in px along ``contour`` (1 / median slope across the edge), 0 when hard.

    A linear ramp from 0 to 1 over ``w`` px has slope ``1/w``; a 1-px anti-aliased edge measures
    about 2 on the pixel grid and counts as hard (below ``hard_below``).
    """
    a = np.asarray(alpha)
    if a.ndim == 3:
        a = a[:, :, 0]
    if a.dtype == bool or is_binary(a):
        return 0.0
    f = a.astype(np.float32)
    gx = cv2.Sobel(f, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(f, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    pts = contour[:: max(1, len(contour) // 400)].astype(np.float32) - 0.5
    mx = pts[:, 0].reshape(1, -1)
    my = pts[:, 1].reshape(1, -1)
    sx = cv2.remap(gx, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).ravel()
    sy = cv2.remap(gy, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).ravel()
    slope = float(np.median(np.hypot(sx, sy)))
    if slope <= 1e-4:
        return 0.0
    w = 1.0 / slope
    return 0.0 if w < hard_below else float(min(w, 256.0))
