"""DPX writer (SMPTE 268M-2003 header, big-endian ``SDPX``, one image element).

* **Packing.** 10-bit: method A — three 10-bit samples per 32-bit word, left-justified (bits
  31–22, 21–12, 11–2; the two low bits are 0), lines padded to a word (packing code 1). 16-bit:
  one sample per 16 bits (packing 0). 8-bit: bytes (packing 0). 8- and 16-bit lines are padded to
  a 32-bit word and the padding is declared in the end-of-line padding field (OpenImageIO reads
  that field; readers that assume word-aligned lines get the same layout). Samples are
  ``round(value × (2^bits − 1))`` of values clipped to [0, 1]. Single-channel 10-bit elements put
  the first sample in the low bits of each word (what libdpx/OpenImageIO and our reader expect);
  the exporter still writes mattes as RGB, which every host reads the same way.
* **Descriptor** 50 (RGB), 51 (RGBA) or 6 (luma) from the channel count.
* **Transfer / colorimetric** (SMPTE 268M table; OpenImageIO agrees): 1 printing density
  (Cineon log), 2 linear, 3 logarithmic, 6 ITU-R 709-4, 13 ADX. Mattes are written as linear
  (2) with colorimetric 2 ("not applicable"); the plate as chosen: ``log`` → 1/1 (Cineon printing
  density through the engine's OCIO "Cineon Log" space), ``adx`` → 13/13 (OCIO ADX10/ADX16),
  ``linear`` → 2/6 (Linear Rec.709), ``rec709`` → 6/6 (Gamma 2.4 Encoded Rec.709).
  Note: ``shared/notes/host-formats.md`` gives 3 for linear and 13 for Rec.709 — both wrong.
* **Header fields.** File name, creation time, creator (engine version), project (session id),
  image size, pixel aspect, frame position, sequence length, frame rate (film and TV headers),
  SMPTE timecode (packed BCD, drop-frame flag), reference codes (0 and full scale; 2.047 density
  for printing density). A 256-byte user-data block (user id ``UltimateRotoscopy``) holds the
  exporter's JSON record (digest, session id), which a resumed export reads back.

Writes are atomic (temp file + rename).
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import InputError
from engine.util.atomic import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

MAGIC = b"SDPX"
HEADER_SIZE = 2048
USER_ID = b"UltimateRotoscopy"
USER_SIZE = 256
UNDEF_U32 = 0xFFFFFFFF

#: --transfer choices for the plate: (OCIO space for 10-bit, for 16-bit, transfer code, colorimetric code)
TRANSFERS: dict[str, tuple[str, str, int, int]] = {
    "log": ("Cineon Log", "Cineon Log", 1, 1),
    "adx": ("ADX10", "ADX16", 13, 13),
    "linear": ("Linear Rec.709 (sRGB)", "Linear Rec.709 (sRGB)", 2, 6),
    "rec709": ("Gamma 2.4 Encoded Rec.709", "Gamma 2.4 Encoded Rec.709", 6, 6),
}
#: transfer/colorimetric codes of mattes and other non-colour data
MATTE_CODES = (2, 2)
DESCRIPTORS = {1: 6, 3: 50, 4: 51}


@dataclass(frozen=True)
class DpxInfo:
    """Header facts :func:`write_dpx` takes (all optional but the codes)."""

    transfer: int = 2
    colorimetric: int = 2
    fps: Fraction | None = None
    timecode: str | None = None
    drop_frame: bool = False
    frame: int | None = None
    sequence_length: int | None = None
    pixel_aspect: float = 1.0
    creator: str = ""
    project: str = ""
    description: str = ""
    user_data: bytes = b""


def pack_timecode(tc: str, drop_frame: bool = False) -> int:
    """SMPTE 12M packed BCD (``0xHHMMSSFF``, drop-frame flag in bit 6)."""
    from engine.export.aovs import timecode_fields

    hh, mm, ss, ff = timecode_fields(tc)
    value = 0
    for shift, v in ((24, hh), (16, mm), (8, ss), (0, ff)):
        value |= ((v // 10) << 4 | (v % 10)) << shift
    if drop_frame:
        value |= 0x40
    return value


def _text(buf: bytearray, offset: int, size: int, text: str) -> None:
    raw = text.encode("ascii", "replace")[: size - 1]
    buf[offset:offset + size] = raw + b"\0" * (size - len(raw))


def _pack_samples(pixels: np.ndarray, bits: int) -> tuple[Any, int]:
    """Pixel data (a contiguous array or bytes, big-endian) and the end-of-line padding in bytes.

    Lines always end on a 32-bit word.
    """
    import numpy as np

    h, w, c = pixels.shape
    scale = np.float32((1 << bits) - 1)
    if bits == 10 and c == 3:  # the common case: one word per pixel, built channel by channel
        word = None
        for i, shift in enumerate((22, 12, 2)):
            plane = pixels[:, :, i] * scale
            np.clip(plane, 0.0, scale, out=plane)
            np.rint(plane, out=plane)
            code = plane.astype(np.uint32)
            code <<= np.uint32(shift)
            if word is None:
                word = code
            else:
                word |= code
        word.byteswap(inplace=True)  # the array's memory now holds big-endian words
        return word, 0
    q = np.empty(pixels.shape, np.float32)
    np.multiply(pixels, scale, out=q)
    np.clip(q, 0.0, scale, out=q)
    np.rint(q, out=q)
    if bits == 10:
        samples = q.astype(np.uint32).reshape(h, w * c)
        per_line = w * c
        words = -(-per_line // 3)
        if words * 3 != per_line:
            samples = np.concatenate([samples, np.zeros((h, words * 3 - per_line), np.uint32)], axis=1)
        s = samples.reshape(h, words, 3)
        if c == 1:  # single-channel elements: first sample in the low bits (libdpx/OpenImageIO, our reader)
            packed = (s[:, :, 0] << 2) | (s[:, :, 1] << 12) | (s[:, :, 2] << 22)
        else:
            packed = (s[:, :, 0] << 22) | (s[:, :, 1] << 12) | (s[:, :, 2] << 2)
        return packed.astype(">u4"), 0
    if bits == 16:
        samples = q.astype(">u2").reshape(h, w * c)
    elif bits == 8:
        samples = q.astype(np.uint8).reshape(h, w * c)
    else:
        raise InputError(f"DPX bit depth {bits} is not written", hint="Use 8, 10 or 16")
    line = samples.shape[1] * samples.dtype.itemsize
    pad = (-line) % 4
    if pad:
        samples = np.concatenate([samples.view(np.uint8).reshape(h, line), np.zeros((h, pad), np.uint8)], axis=1)
    return np.ascontiguousarray(samples), pad


def build_header(width: int, height: int, channels: int, bits: int, info: DpxInfo, data_size: int,
                 file_name: str = "", eol_pad: int = 0) -> bytes:
    """The 2048-byte header plus the user-data block."""
    if channels not in DESCRIPTORS:
        raise InputError(f"DPX holds 1, 3 or 4 channels, not {channels}")
    offset = HEADER_SIZE + USER_SIZE
    buf = bytearray(b"\xff" * offset)
    be = ">"

    def u32(off: int, v: int) -> None:
        struct.pack_into(be + "I", buf, off, v & 0xFFFFFFFF)

    def u16(off: int, v: int) -> None:
        struct.pack_into(be + "H", buf, off, v & 0xFFFF)

    def r32(off: int, v: float) -> None:
        struct.pack_into(be + "f", buf, off, float(v))

    # file header
    buf[0:4] = MAGIC
    u32(4, offset)
    _text(buf, 8, 8, "V2.0")
    u32(16, offset + data_size)
    u32(20, 1)  # ditto key: new frame
    u32(24, 1664)  # generic header: file + image + orientation
    u32(28, 384)  # industry header: film + TV
    u32(32, USER_SIZE)
    _text(buf, 36, 100, file_name)
    _text(buf, 136, 24, time.strftime("%Y:%m:%d:%H:%M:%S:", time.localtime()) + time.strftime("%Z")[:3])
    _text(buf, 160, 100, info.creator)
    _text(buf, 260, 200, info.project)
    _text(buf, 460, 200, "")
    u32(660, UNDEF_U32)  # not encrypted
    buf[664:768] = b"\0" * 104
    # image header
    u16(768, 0)  # orientation: left to right, top to bottom
    u16(770, 1)
    u32(772, width)
    u32(776, height)
    e = 780
    u32(e + 0, 0)  # unsigned
    full = (1 << bits) - 1
    u32(e + 4, 0)
    r32(e + 8, 0.0)
    u32(e + 12, full)
    r32(e + 16, 2.047 if info.transfer == 1 else 1.0)
    buf[e + 20] = DESCRIPTORS[channels]
    buf[e + 21] = info.transfer
    buf[e + 22] = info.colorimetric
    buf[e + 23] = bits
    u16(e + 24, 1 if bits == 10 else 0)
    u16(e + 26, 0)  # no run-length encoding
    u32(e + 28, offset)
    u32(e + 32, eol_pad)
    u32(e + 36, 0)
    _text(buf, e + 40, 32, info.description)
    # elements 2..8 stay undefined (0xFF); reserved bytes zero
    buf[1356:1408] = b"\0" * 52
    # orientation header
    u32(1408, 0)
    u32(1412, 0)
    r32(1416, width / 2.0)
    r32(1420, height / 2.0)
    u32(1424, width)
    u32(1428, height)
    _text(buf, 1432, 100, file_name)
    _text(buf, 1532, 24, time.strftime("%Y:%m:%d:%H:%M:%S:", time.localtime()) + time.strftime("%Z")[:3])
    _text(buf, 1556, 32, "")
    _text(buf, 1588, 32, "")
    buf[1620:1628] = b"\0" * 8  # border validity
    aspect = Fraction(info.pixel_aspect or 1.0).limit_denominator(10000)
    u32(1628, aspect.numerator)
    u32(1632, aspect.denominator)
    buf[1636:1664] = b"\0" * 28
    # film header
    buf[1664:1712] = b"\0" * 48  # film codes and format: not applicable
    if info.frame is not None and info.frame >= 0:
        u32(1712, info.frame)
    if info.sequence_length:
        u32(1716, info.sequence_length)
    u32(1720, 1)
    if info.fps:
        r32(1724, float(info.fps))
    _text(buf, 1732, 32, "" if info.frame is None else str(info.frame))
    _text(buf, 1764, 100, "")
    buf[1864:1920] = b"\0" * 56
    # TV header
    if info.timecode:
        u32(1920, pack_timecode(info.timecode, info.drop_frame))
    buf[1928] = 0  # not interlaced
    buf[1929] = 0
    buf[1930] = 0  # video signal: undefined
    buf[1931] = 0
    if info.fps:
        r32(1940, float(info.fps))
    buf[1972:2048] = b"\0" * 76
    # user data: 32-byte user id + our JSON record
    _text(buf, 2048, 32, USER_ID.decode())
    payload = info.user_data
    if len(payload) > USER_SIZE - 32:
        raise ValueError(f"DPX user data is {len(payload)} bytes; at most {USER_SIZE - 32} fit")
    buf[2080:2080 + USER_SIZE - 32] = payload + b"\0" * (USER_SIZE - 32 - len(payload))
    return bytes(buf)


def encode_dpx(pixels: np.ndarray, bits: int = 10, info: DpxInfo | None = None, file_name: str = "") -> bytes:
    """The whole file as bytes. ``pixels`` float ``(H, W, C)`` code values in [0, 1], C in 1, 3, 4."""
    import numpy as np

    px = np.asarray(pixels, np.float32)
    if px.ndim == 2:
        px = px[:, :, None]
    if bits not in (8, 10, 16):
        raise InputError(f"DPX bit depth {bits} is not written", hint="Use 10 (default), 16 or 8")
    data, pad = _pack_samples(px, bits)
    header = build_header(px.shape[1], px.shape[0], px.shape[2], bits, info or DpxInfo(), data.nbytes, file_name, pad)
    return header + data.tobytes()


def _write_bytes(path: Path, chunks: list[Any]) -> None:
    """The file write (bytes or contiguous arrays), alone so tests can simulate a full disk here.

    No fsync, like the EXR and image writers: the rename makes the file appear whole, and a
    resumed export re-validates every file (a file cut short by a crash is rewritten).
    """
    with open(path, "wb") as fh:
        for chunk in chunks:
            fh.write(memoryview(chunk).cast("B") if not isinstance(chunk, bytes) else chunk)


def write_dpx(path: str | Path, pixels: np.ndarray, bits: int = 10, info: DpxInfo | None = None,
              file_name: str | None = None, atomic: bool = True) -> int:
    """Write ``pixels`` (float code values in [0, 1]) to ``path`` atomically; returns the file size.

    ``atomic=False`` writes straight to ``path`` (a caller's own temporary file).

    ``file_name`` is the name recorded in the header (default: ``path``'s).
    """
    import numpy as np

    target = Path(path)
    px = np.asarray(pixels, np.float32)
    if px.ndim == 2:
        px = px[:, :, None]
    if bits not in (8, 10, 16):
        raise InputError(f"DPX bit depth {bits} is not written", hint="Use 10 (default), 16 or 8")
    data, pad = _pack_samples(px, bits)
    header = build_header(px.shape[1], px.shape[0], px.shape[2], bits, info or DpxInfo(), data.nbytes,
                          file_name or target.name, pad)
    with atomic_path(target, direct=not atomic) as tmp:
        _write_bytes(tmp, [header, data])
    return len(header) + data.nbytes


def read_record(path: str | Path) -> dict | None:
    """Our user-data record of a DPX we wrote (None when absent, truncated or not ours)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            head = fh.read(HEADER_SIZE + USER_SIZE)
    except OSError:
        return None
    if len(head) < HEADER_SIZE + USER_SIZE or head[:4] != MAGIC:
        return None
    declared = struct.unpack_from(">I", head, 16)[0]
    if declared != size or head[2048:2048 + len(USER_ID)] != USER_ID:
        return None
    raw = head[2080:HEADER_SIZE + USER_SIZE].split(b"\0", 1)[0]
    try:
        record = json.loads(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def check_bits(bits: int | None) -> int:
    b = 10 if bits is None else int(bits)
    if b not in (8, 10, 16):
        raise InputError(f"DPX is written at 10 (default), 16 or 8 bits, not {bits}", hint="Use --bit-depth 10 or 16")
    return b


def check_transfer(name: str | None) -> str:
    t = (name or "log").strip().lower()
    aliases = {"cineon": "log", "printing_density": "log", "lin": "linear", "709": "rec709", "video": "rec709"}
    t = aliases.get(t, t)
    if t not in TRANSFERS:
        raise InputError(f"unknown DPX transfer {name!r}", hint=f"Choose one of: {', '.join(TRANSFERS)}")
    return t


def encode_plate(pixels: np.ndarray, plate_colourspace: str, transfer: str, bits: int,
                 ocio_config: str | None = None) -> tuple[np.ndarray, int, int]:
    """Plate pixels converted for DPX: ``(code values in [0, 1], transfer code, colorimetric code)``."""
    from engine.media.colour import ColourTransform, canonical_colourspace

    space10, space16, tcode, ccode = TRANSFERS[transfer]
    target = canonical_colourspace(space16 if bits == 16 else space10, ocio_config)
    out = ColourTransform(plate_colourspace, target, config=ocio_config).apply(pixels[:, :, :3])
    return out, tcode, ccode
