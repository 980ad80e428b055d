"""``roto bench export``: write speed of our EXR and DPX writers against the plain libraries.

For each size (default 1920x1080 and 4096x2160; ``--size`` picks one) the suite builds, in
memory, the layers of a typical delivery frame the way the exporter holds them (float32
arrays): the plate (``R G B``), three object mattes, the combined matte, Cryptomatte
(``CryptoObject00..02``, 6 ranks, encoded from the mattes), the object id — 20 channels,
7 half and 13 float once written. Then it times writing ``frames`` frames:

* **EXR, ours**: :func:`engine.export.exr.write_exr` (type conversion, crop to the data window,
  header with timecode/fps/colourspace/Cryptomatte manifest, temp file + rename), ZIP;
* **EXR, raw**: ``OpenEXR.File(header, channels).write(path)`` of the same channels, already
  converted to half/float and contiguous (the pure library cost), ZIP, same thread count;
* **DPX, ours**: :func:`engine.export.dpx.write_dpx` of the RGB plate (float in 0..1) as 10-bit
  method A big-endian, header and atomic rename included;
* **DPX, raw**: OpenImageIO ``ImageOutput`` writing the same float RGB as 10-bit DPX.

The goal is ours/raw ≥ 0.8. Each side runs ``repeat`` times alternately after a warm-up; the
best run counts. Files go to a temporary folder (or ``workdir``) and are overwritten per run.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

from engine.bench import BenchReport, BenchRow, bench_folder
from engine.errors import InputError

DESCRIPTION = "write frames/s of our EXR (20-channel AOV frame) and DPX (10-bit RGB) writers vs OpenEXR / OpenImageIO"
GOAL = 0.8
DEFAULT_SIZES = ((1920, 1080), (4096, 2160))
DEFAULT_FRAMES = {1920 * 1080: 4, 4096 * 2160: 2}
FPS = Fraction(24000, 1001)


def _frame_layers(width: int, height: int) -> tuple[list[Any], dict[str, Any]]:
    """The AOV layers of one synthetic frame and the Cryptomatte header attributes."""
    import numpy as np

    from engine.export import cryptomatte as cm
    from engine.export.aovs import COLOUR, DATA, Layer
    from engine.ops.idmatte import id_matte

    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    plate = np.stack([x / max(1, width - 1), y / max(1, height - 1),
                      0.5 + 0.25 * np.sin(x / 37.0) * np.cos(y / 23.0)], axis=2).astype(np.float32)
    names = ["hero", "villain", "car"]
    masks = []
    for i, _ in enumerate(names):
        cx, cy = width * (0.3 + 0.2 * i), height * (0.45 + 0.05 * i)
        masks.append(((x - cx) / (width * 0.12)) ** 2 + ((y - cy) / (height * 0.25)) ** 2 <= 1.0)
    layers = [Layer("", ("R", "G", "B"), plate, COLOUR, "rgba", "rgba")]
    total = np.zeros((height, width), np.float32)
    for i, (n, m) in enumerate(zip(names, masks)):
        cov = m.astype(np.float32)
        total += cov
        layers.append(Layer(n, ("A",), cov[:, :, None], COLOUR, "objects", n, i + 1, n))
    layers.append(Layer("matte", ("A",), np.minimum(total, 1.0)[:, :, None], COLOUR, "matte", "matte"))
    ranks = cm.encode_ranks([(cm.name_hash(n), m) for n, m in zip(names, masks)], (height, width))
    for i, ln in enumerate(cm.layer_names("CryptoObject")):
        layers.append(Layer(ln, ("R", "G", "B", "A"), ranks[:, :, 4 * i:4 * i + 4], DATA, "crypto", "CryptoObject"))
    ids = id_matte([(i + 1, m, 0.9) for i, m in enumerate(masks)], (height, width)).astype(np.float32)
    layers.append(Layer("object_id", ("id",), ids[:, :, None], DATA, "id", "object_id"))
    return layers, cm.header_attributes("CryptoObject", names)


def _meta(width: int, height: int, frame: int):
    from engine import __version__
    from engine.export.aovs import FrameMeta
    from engine.media.types import Rect

    rect = Rect(0, 0, width, height)
    return FrameMeta(frame=frame, fps=FPS, timecode="01:00:00:00", drop_frame=False, colourspace="ACEScg",
                     display_window=rect, data_window=rect, pixel_aspect=1.0, session_id="bench", version=__version__,
                     shot="bench", first=1001, last=1001)


def _time_exr_ours(folder: Path, layers: list, crypto: dict, width: int, height: int, frames: int) -> float:
    from engine.export import exr

    t0 = time.perf_counter()
    for i in range(frames):
        meta = _meta(width, height, 1001 + i)
        attrs = exr.header_attributes(meta, colour_layers=True, digest="0" * 32)
        exr.write_exr(folder / f"ours.{1001 + i:04d}.exr", layers, meta, compression="zip", attributes=attrs,
                      part_attributes={"crypto": crypto})
    return time.perf_counter() - t0


def _raw_channels(layers: list) -> dict[str, Any]:
    import numpy as np

    out = {}
    for layer in layers:
        dtype = np.float16 if layer.kind == "colour" else np.float32
        for i, name in enumerate(layer.channel_names):
            out[name] = np.ascontiguousarray(layer.pixels[:, :, i], dtype=dtype)
    return out


def _time_exr_raw(folder: Path, channels: dict, crypto: dict, frames: int, threads: int) -> float:
    import OpenEXR

    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage, **crypto}
    t0 = time.perf_counter()
    for i in range(frames):
        OpenEXR.File(header, channels, threads).write(str(folder / f"raw.{1001 + i:04d}.exr"))
    return time.perf_counter() - t0


def _time_dpx_ours(folder: Path, plate: Any, frames: int) -> float:
    from engine.export.dpx import DpxInfo, write_dpx

    t0 = time.perf_counter()
    for i in range(frames):
        info = DpxInfo(transfer=1, colorimetric=1, fps=FPS, timecode="01:00:00:00", frame=1001 + i,
                       sequence_length=frames, creator="roto bench")
        write_dpx(folder / f"ours.{1001 + i:04d}.dpx", plate, 10, info)
    return time.perf_counter() - t0


def _time_dpx_raw(folder: Path, plate: Any, frames: int) -> float:
    import OpenImageIO as oiio

    h, w, c = plate.shape
    t0 = time.perf_counter()
    for i in range(frames):
        path = str(folder / f"raw.{1001 + i:04d}.dpx")
        spec = oiio.ImageSpec(w, h, c, "uint16")
        spec.attribute("oiio:BitsPerSample", 10)
        spec.attribute("dpx:Transfer", "Printing density")
        out = oiio.ImageOutput.create(path)
        out.open(path, spec)
        out.write_image(plate)
        out.close()
    return time.perf_counter() - t0


def _measure(name: str, label: str, frames: int, width: int, height: int, repeat: int,
             ours: Callable[[], float], raw: Callable[[], float], ours_text: str, raw_text: str,
             say: Callable[[str], None]) -> BenchRow:
    ours()  # warm-up: imports, page cache, OCIO config
    raw()
    ours_runs, raw_runs = [], []
    for i in range(repeat):
        say(f"{name}: run {i + 1}/{repeat}")
        raw_runs.append(raw())
        ours_runs.append(ours())
    best_ours, best_raw = min(ours_runs), min(raw_runs)
    return BenchRow(name=name, label=label, frames=frames, width=width, height=height,
                    ours_fps=frames / best_ours if best_ours > 0 else 0.0,
                    raw_fps=frames / best_raw if best_raw > 0 else 0.0, goal=GOAL, ours=ours_text, raw=raw_text,
                    extra={"ours_write_s": [round(t, 4) for t in ours_runs],
                           "raw_write_s": [round(t, 4) for t in raw_runs]})


def run(*, workdir: str | Path | None = None, size: tuple[int, int] | None = None, frames: int | None = None,
        exr_frames: int | None = None, repeat: int = 1, keep: bool = False,
        progress: Callable[[str], None] | None = None) -> BenchReport:
    """Time both writers at each size; ``frames`` (or ``exr_frames``) frames per case (default 4 at 1080p, 2 at 4K)."""
    from engine.export.exr import _threads

    sizes = [tuple(size)] if size else list(DEFAULT_SIZES)
    repeat = max(1, int(repeat))
    say = progress or (lambda text: None)
    for w, h in sizes:
        if w < 16 or h < 16:
            raise InputError(f"benchmark size {w}x{h} is too small", hint="Use at least 16x16")
    root, temp = bench_folder(workdir, "export")
    threads = _threads()
    rows: list[BenchRow] = []
    try:
        for w, h in sizes:
            n = int(exr_frames or frames or DEFAULT_FRAMES.get(w * h, 2))
            if n < 1:
                raise InputError("benchmark frame counts must be at least 1")
            folder = root / f"export_{w}x{h}"
            folder.mkdir(parents=True, exist_ok=True)
            say(f"building a {w}x{h} AOV frame")
            layers, crypto = _frame_layers(w, h)
            channels = _raw_channels(layers)
            tag = "1080p" if (w, h) == (1920, 1080) else ("4K" if (w, h) == (4096, 2160) else f"{w}x{h}")
            rows.append(_measure(
                f"exr_{tag}", f"EXR 20-ch AOVs ZIP {tag}", n, w, h, repeat,
                lambda: _time_exr_ours(folder, layers, crypto, w, h, n),
                lambda: _time_exr_raw(folder, channels, crypto, n, threads),
                "engine.export.exr.write_exr(float32 layers) -> half/float ZIP, header, atomic rename",
                f"OpenEXR.File(header, typed channels, {threads} threads).write()", say))
            plate = layers[0].pixels
            rows.append(_measure(
                f"dpx_{tag}", f"DPX 10-bit RGB {tag}", n, w, h, repeat,
                lambda: _time_dpx_ours(folder, plate, n), lambda: _time_dpx_raw(folder, plate, n),
                "engine.export.dpx.write_dpx(float32 RGB, 10) method A BE, atomic rename",
                "OpenImageIO ImageOutput 10-bit DPX from float32 RGB", say))
            del layers, channels, plate
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        if temp and not keep:
            shutil.rmtree(root, ignore_errors=True)
    return BenchReport(suite="export", rows=rows,
                       params={"sizes": [f"{w}x{h}" for w, h in sizes], "repeat": repeat, "threads": threads,
                               "channels": 20, "compression": "zip"},
                       workdir=None if (temp and not keep) else str(root))
