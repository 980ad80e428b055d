"""The ``classical`` matter: weight-free, temporally stable alpha from tracked masks (the default).

Per frame and object, at full plate resolution on the object's region of interest:

1. **Trimap** — an unknown band around the mask edge whose half-width adapts to the plate's
   resolution and the segmenter's confidence (:func:`engine.ops.trimap.band_width`) and to
   motion (``shutter * |flow|`` where the object moves: a blurred edge is wider than a still one,
   :func:`engine.ops.trimap.motion_width`); then widened where pixels beyond it carry some
   foreground — hair and fur the mask left out (:func:`engine.ops.trimap.expand_by_evidence`).
2. **Sampling prior** — local foreground/background colours spread into the band (robust
   normalised convolution) and the alpha they imply, with a confidence
   (:mod:`engine.ops.colour_sampling`; the data term of Wang & Cohen's robust matting).
3. **Temporal prior** — the previous frame's alpha carried by optical flow (DIS,
   :mod:`engine.ops.flow`), trusted where the flow is forward–backward consistent, the
   motion-compensated image did not change and the motion is slow (warping is exact there):
   where nothing in the picture changed, the matte must not change either.
4. **Solve** — closed-form matting (Levin et al.'s matting Laplacian) on the unknown pixels with
   both priors as one per-pixel data term (:mod:`engine.ops.cf_matting`): conjugate gradients
   warm-started from the temporal (else the sampling) prior. What the solve still changed where
   the picture is unchanged is blended towards the carried alpha (``temporal_blend``).

Colour is matted in linear light (the working space decoded with the sRGB curve), where
``I = alpha F + (1 - alpha) B`` holds. The state of a shot is the previous frame (working space)
and each object's previous alpha: bounded memory for any shot length.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from engine.matting.base import AlphaOut, MatteFrame, MatterInfo

ALGORITHM_VERSION = "1"

Roi = tuple[int, int, int, int]


@dataclass(frozen=True)
class ClassicalMatteParams:
    """Tunable parameters (all part of the cache token). Widths are in pixels unless noted."""

    band_fraction: float = 0.0095  # base half-width of the unknown band, fraction of the short side
    band_minimum: float = 2.5  # ... and at least this
    outer_scale: float = 1.0  # outer half-width = base * outer_scale (+ motion)
    shutter: float = 0.5  # motion blur extent per pixel of motion (180-degree shutter)
    evidence_reach: float = 8.0  # widen the band up to this many base widths where pixels carry foreground
    evidence_threshold: float = 0.1  # sampled alpha above which a background pixel is foreground evidence
    evidence_confidence: float = 0.0  # ... when the foreground/background mix explains its colour this well
    evidence_thin: float = 0.4  # beyond evidence_near base widths only thin evidence (opening radius, base widths)
    evidence_near: float = 1.0
    epsilon: float = 1e-7  # closed-form regulariser
    data_weight: float = 0.1  # weight of the sampling prior (times its confidence)
    fg_sigma: float = 6.0  # foreground colour spread, in base widths
    separation: float = 0.05  # |F - B| at which the sampling confidence is one half (linear RGB)
    residual: float = 0.03  # colour-model residual at which it drops by exp(-1)
    temporal_weight: float = 1.0  # weight of the motion-compensated previous alpha (times its confidence)
    static_speed: float = 3.0  # px/frame: the temporal prior fades out for faster motion
    static_tolerance: float = 0.02  # working-space residual at which "nothing changed" drops by exp(-1)
    temporal_blend: float = 0.6  # after the solve, blend towards the carried previous alpha where nothing changed
    trimap_temporal: float = 0.0  # blend of the mask edge towards the previous (flow-carried) edge where nothing changed
    flow_preset: str = "medium"
    flow_max_pixels: int = 500_000  # a larger region gets its flow at reduced scale
    rtol: float = 1e-4
    maxiter: int = 1500
    margin: float = 3.0  # region margin beyond the outer band, in base widths (colour sampling)


@dataclass
class ClassicalMatteState:
    shape: tuple[int, int]
    prev_image: np.ndarray | None = None  # working space float32 (H, W, 3)
    prev_grey: np.ndarray | None = None  # uint8 (H, W, 3) working space, for flow
    alphas: dict[int, tuple[np.ndarray, Roi]] = field(default_factory=dict)  # obj -> (alpha crop, its roi)
    edges: dict[int, tuple[np.ndarray, Roi]] = field(default_factory=dict)  # obj -> (stabilised signed distance, roi)


def mask_roi(mask: np.ndarray, pad: float, shape: tuple[int, int]) -> Roi | None:
    """Bounding box ``(y0, y1, x0, x1)`` of a mask grown by ``pad`` px and clipped to ``shape``."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    p = int(np.ceil(pad))
    h, w = shape
    return (max(0, int(rows[0]) - p), min(h, int(rows[-1]) + 1 + p), max(0, int(cols[0]) - p), min(w, int(cols[-1]) + 1 + p))


def union_roi(a: Roi | None, b: Roi | None) -> Roi | None:
    if a is None:
        return b
    if b is None:
        return a
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


def place(crop_: np.ndarray, roi: Roi, target: Roi, fill: float = 0.0) -> np.ndarray:
    """``crop_`` (covering ``roi``) re-cut to cover ``target`` (``fill`` where ``roi`` does not reach)."""
    out = np.full((target[1] - target[0], target[3] - target[2]) + crop_.shape[2:], fill, crop_.dtype)
    y0, y1 = max(roi[0], target[0]), min(roi[1], target[1])
    x0, x1 = max(roi[2], target[2]), min(roi[3], target[3])
    if y1 > y0 and x1 > x0:
        out[y0 - target[0]:y1 - target[0], x0 - target[2]:x1 - target[2]] = \
            crop_[y0 - roi[0]:y1 - roi[0], x0 - roi[2]:x1 - roi[2]]
    return out


def check_inputs(frame: MatteFrame, shape: tuple[int, int]) -> None:
    """Every mask and trimap of ``frame`` must be the plate's size."""
    for kind, table in (("mask", frame.masks), ("trimap", frame.trimaps)):
        for o, a in table.items():
            if a is not None and tuple(np.shape(a)[:2]) != tuple(shape):
                from engine.errors import InputError

                sh = np.shape(a)
                raise InputError(f"the {kind} of object {o} on frame {frame.frame} is {sh[1]}x{sh[0]}, the plate is "
                                 f"{shape[1]}x{shape[0]}", hint="Masks must match the plate's resolution")


def frame_pixels(frame: MatteFrame, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``frame``'s image as ``float32 (H, W, 3)`` and its 8-bit copy ``uint8 (H, W, 3)`` (clipped to
    [0, 1]; what the flow runs on), after checking that the image, masks and trimaps are the shot's
    ``shape``."""
    image = np.asarray(frame.image, np.float32)
    h, w = shape
    if image.shape[:2] != (h, w):
        raise ValueError(f"frame {frame.frame} is {image.shape[1]}x{image.shape[0]}, the shot is {w}x{h}")
    check_inputs(frame, (h, w))
    return image, (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


class ClassicalMatter:
    info = MatterInfo(
        name="classical",
        title="classical (weight-free, temporally stable closed-form)",
        needs_weights=False,
        licence="built-in",
        notes="Adaptive trimap + closed-form matting Laplacian with sampling and motion-compensated temporal priors.",
        inputs=("mask", "trimap"),
    )

    def __init__(self, params: ClassicalMatteParams | None = None, **overrides: Any) -> None:
        if params is None:
            params = ClassicalMatteParams(**overrides)
        elif overrides:
            params = ClassicalMatteParams(**{**asdict(params), **overrides})
        self.params = params
        from engine.cache.keys import make_key

        self.cache_token = "classical-" + make_key(ALGORITHM_VERSION, asdict(params))[:16]

    # --- contract ------------------------------------------------------------------------

    def init_state(self, shape: tuple[int, int]) -> ClassicalMatteState:
        return ClassicalMatteState((int(shape[0]), int(shape[1])))

    def reset(self, state: ClassicalMatteState) -> None:
        state.prev_image = None
        state.prev_grey = None
        state.alphas.clear()
        state.edges.clear()

    def process(self, state: ClassicalMatteState, frame: MatteFrame) -> dict[int, AlphaOut]:
        from engine.matting.motion import roi_flow
        from engine.ops.trimap import band_width

        p = self.params
        h, w = state.shape
        image, grey = frame_pixels(frame, (h, w))
        objs = sorted(set(frame.masks) | set(frame.trimaps))
        base: dict[int, float] = {}
        rois: dict[int, Roi | None] = {}
        union: Roi | None = None
        for o in objs:
            base[o] = band_width((h, w), fraction=p.band_fraction, minimum=p.band_minimum,
                                 confidence=frame.confidence.get(o, 1.0))
            t = frame.trimaps.get(o)
            m = frame.masks.get(o)
            region = (np.asarray(t, np.float32) > 0.01) if t is not None else (None if m is None else np.asarray(m, bool))
            pad = base[o] * (p.outer_scale + p.evidence_reach + p.margin) + 8
            rois[o] = None if region is None else mask_roi(region, pad, (h, w))
            union = union_roi(union, rois[o])
        # one flow for all objects, on the union of their regions
        flow = consistent = None
        if union is not None and state.prev_grey is not None:
            flow, consistent = roi_flow(state.prev_grey, grey, union, preset=p.flow_preset,
                                        max_pixels=p.flow_max_pixels)
        out: dict[int, AlphaOut] = {}
        for o in objs:
            t0 = time.perf_counter()
            r = rois[o]
            if r is None:
                out[o] = AlphaOut(np.zeros((h, w), np.float32), None, 0.0, {"empty": True})
                state.alphas.pop(o, None)
                state.edges.pop(o, None)
                continue
            a, stats = self._matte(state, frame, o, r, image, flow, consistent, union, base[o])
            full = np.zeros((h, w), np.float32)
            full[r[0]:r[1], r[2]:r[3]] = a
            stats["seconds"] = round(time.perf_counter() - t0, 4)
            out[o] = AlphaOut(full, r, float(stats.pop("confidence", 1.0)), stats)
            state.alphas[o] = (a, r)
        for o in [o for o in state.alphas if o not in objs]:
            del state.alphas[o]
            state.edges.pop(o, None)
        state.prev_image = image
        state.prev_grey = grey
        return out

    # --- one object ------------------------------------------------------------------------

    def _matte(self, state: ClassicalMatteState, frame: MatteFrame, obj: int, r: Roi, image: np.ndarray,
               flow: np.ndarray | None, consistent: np.ndarray | None, union: Roi | None, w0: float):
        from engine.matting.motion import crop, temporal_prior
        from engine.ops.cf_matting import solve_alpha, trimap_split
        from engine.ops.colour_sampling import local_colour, robust_local_colour, sampled_alpha
        from engine.ops.morphology import signed_distance
        from engine.ops.transfer import srgb_to_linear
        from engine.ops.trimap import expand_by_evidence, motion_width, trimap_from_mask

        p = self.params
        y0, y1, x0, x1 = r
        work = image[y0:y1, x0:x1]
        img = srgb_to_linear(work)
        f_crop = ok_crop = None
        if flow is not None and union is not None:
            f_crop, ok_crop = crop(flow, union, r), crop(consistent, union, r)
        stats: dict[str, Any] = {"band": round(float(w0), 2)}
        tri_in = frame.trimaps.get(obj)
        if tri_in is not None:
            tri = np.asarray(tri_in, np.float32)[y0:y1, x0:x1]
        else:
            m = np.asarray(frame.masks[obj], bool)[y0:y1, x0:x1]
            extra: Any = 0.0
            sdf = signed_distance(m)
            if f_crop is not None:
                extra = motion_width(f_crop, shutter=p.shutter)
                stats["motion"] = round(float(extra.max()), 2)
                prev_edge = state.edges.get(obj)
                if p.trimap_temporal > 0 and prev_edge is not None and state.prev_image is not None:
                    # a tracked mask jitters by a pixel or two from frame to frame; where the picture did
                    # not change, keep the band where it was (signed distances blend like contours)
                    from engine.ops.flow import warp
                    from engine.ops.temporal import static_confidence

                    big = float(sum(r[1::2]) - sum(r[0::2]))
                    ps = warp(place(prev_edge[0], prev_edge[1], r, fill=big), f_crop, border="replicate")
                    prev_w = warp(state.prev_image[y0:y1, x0:x1], f_crop, border="replicate")
                    k = p.trimap_temporal * static_confidence(work, prev_w, ok_crop, tolerance=p.static_tolerance)
                    sdf = sdf + k * (ps - sdf)
                    del ps, prev_w, k
            state.edges[obj] = (sdf, r)
            tri = trimap_from_mask(m, w0 + extra, w0 * p.outer_scale + extra, sdf=sdf)
            if p.evidence_reach > 0:
                tri = expand_by_evidence(tri, img, reach=p.evidence_reach * w0, bg_sigma=max(3.0, w0),
                                         fg_sigma=p.fg_sigma * max(1.0, w0), threshold=p.evidence_threshold,
                                         min_confidence=p.evidence_confidence, separation=p.separation,
                                         residual=p.residual, thin=max(2, int(round(p.evidence_thin * w0))),
                                         near_band=p.evidence_near * w0)
        known, values = trimap_split(tri)
        unknown = ~known
        prior = weight = start = None
        static = at = None
        if unknown.any() and p.data_weight > 0:
            F, sF = local_colour(img, (known & (values > 0.5)).astype(np.float32), p.fg_sigma * max(1.0, w0))
            B, sB = robust_local_colour(img, (known & (values < 0.5)).astype(np.float32), max(3.0, w0))
            ahat, c = sampled_alpha(img, F, B, separation=p.separation, residual=p.residual)
            support = np.clip(np.minimum(sF, sB) * 20.0, 0.0, 1.0)
            prior, weight, start = ahat, p.data_weight * c * support, ahat
            stats["confidence"] = float(np.clip(np.mean((c * support)[unknown]), 0.0, 1.0))
            del F, sF, B, sB, c, support  # a 4K band's ROI: each is tens of MB the solve does not need
        prev = state.alphas.get(obj)
        if (unknown.any() and p.temporal_weight > 0 and f_crop is not None and prev is not None
                and state.prev_image is not None):
            pa = place(prev[0], prev[1], r)
            at, tc, static = temporal_prior(pa, state.prev_image[y0:y1, x0:x1], work, f_crop, ok_crop,
                                            tolerance=p.static_tolerance, speed=p.static_speed)
            wt = p.temporal_weight * tc
            if prior is None:
                prior, weight = at, wt
            else:
                tot = weight + wt
                prior = np.where(tot > 0, (weight * prior + wt * at) / np.maximum(tot, 1e-12), prior)
                weight = tot
            start = np.where(tc > 0.5, at, start if start is not None else at)
            stats["static"] = round(float(tc[unknown].mean()), 3)
            del pa, wt, tc
        a, info = solve_alpha(img, known, values, epsilon=p.epsilon, prior=prior, weight=weight, x0=start,
                              rtol=p.rtol, maxiter=p.maxiter)
        stats.update(info)
        if static is not None and p.temporal_blend > 0:
            # what the solve still changed where the picture is unchanged is noise: blend it away
            from engine.ops.temporal import temporal_smooth

            a = temporal_smooth(a, at, static, p.temporal_blend)
        return a.astype(np.float32), stats


def _unavailable() -> str | None:
    from engine.deps import available

    missing = [m for m in ("cv2", "scipy") if not available(m)]
    if missing:
        return f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed (pip install opencv-python-headless scipy)"
    return None
