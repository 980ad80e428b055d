"""The sRGB transfer curve, both ways (the working space ↔ linear light).

The engine's working space is sRGB-encoded Rec.709 (:data:`engine.media.colour.WORKING_SPACE`),
left unclipped; decoding it with the sRGB curve gives scene-linear Rec.709 exactly, for every plate
(a log or video plate reached the working space through linear). Matting and keying model
``I = alpha F + (1 - alpha) B``, which holds in linear light.

Arrays float32, any shape. Pure functions.
"""

from __future__ import annotations

import numpy as np

__all__ = ["srgb_to_linear", "linear_to_srgb"]


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """sRGB-encoded → linear, float32; negative values clamp to 0."""
    x = np.maximum(np.asarray(v, np.float32), 0.0)
    return np.where(x <= 0.04045, x / 12.92, np.power((x + 0.055) / 1.055, 2.4)).astype(np.float32)


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    """Linear → sRGB-encoded, float32, unclipped above 1; negative values clamp to 0."""
    x = np.maximum(np.asarray(v, np.float32), 0.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)
