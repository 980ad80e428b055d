"""Layer providers: the AOVs a session has on a frame, for every writer.

A **provider** turns a session into named layers for one frame. Writers never ask the session
anything; they take the :class:`Layer` list that :func:`collect` returns, so a later feature
(soft alpha, depth, normals…) plugs in by registering a provider — or by giving the session the
method a built-in provider looks for — without touching the EXR, DPX or image writers.

Built-in providers, in file order:

============  ==========================================  ======  ====================================
name          layers (EXR channels)                        kind    source
============  ==========================================  ======  ====================================
``rgba``      ``R G B [A]`` (the unnamed layer)            colour  the plate (``Clip.read``), plate space
``objects``   ``<object>.A`` per object                    colour  :meth:`ExportContext.coverage`
``matte``     ``matte.A``                                  colour  the objects' coverage, summed, ≤ 1
``crypto``    ``CryptoObject00..02.R G B A`` + manifest    data    coverage → :mod:`.cryptomatte`
``id``        ``object_id.id`` (object id, 0 = none)       data    :meth:`Session.id_matte`
``depth``     ``depth.Z``                                  data    ``session.depth(frame)`` if it exists
``normals``   ``N.X N.Y N.Z``                              data    ``session.normals(frame)`` if it exists
``motion``    ``forward.u/v``, ``backward.u/v`` (pixels)   data    DIS optical flow between plate frames
============  ==========================================  ======  ====================================

**Coverage seam.** Object mattes come from :meth:`ExportContext.coverage`: the session's soft
alpha when it has one (a method ``alpha(object_id, frame)`` returning float ``(H, W)`` or None),
else the binary mask as 0/1. Cryptomatte, the combined matte and the per-object layers all use
it, so soft alpha flows into every deliverable when it lands.

**Motion vectors** follow Nuke's convention for ``forward``/``backward``: ``forward`` is the
motion of each pixel from frame N to N+1, ``backward`` from N to N−1, in pixels, ``u`` to the
right and ``v`` **up** (Nuke's y axis). :func:`engine.ops.flow.dis_flow` works top-left with y
down, so ``v = −flow_y``. The first frame's ``backward`` and the last frame's ``forward`` (no
neighbour in the session range) are zero.

**Signatures.** Each provider gives a cheap signature of a frame's content (mask RLE, plate
content id…); the exporter stores their digest in every file it writes and skips a frame on a
re-run only when the digest matches — so a changed session re-exports exactly what changed.
A provider without a signature is hashed from its pixels.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from engine.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from engine.media.types import Rect
    from engine.session.session import Session

COLOUR = "colour"
DATA = "data"


@dataclass(frozen=True)
class Layer:
    """One AOV layer of one frame: ``pixels`` float32 ``(H, W, len(channels))`` over the display window.

    ``name`` ``""`` is the unnamed (rgba) layer. ``group`` is the file-name token
    (``{layer}``) and the unit a format writes together (the three Cryptomatte rank layers share
    the group ``CryptoObject``; forward and backward vectors share ``motion``).
    """

    name: str
    channels: tuple[str, ...]
    pixels: np.ndarray
    kind: str = COLOUR
    provider: str = ""
    group: str = ""
    object_id: int | None = None
    label: str = ""  # the object's own name, for people

    @property
    def channel_names(self) -> list[str]:
        return [f"{self.name}.{c}" if self.name else c for c in self.channels]

    @property
    def file_group(self) -> str:
        return self.group or self.name or "rgba"


@dataclass
class FrameAOVs:
    """What one frame holds: its layers and the header attributes that go with them."""

    frame: int
    layers: list[Layer]
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)  # provider -> header attributes


@dataclass(frozen=True)
class FrameMeta:
    """Per-frame header facts every writer records."""

    frame: int
    fps: Fraction
    timecode: str | None
    drop_frame: bool
    colourspace: str
    display_window: Rect
    data_window: Rect
    pixel_aspect: float
    session_id: str
    version: str
    shot: str
    first: int
    last: int


# --- timecode -------------------------------------------------------------------------------


def _parse_tc(text: str) -> tuple[int, int, int, int]:
    m = re.fullmatch(r"\s*(\d{1,2})[:;.](\d{2})[:;.](\d{2})[:;.](\d{2,3})\s*", text)
    if not m:
        raise InputError(f"the timecode {text!r} is not HH:MM:SS:FF")
    return tuple(int(g) for g in m.groups())  # type: ignore[return-value]


def timecode_add(tc: str, frames: int, fps: Fraction, drop_frame: bool = False) -> str:
    """``tc`` moved by ``frames`` at ``fps``, wrapping at 24 h.

    Counts at the nominal rate ``round(fps)``; ``drop_frame`` applies to 29.97 and 59.94 only.
    """
    nominal = max(1, round(float(fps)))
    hh, mm, ss, ff = _parse_tc(tc)
    drop = drop_frame and nominal in (30, 60) and Fraction(fps).denominator == 1001
    day = nominal * 86400
    if not drop:
        n = (((hh * 60 + mm) * 60 + ss) * nominal + ff + frames) % day
        return _tc_text(n, nominal)
    d = nominal // 15  # 2 labels dropped per minute at 29.97, 4 at 59.94
    minutes = hh * 60 + mm
    n = ((hh * 3600 + mm * 60 + ss) * nominal + ff) - d * (minutes - minutes // 10) + frames
    per_10 = nominal * 600 - d * 9
    per_min = nominal * 60 - d
    n %= per_10 * 144
    tens, rest = divmod(n, per_10)
    n += 9 * d * tens + (d * ((rest - d) // per_min) if rest > d else 0)
    return _tc_text(n, nominal)


def _tc_text(n: int, nominal: int) -> str:
    return f"{n // (nominal * 3600) % 24:02d}:{n // (nominal * 60) % 60:02d}:{n // nominal % 60:02d}:{n % nominal:02d}"


def timecode_fields(tc: str) -> tuple[int, int, int, int]:
    """``(hours, minutes, seconds, frames)`` of a ``HH:MM:SS:FF`` string."""
    return _parse_tc(tc)


# --- the context ----------------------------------------------------------------------------


class ExportContext:
    """The session, the chosen objects and their layer names, shared caches, for one export."""

    def __init__(self, session: Session, *, objects: list[int] | None = None, crypto_name: str = "CryptoObject",
                 crypto_ranks: int = 6, flow_preset: str = "medium") -> None:
        from engine.export.naming import layer_names

        self.session = session
        self.shape: tuple[int, int] = tuple(session.shape)  # type: ignore[assignment]
        ids = sorted(session.data.objects) if objects is None else list(objects)
        self.objects = [session.data.objects[o] for o in ids]
        self.layer_of: dict[int, str] = layer_names([(o.id, o.name) for o in self.objects],
                                                    reserved=[crypto_name])
        self.crypto_name = crypto_name
        self.crypto_ranks = crypto_ranks
        self.flow_preset = flow_preset
        self.range: tuple[int, int] = session.frame_range
        self._coverage: dict[tuple[int, int], Any] = {}
        self._grey: dict[int, Any] = {}

    # coverage (the seam for soft alpha)
    def coverage(self, obj: int, frame: int) -> np.ndarray | None:
        """Object ``obj``'s coverage on ``frame``: float32 ``(H, W)`` in [0, 1], or None (no result)."""
        import numpy as np

        key = (obj, frame)
        if key in self._coverage:
            return self._coverage[key]
        if len(self._coverage) > 4 * max(1, len(self.objects)):
            self._coverage.clear()
        alpha = getattr(self.session, "alpha", None)
        value = None
        if callable(alpha):
            a = alpha(obj, frame)
            if a is not None:
                value = np.clip(np.asarray(a, np.float32), 0.0, 1.0)
        if value is None:
            m = self.session.mask(obj, frame)
            value = None if m is None else m.astype(np.float32)
        self._coverage[key] = value
        return value

    def coverage_signature(self, obj: int, frame: int) -> Any:
        """What the coverage depends on: the stored result (or the session's own alpha signature)."""
        sig = getattr(self.session, "alpha_signature", None)
        if callable(getattr(self.session, "alpha", None)):
            return None if not callable(sig) else ("alpha", sig(obj, frame))
        res = self.session.result(obj, frame)
        if res is None:
            return None
        return (res.mask.get("rle") if isinstance(res.mask, dict) else res.mask, res.occluded)

    def grey(self, frame: int) -> np.ndarray:
        """The plate as uint8 grey-able RGB in the working space, for optical flow (small cache)."""
        hit = self._grey.get(frame)
        if hit is None:
            if len(self._grey) >= 3:
                self._grey.pop(next(iter(self._grey)))
            hit = self._grey[frame] = self.session.clip.read_uint8(frame)
        return hit


# --- providers ------------------------------------------------------------------------------


class Provider:
    """Base class; subclasses set ``name``, ``kind``, ``description`` and implement :meth:`layers`."""

    name = ""
    kind = COLOUR
    description = ""
    #: formats that can hold this provider's layers
    formats: tuple[str, ...] = ("exr", "dpx", "png", "tiff")
    #: part of the default layer set when available
    default = True

    def available(self, ctx: ExportContext) -> bool:
        return True

    def groups(self, ctx: ExportContext) -> list[str]:
        """File groups (``{layer}`` values) this provider writes."""
        return [self.name]

    def layers(self, ctx: ExportContext, frame: int) -> list[Layer]:
        raise NotImplementedError

    def signature(self, ctx: ExportContext, frame: int) -> Any:
        """A cheap value that changes whenever the frame's layers change; None → hash the pixels."""
        return None

    def attributes(self, ctx: ExportContext) -> dict[str, Any]:
        """Header attributes for files holding this provider's layers (constant over the export)."""
        return {}


class PlateProvider(Provider):
    name = "rgba"
    kind = COLOUR
    description = "the plate, in its own colourspace (R G B, and A when the plate has one)"
    default = False

    def layers(self, ctx: ExportContext, frame: int) -> list[Layer]:
        import numpy as np

        px = ctx.session.clip.read(frame)
        c = px.shape[2]
        if c == 1:
            px, names = np.repeat(px, 3, axis=2), ("R", "G", "B")
        elif c == 2:
            px = np.concatenate([np.repeat(px[:, :, :1], 3, axis=2), px[:, :, 1:2]], axis=2)
            names = ("R", "G", "B", "A")
        elif c == 3:
            names = ("R", "G", "B")
        else:
            px, names = px[:, :, :4], ("R", "G", "B", "A")
        return [Layer("", names, px, COLOUR, self.name, "rgba")]

    def signature(self, ctx: ExportContext, frame: int) -> Any:
        clip = ctx.session.clip
        return (clip.content_id, clip.source_frame(frame), clip.info.colourspace)


class ObjectsProvider(Provider):
    name = "objects"
    kind = COLOUR
    description = "one matte per object: <object>.A"

    def available(self, ctx: ExportContext) -> bool:
        return bool(ctx.objects)

    def groups(self, ctx: ExportContext) -> list[str]:
        return [ctx.layer_of[o.id] for o in ctx.objects]

    def layers(self, ctx: ExportContext, frame: int) -> list[Layer]:
        import numpy as np

        out = []
        for o in ctx.objects:
            cov = ctx.coverage(o.id, frame)
            px = np.zeros(ctx.shape, np.float32) if cov is None else cov
            name = ctx.layer_of[o.id]
            out.append(Layer(name, ("A",), px[:, :, None], COLOUR, self.name, name, o.id, o.name))
        return out

    def signature(self, ctx: ExportContext, frame: int) -> Any:
        sigs = [ctx.coverage_signature(o.id, frame) for o in ctx.objects]
        if callable(getattr(ctx.session, "alpha", None)) and any(s is None for s in sigs):
            return None
        return [(o.id, o.name, ctx.layer_of[o.id], s) for o, s in zip(ctx.objects, sigs)]


class MatteProvider(ObjectsProvider):
    name = "matte"
    description = "the combined matte of the chosen objects: matte.A"

    def groups(self, ctx: ExportContext) -> list[str]:
        return ["matte"]

    def layers(self, ctx: ExportContext, frame: int) -> list[Layer]:
        import numpy as np

        total = np.zeros(ctx.shape, np.float32)
        for o in ctx.objects:
            cov = ctx.coverage(o.id, frame)
            if cov is not None:
                total += cov
        np.minimum(total, 1.0, out=total)
        return [Layer("matte", ("A",), total[:, :, None], COLOUR, self.name, "matte")]


class CryptomatteProvider(ObjectsProvider):
    name = "crypto"
    kind = DATA
    description = "Cryptomatte of the objects: CryptoObject00..02.RGBA, 6 ranks, manifest in the header"
    formats = ("exr",)

    def groups(self, ctx: ExportContext) -> list[str]:
        return [ctx.crypto_name]

    def layers(self, ctx: ExportContext, frame: int) -> list[Layer]:
        from engine.export import cryptomatte as cm

        items = []
        for o in ctx.objects:
            cov = ctx.coverage(o.id, frame)
            if cov is not None:
                items.append((cm.name_hash(o.name), cov))
        ranks = cm.encode_ranks(items, ctx.shape, ctx.crypto_ranks)
        return [Layer(name, ("R", "G", "B", "A"), ranks[:, :, 4 * i:4 * i + 4], DATA, self.name, ctx.crypto_name)
                for i, name in enumerate(cm.layer_names(ctx.crypto_name, ctx.crypto_ranks))]

    def signature(self, ctx: ExportContext, frame: int) -> Any:
        base = super().signature(ctx, frame)
        return None if base is None else (ctx.crypto_name, ctx.crypto_ranks, base)

    def attributes(self, ctx: ExportContext) -> dict[str, Any]:
        from engine.export import cryptomatte as cm

        return cm.header_attributes(ctx.crypto_name, [o.name for o in ctx.objects])


class ObjectIdProvider(ObjectsProvider):
    name = "id"
    kind = DATA
    description = "object id per pixel (overlaps resolved by confidence): object_id.id, 0 = none"
    formats = ("exr", "png", "tiff")

    def groups(self, ctx: ExportContext) -> list[str]:
        return ["object_id"]

    def layers(self, ctx: ExportContext, frame: int) -> list[Layer]:
        import numpy as np

        from engine.ops.idmatte import id_matte

        items = []
        for o in ctx.objects:
            m = ctx.session.mask(o.id, frame)
            res = ctx.session.result(o.id, frame)
            if m is not None and res is not None:
                items.append((o.id, m, res.confidence))
        ids = id_matte(items, ctx.shape).astype(np.float32)
        return [Layer("object_id", ("id",), ids[:, :, None], DATA, self.name, "object_id")]

    def signature(self, ctx: ExportContext, frame: int) -> Any:
        out = []
        for o in ctx.objects:
            res = ctx.session.result(o.id, frame)
            out.append(None if res is None else (o.id, res.mask.get("rle"), res.confidence))
        return out


class SessionMethodProvider(Provider):
    """A layer the session itself computes, through a method ``session.<method>(frame)``."""

    kind = DATA
    formats = ("exr", "tiff")

    def __init__(self, name: str, method: str, layer: str, channels: tuple[str, ...], description: str) -> None:
        self.name, self.method, self.layer, self.channels, self.description = name, method, layer, channels, description

    def available(self, ctx: ExportContext) -> bool:
        return callable(getattr(ctx.session, self.method, None))

    def groups(self, ctx: ExportContext) -> list[str]:
        return [self.layer]

    def layers(self, ctx: ExportContext, frame: int) -> list[Layer]:
        import numpy as np

        value = getattr(ctx.session, self.method)(frame)
        if value is None:
            px = np.zeros((*ctx.shape, len(self.channels)), np.float32)
        else:
            px = np.asarray(value, np.float32)
            if px.ndim == 2:
                px = px[:, :, None]
        return [Layer(self.layer, self.channels, px, DATA, self.name, self.layer)]

    def signature(self, ctx: ExportContext, frame: int) -> Any:
        sig = getattr(ctx.session, f"{self.method}_signature", None)
        return ("session", self.method, sig(frame)) if callable(sig) else None


class MotionProvider(Provider):
    name = "motion"
    kind = DATA
    description = "optical-flow motion vectors in pixels, Nuke convention: forward.u/v (N→N+1), backward.u/v (N→N−1)"
    formats = ("exr",)
    default = False

    def layers(self, ctx: ExportContext, frame: int) -> list[Layer]:
        import numpy as np

        from engine.ops.flow import dis_flow

        lo, hi = ctx.range
        out = []
        for name, other in (("forward", frame + 1), ("backward", frame - 1)):
            if lo <= other <= hi:
                flow = dis_flow(ctx.grey(frame), ctx.grey(other), preset=ctx.flow_preset)
                uv = np.empty_like(flow)
                uv[:, :, 0] = flow[:, :, 0]
                uv[:, :, 1] = -flow[:, :, 1]  # Nuke: v points up
            else:
                uv = np.zeros((*ctx.shape, 2), np.float32)
            out.append(Layer(name, ("u", "v"), uv, DATA, self.name, "motion"))
        return out

    def signature(self, ctx: ExportContext, frame: int) -> Any:
        clip = ctx.session.clip
        lo, hi = ctx.range
        frames = [f for f in (frame - 1, frame, frame + 1) if lo <= f <= hi]
        return (clip.content_id, [clip.source_frame(f) for f in frames], ctx.flow_preset, "dis", "v-up")


PROVIDERS: dict[str, Provider] = {}


def register_provider(provider: Provider, *, replace: bool = False) -> None:
    """Add a provider (later features: soft alpha, depth, normals…). Order of registration is file order."""
    if provider.name in PROVIDERS and not replace:
        raise ValueError(f"a layer provider named {provider.name!r} exists already")
    PROVIDERS[provider.name] = provider


for _p in (PlateProvider(), ObjectsProvider(), MatteProvider(), CryptomatteProvider(), ObjectIdProvider(),
           SessionMethodProvider("depth", "depth", "depth", ("Z",), "depth: depth.Z (from session.depth(frame))"),
           SessionMethodProvider("normals", "normals", "N", ("X", "Y", "Z"),
                                 "surface normals: N.X N.Y N.Z (from session.normals(frame))"),
           MotionProvider()):
    register_provider(_p)


def resolve(ctx: ExportContext, names: list[str] | None, fmt: str) -> list[Provider]:
    """The providers for ``names`` (None: the default set for the format; ``all``: every available one)."""
    if names is None or names == ["default"]:
        chosen = [p for p in PROVIDERS.values() if p.default and fmt in p.formats and p.available(ctx)]
        if fmt != "exr":
            chosen = [p for p in chosen if p.name in ("objects", "matte")]
        if not chosen:
            raise InputError("the session has nothing to export: no objects yet",
                             hint="Track an object first (roto track … --session FILE), or ask for --layers rgba")
        return chosen
    wanted: list[str] = []
    for n in names:
        n = n.strip().lower()
        if not n:
            continue
        aliases = {"plate": "rgba", "cryptomatte": "crypto", "objectid": "id", "object_id": "id", "vectors": "motion",
                   "mattes": "objects", "n": "normals", "z": "depth"}
        n = aliases.get(n, n)
        if n == "all":
            wanted += [p.name for p in PROVIDERS.values() if fmt in p.formats and p.available(ctx)]
            continue
        if n not in PROVIDERS:
            raise InputError(f"there is no layer {n!r}", hint=f"Choose from: {', '.join(PROVIDERS)} or all")
        p = PROVIDERS[n]
        if fmt not in p.formats:
            raise InputError(f"the {n} layer cannot be written to {fmt.upper()}",
                             hint=f"It needs {' or '.join(f.upper() for f in p.formats)}")
        if not p.available(ctx):
            what = "no objects" if isinstance(p, ObjectsProvider) else f"no {n} data"
            raise InputError(f"the session has {what}, so there is no {n} layer to export",
                             hint="Leave it out of --layers")
        wanted.append(n)
    seen: list[str] = []
    for n in wanted:
        if n not in seen:
            seen.append(n)
    if not seen:
        raise InputError("--layers names no layer", hint=f"Choose from: {', '.join(PROVIDERS)} or all")
    return [PROVIDERS[n] for n in PROVIDERS if n in seen]


def collect(ctx: ExportContext, providers: list[Provider], frame: int) -> FrameAOVs:
    """Every chosen provider's layers for ``frame``, checked: float32, the plate's size, channel count."""
    import numpy as np

    h, w = ctx.shape
    layers: list[Layer] = []
    attrs: dict[str, dict[str, Any]] = {}
    for p in providers:
        for layer in p.layers(ctx, frame):
            px = np.asarray(layer.pixels)
            if px.ndim == 2:
                px = px[:, :, None]
            if px.shape[:2] != (h, w):
                raise InputError(
                    f"the {layer.name or 'rgba'} layer is {px.shape[1]}x{px.shape[0]}, the plate is {w}x{h}",
                    frame=frame, hint="Every layer of a frame must have the plate's resolution; nothing was written "
                                      "for this frame")
            if px.shape[2] != len(layer.channels):
                raise InputError(f"the {layer.name or 'rgba'} layer has {px.shape[2]} channels for "
                                 f"{len(layer.channels)} names", frame=frame)
            if px.dtype != np.float32:
                px = px.astype(np.float32)
            layers.append(Layer(layer.name, layer.channels, px, layer.kind, layer.provider or p.name,
                                layer.group, layer.object_id, layer.label))
        a = p.attributes(ctx)
        if a:
            attrs[p.name] = a
    names = [n for layer in layers for n in layer.channel_names]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"two layers write the same channels ({', '.join(dup)})", frame=frame)
    return FrameAOVs(frame, layers, attrs)


def frame_signature(ctx: ExportContext, providers: list[Provider], frame: int, settings: Any,
                    compute: Callable[[], FrameAOVs] | None = None) -> tuple[str, FrameAOVs | None]:
    """Digest of everything a frame's files depend on; computes the layers only when a provider has no signature.

    Returns ``(hex digest, FrameAOVs or None)`` — the AOVs when they had to be computed, so the
    caller does not compute them twice.
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    aovs = None
    for p in providers:
        sig = p.signature(ctx, frame)
        if sig is None:
            if aovs is None:
                aovs = compute() if compute else collect(ctx, providers, frame)
            for layer in aovs.layers:
                if layer.provider == p.name:
                    h.update(layer.name.encode())
                    h.update(layer.pixels.tobytes())
        else:
            h.update(p.name.encode())
            h.update(json.dumps(sig, sort_keys=True, default=str).encode())
    return h.hexdigest(), aovs
