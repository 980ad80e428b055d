"""The :class:`Clip`: random access to any plate by its own frame numbers.

A clip wraps a reader (image sequence or movie), a byte-budget frame cache and the plate's
colourspace. It never loads a whole shot: frames are decoded on demand and the least
recently used ones are dropped when the cache budget is reached.

>>> clip = open_clip("/shots/sh010/plate.####.exr")      # doctest: +SKIP
>>> clip.info.first, clip.info.fps                         # doctest: +SKIP
(1001, Fraction(24, 1))
>>> rgb = clip.read_working(1001)   # float32 HxWx3, display-referred sRGB for models   # doctest: +SKIP
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from engine.cache.lru import ByteLRU
from engine.errors import CorruptMedia, FrameOutOfRange, InputError, MissingFrames
from engine.media.sequence import VIDEO_EXTENSIONS, extension_of, is_pattern, missing_ranges
from engine.media.types import ClipInfo, FrameReader

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

log = logging.getLogger(__name__)

MissingPolicy = Literal["error", "hold", "black"]
MISSING_POLICIES: tuple[str, ...] = ("error", "hold", "black")


class Clip:
    """Frames of one plate, addressed by the plate's frame numbers.

    Do not build directly: use :func:`open_clip`. Clips made by :meth:`with_range` share the
    reader and the frame cache of their parent.
    """

    def __init__(
        self,
        reader: FrameReader,
        info: ClipInfo,
        *,
        missing: MissingPolicy = "error",
        cache: ByteLRU | None = None,
        ocio_config: str | None = None,
    ) -> None:
        if missing not in MISSING_POLICIES:
            raise InputError(f"unknown missing-frame policy {missing!r}", hint="Use error, hold or black")
        self._reader = reader
        self.info = info
        self.missing_policy: MissingPolicy = missing
        self._cache: ByteLRU = cache if cache is not None else ByteLRU(_default_frame_budget())
        self.ocio_config = ocio_config
        self._present = sorted(set(range(info.first, info.last + 1)) - set(info.missing))
        self._lock = threading.Lock()
        self._to_working = None
        self.readahead = 2
        self._pending: dict[tuple[int, str | None], Future] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._last_read: int | None = None
        self._pending_lock = threading.Lock()
        #: Frames that exist but cannot be decoded (frame -> error), found while reading under
        #: the hold/black policy; shared with the views made by :meth:`with_range`.
        self.damaged: dict[int, CorruptMedia | MissingFrames] = {}

    # --- range ---------------------------------------------------------------------------

    @property
    def first(self) -> int:
        return self.info.frame_in

    @property
    def last(self) -> int:
        return self.info.frame_out

    @property
    def frames(self) -> range:
        """Frame numbers of the working range (in..out)."""
        return self.info.frames

    def __len__(self) -> int:
        return self.info.frame_count

    def __iter__(self):
        return iter(self.frames)

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the display window."""
        return (self.info.height, self.info.width)

    def with_range(self, in_point: int | None = None, out_point: int | None = None) -> Clip:
        """A view of this clip limited to ``in_point..out_point`` (inclusive, plate frame numbers)."""
        lo = self.info.first if in_point is None else int(in_point)
        hi = self.info.last if out_point is None else int(out_point)
        if lo > hi:
            raise InputError(f"the in point {lo} is after the out point {hi}", path=self.info.path)
        for f in (lo, hi):
            if not self.info.first <= f <= self.info.last:
                raise FrameOutOfRange(
                    f"frame {f} is outside the clip ({self.info.first}-{self.info.last})", path=self.info.path,
                    hint="Choose in/out points inside the clip's frame range")
        view = Clip.__new__(Clip)
        view.__dict__.update(self.__dict__)
        view.info = dataclasses.replace(self.info, in_point=lo, out_point=hi)
        view._pending, view._pool, view._last_read = {}, None, None
        view._pending_lock = threading.Lock()
        return view

    def check_frame(self, frame: int) -> int:
        """Validate a frame number against the working range; returns it as int."""
        f = int(frame)
        if not self.first <= f <= self.last:
            raise FrameOutOfRange(
                f"frame {f} is outside the clip's range {self.first}-{self.last}", path=self.info.path,
                hint="Frames are the plate's own numbers; `roto info` shows the range")
        return f

    # --- pixels --------------------------------------------------------------------------

    def source_frame(self, frame: int) -> int | None:
        """The frame actually read for ``frame`` under the missing policy (None = black)."""
        f = self.check_frame(frame)
        if not self.info.missing or f not in self.info.missing:
            return f
        if self.missing_policy == "black":
            return None
        if self.missing_policy == "hold":
            i = bisect.bisect_right(self._present, f)
            if i > 0:
                return self._present[i - 1]
            return self._present[0] if self._present else None
        raise MissingFrames(f"frame {f} is missing from the sequence", path=self.info.path, frame=f,
                            missing=self.info.missing,
                            hint="Render or restore it, or pass --missing hold|black")

    def read(self, frame: int, layer: str | None = None) -> np.ndarray:
        """Pixels of ``frame``: float32 ``(H, W, C)``, plate colourspace, top-left origin.

        The returned array is shared with the cache and read-only; copy it to modify it.
        """
        src = self.source_frame(frame)
        if src is None:
            return self._black(layer)
        try:
            pixels = self._decode(src, layer)
        except (CorruptMedia, MissingFrames) as exc:
            # A frame that exists but cannot be decoded (damaged, truncated, deleted since the
            # listing) follows the missing-frame policy like an absent one; "error" raises.
            if self.missing_policy == "error" or self.info.kind != "sequence":
                raise
            pixels = self._substitute(src, layer, exc)
        self._read_ahead(int(frame), layer)
        return pixels

    def _black(self, layer: str | None) -> np.ndarray:
        import numpy as np

        channels = len(self._reader.layer_channels(layer))
        return _readonly(np.zeros((self.info.height, self.info.width, channels), np.float32))

    def _decode(self, src: int, layer: str | None) -> np.ndarray:
        if src in self.damaged:
            raise self.damaged[src]
        key = (id(self._reader), src, layer)
        pixels = self._cache.get(key)
        if pixels is None:
            with self._pending_lock:
                fut = self._pending.pop((src, layer), None)
            pixels = fut.result() if fut is not None else _readonly(self._reader.read(src, layer))
            self._cache.put(key, pixels)
        return pixels

    def _mark_damaged(self, src: int, exc: CorruptMedia | MissingFrames) -> None:
        if src not in self.damaged:
            self.damaged[src] = exc
            what = "black" if self.missing_policy == "black" else "the previous readable frame"
            log.warning("%s, frame %d: %s; using %s instead (--missing %s)", exc.path or self.info.path, src,
                        exc.message.rstrip("."), what, self.missing_policy)

    def _substitute(self, src: int, layer: str | None, exc: CorruptMedia | MissingFrames) -> np.ndarray:
        """Pixels standing in for the unreadable frame ``src`` under the hold/black policy."""
        self._mark_damaged(src, exc)
        if self.missing_policy == "hold":
            i = bisect.bisect_left(self._present, src)
            # the nearest readable frame before, else (at the head of the clip) the first one after
            for other in [*reversed(self._present[:i]), *self._present[i + 1:]]:
                if other in self.damaged:
                    continue
                try:
                    return self._decode(other, layer)
                except (CorruptMedia, MissingFrames) as more:
                    self._mark_damaged(other, more)
        return self._black(layer)

    def _read_ahead(self, frame: int, layer: str | None) -> None:
        """On sequential access, decode the next ``readahead`` frames in the background.

        Decoding then overlaps with the caller's work (tracking, matting, writing); frames
        come back from :meth:`read` exactly as a direct read would give them, errors included.
        """
        with self._pending_lock:
            self._schedule_ahead(frame, layer)

    def _schedule_ahead(self, frame: int, layer: str | None) -> None:
        last, self._last_read = self._last_read, frame
        if self.readahead <= 0 or last is None or abs(frame - last) != 1:
            if self._pending and (last is None or abs(frame - last) != 1):
                for fut in self._pending.values():
                    fut.cancel()
                self._pending.clear()
            return
        step = frame - last
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=max(1, min(self.readahead, os.cpu_count() or 1)),
                                            thread_name_prefix="roto-readahead")
        for i in range(1, self.readahead + 1):
            nxt = frame + step * i
            if not self.first <= nxt <= self.last:
                break
            src = self.source_frame(nxt)
            if src is None or src in self.damaged or (src, layer) in self._pending or (id(self._reader), src, layer) in self._cache:
                continue
            self._pending[(src, layer)] = self._pool.submit(lambda s=src: _readonly(self._reader.read(s, layer)))

    def read_rgb(self, frame: int) -> np.ndarray:
        """RGB float32 ``(H, W, 3)`` in plate space (grey replicated, alpha dropped)."""
        import numpy as np

        px = self.read(frame)
        c = px.shape[2]
        if c == 3:
            return px
        if c >= 4:
            return px[:, :, :3]
        if c == 1:
            return np.repeat(px, 3, axis=2)
        return np.concatenate([px, np.zeros_like(px[:, :, :1])], axis=2)[:, :, :3]

    def read_working(self, frame: int) -> np.ndarray:
        """RGB float32 ``(H, W, 3)`` converted to the models' working space.

        The working space is display-referred sRGB-encoded Rec.709; values are not clipped,
        so :meth:`from_working` inverts it exactly (see docs/decisions/DR002-colour.md).
        """
        return self._working_transform().apply(self.read_rgb(frame))

    def read_uint8(self, frame: int) -> np.ndarray:
        """RGB uint8 ``(H, W, 3)`` in the working space, clipped to 0..255: proxies, classical trackers."""
        import numpy as np

        w = self.read_working(frame)
        return (np.clip(w, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)

    def from_working(self, pixels: np.ndarray) -> np.ndarray:
        """Convert working-space RGB back to the plate's colourspace (exact inverse)."""
        return self._working_transform().inverse().apply(pixels)

    def _working_transform(self):
        with self._lock:
            if self._to_working is None:
                from engine.media.colour import WORKING_SPACE, ColourTransform

                self._to_working = ColourTransform(self.info.colourspace, WORKING_SPACE, config=self.ocio_config)
            return self._to_working

    @property
    def content_id(self) -> str:
        """Identity of the plate's content (file names, sizes, dates, head bytes): cache keys use it."""
        cid = self.__dict__.get("_content_id")
        if cid is None:
            from engine.cache.keys import clip_content_id
            from engine.media.sequence import find_sequence, path_for

            files = None
            if self.info.kind != "video":
                try:
                    seq = find_sequence(self.info.path)
                    files = [path_for(seq, f) for f in seq.frames]
                except Exception:
                    files = None
            cid = clip_content_id(self.info.path, files)
            self.__dict__["_content_id"] = cid
        return cid

    # --- lifetime ------------------------------------------------------------------------

    def close(self) -> None:
        for fut in self._pending.values():
            fut.cancel()
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._reader.close()
        self._cache.clear()

    def __enter__(self) -> Clip:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        i = self.info
        return f"<Clip {i.path} {i.width}x{i.height} {i.frame_in}-{i.frame_out} @ {float(i.fps):.3f} fps>"


def _readonly(a):
    a.flags.writeable = False
    return a


def _default_frame_budget() -> int:
    """The ``frames`` budget of :func:`engine.cache.budgets.resolve_budgets`, as ``roto batch`` uses.

    ``ROTO_CACHE_FRAMES_MB`` / ``[cache.budgets] frames_mb`` first, then the legacy
    ``ROTO_FRAME_CACHE_MB`` / ``[cache] frame_mb``, then the frames share of
    ``ROTO_MEMORY_BUDGET_MB`` / ``[cache] budget_mb`` or of the derived total.
    """
    from engine.cache.budgets import resolve_budgets
    from engine.config import load_settings

    return resolve_budgets(load_settings()).memory["frames"]


def open_clip(
    path: str | os.PathLike[str],
    *,
    colourspace: str | None = None,
    missing: MissingPolicy = "error",
    in_point: int | None = None,
    out_point: int | None = None,
    fps: str | float | None = None,
    ocio_config: str | None = None,
    cache_bytes: int | None = None,
) -> Clip:
    """Open a movie or image sequence as a :class:`Clip`.

    Parameters
    ----------
    path:
        A movie (MP4, MOV, AVI, WebM…), one frame of a sequence (``shot.1001.exr``), a
        pattern (``shot.####.exr``, ``shot.%04d.dpx``) or a folder.
    colourspace:
        Override the inferred input colourspace (an OCIO name or alias).
    missing:
        What to do with gaps in a sequence: ``"error"`` (stop here, naming the frames),
        ``"hold"`` (repeat the previous frame) or ``"black"``.
    in_point, out_point:
        Working range, in the plate's frame numbers.
    fps:
        Frame rate override for sequences (``"24000/1001"``, ``"23.976"``, ``25``): it wins over
        the rate the files state; sequences that state none default to 24. Movies keep their own.
    """
    text = os.fspath(path)
    ext = extension_of(text)
    if ext in VIDEO_EXTENSIONS and not is_pattern(text):
        from engine.media.readers.video import VideoReader

        reader: FrameReader = VideoReader(Path(text).expanduser())
    else:
        from engine.media.readers.sequence import SequenceReader

        reader = SequenceReader(text, fps=_parse_fps(fps) if fps is not None else None)
    info = reader.info
    if fps is not None and info.kind != "video":
        info = dataclasses.replace(info, fps=_parse_fps(fps), fps_source="user")
    if colourspace:
        from engine.media.colour import canonical_colourspace

        info = dataclasses.replace(info, colourspace=canonical_colourspace(colourspace, ocio_config),
                                   colourspace_source="user")
    elif not info.colourspace:
        from engine.media.colour import infer_colourspace

        name, source = infer_colourspace(info.format, info.metadata, info.pixel_type, ocio_config)
        info = dataclasses.replace(info, colourspace=name, colourspace_source=source)
    cache = ByteLRU(cache_bytes if cache_bytes is not None else _default_frame_budget())
    try:
        clip = Clip(reader, info, missing=missing, cache=cache, ocio_config=ocio_config)
        if in_point is not None or out_point is not None:
            clip = clip.with_range(in_point, out_point)
        # Only gaps inside the working range matter: frames outside it are never read, so a user
        # can cut around a gap with in/out points (--frames).
        gaps = [f for f in info.missing if clip.first <= f <= clip.last]
        if gaps and missing == "error":
            ranged = (clip.first, clip.last) != (info.first, info.last)
            raise MissingFrames(
                f"{len(gaps)} frame(s) missing{f' in {clip.first}-{clip.last}' if ranged else ''}: "
                f"{missing_ranges(gaps)}",
                path=info.path, missing=gaps,
                hint="Render or restore them, or pass --missing hold (repeat previous) or --missing black",
            )
    except BaseException:
        reader.close()
        raise
    return clip


def _parse_fps(value: str | float | int) -> Fraction:
    text = str(value).strip()
    named = {"23.976": Fraction(24000, 1001), "29.97": Fraction(30000, 1001), "59.94": Fraction(60000, 1001),
             "47.952": Fraction(48000, 1001), "119.88": Fraction(120000, 1001)}
    try:
        rate = named.get(text) or Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise InputError(f"the frame rate {text!r} is not a number", hint="Use e.g. 24, 25, 23.976 or 24000/1001") from None
    if not 0 < rate <= 1000:
        raise InputError(f"the frame rate {text} is out of range", hint="Use a rate between 1 and 1000 fps")
    return rate
