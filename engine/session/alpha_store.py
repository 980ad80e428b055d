"""Soft alpha that persists with a session: 16-bit PNGs in a folder beside the project file.

Layout: ``<project file>.alpha/<object id>/<frame>.<key>.png`` — one single-channel 16-bit PNG
per object and frame (``round(alpha * 65535)``, lossless to 1.5e-5, compact for mattes), written
atomically (temp file + rename). The project JSON keeps its RLE binary masks and, under
``meta["matte"][<object id>]``, how the alpha was made (backend token, controls, range): no pixels.

**Keys.** ``key = hash(matte token, the frame's mask RLE, occluded)``: the alpha of a frame is
found only while the mask it was computed from is still the frame's mask and the same matter
settings are in force. Editing a mask (or re-propagating) makes that frame's alpha invisible at
once; the exporter then falls back to the binary mask for it until ``roto matte`` runs again.
Older versions of a frame are kept (up to :data:`KEEP_VERSIONS`) so undoing an edit finds its
alpha again.

**Streaming.** Nothing is held in memory: :meth:`AlphaStore.get` reads one file. A session
without a project file keeps its alpha in a temporary folder for the life of the process.

The session exposes this through two small methods the exporter looks for
(:mod:`engine.export.aovs`): ``session.alpha(obj, frame)`` → float32 (H, W) or None, and
``session.alpha_signature(obj, frame)`` → what the frame's coverage depends on.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import OutputError
from engine.util.atomic import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from engine.session.session import Session

KEEP_VERSIONS = 3
META_KEY = "matte"
_NAME = re.compile(r"^(-?\d+)\.([0-9a-f]{16})\.png$")


class AlphaStore:
    """Alpha PNGs under ``folder`` (see the module doc)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    # --- paths -----------------------------------------------------------------------------

    def path(self, obj: int, frame: int, key: str) -> Path:
        return self.folder / str(int(obj)) / f"{int(frame)}.{key}.png"

    def versions(self, obj: int, frame: int) -> list[Path]:
        """The stored versions of one object's frame, newest first."""
        d = self.folder / str(int(obj))
        if not d.is_dir():
            return []
        found = []
        prefix = f"{int(frame)}."
        for p in d.iterdir():
            if p.name.startswith(prefix) and _NAME.match(p.name):
                with contextlib.suppress(OSError):
                    found.append((p.stat().st_mtime_ns, p))
        return [p for _t, p in sorted(found, reverse=True)]

    # --- read/write ----------------------------------------------------------------------------

    def has(self, obj: int, frame: int, key: str) -> bool:
        return self.path(obj, frame, key).is_file()

    def put(self, obj: int, frame: int, key: str, alpha: np.ndarray) -> Path:
        """Write ``alpha`` (float (H, W) in [0, 1]) atomically; prune old versions of the frame."""
        import cv2
        import numpy as np

        target = self.path(obj, frame, key)
        q = np.rint(np.clip(np.asarray(alpha, np.float32), 0.0, 1.0) * 65535.0).astype(np.uint16)
        with atomic_path(target) as tmp:
            if not cv2.imwrite(str(tmp), q, [cv2.IMWRITE_PNG_COMPRESSION, 3]):
                raise OutputError("the alpha PNG could not be written", path=str(target))
        for old in self.versions(obj, frame)[KEEP_VERSIONS:]:
            with contextlib.suppress(OSError):
                old.unlink()
        return target

    def get(self, obj: int, frame: int, key: str) -> np.ndarray | None:
        """float32 (H, W) in [0, 1], or None when that version is not stored (or unreadable)."""
        import cv2
        import numpy as np

        p = self.path(obj, frame, key)
        if not p.is_file():
            return None
        q = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        if q is None or q.dtype != np.uint16 or q.ndim != 2:
            return None
        return q.astype(np.float32) / 65535.0

    def remove_object(self, obj: int) -> None:
        d = self.folder / str(int(obj))
        if d.is_dir():
            for p in d.iterdir():
                with contextlib.suppress(OSError):
                    p.unlink()
            with contextlib.suppress(OSError):
                d.rmdir()


# --- the session side ------------------------------------------------------------------------


def store_for(session: Session) -> AlphaStore:
    """The session's store: ``<project>.alpha/`` beside its file, else a temporary folder."""
    from engine.session.sidecar import sidecar_store

    return sidecar_store(session, "alpha", AlphaStore)


def matte_record(session: Session, obj: int) -> dict[str, Any] | None:
    """How object ``obj``'s alpha was made (``meta["matte"][str(obj)]``), or None."""
    rec = (session.data.meta.get(META_KEY) or {}).get(str(int(obj)))
    return rec if isinstance(rec, dict) and rec.get("token") else None


def set_matte_record(session: Session, obj: int, record: dict[str, Any]) -> None:
    session.data.meta.setdefault(META_KEY, {})[str(int(obj))] = dict(record)


def frame_key(token: str, result: Any) -> str:
    """The key of one frame's alpha: matte token + the frame's mask RLE + occluded flag."""
    from engine.cache.keys import make_key

    return make_key(token, _mask_id(result.mask), bool(result.occluded))[:16]


def _mask_id(mask: Any) -> Any:
    """The identity of an RLE mask (``{"size", "rle"}``, :mod:`engine.ops.rle`): its size and runs."""
    if isinstance(mask, dict):
        return [mask.get("size"), mask.get("rle", mask.get("counts"))]
    return mask


def session_alpha_key(session: Session, obj: int, frame: int) -> str | None:
    rec = matte_record(session, obj)
    res = session.result(obj, frame)
    if rec is None or res is None:
        return None
    return frame_key(rec["token"], res)


def session_alpha(session: Session, obj: int, frame: int) -> np.ndarray | None:
    """The stored soft alpha of ``obj`` on ``frame`` for its current mask, or None."""
    key = session_alpha_key(session, obj, frame)
    if key is None:
        return None
    a = store_for(session).get(obj, frame, key)
    if a is not None and a.shape != tuple(session.shape):
        return None
    return a


def session_alpha_signature(session: Session, obj: int, frame: int) -> Any:
    """What ``obj``'s coverage on ``frame`` depends on: the alpha key when a soft alpha is stored,
    else the binary mask (RLE, occluded); None when the frame has no result."""
    res = session.result(obj, frame)
    if res is None:
        return None
    key = session_alpha_key(session, obj, frame)
    if key is not None and store_for(session).has(obj, frame, key):
        return ("alpha", key)
    return ("mask", _mask_id(res.mask), bool(res.occluded))
