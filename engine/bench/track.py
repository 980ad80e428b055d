"""``roto bench track --backend NAME``: tracking speed and memory of a backend against the weight-free
tracker, measured in the same run on the same frames.

Cases: by default a synthetic plate (an object with exact ground truth, written as a half-float
EXR sequence and read back through the media layer) at 640x360 and 1920x1080 (``--size`` picks
one); or ``--clip PATH`` (any plate, e.g. ``../shared/evaldata/sam2-bedroom/frames``) with
``--point X,Y`` (SAM 2's own benchmark clicks (210, 350) on frame 0 of that clip).

For each case and each side (the backend, then ``classical``): one click on the first frame
(timed: includes the first image encoding), its mask as the keyframe, then forward propagation
to the last frame. Reported per side: **seconds per propagated frame**, **peak memory** added
while tracking (process RSS sampled every 10 ms; on CUDA also the peak GPU allocation), the click
time, the model build time and, on synthetic plates, the mean IoU against the truth. The ratios
are backend / classical (time per frame and memory: lower is better for the backend).

``--random-weights`` builds the backend's real architecture with random weights (SAM 2 only):
speed and memory are those of the real model, masks are meaningless. On a CUDA GPU a SAM 2 row
is checked against the seed's target of < 0.5 s/frame (``--check`` exits 1 when missed), and the
note compares it with SAM 2.1 tiny's published 91 FPS (A100, torch.compile'd, bf16).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.bench import BenchReport, BenchRow, bench_folder
from engine.errors import InputError

DESCRIPTION = "tracking s/frame and peak memory of a backend vs the weight-free tracker, by resolution"
DEFAULT_SIZES = ((640, 360), (1920, 1080))
DEFAULT_FRAMES = 8
TARGET_S_PER_FRAME = 0.5  # the seed's target, on a CUDA GPU
PUBLISHED_FPS = {"sam2.1-tiny": 91.0}  # SAM 2 README, A100, vos_optimized (torch.compile), bf16


@dataclass
class TrackRow(BenchRow):
    """A track case: ``ours`` = the backend, ``raw`` = the classical tracker, fps = 1 / (s/frame)."""

    target_s_per_frame: float | None = None  # applies on CUDA only

    @property
    def ok(self) -> bool:
        if self.target_s_per_frame is None or self.ours_fps <= 0:
            return True
        return 1.0 / self.ours_fps < self.target_s_per_frame

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["ok"] = self.ok
        return data


class _PeakRSS:
    """Peak resident memory of this process while the block runs (Linux /proc; None elsewhere)."""

    def __init__(self) -> None:
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _rss() -> int | None:
        try:
            with open("/proc/self/statm") as fh:
                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, AttributeError):
            return None

    def __enter__(self) -> _PeakRSS:
        if self.start is not None:
            def sample():
                while not self._stop.wait(0.01):
                    v = self._rss()
                    if v is not None and v > (self.peak or 0):
                        self.peak = v
            self._thread = threading.Thread(target=sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        v = self._rss()
        if v is not None and self.peak is not None:
            self.peak = max(self.peak, v)

    @property
    def added_mb(self) -> float | None:
        if self.start is None or self.peak is None:
            return None
        return (self.peak - self.start) / 2**20


def _iou(a: Any, b: Any) -> float:
    import numpy as np

    u = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / u) if u else 1.0


def _build(backend: str, *, model: str | None, random_weights: bool, image_size: int | None,
           device: str | None) -> tuple[Any, str, float]:
    """(segmenter, what it is, build seconds)."""
    t0 = time.perf_counter()
    if random_weights:
        if backend not in ("sam2", "auto"):
            raise InputError("--random-weights applies to the sam2 backend", hint="Use --backend sam2")
        from engine.backends import sam2_backend
        from engine.backends.sam2_model import build_predictor
        from engine.backends.torch_util import choose_device
        from engine.models.catalogue import get

        if not sam2_backend.installed():
            raise InputError("the sam2 package is not installed", hint="Run make setup")
        entry = get(model or "sam2.1-tiny")
        choice = choose_device(device)
        pred = build_predictor(entry.extra["config"], None, choice.device, image_size=image_size)
        seg = sam2_backend.Sam2Segmenter(entry.name, predictor=pred, device=device)
        what = f"{seg.description}, RANDOM weights (speed only)"
        return seg, what, time.perf_counter() - t0
    from engine.backends.registry import get_segmenter, resolve_segmenter

    chosen, _why = resolve_segmenter(backend)
    options: dict[str, Any] = {}
    if chosen == "sam2":
        options = {k: v for k, v in (("model", model), ("image_size", image_size), ("device", device)) if v}
    seg, why = get_segmenter(chosen, **options)
    what = getattr(seg, "description", None) or why
    return seg, what, time.perf_counter() - t0


def _time_side(seg: Any, clip: Any, point: tuple[float, float], truth: list[Any] | None,
               repeat: int) -> dict[str, Any]:
    import numpy as np

    from engine.backends.base import Prompt

    frames = list(clip.frames)
    first, last = frames[0], frames[-1]
    best: dict[str, Any] | None = None
    for _ in range(max(1, repeat)):
        if hasattr(seg, "_cache"):  # a private, empty embedding cache: the click is timed cold, the user's cache untouched
            from engine.cache.store import Cache

            seg._cache = Cache(1 << 30)
        device = getattr(getattr(seg, "choice", None), "device", None)
        gpu = device is not None and device.type == "cuda"
        if gpu:
            from engine.backends.torch_util import peak_memory_reset

            peak_memory_reset(device)
        with _PeakRSS() as mem:
            state = seg.init_state(clip)
            t0 = time.perf_counter()
            click = seg.add_prompt(state, first, 1, Prompt(points=np.array([point], np.float32), labels=np.array([1])))
            t1 = time.perf_counter()
            key = np.asarray(click.mask, bool)
            if not key.any():  # random weights can answer nothing: condition on a disk at the click
                h, w = clip.shape
                yy, xx = np.mgrid[0:h, 0:w]
                key = (xx - point[0]) ** 2 + (yy - point[1]) ** 2 <= (0.05 * min(h, w)) ** 2
            seg.add_prompt(state, first, 1, Prompt(mask=key, estimate=True))
            ious = []
            n = 0
            t2 = time.perf_counter()
            for pf in seg.propagate(state, first, last, "forward", [1]):
                n += 1
                if truth is not None:
                    ious.append(_iou(np.asarray(pf.objects[1].mask, bool), truth[pf.frame - first]))
            if gpu:
                from engine.backends.torch_util import synchronize

                synchronize(device)
            t3 = time.perf_counter()
        result = {"click_s": t1 - t0, "s_per_frame": (t3 - t2) / max(1, n), "frames": n,
                  "peak_rss_mb": mem.added_mb, "iou": float(np.mean(ious)) if ious else None}
        if gpu:
            from engine.backends.torch_util import peak_memory_bytes

            result["peak_gpu_mb"] = (peak_memory_bytes(device) or 0) / 2**20
        if best is None or result["s_per_frame"] < best["s_per_frame"]:
            best = result
    assert best is not None
    return best


def _cases(workdir: Path, size: tuple[int, int] | None, frames: int, clip: str | None,
           point: tuple[float, float] | None, say: Callable[[str], None]) -> list[tuple[str, Any, tuple, Any]]:
    """(label, clip, click point, truth masks or None) per case; frames decoded ahead (both sides
    then time tracking, not decoding, and neither pays for filling the clip's frame cache)."""
    from engine.media.clip import open_clip

    def decoded(c: Any) -> Any:
        for f in c.frames:
            c.read_working(f)
        return c

    if clip:
        c = open_clip(clip)
        if frames:
            c = c.with_range(c.first, min(c.last, c.first + frames - 1))
        if point is None:
            point = (c.shape[1] / 2.0, c.shape[0] / 2.0)
        return [(f"{Path(clip).name} {c.shape[1]}x{c.shape[0]}", decoded(c), point, None)]
    from engine.media.synthetic import generate, write_exr_sequence

    out = []
    for w, h in ([size] if size else DEFAULT_SIZES):
        say(f"writing a {w}x{h} synthetic plate ({frames} frames)")
        plate = generate(width=w, height=h, frames=frames, start=1001)
        pattern = write_exr_sequence(plate, workdir / f"plate_{w}x{h}")
        cx, cy = plate[0].centre
        out.append((f"synthetic {w}x{h}", decoded(open_clip(pattern)), (cx, cy), [f.alpha > 0.5 for f in plate]))
    return out


def run(*, workdir: str | Path | None = None, size: tuple[int, int] | None = None, frames: int | None = None,
        exr_frames: int | None = None, repeat: int = 1, keep: bool = False,
        progress: Callable[[str], None] | None = None, backend: str = "auto", clip: str | None = None,
        point: tuple[float, float] | None = None, model: str | None = None, random_weights: bool = False,
        image_size: int | None = None, device: str | None = None, warmup: bool = True) -> BenchReport:
    """Time ``backend`` and the classical tracker on each case (see the module docstring)."""
    from engine.backends.classical.segmenter import ClassicalSegmenter

    say = progress or (lambda text: None)
    n = int(frames or DEFAULT_FRAMES)
    if n < 2:
        raise InputError("--frames must be at least 2 (one click frame and one tracked frame)")
    if size is not None and (size[0] < 32 or size[1] < 32):
        raise InputError(f"--size {size[0]}x{size[1]} is too small", hint="Use at least 32x32")
    wd, own = bench_folder(workdir, "track")
    try:
        cases = _cases(wd, size, n, clip, point, say)
        say(f"building the {backend} backend")
        seg, what, load_s = _build(backend, model=model, random_weights=random_weights, image_size=image_size,
                                   device=device)
        name = seg.info.name
        baseline = ClassicalSegmenter()
        choice = getattr(seg, "choice", None)
        on_cuda = choice is not None and choice.device.type == "cuda"
        rows: list[BenchRow] = []
        if warmup and choice is not None and cases:
            # torch builds kernels for every new tensor shape (the memory bank grows over the first
            # frames): one untimed pass over the first case keeps that out of the timings
            say("warming up")
            label, c, pt, _truth = cases[0]
            last = None
            for _ in range(3):  # first calls allocate and pick kernels; stop when a pass is no faster
                now = _time_side(seg, c, pt, None, 1)["s_per_frame"]
                if last is not None and now > 0.8 * last:
                    break
                last = now
        for label, c, pt, truth in cases:
            say(f"{label}: {name}")
            ours = _time_side(seg, c, pt, truth, repeat)
            say(f"{label}: classical")
            raw = ours if name == "classical" else _time_side(baseline, c, pt, truth, repeat)
            h, w = c.shape
            extra = {
                "backend": what, "load_s": round(load_s, 3),
                "ours_s_per_frame": ours["s_per_frame"], "raw_s_per_frame": raw["s_per_frame"],
                "time_ratio": ours["s_per_frame"] / raw["s_per_frame"] if raw["s_per_frame"] > 0 else None,
                "ours_peak_rss_mb": ours["peak_rss_mb"], "raw_peak_rss_mb": raw["peak_rss_mb"],
                "ours_peak_gpu_mb": ours.get("peak_gpu_mb"), "ours_click_s": ours["click_s"],
                "raw_click_s": raw["click_s"], "ours_iou": ours["iou"], "raw_iou": raw["iou"],
                "point": list(pt), "random_weights": random_weights,
            }
            if ours["peak_rss_mb"] and raw["peak_rss_mb"]:
                extra["memory_ratio"] = ours["peak_rss_mb"] / max(1e-6, raw["peak_rss_mb"])
            published = PUBLISHED_FPS.get(getattr(seg, "model_name", ""))
            if published:
                extra["published_fps_a100"] = published
            rows.append(TrackRow(
                name=f"{name}@{w}x{h}", label=label, frames=ours["frames"], width=w, height=h,
                ours_fps=1.0 / ours["s_per_frame"] if ours["s_per_frame"] > 0 else 0.0,
                raw_fps=1.0 / raw["s_per_frame"] if raw["s_per_frame"] > 0 else 0.0,
                goal=0.0, ours=what, raw="classical (weight-free) tracker", extra=extra,
                target_s_per_frame=TARGET_S_PER_FRAME if (on_cuda and name == "sam2") else None))
            close = getattr(c, "close", None)
            if close:
                close()
        params = {"backend": backend, "frames": n, "size": list(size) if size else None, "clip": clip,
                  "repeat": repeat, "random_weights": random_weights, "image_size": image_size,
                  "device": str(choice.device) if choice is not None else "cpu"}
        return BenchReport("track", rows, params=params, workdir=str(wd) if (keep or not own) else None)
    finally:
        if own and not keep:
            shutil.rmtree(wd, ignore_errors=True)


def print_table(report: BenchReport, console: Any = None) -> None:
    """s/frame and peak memory of the backend and of the classical tracker, with their ratios."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    m = report.machine
    cpus = m.get("cpus_usable", m.get("cpus"))
    table = Table(title=f"roto bench track  ({cpus} CPU(s), device {report.params.get('device')}, "
                        f"Python {m.get('python')})")
    for col, just in (("case", "left"), ("frames", "right"), ("s/frame", "right"), ("classic", "right"),
                      ("ratio", "right"), ("peak MB", "right"), ("classic", "right"), ("ratio", "right"),
                      ("IoU", "right"), ("classic", "right")):
        table.add_column(col, justify=just)

    def f(v: Any, fmt: str = "{:.3f}") -> str:
        return "-" if v is None else fmt.format(v)

    for r in report.rows:
        e = r.extra
        style = "green" if r.ok else "red"
        table.add_row(r.label, str(r.frames), f"[{style}]{f(e['ours_s_per_frame'])}[/{style}]",
                      f(e["raw_s_per_frame"]), f(e["time_ratio"], "{:.2f}"), f(e["ours_peak_rss_mb"], "{:.0f}"),
                      f(e["raw_peak_rss_mb"], "{:.0f}"), f(e.get("memory_ratio"), "{:.2f}"),
                      f(e["ours_iou"], "{:.2f}"), f(e["raw_iou"], "{:.2f}"))
    console.print(table)
    if report.rows:
        e = report.rows[0].extra
        console.print(f"  backend: {e['backend']} (built in {e['load_s']:.1f} s); first click "
                      f"{e['ours_click_s']:.2f} s (classical {e['raw_click_s']:.2f} s)")
        gpu = [r for r in report.rows if r.extra.get("ours_peak_gpu_mb") is not None]
        for r in gpu:
            console.print(f"  {r.label}: peak GPU memory {r.extra['ours_peak_gpu_mb']:.0f} MB")
        pub = e.get("published_fps_a100")
        if pub and report.params.get("device", "cpu").startswith("cuda"):
            for r in report.rows:
                console.print(f"  {r.label}: {r.ours_fps:.1f} fps vs {pub:.0f} fps published for this model "
                              f"(A100, compiled, bf16) = {r.ours_fps / pub:.2f}x")
        if any(r.target_s_per_frame for r in report.rows if isinstance(r, TrackRow)):
            console.print(f"  target: < {TARGET_S_PER_FRAME} s/frame on a CUDA GPU")
        if e.get("random_weights"):
            console.print("  [yellow]random weights: speed and memory are the real model's; masks and IoU are not[/yellow]")
    console.print("  ratios are backend / classical: below 1 means the backend is faster or lighter")
    if report.workdir:
        console.print(f"  media kept in {report.workdir}")
