"""The ``keyer`` matter: colour-difference keying of green/blue screens, guided by the tracked mask.

Uneven, imperfect screens are the normal case, so the key is taken against a per-pixel estimate of
the clean screen (:func:`engine.ops.keyer.estimate_screen`) rather than one picked colour; the
tracked mask does the rest of a compositor's set-up:

* **garbage matte** — far outside the mask (``garbage`` × the short side, generous so hair
  survives) alpha is 0: stands, rigs and the studio beyond the screen never key in;
* **screen samples** — pixels beyond the mask's soft band whose key is high are bare screen;
  a first key finds them, a second key uses the screen estimated from them;
* **core matte** — well inside the mask alpha is 1: green in the wardrobe does not punch holes.

In between, ``alpha = 1 - K / K_screen`` (the colour difference, :func:`colour_difference_key`)
with black/white clip, then the motion-compensated previous alpha blended in where nothing moved
(:func:`engine.ops.temporal.temporal_smooth`) so sensor noise on the screen does not flicker.
Keying is done in linear light. Despill is a separate pure op (:mod:`engine.ops.despill`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from engine.matting.base import AlphaOut, MatteFrame, MatterInfo
from engine.matting.classical import Roi, frame_pixels, mask_roi, place, union_roi

ALGORITHM_VERSION = "1"


@dataclass(frozen=True)
class KeyerParams:
    screen: str = "green"  # "green" | "blue"
    balance: float = 0.5  # weight of the first other channel in the key (0.5 = average of the two)
    garbage: float = 0.12  # garbage matte: this fraction of the short side outside the mask is 0
    core: float = 2.0  # core matte: deeper than this many band widths (+ motion) inside the mask is 1
    screen_gap: float = 3.0  # screen samples start this many band widths outside the mask (+ motion)
    black: float = 0.04  # alpha at or below becomes 0 (noise on the screen)
    white: float = 0.96  # alpha at or above becomes 1
    sigma_fine: float = 0.02  # screen estimate scales, fractions of the short side
    sigma_coarse: float = 0.12
    fg_key: bool = False  # use the subject's own key (from its core): exact partial alpha, but spill reads as holes
    fg_sigma: float = 0.03  # its spread, fraction of the short side
    temporal: float = 0.6  # strength of the blend towards the motion-compensated previous alpha
    static_speed: float = 1.0
    static_tolerance: float = 0.02
    band_fraction: float = 0.0095
    band_minimum: float = 2.5
    shutter: float = 0.5
    flow_preset: str = "medium"
    flow_max_pixels: int = 500_000


@dataclass
class KeyerState:
    shape: tuple[int, int]
    prev_image: np.ndarray | None = None
    prev_grey: np.ndarray | None = None
    alphas: dict[int, tuple[np.ndarray, Roi]] = field(default_factory=dict)


class KeyerMatter:
    info = MatterInfo(
        name="keyer",
        title="colour-difference keyer (green/blue screen, tracked mask as garbage and core matte)",
        needs_weights=False,
        licence="built-in",
        notes="Per-pixel clean-screen estimate for uneven screens; despill with `roto matte --despill`.",
        inputs=("mask",),
    )

    def __init__(self, params: KeyerParams | None = None, **overrides: Any) -> None:
        if params is None:
            params = KeyerParams(**overrides)
        elif overrides:
            params = KeyerParams(**{**asdict(params), **overrides})
        if params.screen not in ("green", "blue"):
            from engine.errors import InputError

            raise InputError(f"the keyer keys green or blue screens, not {params.screen!r}")
        self.params = params
        from engine.cache.keys import make_key

        self.cache_token = "keyer-" + make_key(ALGORITHM_VERSION, asdict(params))[:16]

    def init_state(self, shape: tuple[int, int]) -> KeyerState:
        return KeyerState((int(shape[0]), int(shape[1])))

    def reset(self, state: KeyerState) -> None:
        state.prev_image = state.prev_grey = None
        state.alphas.clear()

    def process(self, state: KeyerState, frame: MatteFrame) -> dict[int, AlphaOut]:
        from engine.matting.motion import roi_flow
        from engine.ops.trimap import band_width

        p = self.params
        h, w = state.shape
        image, grey = frame_pixels(frame, (h, w))
        short = float(min(h, w))
        pad = p.garbage * short + p.sigma_fine * short * 3 + 8
        rois: dict[int, Roi | None] = {}
        union: Roi | None = None
        for o, m in frame.masks.items():
            rois[o] = None if m is None else mask_roi(np.asarray(m, bool), pad, (h, w))
            union = union_roi(union, rois[o])
        flow = consistent = None
        if union is not None and state.prev_grey is not None and p.temporal > 0:
            flow, consistent = roi_flow(state.prev_grey, grey, union, preset=p.flow_preset, max_pixels=p.flow_max_pixels)
        out: dict[int, AlphaOut] = {}
        for o in sorted(frame.masks):
            t0 = time.perf_counter()
            r = rois[o]
            if r is None:
                out[o] = AlphaOut(np.zeros((h, w), np.float32), None, 0.0, {"empty": True})
                state.alphas.pop(o, None)
                continue
            w0 = band_width((h, w), fraction=p.band_fraction, minimum=p.band_minimum,
                            confidence=frame.confidence.get(o, 1.0))
            a, stats = self._key(state, np.asarray(frame.masks[o], bool), o, r, image, flow, consistent, union, w0, short)
            full = np.zeros((h, w), np.float32)
            full[r[0]:r[1], r[2]:r[3]] = a
            stats["seconds"] = round(time.perf_counter() - t0, 4)
            out[o] = AlphaOut(full, r, float(stats.pop("confidence", 1.0)), stats)
            state.alphas[o] = (a, r)
        state.prev_image, state.prev_grey = image, grey
        return out

    def _key(self, state: KeyerState, mask: np.ndarray, obj: int, r: Roi, image: np.ndarray, flow, consistent,
             union, w0: float, short: float):
        from engine.matting.motion import crop, temporal_prior
        from engine.ops.keyer import colour_difference_key, estimate_screen, screen_key
        from engine.ops.morphology import signed_distance
        from engine.ops.temporal import temporal_smooth
        from engine.ops.transfer import srgb_to_linear
        from engine.ops.trimap import motion_width

        p = self.params
        y0, y1, x0, x1 = r
        work = image[y0:y1, x0:x1]
        img = srgb_to_linear(work)
        m = mask[y0:y1, x0:x1]
        sdf = signed_distance(m)
        f_crop = ok_crop = None
        extra: Any = 0.0
        if flow is not None:
            f_crop, ok_crop = crop(flow, union, r), crop(consistent, union, r)
            extra = motion_width(f_crop, shutter=p.shutter)
        garbage = sdf <= p.garbage * short
        core = sdf <= -(p.core * w0 + extra)
        key = screen_key(img, p.screen, p.balance)
        far = (sdf > p.screen_gap * w0 + extra) & garbage
        stats: dict[str, Any] = {"band": round(float(w0), 2)}
        if not far.any():
            far = sdf > p.screen_gap * w0
        ref = float(np.percentile(key[far], 75)) if far.any() else 0.0
        if ref <= 1e-4:  # no screen around this object: nothing to key against
            stats["no_screen"] = True
            a = np.clip(0.5 - sdf, 0.0, 1.0).astype(np.float32)
            return a, {**stats, "confidence": 0.0}
        sf, sc = p.sigma_fine * short, p.sigma_coarse * short
        samples = far & (key > 0.4 * ref)
        scr = estimate_screen(img, samples, sigma_fine=sf, sigma_coarse=sc)
        a0 = colour_difference_key(img, scr, p.screen, balance=p.balance)
        samples = far & (a0 < 0.15)  # pixels the first key calls (nearly) bare screen, noise both ways
        if samples.any():
            scr = estimate_screen(img, samples, sigma_fine=sf, sigma_coarse=sc)
        fg_key = None
        if p.fg_key and core.any():
            # the subject's own key, spread from its core: exact partial alpha for any subject colour
            from engine.ops.colour_sampling import local_colour

            kf, sup = local_colour(np.repeat(key[:, :, None], 3, axis=2), core.astype(np.float32), p.fg_sigma * short)
            fg_key = np.where(sup > 1e-3, kf[:, :, 0], 0.0)
        a = colour_difference_key(img, scr, p.screen, balance=p.balance, black=p.black, white=p.white, fg_key=fg_key)
        a[~garbage] = 0.0
        a = np.maximum(a, core.astype(np.float32))
        prev = state.alphas.get(obj)
        if p.temporal > 0 and f_crop is not None and prev is not None and state.prev_image is not None:
            pa = place(prev[0], prev[1], r)
            at, tc, _static = temporal_prior(pa, state.prev_image[y0:y1, x0:x1], work, f_crop, ok_crop,
                                             tolerance=p.static_tolerance, speed=p.static_speed)
            a = temporal_smooth(a, at, tc, p.temporal)
            stats["static"] = round(float(tc[(a > 0) & (a < 1)].mean()) if ((a > 0) & (a < 1)).any() else 0.0, 3)
        stats["screen_key"] = round(ref, 4)
        # confidence: how clean the screen is around the subject (residual key on bare screen)
        resid = a0[samples] if samples.any() else np.zeros(1)
        stats["confidence"] = float(np.clip(1.0 - 5.0 * float(np.mean(resid)), 0.0, 1.0))
        return a.astype(np.float32), stats
