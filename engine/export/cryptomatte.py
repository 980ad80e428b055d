"""Cryptomatte (Psyop specification 1.2): ids, manifest, rank encoding and decoding.

**Ids.** An object's id is MurmurHash3_x86_32 (seed 0) of its name's UTF-8 bytes
(:func:`murmurhash3_32`, pure Python; the ``mmh3`` package is used when installed, for speed,
and gives the same numbers). The 32 bits are stored as a float32 bit pattern
(``uint32_to_float32``); the spec keeps those floats finite and normal, so a hash whose exponent
bits (23–30) are all 0 or all 1 has bit 23 flipped (:func:`name_hash`). Manifests store the
*adjusted* value as 8 lower-case hex digits — renderers' files agree (see the tests on the
V-Ray/Arnold/Nuke samples).

**Channels.** ``<type>00.R G B A``, ``<type>01.RGBA``… each pixel holds ranked
``(id, coverage)`` pairs, R = id of rank 2k, G = its coverage, B = id of rank 2k+1, A = its
coverage, ranks sorted by coverage, highest first; empty ranks are (0, 0). Six ranks (three
layers) by default. :func:`encode_ranks` builds them from per-object coverage (float in [0, 1] —
binary masks today, soft alpha later); only covered pixels are visited, so the cost follows the
objects' area, not their number. Overlapping objects keep their own coverage each (extracting a
name gives back exactly that object's matte).

**Header.** ``cryptomatte/<key>/name`` (the type, e.g. ``CryptoObject``), ``/hash``
``MurmurHash3_32``, ``/conversion`` ``uint32_to_float32``, ``/manifest`` (JSON, UTF-8) or
``/manif_file`` (sidecar JSON, relative to the EXR); ``<key>`` is the first 7 hex digits of the
type name's hash (:func:`metadata_key`).

**Decoding** (:func:`read_cryptomattes`, :meth:`CryptomatteLayer.matte`) reads any conforming
file — several cryptomattes per file, ``.R/.G/.B/.A`` or ``.red/.green/.blue/.alpha`` channel
names, inline or sidecar manifests, tiled or scanline, multi-part — through OpenImageIO, and
returns mattes over the display window (our convention) or the data window.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import CorruptMedia, InputError, MediaNotFound, UnsupportedMedia

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

HASH_NAME = "MurmurHash3_32"
CONVERSION = "uint32_to_float32"
DEFAULT_TYPE = "CryptoObject"
DEFAULT_RANKS = 6

_M32 = 0xFFFFFFFF
_C1 = 0xCC9E2D51
_C2 = 0x1B873593

try:  # optional accelerator; the pure-Python code below is the reference
    import mmh3 as _mmh3
except ImportError:  # pragma: no cover - depends on the environment
    _mmh3 = None


# --- hashing --------------------------------------------------------------------------------


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M32


def murmurhash3_32_py(data: bytes, seed: int = 0) -> int:
    """MurmurHash3_x86_32 of ``data`` as an unsigned 32-bit integer (pure Python)."""
    h = seed & _M32
    n = len(data)
    end = n - n % 4
    for (k,) in struct.iter_unpack("<I", data[:end]):
        k = (k * _C1) & _M32
        k = _rotl(k, 15)
        k = (k * _C2) & _M32
        h ^= k
        h = _rotl(h, 13)
        h = (h * 5 + 0xE6546B64) & _M32
    tail = data[end:]
    k = 0
    if len(tail) == 3:
        k ^= tail[2] << 16
    if len(tail) >= 2:
        k ^= tail[1] << 8
    if tail:
        k ^= tail[0]
        k = (k * _C1) & _M32
        k = _rotl(k, 15)
        k = (k * _C2) & _M32
        h ^= k
    h ^= n
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _M32
    h ^= h >> 16
    return h


def murmurhash3_32(data: bytes | str, seed: int = 0) -> int:
    """MurmurHash3_x86_32 (unsigned) of bytes, or of a string's UTF-8 bytes."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if _mmh3 is not None:
        return _mmh3.hash(raw, seed, signed=False)
    return murmurhash3_32_py(raw, seed)


def adjust_hash(h: int) -> int:
    """The spec's fix-up: flip bit 23 when the float32 exponent would be 0 (denormal) or 255 (inf/NaN)."""
    exponent = (h >> 23) & 0xFF
    return h ^ (1 << 23) if exponent in (0, 255) else h


def name_hash(name: str) -> int:
    """The id of ``name`` as stored in manifests: adjusted MurmurHash3 of its UTF-8 bytes."""
    return adjust_hash(murmurhash3_32(name))


def hash_to_float(h: int) -> float:
    """The float32 whose bits are ``h`` (returned as a Python float holding that exact value)."""
    return struct.unpack("<f", struct.pack("<I", h & _M32))[0]


def float_to_hash(value: float) -> int:
    return struct.unpack("<I", struct.pack("<f", value))[0]


def hash_hex(h: int) -> str:
    return f"{h & _M32:08x}"


def metadata_key(type_name: str) -> str:
    """The 7-hex-digit key of a cryptomatte's header attributes (``cryptomatte/<key>/...``)."""
    return f"{murmurhash3_32(type_name):08x}"[:7]


def manifest(names: Iterable[str]) -> dict[str, str]:
    """``{name: 8-hex id}`` in the given order; raises when two names share an id (never seen, but checked)."""
    out: dict[str, str] = {}
    seen: dict[int, str] = {}
    for name in names:
        h = name_hash(name)
        if h in seen and seen[h] != name:
            raise InputError(f"the object names {seen[h]!r} and {name!r} have the same Cryptomatte id",
                             hint="Rename one of them")
        seen[h] = name
        out[name] = hash_hex(h)
    return out


def manifest_json(names: Iterable[str]) -> str:
    """The manifest as the compact UTF-8 JSON text renderers write."""
    return json.dumps(manifest(names), ensure_ascii=False, separators=(",", ":"))


def header_attributes(type_name: str, names: Iterable[str]) -> dict[str, str]:
    """The four ``cryptomatte/<key>/...`` header attributes of a cryptomatte with an inline manifest."""
    prefix = f"cryptomatte/{metadata_key(type_name)}/"
    return {prefix + "name": type_name, prefix + "hash": HASH_NAME, prefix + "conversion": CONVERSION,
            prefix + "manifest": manifest_json(names)}


def layer_names(type_name: str, ranks: int = DEFAULT_RANKS) -> list[str]:
    """Rank layer names: ``CryptoObject00``, ``CryptoObject01``… (two ranks per RGBA layer)."""
    return [f"{type_name}{i:02d}" for i in range((ranks + 1) // 2)]


# --- encoding -------------------------------------------------------------------------------


def encode_ranks(items: Sequence[tuple[int, np.ndarray]], shape: tuple[int, int],
                 ranks: int = DEFAULT_RANKS) -> np.ndarray:
    """Rank channels from per-object coverage.

    ``items`` are ``(hash, coverage)`` with ``hash`` the adjusted uint32 id (:func:`name_hash`)
    and ``coverage`` float ``(H, W)`` in [0, 1] (bool accepted). Returns float32
    ``(H, W, 4 * layers)`` — for each layer R, G, B, A = id, coverage, id, coverage — with
    ranks ordered by coverage (ties: the order of ``items``); pixels with fewer objects than
    ranks have (0, 0) in the rest. When more objects cover a pixel than there are ranks, the
    smallest coverages are dropped (as renderers do). The result is a view of planar
    ``(C, H, W)`` data, so each channel is contiguous (writers take the planes without copying).
    """
    import numpy as np

    h, w = int(shape[0]), int(shape[1])
    n_layers = (ranks + 1) // 2
    out = np.zeros((n_layers * 4, h * w), np.float32)
    pix_parts, id_parts, cov_parts = [], [], []
    for hval, coverage in items:
        cov = np.asarray(coverage)
        if cov.shape != (h, w):
            raise ValueError(f"coverage of id {hash_hex(hval)} is {cov.shape}, expected {(h, w)}")
        flat = cov.reshape(-1)
        idx = np.flatnonzero(flat)
        if idx.size == 0:
            continue
        vals = flat[idx].astype(np.float32) if flat.dtype != bool else np.ones(idx.size, np.float32)
        keep = vals > 0
        if not keep.all():
            idx, vals = idx[keep], vals[keep]
        pix_parts.append(idx)
        cov_parts.append(np.minimum(vals, np.float32(1.0)))
        id_parts.append(np.full(idx.size, np.uint32(hval & _M32).view(np.float32), np.float32))
    if not pix_parts:
        return np.moveaxis(out.reshape(n_layers * 4, h, w), 0, -1)
    pix = np.concatenate(pix_parts)
    ids = np.concatenate(id_parts)
    cov = np.concatenate(cov_parts)
    order = np.lexsort((-cov, pix))  # by pixel, then coverage descending; stable: ties keep item order
    pix, ids, cov = pix[order], ids[order], cov[order]
    starts = np.flatnonzero(np.r_[True, pix[1:] != pix[:-1]])
    counts = np.diff(np.r_[starts, pix.size])
    rank = np.arange(pix.size) - np.repeat(starts, counts)
    keep = rank < ranks
    pix, ids, cov, rank = pix[keep], ids[keep], cov[keep], rank[keep]
    layer, slot = rank // 2, rank % 2
    col = layer * 4 + slot * 2
    out[col, pix] = ids
    out[col + 1, pix] = cov
    return np.moveaxis(out.reshape(n_layers * 4, h, w), 0, -1)


# --- decoding -------------------------------------------------------------------------------

_CHANNEL_SUFFIX = {"r": 0, "red": 0, "g": 1, "green": 1, "b": 2, "blue": 2, "a": 3, "alpha": 3}


@dataclass
class CryptomatteLayer:
    """One cryptomatte of a file: its type name, manifest and rank pixels (data window)."""

    path: str
    name: str
    key: str
    manifest: dict[str, int]  # name -> adjusted uint32 id, as stored
    hash: str = HASH_NAME
    conversion: str = CONVERSION
    ranks: np.ndarray | None = None  # float32 (h, w, 4 * layers), data window
    data_window: tuple[int, int, int, int] = (0, 0, 0, 0)  # x, y, width, height
    display_window: tuple[int, int, int, int] = (0, 0, 0, 0)
    channels: list[str] = field(default_factory=list)

    @property
    def rank_count(self) -> int:
        return 0 if self.ranks is None else self.ranks.shape[2] // 2

    def ids(self, names: str | Iterable[str]) -> list[int]:
        wanted = [names] if isinstance(names, str) else list(names)
        out = []
        for n in wanted:
            if n not in self.manifest:
                raise InputError(f"the cryptomatte {self.name!r} has no entry {n!r}", path=self.path,
                                 hint="Names are case-sensitive and match the manifest exactly")
            out.append(self.manifest[n])
        return out

    def matte(self, names: str | Iterable[str] | None = None, *, ids: Iterable[int] | None = None,
              window: str = "display") -> np.ndarray:
        """Coverage float32 of one or several names (summed), over the ``display`` or ``data`` window."""
        import numpy as np

        wanted = list(ids or []) + (self.ids(names) if names is not None else [])
        assert self.ranks is not None
        bits = self.ranks[:, :, 0::2].view(np.uint32)
        cov = self.ranks[:, :, 1::2]
        hit = np.isin(bits, np.asarray(wanted, np.uint32))
        matte = np.where(hit, cov, np.float32(0)).sum(axis=2, dtype=np.float32)
        if window == "data":
            return matte
        return _to_display(matte, self.data_window, self.display_window)

    def id_coverage(self) -> dict[int, float]:
        """Total coverage of every id present in the pixels (for checks)."""
        import numpy as np

        assert self.ranks is not None
        bits = self.ranks[:, :, 0::2].view(np.uint32).reshape(-1)
        cov = self.ranks[:, :, 1::2].reshape(-1)
        keep = cov != 0
        uniq, inv = np.unique(bits[keep], return_inverse=True)
        sums = np.bincount(inv, weights=cov[keep].astype(np.float64))
        return {int(u): float(s) for u, s in zip(uniq, sums)}


def _to_display(px: np.ndarray, dw: tuple[int, int, int, int], disp: tuple[int, int, int, int]) -> np.ndarray:
    import numpy as np

    out = np.zeros((disp[3], disp[2]), np.float32)
    x0, y0 = dw[0] - disp[0], dw[1] - disp[1]
    sx0, sy0 = max(0, -x0), max(0, -y0)
    dx0, dy0 = max(0, x0), max(0, y0)
    w = min(dw[2] - sx0, disp[2] - dx0)
    h = min(dw[3] - sy0, disp[3] - dy0)
    if w > 0 and h > 0:
        out[dy0:dy0 + h, dx0:dx0 + w] = px[sy0:sy0 + h, sx0:sx0 + w]
    return out


def _parse_manifest(text: str, where: str) -> dict[str, int]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CorruptMedia(f"the Cryptomatte manifest is not valid JSON ({exc})", path=where) from None
    if not isinstance(data, Mapping):
        raise CorruptMedia("the Cryptomatte manifest is not a JSON object", path=where)
    out = {}
    for name, value in data.items():
        try:
            out[str(name)] = int(str(value), 16) & _M32
        except ValueError:
            raise CorruptMedia(f"the Cryptomatte manifest entry {name!r} is not a hex id ({value!r})",
                               path=where) from None
    return out


def read_cryptomattes(path: str | Path, *, pixels: bool = True) -> dict[str, CryptomatteLayer]:
    """Every cryptomatte of an EXR, by type name (``{"CryptoObject": layer}``)."""
    import numpy as np
    import OpenImageIO as oiio

    p = Path(path)
    if not p.is_file():
        raise MediaNotFound("the file does not exist", path=str(p))
    inp = oiio.ImageInput.open(str(p))
    if inp is None:
        raise CorruptMedia(f"OpenImageIO cannot open it ({oiio.geterror()})", path=str(p))
    try:
        found: dict[str, CryptomatteLayer] = {}
        subimage = 0
        specs = []
        while True:
            specs.append((subimage, inp.spec()))
            subimage += 1
            if not inp.seek_subimage(subimage, 0):
                break
        attrs: dict[str, Any] = {}
        for _, spec in specs:
            for a in spec.extra_attribs:
                if a.name.startswith("cryptomatte/"):
                    attrs.setdefault(a.name, a.value)
        keys = sorted({name.split("/")[1] for name in attrs if name.count("/") >= 2})
        for key in keys:
            prefix = f"cryptomatte/{key}/"
            type_name = attrs.get(prefix + "name")
            if not type_name:
                continue
            hash_name = str(attrs.get(prefix + "hash", HASH_NAME))
            conversion = str(attrs.get(prefix + "conversion", CONVERSION))
            if hash_name != HASH_NAME or conversion != CONVERSION:
                raise UnsupportedMedia(f"the cryptomatte {type_name!r} uses hash {hash_name!r} / conversion "
                                       f"{conversion!r}; only {HASH_NAME} / {CONVERSION} exist", path=str(p))
            if prefix + "manifest" in attrs:
                table = _parse_manifest(str(attrs[prefix + "manifest"]), str(p))
            elif prefix + "manif_file" in attrs:
                side = p.parent / str(attrs[prefix + "manif_file"])
                if not side.is_file():
                    raise MediaNotFound(f"the sidecar manifest of cryptomatte {type_name!r} is missing",
                                        path=str(side), hint="Keep the .json next to the EXR")
                table = _parse_manifest(side.read_text(encoding="utf-8"), str(side))
            else:
                table = {}
            found[str(type_name)] = CryptomatteLayer(str(p), str(type_name), key, table, hash_name, conversion)
        if pixels:
            for layer in found.values():
                _load_ranks(inp, specs, layer, np, oiio)
        return found
    finally:
        inp.close()


def _load_ranks(inp: Any, specs: list, layer: CryptomatteLayer, np: Any, oiio: Any) -> None:
    pattern = re.compile(re.escape(layer.name) + r"(\d\d)\.(r|g|b|a|red|green|blue|alpha)$", re.IGNORECASE)
    slots: dict[tuple[int, int], tuple[int, int]] = {}  # (rank layer, component) -> (subimage, channel index)
    window = None
    for sub, spec in specs:
        for ci, cname in enumerate(spec.channelnames):
            m = pattern.match(cname)
            if m:
                slots[(int(m.group(1)), _CHANNEL_SUFFIX[m.group(2).lower()])] = (sub, ci)
                window = window or ((spec.x, spec.y, spec.width, spec.height),
                                    (spec.full_x, spec.full_y, spec.full_width, spec.full_height))
    levels = sorted({lvl for lvl, _ in slots})
    if not levels or window is None:
        raise CorruptMedia(f"the cryptomatte {layer.name!r} has no rank channels ({layer.name}00.R …)", path=layer.path)
    if levels != list(range(len(levels))) or any((lvl, c) not in slots for lvl in levels for c in range(4)):
        raise CorruptMedia(f"the cryptomatte {layer.name!r} has incomplete rank channels", path=layer.path)
    dw, disp = window
    cache: dict[int, Any] = {}
    ranks = np.zeros((dw[3], dw[2], 4 * len(levels)), np.float32)
    for (lvl, comp), (sub, ci) in slots.items():
        if sub not in cache:
            inp.seek_subimage(sub, 0)
            data = inp.read_image(sub, 0, 0, specs[sub][1].nchannels, oiio.FLOAT)
            if data is None:
                raise CorruptMedia(f"the cryptomatte pixels cannot be read ({inp.geterror()})", path=layer.path)
            cache[sub] = np.asarray(data, np.float32).reshape(dw[3], dw[2], -1)
        ranks[:, :, lvl * 4 + comp] = cache[sub][:, :, ci]
        layer.channels.append(specs[sub][1].channelnames[ci])
    layer.ranks = ranks
    layer.data_window = dw
    layer.display_window = disp
