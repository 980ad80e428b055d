"""Object-relative colour classifier: a bilateral grid of foreground/background evidence.

:class:`ObjectColourGrid` accumulates labelled pixels into a 5-D grid over
``(v, u, L, a, b)`` where ``(u, v)`` is the pixel position relative to the object's box — centre at 0,
half the box's longest side = 1 — and ``L, a, b`` its CIE Lab colour. Each cell holds soft counts of
object and background pixels; the grid is smoothed, and a query pixel reads the object log-odds of
its cell. This is a set of *local* colour models (what is object-coloured next to the head need not
be next to the feet), cheap to train (one ``bincount``) and to query (one gather), in the spirit of
bilateral-space video segmentation (Märki et al., CVPR 2016) with positions normalised to the
object instead of the frame.

The keyframe's evidence is kept apart from the evidence added while tracking (``memory``), which
decays, so a few bad frames cannot overwrite what the user gave.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

__all__ = ["GridSpec", "ObjectColourGrid", "grid_coords"]


@dataclass(frozen=True)
class GridSpec:
    """Grid resolution: ``pos_cells`` cells over ``[-pos_range, pos_range]`` in u and v, ``l_bins``
    over L in [0, 100], ``ab_bins`` over a and b in ``[-ab_range, ab_range]``."""

    pos_cells: int = 10
    pos_range: float = 2.0
    l_bins: int = 16
    ab_bins: int = 16
    ab_range: float = 64.0

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        return (self.pos_cells, self.pos_cells, self.l_bins, self.ab_bins, self.ab_bins)


def grid_coords(lab: np.ndarray, box: tuple[float, float, float, float], spec: GridSpec) -> np.ndarray:
    """Flat cell index ``int64 (H, W)`` of each pixel of a crop.

    ``lab``: ``float32 (H, W, 3)`` Lab of the crop; ``box``: the object's box ``(x0, y0, x1, y1)`` in
    the crop's pixel coordinates (floats allowed).
    """
    h, w = lab.shape[:2]
    x0, y0, x1, y1 = box
    cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    half = max(0.5 * max(x1 - x0, y1 - y0), 1.0)
    n = spec.pos_cells
    k = n / (2.0 * spec.pos_range)
    u = np.clip(((np.arange(w) - cx) / half + spec.pos_range) * k, 0, n - 1).astype(np.int64)
    v = np.clip(((np.arange(h) - cy) / half + spec.pos_range) * k, 0, n - 1).astype(np.int64)
    li = np.clip(lab[..., 0] * (spec.l_bins / 100.0), 0, spec.l_bins - 1).astype(np.int64)
    ka = spec.ab_bins / (2.0 * spec.ab_range)
    ai = np.clip((lab[..., 1] + spec.ab_range) * ka, 0, spec.ab_bins - 1).astype(np.int64)
    bi = np.clip((lab[..., 2] + spec.ab_range) * ka, 0, spec.ab_bins - 1).astype(np.int64)
    L, A, B = spec.l_bins, spec.ab_bins, spec.ab_bins
    return (((v[:, None] * n + u[None, :]) * L + li) * A + ai) * B + bi


class ObjectColourGrid:
    """Foreground/background evidence in object-relative bilateral space (see the module docstring).

    State is two float32 grids (keyframe, memory) of 2 channels each; deep-copyable.
    """

    def __init__(self, spec: GridSpec | None = None, sigma: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)):
        self.spec = spec or GridSpec()
        self.sigma = tuple(sigma)
        size = int(np.prod(self.spec.shape))
        self.key = np.zeros((2, size), np.float32)
        self.memory = np.zeros((2, size), np.float32)
        self._table: np.ndarray | None = None

    @staticmethod
    def _counts(idx: np.ndarray, fg: np.ndarray, bg: np.ndarray, size: int) -> np.ndarray:
        out = np.empty((2, size), np.float32)
        out[0] = np.bincount(idx[fg], minlength=size)
        out[1] = np.bincount(idx[bg], minlength=size)
        return out

    def set_keyframe(self, idx: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> None:
        """Keyframe evidence from flat cell indices ``idx`` and bool masks ``fg``/``bg`` (same shape)."""
        size = self.key.shape[1]
        c = self._counts(idx, fg, bg, size)
        # balance the classes so neither dominates by sheer pixel count
        nf, nb = c[0].sum(), c[1].sum()
        if nf > 0 and nb > 0:
            c[0] *= 0.5 * (nf + nb) / nf
            c[1] *= 0.5 * (nf + nb) / nb
        self.key = c
        self._table = None

    def add_memory(self, idx: np.ndarray, fg: np.ndarray, bg: np.ndarray, *, decay: float = 0.7,
                   weight: float = 1.0) -> None:
        """Add tracked evidence (decaying older memory by ``decay``), weighted against the keyframe."""
        size = self.key.shape[1]
        c = self._counts(idx, fg, bg, size)
        nf, nb = c[0].sum(), c[1].sum()
        kn = self.key.sum() * 0.5
        if nf > 0:
            c[0] *= weight * kn / nf
        if nb > 0:
            c[1] *= weight * kn / nb
        self.memory = decay * self.memory + (1.0 - decay) * c
        self._table = None

    def table(self, memory_weight: float = 1.0) -> np.ndarray:
        """Object log-odds per cell, ``float32 (cells,)`` (cached until the evidence changes)."""
        if self._table is None:
            tot = self.key + memory_weight * self.memory
            shp = self.spec.shape
            f = gaussian_filter(tot[0].reshape(shp), self.sigma, mode="constant", truncate=2.0).ravel()
            b = gaussian_filter(tot[1].reshape(shp), self.sigma, mode="constant", truncate=2.0).ravel()
            n = f + b
            # shrink towards 0 where there is little evidence
            conf = n / (n + 2.0)
            self._table = (np.log((f + 0.5) / (b + 0.5)) * conf).astype(np.float32)
        return self._table

    def logit(self, idx: np.ndarray, clip: float = 5.0) -> np.ndarray:
        """Object log-odds ``float32`` for cell indices ``idx`` (any shape), clipped to ±``clip``."""
        return np.clip(self.table()[idx], -clip, clip)


# --- patch nearest-neighbour classifier ------------------------------------------------------


def patch_features(lab: np.ndarray, *, radius: int = 4, blur: float = 1.0) -> np.ndarray:
    """Small-patch descriptor of every pixel: ``float32 (H, W, 15)``.

    The Lab colour (blurred by ``blur`` px, divided by 10 so a unit is a just-visible difference)
    at the pixel and at its four neighbours ``radius`` pixels away (left, right, up, down; edges
    replicated). ``lab``: ``float32 (H, W, 3)`` CIE Lab.
    """
    import cv2

    b = cv2.GaussianBlur(lab, (0, 0), blur) * 0.1 if blur > 0 else lab * 0.1
    r = int(radius)
    p = cv2.copyMakeBorder(b, r, r, r, r, cv2.BORDER_REPLICATE)
    h, w = lab.shape[:2]
    parts = [b, p[r : r + h, 0:w], p[r : r + h, 2 * r : 2 * r + w], p[0:h, r : r + w], p[2 * r : 2 * r + h, r : r + w]]
    return np.concatenate(parts, axis=2).astype(np.float32)


def _rel_pos(shape, box) -> tuple[np.ndarray, np.ndarray]:
    h, w = shape
    x0, y0, x1, y1 = box
    cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    half = max(0.5 * max(x1 - x0, y1 - y0), 1.0)
    return (np.arange(w, dtype=np.float32) - cx) / half, (np.arange(h, dtype=np.float32) - cy) / half


class PatchKNN:
    """Object/background classifier by nearest neighbours among labelled keyframe patches.

    Training (:meth:`fit`) keeps a subsample of the keyframe crop's pixels as points
    ``(PCA(patch descriptor), pos_weight * relative position)`` in a k-d tree, labelled object or
    background. A query pixel's object probability is the distance-weighted vote of its ``k``
    nearest points (classes balanced), returned as log-odds. This is non-local label transfer in
    the spirit of nearest-neighbour-field mask transfer (JumpCut, Fan et al. 2015): texture and
    colour of small patches, anchored to what the user gave, so it does not drift.
    """

    def __init__(self, *, dims: int = 8, pos_weight: float = 2.5, k: int = 8, max_points: int = 24000,
                 radius: int = 4):
        self.dims = dims
        self.pos_weight = pos_weight
        self.k = k
        self.max_points = max_points
        self.radius = radius
        self.mean: np.ndarray | None = None
        self.basis: np.ndarray | None = None
        self.points: np.ndarray | None = None
        self.labels: np.ndarray | None = None
        self._tree = None
        self.key_points: np.ndarray | None = None
        self.key_labels: np.ndarray | None = None

    def __deepcopy__(self, memo):
        new = PatchKNN(dims=self.dims, pos_weight=self.pos_weight, k=self.k, max_points=self.max_points,
                       radius=self.radius)
        new.mean, new.basis, new.points, new.labels = self.mean, self.basis, self.points, self.labels
        new.key_points, new.key_labels = self.key_points, self.key_labels
        new._tree = self._tree  # read-only after fit: safe to share
        return new

    def _embed(self, feats: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        z = (feats - self.mean) @ self.basis
        return np.concatenate([z, self.pos_weight * u[:, None], self.pos_weight * v[:, None]], axis=1).astype(np.float32)

    def _sample(self, feats, fg, bg, box, seed, n_max):
        h, w = fg.shape
        ux, vy = _rel_pos((h, w), box)
        rng = np.random.default_rng(seed)
        fi = np.flatnonzero(fg.ravel())
        bi = np.flatnonzero(bg.ravel())
        half = n_max // 2
        if fi.size > half:
            fi = rng.choice(fi, half, replace=False)
        if bi.size > half:
            bi = rng.choice(bi, half, replace=False)
        idx = np.concatenate([fi, bi])
        ys, xs = np.divmod(idx, w)
        f = feats.reshape(-1, feats.shape[2])[idx]
        nf, nb = max(fi.size, 1), max(bi.size, 1)
        labels = np.concatenate([np.full(fi.size, 0.5 * (nf + nb) / nf, np.float32),
                                 np.full(bi.size, -0.5 * (nf + nb) / nb, np.float32)])
        return f, ux[xs], vy[ys], labels

    def set_memory(self, lab: np.ndarray, fg: np.ndarray, bg: np.ndarray, box, *, weight: float = 1.0,
                   feats: np.ndarray | None = None, seed: int = 1) -> None:
        """Replace the tracked memory by a newly segmented crop (keyframe points are kept)."""
        from scipy.spatial import cKDTree

        if self.key_points is None or not fg.any() or not bg.any():
            return
        if feats is None:
            feats = patch_features(lab, radius=self.radius)
        f, u, v, labels = self._sample(feats, fg, bg, box, seed, self.max_points // 2)
        pts = self._embed(f, u, v)
        self.points = np.concatenate([self.key_points, pts])
        self.labels = np.concatenate([self.key_labels, weight * labels])
        self._tree = cKDTree(self.points, leafsize=24, balanced_tree=False, compact_nodes=False)

    def fit(self, lab: np.ndarray, fg: np.ndarray, bg: np.ndarray, box, *, seed: int = 0) -> None:
        """Train on a crop: ``lab`` ``float32 (H, W, 3)``, bool masks ``fg``/``bg``, object ``box`` in crop px."""
        from scipy.spatial import cKDTree

        feats = patch_features(lab, radius=self.radius)
        f, u, v, labels = self._sample(feats, fg, bg, box, seed, self.max_points)
        self.mean = f.mean(axis=0)
        c = np.cov((f - self.mean).T)
        evals, evecs = np.linalg.eigh(c)
        order = np.argsort(evals)[::-1][: self.dims]
        self.basis = evecs[:, order].astype(np.float32)
        self.key_points = self.points = self._embed(f, u, v)
        self.key_labels = self.labels = labels
        self._tree = cKDTree(self.points, leafsize=24, balanced_tree=False, compact_nodes=False)

    def logit(self, lab: np.ndarray, box, where: np.ndarray, *, clip: float = 4.0, stride: int = 2,
              feats: np.ndarray | None = None) -> np.ndarray:
        """Object log-odds ``float32 (H, W)`` at the pixels ``where`` (bool (H, W)); 0 elsewhere.

        Pixels are queried on a ``stride`` grid and the votes spread to their neighbours.
        """
        import cv2

        h, w = where.shape
        out = np.zeros((h, w), np.float32)
        if self._tree is None or not where.any():
            return out
        if feats is None:
            feats = patch_features(lab, radius=self.radius)
        ux, vy = _rel_pos((h, w), box)
        sub = np.zeros_like(where)
        sub[::stride, ::stride] = where[::stride, ::stride]
        ys, xs = np.nonzero(sub)
        if ys.size == 0:
            return out
        q = self._embed(feats[ys, xs], ux[xs], vy[ys])
        d, i = self._tree.query(q, k=self.k, eps=1.0)
        d = np.atleast_2d(d)
        i = np.atleast_2d(i)
        hb = np.maximum(np.median(d[:, :1]), 0.3)
        wts = np.exp(-(d / hb) ** 2)
        lab_ = self.labels[np.minimum(i, self.labels.size - 1)]
        lab_ = np.where(i >= self.labels.size, 0.0, lab_)
        pos = (wts * np.maximum(lab_, 0)).sum(1)
        neg = (wts * np.maximum(-lab_, 0)).sum(1)
        val = np.clip(np.log((pos + 0.05) / (neg + 0.05)), -clip, clip).astype(np.float32)
        grid = np.zeros((h, w), np.float32)
        cnt = np.zeros((h, w), np.float32)
        grid[ys, xs] = val
        cnt[ys, xs] = 1.0
        if stride > 1:
            k = 2 * stride - 1
            grid = cv2.boxFilter(grid, -1, (k, k), normalize=False)
            cnt = cv2.boxFilter(cnt, -1, (k, k), normalize=False)
        out = np.where((cnt > 0) & where, grid / np.maximum(cnt, 1e-6), 0.0).astype(np.float32)
        return out
