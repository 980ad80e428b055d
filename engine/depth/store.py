"""Depth kept with a session, and the ``Session.depth`` / ``Session.normals`` seam of the exporter.

Layout: ``<project file>.depth/<frame>.exr`` — one float32, ZIP-compressed EXR per frame with
channel ``Z`` (planar depth, :mod:`engine.ops.depth_convention`), ``confidence`` when the model
gives one and ``N.X N.Y N.Z`` when the model predicts normals; the camera goes in the header
(``roto/K``: 3x3 intrinsics, ``roto/w2c``: 3x4 world-to-camera, JSON) with ``roto/depthToken``.
Written atomically. The project JSON keeps, under ``meta["depth"]``, how the depth was made
(model, reason, settings, token, the delivery convention): no pixels. A session without a
project file keeps its depth in a temporary folder for the life of the process.

**Seam.** The exporter's ``depth``/``normals`` providers (:mod:`engine.export.aovs`) are
available when ``session.depth``/``session.normals`` is callable. :class:`SessionSeam` makes
them callable *only once depth is stored*: before ``roto depth`` they are ``None``, so exports
of sessions without depth carry no empty ``depth.Z``/``N`` layers. Once stored:

* ``session.depth(frame)`` → float32 (H, W) in the session's convention (``distance`` by
  default: camera distance; ``z``; ``inverse_z`` = Nuke 1/Z), or None for a frame without depth;
* ``session.normals(frame)`` → float32 (H, W, 3) camera space, Nuke/OpenGL axes (``+Y`` up,
  ``+Z`` towards the viewer): the model's own normals when it predicted them, else derived from
  the depth and the intrinsics (:func:`engine.ops.normals.normals_from_depth`);
* ``session.depth_signature(frame)`` / ``normals_signature(frame)`` → what they depend on
  (the exporter's resume digest).

Frames whose stored token differs from the session's record (a stale file from an earlier run)
read as None. Intrinsics: the stored ones, else an assumed 50° lens (``meta["depth"]["camera"]``
says which). Standard library only at import.
"""

from __future__ import annotations

import contextlib
import json
import os
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import OutputError
from engine.util.atomic import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from engine.depth.base import DepthOut
    from engine.session.session import Session

META_KEY = "depth"
NORMALS_VERSION = 1  # bump when engine.ops.normals changes what it computes


class StoredDepth:
    """One frame read back: planar depth, confidence, normals (or None), intrinsics, extrinsics, token."""

    def __init__(self, z: Any, confidence: Any, normals: Any, K: Any, w2c: Any, token: str) -> None:
        self.z, self.confidence, self.normals, self.K, self.w2c, self.token = z, confidence, normals, K, w2c, token


class DepthStore:
    """Per-frame depth EXRs under ``folder`` (see the module doc)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def path(self, frame: int) -> Path:
        return self.folder / f"{int(frame)}.exr"

    def has(self, frame: int) -> bool:
        return self.path(frame).is_file()

    def put(self, frame: int, out: DepthOut, token: str) -> Path:
        import numpy as np
        import OpenEXR

        z = np.ascontiguousarray(np.asarray(out.depth, np.float32))
        channels: dict[str, Any] = {"Z": z}
        if out.confidence is not None:
            channels["confidence"] = np.ascontiguousarray(np.asarray(out.confidence, np.float32))
        if out.normals is not None:
            n = np.asarray(out.normals, np.float32)
            for i, c in enumerate("XYZ"):
                channels[f"N.{c}"] = np.ascontiguousarray(n[:, :, i])
        header: dict[str, Any] = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage,
                                  "roto/depthToken": token, "roto/frame": str(int(frame))}
        if out.intrinsics is not None:
            header["roto/K"] = json.dumps(np.asarray(out.intrinsics, np.float64).tolist())
        if out.extrinsics is not None:
            header["roto/w2c"] = json.dumps(np.asarray(out.extrinsics, np.float64)[:3].tolist())
        target = self.path(frame)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            try:
                OpenEXR.File(header, channels).write(str(tmp))
            except Exception as exc:  # noqa: BLE001 - OpenEXR raises RuntimeError with the C++ text
                raise OutputError(f"the depth file could not be written ({exc})", path=str(target)) from exc
        return target

    def get(self, frame: int) -> StoredDepth | None:
        import numpy as np
        import OpenEXR

        p = self.path(frame)
        if not p.is_file():
            return None
        try:
            with OpenEXR.File(str(p)) as f:
                h = dict(f.header())  # closing the file empties the library's own dict
                ch = f.channels()
                z = np.array(ch["Z"].pixels, np.float32)
                conf = np.array(ch["confidence"].pixels, np.float32) if "confidence" in ch else None
                nrm = None
                if all(f"N.{c}" in ch for c in "XYZ"):
                    nrm = np.stack([np.asarray(ch[f"N.{c}"].pixels, np.float32) for c in "XYZ"], axis=-1)
        except Exception:  # noqa: BLE001 - a damaged file reads as "no depth" (re-run roto depth)
            return None
        K = np.array(json.loads(h["roto/K"]), np.float64) if "roto/K" in h else None
        E = np.array(json.loads(h["roto/w2c"]), np.float64) if "roto/w2c" in h else None
        return StoredDepth(z, conf, nrm, K, E, str(h.get("roto/depthToken", "")))

    def clear(self) -> None:
        if self.folder.is_dir():
            for p in self.folder.glob("*.exr"):
                with contextlib.suppress(OSError):
                    p.unlink()


# --- the session side ------------------------------------------------------------------------


def store_for(session: Session) -> DepthStore:
    """The session's store: ``<project>.depth/`` beside its file, else a temporary folder."""
    from engine.session.sidecar import sidecar_store

    return sidecar_store(session, "depth", DepthStore)


def depth_record(session: Session) -> dict[str, Any] | None:
    rec = session.data.meta.get(META_KEY)
    return rec if isinstance(rec, dict) and rec.get("token") else None


def has_depth(session: Session) -> bool:
    data = getattr(session, "data", None)
    meta = getattr(data, "meta", None)
    return isinstance(meta, dict) and depth_record(session) is not None


def set_depth_record(session: Session, record: dict[str, Any]) -> None:
    session.data.meta[META_KEY] = dict(record)


def set_convention(session: Session, convention: str) -> None:
    """Choose what ``session.depth(frame)`` (and so ``roto export``'s ``depth.Z``) delivers."""
    from engine.ops.depth_convention import normalise_convention

    rec = depth_record(session)
    if rec is None:
        raise OutputError("the session has no depth yet", hint="Run roto depth INPUT --session FILE first")
    rec["convention"] = normalise_convention(convention)


def stored_frame(session: Session, frame: int) -> StoredDepth | None:
    """The frame's stored depth when it belongs to the session's current depth record."""
    rec = depth_record(session)
    if rec is None:
        return None
    cache: dict[int, Any] = session.__dict__.setdefault("_depth_cache", {})
    key = (rec["token"], int(frame))
    hit = cache.get(key)
    if hit is not None:
        return hit
    got = store_for(session).get(int(frame))
    if got is None or got.token != rec["token"] or tuple(got.z.shape) != tuple(session.shape):
        return None
    if len(cache) >= 4:
        cache.clear()
    cache[key] = got
    return got


def frame_intrinsics(session: Session, got: StoredDepth) -> np.ndarray:
    from engine.ops.camera_geometry import default_intrinsics

    return got.K if got.K is not None else default_intrinsics(tuple(got.z.shape))


def session_depth(session: Session, frame: int) -> np.ndarray | None:
    """float32 (H, W) in the session's convention, or None (see the module doc)."""
    from engine.ops.depth_convention import from_z

    got = stored_frame(session, frame)
    if got is None:
        return None
    conv = (depth_record(session) or {}).get("convention", "distance")
    return from_z(got.z, conv, frame_intrinsics(session, got))


def session_normals(session: Session, frame: int) -> np.ndarray | None:
    """float32 (H, W, 3) camera-space normals (Nuke/OpenGL axes), or None."""
    from engine.ops.normals import normals_from_depth

    got = stored_frame(session, frame)
    if got is None:
        return None
    if got.normals is not None:
        return got.normals
    return normals_from_depth(got.z, frame_intrinsics(session, got), convention="gl")


def depth_signature(session: Session, frame: int) -> Any:
    rec = depth_record(session) or {}
    return [rec.get("token"), rec.get("convention", "distance"), int(frame), store_for(session).has(int(frame))]


def normals_signature(session: Session, frame: int) -> Any:
    rec = depth_record(session) or {}
    return [rec.get("token"), "normals", NORMALS_VERSION, int(frame), store_for(session).has(int(frame))]


_READERS = {"depth": session_depth, "normals": session_normals}


class SessionSeam:
    """``session.depth`` / ``session.normals``: a bound method once depth is stored, else None.

    A non-data descriptor: assigning ``session.depth = fn`` on an instance still overrides it
    (tests and embedding applications do that).
    """

    def __init__(self, what: str) -> None:
        if what not in _READERS:
            raise ValueError(f"unknown depth seam {what!r}")
        self.what = what
        self.__doc__ = _READERS[what].__doc__

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        if not has_depth(obj):
            return None
        return types.MethodType(_READERS[self.what], obj)
