"""``roto eval depth``: AbsRel and δ<1.25 after scale/shift alignment on small RGB-D sets.

Data (``../shared/evaldata/depth-rgbd-open3d``, see its SOURCE.md): the 5-frame Redwood
"living-room1" clip (ICL-NUIM render with sensor noise, depth in millimetres, fx = fy = 525,
cx = 319.5, cy = 239.5) and one real frame each from TUM RGB-D (uint16 / 5000 m), SUN RGB-D
(bit-rotated uint16 / 1000 m) and NYU Depth v2 raw (351.3 / (1092.5 − raw) m, the raw values
read little-endian: :func:`_nyu_raw`). GT pixels count when they hold 0.1–10 m.

Protocol, per image: the estimate is aligned to the ground truth with one robust least-squares
scale and shift (``--align scale_shift``, depth space; ``scale``, ``median`` and ``--space
inverse`` on request, :func:`engine.ops.depth_align.fit`), then

* ``AbsRel = mean(|d − d*| / d*)`` and ``δ<1.25 = mean(max(d / d*, d* / d) < 1.25)`` over the
  valid GT pixels (the standard monocular-depth metrics);
* the **clip** row aligns the 5 Redwood frames with *one* scale/shift for the whole clip, so it
  also measures whether the frames agree with each other (what a multi-view model gives).

Every run also scores two **sanity baselines** under the same alignment: ``constant`` (one depth
everywhere — after alignment, the GT mean) and ``prior`` (the fixed ground-plane layout of the
weight-free backend). A model that does not beat them has learnt nothing about the picture:
random weights should land near them. Tiny data — a smoke test, not a benchmark.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import InputError
from engine.ops.depth_align import Alignment, apply, fit

GT_MIN, GT_MAX = 0.1, 10.0
REDWOOD_K = np.array([[525.0, 0.0, 319.5], [0.0, 525.0, 239.5], [0.0, 0.0, 1.0]])


@dataclass
class Sample:
    name: str
    rgb: np.ndarray  # float32 (H, W, 3) display-referred sRGB in [0, 1]
    depth: np.ndarray  # float32 (H, W) metres, 0 = invalid
    K: np.ndarray | None = None
    group: str = ""  # samples of one clip share a group


def abs_rel(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    m = (gt > 0) & np.isfinite(gt) & np.isfinite(pred) & (pred > 0) if mask is None else mask
    return float(np.mean(np.abs(pred[m] - gt[m]) / gt[m])) if m.any() else float("nan")


def delta1(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, thr: float = 1.25) -> float:
    """Share of pixels with ``max(pred/gt, gt/pred) < thr``; a pixel the aligned estimate puts at or
    behind the camera (pred ≤ 0) counts as a miss."""
    m = (gt > 0) & np.isfinite(gt) if mask is None else mask
    if not m.any():
        return float("nan")
    p = pred[m]
    g = gt[m]
    ok = p > 0
    r = np.zeros(p.shape, bool)
    r[ok] = np.maximum(p[ok] / g[ok], g[ok] / p[ok]) < thr
    return float(r.mean())


def _rgb(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError("the image cannot be read", path=str(path))
    return (img[:, :, ::-1].astype(np.float32) / 255.0).copy()


def _u16(path: Path) -> np.ndarray:
    import cv2

    d = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if d is None or d.dtype != np.uint16:
        raise InputError("the depth image is not a 16-bit image", path=str(path))
    return d


def _nyu_raw(path: Path) -> np.ndarray:
    """The raw Kinect values of NYU's 16-bit PGM, **little-endian** although PGM says big-endian.

    Read big-endian (as OpenCV does) only 3 % of the pixels decode to 0.1–10 m and the rest look
    like noise; read little-endian, 93 % do (1.4–6.7 m, median 3.3 m) and the other 7 % hold 2047,
    the Kinect's "no reading" code — and the tile structure of the scene appears. (Open3D's NYU
    helper byte-swaps after its big-endian read, which amounts to the same.)
    """
    data = path.read_bytes()
    parts: list[bytes] = []
    pos = 0
    while len(parts) < 4:  # magic, width, height, maxval; comments start with '#'
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        parts.append(data[pos:end])
        pos = end
    pos += 1  # the single whitespace after maxval
    if parts[0] != b"P5" or int(parts[3]) < 256:
        raise InputError("not a 16-bit binary PGM", path=str(path))
    w, h = int(parts[1]), int(parts[2])
    return np.frombuffer(data, dtype="<u2", count=w * h, offset=pos).reshape(h, w)


def _valid(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, np.float32)
    return np.where(np.isfinite(m) & (m >= GT_MIN) & (m <= GT_MAX), m, 0.0).astype(np.float32)


def load_samples(root: str | Path) -> list[Sample]:
    """Every sample of the RGB-D folder (see the module doc for the depth encodings)."""
    root = Path(root)
    rgbd = root / "RGBD"
    if not rgbd.is_dir():
        raise InputError("this is not the depth-rgbd-open3d folder (no RGBD/ inside)", path=str(root),
                         hint="Pass ../shared/evaldata/depth-rgbd-open3d")
    out: list[Sample] = []
    for c in sorted((rgbd / "color").glob("*.jpg")):
        d = rgbd / "depth" / (c.stem + ".png")
        if d.is_file():
            out.append(Sample(f"redwood/{c.stem}", _rgb(c), _valid(_u16(d).astype(np.float32) / 1000.0),
                              REDWOOD_K.copy(), "redwood"))
    other = rgbd / "other_formats"
    if (other / "TUM_depth.png").is_file():
        out.append(Sample("tum", _rgb(other / "TUM_color.png"),
                          _valid(_u16(other / "TUM_depth.png").astype(np.float32) / 5000.0)))
    if (other / "SUN_depth.png").is_file():
        raw = _u16(other / "SUN_depth.png")
        rot = ((raw >> 3) | (raw << 13)).astype(np.uint16)
        out.append(Sample("sun", _rgb(other / "SUN_color.jpg"), _valid(rot.astype(np.float32) / 1000.0)))
    if (other / "NYU_depth.pgm").is_file():
        raw = _nyu_raw(other / "NYU_depth.pgm").astype(np.float64)
        with np.errstate(divide="ignore"):
            m = np.where((raw > 0) & (raw < 1092.5), 351.3 / (1092.5 - raw), 0.0)
        out.append(Sample("nyu", _rgb(other / "NYU_color.ppm"), _valid(m.astype(np.float32))))
    if not out:
        raise InputError("no RGB-D pairs found", path=str(rgbd))
    return out


@dataclass
class Row:
    sample: str
    method: str
    abs_rel: float
    delta1: float
    scale: float
    shift: float
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"sample": self.sample, "method": self.method, "abs_rel": round(self.abs_rel, 4),
                "delta1": round(self.delta1, 4), "scale": self.scale, "shift": self.shift,
                "seconds": round(self.seconds, 3)}


@dataclass
class DepthEvalReport:
    model: str
    reason: str
    align: str
    space: str
    rows: list[Row] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def mean(self, method: str) -> tuple[float, float]:
        rs = [r for r in self.rows if r.method == method and r.sample != "redwood/clip"]
        if not rs:
            return float("nan"), float("nan")
        return float(np.mean([r.abs_rel for r in rs])), float(np.mean([r.delta1 for r in rs]))

    @property
    def methods(self) -> list[str]:
        seen: list[str] = []
        for r in self.rows:
            if r.method not in seen:
                seen.append(r.method)
        return seen

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "reason": self.reason, "align": self.align, "space": self.space,
                "rows": [r.to_dict() for r in self.rows],
                "mean": {m: dict(zip(("abs_rel", "delta1"), self.mean(m))) for m in self.methods},
                "seconds": round(self.seconds, 1), "notes": self.notes}

    def table(self) -> str:
        lines = [f"depth eval: {self.reason}", f"alignment: {self.align} in {self.space} space, per image "
                 "(redwood/clip: one for the 5 frames); GT 0.1-10 m",
                 f"{'sample':<14} {'method':<10} {'AbsRel':>8} {'d<1.25':>8} {'s/frame':>8}"]
        for r in self.rows:
            lines.append(f"{r.sample:<14} {r.method:<10} {r.abs_rel:8.4f} {r.delta1:8.4f} {r.seconds:8.3f}")
        lines.append("mean over images (clip row excluded):")
        for m in self.methods:
            a, d = self.mean(m)
            lines.append(f"{'':<14} {m:<10} {a:8.4f} {d:8.4f}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _score(sample: str, method: str, preds: list[np.ndarray], gts: list[np.ndarray], align: str, space: str,
           seconds: float) -> Row:
    P = np.stack(preds)
    G = np.stack(gts)
    a: Alignment = fit(P, G, mask=G > 0, mode=align, space=space)
    A = apply(P, a)  # a constant prediction gets scale 0: the shift alone (the GT mean)
    m = G > 0
    return Row(sample, method, abs_rel(A, G, m), delta1(A, G, m), a.scale, a.shift, seconds)


def run_depth_eval(root: str | Path, *, model: str = "auto", weights: str | None = None, process_res: int | None = None,
                   align: str = "scale_shift", space: str = "depth", estimator: Any = None,
                   device: str | None = None, precision: str | None = None) -> DepthEvalReport:
    """Score ``model`` and the two sanity baselines on every sample (see the module doc)."""
    from engine.depth.prior import PriorEstimator
    from engine.depth.registry import get_depth_estimator

    t_all = time.monotonic()
    samples = load_samples(root)
    if estimator is None:
        estimator, why = get_depth_estimator(model, weights=weights, process_res=process_res, device=device,
                                             precision=precision)
    else:
        why = f"using {estimator.info.title} (given)"
    reason = getattr(estimator, "reason", why)
    rep = DepthEvalReport(estimator.info.name, reason, align, space)
    prior = PriorEstimator()
    clip_preds: dict[str, list[np.ndarray]] = {}
    for s in samples:
        t0 = time.perf_counter()
        out = estimator.estimate([s.rgb], None)[0]
        dt = time.perf_counter() - t0
        pred = np.asarray(out.depth, np.float32)
        rep.rows.append(_score(s.name, estimator.info.name, [pred], [s.depth], align, space, dt))
        rep.rows.append(_score(s.name, "constant", [np.ones_like(s.depth)], [s.depth], align, space, 0.0))
        if estimator.info.name != "prior":
            rep.rows.append(_score(s.name, "prior", [prior.layout(s.depth.shape)], [s.depth], align, space, 0.0))
        for n in out.notes:
            if n not in rep.notes:
                rep.notes.append(n)
        if s.group:
            clip_preds.setdefault(s.group, []).append(pred)
    for group, _preds in clip_preds.items():
        members = [s for s in samples if s.group == group]
        if len(members) < 2:
            continue
        t0 = time.perf_counter()
        outs = estimator.estimate([s.rgb for s in members], None)  # one call: the model's own multi-view consistency
        dt = (time.perf_counter() - t0) / len(members)
        rep.rows.append(_score(f"{group}/clip", estimator.info.name, [np.asarray(o.depth) for o in outs],
                               [s.depth for s in members], align, space, dt))
    rep.seconds = time.monotonic() - t_all
    return rep


def default_root() -> Path | None:
    """``$ROTO_SHARED/evaldata/depth-rgbd-open3d`` or ``<repo>/../shared/evaldata/depth-rgbd-open3d`` if present."""
    import os

    cands = []
    if os.environ.get("ROTO_SHARED"):
        cands.append(Path(os.environ["ROTO_SHARED"]) / "evaldata" / "depth-rgbd-open3d")
    cands.append(Path(__file__).resolve().parents[2].parent / "shared" / "evaldata" / "depth-rgbd-open3d")
    for c in cands:
        if (c / "RGBD").is_dir():
            return c
    return None
