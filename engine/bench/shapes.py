"""``roto bench shapes``: how faithful and steady the animated shapes are, and how fast they are made.

Cases (synthetic moving shapes with exact ground truth, :mod:`engine.shapes.synthetic`): ``blob``
(smooth, deforming, turning), ``star`` (ten sharp corners), ``ring`` (a hole), ``split`` (one piece
pinching into two: new shapes with lifetimes), ``soft`` (a blurred edge: feather). Default
640x360, 24 frames (``--size``, ``--frames``).

For each case, **ours** is :func:`engine.shapes.track.shapes_from_mattes` with optical flow on the
synthetic plate (default options: tolerance 0.5 px, at most 32 points), measured on every frame:

* **IoU** of the rasterised shapes against the matte at 0.5 (goal ≥ 0.97, the worst frame counts);
* **mean boundary distance** between the curves and the matte's 0.5 iso-lines, px (goal < 0.5);
* **jitter**, px/frame: points' wobble around a smooth path (5-frame quadratic fit);
* **slip**, px/frame: how far a point ends up from the physical point it sat on a frame earlier;
* points per shape, worst fit error, feather found (soft case: truth 2.5 x the blur sigma).

The **raw** baseline is the usual quick vectorisation: ``cv2.findContours`` + ``cv2.approxPolyDP``
(epsilon = the tolerance) on every frame independently — straight segments whose point count
and placement change from frame to frame. Rates are frames/s of each path (single thread).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.bench import BenchReport, BenchRow
from engine.errors import InputError

DESCRIPTION = "shape fidelity (IoU, boundary px), point jitter and speed of mattes → animated Bézier shapes"
CASES = ("blob", "star", "ring", "split", "soft")
DEFAULT_SIZE = (640, 360)
DEFAULT_FRAMES = 24
GOAL_IOU = 0.97
GOAL_MBD = 0.5


@dataclass
class ShapesRow(BenchRow):
    """A shapes case: ``ours`` = animated shapes, ``raw`` = per-frame findContours + approxPolyDP."""

    iou_min: float = 0.0
    mbd: float = 0.0

    @property
    def ok(self) -> bool:
        return self.iou_min >= GOAL_IOU and self.mbd < GOAL_MBD

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["ok"] = self.ok
        data["iou_min"] = round(self.iou_min, 4)
        data["mbd"] = round(self.mbd, 4)
        return data


def _iso_contours(alpha: np.ndarray) -> list[np.ndarray]:
    from engine.shapes.contours import extract_regions

    regs = extract_regions(alpha)
    return [r.outer for r in regs] + [h for r in regs for h in r.holes]


def _measure_ours(clip, tolerance: float, points: int, flow: bool) -> dict[str, Any]:
    from engine.shapes.metrics import boundary_distance, iou, shape_jitter
    from engine.shapes.raster import rasterize_frame
    from engine.shapes.track import ShapeOptions, shapes_from_mattes

    opts = ShapeOptions(tolerance=tolerance, max_points=points, flow=flow)
    t0 = time.perf_counter()
    shapes, rep = shapes_from_mattes(clip.frames, clip.alphas.get, get_image=clip.plates.get if flow else None,
                                     options=opts)
    seconds = time.perf_counter() - t0
    ious, mbds = [], []
    for f in clip.frames:
        m = rasterize_frame(shapes, f, (clip.height, clip.width))
        ious.append(iou(m, clip.alphas[f] >= 0.5))
        keys = [k for k in (s.at(f) for s in shapes) if k is not None]
        mbds.append(boundary_distance(keys, _iso_contours(clip.alphas[f]))[0])
    jit, n = 0.0, 0
    for s in shapes:
        j, c = shape_jitter(s)
        jit += j * c
        n += c
    slips = []
    if clip.kind != "split":
        main = max((s for s in shapes if not s.hole), key=lambda s: len(s.keys))
        for f in main.key_frames:
            if f + 1 in main.keys:
                u = clip.nearest_u(f, main.keys[f].points)
                slips.append(float(np.linalg.norm(main.keys[f + 1].points - clip.truth(f + 1, u), axis=1).mean()))
    return {"seconds": seconds, "iou_mean": float(np.mean(ious)), "iou_min": float(np.min(ious)),
            "mbd": float(np.mean(mbds)), "mbd_max_frame": float(np.max(mbds)),
            "jitter": jit / n if n else 0.0, "slip": float(np.mean(slips)) if slips else None,
            "shapes": len(shapes), "points": [s.n_points for s in shapes], "max_error": rep["max_error_px"],
            "keys_over_tolerance": rep["frames_over_tolerance"], "feather": [round(s.feather, 2) for s in shapes],
            "events": rep["events"], "flow": rep["flow"]}


def _measure_raw(clip, tolerance: float) -> dict[str, Any]:
    import cv2

    from engine.shapes.metrics import iou
    from engine.shapes.raster import fill_polygons

    t0 = time.perf_counter()
    polys_per_frame = {}
    for f in clip.frames:
        m = (clip.alphas[f] >= 0.5).astype(np.uint8)
        contours, _ = cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
        polys = [cv2.approxPolyDP(c, tolerance, True).reshape(-1, 2).astype(np.float64) + 0.5 for c in contours]
        polys_per_frame[f] = polys
    seconds = time.perf_counter() - t0
    from engine.bench.shapes import _iso_contours as iso
    from engine.shapes.bezier import curve_distance

    ious, mbds, counts = [], [], []
    for f, polys in polys_per_frame.items():
        # even-odd over all rings (outer boundaries and holes)
        acc = np.zeros((clip.height, clip.width), bool)
        for p in polys:
            if len(p) >= 3:
                acc ^= fill_polygons([p], (clip.height, clip.width))
        ious.append(iou(acc, clip.alphas[f] >= 0.5))
        cont = iso(clip.alphas[f])
        if cont and polys:
            allc = np.vstack(cont)
            allp = np.vstack(polys)
            d1 = np.min([curve_distance(allc, p) for p in polys if len(p) >= 2], axis=0)
            d2 = np.min([curve_distance(allp, c) for c in cont], axis=0)
            mbds.append(float(np.concatenate([d1, d2]).mean()))
        counts.append(sum(len(p) for p in polys))
    return {"seconds": seconds, "iou_mean": float(np.mean(ious)), "iou_min": float(np.min(ious)),
            "mbd": float(np.mean(mbds)) if mbds else float("inf"), "points_min": int(min(counts)),
            "points_max": int(max(counts))}


def run(*, workdir: str | Path | None = None, size: tuple[int, int] | None = None, frames: int | None = None,
        exr_frames: int | None = None, repeat: int = 1, keep: bool = False, cases: tuple[str, ...] | None = None,
        tolerance: float = 0.5, points: int = 32, flow: bool = True,
        progress: Callable[[str], None] | None = None, **_: Any) -> BenchReport:
    """Measure every case (see the module doc); ``repeat`` keeps the fastest timing of each side."""
    from engine.shapes.synthetic import make_clip

    w, h = tuple(size) if size else DEFAULT_SIZE
    n = int(frames or DEFAULT_FRAMES)
    if w < 64 or h < 64:
        raise InputError(f"benchmark size {w}x{h} is too small", hint="Use at least 64x64")
    if n < 5:
        raise InputError("the shapes benchmark needs at least 5 frames (jitter uses 5-frame windows)")
    say = progress or (lambda text: None)
    rows: list[BenchRow] = []
    for kind in cases or CASES:
        say(f"{kind}: generating {n} frames at {w}x{h}")
        clip = make_clip(kind, w, h, n)
        best_ours, best_raw = None, None
        for i in range(max(1, int(repeat))):
            say(f"{kind}: run {i + 1}/{max(1, int(repeat))}")
            ours = _measure_ours(clip, tolerance, points, flow)
            raw = _measure_raw(clip, tolerance)
            if best_ours is None or ours["seconds"] < best_ours["seconds"]:
                best_ours = ours
            if best_raw is None or raw["seconds"] < best_raw["seconds"]:
                best_raw = raw
        assert best_ours is not None and best_raw is not None
        extra = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in best_ours.items()}
        extra["truth_feather"] = round(clip.feather, 2)
        extra["raw"] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in best_raw.items()}
        rows.append(ShapesRow(
            name=kind, label=f"{kind} {w}x{h}", frames=n, width=w, height=h,
            ours_fps=n / best_ours["seconds"] if best_ours["seconds"] > 0 else 0.0,
            raw_fps=n / best_raw["seconds"] if best_raw["seconds"] > 0 else 0.0, goal=0.0,
            ours="engine.shapes.track.shapes_from_mattes (Bézier, correspondence" + (", DIS flow)" if flow else ")"),
            raw="cv2.findContours + cv2.approxPolyDP per frame", extra=extra,
            iou_min=best_ours["iou_min"], mbd=best_ours["mbd"]))
    return BenchReport("shapes", rows, params={"size": f"{w}x{h}", "frames": n, "tolerance": tolerance,
                                               "points": points, "flow": flow, "repeat": repeat})


def print_table(report: BenchReport, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    m = report.machine
    cpus = m.get("cpus_usable", m.get("cpus"))
    p = report.params
    table = Table(title=f"roto bench shapes ({cpus} CPU(s); tolerance {p.get('tolerance')} px, <= {p.get('points')} "
                        f"points; goals IoU >= {GOAL_IOU}, boundary < {GOAL_MBD} px)")
    for col in ("case", "IoU min", "bound. px", "jitter px/f", "slip px/f", "points", "s/frame", "raw IoU/bound./pts"):
        table.add_column(col, justify="left" if col == "case" else "right")
    for r in report.rows:
        e = r.extra
        raw = e.get("raw", {})
        style = "green" if r.ok else "red"
        slip = "-" if e.get("slip") is None else f"{e['slip']:.2f}"
        table.add_row(r.name, f"[{style}]{e['iou_min']:.4f}[/{style}]", f"[{style}]{e['mbd']:.3f}[/{style}]",
                      f"{e['jitter']:.3f}", slip, ",".join(str(x) for x in e["points"]),
                      f"{1 / r.ours_fps if r.ours_fps else 0:.3f}",
                      f"{raw.get('iou_min', 0):.3f}/{raw.get('mbd', 0):.2f}/"
                      f"{raw.get('points_min')}-{raw.get('points_max')}")
    console.print(table)
    for r in report.rows:
        e = r.extra
        notes = [f"{r.width}x{r.height}, {r.frames} frames", f"worst fit {e.get('max_error')} px"]
        if e.get("events"):
            notes.append("events " + ", ".join(f"{x['shape']} {x['event']} @ {x['frame']}" for x in e["events"]))
        if any(e.get("feather", [])) or e.get("truth_feather"):
            notes.append(f"feather {e.get('feather')} px (truth {e.get('truth_feather')})")
        console.print(f"  {r.name}: " + "; ".join(notes))
