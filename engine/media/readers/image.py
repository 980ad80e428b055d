"""Still images: read a header without decoding (:func:`probe_image`) and decode pixels
(:func:`read_image`) of EXR, DPX, PNG, TIFF, JPEG and Cineon files.

Pixels come back as float32 ``(H, W, C)`` covering the **display window** (top-left origin):
data-window pixels are placed at their offset, display pixels outside the data window are 0
and overscan is cropped. Values stay in the file's own encoding: half/float as stored (NaN and
Inf preserved), integers normalised by their true bit depth (10-bit: ``/1023``), UINT EXR
channels as their integer values.

How each format is handled:

* **EXR** — the header is parsed here (standard library ``struct``) and validated before any
  library sees the file: attribute sizes, windows, the chunk offset table and every chunk's
  size field must fit in the file, so damaged, truncated or hostile files are rejected with
  :class:`~engine.errors.CorruptMedia` before anything allocates. Pixels are decoded by
  OpenImageIO (every compression, tiled, mipmapped: top level, multi-part), except parts with
  subsampled channels (luminance/chroma ``Y RY BY``), which OpenImageIO refuses: those go
  through the OpenEXR module and the chroma is reconstructed here. Deep files are refused.
* **DPX** — parsed and decoded here (8/10/12/16-bit and float, packed or filled method A/B,
  both byte orders, all orientations), tolerating the usual header quirks (wrong or zero file
  size, zero image offset, odd version strings).
* **PNG / TIFF / JPEG / Cineon** — OpenImageIO, with header sanity checks first.

Channels and layers (EXR): channel names are ``layer.channel`` (``"depth.Z"``); the unnamed
layer ``""`` holds ``R G B A`` etc. In a multi-view file the default view's channels lose their
view name and other views keep it (``left.R``, ``forward.left.u``) — the same names whether
the views are stored in one part or in several. When two parts of a multi-part file use the
same channel name, the later one is prefixed with its part name. ``layer`` arguments accept a
layer name, a part name or a single channel name; ``None``/``""``/``"rgba"`` mean the default
colour layer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import mmap
import os
import struct
import tempfile
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import CorruptMedia, MediaError, MediaNotFound, UnsupportedMedia
from engine.media.types import ImageHeader, Rect

__all__ = ["probe_image", "read_image", "layer_channels", "default_layer_channels", "MAX_PIXELS"]

#: Largest window (display or data) accepted, in pixels. Bigger headers are treated as damaged.
MAX_PIXELS = 1 << 31
_MAX_COORD = 1 << 30
_MAX_CHANNELS = 4096
_MAX_PARTS = 4096
_MAX_ATTRS = 65536

_FLATTEN_HINT = "Flatten it first (in Nuke: DeepToImage, then write a flat EXR)"
_DAMAGED_HINT = "Re-render or re-export the file"

_DEFAULT_LAYER_ALIASES = frozenset({"", "rgba", "rgb", "default", "color", "colour"})


# =============================================================================================
# small helpers
# =============================================================================================


def _shown(name: str) -> str:
    """An attribute name fit for a message (damaged headers hold binary garbage)."""
    text = "".join(ch if ch.isprintable() and ord(ch) < 0x2000 and ch != "\ufffd" else "?" for ch in name)
    return text[:40] + ("..." if len(text) > 40 else "")


def _corrupt(path: str, message: str, hint: str | None = _DAMAGED_HINT) -> CorruptMedia:
    return CorruptMedia(message, path=path, hint=hint)


def _check_window(path: str, what: str, box: tuple[int, int, int, int]) -> None:
    xmin, ymin, xmax, ymax = box
    if any(abs(v) > _MAX_COORD for v in box):
        raise _corrupt(path, f"the header's {what} ({xmin},{ymin})-({xmax},{ymax}) has absurd coordinates")
    if xmax < xmin or ymax < ymin:
        raise _corrupt(path, f"the header's {what} ({xmin},{ymin})-({xmax},{ymax}) is empty or inverted")
    w, h = xmax - xmin + 1, ymax - ymin + 1
    if w * h > MAX_PIXELS:
        raise _corrupt(path, f"the header's {what} is {w}x{h} pixels, more than the {MAX_PIXELS} pixels "
                             f"this reader accepts (the header is probably damaged)")


def _memory_budget() -> int:
    """Bytes one decoded image may take: half the machine's physical memory."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) // 2
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 16 << 30


def _check_memory(path: str, width: int, height: int, channels: int) -> None:
    """Refuse before allocating when the float32 pixels could not fit in memory."""
    need = int(width) * int(height) * max(int(channels), 1) * 4
    budget = _memory_budget()
    if need > budget:
        raise UnsupportedMedia(f"the image is {width}x{height} with {channels} channel(s): "
                               f"{need / 2**30:.1f} GiB decoded, more than this machine can hold "
                               f"({budget / 2**30:.1f} GiB allowed)", path=path,
                               hint="Use a smaller proxy of the plate, or a machine with more memory")


def _fraction_text(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


def _rate_fraction(rate: float) -> Fraction | None:
    """A frame rate stored as a float (DPX) as an exact fraction (23.976 -> 24000/1001)."""
    if not math.isfinite(rate) or not 0 < rate <= 1000:
        return None
    for base in (24, 30, 48, 60, 120, 240):
        if abs(rate - base * 1000 / 1001) < 2e-3:
            return Fraction(base * 1000, 1001)
    if abs(rate - round(rate)) < 1e-3:
        return Fraction(round(rate))
    return Fraction(rate).limit_denominator(1001)


def _smpte_timecode(packed: int) -> tuple[str, bool] | None:
    """SMPTE 12M packed BCD (as stored by EXR ``timeCode`` and DPX) → ``("HH:MM:SS:FF", drop)``."""
    if packed in (0xFFFFFFFF,):
        return None

    def bcd(value: int, tens_mask: int) -> int | None:
        units, tens = value & 0xF, (value >> 4) & tens_mask
        return None if units > 9 else tens * 10 + units

    ff = bcd(packed & 0xFF, 0x3)
    ss = bcd((packed >> 8) & 0xFF, 0x7)
    mm = bcd((packed >> 16) & 0xFF, 0x7)
    hh = bcd((packed >> 24) & 0xFF, 0x3)
    if None in (ff, ss, mm, hh) or ss > 59 or mm > 59 or hh > 23:
        return None
    return f"{hh:02d}:{mm:02d}:{ss:02d}:{ff:02d}", bool(packed & 0x40)


def _plain_float(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _plain_float32(v: float) -> float | None:
    """A float32 attribute as the short decimal it was written as (0.3127, not 0.31270000338)."""
    return float(f"{v:.7g}") if math.isfinite(v) else None


# --- format sniffing -------------------------------------------------------------------------

_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"\x76\x2f\x31\x01", "exr"),
    (b"SDPX", "dpx"),
    (b"XPDS", "dpx"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),
    (b"MM\x00+", "tiff"),
    (b"\x80\x2a\x5f\xd7", "cin"),
    (b"\xd7\x5f\x2a\x80", "cin"),
)
_EXT_FORMAT = {"exr": "exr", "sxr": "exr", "dpx": "dpx", "png": "png", "jpg": "jpeg", "jpeg": "jpeg", "jpe": "jpeg",
               "tif": "tiff", "tiff": "tiff", "cin": "cin"}
_FORMAT_LABEL = {"exr": "OpenEXR", "dpx": "DPX", "png": "PNG", "jpeg": "JPEG", "tiff": "TIFF", "cin": "Cineon"}


def _open_checked(path: str) -> tuple[str, int]:
    """Resolve and stat ``path``: (text path, size). Raises MediaNotFound & co."""
    p = Path(path).expanduser()
    text = str(p)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise MediaNotFound("the file does not exist", path=text, hint="Check the path") from None
    except PermissionError:
        raise MediaError("the file cannot be read (permission denied)", path=text,
                         hint="Check the file's permissions") from None
    except OSError as exc:
        raise MediaError(f"the file cannot be read ({exc.strerror or exc})", path=text) from None
    if p.is_dir():
        raise UnsupportedMedia("this is a folder, not an image file", path=text,
                               hint="Give an image file, or open the folder as a sequence with open_clip")
    if st.st_size == 0:
        raise CorruptMedia("the file is empty (0 bytes)", path=text, hint=_DAMAGED_HINT)
    return text, int(st.st_size)


def _sniff(path: str, size: int) -> str:
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except PermissionError:
        raise MediaError("the file cannot be read (permission denied)", path=path,
                         hint="Check the file's permissions") from None
    except OSError as exc:
        raise MediaError(f"the file cannot be read ({exc.strerror or exc})", path=path) from None
    for magic, fmt in _MAGICS:
        if head.startswith(magic):
            return fmt
    ext = Path(path).suffix.lower().lstrip(".")
    expected = _EXT_FORMAT.get(ext)
    if expected:
        raise CorruptMedia(f"the file does not start like a {_FORMAT_LABEL[expected]} file "
                           f"(it is damaged, or not really a .{ext})", path=path, hint=_DAMAGED_HINT)
    raise UnsupportedMedia("the file is not an image format the engine reads", path=path,
                           hint="Use EXR, DPX, PNG, TIFF or JPEG images")


# =============================================================================================
# EXR header parsing
# =============================================================================================

_EXR_PIXEL_TYPES = {0: "uint32", 1: "half", 2: "float"}
_EXR_PIXEL_BYTES = {0: 4, 1: 2, 2: 4}
_COMPRESSION_NAMES = {0: "none", 1: "rle", 2: "zips", 3: "zip", 4: "piz", 5: "pxr24", 6: "b44", 7: "b44a",
                      8: "dwaa", 9: "dwab", 10: "htj2k256", 11: "htj2k32", 12: "lj2k", 13: "zstd"}
_LINES_PER_CHUNK = {0: 1, 1: 1, 2: 1, 3: 16, 4: 32, 5: 16, 6: 32, 7: 32, 8: 32, 9: 256, 10: 256, 11: 32,
                    12: 256, 13: 1}
#: Largest plausible (raw bytes / file bytes) for codecs whose ratio is bounded; others unchecked.
_MAX_RATIO = {0: 1.0, 1: 70.0, 2: 1100.0, 3: 1100.0, 5: 1500.0, 6: 12.0, 7: 12.0}
_LINE_ORDERS = {0: "increasing_y", 1: "decreasing_y", 2: "random_y"}
_LEVEL_MODES = {0: "one_level", 1: "mipmap", 2: "ripmap"}
_ENVMAPS = {0: "latlong", 1: "cube"}
_FIXED_SIZES = {"box2i": 16, "box2f": 16, "chromaticities": 32, "compression": 1, "double": 8, "envmap": 1,
                "float": 4, "int": 4, "keycode": 28, "lineOrder": 1, "m33f": 36, "m33d": 72, "m44f": 64,
                "m44d": 128, "rational": 8, "tiledesc": 9, "timecode": 8, "v2i": 8, "v2f": 8, "v2d": 16,
                "v3i": 12, "v3f": 12, "v3d": 24, "deepImageState": 1}
_FLAG_TILED, _FLAG_LONG_NAMES, _FLAG_NON_IMAGE, _FLAG_MULTIPART = 0x200, 0x400, 0x800, 0x1000


@dataclass
class _ExrChannel:
    name: str
    ptype: int
    xs: int
    ys: int


@dataclass
class _ExrPart:
    index: int
    raw: dict[str, tuple[str, bytes]]
    channels: list[_ExrChannel] = field(default_factory=list)
    dw: tuple[int, int, int, int] = (0, 0, 0, 0)
    disp: tuple[int, int, int, int] = (0, 0, 0, 0)
    compression: int = 0
    line_order: int = 0
    aspect: float = 1.0
    kind: str = "scanlineimage"
    name: str | None = None
    view: str | None = None
    tiles: tuple[int, int, int, int] | None = None  # x size, y size, level mode, rounding mode
    levels: int = 1

    @property
    def deep(self) -> bool:
        return self.kind.startswith("deep")

    @property
    def dw_size(self) -> tuple[int, int]:
        return self.dw[2] - self.dw[0] + 1, self.dw[3] - self.dw[1] + 1


@dataclass
class _ExrFile:
    path: str
    size: int
    parts: list[_ExrPart]
    multipart: bool
    views: list[str]


def _cstring(buf: Any, pos: int, limit: int, path: str, maxlen: int) -> tuple[str, int]:
    end = buf.find(b"\0", pos, min(limit, pos + maxlen + 1))
    if end < 0:
        raise _corrupt(path, "the EXR header is damaged (an attribute name runs past its limit or the end of the file)")
    return bytes(buf[pos:end]).decode("utf-8", "replace"), end + 1


def _parse_exr(path: str, size: int, *, check_chunks: bool = True) -> _ExrFile:
    if size < 8 + 1:
        raise _corrupt(path, f"the EXR file is truncated ({size} bytes)")
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        version = struct.unpack_from("<I", buf, 4)[0]
        if version & 0xFF != 2:
            raise UnsupportedMedia(f"the EXR file has format version {version & 0xFF}, not 2", path=path,
                                   hint="Re-save it with a current OpenEXR writer")
        flags = version & ~0xFF
        if flags & ~(_FLAG_TILED | _FLAG_LONG_NAMES | _FLAG_NON_IMAGE | _FLAG_MULTIPART):
            raise _corrupt(path, "the EXR header has unknown format flags set")
        multipart = bool(flags & _FLAG_MULTIPART)
        maxlen = 255 if flags & _FLAG_LONG_NAMES else 31
        pos = 8
        headers: list[dict[str, tuple[str, bytes]]] = []
        while True:
            if pos >= size:
                raise _corrupt(path, "the EXR header is truncated")
            if multipart and headers and buf[pos] == 0:
                pos += 1
                break
            attrs: dict[str, tuple[str, bytes]] = {}
            while True:
                if pos >= size:
                    raise _corrupt(path, "the EXR header is truncated")
                if buf[pos] == 0:
                    pos += 1
                    break
                name, pos = _cstring(buf, pos, size, path, maxlen)
                type_name, pos = _cstring(buf, pos, size, path, maxlen)
                if pos + 4 > size:
                    raise _corrupt(path, "the EXR header is truncated")
                length = struct.unpack_from("<i", buf, pos)[0]
                pos += 4
                if length < 0 or pos + length > size:
                    raise _corrupt(path, f"the EXR header is damaged: attribute '{_shown(name)}' "
                                         f"({_shown(type_name)}) claims {length} bytes, more than the file holds")
                expected = _FIXED_SIZES.get(type_name)
                if expected is not None and length != expected:
                    raise _corrupt(path, f"the EXR header is damaged: attribute '{_shown(name)}' has size "
                                         f"{length}, but a {type_name} is {expected} bytes")
                attrs[name] = (type_name, bytes(buf[pos:pos + length]))
                pos += length
                if len(attrs) > _MAX_ATTRS:
                    raise _corrupt(path, "the EXR header has an absurd number of attributes")
            headers.append(attrs)
            if not multipart:
                break
            if len(headers) > _MAX_PARTS:
                raise _corrupt(path, "the EXR file declares an absurd number of parts")
        if not headers or not headers[0]:
            raise _corrupt(path, "the EXR header is empty")

        parts = [_exr_part(path, i, raw, flags, multipart) for i, raw in enumerate(headers)]
        if multipart:
            first = parts[0]
            for part in parts[1:]:
                if part.disp != first.disp or part.aspect != first.aspect:
                    raise _corrupt(path, f"part {part.index} of the multi-part EXR disagrees with part 0 on "
                                         "its display window or pixel aspect (invalid shared attributes)")
        views = _exr_views(parts)
        exr = _ExrFile(path, size, parts, multipart, views)
        if check_chunks:
            _check_chunk_table(exr, buf, pos)
        return exr


def _exr_part(path: str, index: int, raw: dict[str, tuple[str, bytes]], flags: int, multipart: bool) -> _ExrPart:
    part = _ExrPart(index, raw)
    where = f" (part {index})" if multipart else ""

    def need(name: str, type_name: str) -> bytes:
        if name not in raw:
            raise _corrupt(path, f"the EXR header{where} lacks the required attribute '{name}'")
        t, value = raw[name]
        if t != type_name:
            raise _corrupt(path, f"the EXR attribute '{name}'{where} has type {_shown(t)}, expected {type_name}")
        return value

    def text_attr(name: str) -> str | None:
        if name in raw and raw[name][0] == "string":
            return raw[name][1].decode("utf-8", "replace")
        return None

    part.kind = text_attr("type") or ("tiledimage" if flags & _FLAG_TILED else "scanlineimage")
    if flags & _FLAG_NON_IMAGE and not multipart and not part.kind.startswith("deep"):
        part.kind = "deeptile" if flags & _FLAG_TILED else "deepscanline"
    if part.kind not in ("scanlineimage", "tiledimage", "deepscanline", "deeptile"):
        raise UnsupportedMedia(f"the EXR part type '{part.kind}' is not supported", path=path)
    part.name = text_attr("name")
    part.view = text_attr("view")
    if multipart and part.name is None:
        raise _corrupt(path, f"part {index} of the multi-part EXR has no name")

    part.channels = _parse_chlist(path, need("channels", "chlist"))
    if not part.channels:
        raise _corrupt(path, f"the EXR header{where} lists no channels")
    part.dw = struct.unpack("<4i", need("dataWindow", "box2i"))
    part.disp = struct.unpack("<4i", need("displayWindow", "box2i"))
    _check_window(path, "data window", part.dw)
    _check_window(path, "display window", part.disp)
    part.compression = need("compression", "compression")[0]
    if part.compression not in _COMPRESSION_NAMES:
        raise UnsupportedMedia(f"the EXR uses an unknown compression (code {part.compression})", path=path,
                               hint="Re-save it with ZIP or PIZ compression")
    if "lineOrder" in raw and raw["lineOrder"][0] == "lineOrder":
        part.line_order = raw["lineOrder"][1][0]
        if part.line_order not in _LINE_ORDERS:
            raise _corrupt(path, f"the EXR line order code {part.line_order} is invalid")
    if "pixelAspectRatio" in raw and raw["pixelAspectRatio"][0] == "float":
        aspect = struct.unpack("<f", raw["pixelAspectRatio"][1])[0]
        part.aspect = float(aspect) if math.isfinite(aspect) and 1e-6 < aspect < 1e6 else 1.0
    for ch in part.channels:
        if part.dw[0] % ch.xs or part.dw[1] % ch.ys:
            raise _corrupt(path, f"the EXR channel '{ch.name}' has sampling {ch.xs}x{ch.ys} that does not "
                                 "divide the data window origin")
    if part.kind in ("tiledimage", "deeptile"):
        if "tiles" not in raw:
            raise _corrupt(path, f"the tiled EXR header{where} lacks its tile description")
        tx, ty, mode = struct.unpack("<IIB", need("tiles", "tiledesc"))
        level_mode, rounding = mode & 0x0F, mode >> 4
        if not (1 <= tx <= (1 << 24) and 1 <= ty <= (1 << 24)) or level_mode > 2 or rounding > 1:
            raise _corrupt(path, f"the EXR tile description{where} is invalid ({tx}x{ty}, mode {mode})")
        part.tiles = (tx, ty, level_mode, rounding)
    return part


def _parse_chlist(path: str, data: bytes) -> list[_ExrChannel]:
    out: list[_ExrChannel] = []
    seen: set[str] = set()
    pos = 0
    while True:
        if pos >= len(data):
            raise _corrupt(path, "the EXR channel list is damaged (not terminated)")
        if data[pos] == 0:
            if pos + 1 != len(data):
                raise _corrupt(path, "the EXR channel list is damaged (trailing bytes)")
            return out
        end = data.find(b"\0", pos)
        if end < 0 or end - pos > 255 or end + 17 > len(data):
            raise _corrupt(path, "the EXR channel list is damaged")
        name = data[pos:end].decode("utf-8", "replace")
        ptype, _linear, xs, ys = struct.unpack_from("<iB3xii", data, end + 1)
        shown = _shown(name)
        pos = end + 17
        if ptype not in _EXR_PIXEL_TYPES:
            raise _corrupt(path, f"the EXR channel '{shown}' has an invalid pixel type ({ptype})")
        if not (1 <= xs <= 1 << 16 and 1 <= ys <= 1 << 16):
            raise _corrupt(path, f"the EXR channel '{shown}' has an invalid sampling ({xs}x{ys})")
        if name in seen or not name:
            raise _corrupt(path, f"the EXR channel list repeats or blanks a channel name ('{shown}')")
        seen.add(name)
        out.append(_ExrChannel(name, ptype, xs, ys))
        if len(out) > _MAX_CHANNELS:
            raise _corrupt(path, "the EXR channel list is absurdly long")


def _level_count(size: int, rounding: int) -> int:
    if size <= 1:
        return 1
    bits = size.bit_length() - 1  # floor(log2)
    if rounding == 1 and (1 << bits) != size:
        bits += 1  # ceil(log2)
    return bits + 1


def _level_size(size: int, level: int, rounding: int) -> int:
    if rounding == 1:
        return max(1, -(-size // (1 << level)))
    return max(1, size >> level)


def _chunk_count(part: _ExrPart) -> int:
    w, h = part.dw_size
    if part.tiles is None:
        lines = _LINES_PER_CHUNK[part.compression]
        return -(-h // lines)
    tx, ty, mode, rounding = part.tiles
    if mode == 0:
        return (-(-w // tx)) * (-(-h // ty))
    nx, ny = _level_count(w, rounding), _level_count(h, rounding)
    if mode == 1:
        n = max(nx, ny)
        part.levels = n
        return sum((-(-_level_size(w, lv, rounding) // tx)) * (-(-_level_size(h, lv, rounding) // ty))
                   for lv in range(n))
    part.levels = nx * ny
    return sum((-(-_level_size(w, lx, rounding) // tx)) * (-(-_level_size(h, ly, rounding) // ty))
               for lx in range(nx) for ly in range(ny))


def _check_chunk_table(exr: _ExrFile, buf: Any, table_start: int) -> None:
    """The offset table and every chunk's header must lie inside the file (no library sees a
    file that claims more data than it holds)."""
    path, size = exr.path, exr.size
    counts = []
    for part in exr.parts:
        if exr.multipart or part.deep:
            if "chunkCount" not in part.raw or part.raw["chunkCount"][0] != "int":
                if part.deep:
                    counts.append(None)
                    continue
                raise _corrupt(path, f"part {part.index} of the multi-part EXR lacks its chunk count")
            declared = struct.unpack("<i", part.raw["chunkCount"][1])[0]
            if declared <= 0:
                raise _corrupt(path, f"part {part.index} declares an invalid chunk count ({declared})")
            if not part.deep and declared != _chunk_count(part):
                raise _corrupt(path, f"part {part.index} declares {declared} chunks, but its data window "
                                     f"needs {_chunk_count(part)}")
            counts.append(declared)
        else:
            counts.append(_chunk_count(part))
    if any(c is None for c in counts):
        return  # deep data without chunk count: refused later as deep anyway
    total = sum(counts)
    table_end = table_start + 8 * total
    if table_end > size:
        raise _corrupt(path, f"the EXR declares {total} data chunks, but the file ({size} bytes) is too small "
                             "to even hold their offset table (truncated, or a damaged header)")
    offsets = np.frombuffer(bytes(buf[table_start:table_end]), dtype="<u8")
    header_bytes = 4 if exr.multipart else 0
    pos = 0
    for part, count in zip(exr.parts, counts):
        offs = offsets[pos:pos + count]
        pos += count
        if part.deep:
            continue
        tiled = part.tiles is not None
        head = header_bytes + (20 if tiled else 8)
        bad = (offs < table_end) | (offs > size - head)
        if bad.any():
            missing = int(bad.sum())
            raise _corrupt(path, f"the EXR is incomplete or damaged: {missing} of {count} data chunks"
                                 f"{' of part ' + str(part.index) if exr.multipart else ''} point outside the file "
                                 "(the render or copy was probably interrupted)")
        size_at = offs.astype(np.int64) + head - 4
        lengths = np.array([struct.unpack_from("<i", buf, int(o))[0] for o in size_at], dtype=np.int64)
        if (lengths <= 0).any() or ((offs.astype(np.int64) + head + lengths) > size).any():
            raise _corrupt(path, f"the EXR is truncated or damaged: a data chunk"
                                 f"{' of part ' + str(part.index) if exr.multipart else ''} runs past the end of the file")
        ratio = _MAX_RATIO.get(part.compression)
        if ratio is not None and part.tiles is None:
            w, h = part.dw_size
            raw_bytes = sum((w // ch.xs + 1) * (h // ch.ys + 1) * _EXR_PIXEL_BYTES[ch.ptype] for ch in part.channels)
            if raw_bytes > ratio * float(lengths.sum()) + 65536 * count:
                raise _corrupt(path, f"the EXR data window ({w}x{h}) holds far more pixels than its "
                                     f"{_COMPRESSION_NAMES[part.compression]} data could encode (damaged header)")


def _exr_views(parts: list[_ExrPart]) -> list[str]:
    first = parts[0]
    if "multiView" in first.raw and first.raw["multiView"][0] == "stringvector":
        views = _stringvector(first.raw["multiView"][1])
        if views:
            return views
    seen: list[str] = []
    for part in parts:
        if part.view and part.view not in seen:
            seen.append(part.view)
    if first.view and seen and seen[0] != first.view:
        seen.remove(first.view)
        seen.insert(0, first.view)
    return seen


def _stringvector(data: bytes) -> list[str]:
    out, pos = [], 0
    while pos + 4 <= len(data):
        n = struct.unpack_from("<i", data, pos)[0]
        pos += 4
        if n < 0 or pos + n > len(data):
            break
        out.append(data[pos:pos + n].decode("utf-8", "replace"))
        pos += n
    return out


# --- EXR attributes → JSON-friendly values ----------------------------------------------------

_STRUCTURAL = frozenset({"channels", "dataWindow", "displayWindow", "chunkCount", "type", "tiles", "version"})


def _exr_attr_value(type_name: str, data: bytes) -> Any:
    """An attribute as plain values (str/int/float/list/dict), or ``None`` to leave it out."""
    u = struct.unpack
    if type_name == "string":
        return data.decode("utf-8", "replace")
    if type_name == "stringvector":
        return _stringvector(data)
    if type_name == "int":
        return u("<i", data)[0]
    if type_name == "float":
        return _plain_float32(u("<f", data)[0])
    if type_name == "double":
        return _plain_float(u("<d", data)[0])
    if type_name == "rational":
        num, den = u("<iI", data)
        return _fraction_text(Fraction(num, den)) if den else None
    if type_name in ("box2i", "v2i", "v3i"):
        return list(u(f"<{len(data) // 4}i", data))
    if type_name in ("box2f", "v2f", "v3f", "m33f", "m44f", "chromaticities"):
        return [_plain_float32(v) for v in u(f"<{len(data) // 4}f", data)]
    if type_name in ("v2d", "v3d", "m33d", "m44d"):
        return [_plain_float(v) for v in u(f"<{len(data) // 8}d", data)]
    if type_name == "floatvector":
        return [_plain_float32(v) for v in u(f"<{len(data) // 4}f", data[: len(data) // 4 * 4])]
    if type_name == "compression":
        return _COMPRESSION_NAMES.get(data[0], f"code {data[0]}")
    if type_name == "lineOrder":
        return _LINE_ORDERS.get(data[0], f"code {data[0]}")
    if type_name == "envmap":
        return _ENVMAPS.get(data[0], f"code {data[0]}")
    if type_name == "deepImageState":
        return int(data[0])
    if type_name == "keycode":
        keys = ("filmMfcCode", "filmType", "prefix", "count", "perfOffset", "perfsPerFrame", "perfsPerCount")
        return dict(zip(keys, u("<7i", data)))
    if type_name == "timecode":
        tc = _smpte_timecode(u("<I", data[:4])[0])
        return tc[0] if tc else None
    if type_name == "tiledesc":
        tx, ty, mode = u("<IIB", data)
        return {"x_size": tx, "y_size": ty, "level_mode": _LEVEL_MODES.get(mode & 0xF, str(mode & 0xF)),
                "rounding": "up" if mode >> 4 else "down"}
    if type_name == "preview":
        if len(data) >= 8:
            w, h = u("<II", data[:8])
            return {"width": w, "height": h}
        return None
    if type_name == "idmanifest":
        return {"compressed_bytes": len(data)}
    return None  # opaque / unknown attribute types are left out


def _exr_attributes(exr: _ExrFile, chans: list[_Chan]) -> dict[str, Any]:
    first = exr.parts[0]
    attrs: dict[str, Any] = {}
    for name, (type_name, data) in first.raw.items():
        if name in _STRUCTURAL:
            continue
        try:
            value = _exr_attr_value(type_name, data)
        except struct.error:
            value = None
        if value is not None:
            attrs[name] = value
    if "framesPerSecond" in attrs:
        attrs["fps"] = attrs["framesPerSecond"]
    if "timeCode" in attrs:
        attrs["timecode"] = attrs["timeCode"]
        packed = struct.unpack("<I", first.raw["timeCode"][1][:4])[0]
        if packed & 0x40:
            attrs["timecode_drop_frame"] = True
    attrs["exr:compression"] = _COMPRESSION_NAMES[first.compression]
    attrs["exr:line_order"] = _LINE_ORDERS[first.line_order]
    attrs["exr:tiled"] = first.tiles is not None
    if first.tiles is not None:
        attrs["exr:tile_size"] = [first.tiles[0], first.tiles[1]]
        attrs["exr:level_mode"] = _LEVEL_MODES[first.tiles[2]]
        attrs["exr:levels"] = first.levels
    if exr.views:
        attrs["exr:views"] = list(exr.views)
        attrs["exr:default_view"] = exr.views[0]
    attrs["exr:channel_types"] = {c.public: _EXR_PIXEL_TYPES[c.ptype] for c in chans}
    subsampled = {c.public: [c.xs, c.ys] for c in chans if c.xs != 1 or c.ys != 1}
    if subsampled:
        attrs["exr:subsampled"] = subsampled
    if exr.multipart:
        attrs["exr:parts"] = [
            {"name": p.name, "view": p.view, "type": p.kind, "compression": _COMPRESSION_NAMES[p.compression],
             "data_window": list(p.dw), "channels": [c.public for c in chans if c.part == p.index]}
            for p in exr.parts
        ]
    return attrs


# --- EXR channel model -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Chan:
    public: str
    file_name: str
    part: int
    ptype: int
    xs: int
    ys: int


_RGBA_ORDER = {"r": 0, "red": 0, "g": 1, "green": 1, "b": 2, "blue": 2, "a": 3, "alpha": 3}


def _layer_of(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else ""


def _base_of(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _ordered(names: list[str]) -> list[str]:
    """Group by layer (unnamed first, then alphabetical); R G B A first inside a layer."""
    index = {n: i for i, n in enumerate(names)}

    def key(n: str) -> tuple[int, str, int, int]:
        layer = _layer_of(n)
        return (0 if layer == "" else 1, layer, _RGBA_ORDER.get(_base_of(n).lower(), 9), index[n])

    return sorted(names, key=key)


def _exr_channels(exr: _ExrFile) -> list[_Chan]:
    views = exr.views
    default_view = views[0] if views else None
    out: list[_Chan] = []
    taken: set[str] = set()
    flat = [p for p in exr.parts if not p.deep]
    for part in flat:
        file_names = {c.name for c in part.channels}
        names: list[str] = []
        for ch in part.channels:
            public = ch.name
            sections = ch.name.split(".")
            if exr.multipart and part.view and default_view and part.view != default_view:
                # other view stored in its own part: name it as a single-part file would
                public = ".".join(sections[:-1] + [part.view, sections[-1]])
            elif views and len(sections) >= 2 and sections[-2] == default_view:
                # default view named explicitly (forward.right.u): drop the view name
                stripped = ".".join(sections[:-2] + [sections[-1]])
                if stripped not in file_names:
                    public = stripped
            names.append(public)
        if any(n in taken for n in names):
            # a later part reuses names (AOV parts each holding R G B A): the whole part
            # becomes a layer named after the part
            prefix = part.name or f"part{part.index}"
            names = [f"{prefix}.{n}" for n in names]
        for ch, public in zip(part.channels, names):
            base, n = public, 2
            while public in taken:
                public = f"{base}.{n}"
                n += 1
            taken.add(public)
            out.append(_Chan(public, ch.name, part.index, ch.ptype, ch.xs, ch.ys))
    order = {n: i for i, n in enumerate(_ordered([c.public for c in out]))}
    out.sort(key=lambda c: order[c.public])
    return out


# =============================================================================================
# layer resolution (shared by read_image and the sequence reader)
# =============================================================================================


def default_layer_channels(header: ImageHeader) -> tuple[str, ...]:
    """Channel names :func:`read_image` returns for the default layer of ``header``'s file."""
    return _default_plan(header)[2]


def _default_plan(header: ImageHeader) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """``(mode, source channels, output names)`` for the default layer.

    mode ``"rgb"``: R G B [A] of the unnamed layer (missing colour channels read as 0);
    ``"luma"``: Y [RY BY] [A] converted to R G B [A]; ``"plain"``: the channels as stored.
    """
    channels = header.channels
    if header.format != "exr":
        return "plain", channels, channels
    unnamed = [c for c in channels if "." not in c]
    present = set(unnamed)
    alpha = ("A",) if "A" in present else ()
    if present & {"R", "G", "B"}:
        out = ("R", "G", "B") + alpha
        return "rgb", out, out
    if "Y" in present:
        src = ("Y",) + tuple(c for c in ("RY", "BY") if c in present) + alpha
        return "luma", src, ("R", "G", "B") + alpha
    if unnamed:
        return "plain", tuple(unnamed), tuple(unnamed)
    # no unnamed channels: the colour layer by its usual names, else any layer with colour
    layers = [lay for lay in header.layers if lay]
    colour = [lay for lay in layers
              if {_base_of(c) for c in channels if _layer_of(c) == lay} & {"R", "G", "B", "Y"}]
    preferred = [lay for name in ("rgba", "beauty", "rgb", "color", "colour", "Ci")
                 for lay in colour if lay.lower() == name.lower()]
    layer = (preferred or colour or layers or [_layer_of(channels[0])])[0]
    picked = tuple(c for c in channels if _layer_of(c) == layer)
    return "plain", picked, picked


def layer_channels(header: ImageHeader, layer: str | None = None) -> tuple[str, ...]:
    """The channel names :func:`read_image` returns for ``layer`` (see the module docstring)."""
    if layer is None or layer.strip().lower() in _DEFAULT_LAYER_ALIASES:
        return default_layer_channels(header)
    if layer in header.layers:
        return tuple(c for c in header.channels if _layer_of(c) == layer)
    for part in header.attributes.get("exr:parts") or ():
        if part.get("name") == layer and part.get("channels"):
            return tuple(part["channels"])
    if layer in header.channels:
        return (layer,)
    shown = ", ".join(repr(x) if x else "'' (rgba)" for x in header.layers)
    raise UnsupportedMedia(f"the image has no layer or channel named {layer!r}", path=header.path,
                           hint=f"Its layers are: {shown}")


# =============================================================================================
# EXR probe / decode
# =============================================================================================


def _exr_header(path: str, size: int) -> tuple[ImageHeader, _ExrFile, list[_Chan]]:
    exr = _parse_exr(path, size)
    if all(p.deep for p in exr.parts):
        raise UnsupportedMedia("the EXR holds deep data (several samples per pixel), which the engine does not read",
                               path=path, hint=_FLATTEN_HINT)
    chans = _exr_channels(exr)
    first = next(p for p in exr.parts if not p.deep)
    disp = first.disp
    flat = [p for p in exr.parts if not p.deep]
    union = (min(p.dw[0] for p in flat), min(p.dw[1] for p in flat),
             max(p.dw[2] for p in flat), max(p.dw[3] for p in flat))
    layers: list[str] = []
    for c in chans:
        lay = _layer_of(c.public)
        if lay not in layers:
            layers.append(lay)
    attrs = _exr_attributes(exr, chans)
    if any(p.deep for p in exr.parts):
        attrs["exr:deep_parts_skipped"] = [p.index for p in exr.parts if p.deep]
    header = ImageHeader(
        path=path, format="exr", width=disp[2] - disp[0] + 1, height=disp[3] - disp[1] + 1,
        channels=tuple(c.public for c in chans), layers=tuple(layers), pixel_type="half",
        data_window=Rect.from_box(*union), display_window=Rect.from_box(*disp), pixel_aspect=first.aspect,
        parts=len(exr.parts), attributes=attrs)
    by_name = {c.public: c for c in chans}
    _mode, src, _out = _default_plan(header)
    types = [by_name[n].ptype for n in src if n in by_name] or [c.ptype for c in chans]
    pixel_type = "float" if 2 in types else ("half" if 1 in types else "uint32")
    return dataclasses.replace(header, pixel_type=pixel_type), exr, chans


_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _captured_output():
    """Capture what C++ code prints on file descriptors 1 and 2 (the OpenEXR module reports
    pixel-decode failures there as warnings instead of raising)."""
    import sys

    with _STDERR_LOCK, tempfile.TemporaryFile() as tmp:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # pragma: no cover - closed or odd streams
                pass
        saved = [os.dup(1), os.dup(2)]
        box: list[str] = []
        try:
            os.dup2(tmp.fileno(), 1)
            os.dup2(tmp.fileno(), 2)
            try:
                yield box
            finally:
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
            tmp.seek(0)
            box.append(tmp.read(65536).decode("utf-8", "replace"))
        finally:
            for fd in saved:
                os.close(fd)


def _oiio():
    from engine.deps import require

    return require("OpenImageIO", "Reading images")


def _has_error(obj: Any) -> bool:
    flag = getattr(obj, "has_error", False)
    try:
        return bool(flag() if callable(flag) else flag)
    except Exception:
        return True


def _oiio_err(obj: Any) -> str:
    try:
        text = obj.geterror()
    except Exception:  # non-UTF-8 bytes in the message
        return "the decoder reported an unreadable error"
    text = " ".join(str(text or "").split())
    return text[:300]


def _exr_decode_oiio(exr: _ExrFile, wanted: dict[int, list[_Chan]]) -> dict[str, np.ndarray]:
    """Decode ``wanted`` channels (grouped by part) with OpenImageIO: public name -> 2D float32."""
    oiio = _oiio()
    path = exr.path
    inp = oiio.ImageInput.open(path)
    if inp is None:
        raise _corrupt(path, f"the EXR could not be opened ({_oiio_err(oiio)})")
    out: dict[str, np.ndarray] = {}
    try:
        for part_index, chans in wanted.items():
            part = exr.parts[part_index]
            if not inp.seek_subimage(part_index, 0):
                raise _corrupt(path, f"part {part_index} of the EXR could not be opened ({_oiio_err(inp)})")
            spec = inp.spec()
            names = list(spec.channelnames)
            w, h = part.dw_size
            if spec.width != w or spec.height != h:
                raise _corrupt(path, f"part {part_index} decodes at {spec.width}x{spec.height}, not the {w}x{h} "
                                     "its header states")
            idx = {}
            for ch in chans:
                if ch.file_name not in names:
                    raise _corrupt(path, f"the decoder does not see channel '{ch.file_name}' of part {part_index}")
                idx[ch.public] = names.index(ch.file_name)
            floats = [c for c in chans if c.ptype != 0]
            if floats:
                lo = min(idx[c.public] for c in floats)
                hi = max(idx[c.public] for c in floats) + 1
                block = inp.read_image(part_index, 0, lo, hi, "float")
                if block is None or _has_error(inp):
                    raise _corrupt(path, f"the EXR pixel data are damaged ({_oiio_err(inp)})")
                block = np.asarray(block, dtype=np.float32).reshape(h, w, hi - lo)
                for c in floats:
                    out[c.public] = block[:, :, idx[c.public] - lo]
            for c in chans:
                if c.ptype == 0:
                    i = idx[c.public]
                    block = inp.read_image(part_index, 0, i, i + 1, "uint")
                    if block is None or _has_error(inp):
                        raise _corrupt(path, f"the EXR pixel data are damaged ({_oiio_err(inp)})")
                    out[c.public] = np.asarray(block).reshape(h, w).astype(np.float32)
    finally:
        inp.close()
    return out


def _exr_decode_openexr(exr: _ExrFile, wanted: dict[int, list[_Chan]]) -> dict[str, np.ndarray]:
    """Decode with the OpenEXR module (used for parts with subsampled channels)."""
    from engine.deps import require

    openexr = require("OpenEXR", "Reading luminance/chroma EXR files")
    path = exr.path
    with _captured_output() as err:
        try:
            f = openexr.File(path, separate_channels=True)
        except Exception as exc:
            raise _corrupt(path, f"the EXR could not be decoded ({' '.join(str(exc).split())[:200]})") from None
    messages = err[0] if err else ""
    if "exception" in messages.lower() or "error" in messages.lower():
        raise _corrupt(path, f"the EXR pixel data are damaged ({' '.join(messages.split())[:200]})")
    out: dict[str, np.ndarray] = {}
    for part_index, chans in wanted.items():
        part = exr.parts[part_index]
        w, h = part.dw_size
        try:
            channels = f.parts[part_index].channels
        except (IndexError, AttributeError):
            raise _corrupt(path, f"part {part_index} of the EXR could not be decoded") from None
        for c in chans:
            if c.file_name not in channels:
                raise _corrupt(path, f"channel '{c.file_name}' could not be decoded")
            px = np.asarray(channels[c.file_name].pixels)
            expect = (_sampled_count(part.dw[1], part.dw[3], c.ys), _sampled_count(part.dw[0], part.dw[2], c.xs))
            if px.shape[:2] != expect:
                raise _corrupt(path, f"channel '{c.file_name}' decodes at {px.shape[1]}x{px.shape[0]}, "
                                     f"expected {expect[1]}x{expect[0]}")
            px = px.astype(np.float32)
            if c.xs != 1 or c.ys != 1:
                px = _upsample(px, c.xs, c.ys, part.dw, w, h)
            out[c.public] = px
    return out


_INTERLEAVED = "\0interleaved"


def _exr_decode_fast(exr: _ExrFile, wanted: dict[int, list[_Chan]]) -> dict[str, np.ndarray] | None:
    """Decode a single-part file with the OpenEXR module, keeping the stored pixel type
    (half stays half: the caller converts once while placing into float32). Returns None when
    the module could not decode every wanted channel (the caller then takes the checked path,
    which produces the precise error).
    """
    import OpenEXR

    part = exr.parts[0]
    w, h = part.dw_size
    names = [c.file_name for c in wanted[0]]
    if names in (["R", "G", "B"], ["R", "G", "B", "A"]) and all(c.ptype != 0 for c in wanted[0]):
        # the colour channels come interleaved from the decoder: one contiguous block
        try:
            group = OpenEXR.File(exr.path).parts[0].channels.get("".join(names))
        except Exception:
            return None
        if group is not None and np.asarray(group.pixels).shape == (h, w, len(names)):
            return {_INTERLEAVED: np.asarray(group.pixels)}
    try:
        f = OpenEXR.File(exr.path, separate_channels=True)
        channels = f.parts[0].channels
    except Exception:
        return None
    out: dict[str, np.ndarray] = {}
    for c in wanted[0]:
        ch = channels.get(c.file_name)
        if ch is None:
            return None
        px = np.asarray(ch.pixels)
        if px.shape[:2] != (h, w):
            return None
        out[c.public] = px if c.ptype != 0 else px.astype(np.float32)
    return out


def _exr_decode_plain(exr: _ExrFile, wanted: dict[int, list[_Chan]]) -> dict[str, np.ndarray]:
    """Decode channels without subsampling: the OpenEXR module for single-part files whose
    wanted channels are most of the file (it decodes every channel), else OpenImageIO."""
    if len(exr.parts) == 1 and list(wanted) == [0] and not exr.parts[0].deep:
        total = len(exr.parts[0].channels)
        if total <= 2 * len(wanted[0]) + 1:
            try:
                import OpenEXR  # noqa: F401
            except ImportError:
                pass
            else:
                fast = _exr_decode_fast(exr, wanted)
                if fast is not None:
                    return fast
    return _exr_decode_oiio(exr, wanted)


def _sampled_count(lo: int, hi: int, s: int) -> int:
    """How many coordinates in ``lo..hi`` are multiples of ``s`` (``lo`` is one)."""
    return (hi - lo) // s + 1


def _halfband_taps() -> np.ndarray:
    """Weights for interpolating the odd samples between 2x-subsampled chroma samples: a
    Hann-windowed sinc over 27 full-resolution pixels (7 stored neighbours each side)."""
    d = np.arange(1, 14, 2, dtype=np.float64)  # distances 1, 3, ..., 13 in full-res pixels
    taps = np.sinc(d / 2.0) * 0.5 * (1.0 + np.cos(np.pi * d / 14.0))
    return taps / (2.0 * taps.sum())


_TAPS = _halfband_taps()


def _interp_axis(stored: np.ndarray, n_full: int, axis: int) -> np.ndarray:
    """Upsample 2x along ``axis``: even positions keep the samples, odd ones are interpolated."""
    stored = np.moveaxis(stored, axis, 0)
    m = stored.shape[0]
    k = len(_TAPS)
    padded = np.concatenate([np.repeat(stored[:1], k, axis=0), stored, np.repeat(stored[-1:], k, axis=0)], axis=0)
    full = np.empty((n_full,) + stored.shape[1:], dtype=np.float64)
    full[0::2] = stored[: (n_full + 1) // 2]
    n_odd = n_full // 2
    if n_odd:
        acc = np.zeros((n_odd,) + stored.shape[1:], dtype=np.float64)
        j = np.arange(n_odd)  # odd sample 2j+1 sits between stored j and j+1
        for t, weight in enumerate(_TAPS):
            left = padded[j - t + k]
            right = padded[j + 1 + t + k]
            acc += weight * (left + right)
        full[1::2] = acc
    return np.moveaxis(full, 0, axis)


def _upsample(px: np.ndarray, xs: int, ys: int, dw: tuple[int, int, int, int], w: int, h: int) -> np.ndarray:
    out = px.astype(np.float64)
    if xs == 2:
        out = _interp_axis(out, w, axis=1)
    elif xs != 1:
        out = np.repeat(out, xs, axis=1)[:, :w]
    if ys == 2:
        out = _interp_axis(out, h, axis=0)
    elif ys != 1:
        out = np.repeat(out, ys, axis=0)[:h]
    return out.astype(np.float32)


_REC709_CHROMATICITIES = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)


def _luma_weights(chromaticities: Any) -> np.ndarray:
    """RGB → Y weights (the Y row of the RGB→XYZ matrix) for the file's primaries."""
    xy = _REC709_CHROMATICITIES
    if isinstance(chromaticities, list) and len(chromaticities) == 8 and all(
            isinstance(v, float) for v in chromaticities):
        xy = tuple(chromaticities)
    try:
        rx, ry, gx, gy, bx, by, wx, wy = xy
        prim = np.array([[rx / ry, gx / gy, bx / by], [1.0, 1.0, 1.0],
                         [(1 - rx - ry) / ry, (1 - gx - gy) / gy, (1 - bx - by) / by]])
        white = np.array([wx / wy, 1.0, (1 - wx - wy) / wy])
        scale = np.linalg.solve(prim, white)
        if not np.all(np.isfinite(scale)) or scale.sum() <= 0:
            raise ValueError
        return scale / scale.sum()
    except (ValueError, ZeroDivisionError, np.linalg.LinAlgError):
        return _luma_weights(list(_REC709_CHROMATICITIES)) if xy != _REC709_CHROMATICITIES else \
            np.array([0.2126, 0.7152, 0.0722])


def _luma_to_rgb(y: np.ndarray, ry: np.ndarray | None, by: np.ndarray | None, yw: np.ndarray) -> list[np.ndarray]:
    if ry is None or by is None:
        return [y, y, y]
    y64 = y.astype(np.float64)
    r = (ry.astype(np.float64) + 1.0) * y64
    b = (by.astype(np.float64) + 1.0) * y64
    g = (y64 - r * yw[0] - b * yw[2]) / yw[1]
    return [r.astype(np.float32), g.astype(np.float32), b.astype(np.float32)]


def _place(out: np.ndarray, k: int, px: np.ndarray, dw: tuple[int, int, int, int], disp: tuple[int, int, int, int]) -> None:
    """Copy data-window pixels ``px`` into channel ``k`` of the display-window buffer ``out``."""
    x0, y0 = max(dw[0], disp[0]), max(dw[1], disp[1])
    x1, y1 = min(dw[2], disp[2]), min(dw[3], disp[3])
    if x1 < x0 or y1 < y0:
        return
    out[y0 - disp[1]:y1 - disp[1] + 1, x0 - disp[0]:x1 - disp[0] + 1, k] = \
        px[y0 - dw[1]:y1 - dw[1] + 1, x0 - dw[0]:x1 - dw[0] + 1]


def _read_exr(path: str, size: int, layer: str | None) -> tuple[np.ndarray, tuple[str, ...]]:
    with np.errstate(all="ignore"):  # damaged or extreme data must not spray warnings
        return _read_exr_checked(path, size, layer)


def _read_exr_checked(path: str, size: int, layer: str | None) -> tuple[np.ndarray, tuple[str, ...]]:
    header, exr, chans = _exr_header(path, size)
    by_name = {c.public: c for c in chans}
    if layer is None or layer.strip().lower() in _DEFAULT_LAYER_ALIASES:
        mode, src, names = _default_plan(header)
    else:
        names = layer_channels(header, layer)
        mode, src = "plain", names
    dw = header.data_window
    _check_memory(path, header.width, header.height, len(names))
    _check_memory(path, dw.width, dw.height, len(src))
    needed = [by_name[n] for n in src if n in by_name]
    wanted: dict[int, list[_Chan]] = {}
    for c in needed:
        wanted.setdefault(c.part, []).append(c)
    decoded: dict[str, np.ndarray] = {}
    plain = {p: cs for p, cs in wanted.items() if not any(x.xs != 1 or x.ys != 1 for x in exr.parts[p].channels)}
    sub = {p: cs for p, cs in wanted.items() if p not in plain}
    if plain:
        decoded.update(_exr_decode_plain(exr, plain))
    if sub:
        decoded.update(_exr_decode_openexr(exr, sub))

    disp = exr.parts[0].disp
    height, width = header.height, header.width
    block = decoded.pop(_INTERLEAVED, None)
    if block is not None:
        if exr.parts[0].dw == disp and mode != "luma" and list(names) == [c.public for c in needed]:
            return block.astype(np.float32), tuple(names)  # one contiguous conversion, nothing to place
        for k, c in enumerate(needed):
            decoded[c.public] = block[:, :, k]
    out = np.zeros((height, width, len(names)), dtype=np.float32)
    if mode == "luma":
        yw = _luma_weights(header.attributes.get("chromaticities"))
        part = exr.parts[by_name["Y"].part]
        rgb = _luma_to_rgb(decoded["Y"], decoded.get("RY"), decoded.get("BY"), yw)
        for k, plane in enumerate(rgb):
            _place(out, k, plane, part.dw, disp)
        if "A" in decoded:
            _place(out, 3, decoded["A"], exr.parts[by_name["A"].part].dw, disp)
    else:
        for k, name in enumerate(names):
            if name in decoded:
                _place(out, k, decoded[name], exr.parts[by_name[name].part].dw, disp)
    return out, tuple(names)


# =============================================================================================
# DPX
# =============================================================================================

_DPX_DESCRIPTORS = {1: ("R",), 2: ("G",), 3: ("B",), 4: ("A",), 6: ("Y",), 8: ("Z",),
                    50: ("R", "G", "B"), 51: ("R", "G", "B", "A"), 52: ("R", "G", "B", "A")}  # ABGR reversed
_DPX_DESCRIPTOR_NAMES = {0: "user-defined", 1: "red", 2: "green", 3: "blue", 4: "alpha", 6: "luma", 7: "chroma",
                         8: "depth", 9: "composite video", 50: "RGB", 51: "RGBA", 52: "ABGR", 100: "CbYCrY",
                         101: "CbYaCrYa", 102: "CbYCr", 103: "CbYCrA"}
_DPX_TRANSFER_NAMES = {0: "user-defined", 1: "printing density", 2: "linear", 3: "logarithmic",
                       4: "unspecified video", 5: "SMPTE 274M", 6: "ITU-R BT.709-4", 7: "ITU-R BT.601-5 B/G",
                       8: "ITU-R BT.601-5 M", 9: "NTSC composite video", 10: "PAL composite video",
                       11: "Z linear", 12: "Z homogeneous", 13: "SMPTE ADX", 14: "ITU-R BT.2020 NCL",
                       15: "ITU-R BT.2020 CL", 16: "IEC 61966-2-4 xvYCC"}
_DPX_COLORIMETRIC_NAMES = {**_DPX_TRANSFER_NAMES, 2: "not applicable", 3: "not applicable",
                           11: "not applicable", 12: "not applicable"}
_DPX_PACKING_NAMES = {0: "packed", 1: "filled method A", 2: "filled method B"}
_U32_UNDEF = 0xFFFFFFFF


@dataclass
class _DpxElement:
    index: int
    descriptor: int
    transfer: int
    colorimetric: int
    bits: int
    packing: int
    encoding: int
    offset: int
    eol_pad: int
    sign: int
    ref: tuple[Any, Any, Any, Any]
    description: str
    names: tuple[str, ...] = ()


@dataclass
class _Dpx:
    path: str
    size: int
    big: bool
    orientation: int
    ppl: int  # pixels per (stored) line
    lines: int
    elements: list[_DpxElement]
    attributes: dict[str, Any]
    aspect: float


def _parse_dpx(path: str, size: int) -> _Dpx:
    if size < 1408:
        raise _corrupt(path, f"the DPX file is truncated ({size} bytes; its headers alone take 1408)")
    with open(path, "rb") as fh:
        head = fh.read(min(size, 2048))
    big = head[:4] == b"SDPX"
    e = ">" if big else "<"

    def u32(off: int) -> int | None:
        if off + 4 > len(head):
            return None
        v = struct.unpack_from(e + "I", head, off)[0]
        return None if v == _U32_UNDEF else v

    def u16(off: int) -> int | None:
        v = struct.unpack_from(e + "H", head, off)[0]
        return None if v == 0xFFFF else v

    def r32(off: int) -> float | None:
        if off + 4 > len(head):
            return None
        v = struct.unpack_from(e + "f", head, off)[0]
        return float(v) if math.isfinite(v) else None

    def ascii_at(off: int, n: int) -> str:
        raw = head[off:off + n].split(b"\0", 1)[0]
        if not raw or raw.startswith(b"\xff"):
            return ""
        return raw.decode("latin-1").strip()

    image_offset = u32(4)
    version = ascii_at(8, 8)
    generic_size = u32(24)
    industry_size = u32(28)
    orientation = u16(768) or 0
    n_elements = u16(770)
    ppl, lines = u32(772), u32(776)
    if orientation > 7:
        raise _corrupt(path, f"the DPX orientation code {orientation} is invalid")
    if not n_elements or n_elements > 8:
        raise _corrupt(path, f"the DPX header declares {n_elements} image elements (1 to 8 are valid)")
    if not ppl or not lines or ppl > _MAX_COORD or lines > _MAX_COORD or ppl * lines > MAX_PIXELS:
        raise _corrupt(path, f"the DPX header declares an invalid image size ({ppl} x {lines})")

    elements: list[_DpxElement] = []
    for i in range(n_elements):
        base = 780 + 72 * i
        descriptor, transfer, colorimetric, bits = head[base + 20:base + 24]
        packing = u16(base + 24) or 0
        encoding = u16(base + 26) or 0
        offset = u32(base + 28)
        if offset is None or offset < 768 or offset >= size:
            # the element offset is often left undefined; the file header's offset is the fallback
            fallback = image_offset if i == 0 else None
            offset = fallback if fallback is not None and 768 <= fallback < size else None
        if offset is None:
            raise _corrupt(path, f"the DPX header gives no valid offset to the pixel data of element {i + 1}")
        eol = u32(base + 32) or 0
        elements.append(_DpxElement(
            index=i, descriptor=descriptor, transfer=transfer, colorimetric=colorimetric, bits=bits,
            packing=packing, encoding=encoding, offset=offset, eol_pad=eol, sign=u32(base) or 0,
            ref=(u32(base + 4), r32(base + 8), u32(base + 12), r32(base + 16)),
            description=ascii_at(base + 40, 32)))

    attrs: dict[str, Any] = {"dpx:version": version, "dpx:byte_order": "big" if big else "little",
                             "dpx:orientation": orientation, "dpx:elements": n_elements}
    el0 = elements[0]
    attrs.update({
        "dpx:descriptor": el0.descriptor,
        "dpx:descriptor_name": _DPX_DESCRIPTOR_NAMES.get(el0.descriptor, f"code {el0.descriptor}"),
        "dpx:transfer": el0.transfer,
        "dpx:transfer_name": _DPX_TRANSFER_NAMES.get(el0.transfer, "undefined" if el0.transfer == 255
                                                     else f"code {el0.transfer}"),
        "dpx:colorimetric": el0.colorimetric,
        "dpx:colorimetric_name": _DPX_COLORIMETRIC_NAMES.get(el0.colorimetric, "undefined"
                                                             if el0.colorimetric == 255 else f"code {el0.colorimetric}"),
        "dpx:bit_depth": el0.bits,
        "dpx:packing": el0.packing,
        "dpx:packing_name": _DPX_PACKING_NAMES.get(el0.packing, f"code {el0.packing}"),
        "dpx:encoding": el0.encoding,
        "dpx:data_offset": el0.offset,
    })
    if el0.ref[0] is not None:
        attrs["dpx:ref_low_code"] = el0.ref[0]
    if el0.ref[2] is not None:
        attrs["dpx:ref_high_code"] = el0.ref[2]
    if el0.ref[1] is not None:
        attrs["dpx:ref_low_quantity"] = el0.ref[1]
    if el0.ref[3] is not None:
        attrs["dpx:ref_high_quantity"] = el0.ref[3]
    for key, off, n in (("dpx:file_name", 36, 100), ("dpx:creation_time", 136, 24), ("dpx:creator", 160, 100),
                        ("dpx:project", 260, 200), ("dpx:copyright", 460, 200)):
        text = ascii_at(off, n)
        if text:
            attrs[key] = text
    if el0.description:
        attrs["dpx:element_description"] = el0.description
    declared_size = u32(16)
    if declared_size is not None:
        attrs["dpx:declared_file_size"] = declared_size

    header_end = min(size, 2048)
    if generic_size is not None and industry_size is not None and generic_size + industry_size <= 4096:
        header_end = min(header_end, generic_size + industry_size)
    aspect = 1.0
    if header_end >= 1664 and (generic_size is None or generic_size >= 1664):
        ox, oy = u32(1424), u32(1428)
        if ox and oy:
            attrs["dpx:original_size"] = [ox, oy]
        device = ascii_at(1556, 32)
        if device:
            attrs["dpx:input_device"] = device
        ah, av = u32(1628), u32(1632)
        if ah and av:
            aspect = ah / av
            attrs["dpx:pixel_aspect"] = [ah, av]
    rate: float | None = None
    if header_end >= 1920:
        film_rate = r32(1724)
        if film_rate and film_rate > 0:
            rate = film_rate
        frame_id = ascii_at(1732, 32)
        if frame_id:
            attrs["dpx:frame_id"] = frame_id
        slate = ascii_at(1764, 100)
        if slate:
            attrs["dpx:slate"] = slate
    if header_end >= 2048:
        tc = u32(1920)
        if tc is not None:
            parsed = _smpte_timecode(tc)
            if parsed:
                attrs["dpx:timecode"] = attrs["timecode"] = parsed[0]
                if parsed[1]:
                    attrs["timecode_drop_frame"] = True
        tv_rate = r32(1940)
        if rate is None and tv_rate and tv_rate > 0:
            rate = tv_rate
        gamma = r32(1948)
        if gamma and gamma > 0:
            attrs["dpx:gamma"] = gamma
    if rate is not None:
        attrs["dpx:frame_rate"] = round(rate, 6)
        frac = _rate_fraction(rate)
        # some writers store placeholders (After Effects: 1.0); only plausible rates count as stated
        if frac is not None and frac >= 2:
            attrs["fps"] = _fraction_text(frac)
    attrs["oiio:BitsPerSample"] = el0.bits
    return _Dpx(path, size, big, orientation, ppl, lines, elements, attrs,
                aspect if math.isfinite(aspect) and 1e-3 < aspect < 1e3 else 1.0)


def _dpx_element_names(path: str, el: _DpxElement) -> tuple[str, ...]:
    if el.descriptor in _DPX_DESCRIPTORS:
        return _DPX_DESCRIPTORS[el.descriptor]
    if 150 <= el.descriptor <= 156:
        return tuple(f"C{k}" for k in range(el.descriptor - 148))
    if el.descriptor in (7, 100, 101, 102, 103):
        raise UnsupportedMedia("YCbCr (video) DPX files are not supported", path=path,
                               hint="Convert it to RGB DPX or EXR first")
    raise UnsupportedMedia(f"the DPX image descriptor {el.descriptor} is not supported", path=path,
                           hint="Convert it to RGB DPX or EXR first")


def _dpx_header(path: str, size: int) -> tuple[ImageHeader, _Dpx]:
    dpx = _parse_dpx(path, size)
    names: list[str] = []
    for el in dpx.elements:
        el.names = _dpx_element_names(path, el)
        if el.bits not in (8, 10, 12, 16, 32, 64):
            raise UnsupportedMedia(f"{el.bits}-bit DPX data is not supported", path=path,
                                   hint="Use 8, 10, 12 or 16-bit DPX")
        if el.encoding not in (0,):
            raise UnsupportedMedia("run-length encoded DPX is not supported", path=path,
                                   hint="Re-save it uncompressed")
        if el.bits in (10, 12) and el.packing not in (0, 1, 2):
            raise _corrupt(path, f"the DPX packing code {el.packing} is invalid")
        names.extend(el.names)
    if len(set(names)) != len(names):
        names = [f"{n}{i}" if names.count(n) > 1 else n for i, n in enumerate(names)]
    w, h = (dpx.ppl, dpx.lines) if dpx.orientation < 4 else (dpx.lines, dpx.ppl)
    bits = dpx.elements[0].bits
    pixel_type = {8: "uint8", 10: "uint10", 12: "uint12", 16: "uint16", 32: "float", 64: "float"}[bits]
    for el in dpx.elements:
        _dpx_layout(dpx, el)  # raises when the pixel data do not fit in the file
    header = ImageHeader(path=path, format="dpx", width=w, height=h, channels=tuple(names), layers=("",),
                         pixel_type=pixel_type, data_window=Rect(0, 0, w, h), display_window=Rect(0, 0, w, h),
                         pixel_aspect=dpx.aspect, parts=1, attributes=dpx.attributes)
    return header, dpx


def _dpx_line_bytes(el: _DpxElement, samples: int) -> int:
    if el.bits == 8:
        return samples
    if el.bits == 16:
        return 2 * samples
    if el.bits == 32:
        return 4 * samples
    if el.bits == 64:
        return 8 * samples
    if el.bits == 10 and el.packing in (1, 2):
        return 4 * (-(-samples // 3))
    if el.bits == 12 and el.packing in (1, 2):
        return 2 * samples
    return 4 * (-(-(samples * el.bits) // 32))  # packed into 32-bit words


def _dpx_layout(dpx: _Dpx, el: _DpxElement) -> tuple[int, int]:
    """(line bytes, stride) of an element; lines start on 32-bit boundaries when the file is big
    enough for that, else they are taken as contiguous (both kinds exist in the wild)."""
    samples = dpx.ppl * len(el.names)
    line = _dpx_line_bytes(el, samples)
    eol = el.eol_pad if 0 < el.eol_pad < (1 << 20) else 0
    available = dpx.size - el.offset
    aligned = -(-line // 4) * 4
    # a declared end-of-line padding usually already includes the 32-bit alignment
    strides = (line + eol, aligned + eol, aligned, line) if eol else (aligned, line)
    for stride in strides:
        if stride * (dpx.lines - 1) + line <= available:
            return line, stride
    if el.bits == 10 and el.packing in (1, 2) and samples % 3:
        # some film scanners (Lasergraphics, Scanity) run 10-bit samples on across line ends
        # instead of padding each line to a 32-bit word: stride 0 marks that continuous layout
        continuous = 4 * (-(-(samples * dpx.lines) // 3))
        if continuous <= available:
            return continuous, 0
    need = line * dpx.lines
    raise _corrupt(dpx.path, f"the DPX file is truncated: its pixel data need {need} bytes from byte "
                             f"{el.offset}, but the file has only {dpx.size} bytes")


def _unpack_bits(words: np.ndarray, bits: int, count: int) -> np.ndarray:
    """Samples packed back to back in 32-bit words, first sample in the lowest bits."""
    rows = words.shape[0]
    w64 = np.concatenate([words.astype(np.uint64), np.zeros((rows, 1), np.uint64)], axis=1)
    pos = np.arange(count, dtype=np.int64) * bits
    j, s = pos // 32, (pos % 32).astype(np.uint64)
    pair = w64[:, j] | (w64[:, j + 1] << np.uint64(32))
    return ((pair >> s) & np.uint64((1 << bits) - 1)).astype(np.uint32)


def _decode_dpx_element(dpx: _Dpx, el: _DpxElement) -> np.ndarray:
    line, stride = _dpx_layout(dpx, el)
    ncomp = len(el.names)
    samples = dpx.ppl * ncomp
    lines = dpx.lines
    if stride == 0:  # continuous layout: decode the element as one long line
        samples, lines, stride = samples * dpx.lines, 1, line
    e = ">" if dpx.big else "<"
    with open(dpx.path, "rb") as fh:
        fh.seek(el.offset)
        blob = fh.read(stride * (lines - 1) + line)
    if len(blob) < stride * (lines - 1) + line:
        raise _corrupt(dpx.path, "the DPX file is truncated (pixel data ended early)")
    buf = np.frombuffer(blob + b"\0" * (stride * lines - len(blob)), dtype=np.uint8)
    rows = buf.reshape(lines, stride)[:, :line]
    bits = el.bits
    if bits == 8:
        values = rows[:, :samples].astype(np.float32) / 255.0
    elif bits == 16:
        values = rows.copy().view(e + "u2")[:, :samples].astype(np.float32) / 65535.0
    elif bits == 32:
        values = rows.copy().view(e + "f4")[:, :samples].astype(np.float32)
    elif bits == 64:
        values = rows.copy().view(e + "f8")[:, :samples].astype(np.float32)
    elif bits == 12 and el.packing in (1, 2):
        raw = rows.copy().view(e + "u2")[:, :samples]
        codes = (raw >> 4) if el.packing == 1 else (raw & 0x0FFF)
        values = codes.astype(np.float32) / 4095.0
    elif bits == 10 and el.packing in (1, 2):
        words = rows.copy().view(e + "u4")
        shifts = (22, 12, 2) if el.packing == 1 else (20, 10, 0)
        if ncomp == 1:
            # single-channel (luma, alpha, depth) elements store the first sample in the low bits
            shifts = shifts[::-1]
        codes = np.stack([(words >> s) & 0x3FF for s in shifts], axis=2).reshape(lines, -1)[:, :samples]
        values = codes.astype(np.float32) / 1023.0
    else:  # 10/12-bit packed
        words = rows.copy().view(e + "u4")
        codes = _unpack_bits(words, bits, samples)
        values = codes.astype(np.float32) / float((1 << bits) - 1)
    img = values.reshape(dpx.lines, dpx.ppl, ncomp)
    if el.descriptor == 52:
        img = img[:, :, ::-1]
    return img


def _read_dpx(path: str, size: int, layer: str | None) -> tuple[np.ndarray, tuple[str, ...]]:
    header, dpx = _dpx_header(path, size)
    names = layer_channels(header, layer)
    planes = [_decode_dpx_element(dpx, el) for el in dpx.elements]
    img = planes[0] if len(planes) == 1 else np.concatenate(planes, axis=2)
    o = dpx.orientation
    if o >= 4:
        img = img.transpose(1, 0, 2)
        o -= 4
        # 4: columns top-to-bottom, left-to-right; 5: right-to-left; 6: bottom-to-top; 7: both
        if o in (1, 3):
            img = img[:, ::-1]
        if o in (2, 3):
            img = img[::-1]
    else:
        if o in (1, 3):
            img = img[:, ::-1]
        if o in (2, 3):
            img = img[::-1]
    idx = [header.channels.index(n) for n in names]
    out = np.ascontiguousarray(img[:, :, idx], dtype=np.float32)
    return out, names


# =============================================================================================
# PNG / TIFF / JPEG / Cineon through OpenImageIO
# =============================================================================================

_OIIO_TYPES = {"uint8": "uint8", "int8": "uint8", "uint16": "uint16", "int16": "uint16", "half": "half",
               "float": "float", "double": "float", "uint": "uint32", "int": "uint32"}
_PNG_MAX_RATIO = 1100.0  # deflate cannot do better than ~1032:1
_JPEG_MAX_RATIO = 4096.0  # a Huffman-coded block costs at least a bit or two


def _json_value(value: Any) -> Any:
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return _plain_float(value)
    if isinstance(value, (list, tuple)):
        items = [_json_value(v) for v in value]
        return items if len(items) <= 64 else None
    if isinstance(value, np.generic):
        return _json_value(value.item())
    return None


def _oiio_open(path: str, fmt: str):
    oiio = _oiio()
    inp = oiio.ImageInput.open(path)
    if inp is None:
        raise _corrupt(path, f"the {_FORMAT_LABEL[fmt]} file cannot be read ({_oiio_err(oiio) or 'invalid header'})")
    return inp


def _oiio_header(path: str, size: int, fmt: str) -> ImageHeader:
    inp = _oiio_open(path, fmt)
    try:
        return _header_from_spec(path, size, fmt, inp.spec())
    finally:
        inp.close()


def _header_from_spec(path: str, size: int, fmt: str, spec: Any) -> ImageHeader:
    w, h = int(spec.width), int(spec.height)
    fw, fh = int(spec.full_width) or w, int(spec.full_height) or h
    _check_window(path, "image size", (0, 0, w - 1, h - 1))
    _check_window(path, "display window", (0, 0, fw - 1, fh - 1))
    nch = int(spec.nchannels)
    if not 1 <= nch <= 64:
        raise _corrupt(path, f"the file declares {nch} channels")
    if int(spec.depth) > 1:
        raise UnsupportedMedia("volume images are not supported", path=path)
    raw = w * h * nch * (2 if str(spec.format) == "uint16" else 1)
    ratio = {"png": _PNG_MAX_RATIO, "jpeg": _JPEG_MAX_RATIO}.get(fmt)
    if ratio is not None and raw > ratio * size + (1 << 20):
        raise _corrupt(path, f"the {_FORMAT_LABEL[fmt]} declares {w}x{h} pixels, far more than a "
                             f"{size}-byte file can hold")
    _check_memory(path, max(w, fw), max(h, fh), nch)
    attrs: dict[str, Any] = {}
    for pv in spec.extra_attribs:
        try:
            value = _json_value(pv.value)
        except Exception:
            value = None
        if value is not None and not str(pv.name).startswith("Exif:MakerNote"):
            attrs[str(pv.name)] = value
    names = [str(n) for n in spec.channelnames]
    if nch == 1 and names[0] in ("", "R", "Y"):
        names = ["Y"]
    elif nch == 2 and names[0] in ("R", "Y"):
        names = ["Y", "A" if names[1] in ("A", "G") else names[1]]
    names = [n or f"C{i}" for i, n in enumerate(names)]
    base = str(spec.format)
    pixel_type = _OIIO_TYPES.get(base, "float")
    bits = attrs.get("oiio:BitsPerSample")
    if pixel_type == "uint16" and isinstance(bits, int) and bits in (10, 12):
        pixel_type = f"uint{bits}"
    data = Rect(int(spec.x) - int(spec.full_x), int(spec.y) - int(spec.full_y), w, h)
    aspect = attrs.get("PixelAspectRatio")
    return ImageHeader(path=path, format=fmt, width=fw, height=fh, channels=tuple(names), layers=("",),
                       pixel_type=pixel_type, data_window=data, display_window=Rect(0, 0, fw, fh),
                       pixel_aspect=float(aspect) if isinstance(aspect, float) and 1e-3 < aspect < 1e3 else 1.0,
                       parts=1, attributes=attrs)


def _read_oiio(path: str, size: int, fmt: str, layer: str | None) -> tuple[np.ndarray, tuple[str, ...]]:
    inp = _oiio_open(path, fmt)
    try:
        spec = inp.spec()
        header = _header_from_spec(path, size, fmt, spec)
        names = layer_channels(header, layer)
        nch = int(spec.nchannels)
        pixels = inp.read_image(0, 0, 0, nch, "float")
        if pixels is None or _has_error(inp):
            raise _corrupt(path, f"the {_FORMAT_LABEL[fmt]} pixel data are damaged or truncated ({_oiio_err(inp)})")
    finally:
        inp.close()
    w, h = int(spec.width), int(spec.height)
    pixels = np.asarray(pixels, dtype=np.float32).reshape(h, w, nch)
    idx = [header.channels.index(n) for n in names]
    data = header.data_window
    if data == header.display_window:
        return np.ascontiguousarray(pixels[:, :, idx]), names
    out = np.zeros((header.height, header.width, len(idx)), np.float32)
    box = (data.x, data.y, data.x + w - 1, data.y + h - 1)
    for k, i in enumerate(idx):
        _place(out, k, pixels[:, :, i], box, (0, 0, header.width - 1, header.height - 1))
    return out, names


# =============================================================================================
# public API
# =============================================================================================


def probe_image(path: str | os.PathLike[str]) -> ImageHeader:
    """Read an image's header without decoding its pixels.

    Raises :class:`MediaNotFound` (no such file), :class:`CorruptMedia` (empty, truncated or
    damaged) or :class:`UnsupportedMedia` (deep EXR, YCbCr DPX, unknown format).
    """
    text, size = _open_checked(os.fspath(path))
    fmt = _sniff(text, size)
    try:
        if fmt == "exr":
            return _exr_header(text, size)[0]
        if fmt == "dpx":
            return _dpx_header(text, size)[0]
        return _oiio_header(text, size, fmt)
    except MediaError:
        raise
    except MemoryError:
        raise MediaError("not enough memory to read the image header", path=text) from None
    except Exception as exc:  # never let a library exception escape
        raise _corrupt(text, f"the {_FORMAT_LABEL[fmt]} header cannot be read "
                             f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None


def read_image(path: str | os.PathLike[str], layer: str | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Decode an image: float32 ``(H, W, C)`` pixels of the display window plus channel names.

    ``layer=None`` returns the default colour layer: ``R G B [A]`` (EXR luminance and
    luminance/chroma files are converted to RGB), or the stored channels for grey images
    (``("Y",)``, ``("Y", "A")``). A named ``layer`` returns that layer's channels, e.g.
    ``"depth"`` → ``("depth.Z",)``.
    """
    text, size = _open_checked(os.fspath(path))
    fmt = _sniff(text, size)
    try:
        if fmt == "exr":
            return _read_exr(text, size, layer)
        if fmt == "dpx":
            return _read_dpx(text, size, layer)
        return _read_oiio(text, size, fmt, layer)
    except MediaError:
        raise
    except MemoryError:
        raise MediaError("not enough memory to decode the image", path=text,
                         hint="Free memory or use a smaller proxy of the plate") from None
    except Exception as exc:  # never let a library exception escape
        raise _corrupt(text, f"the {_FORMAT_LABEL[fmt]} image cannot be decoded "
                             f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None
