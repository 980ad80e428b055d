"""Multi-layer OpenEXR writer: one file per frame holding every AOV layer.

* **Layout.** Single-part multi-layer by default (what Nuke, Flame, Resolve and After Effects all
  read): the plate as ``R G B [A]``, each object as ``<object>.A``, ``matte.A``,
  ``CryptoObject00..02.R G B A``, ``object_id.id``, ``depth.Z``, ``N.X/Y/Z``, ``forward.u/v``,
  ``backward.u/v``. Multi-part on request: one part per layer (part name = layer name, ``rgba``
  for the plate; the Cryptomatte rank layers share one part), channel names unchanged.
* **Pixel types.** Colour layers (plate, mattes) are half; data layers (Cryptomatte, ids, depth,
  normals, vectors) are float32 — Cryptomatte ids are float bit patterns and must not be rounded.
* **Compression.** ``zip`` (default), ``zips``, ``piz``, ``rle``, ``none`` are lossless; ``dwaa``,
  ``dwab``, ``b44``, ``b44a`` and ``pxr24`` lose data (DWA even quantises float channels named
  R/G/B — Cryptomatte ids). Lossy compression is never applied to data layers: in multi-part
  files they get ZIP; a single-part file with data layers and a lossy compression is written as
  multi-part instead (:attr:`ExrWritten.notes` says so).
* **Header.** Data and display window (the plate's), pixel aspect, ``framesPerSecond``,
  ``timeCode``, the colourspace of the colour layers (``colorInteropID`` when the OCIO space has
  one, ``oiio:ColorSpace`` with its name; ``data``/``Raw`` when the file holds no plate), and
  ``roto/version``, ``roto/sessionId``, ``roto/frame``, ``roto/layers`` (layer → object) and
  ``roto/digest`` (what the exporter checks to resume), plus the Cryptomatte attributes.
* **Content seal.** A file with ``roto/digest`` also carries ``roto/contentHash``: the BLAKE2b-256
  of the whole file with that attribute's own 64 value bytes left out (written as zeros, hashed,
  then patched in place before the rename). Resume (:func:`content_ok`, after :func:`read_digest`)
  re-hashes the file, so damaged pixel data (bytes overwritten mid-file, which the header and
  chunk table do not show) is written again. Cost: one sequential read and hash of the file,
  ~1 GB/s per core, i.e. about 0.1–0.4 s for an 8K multi-layer ZIP frame (100–400 MB), against
  seconds to decode or re-render it; and only for frames whose ``roto/digest`` already matches.

Writes are atomic (temp file + rename). Errors are :class:`~engine.errors.OutputError`.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import InputError, OutputError
from engine.util.atomic import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    from engine.export.aovs import FrameMeta, Layer

COMPRESSIONS = ("none", "rle", "zips", "zip", "piz", "pxr24", "b44", "b44a", "dwaa", "dwab")
LOSSLESS = frozenset({"none", "rle", "zips", "zip", "piz"})
DEFAULT_COMPRESSION = "zip"
DEFAULT_DWA_LEVEL = 45.0
#: header attribute holding the file's content hash (see the module doc, "Content seal")
CONTENT_ATTR = "roto/contentHash"
_CONTENT_LEN = 64  # hex BLAKE2b-256
_CONTENT_PREFIX = CONTENT_ATTR.encode() + b"\0string\0" + struct.pack("<i", _CONTENT_LEN)
_CONTENT_PLACEHOLDER = b"0" * _CONTENT_LEN


@dataclass
class ExrWritten:
    """What :func:`write_exr` wrote."""

    path: str
    parts: list[tuple[str, str, list[str]]]  # (part name, compression, channels)
    multipart: bool
    notes: list[str] = field(default_factory=list)


def check_compression(name: str | None) -> str:
    c = (name or DEFAULT_COMPRESSION).strip().lower()
    if c not in COMPRESSIONS:
        raise InputError(f"unknown EXR compression {name!r}", hint=f"Choose one of: {', '.join(COMPRESSIONS)}")
    return c


def _compression(openexr: Any, name: str) -> Any:
    return getattr(openexr, f"{name.upper()}_COMPRESSION")


def _threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover
        return max(1, os.cpu_count() or 1)


def colour_attributes(colourspace: str | None, config: str | None = None) -> dict[str, str]:
    """``colorInteropID`` (when the OCIO space declares one) and ``oiio:ColorSpace`` for a colourspace name."""
    if not colourspace:
        return {}
    out = {"oiio:ColorSpace": colourspace}
    try:
        from engine.media.colour import get_config

        cs = get_config(config).getColorSpace(colourspace)
        interop = cs.getInteropID() if cs is not None and hasattr(cs, "getInteropID") else ""
    except Exception:  # noqa: BLE001 - metadata only; a config problem must not stop a delivery
        interop = ""
    if interop:
        out["colorInteropID"] = interop
    return out


def _box(openexr_np: Any, rect: Any) -> tuple[Any, Any]:
    np = openexr_np
    return (np.array([rect.x, rect.y], np.int32),
            np.array([rect.x + rect.width - 1, rect.y + rect.height - 1], np.int32))


def header_attributes(meta: FrameMeta, *, colour_layers: bool, digest: str | None = None,
                      layer_objects: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
                      ocio_config: str | None = None) -> dict[str, Any]:
    """Header attributes shared by every part (windows and compression are added per part)."""
    import numpy as np
    import OpenEXR

    from engine.export.aovs import timecode_fields

    attrs: dict[str, Any] = {
        "displayWindow": _box(np, meta.display_window),
        "dataWindow": _box(np, meta.data_window),
        "pixelAspectRatio": float(meta.pixel_aspect or 1.0),
        "framesPerSecond": meta.fps,
        "roto/version": meta.version,
        "roto/sessionId": meta.session_id,
        "roto/frame": str(meta.frame),
        "roto/shot": meta.shot,
        "software": f"Ultimate Rotoscopy {meta.version}",
    }
    if meta.timecode:
        hh, mm, ss, ff = timecode_fields(meta.timecode)
        attrs["timeCode"] = OpenEXR.TimeCode(hh, mm, ss, ff, int(bool(meta.drop_frame)), *([0] * 13))
    if colour_layers:
        attrs.update(colour_attributes(meta.colourspace, ocio_config))
    else:
        attrs.update({"oiio:ColorSpace": "Raw", "colorInteropID": "data"})
    attrs["roto/plateColourspace"] = meta.colourspace
    if layer_objects:
        attrs["roto/layers"] = json.dumps(layer_objects, ensure_ascii=False, sort_keys=True)
    if digest:
        attrs["roto/digest"] = digest
    if extra:
        attrs.update(extra)
    return attrs


def _crop(meta: FrameMeta) -> tuple[int, int, int, int]:
    """Data window relative to the display window's origin: (x0, y0, x1, y1) exclusive."""
    dw, disp = meta.data_window, meta.display_window
    x0, y0 = dw.x - disp.x, dw.y - disp.y
    return x0, y0, x0 + dw.width, y0 + dw.height


def _channels(layers: list[Layer], crop: tuple[int, int, int, int], colour_float: bool = False) -> dict[str, Any]:
    """``{channel name: contiguous 2-D array}`` as the library wants them (it ignores strides).

    A layer stored planar (a ``(H, W, C)`` view of ``(C, H, W)`` data, as the Cryptomatte provider
    makes them) is passed without copying; an interleaved one is made planar in one pass.
    """
    import numpy as np

    x0, y0, x1, y1 = crop
    out: dict[str, Any] = {}
    for layer in layers:
        px = layer.pixels
        h, w = px.shape[:2]
        if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
            raise InputError("the data window reaches outside the display window, which the exporter does not "
                             "hold pixels for", hint="Export with the display window (window='display')")
        view = px[y0:y1, x0:x1]
        dtype = np.float16 if (layer.kind == "colour" and not colour_float) else np.float32
        names = layer.channel_names
        if len(names) > 1 and not view[:, :, 0].flags.c_contiguous:
            planes = list(np.ascontiguousarray(view.transpose(2, 0, 1), dtype=dtype))
        else:
            planes = [view[:, :, i] for i in range(len(names))]
        for name, plane in zip(names, planes):
            out[name] = np.ascontiguousarray(plane, dtype=dtype)
    return out


def _exr_write(exr_file: Any, path: Path) -> None:
    """The library call, alone so tests can simulate a full disk here."""
    exr_file.write(str(path))


def _explain_failure(exc: BaseException, path: Path) -> OutputError:
    text = str(exc)
    low = text.lower()
    if "no space" in low or "disk full" in low or "enospc" in low:
        return OutputError("the disk is full", path=str(path), hint="Free some space or choose another --out folder")
    if "file too large" in low or "efbig" in low:
        return OutputError("the file system refused a file this large", path=str(path))
    if "permission" in low or "read-only" in low:
        return OutputError("the folder is not writable", path=str(path), hint="Choose a folder you can write to")
    return OutputError(f"the EXR could not be written ({text})", path=str(path))


def write_exr(path: str | Path, layers: list[Layer], meta: FrameMeta, *, compression: str = DEFAULT_COMPRESSION,
              multipart: bool = False, dwa_level: float = DEFAULT_DWA_LEVEL, attributes: dict[str, Any] | None = None,
              part_attributes: dict[str, dict[str, Any]] | None = None, threads: int | None = None,
              colour_float: bool = False, atomic: bool = True) -> ExrWritten:
    """Write one frame's layers to ``path`` atomically (``atomic=False``: straight to ``path``, for a
    caller that passes a temporary file of its own).

    Colour layers are half unless ``colour_float``; data layers are always float.
    ``attributes`` go to every part's header (see :func:`header_attributes`), and so do
    ``part_attributes`` (provider name → attributes, e.g. the Cryptomatte manifest): readers
    such as Nuke and cryptomatte-api look for them in the first part.
    """
    import OpenEXR

    target = Path(path)
    comp = check_compression(compression)
    lossy = comp not in LOSSLESS
    has_data = any(layer.kind != "colour" for layer in layers)
    notes: list[str] = []
    if lossy and has_data and not multipart:
        multipart = True
        notes.append(f"{comp.upper()} is lossy, so the data layers (Cryptomatte, ids, vectors, depth…) went into "
                     f"their own ZIP-compressed parts: the files are multi-part. Use --compression zip or piz for "
                     f"single-part files")
    crop = _crop(meta)
    base = dict(attributes or {})
    sealed = "roto/digest" in base
    if sealed:
        base[CONTENT_ATTR] = _CONTENT_PLACEHOLDER.decode()
    base["type"] = OpenEXR.scanlineimage
    base["lineOrder"] = OpenEXR.INCREASING_Y
    parts_done: list[tuple[str, str, list[str]]] = []
    if not multipart:
        header = dict(base)
        for extra in (part_attributes or {}).values():
            header.update(extra)
        header["compression"] = _compression(OpenEXR, comp)
        if comp in ("dwaa", "dwab"):
            header["dwaCompressionLevel"] = float(dwa_level)
        channels = _channels(layers, crop, colour_float)
        exr_file = OpenEXR.File(header, channels, threads or _threads())
        parts_done.append(("", comp, list(channels)))
    else:
        groups: dict[str, list[Layer]] = {}
        for layer in layers:
            key = layer.name or "rgba"
            if layer.provider == "crypto":
                key = layer.file_group
            groups.setdefault(key, []).append(layer)
        parts = []
        for name, group in groups.items():
            data = any(layer.kind != "colour" for layer in group)
            part_comp = "zip" if (data and lossy) else comp
            header = dict(base)
            for extra in (part_attributes or {}).values():  # every part: hosts read the first part's header
                header.update(extra)
            header["compression"] = _compression(OpenEXR, part_comp)
            if part_comp in ("dwaa", "dwab"):
                header["dwaCompressionLevel"] = float(dwa_level)
            channels = _channels(group, crop, colour_float)
            parts.append(OpenEXR.Part(header, channels, name))
            parts_done.append((name, part_comp, list(channels)))
        exr_file = OpenEXR.File(parts, threads or _threads())
    with atomic_path(target, direct=not atomic) as tmp:
        try:
            _exr_write(exr_file, tmp)
            if sealed:
                _seal_content(tmp)
        except OSError:
            raise
        except Exception as exc:  # OpenEXR raises RuntimeError with the C++ message
            raise _explain_failure(exc, target) from exc
    return ExrWritten(str(target), parts_done, multipart, notes)


def _content_ranges(buf: Any) -> list[tuple[int, int]]:
    """Where the values of every ``roto/contentHash`` attribute lie (one per part header)."""
    ranges = []
    at = buf.find(_CONTENT_PREFIX)
    while at >= 0:
        start = at + len(_CONTENT_PREFIX)
        ranges.append((start, start + _CONTENT_LEN))
        at = buf.find(_CONTENT_PREFIX, start + _CONTENT_LEN)
    return ranges


def _content_hash(buf: Any, ranges: list[tuple[int, int]]) -> str:
    """BLAKE2b-256 of ``buf`` without the ``ranges`` (the hash's own value bytes)."""
    h = hashlib.blake2b(digest_size=_CONTENT_LEN // 2)
    view = memoryview(buf)
    try:
        pos = 0
        for lo, hi in [*ranges, (len(buf), len(buf))]:
            for at in range(pos, lo, 16 << 20):
                h.update(view[at:min(lo, at + (16 << 20))])
            pos = hi
    finally:
        view.release()
    return h.hexdigest()


def _seal_content(path: Path) -> None:
    """Write the content hash into the placeholder(s) that :func:`write_exr` put in the header."""
    with open(path, "r+b") as fh, mmap.mmap(fh.fileno(), 0) as buf:
        ranges = [r for r in _content_ranges(buf) if buf[r[0]:r[1]] == _CONTENT_PLACEHOLDER]
        if not ranges:
            raise OutputError("the EXR writer dropped the content-hash attribute", path=str(path))
        value = _content_hash(buf, ranges).encode()
        for lo, hi in ranges:
            buf[lo:hi] = value
        buf.flush()


def content_ok(path: str | Path) -> bool:
    """Whether the file's bytes still hash to its ``roto/contentHash``.

    False when it has none (a file written before the seal existed is written again once). Cost:
    one read of the file (see "Content seal" in the module doc).
    """
    try:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return False
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                ranges = _content_ranges(buf)
                values = {bytes(buf[lo:hi]) for lo, hi in ranges}
                if len(values) != 1:
                    return False
                return _content_hash(buf, ranges).encode() == values.pop()
    except (OSError, ValueError):
        return False


def read_digest(path: str | Path) -> str | None:
    """The ``roto/digest`` of an EXR we wrote, or None when the file is absent, damaged or not ours.

    The header is parsed and the chunk table checked against the file size (a truncated or
    damaged file reads as None, so the exporter writes it again). The pixel data is not read:
    resume also calls :func:`content_ok`.
    """
    from engine.errors import RotoError
    from engine.media.readers.image import probe_image

    p = Path(path)
    if not p.is_file():
        return None
    try:
        header = probe_image(p)
    except RotoError:
        return None
    value = header.attributes.get("roto/digest")
    return str(value) if value else None
