"""``roto bench pipeline``: end-to-end batch speed and memory, each against a baseline measured in the same run.

A synthetic plate (a textured object moving over a panning textured background, written as a
half-float EXR sequence one frame at a time) is run through ``roto batch`` — track → matte →
export, weight-free unless the machine has SAM 2 weights (``auto``) — in a fresh process per
measurement, with a fresh result cache (cold) unless said otherwise. Rows:

* **e2e** — the streaming pipeline (stages overlapped) against the same job with the stages one
  after the other (``--sequential``): seconds per frame and the overlap speed-up (goal ≥ 1);
  peak resident memory (the process's ``ru_maxrss``) against the goal of < 4 GiB, and the stage
  breakdown (seconds each stage spent working);
* **cached** — the same job run again (same session, same parameters): everything is checked and
  skipped; ratio cached/cold (goal ≥ 10);
* **ray** — the job as two shots (each half the frames) on a local Ray cluster with 2 worker CPUs
  against 1 (goal ≥ 1; the cluster start-up is reported apart and not in the rates). Skipped
  when ray is not installed or with ``ROTO_BENCH_RAY=0``.

On a CUDA machine the tracker is SAM 2 when its weights are there (``roto models fetch``), and the
e2e row is also checked against the seed's targets: 100 frames of 1080p in under 2 minutes (1.2
s/frame) and 1000 frames in under 15 minutes (0.9 s/frame), measured on an RTX 4090.

``--frames`` (default 100) and ``--size`` (default 1920x1080) choose the plate; ``--workdir``
keeps the plate for the next run (it is reused when its size and length match).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.bench import BenchReport, BenchRow, bench_folder
from engine.errors import InputError

DESCRIPTION = "end-to-end batch s/frame, peak memory, stage breakdown, cold/cached and 1→2 Ray workers"
DEFAULT_SIZE = (1920, 1080)
DEFAULT_FRAMES = 100
MEMORY_GOAL_MB = 4096.0
SEED_TARGETS = {100: 120.0, 1000: 900.0}  # frames -> seconds on an RTX 4090 (seed)


# --- the plate -----------------------------------------------------------------------------------


def write_plate(folder: Path, width: int, height: int, frames: int, start: int = 1001,
                say: Callable[[str], None] = lambda s: None) -> tuple[str, dict[int, str]]:
    """Write the plate frame by frame (memory stays flat for any length); returns the pattern and
    a mask PNG for the first frame and the middle frame (the two shots of the Ray row)."""
    import cv2
    import numpy as np
    import OpenEXR

    from engine.media.synthetic import _blob_sdf, _srgb_to_linear, _texture

    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / "plate.json"
    pattern = str(folder / "plate.####.exr")
    mid = start + frames // 2
    masks = {start: str(folder / f"mask.{start}.png"), mid: str(folder / f"mask.{mid}.png")}
    want = {"w": width, "h": height, "n": frames, "start": start, "v": 1}
    if stamp.is_file() and json.loads(stamp.read_text()) == want and all(Path(m).is_file() for m in masks.values()):
        return pattern, masks
    rng = np.random.default_rng(7)
    pad = int(0.25 * max(width, height))
    bg_big = _srgb_to_linear(_texture(rng, height + 2 * pad, width + 2 * pad,
                                      np.array([0.35, 0.42, 0.30], np.float32), 0.10))
    fg_tex = _srgb_to_linear(_texture(rng, height, width, np.array([0.80, 0.45, 0.25], np.float32), 0.12))
    rx, ry = 0.16 * width, 0.22 * height
    t0 = time.monotonic()
    for i in range(frames):
        t = i / max(1, frames - 1)
        cx = width * (0.3 + 0.4 * t) + 0.04 * width * np.sin(6.0 * t * max(1, frames / 24) ** 0.5)
        cy = height * (0.5 + 0.12 * np.sin(2 * np.pi * t))
        sdf = _blob_sdf(height, width, cx, cy, rx, ry, 0.6 * np.sin(np.pi * t), 0.08, 4 * t)
        alpha = np.clip(0.5 - sdf, 0.0, 1.0).astype(np.float32)
        ox = pad - int(round(0.05 * width * t))
        oy = pad + int(round(0.02 * height * np.sin(np.pi * t)))
        bg = bg_big[oy:oy + height, ox:ox + width]
        fg = np.roll(fg_tex, (int(round(cy - height * 0.5)), int(round(cx - width * 0.5))), axis=(0, 1))
        rgb = alpha[:, :, None] * fg + (1.0 - alpha[:, :, None]) * bg
        channels = {c: np.ascontiguousarray(rgb[:, :, k], np.float16) for k, c in enumerate("RGB")}
        OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
                     channels).write(str(folder / f"plate.{start + i:04d}.exr"))
        if start + i in masks:
            cv2.imwrite(masks[start + i], ((alpha >= 0.5) * 255).astype(np.uint8))
        if (i + 1) % 50 == 0:
            say(f"plate {i + 1}/{frames} ({(time.monotonic() - t0) / (i + 1):.2f} s/frame)")
    stamp.write_text(json.dumps(want))
    return pattern, masks


# --- one measured run ------------------------------------------------------------------------------


def _run(job: Path, cache_dir: Path, args: list[str]) -> dict[str, Any]:
    """``roto batch JOB --json ARGS`` in a fresh process; its report, wall time and peak RSS."""
    env = dict(os.environ, ROTO_CACHE_DIR=str(cache_dir))
    env.pop("ROTO_BATCH_THROTTLE_S", None)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "engine", "batch", str(job), "--json", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out_chunks: list[bytes] = []
    import threading

    err_chunks: list[bytes] = []
    t_err = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
    t_err.start()
    out_chunks.append(proc.stdout.read())  # type: ignore[union-attr]
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    t_err.join()
    wall = time.perf_counter() - t0
    text = b"".join(out_chunks).decode("utf-8", "replace")
    try:
        report = json.loads(text[text.index("{"):])
    except ValueError:
        raise InputError(f"the benchmark run failed (exit {proc.returncode}): "
                         f"{b''.join(err_chunks).decode('utf-8', 'replace')[-800:]}") from None
    if not report.get("ok"):
        errs = [s.get("error") for s in report.get("shots", [])]
        raise InputError(f"the benchmark job failed: {errs}")
    return {"report": report, "wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024.0,
            "seconds": report["seconds"] - report.get("setup_seconds", 0.0),
            "setup_s": report.get("setup_seconds", 0.0)}


def _stage_breakdown(report: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for s in report["shots"]:
        for name, t in (s.get("timings") or {}).items():
            if name == "feed":
                continue
            out[name] = round(out.get(name, 0.0) + float(t.get("busy_s", 0.0)), 3)
    return out


def _job(path: Path, shots: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"shots": shots}, indent=1))
    return path


def _device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except Exception:  # noqa: BLE001 - torch missing: the CPU path
        return "cpu"


def run(*, workdir: str | Path | None = None, size: tuple[int, int] | None = None, frames: int | None = None,
        exr_frames: int | None = None, repeat: int = 1, keep: bool = False,
        progress: Callable[[str], None] | None = None, stages: tuple[str, ...] = ("track", "matte", "export"),
        ray: bool | None = None, backend: str = "auto") -> BenchReport:
    """Measure the rows of the module doc (``repeat`` is not used: every run is a fresh process)."""
    say = progress or (lambda text: None)
    w, h = size or DEFAULT_SIZE
    n = int(frames or DEFAULT_FRAMES)
    if n < 4 or w < 32 or h < 32:
        raise InputError("the pipeline benchmark needs at least 4 frames of 32x32", hint="Use --frames 100")
    root, temp = bench_folder(workdir, "pipeline")
    device = _device()
    rows: list[BenchRow] = []
    try:
        say(f"writing a {w}x{h} plate of {n} frames")
        pattern, masks = write_plate(root / f"plate_{w}x{h}_{n}", w, h, n, say=say)
        first, mid = sorted(masks)
        last = first + n - 1

        def shot(name: str, out: Path, mask: str, lo: int, hi: int) -> dict[str, Any]:
            return {"name": name, "input": pattern, "mask": mask, "frame": lo, "frames": [lo, hi],
                    "stages": list(stages), "out": str(out), "backend": backend, "direction": "forward"}

        runs = root / "runs"
        shutil.rmtree(runs, ignore_errors=True)
        one = _job(root / "job_one.json", [shot("e2e", runs / "e2e", masks[first], first, last)])
        seq = _job(root / "job_seq.json", [shot("e2e", runs / "seq", masks[first], first, last)])
        say("cold run, stages streaming together")
        cold = _run(one, runs / "cache_cold", [])
        say(f"  {cold['seconds']:.1f} s, peak {cold['peak_rss_mb']:.0f} MB; the same job again (cached)")
        cached = _run(one, runs / "cache_cold", [])
        say(f"  {cached['seconds']:.2f} s; cold run with the stages one after the other")
        sequential = _run(seq, runs / "cache_seq", ["--sequential"])
        say(f"  {sequential['seconds']:.1f} s")
        spf = cold["seconds"] / n
        target = SEED_TARGETS.get(n)
        e2e_extra = {
            "s_per_frame": round(spf, 4), "sequential_s_per_frame": round(sequential["seconds"] / n, 4),
            "peak_rss_mb": round(cold["peak_rss_mb"], 1), "sequential_peak_rss_mb": round(sequential["peak_rss_mb"], 1),
            "memory_goal_mb": MEMORY_GOAL_MB, "memory_ok": cold["peak_rss_mb"] < MEMORY_GOAL_MB,
            "stages_busy_s": _stage_breakdown(cold["report"]),
            "sequential_stages_busy_s": _stage_breakdown(sequential["report"]),
            "stage_notes": {k: v.get("note") for k, v in cold["report"]["shots"][0]["stages"].items()},
            "budgets": cold["report"].get("budgets"), "device": device, "process_wall_s": round(cold["wall_s"], 2)}
        if device == "cuda" and target:
            e2e_extra.update(seed_target_s=target, seed_target_ok=cold["seconds"] < target,
                             seed_target_card="RTX 4090")
        rows.append(BenchRow(name="e2e", label=f"e2e {'+'.join(stages)} {w}x{h}", frames=n, width=w, height=h,
                             ours_fps=n / cold["seconds"], raw_fps=n / sequential["seconds"], goal=1.0,
                             ours="roto batch: stages streaming through bounded queues",
                             raw="roto batch --sequential: the same stages one after the other",
                             extra=e2e_extra))
        rows.append(BenchRow(name="cached", label=f"cached re-run {w}x{h}", frames=n, width=w, height=h,
                             ours_fps=n / max(1e-6, cached["seconds"]), raw_fps=n / cold["seconds"], goal=10.0,
                             ours="the same job again: outputs checked and skipped",
                             raw="the cold run (fresh cache, empty output folder)",
                             extra={"cached_s": round(cached["seconds"], 3), "cold_s": round(cold["seconds"], 2),
                                    "cached_peak_rss_mb": round(cached["peak_rss_mb"], 1)}))
        use_ray = ray if ray is not None else os.environ.get("ROTO_BENCH_RAY", "1") != "0"
        if use_ray:
            import importlib.util

            if importlib.util.find_spec("ray") is None:
                say("ray is not installed: the Ray row is skipped")
            else:
                two = [shot("a", runs / "ray{}/a", masks[first], first, mid - 1),
                       shot("b", runs / "ray{}/b", masks[mid], mid, last)]
                res = {}
                for workers in (1, 2):
                    job = _job(root / f"job_ray{workers}.json",
                               [dict(s, out=s["out"].format(workers)) for s in two])
                    say(f"Ray, {workers} worker CPU(s), two shots of {n // 2} frames")
                    res[workers] = _run(job, runs / f"cache_ray{workers}",
                                        ["--ray", "local", "--ray-workers", str(workers)])
                    say(f"  {res[workers]['seconds']:.1f} s (+{res[workers]['setup_s']:.1f} s cluster start)")
                rows.append(BenchRow(
                    name="ray", label=f"Ray 2 vs 1 workers {w}x{h}", frames=n, width=w, height=h,
                    ours_fps=n / res[2]["seconds"], raw_fps=n / res[1]["seconds"], goal=1.0,
                    ours="roto batch --ray local --ray-workers 2 (two shots of half the frames)",
                    raw="the same on 1 worker CPU",
                    extra={"s_1_worker": round(res[1]["seconds"], 2), "s_2_workers": round(res[2]["seconds"], 2),
                           "cluster_start_s": [round(res[1]["setup_s"], 2), round(res[2]["setup_s"], 2)],
                           "driver_peak_rss_mb": [round(res[1]["peak_rss_mb"], 1), round(res[2]["peak_rss_mb"], 1)],
                           "stages_busy_s_2_workers": _stage_breakdown(res[2]["report"])}))
    finally:
        if temp and not keep:
            shutil.rmtree(root, ignore_errors=True)
    return BenchReport(suite="pipeline", rows=rows,
                       params={"size": f"{w}x{h}", "frames": n, "stages": list(stages), "backend": backend,
                               "device": device, "load_avg": _load()},
                       workdir=None if (temp and not keep) else str(root))


def _load() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def print_table(report: BenchReport, console: Any = None) -> None:
    """Rates, ratios and goals, then memory, the stage breakdown and the seed targets."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    m = report.machine
    table = Table(title=f"roto bench pipeline  ({m.get('cpus_usable', m.get('cpus'))} CPU(s), device "
                        f"{report.params.get('device')}, load {report.params.get('load_avg')})")
    for col in ("case", "frames", "s/frame ours", "s/frame baseline", "ratio", "goal"):
        table.add_column(col, justify="left" if col == "case" else "right")
    for r in report.rows:
        style = "green" if r.ok else "red"
        table.add_row(r.label, str(r.frames), f"{1 / r.ours_fps:.3f}", f"{1 / r.raw_fps:.3f}",
                      f"[{style}]{r.ratio:.2f}[/{style}]", f"≥ {r.goal:g}")
    console.print(table)
    for r in report.rows:
        e = r.extra
        console.print(f"  {r.name}: ours = {r.ours}; baseline = {r.raw}")
        if r.name == "e2e":
            ok = "within" if e["memory_ok"] else "OVER"
            console.print(f"  peak resident memory {e['peak_rss_mb']:.0f} MB ({ok} the {e['memory_goal_mb']:.0f} MB goal); "
                          f"sequential {e['sequential_peak_rss_mb']:.0f} MB")
            busy = ", ".join(f"{k} {v:.1f} s" for k, v in e["stages_busy_s"].items())
            console.print(f"  stage breakdown (seconds working, streaming run): {busy}")
            if "seed_target_s" in e:
                console.print(f"  seed target: {r.frames} frames in < {e['seed_target_s']:.0f} s on an "
                              f"{e['seed_target_card']}: {'met' if e['seed_target_ok'] else 'MISSED'} "
                              f"({r.frames / r.ours_fps:.1f} s here)")
        if r.name == "ray":
            console.print(f"  cluster start (not in the rates): {e['cluster_start_s']} s")
    if report.workdir:
        console.print(f"  media kept in {report.workdir}")
