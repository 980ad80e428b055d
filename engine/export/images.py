"""PNG and TIFF sequences: mattes at 8 or 16 bits (TIFF also 32-bit float), through OpenImageIO.

* Mattes (coverage in [0, 1]) are one grey channel: ``round(a × 255)`` / ``round(a × 65535)``, or
  the float itself in float TIFF.
* Object ids are written as their integer values (not normalised): 16-bit holds ids up to
  65535, 8-bit up to 255 (more is refused); float TIFF holds them as floats.
* The plate (``rgba``) is converted to sRGB-encoded Rec.709 for 8/16-bit files (they are display
  images); float TIFF keeps the plate's own colourspace (named in the file's metadata).
* TIFF: ZIP (Adobe deflate) compression by default, ``lzw`` or ``none`` on request; PNG: zlib.
* The exporter's JSON record (digest, session id, engine version) goes in ``ImageDescription``
  so a resumed export can tell a finished file from a stale one.

Writes are atomic (temp file + rename).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import InputError, OutputError
from engine.util.atomic import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

FORMATS = ("png", "tiff")
BITS = {"png": (8, 16), "tiff": (8, 16, 32)}
COMPRESSIONS = {"png": ("zip",), "tiff": ("zip", "lzw", "none")}
RECORD_PREFIX = "roto "


def check_bits(fmt: str, bits: int | None) -> int:
    b = 8 if bits is None else int(bits)
    if b not in BITS[fmt]:
        raise InputError(f"{fmt.upper()} is written at {' or '.join(map(str, BITS[fmt]))} bits, not {bits}",
                         hint="Float mattes need --format tiff --bit-depth 32" if fmt == "png" else None)
    return b


def check_compression(fmt: str, name: str | None) -> str:
    c = (name or "zip").strip().lower()
    if c == "deflate":
        c = "zip"
    if c not in COMPRESSIONS[fmt]:
        raise InputError(f"{fmt.upper()} files are written with {', '.join(COMPRESSIONS[fmt])} compression, "
                         f"not {name!r}")
    return c


def quantise(pixels: np.ndarray, bits: int, *, integer: bool = False) -> np.ndarray:
    """float ``(H, W, C)`` → the array written: uint8/uint16 (normalised, or raw integers) or float32."""
    import numpy as np

    if bits == 32:
        return np.ascontiguousarray(pixels, np.float32)
    dtype = np.uint8 if bits == 8 else np.uint16
    top = float(np.iinfo(dtype).max)
    if integer:
        if pixels.size and float(pixels.max()) > top:
            raise InputError(f"object ids above {int(top)} do not fit in {bits}-bit files",
                             hint="Use --bit-depth 16 or a float TIFF")
        return np.rint(pixels).astype(dtype)
    q = np.empty(pixels.shape, np.float32)
    np.multiply(pixels, top, out=q)
    np.clip(q, 0.0, top, out=q)
    np.rint(q, out=q)
    return q.astype(dtype)


def _oiio_write(path: Path, array: np.ndarray, spec: Any) -> None:
    """The library call, alone so tests can simulate a full disk here."""
    import OpenImageIO as oiio

    out = oiio.ImageOutput.create(str(path))
    if out is None:
        raise OutputError(f"OpenImageIO cannot write this format ({oiio.geterror()})", path=str(path))
    try:
        if not out.open(str(path), spec):
            raise OSError(out.geterror() or "open failed")
        if not out.write_image(array):
            raise OSError(out.geterror() or "write failed")
    finally:
        if not out.close():
            err = out.geterror()
            if err:
                raise OSError(err)


def write_image(path: str | Path, pixels: np.ndarray, bits: int, *, fmt: str | None = None, integer: bool = False,
                compression: str = "zip", record: dict | None = None, attributes: dict[str, Any] | None = None,
                channel_names: tuple[str, ...] | None = None, atomic: bool = True) -> None:
    """Write float ``(H, W, C)`` (C = 1, 3 or 4) to a PNG/TIFF at ``bits`` (8, 16; TIFF also 32 = float).

    Atomic (temp file + rename) unless ``atomic=False``: then straight to ``path``, for a caller
    that passes a temporary file of its own."""
    import numpy as np
    import OpenImageIO as oiio

    target = Path(path)
    fmt = fmt or ("png" if target.suffix.lower() == ".png" else "tiff")
    px = np.asarray(pixels)
    if px.ndim == 2:
        px = px[:, :, None]
    h, w, c = px.shape
    if c not in (1, 2, 3, 4):
        raise InputError(f"{fmt.upper()} holds 1 to 4 channels, not {c}", path=str(target))
    array = quantise(px, bits, integer=integer)
    type_name = {8: "uint8", 16: "uint16", 32: "float"}[bits]
    spec = oiio.ImageSpec(w, h, c, type_name)
    if channel_names:
        spec.channelnames = tuple(channel_names)
    if c in (2, 4):
        spec.alpha_channel = c - 1
    if fmt == "tiff":
        spec.attribute("compression", {"zip": "zip", "lzw": "lzw", "none": "none"}[compression])
    else:
        spec.attribute("png:compressionLevel", 6)
    spec.attribute("oiio:UnassociatedAlpha", 1)
    for key, value in (attributes or {}).items():
        spec.attribute(key, value)
    if record is not None:
        spec.attribute("ImageDescription", RECORD_PREFIX + json.dumps(record, sort_keys=True, separators=(",", ":")))
    with atomic_path(target, direct=not atomic) as tmp:
        try:
            _oiio_write(tmp, array, spec)
        except OSError as exc:
            if exc.errno is None:
                low = str(exc).lower()
                if "no space" in low:
                    raise OutputError("the disk is full", path=str(target),
                                      hint="Free some space or choose another --out folder") from exc
                raise OutputError(f"the {fmt.upper()} could not be written ({exc})", path=str(target)) from exc
            raise


def read_record(path: str | Path, *, verify: bool = True) -> dict | None:
    """The exporter's record of a PNG/TIFF we wrote; None when absent, unreadable or not ours.

    With ``verify`` the pixels are decoded too, so a truncated file reads as None.
    """
    import OpenImageIO as oiio

    p = Path(path)
    if not p.is_file():
        return None
    inp = oiio.ImageInput.open(str(p))
    if inp is None:
        oiio.geterror()
        return None
    try:
        text = inp.spec().getattribute("ImageDescription")
        if not isinstance(text, str) or not text.startswith(RECORD_PREFIX):
            return None
        if verify and inp.read_image() is None:
            inp.geterror()
            return None
        try:
            record = json.loads(text[len(RECORD_PREFIX):])
        except ValueError:
            return None
        return record if isinstance(record, dict) else None
    finally:
        inp.close()
