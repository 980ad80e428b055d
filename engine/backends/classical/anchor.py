"""Keyframe re-anchoring: where is the keyframe's object in this frame? (SIFT + RANSAC similarity)

The recursive frame-to-frame propagation of the tracker drifts: a part lost once (occluded by a
pole, blurred) is never recovered, and a leak once accepted is kept. :class:`KeyframeAnchor` keeps
the keyframe's object keypoints (SIFT, Lowe 2004, ``cv2.SIFT_create``) and, on a new crop, matches
them (ratio test) and fits a similarity transform (rotation, uniform scale, translation) with RANSAC
(``cv2.estimateAffinePartial2D``). The keyframe mask moved by that transform is a *template prior*
that does not drift, weighted by how many matches agree.

Coordinates: keypoints are stored in full-resolution pixels of the keyframe (x, y; origin top-left);
the transform returned maps keyframe full-res pixels to current full-res pixels, ``2x3 float64``.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["KeyframeAnchor", "sift_points", "match_similarity"]


def _sift(n: int):
    return cv2.SIFT_create(nfeatures=n, contrastThreshold=0.02)


def sift_points(grey: np.ndarray, mask: np.ndarray | None = None, n: int = 800):
    """SIFT keypoints of a uint8 (h, w) image: ``(float32 (N, 2) xy px, float32 (N, 128))`` or ``(None, None)``."""
    m = None if mask is None else mask.astype(np.uint8)
    kps, desc = _sift(n).detectAndCompute(grey, m)
    if desc is None or len(kps) == 0:
        return None, None
    return np.array([k.pt for k in kps], np.float32), desc.astype(np.float32)


def match_similarity(src_pts, src_desc, dst_pts, dst_desc, *, size: float, ratio: float = 0.8,
                     min_inliers: int = 8, scale_range=(0.2, 5.0)):
    """Similarity ``2x3`` mapping ``src`` points to ``dst`` points (ratio-test matches, RANSAC).

    Points are ``float (N, 2)`` in any common pixel frame; ``size`` (px, same frame) sets the RANSAC
    tolerance (3 % of it, at least 3 px). Returns ``(matrix or None, inlier count)``.
    """
    if src_desc is None or dst_desc is None or len(src_desc) < 2 or len(dst_desc) < 2:
        return None, 0
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(src_desc, dst_desc, k=2)
    a, b = [], []
    for pr in pairs:
        if len(pr) == 2 and pr[0].distance < ratio * pr[1].distance:
            a.append(src_pts[pr[0].queryIdx])
            b.append(dst_pts[pr[0].trainIdx])
    if len(a) < min_inliers:
        return None, 0
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    thr = max(3.0, 0.03 * size)
    m, inl = cv2.estimateAffinePartial2D(a, b, method=cv2.RANSAC, ransacReprojThreshold=thr, maxIters=500,
                                         confidence=0.99)
    if m is None or inl is None:
        return None, 0
    n_in = int(inl.sum())
    if n_in < min_inliers or n_in < 0.3 * len(a):
        return None, n_in
    sc = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if not scale_range[0] < sc < scale_range[1]:
        return None, n_in
    return m.astype(np.float64), n_in


class KeyframeAnchor:
    """Keyframe object keypoints and their matching to later frames (deep-copyable, small)."""

    def __init__(self, *, max_features: int = 400, ratio: float = 0.8):
        self.max_features = max_features
        self.ratio = ratio
        self.points: np.ndarray | None = None  # float32 (N, 2) full-res keyframe px
        self.desc: np.ndarray | None = None  # float32 (N, 128)
        self.mask: np.ndarray | None = None  # bool (H, W) keyframe mask, full res
        self.size: float = 1.0

    def fit(self, grey_crop: np.ndarray, mask_crop: np.ndarray, to_full, full_mask: np.ndarray) -> None:
        """Keypoints of the keyframe crop inside the (slightly dilated) object mask.

        ``grey_crop``: uint8 (h, w) crop; ``mask_crop``: bool (h, w); ``to_full(xy)``: maps crop
        pixel coordinates ``float (N, 2)`` to full-res ones; ``full_mask``: bool (H, W) keyframe mask.
        """
        m = cv2.dilate(mask_crop.astype(np.uint8), np.ones((5, 5), np.uint8))
        kps, desc = _sift(self.max_features).detectAndCompute(grey_crop, m)
        self.mask = np.asarray(full_mask, bool)
        ys, xs = np.nonzero(self.mask)
        self.size = float(max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)) if xs.size else 1.0
        if desc is None or len(kps) < 4:
            self.points, self.desc = None, None
            return
        pts = np.array([k.pt for k in kps], np.float32)
        self.points = to_full(pts).astype(np.float32)
        self.desc = desc.astype(np.float32)

    def locate_points(self, pts_full: np.ndarray | None, desc: np.ndarray | None, *, min_inliers: int = 8):
        """Like :meth:`locate` with keypoints already found (full-res xy, descriptors)."""
        if self.desc is None or self.points is None or desc is None:
            return None, 0
        return match_similarity(self.points, self.desc, pts_full, desc, size=self.size, ratio=self.ratio,
                                min_inliers=min_inliers)

    def locate(self, grey_crop: np.ndarray, to_full, *, min_inliers: int = 8):
        """Similarity keyframe→current (``2x3``) and its support (inlier count), or ``(None, 0)``."""
        if self.desc is None or self.points is None:
            return None, 0
        kps, desc = _sift(2 * self.max_features).detectAndCompute(grey_crop, None)
        if desc is None or len(kps) < min_inliers:
            return None, 0
        matcher = cv2.BFMatcher(cv2.NORM_L2)
        pairs = matcher.knnMatch(self.desc, desc.astype(np.float32), k=2)
        src, dst = [], []
        cur = np.array([k.pt for k in kps], np.float32)
        for pr in pairs:
            if len(pr) == 2 and pr[0].distance < self.ratio * pr[1].distance:
                src.append(self.points[pr[0].queryIdx])
                dst.append(cur[pr[0].trainIdx])
        if len(src) < min_inliers:
            return None, 0
        src = np.array(src, np.float32)
        dst = to_full(np.array(dst, np.float32)).astype(np.float32)
        thr = max(3.0, 0.03 * self.size)
        m, inl = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=thr,
                                             maxIters=500, confidence=0.99)
        if m is None or inl is None:
            return None, 0
        n_in = int(inl.sum())
        if n_in < min_inliers or n_in < 0.3 * len(src):
            return None, n_in
        scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
        if not 0.2 < scale < 5.0:
            return None, n_in
        return m.astype(np.float64), n_in

    def local_votes(self, pts_full: np.ndarray | None, desc: np.ndarray | None, crop_from_full: np.ndarray,
                    out_shape: tuple[int, int], *, glob: np.ndarray | None = None, scale: float = 1.0,
                    tol: float = 0.3, radius: float = 0.12, ratio: float | None = None):
        """Part-wise transfer of the keyframe mask: ``(fg votes, all votes)``, ``float32 (h, w)`` crop arrays.

        Each keyframe keypoint matched (ratio test) to a current keypoint pastes the keyframe mask
        around it — a disc of ``radius`` × the keyframe object's size — at the matched place, scaled by
        the global similarity's scale (``glob``, keyframe → current full res) or ``scale``. Unlike
        :meth:`warp_mask` this follows articulation (legs, heads, wheels) and brings back parts that
        reappear from behind an occluder. Matches farther than ``tol`` × the object's size from where
        ``glob`` puts them are ignored. ``crop_from_full``: ``2x3`` current full res → crop px.
        """
        h, w = out_shape
        fg = np.zeros((h, w), np.float32)
        cnt = np.zeros((h, w), np.float32)
        if self.desc is None or self.points is None or desc is None or pts_full is None or len(desc) < 2:
            return fg, cnt
        pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(self.desc, desc, k=2)
        rt = self.ratio if ratio is None else ratio
        src, dst = [], []
        for pr in pairs:
            if len(pr) == 2 and pr[0].distance < rt * pr[1].distance:
                src.append(self.points[pr[0].queryIdx])
                dst.append(pts_full[pr[0].trainIdx])
        if not src:
            return fg, cnt
        src = np.asarray(src, np.float64)
        dst = np.asarray(dst, np.float64)
        if glob is not None:
            scale = float(np.sqrt(abs(np.linalg.det(glob[:, :2]))))
            pred = src @ glob[:, :2].T + glob[:, 2]
            keep = np.hypot(*(pred - dst).T) <= tol * self.size * scale
            src, dst = src[keep], dst[keep]
        if not len(src):
            return fg, cnt
        cs = float(np.sqrt(abs(np.linalg.det(crop_from_full[:, :2]))))
        k = scale * cs  # keyframe full-res px -> crop px
        r_key = max(4.0, radius * self.size)
        r_out = r_key * k
        if r_out < 2.0:
            return fg, cnt
        n = int(np.ceil(r_out)) * 2 + 1
        disc = np.zeros((n, n), np.float32)
        cv2.circle(disc, (n // 2, n // 2), int(np.ceil(r_out)), 1.0, -1)
        H, W = self.mask.shape
        km = self.mask.astype(np.float32)
        c = n // 2
        for (ax, ay), (bx, by) in zip(src, dst):
            # the keyframe patch, resampled straight into an n x n crop-scale window centred on b
            a = np.array([[1.0 / k, 0.0, ax - c / k], [0.0, 1.0 / k, ay - c / k]], np.float32)
            patch = cv2.warpAffine(km, a, (n, n), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            bc = crop_from_full @ np.array([bx, by, 1.0])
            x0, y0 = int(round(bc[0])) - c, int(round(bc[1])) - c
            ix0, iy0, ix1, iy1 = max(0, x0), max(0, y0), min(w, x0 + n), min(h, y0 + n)
            if ix0 >= ix1 or iy0 >= iy1:
                continue
            sl = (slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0))
            fg[iy0:iy1, ix0:ix1] += patch[sl] * disc[sl]
            cnt[iy0:iy1, ix0:ix1] += disc[sl]
        return fg, cnt

    def warp_mask(self, m: np.ndarray, crop_from_full: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
        """The keyframe mask moved by ``m`` (keyframe→current full res) into a crop, float32 [0, 1].

        ``crop_from_full``: ``2x3`` affine mapping current full-res px to crop px.
        """
        a = np.vstack([crop_from_full, [0, 0, 1]]) @ np.vstack([m, [0, 0, 1]])
        h, w = out_shape
        return cv2.warpAffine(self.mask.astype(np.float32), a[:2], (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
