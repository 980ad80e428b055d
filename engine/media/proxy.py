"""Thumbnails and a contact sheet for fast navigation of a shot (the seed's "thumbnails").

Outputs are display-referred (the working space), 8-bit, written atomically.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.media.clip import Clip
from engine.util.atomic import atomic_path
from engine.util.progress import CancelToken, Progress, ProgressCallback, check_cancel, report


@dataclass
class ProxyResult:
    """What :func:`write_proxies` wrote."""

    thumbnails: list[Path] = field(default_factory=list)
    contact_sheet: Path | None = None
    frames: list[int] = field(default_factory=list)


def thumbnail(rgb8: np.ndarray, width: int) -> np.ndarray:
    """Area-resample a uint8 (H, W, 3) image to ``width`` pixels wide (aspect kept)."""
    import cv2

    h, w = rgb8.shape[:2]
    width = max(8, min(int(width), w))
    height = max(1, round(h * width / w))
    return cv2.resize(rgb8, (width, height), interpolation=cv2.INTER_AREA)


def pick_frames(frames: range, limit: int) -> list[int]:
    """At most ``limit`` frames spread evenly over ``frames``, always including first and last."""
    n = len(frames)
    if n <= limit:
        return list(frames)
    if limit <= 1:
        return [frames[0]]
    return sorted({frames[round(i * (n - 1) / (limit - 1))] for i in range(limit)})


def contact_sheet(tiles: list[np.ndarray], labels: list[str], columns: int, gap: int = 4) -> np.ndarray:
    """Grid of equally sized uint8 RGB tiles with a label under each; returns uint8 (H, W, 3)."""
    import cv2

    th, tw = tiles[0].shape[:2]
    label_h = max(14, th // 8)
    rows = math.ceil(len(tiles) / columns)
    sheet = np.full((rows * (th + label_h + gap) + gap, columns * (tw + gap) + gap, 3), 24, np.uint8)
    scale = max(0.3, label_h / 30.0)
    for i, (tile, label) in enumerate(zip(tiles, labels)):
        r, c = divmod(i, columns)
        y = gap + r * (th + label_h + gap)
        x = gap + c * (tw + gap)
        sheet[y:y + th, x:x + tw] = tile[:th, :tw]
        cv2.putText(sheet, label, (x + 2, y + th + label_h - 4), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (220, 220, 220), 1, cv2.LINE_AA)
    return sheet


def write_image_u8(path: Path, rgb8: np.ndarray) -> None:
    """Write a uint8 RGB image (PNG/JPEG by extension) atomically."""
    import cv2

    from engine.errors import OutputError

    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(rgb8[:, :, ::-1])):
            raise OutputError("the image could not be encoded", path=str(path))


def write_proxies(
    clip: Clip,
    out_dir: str | Path,
    *,
    width: int = 320,
    every: int = 1,
    sheet_limit: int = 48,
    columns: int = 8,
    image_format: str = "jpg",
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ProxyResult:
    """Write ``thumbs/<stem>.<frame>.<ext>`` for every ``every``-th frame and ``contact_sheet.png``.

    Thumbnails already on disk are kept (resume); the sheet is rebuilt from them.
    """
    out = Path(out_dir)
    thumbs_dir = out / "thumbs"
    result = ProxyResult()
    frames = list(clip.frames)[:: max(1, int(every))]
    on_sheet = set(pick_frames(range(len(frames)), sheet_limit))
    tiles, labels = [], []
    started = time.monotonic()
    stem = "frame"
    for i, frame in enumerate(frames):
        check_cancel(cancel)
        path = thumbs_dir / f"{stem}.{frame:04d}.{image_format}"
        tile = None
        if path.exists():
            import cv2

            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is not None:
                tile = img[:, :, ::-1]
        if tile is None:
            tile = thumbnail(clip.read_uint8(frame), width)
            write_image_u8(path, tile)
        result.thumbnails.append(path)
        result.frames.append(frame)
        if i in on_sheet:
            tiles.append(tile)
            labels.append(str(frame))
        report(progress, Progress("thumbnails", i + 1, len(frames), frame=frame, started=started))
    if tiles:
        th, tw = tiles[0].shape[:2]
        tiles = [t if t.shape[:2] == (th, tw) else thumbnail(t, tw)[:th] for t in tiles]
        sheet = contact_sheet(tiles, labels, max(1, min(columns, len(tiles))))
        result.contact_sheet = out / "contact_sheet.png"
        write_image_u8(result.contact_sheet, sheet)
    return result
