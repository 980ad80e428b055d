"""Plain values shared by the media layer: rectangles, image headers, clip summaries.

Conventions (every reader honours them):

* pixels are ``numpy.float32``, shape ``(H, W, C)``, origin top-left, in the plate's own
  colourspace (scene-linear EXR stays linear, log DPX stays log, 8-bit video is 0..1);
* ``H x W`` is the **display window**; pixels of the data window outside it are cropped,
  display-window pixels outside the data window are 0;
* frames are the plate's own frame numbers (1001…).

Standard library only (numpy is referred to in annotations, not imported).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


@dataclass(frozen=True)
class Rect:
    """Pixel rectangle, top-left origin: ``x, y`` of the first pixel, then width and height."""

    x: int
    y: int
    width: int
    height: int

    @classmethod
    def from_box(cls, xmin: int, ymin: int, xmax: int, ymax: int) -> Rect:
        """From an inclusive box (OpenEXR's ``(xMin, yMin), (xMax, yMax)``)."""
        return cls(int(xmin), int(ymin), int(xmax) - int(xmin) + 1, int(ymax) - int(ymin) + 1)

    @property
    def box(self) -> tuple[int, int, int, int]:
        """Inclusive ``(xmin, ymin, xmax, ymax)``."""
        return (self.x, self.y, self.x + self.width - 1, self.y + self.height - 1)

    def __str__(self) -> str:
        return f"{self.width}x{self.height}+{self.x}+{self.y}"


@dataclass(frozen=True)
class ImageHeader:
    """What a still-image file holds, read without decoding pixels.

    ``channels`` lists every channel of every layer and part (``"R"``, ``"depth.Z"``,
    ``"matte_hero.A"``). ``layers`` lists the layer names; ``""`` is the unnamed (rgba) layer.
    ``pixel_type`` is ``"half"``, ``"float"``, ``"uint32"``, ``"uint8"``, ``"uint10"``,
    ``"uint12"`` or ``"uint16"``. ``attributes`` holds header metadata as plain values
    (str, int, float, lists).
    """

    path: str
    format: str
    width: int
    height: int
    channels: tuple[str, ...]
    layers: tuple[str, ...] = ("",)
    pixel_type: str = "float"
    data_window: Rect | None = None
    display_window: Rect | None = None
    pixel_aspect: float = 1.0
    parts: int = 1
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClipInfo:
    """Summary of a clip: what ``roto info`` prints and what every command relies on.

    ``first``/``last`` are the frames available; ``in_point``/``out_point`` the working range
    (defaults: first/last). ``missing`` lists frame numbers without a file (sequences only).
    ``fps`` is exact (``Fraction(24000, 1001)``); ``vfr`` is True when a movie's frame
    timing is variable (frames are then numbered in decode order at the average rate).
    """

    path: str
    kind: str  # "sequence" | "video" | "image"
    format: str  # "exr", "dpx", "png", "mov", ...
    first: int
    last: int
    width: int
    height: int
    fps: Fraction
    channels: tuple[str, ...]
    layers: tuple[str, ...] = ("",)
    pixel_type: str = "float"
    pixel_aspect: float = 1.0
    in_point: int | None = None
    out_point: int | None = None
    data_window: Rect | None = None
    display_window: Rect | None = None
    colourspace: str = ""
    colourspace_source: str = ""  # "file", "format", "user"
    fps_source: str = "file"  # "file" | "default"
    timecode: str | None = None
    vfr: bool = False
    codec: str | None = None
    missing: tuple[int, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def frame_in(self) -> int:
        return self.first if self.in_point is None else self.in_point

    @property
    def frame_out(self) -> int:
        return self.last if self.out_point is None else self.out_point

    @property
    def frame_count(self) -> int:
        """Frames in the working range, including missing ones."""
        return self.frame_out - self.frame_in + 1

    @property
    def frames(self) -> range:
        """The working range as plate frame numbers."""
        return range(self.frame_in, self.frame_out + 1)

    @property
    def duration_seconds(self) -> float:
        return float(self.frame_count / self.fps) if self.fps else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (``roto info --json``)."""
        data = asdict(self)
        data["fps"] = {"num": self.fps.numerator, "den": self.fps.denominator, "value": round(float(self.fps), 6)}
        data["in_point"], data["out_point"] = self.frame_in, self.frame_out
        data["frame_count"] = self.frame_count
        data["channels"] = list(self.channels)
        data["layers"] = list(self.layers)
        data["missing"] = list(self.missing)
        for key in ("data_window", "display_window"):
            rect = getattr(self, key)
            data[key] = None if rect is None else asdict(rect)
        data["metadata"] = {k: _plain(v) for k, v in self.metadata.items()}
        return data


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class FrameReader(Protocol):
    """What :class:`engine.media.clip.Clip` needs from a reader (sequence or movie).

    ``info`` is probed when the reader is built (``info.channels`` lists every channel the
    file holds). ``read`` returns float32 ``(H, W, C)`` in plate space: for the default layer
    RGB or RGBA (luminance/chroma EXRs are converted to RGB; plain grey images give one
    channel), or the named ``layer``'s channels; ``layer_channels(layer)`` names what ``read``
    returns, in order. Raises a
    :class:`engine.errors.MediaError` subclass naming the file and frame on failure.
    """

    info: ClipInfo

    def read(self, frame: int, layer: str | None = None) -> np.ndarray: ...

    def layer_channels(self, layer: str | None = None) -> tuple[str, ...]: ...

    def close(self) -> None: ...
