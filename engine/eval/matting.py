"""Matting measures and the synthetic benchmark behind ``roto eval matting``.

Measures (per frame, then the mean over the clip's frames; alpha in [0, 1]):

* **SAD** — sum of absolute differences / 1000.
* **MSE** — mean squared error × 1000.
* **Grad** — gradient error (Rhemann et al., CVPR 2009): sum over pixels of
  ``(|grad a| - |grad g|)^2`` with first-derivative-of-Gaussian filters, sigma 1.4, / 1000.
* **Conn** — connectivity error (Rhemann et al.): thresholds 0, 0.1, …, 1; a pixel's ``l`` is the
  last threshold at which it is still in the largest 4-connected component of both mattes;
  ``phi = 1 - d * (d >= 0.15)`` with ``d = alpha - l``; sum of ``|phi_a - phi_g|`` / 1000.
* **dtSSD** — temporal coherence (Erofeev et al., BMVC 2015, as computed by RobustVideoMatting's
  evaluation): ``sqrt(mean(((a_t - a_{t-1}) - (g_t - g_{t-1}))^2)) × 100`` per frame pair.
* **flicker %** — the matte's frame-to-frame change that the motion-compensated picture does not
  explain, on the soft edge (:func:`engine.ops.temporal.unexplained_change`), summed over the clip
  and divided by the region's pixels, × 100. Needs no ground truth: QC uses the same score.

The benchmark (:func:`run_matting_eval`) generates the synthetic clips of
:mod:`engine.media.synthetic_matte` (hair, motion blur, uneven green screen), tracks each from its
first ground-truth mask with the default weight-free tracker, and scores, in one run: the binary
tracked mask, per-frame closed-form matting on a fixed-width trimap around the tracked mask
(the two baselines), and our matters (``classical``; ``keyer`` on the green-screen clip).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from engine.util.progress import Progress, ProgressCallback, report

__all__ = ["sad", "mse", "gradient_error", "connectivity_error", "dtssd", "MethodScore", "ClipScore",
           "MattingEvalReport", "score_sequence", "run_matting_eval"]

GOAL_REDUCTION = 0.30
GOAL_FLICKER = 2.0


def _f(a: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(a, np.float64), 0.0, 1.0)


def sad(alpha: np.ndarray, gt: np.ndarray) -> float:
    return float(np.abs(_f(alpha) - _f(gt)).sum() / 1000.0)


def mse(alpha: np.ndarray, gt: np.ndarray) -> float:
    return float(((_f(alpha) - _f(gt)) ** 2).mean() * 1000.0)


def _grad_mag(a: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    gx = gaussian_filter(a, sigma, order=(0, 1))
    gy = gaussian_filter(a, sigma, order=(1, 0))
    return np.sqrt(gx * gx + gy * gy)


def gradient_error(alpha: np.ndarray, gt: np.ndarray, sigma: float = 1.4) -> float:
    d = _grad_mag(_f(alpha), sigma) - _grad_mag(_f(gt), sigma)
    return float((d * d).sum() / 1000.0)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=4)
    if n <= 1:
        return np.zeros_like(mask, bool)
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == best


def connectivity_error(alpha: np.ndarray, gt: np.ndarray, step: float = 0.1) -> float:
    a, g = _f(alpha), _f(gt)
    thresholds = np.arange(0.0, 1.0 + step / 2, step)
    l_map = np.full(a.shape, -1.0)
    for t in thresholds[1:]:
        omega = _largest_component((a >= t) & (g >= t))
        flag = (l_map == -1) & ~omega
        l_map[flag] = t - step
    l_map[l_map == -1] = 1.0
    da, dg = a - l_map, g - l_map
    phi_a = 1 - da * (da >= 0.15)
    phi_g = 1 - dg * (dg >= 0.15)
    return float(np.abs(phi_a - phi_g).sum() / 1000.0)


def dtssd(alpha: np.ndarray, prev_alpha: np.ndarray, gt: np.ndarray, prev_gt: np.ndarray) -> float:
    d = (_f(alpha) - _f(prev_alpha)) - (_f(gt) - _f(prev_gt))
    return float(np.sqrt((d * d).mean()) * 100.0)


@dataclass
class MethodScore:
    name: str
    SAD: float = 0.0
    MSE: float = 0.0
    Grad: float = 0.0
    Conn: float = 0.0
    dtSSD: float = 0.0
    flicker: float = 0.0  # percent
    seconds_per_frame: float = 0.0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def score_sequence(name: str, alphas: list[np.ndarray], gts: list[np.ndarray], images: list[np.ndarray],
                   *, seconds_per_frame: float = 0.0, flows: list[tuple[np.ndarray, np.ndarray] | None] | None = None,
                   connectivity: bool = True, note: str = "") -> MethodScore:
    """All measures of one method on one clip. ``images`` are working-space frames (for flicker);
    ``flows[i]`` the (flow frame i → i-1, consistent) pair, computed when missing."""
    from engine.ops.temporal import flicker_percent, flicker_terms

    n = len(alphas)
    s = MethodScore(name, seconds_per_frame=seconds_per_frame, note=note)
    s.SAD = float(np.mean([sad(a, g) for a, g in zip(alphas, gts)]))
    s.MSE = float(np.mean([mse(a, g) for a, g in zip(alphas, gts)]))
    s.Grad = float(np.mean([gradient_error(a, g) for a, g in zip(alphas, gts)]))
    s.Conn = float(np.mean([connectivity_error(a, g) for a, g in zip(alphas, gts)])) if connectivity else float("nan")
    if n > 1:
        s.dtSSD = float(np.mean([dtssd(alphas[i], alphas[i - 1], gts[i], gts[i - 1]) for i in range(1, n)]))
        terms = []
        for i in range(1, n):
            fl = flows[i] if flows is not None else None
            if fl is None:
                fl = frame_flow(images[i], images[i - 1])
            terms.append(flicker_terms(alphas[i], alphas[i - 1], images[i], images[i - 1], fl[0], fl[1]))
        s.flicker = flicker_percent(terms)
    return s


def frame_flow(image: np.ndarray, prev_image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flow image → prev_image, forward–backward consistent) with DIS ``medium``."""
    from engine.ops.flow import dis_flow, fb_consistency

    f_cp = dis_flow(image, prev_image)
    f_pc = dis_flow(prev_image, image)
    ok, _ = fb_consistency(f_cp, f_pc)
    return f_cp, ok


@dataclass
class ClipScore:
    kind: str
    width: int
    height: int
    frames: int
    tracker: str
    band: float  # the fixed trimap half-width of the closed-form baseline
    methods: list[MethodScore] = field(default_factory=list)
    ours: str = "classical"  # the method the goals are checked for

    def method(self, name: str) -> MethodScore:
        return next(m for m in self.methods if m.name == name)

    def goals(self) -> dict[str, Any]:
        """Reductions of SAD and dtSSD of ``ours`` against both baselines, flicker, and pass/fail."""
        o = self.method(self.ours)
        out: dict[str, Any] = {"ours": self.ours}
        ok = True
        for base in ("mask", "cf-fixed"):
            b = self.method(base)
            for metric in ("SAD", "dtSSD"):
                red = 1.0 - getattr(o, metric) / max(1e-12, getattr(b, metric))
                out[f"{metric} vs {base}"] = round(100 * red, 1)
                ok &= red >= GOAL_REDUCTION
        out["flicker %"] = round(o.flicker, 3)
        ok &= o.flicker < GOAL_FLICKER
        out["pass"] = bool(ok)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "size": [self.width, self.height], "frames": self.frames, "tracker": self.tracker,
                "baseline_band_px": round(self.band, 2), "methods": [m.to_dict() for m in self.methods],
                "goals": self.goals()}


@dataclass
class MattingEvalReport:
    clips: list[ClipScore] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"clips": [c.to_dict() for c in self.clips], "seconds": round(self.seconds, 1),
                "all_pass": all(c.goals()["pass"] for c in self.clips)}

    def table(self) -> str:
        lines = []
        head = f"{'clip':<12} {'method':<10} {'SAD':>8} {'MSE':>8} {'Grad':>8} {'Conn':>8} {'dtSSD':>7} {'flicker%':>9} {'s/frame':>8}"
        for c in self.clips:
            lines.append(f"{c.kind} ({c.width}x{c.height}, {c.frames} frames, tracked by {c.tracker}; "
                         f"baseline band ±{c.band:.1f} px)")
            lines.append(head)
            for m in c.methods:
                mark = " *" if m.name == c.ours else ""
                lines.append(f"{c.kind:<12} {m.name:<10} {m.SAD:8.3f} {m.MSE:8.3f} {m.Grad:8.3f} {m.Conn:8.3f} "
                             f"{m.dtSSD:7.3f} {m.flicker:9.3f} {m.seconds_per_frame:8.3f}{mark}")
            g = c.goals()
            lines.append("goals for * : " + ", ".join(f"{k} {v}" for k, v in g.items() if k not in ("ours",)) + "\n")
        return "\n".join(lines)


def _track(clip: Any, tracker: str) -> list[tuple[np.ndarray, float]]:
    """Track object 1 from its first ground-truth mask; ``[(mask, confidence)]`` per frame."""
    from engine.backends.base import Prompt
    from engine.backends.registry import get_segmenter

    seg, _why = get_segmenter(tracker)
    state = seg.init_state(clip)
    first, last = clip.frames[0], clip.frames[-1]
    seg.add_prompt(state, first, 1, Prompt(mask=clip.mask(first)))
    out = [(clip.mask(first), 1.0)]
    for pf in seg.propagate(state, first, last, "forward", [1]):
        m = pf.objects[1]
        out.append((np.asarray(m.mask, bool), float(m.confidence)))
    return out


def closed_form_fixed(image: np.ndarray, mask: np.ndarray, band: float, epsilon: float = 1e-7) -> np.ndarray:
    """The baseline: closed-form matting (plain, no priors) on a fixed ±``band`` px trimap around
    ``mask``, on the working-space image, cropped to the band's bounding box."""
    from engine.ops.cf_matting import solve_alpha, trimap_split
    from engine.ops.trimap import trimap_from_mask

    tri = trimap_from_mask(mask, band)
    ys, xs = np.nonzero(tri > 0)
    out = np.zeros(mask.shape, np.float32)
    if ys.size == 0:
        return out
    y0, y1 = max(0, ys.min() - 3), min(mask.shape[0], ys.max() + 4)
    x0, x1 = max(0, xs.min() - 3), min(mask.shape[1], xs.max() + 4)
    known, values = trimap_split(tri[y0:y1, x0:x1])
    a, _ = solve_alpha(np.asarray(image, np.float64)[y0:y1, x0:x1], known, values, epsilon=epsilon, rtol=1e-6,
                       maxiter=5000)
    out[y0:y1, x0:x1] = a
    return out


def _run_matter(matter: Any, clip: Any, tracked: list[tuple[np.ndarray, float]]) -> tuple[list[np.ndarray], float]:
    from engine.matting.base import MatteFrame, run_matter

    frames = (MatteFrame(f, clip.read_working(f), {1: m}, confidence={1: c}) for f, (m, c) in zip(clip.frames, tracked))
    alphas: list[np.ndarray] = []
    t = 0.0
    it = run_matter(matter, frames, clip.shape)
    while True:
        t0 = time.perf_counter()
        try:
            _f, out = next(it)
        except StopIteration:
            break
        t += time.perf_counter() - t0
        alphas.append(np.asarray(out[1].alpha, np.float32))
    return alphas, t / max(1, len(alphas))


def run_matting_eval(kinds: tuple[str, ...] | list[str] | None = None, *, width: int = 480, height: int = 270,
                     frames: int = 16, tracker: str = "classical", seed: int = 11, connectivity: bool = True,
                     progress: ProgressCallback | None = None) -> MattingEvalReport:
    """Score the baselines and our matters on the synthetic clips (see the module doc)."""
    from engine.matting.registry import get_matter
    from engine.media.synthetic_matte import KINDS, generate_matte_clip
    from engine.ops.trimap import band_width

    kinds = list(kinds or KINDS)
    rep = MattingEvalReport()
    started = time.monotonic()
    for i, kind in enumerate(kinds):
        clip = generate_matte_clip(kind, width=width, height=height, frames=frames, seed=seed)
        tracked = _track(clip, tracker)
        gts = [clip.alpha(f) for f in clip.frames]
        images = [clip.read_working(f) for f in clip.frames]
        flows = [None] + [frame_flow(images[j], images[j - 1]) for j in range(1, len(images))]
        band = band_width(clip.shape)
        cs = ClipScore(kind, width, height, frames, tracker, band)
        cs.methods.append(score_sequence("mask", [m.astype(np.float32) for m, _ in tracked], gts, images, flows=flows,
                                         connectivity=connectivity, note="binary tracked mask"))
        t0 = time.perf_counter()
        cf = [closed_form_fixed(img, m, band) for img, (m, _c) in zip(images, tracked)]
        cs.methods.append(score_sequence("cf-fixed", cf, gts, images, flows=flows, connectivity=connectivity,
                                         seconds_per_frame=(time.perf_counter() - t0) / len(cf),
                                         note=f"closed-form, fixed ±{band:.1f} px trimap"))
        names = ["classical"] + (["keyer"] if kind == "greenscreen" else [])
        for name in names:
            matter, _why = get_matter(name)
            alphas, spf = _run_matter(matter, clip, tracked)
            cs.methods.append(score_sequence(name, alphas, gts, images, flows=flows, connectivity=connectivity,
                                             seconds_per_frame=spf))
        cs.ours = "keyer" if kind == "greenscreen" else "classical"
        rep.clips.append(cs)
        report(progress, Progress("eval matting", i + 1, len(kinds), started=started, message=kind))
    rep.seconds = time.monotonic() - started
    return rep
