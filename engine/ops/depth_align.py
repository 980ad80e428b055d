"""Scale / shift alignment of depth maps: fitting, applying, robustly.

Monocular and multi-view depth is defined up to an unknown **scale** (geometric models such as
Depth Anything 3 any-view: shape is right, units are not) or an unknown **scale and shift**
(affine-invariant models, heuristics). Aligning one prediction to another (the previous
chunk of a video, the ground truth of an evaluation) means finding ``s`` (and ``t``) with
``s * pred + t ≈ target`` over the pixels both hold.

* :func:`fit` — weighted least squares in ``depth`` or ``inverse`` (disparity) space, with
  iteratively re-weighted trimming of outliers (residuals beyond ``outlier_k`` robust sigmas,
  MAD-based) so occlusions and moving objects do not bias the fit;
* :func:`apply` — the fitted transform applied to a depth map (in the space it was fitted);
* :class:`Alignment` — the result: ``scale``, ``shift``, ``space``, inlier count, residual.

Pure numpy; arrays of any shape (the pixels of one or several frames).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Alignment", "fit", "apply", "MODES", "SPACES"]

MODES = ("scale", "scale_shift", "median")
SPACES = ("depth", "inverse")


@dataclass(frozen=True)
class Alignment:
    """``target ≈ scale * pred + shift`` in ``space`` (``depth`` or ``inverse`` = 1/depth)."""

    scale: float = 1.0
    shift: float = 0.0
    space: str = "depth"
    mode: str = "scale"
    inliers: int = 0
    residual: float = 0.0  # weighted RMS residual of the inliers, in the units of ``space``

    def to_dict(self) -> dict:
        return {"scale": self.scale, "shift": self.shift, "space": self.space, "mode": self.mode,
                "inliers": self.inliers, "residual": self.residual}


def _values(a: np.ndarray, space: str) -> np.ndarray:
    a = np.asarray(a, np.float64)
    if space == "inverse":
        with np.errstate(divide="ignore"):
            return np.where(a > 0, 1.0 / np.where(a > 0, a, 1.0), 0.0)
    return a


def _solve(p: np.ndarray, q: np.ndarray, w: np.ndarray, mode: str) -> tuple[float, float]:
    sw = w.sum()
    if sw <= 0:
        return 1.0, 0.0
    if mode == "median":
        r = q / np.where(p != 0, p, np.nan)
        r = r[np.isfinite(r)]
        return (float(np.median(r)) if r.size else 1.0), 0.0
    if mode == "scale":
        den = float((w * p * p).sum())
        return (float((w * p * q).sum()) / den if den > 0 else 1.0), 0.0
    mp = float((w * p).sum() / sw)
    mq = float((w * q).sum() / sw)
    dp = p - mp
    var = float((w * dp * dp).sum())
    if var <= 1e-20 * max(1.0, mp * mp) * sw:  # constant prediction: only a shift is determined
        return 0.0, mq
    s = float((w * dp * (q - mq)).sum()) / var
    return s, mq - s * mp


def fit(pred: np.ndarray, target: np.ndarray, *, mask: np.ndarray | None = None, weights: np.ndarray | None = None,
        mode: str = "scale_shift", space: str = "depth", iterations: int = 3, outlier_k: float = 3.0,
        max_samples: int = 400_000, seed: int = 0) -> Alignment:
    """Fit ``target ≈ scale * pred + shift`` (see the module doc).

    ``mask``: pixels to use (besides both being valid: finite, > 0); ``weights``: per-pixel
    confidence (≥ 0); ``mode``: ``scale`` (shift 0: keeps geometry, right for scale-ambiguous
    depth), ``scale_shift`` or ``median`` (scale = median ratio; most robust, no weights);
    ``space``: ``depth`` or ``inverse`` (disparity, the usual choice for affine-invariant models).
    More than ``max_samples`` valid pixels are subsampled (deterministically).
    """
    if mode not in MODES:
        raise ValueError(f"unknown alignment mode {mode!r}: {', '.join(MODES)}")
    if space not in SPACES:
        raise ValueError(f"unknown alignment space {space!r}: {', '.join(SPACES)}")
    pa = np.asarray(pred, np.float64).reshape(-1)
    ta = np.asarray(target, np.float64).reshape(-1)
    if pa.shape != ta.shape:
        raise ValueError(f"pred and target differ in size: {pa.shape} and {ta.shape}")
    ok = np.isfinite(pa) & np.isfinite(ta) & (pa > 0) & (ta > 0)
    if mask is not None:
        ok &= np.asarray(mask, bool).reshape(-1)
    w = None
    if weights is not None:
        w = np.asarray(weights, np.float64).reshape(-1)
        ok &= np.isfinite(w) & (w > 0)
    idx = np.flatnonzero(ok)
    if idx.size > max_samples:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_samples, replace=False))
    if idx.size < 2:
        return Alignment(1.0, 0.0, space, mode, int(idx.size), 0.0)
    p = _values(pa[idx], space)
    q = _values(ta[idx], space)
    ww = np.ones(idx.size) if w is None else w[idx]
    keep = np.ones(idx.size, bool)
    s, t = _solve(p, q, ww, mode)
    for _ in range(max(0, iterations)):
        r = q - (s * p + t)
        med = np.median(r[keep])
        sigma = 1.4826 * np.median(np.abs(r[keep] - med)) + 1e-12
        new_keep = np.abs(r - med) <= outlier_k * sigma
        if new_keep.sum() < max(2, idx.size // 10) or np.array_equal(new_keep, keep):
            break
        keep = new_keep
        s, t = _solve(p[keep], q[keep], ww[keep], mode)
    r = q[keep] - (s * p[keep] + t)
    rms = float(np.sqrt((ww[keep] * r * r).sum() / max(ww[keep].sum(), 1e-12)))
    return Alignment(float(s), float(t), space, mode, int(keep.sum()), rms)


def apply(depth: np.ndarray, a: Alignment) -> np.ndarray:
    """``depth`` transformed by ``a`` (float32; invalid pixels stay 0; results ≤ 0 become 0)."""
    d = np.asarray(depth, np.float64)
    ok = np.isfinite(d) & (d > 0)
    out = np.zeros(d.shape, np.float32)
    if a.space == "inverse":
        v = a.scale * _values(d, "inverse") + a.shift
        good = ok & (v > 0)
        out[good] = (1.0 / v[good]).astype(np.float32)
    else:
        v = a.scale * d + a.shift
        good = ok & (v > 0)
        out[good] = v[good].astype(np.float32)
    return out
