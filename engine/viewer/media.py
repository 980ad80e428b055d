"""Pictures for the viewer: plate proxies (JPEG), object overlays, mattes, depth, thumbnail strips.

**Reads never wait for a job.** A propagation holds its session's lock for its whole run; the
viewer must still scrub and play meanwhile. So the plate is read through the viewer's own
:class:`~engine.media.clip.Clip` (one per session, at most :data:`READERS` frames decoded at once,
no float frame cache: the encoded images are what is cached), and masks are read straight from
the session's result table, one dict lookup per object (atomic under the GIL; a propagation
writes results as it goes, so the viewer shows them live). Nothing here changes the session.

**Caching.** Encoded images live in one byte-budget LRU (``ROTO_VIEWER_CACHE_MB``, default 384).
Plate proxies are keyed by the plate's content id, frame and size; overlays and mattes by a
digest of the masks they are drawn from, which is also their HTTP ``ETag`` (the browser
revalidates with ``If-None-Match`` and gets ``304`` until the masks change).

**Overlay encoding.** ``overlay/{frame}.png`` is an object-id map, not a picture: an 8-bit RGB
PNG whose red channel is ``id & 255`` and green ``id >> 8`` (0 = no object), resized with
nearest-neighbour to the size of the plate proxy. Overlaps are resolved as in the Cryptomatte
and id exports (:func:`engine.ops.idmatte.id_matte`). The browser colours it, so colour,
opacity, fill/outline and hiding objects need no request.

Sizes: ``size`` is the longest side in pixels (0 = the plate's full resolution); every image of
one frame and size has the same dimensions (:func:`fit_size`).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from typing import TYPE_CHECKING, Any

from engine.cache.lru import ByteLRU
from engine.errors import OutputError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from engine.media.clip import Clip
    from engine.session.session import Session

DEFAULT_CACHE_MB = 384
#: plate frames decoded at once per session (readers are thread-safe; movies decode one at a time anyway)
READERS = max(2, min(4, os.cpu_count() or 2))
JPEG_QUALITY = 88


def fit_size(width: int, height: int, size: int) -> tuple[int, int]:
    """``(w, h)`` of a ``width`` x ``height`` plate scaled so its longest side is at most ``size``
    (``size <= 0``: full size)."""
    longest = max(width, height)
    if size <= 0 or size >= longest:
        return width, height
    scale = size / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _resize(img: np.ndarray, wh: tuple[int, int], nearest: bool = False) -> np.ndarray:
    import cv2

    if (img.shape[1], img.shape[0]) == wh:
        return img
    return cv2.resize(img, wh, interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)


def _encode(ext: str, img: np.ndarray, params: list[int] | None = None) -> bytes:
    import cv2
    import numpy as np

    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(img), params or [])
    if not ok:
        raise OutputError(f"the viewer could not encode a {ext} image")
    return buf.tobytes()


def _digest(*parts: Any) -> str:
    h = hashlib.sha1()
    for p in parts:
        h.update(p.encode("utf-8") if isinstance(p, str) else json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\x00")
    return h.hexdigest()[:24]


def results_on(session: Session, frame: int, objects: list[int] | None = None) -> list[tuple[int, Any]]:
    """``(object id, FrameResult)`` of every (chosen) object with a result on ``frame``, without locks."""
    data = session.data
    ids = sorted(dict(data.objects)) if objects is None else sorted(set(objects))
    out = []
    for oid in ids:
        res = data.results.get((oid, int(frame)))
        if res is not None:
            out.append((oid, res))
    return out


class ViewerMedia:
    """The viewer's readers and image cache, shared by every session of one server."""

    def __init__(self, budget_bytes: int | None = None) -> None:
        if budget_bytes is None:
            try:
                budget_bytes = int(float(os.environ.get("ROTO_VIEWER_CACHE_MB", DEFAULT_CACHE_MB)) * 1024 * 1024)
            except ValueError:
                budget_bytes = DEFAULT_CACHE_MB * 1024 * 1024
        self.cache: ByteLRU[bytes] = ByteLRU(max(0, budget_bytes), sizeof=len)
        self._clips: dict[str, tuple[tuple, Clip, threading.BoundedSemaphore]] = {}
        self._lock = threading.Lock()
        self._transforms: dict[tuple, Any] = {}

    # --- the plate -------------------------------------------------------------------------

    def clip(self, sid: str, session: Session) -> tuple[Clip, threading.BoundedSemaphore]:
        """The viewer's own reader of the session's plate (opened on first use)."""
        ref = session.data.clip
        key = (ref.path, ref.colourspace, ref.missing, ref.in_point, ref.out_point, ref.fps, ref.ocio_config)
        with self._lock:
            got = self._clips.get(sid)
            if got is not None and got[0] == key:
                return got[1], got[2]
        from engine.media.clip import open_clip

        clip = open_clip(ref.path, colourspace=ref.colourspace, missing=ref.missing,  # type: ignore[arg-type]
                         in_point=ref.in_point, out_point=ref.out_point, fps=ref.fps, ocio_config=ref.ocio_config,
                         cache_bytes=0)
        clip.readahead = 3
        with self._lock:
            old = self._clips.get(sid)
            if old is not None and old[0] == key:
                clip.close()
                return old[1], old[2]
            self._clips[sid] = (key, clip, threading.BoundedSemaphore(READERS))
            if old is not None:
                old[1].close()
            return clip, self._clips[sid][2]

    def forget(self, sid: str) -> None:
        with self._lock:
            got = self._clips.pop(sid, None)
        if got is not None:
            got[1].close()

    def close(self) -> None:
        with self._lock:
            clips = list(self._clips.values())
            self._clips.clear()
        for _, clip, _ in clips:
            clip.close()
        self.cache.clear()

    def _plate_u8(self, sid: str, session: Session, frame: int, wh: tuple[int, int]) -> np.ndarray:
        """uint8 RGB of ``frame`` at ``wh``, display-referred (the models' working space, as
        ``Clip.read_uint8``): resized in the plate's space first, so the colour transform runs on
        the proxy's pixels only (a 1080p plate to a 1280 proxy: about 2.5x faster)."""
        import numpy as np

        from engine.media.colour import WORKING_SPACE, ColourTransform

        clip, lock = self.clip(sid, session)
        with lock:
            rgb = clip.read_rgb(int(frame))
        small = _resize(np.asarray(rgb, np.float32), wh)
        key = ("transform", clip.info.colourspace, str(clip.ocio_config))
        with self._lock:
            tr = self._transforms.get(key)
        if tr is None:
            tr = ColourTransform(clip.info.colourspace, WORKING_SPACE, config=clip.ocio_config)
            with self._lock:
                self._transforms[key] = tr
        out = np.nan_to_num(tr.apply(small), nan=0.0, posinf=1.0, neginf=0.0)
        return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)

    def frame_jpeg(self, sid: str, session: Session, frame: int, size: int, quality: int = JPEG_QUALITY) -> bytes:
        """The plate's ``frame`` as display-referred 8-bit JPEG, longest side ``size`` (0 = full)."""
        import cv2

        ref = session.data.clip
        wh = fit_size(ref.width, ref.height, size)
        key = ("frame", ref.content_id, ref.path, int(frame), wh, int(quality))
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        img = self._plate_u8(sid, session, frame, wh)
        data = _encode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        self.cache.put(key, data)
        return data

    def thumbs(self, sid: str, session: Session, frames: list[int], height: int) -> bytes:
        """A horizontal strip of ``len(frames)`` thumbnails ``height`` pixels high (JPEG)."""
        import cv2
        import numpy as np

        ref = session.data.clip
        tw = max(8, round(ref.width * height / max(1, ref.height)))
        key = ("thumbs", ref.content_id, ref.path, tuple(frames), int(height))
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        strip = np.zeros((height, tw * len(frames), 3), np.uint8)
        for i, f in enumerate(frames):
            strip[:, i * tw:(i + 1) * tw] = self._plate_u8(sid, session, f, (tw, height))
        data = _encode(".jpg", strip, [cv2.IMWRITE_JPEG_QUALITY, 80])
        self.cache.put(key, data)
        return data

    # --- results ---------------------------------------------------------------------------

    def overlay_tag(self, session: Session, frame: int, size: int) -> tuple[str, list[tuple[int, Any]]]:
        items = [(o, r) for o, r in results_on(session, frame) if not r.occluded]
        tag = _digest("overlay", session.data.id, int(frame), int(size),
                      [(o, r.confidence, r.mask.get("rle")) for o, r in items])
        return tag, items

    def overlay_png(self, session: Session, frame: int, size: int) -> tuple[bytes | None, str]:
        """The object-id map of ``frame`` (see the module doc) and its ETag; None when no object has a mask."""
        import cv2
        import numpy as np

        from engine.ops import rle
        from engine.ops.idmatte import id_matte

        tag, items = self.overlay_tag(session, frame, size)
        if not items:
            return None, tag
        key = ("overlay", tag)
        hit = self.cache.get(key)
        if hit is not None:
            return hit, tag
        ref = session.data.clip
        ids = id_matte([(o, rle.decode(r.mask), r.confidence) for o, r in items], session.shape)
        ids = _resize(ids, fit_size(ref.width, ref.height, size), nearest=True)
        rgb = np.zeros(ids.shape + (3,), np.uint8)
        rgb[:, :, 0] = (ids & 255).astype(np.uint8)
        rgb[:, :, 1] = (ids >> 8).astype(np.uint8)
        data = _encode(".png", rgb, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        self.cache.put(key, data)
        return data, tag

    def matte_tag(self, session: Session, frame: int, size: int, objects: list[int] | None) -> tuple[str, list]:
        items = results_on(session, frame, objects)
        matte_meta = session.data.meta.get("matte")
        tag = _digest("matte", session.data.id, int(frame), int(size), matte_meta,
                      [(o, r.occluded, r.mask.get("rle")) for o, r in items])
        return tag, items

    def matte_png(self, session: Session, frame: int, size: int, objects: list[int] | None) -> tuple[bytes, str]:
        """Grey 8-bit matte of the chosen objects (their soft alpha when ``roto matte`` stored one,
        else the mask), combined by maximum; black when none has a result."""
        import cv2
        import numpy as np

        from engine.ops import rle

        tag, items = self.matte_tag(session, frame, size, objects)
        key = ("matte", tag)
        hit = self.cache.get(key)
        if hit is not None:
            return hit, tag
        h, w = session.shape
        out = np.zeros((h, w), np.float32)
        for o, r in items:
            if r.occluded:
                continue
            a = session.alpha(o, frame)
            if a is None:
                a = rle.decode(r.mask).astype(np.float32)
            np.maximum(out, a, out=out)
        ref = session.data.clip
        img = _resize((np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8), fit_size(ref.width, ref.height, size))
        data = _encode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        self.cache.put(key, data)
        return data, tag

    def depth_png(self, session: Session, frame: int, size: int) -> bytes | None:
        """Depth of ``frame`` as grey 8-bit (near = white; 2nd-98th percentile of the frame), or None."""
        import numpy as np

        from engine.depth.store import depth_record

        rec = depth_record(session)
        if rec is None:
            return None
        key = ("depth", session.data.id, rec.get("token"), rec.get("convention"), int(frame), int(size))
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        z = session.depth(int(frame))
        if z is None:
            return None
        z = np.asarray(z, np.float32)
        finite = z[np.isfinite(z)]
        if finite.size == 0:
            img = np.zeros(z.shape, np.uint8)
        else:
            lo, hi = np.percentile(finite, [2, 98])
            t = np.clip((np.nan_to_num(z, nan=hi, posinf=hi, neginf=lo) - lo) / max(1e-9, hi - lo), 0, 1)
            img = ((1.0 - t) * 255 + 0.5).astype(np.uint8)
        ref = session.data.clip
        data = _encode(".png", _resize(img, fit_size(ref.width, ref.height, size)))
        self.cache.put(key, data)
        return data
