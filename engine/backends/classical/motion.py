"""Per-pixel "moves like the background?" evidence from background-compensated frame differences.

Flow residuals (flow minus the camera's motion) say *roughly* where things move independently, but
dense flow smears an object's motion over the textureless background around it, so a residual map
is blobby at exactly the place a mask needs to be sharp. The colour difference after compensating
the camera motion is sharp, but on its own confuses "moving" with "textureless" and with ghosts
(background that the object covers in the other frame). :func:`photometric_evidence` combines three
tolerant colour differences per pixel ``p`` of frame A against a neighbouring frame B:

* ``D``: A against B warped by the background's motion model (a homography or affine fitted by
  RANSAC to the flow away from the object) — small where ``p`` is background;
* ``E``: A against A itself shifted by the flow residual at ``p`` — the difference ``D`` *would* show
  if ``p`` moved with that residual; ~0 on textureless pixels or where nothing moves;
* ``F``: A against B warped by the flow itself — small where the flow explains ``p`` (a tracked
  object pixel), large at occlusions and ghosts.

The log-likelihood ratio object : background is ``min(D² − (D − E)², max(D² − F², 0)) / 2σ²`` (σ:
the background's difference noise), clipped: positive where the pixel demonstrably did *not* follow
the camera and the flow explains it, negative where it did follow the camera although it would have
shown if it had moved (textured background next to the object, a pole in front of it), ~0 where the
frames cannot tell (textureless, object and background moving alike — so the cue gates itself — or
motion the flow cannot explain: ghosts, spinning wheels).

Images are ``uint8 (H, W, 3)`` RGB; flows ``float32 (H, W, 2)`` (x, y) in pixels from A to B.
"""

from __future__ import annotations

import cv2
import numpy as np

from engine.backends.classical.colour_model import rgb_to_lab

__all__ = ["tolerant_difference", "fit_background_motion", "photometric_evidence"]


def tolerant_difference(a_lab: np.ndarray, b_lab: np.ndarray, radius: int = 1) -> np.ndarray:
    """Per-pixel Lab distance ``float32 (H, W)`` of ``a`` to the best of ``b``'s pixels within ``radius``."""
    h, w = a_lab.shape[:2]
    pad = cv2.copyMakeBorder(b_lab, radius, radius, radius, radius, cv2.BORDER_REPLICATE)
    best = None
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            bs = pad[radius + dy : radius + dy + h, radius + dx : radius + dx + w]
            d = ((a_lab - bs) ** 2).sum(axis=2)
            best = d if best is None else np.minimum(best, d)
    return np.sqrt(best).astype(np.float32)


def fit_background_motion(flow: np.ndarray, sel: np.ndarray, *, model: str = "homography",
                          thresh: float = 1.0, max_points: int = 1500, seed: int = 0):
    """Background motion ``(map_x, map_y)`` (``float32 (H, W)``: where each pixel of A lands in B) fitted
    by RANSAC to the flow at ``sel`` (bool (H, W)), and the inlier ratio; or ``None`` when too few points.
    """
    h, w = flow.shape[:2]
    ys, xs = np.nonzero(sel)
    if ys.size < 30:
        return None
    if ys.size > max_points:
        pick = np.random.default_rng(seed).choice(ys.size, max_points, replace=False)
        ys, xs = ys[pick], xs[pick]
    src = np.stack([xs, ys], 1).astype(np.float32)
    dst = src + flow[ys, xs]
    gx = np.arange(w, dtype=np.float32)[None, :]
    gy = np.arange(h, dtype=np.float32)[:, None]
    if model == "homography" and ys.size >= 60:
        m, inl = cv2.findHomography(src, dst, cv2.RANSAC, thresh, maxIters=500)
        if m is None:
            return None
        den = m[2, 0] * gx + m[2, 1] * gy + m[2, 2]
        den = np.where(np.abs(den) < 1e-6, 1e-6, den)
        mx = (m[0, 0] * gx + m[0, 1] * gy + m[0, 2]) / den
        my = (m[1, 0] * gx + m[1, 1] * gy + m[1, 2]) / den
    else:
        m, inl = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=thresh, maxIters=300)
        if m is None:
            return None
        mx = m[0, 0] * gx + m[0, 1] * gy + m[0, 2]
        my = m[1, 0] * gx + m[1, 1] * gy + m[1, 2]
    ratio = float(inl.mean()) if inl is not None and inl.size else 0.0
    return mx.astype(np.float32), my.astype(np.float32), ratio


def photometric_evidence(a_rgb: np.ndarray, b_rgb: np.ndarray, flow_ab: np.ndarray, bg_map, *,
                         valid: np.ndarray | None = None, noise_sel: np.ndarray | None = None,
                         clip: float = 3.0, blur: float = 0.8, a_lab: np.ndarray | None = None) -> np.ndarray:
    """Log-odds ``float32 (H, W)`` in ±``clip`` that each pixel of A moves unlike the background (module doc).

    ``bg_map``: ``(map_x, map_y)`` from :func:`fit_background_motion` (A → B); ``valid``: pixels to
    score (others get 0); ``noise_sel``: pixels whose ``D`` sets the noise level (default: all valid).
    """
    h, w = a_rgb.shape[:2]
    mx, my = bg_map[0], bg_map[1]
    gx = np.arange(w, dtype=np.float32)[None, :]
    gy = np.arange(h, dtype=np.float32)[:, None]

    def lab(img):
        return rgb_to_lab(cv2.GaussianBlur(img, (0, 0), blur) if blur > 0 else img)

    la = lab(a_rgb) if a_lab is None else a_lab
    b_bg = cv2.remap(b_rgb, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    b_fl = cv2.remap(b_rgb, gx + flow_ab[..., 0], gy + flow_ab[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)
    ru = flow_ab[..., 0] - (mx - gx)
    rv = flow_ab[..., 1] - (my - gy)
    a_sh = cv2.remap(a_rgb, gx - ru, gy - rv, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    d = tolerant_difference(la, lab(b_bg))
    f = tolerant_difference(la, lab(b_fl))
    e = tolerant_difference(la, lab(a_sh))
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    if valid is not None:
        inside &= valid
    ns = inside if noise_sel is None else (inside & noise_sel)
    if ns.sum() < 20:
        ns = inside
    if not ns.any():
        return np.zeros((h, w), np.float32)
    sig = float(np.median(d[ns])) / 0.67 + 0.5
    llr = np.minimum(d * d - (d - e) ** 2, np.maximum(d * d - f * f, 0.0)) / (2.0 * sig * sig)
    llr = np.clip(llr, -clip, clip)
    llr[~inside] = 0.0
    return llr.astype(np.float32)
