"""Colour models for the weight-free tracker: joint RGB histograms and colour conversions.

A :class:`ColourHistogram` is a smoothed joint histogram of quantised RGB (``bins`` levels a
channel, default 32 → 32768 cells), normalised to a probability mass. Pixels are addressed by a
*colour index* image (:func:`colour_index`, ``int32 (H, W)``), computed once per frame and shared by
every object. Histograms are small (128 KiB at 32 bins), plain numpy, and deep-copyable.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter

__all__ = ["colour_index", "rgb_to_lab", "ColourHistogram", "log_ratio"]


def colour_index(rgb: np.ndarray, bins: int = 32) -> np.ndarray:
    """Quantised colour index ``int32 (H, W)`` in ``[0, bins**3)`` of a ``uint8 (H, W, 3)`` RGB image."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"colour_index needs uint8 (H, W, 3) RGB; got {rgb.dtype} {rgb.shape}")
    shift = 8 - int(np.log2(bins))
    q = (rgb >> shift).astype(np.int32)
    return (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE Lab ``float32 (H, W, 3)`` (L in [0, 100], a/b about [-128, 127]) of ``uint8`` RGB."""
    return cv2.cvtColor(rgb.astype(np.float32) * (1.0 / 255.0), cv2.COLOR_RGB2Lab)


@dataclass
class ColourHistogram:
    """A smoothed colour distribution over quantised RGB.

    ``prob`` is ``float32 (bins**3,)`` summing to 1 (a small floor keeps every colour possible).
    """

    bins: int
    prob: np.ndarray
    count: float = 0.0

    @classmethod
    def fit(cls, index: np.ndarray, weights: np.ndarray | None = None, *, bins: int = 32,
            sigma: float = 1.0) -> "ColourHistogram":
        """Histogram of the colour indices ``index`` (any shape, int) with optional ``weights``.

        ``sigma`` is the Gaussian smoothing in bins (over the 3-D colour cube).
        """
        idx = np.asarray(index).ravel()
        w = None if weights is None else np.asarray(weights, dtype=np.float64).ravel()
        h = np.bincount(idx, weights=w, minlength=bins**3).astype(np.float64)
        total = float(h.sum())
        if sigma > 0:
            h = gaussian_filter(h.reshape(bins, bins, bins), sigma, mode="constant").ravel()
        s = h.sum()
        p = h / s if s > 0 else np.full(bins**3, 1.0 / bins**3)
        p = 0.999 * p + 0.001 / bins**3
        return cls(bins=bins, prob=p.astype(np.float32), count=total)

    def blend(self, other: "ColourHistogram", rate: float) -> None:
        """Move towards ``other`` in place: ``p = (1 - rate) p + rate p_other``."""
        if other.bins != self.bins:
            raise ValueError("cannot blend histograms of different bin counts")
        self.prob = ((1.0 - rate) * self.prob + rate * other.prob).astype(np.float32)

    def lookup(self, index: np.ndarray) -> np.ndarray:
        """Probability mass ``float32`` of each colour index (same shape as ``index``)."""
        return self.prob[index]


def log_ratio(fg: ColourHistogram, bg: ColourHistogram, index: np.ndarray, clip: float = 6.0) -> np.ndarray:
    """Colour log-likelihood ratio ``log p(c|fg) - log p(c|bg)``, ``float32`` clipped to ±``clip``."""
    table = np.clip(np.log(fg.prob) - np.log(bg.prob), -clip, clip).astype(np.float32)
    return table[index]
