"""Per-frame matte files for ``roto matte``: ``<object>.<frame>.<ext>``, 16-bit PNG or half EXR.

* ``png16`` — one grey channel, ``round(alpha * 65535)``, through the PNG writer of
  :mod:`engine.export.images` (atomic, with the exporter's record).
* ``exr`` — one channel ``A`` (half, ZIP) through :func:`engine.export.exr.write_exr`, with the
  plate's frame rate, per-frame timecode, windows and our record in the header (what Flame reads).

Optional extra outputs per object: ``<object>_core`` and ``<object>_edge``
(:func:`engine.ops.core_edge.core_edge`, so core + edge = alpha); and per frame a despilled plate
``despill.<frame>.<ext>`` (RGB: sRGB-encoded working space in PNG, linear Rec.709 half in EXR).
Frame numbers are the plate's own, zero-padded to four digits like every roto sequence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import InputError, OutputError
from engine.export.naming import frame_text

if TYPE_CHECKING:  # pragma: no cover
    from engine.session.session import Session

FORMATS = ("png16", "exr")


def object_names(session: Session, objs: list[int]) -> dict[int, str]:
    """File-safe, unique names for the objects (as the mask writer makes them)."""
    from engine.export.masks import safe_name

    used: set[str] = set()
    out: dict[int, str] = {}
    for o in objs:
        base = safe_name(session.data.objects[o].name)
        name, i = base, 2
        while name in used:
            name, i = f"{base}_{i}", i + 1
        used.add(name)
        out[o] = name
    return out


@dataclass
class MatteWriter:
    """A sink for :func:`engine.matting.pipeline.matte_session` writing one file per object and frame."""

    session: Any
    out_dir: Path
    fmt: str = "png16"
    names: dict[int, str] = field(default_factory=dict)
    core_edge: bool = False
    despill: str | None = None  # None, "green" or "blue"
    written: int = 0
    _meta: Any = None

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise InputError(f"the matte format is one of {', '.join(FORMATS)}, not {self.fmt!r}")
        self.out_dir = Path(self.out_dir)
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"the output folder cannot be created ({exc.strerror})", path=str(self.out_dir)) from exc
        #: frame digits in the file names: the plate's padding (:attr:`Session.frame_digits`)
        self.digits = int(getattr(self.session, "frame_digits", 4))

    @property
    def ext(self) -> str:
        return "png" if self.fmt == "png16" else "exr"

    def pattern(self, name: str) -> str:
        return str(self.out_dir / f"{name}.{'#' * self.digits}.{self.ext}")

    def path(self, name: str, frame: int) -> Path:
        return self.out_dir / f"{name}.{frame_text(frame, self.digits)}.{self.ext}"

    def __call__(self, frame: int, alphas: dict[int, np.ndarray]) -> None:
        for o, a in alphas.items():
            name = self.names[o]
            self._write(self.path(name, frame), a[:, :, None], ("A",), frame, colour=False)
            self.written += 1
            if self.core_edge:
                from engine.ops.core_edge import core_edge

                core, edge = core_edge(a)
                self._write(self.path(f"{name}_core", frame), core[:, :, None], ("A",), frame, colour=False)
                self._write(self.path(f"{name}_edge", frame), edge[:, :, None], ("A",), frame, colour=False)
        if self.despill:
            from engine.ops.despill import despill
            from engine.ops.transfer import linear_to_srgb, srgb_to_linear

            lin = despill(srgb_to_linear(self.session.clip.read_working(frame)), self.despill)
            px = linear_to_srgb(lin) if self.fmt == "png16" else lin
            self._write(self.path("despill", frame), px, ("R", "G", "B"), frame, colour=True)

    # --- writers ---------------------------------------------------------------------------

    def _write(self, path: Path, pixels: np.ndarray, channels: tuple[str, ...], frame: int, *, colour: bool) -> None:
        if self.fmt == "png16":
            from engine.export.images import write_image

            write_image(path, np.clip(pixels, 0.0, 1.0), 16, fmt="png",
                        record={"session": self.session.data.id, "frame": frame, "kind": "matte"})
            return
        from engine.export.aovs import COLOUR, Layer
        from engine.export.exr import header_attributes, write_exr

        meta = self._frame_meta(frame)
        layer = Layer("", channels, np.ascontiguousarray(pixels, np.float32), COLOUR, "matte")  # half
        attrs = header_attributes(meta, colour_layers=colour)
        if colour:
            attrs.update({"oiio:ColorSpace": "Linear Rec.709 (sRGB)"})
        write_exr(path, [layer], meta, attributes=attrs, colour_float=False)

    def _frame_meta(self, frame: int) -> Any:
        from fractions import Fraction

        from engine import __version__
        from engine.export.aovs import FrameMeta, timecode_add
        from engine.media.types import Rect

        if self._meta is None:
            ref = self.session.data.clip
            h, w = self.session.shape
            try:
                info = self.session.clip.info
                fps, tc, first = info.fps, info.timecode, info.first
                drop = bool(info.metadata.get("timecode_drop_frame"))
                cs = info.colourspace
            except Exception:  # noqa: BLE001 - the plate may be offline; the session knows enough
                fps, tc, first, drop, cs = Fraction(ref.rate or ref.fps or 24), ref.timecode, ref.first, False, ref.plate_colourspace
            self._meta = (fps, tc, first, drop, cs, Rect(0, 0, w, h))
        fps, tc, first, drop, cs, rect = self._meta
        tcf = None
        if tc:
            try:
                tcf = timecode_add(tc, frame - first, fps, drop)
            except InputError:
                tcf = None
        lo, hi = self.session.frame_range
        return FrameMeta(frame=frame, fps=fps, timecode=tcf, drop_frame=drop, colourspace=cs or "", display_window=rect,
                         data_window=rect, pixel_aspect=1.0, session_id=self.session.data.id, version=__version__,
                         shot=Path(self.session.data.clip.path).stem.split(".")[0], first=lo, last=hi)
