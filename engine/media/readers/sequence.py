"""Image-sequence reader: a numbered sequence of EXR/DPX/PNG/TIFF/JPEG files (or one lone
image, read as a one-frame clip) behind the :class:`engine.media.types.FrameReader` protocol.

The sequence is resolved with :func:`engine.media.sequence.find_sequence` (a frame, a pattern
such as ``shot.####.exr`` / ``shot.%04d.dpx``, or a folder). :attr:`SequenceReader.info` is
filled from the header of the **first present frame**; the other frames are only opened when
read, and each is checked against it: a frame with another resolution or another default
channel count raises :class:`~engine.errors.InconsistentSequence`, a damaged one
:class:`~engine.errors.CorruptMedia` — both naming the file and the frame.

Frame rate: the header's (EXR ``framesPerSecond``, DPX frame rate) when stated
(``fps_source="file"``), else the ``fps`` given to the constructor or 24
(``fps_source="default"``). The colourspace is left empty: :func:`engine.media.clip.open_clip`
infers it from ``info.format``, ``info.metadata`` and ``info.pixel_type``.
"""

from __future__ import annotations

import os
import threading
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import (
    CorruptMedia,
    FrameOutOfRange,
    InconsistentSequence,
    MediaError,
    MediaNotFound,
    MissingFrames,
)
from engine.media.sequence import Sequence, find_sequence, path_for, single_file_path
from engine.media.types import ClipInfo, ImageHeader

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

DEFAULT_FPS = Fraction(24)


def _header_fps(header: ImageHeader) -> Fraction | None:
    value = header.attributes.get("fps")
    if value is None:
        return None
    try:
        rate = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        return None
    return rate if 0 < rate <= 1000 else None


def _with_frame(exc: MediaError, path: str, frame: int) -> MediaError:
    """The same error, located at ``path``/``frame`` (readers of single files know no frame)."""
    if exc.frame is not None and exc.path:
        return exc
    if isinstance(exc, MissingFrames):
        return MissingFrames(exc.message, path=exc.path or path, frame=frame, hint=exc.hint, missing=exc.missing)
    try:
        return type(exc)(exc.message, path=exc.path or path, frame=frame, hint=exc.hint)
    except TypeError:  # pragma: no cover - a subclass with another signature
        return exc


class SequenceReader:
    """Frames of an image sequence, addressed by the files' own frame numbers.

    Parameters
    ----------
    path:
        One frame (``/shots/sh010/plate.1001.exr``), a pattern (``plate.####.exr``,
        ``plate.%04d.dpx``, ``plate.@@@@.png``), a folder, or a lone image without frame number.
    fps:
        Frame rate used when the files do not state one (default 24).
    """

    def __init__(self, path: str | os.PathLike[str], fps: Fraction | None = None) -> None:
        from engine.media.readers.image import default_layer_channels, probe_image

        self._seq: Sequence = find_sequence(path)
        self._lone = single_file_path(self._seq) is not None
        first = self._seq.first
        first_path = path_for(self._seq, first)
        try:
            header = probe_image(first_path)
        except MediaError as exc:
            raise _with_frame(exc, str(first_path), first) from None
        self._header = header
        self._default_channels = default_layer_channels(header)
        self._lock = threading.Lock()
        self._closed = False

        stated = _header_fps(header)
        if stated is not None:
            rate, source = stated, "file"
        else:
            rate, source = (Fraction(fps) if fps else DEFAULT_FPS), "default"
        timecode = header.attributes.get("timecode")
        display_path = str(first_path) if self._lone else self._seq.pattern.hashes
        self.info = ClipInfo(
            path=display_path,
            kind="image" if self._lone else "sequence",
            format=header.format,
            first=first,
            last=self._seq.last,
            width=header.width,
            height=header.height,
            fps=rate,
            channels=header.channels,
            layers=header.layers,
            pixel_type=header.pixel_type,
            pixel_aspect=header.pixel_aspect,
            data_window=header.data_window,
            display_window=header.display_window,
            colourspace="",
            colourspace_source="",
            fps_source=source,
            timecode=timecode if isinstance(timecode, str) else None,
            missing=self._seq.missing,
            metadata=dict(header.attributes),
        )

    # --- FrameReader --------------------------------------------------------------------------

    @property
    def header(self) -> ImageHeader:
        """The first present frame's header."""
        return self._header

    @property
    def sequence(self) -> Sequence:
        return self._seq

    def frame_path(self, frame: int) -> Path:
        """The file of ``frame`` (whether or not it exists)."""
        return path_for(self._seq, int(frame))

    def layer_channels(self, layer: str | None = None) -> tuple[str, ...]:
        """Channel names :meth:`read` returns for ``layer`` (from the first frame's header)."""
        from engine.media.readers.image import layer_channels

        if layer is None:
            return self._default_channels
        return layer_channels(self._header, layer)

    def read(self, frame: int, layer: str | None = None) -> np.ndarray:
        """Pixels of ``frame``: float32 ``(H, W, C)`` of the display window, plate colourspace."""
        from engine.media.readers.image import read_image

        f = int(frame)
        if not self.info.first <= f <= self.info.last:
            raise FrameOutOfRange(f"frame {f} is outside the sequence's range {self.info.first}-{self.info.last}",
                                  path=self.info.path, frame=f,
                                  hint="Frames are the files' own numbers; `roto info` shows the range")
        path = self.frame_path(f)
        text = str(path)
        if f in self.info.missing or not path.exists():
            raise MissingFrames(f"frame {f} is missing from the sequence (no file {path.name})", path=text, frame=f,
                                missing=(f,), hint="Render or restore it, or pass --missing hold|black")
        expected = self.layer_channels(layer)
        try:
            pixels, names = read_image(path, layer)
        except MediaNotFound as exc:  # deleted between the listing and now
            raise MissingFrames(exc.message, path=text, frame=f, missing=(f,),
                                hint="Render or restore it, or pass --missing hold|black") from None
        except CorruptMedia as exc:
            # CorruptMedia means the file's bytes are damaged (errors.py); in a sequence such a frame
            # can be stood in for (Clip applies --missing hold|black), a lone image cannot.
            if self._lone:
                raise _with_frame(exc, text, f) from None
            raise CorruptMedia(exc.message, path=exc.path or text, frame=f,
                               hint="Re-render or re-export the frame; if it is only this frame, use --missing hold "
                                    "(repeat the previous frame) or --missing black") from None
        except MediaError as exc:
            raise _with_frame(exc, text, f) from None
        h, w = pixels.shape[:2]
        if (w, h) != (self.info.width, self.info.height):
            raise InconsistentSequence(
                f"this frame is {w}x{h}, but the sequence is {self.info.width}x{self.info.height} "
                f"(from frame {self.info.first})", path=text, frame=f,
                hint="Every frame of a sequence must have the same resolution; re-render or reformat this frame")
        if len(names) != len(expected):
            what = "default layer" if layer is None else f"layer {layer!r}"
            raise InconsistentSequence(
                f"this frame's {what} has {len(names)} channel(s) ({', '.join(names)}), but frame "
                f"{self.info.first} has {len(expected)} ({', '.join(expected)})", path=text, frame=f,
                hint="Every frame of a sequence must have the same channels; re-render this frame")
        return pixels

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def __enter__(self) -> SequenceReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        i = self.info
        return f"<SequenceReader {i.path} {i.first}-{i.last} {i.width}x{i.height} {i.format}>"
