"""``roto bench io``: decoding speed of our readers against plain PyAV / OpenEXR.

Generates (in a temporary folder, or ``workdir``):

* an H.264 MP4 (default 1920x1080, 48 frames, 24000/1001, B-frames, film-grain-like noise);
* a half-float RGB EXR sequence with ZIP compression (default 1920x1080, half as many frames).

Then, for each, reads every frame in order

* **ours**: ``open_clip(path, cache_bytes=0).read(frame)`` (frame cache off, so it measures
  decoding: float32 HxWx3 in 0..1 / scene-linear);
* **raw**: the plain library call a script would use: PyAV ``container.decode()`` +
  ``frame.to_ndarray(format="rgb24")`` (same decoder threading as ours), and
  ``OpenEXR.File(path).channels()`` (half pixels, no float conversion).

The goal is ours/raw ≥ 0.8. Each side runs ``repeat`` times alternately; the best run counts.
Opening the clip (probe, packet scan, colourspace inference) is timed separately.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

from engine.bench import BenchReport, BenchRow, bench_folder
from engine.errors import InputError

DESCRIPTION = "decode frames/s of open_clip().read() vs plain PyAV (H.264 MP4) and OpenEXR (half ZIP EXR)"
GOAL = 0.8
DEFAULT_SIZE = (1920, 1080)
DEFAULT_FRAMES = 48
FIRST_EXR_FRAME = 1001
VIDEO_RATE = Fraction(24000, 1001)


# --- media -------------------------------------------------------------------------------


def _plate(width: int, height: int, frames: int, seed: int = 7):
    """A generator of float32 RGB plates in 0..1: gradients, a moving block and static grain."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / max(1, width - 1), y / max(1, height - 1),
                     0.5 + 0.25 * np.sin(x / 37.0) * np.cos(y / 23.0)], axis=2)
    grain = rng.normal(0.0, 0.02, (height, width, 3)).astype(np.float32)
    bw, bh = max(1, width // 8), max(1, height // 6)
    for i in range(frames):
        img = base + np.roll(grain, (i * 3) % max(1, height), axis=0)
        bx = (i * max(1, width // 40)) % max(1, width - bw)
        img[height // 3: height // 3 + bh, bx: bx + bw] = (0.9, 0.2, 0.1)
        yield np.clip(img, 0.0, 1.0)


def make_h264(path: Path, width: int, height: int, frames: int, rate: Fraction = VIDEO_RATE) -> Path:
    """Encode the test plate as H.264 (High, yuv420p, B-frames, GOP 24) in MP4."""
    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "20", "g": "24", "bf": "2"}
        for img in _plate(width, height, frames):
            frame = av.VideoFrame.from_ndarray((img * 255.0 + 0.5).astype(np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_exr_sequence(folder: Path, width: int, height: int, frames: int, first: int = FIRST_EXR_FRAME) -> str:
    """Write ``plate.####.exr`` (half RGB, ZIP, scanline); returns the ``####`` pattern."""
    import numpy as np
    import OpenEXR

    folder.mkdir(parents=True, exist_ok=True)
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    for i, img in enumerate(_plate(width, height, frames, seed=11)):
        # a scene-linear looking plate: square the display-ish values
        rgb = np.ascontiguousarray((img * img).astype(np.float16))
        OpenEXR.File(header, {"RGB": rgb}).write(str(folder / f"plate.{first + i:04d}.exr"))
    return str(folder / "plate.####.exr")


# --- timing ------------------------------------------------------------------------------


def _best(runs: list[float]) -> float:
    return min(runs) if runs else float("nan")


def _time_ours(path: str, frames: int) -> tuple[float, float]:
    """(open seconds, read seconds for every frame in order) through open_clip."""
    from engine.media.clip import open_clip

    t0 = time.perf_counter()
    clip = open_clip(path, cache_bytes=0)
    t1 = time.perf_counter()
    try:
        count = 0
        for f in clip.frames:
            clip.read(f)
            count += 1
        t2 = time.perf_counter()
    finally:
        clip.close()
    if count != frames:
        raise RuntimeError(f"{path}: open_clip read {count} frames, expected {frames}")
    return t1 - t0, t2 - t1


def _time_raw_video(path: str, frames: int) -> float:
    import av

    t0 = time.perf_counter()
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        count = 0
        for frame in container.decode(stream):
            frame.to_ndarray(format="rgb24")
            count += 1
    t1 = time.perf_counter()
    if count != frames:
        raise RuntimeError(f"{path}: PyAV decoded {count} frames, expected {frames}")
    return t1 - t0


def _time_raw_exr(files: list[str]) -> float:
    import OpenEXR

    t0 = time.perf_counter()
    for name in files:
        channels = OpenEXR.File(name).channels()
        for ch in channels.values():
            ch.pixels  # noqa: B018 - touch the pixel array
    return time.perf_counter() - t0


def _measure(name: str, label: str, frames: int, width: int, height: int, repeat: int,
             ours: Callable[[], tuple[float, float]], raw: Callable[[], float],
             ours_text: str, raw_text: str, say: Callable[[str], None]) -> BenchRow:
    ours_runs: list[float] = []
    raw_runs: list[float] = []
    opens: list[float] = []
    # warm-up: page cache, imports, OCIO config
    ours()
    raw()
    for i in range(repeat):
        say(f"{name}: run {i + 1}/{repeat}")
        raw_runs.append(raw())
        t_open, t_read = ours()
        opens.append(t_open)
        ours_runs.append(t_read)
    best_ours, best_raw = _best(ours_runs), _best(raw_runs)
    return BenchRow(
        name=name, label=label, frames=frames, width=width, height=height,
        ours_fps=frames / best_ours if best_ours > 0 else 0.0,
        raw_fps=frames / best_raw if best_raw > 0 else 0.0,
        goal=GOAL, ours=ours_text, raw=raw_text,
        extra={"ours_open_s": round(min(opens), 4), "ours_read_s": [round(t, 4) for t in ours_runs],
               "raw_read_s": [round(t, 4) for t in raw_runs]},
    )


# --- the suite ---------------------------------------------------------------------------


def run(*, workdir: str | Path | None = None, size: tuple[int, int] | None = None, frames: int | None = None,
        exr_frames: int | None = None, repeat: int = 1, keep: bool = False,
        progress: Callable[[str], None] | None = None) -> BenchReport:
    """Generate the media, time both paths, return the report.

    ``size`` is ``(width, height)`` (default 1920x1080; H.264 needs even sizes), ``frames``
    the movie's frame count (default 48), ``exr_frames`` the sequence's (default half).
    Media generated in a temporary folder are deleted afterwards unless ``keep``; a given
    ``workdir`` is kept, and media already there are reused.
    """
    width, height = size or DEFAULT_SIZE
    n_video = int(frames or DEFAULT_FRAMES)
    n_exr = int(exr_frames or max(1, n_video // 2))
    repeat = max(1, int(repeat))
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise InputError(f"benchmark size {width}x{height} is not usable", hint="Use even sizes of at least 16x16")
    if n_video < 1 or n_exr < 1:
        raise InputError("benchmark frame counts must be at least 1")
    say = progress or (lambda text: None)

    root, temp = bench_folder(workdir, "io")
    try:
        movie = root / f"bench_h264_{width}x{height}_{n_video}.mp4"
        if not movie.exists():
            say(f"writing {movie.name}")
            make_h264(movie.with_suffix(".tmp.mp4"), width, height, n_video).replace(movie)
        exr_dir = root / f"bench_exr_{width}x{height}_{n_exr}"
        pattern = str(exr_dir / "plate.####.exr")
        exr_files = [str(exr_dir / f"plate.{FIRST_EXR_FRAME + i:04d}.exr") for i in range(n_exr)]
        if not all(Path(f).exists() for f in exr_files):
            say(f"writing {exr_dir.name}/")
            shutil.rmtree(exr_dir, ignore_errors=True)
            make_exr_sequence(exr_dir, width, height, n_exr)

        rows = [
            _measure("video", "H.264 MP4 8-bit 4:2:0", n_video, width, height,
                     repeat, lambda: _time_ours(str(movie), n_video), lambda: _time_raw_video(str(movie), n_video),
                     "open_clip(mp4, cache_bytes=0).read(f) -> float32 RGB",
                     "PyAV decode + to_ndarray('rgb24')", say),
            _measure("exr", "EXR half RGB ZIP", n_exr, width, height,
                     repeat, lambda: _time_ours(pattern, n_exr), lambda: _time_raw_exr(exr_files),
                     "open_clip(plate.####.exr, cache_bytes=0).read(f) -> float32 RGB",
                     "OpenEXR.File(path).channels() (half)", say),
        ]
    finally:
        if temp and not keep:
            shutil.rmtree(root, ignore_errors=True)
    return BenchReport(
        suite="io", rows=rows,
        params={"size": f"{width}x{height}", "video_frames": n_video, "exr_frames": n_exr, "repeat": repeat,
                "video_fps": f"{VIDEO_RATE.numerator}/{VIDEO_RATE.denominator}"},
        workdir=None if (temp and not keep) else str(root),
    )

