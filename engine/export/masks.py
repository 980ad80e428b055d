"""Binary matte sequences: one 8-bit single-channel PNG (0/255) per frame and object.

Files are ``<object>.<frame>.png`` (the plate's own frame numbers, padded like the plate's file
names: at least 4 digits), written atomically.
Frames where an object has no mask (not propagated, occluded) are written black, so every
plate frame has its file.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import OutputError
from engine.export.naming import frame_text
from engine.util.atomic import atomic_path
from engine.util.progress import CancelToken, Progress, ProgressCallback, check_cancel, report

if TYPE_CHECKING:  # pragma: no cover
    from engine.session.session import Session


def safe_name(name: str) -> str:
    """A file-name-safe object name (letters, digits, ``_-``; other characters become ``_``)."""
    cleaned = re.sub(r"[^\w\-]+", "_", name.strip(), flags=re.UNICODE).strip("_")
    return cleaned or "object"


def write_mask_png(path: Path, mask: np.ndarray) -> None:
    import cv2

    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), np.where(mask, 255, 0).astype(np.uint8)):
            raise OutputError("the PNG could not be written", path=str(path))


def write_mask_sequence(session: Session, out_dir: str | Path, objects: list[int] | None = None, *,
                        progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> dict[str, str]:
    """Write every object's mask for every frame of the session range; returns ``{object: pattern}``."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"the output folder cannot be created ({exc.strerror})", path=str(out)) from exc
    objs = [session.data.objects[o] for o in (objects or sorted(session.data.objects))]
    names: dict[int, str] = {}
    used: set[str] = set()
    for o in objs:
        base = safe_name(o.name)
        name, i = base, 2
        while name in used:
            name, i = f"{base}_{i}", i + 1
        used.add(name)
        names[o.id] = name
    lo, hi = session.frame_range
    pad = session.frame_digits
    empty = np.zeros(session.shape, bool)
    total = (hi - lo + 1) * len(objs)
    done = 0
    started = time.monotonic()
    for frame in range(lo, hi + 1):
        check_cancel(cancel)
        for o in objs:
            m = session.mask(o.id, frame)
            write_mask_png(out / f"{names[o.id]}.{frame_text(frame, pad)}.png", empty if m is None else m)
            done += 1
        report(progress, Progress("write mattes", done, total, frame=frame, started=started))
    return {names[o.id]: str(out / f"{names[o.id]}.{'#' * pad}.png") for o in objs}
