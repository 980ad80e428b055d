"""The delivery job: a session → an image sequence per frame, resumable and atomic per frame.

``export_session(session, out_dir, ExportOptions(format="exr"))`` writes, for every frame of
the session range (the plate's own numbers):

* **exr** — one multi-layer file per frame (``{shot}.####.exr``) holding the chosen AOVs
  (:mod:`engine.export.aovs`; default: per-object mattes, combined matte, Cryptomatte, object
  id — plus depth/normals when the session has them; ``rgba`` and ``motion`` on request);
* **dpx** — a 10-bit (or 16/8-bit) sequence per layer (``{layer}/{shot}_####.dpx``): mattes as
  linear RGB, the plate encoded as chosen (``--transfer log|adx|linear|rec709``);
* **png** / **tiff** — a sequence per layer at 8/16 bits (TIFF also float).

The default names' ``####`` takes the plate's padding (at least 4 digits).

**Resumable.** Every file carries a digest of what it was made from (the export settings and
each layer's signature: mask RLE, plate content…). A re-run skips a frame whose files all exist,
parse and carry the same digest, and rewrites the others — an interrupted export finishes where
it stopped, and a session edited since re-exports exactly the frames that changed. ``force``
rewrites everything.

**Atomic per frame.** A frame's files are written under temporary names beside their targets
and renamed only when all of them succeeded, so a failure (full disk, Ctrl-C) leaves complete
files or none — never a partial file. Cancellation is checked between frames.

**Errors** are sentences: an unwritable folder is reported before anything is computed, a full
disk names the file, a layer of the wrong resolution names the layer and frame.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import Cancelled, InputError, MediaError, OutputError, PromptError
from engine.util.progress import CancelToken, Progress, ProgressCallback, check_cancel, report

if TYPE_CHECKING:  # pragma: no cover
    from engine.export.aovs import ExportContext, FrameAOVs, FrameMeta, Layer, Provider
    from engine.session.session import Session

FORMATS = ("exr", "dpx", "png", "tiff")
EXTENSIONS = {"exr": "exr", "dpx": "dpx", "png": "png", "tiff": "tif"}
RECORD_VERSION = 1


@dataclass
class ExportOptions:
    """What to write; every field has a sensible default."""

    format: str = "exr"
    layers: list[str] | None = None  # provider names (aovs.PROVIDERS) or ["all"]; None = the format's default
    objects: list[str | int] | None = None  # names or ids; None = every object
    compression: str | None = None  # exr: zip (default) piz dwaa…; tiff: zip lzw none
    multipart: bool = False  # exr only
    bit_depth: int | None = None  # exr 16|32 (colour layers); dpx 10|16|8; png 8|16; tiff 8|16|32
    transfer: str | None = None  # dpx plate: log (default) adx linear rec709
    template: str | None = None  # file names, see engine.export.naming
    shot: str | None = None  # {shot}; default: the session file's name
    frames: tuple[int | None, int | None] | None = None  # sub-range, plate frame numbers
    force: bool = False  # rewrite frames that are already valid
    window: str = "plate"  # exr data window: "plate" (the plate's, within the display window) or "display"
    crypto_name: str = "CryptoObject"
    flow_preset: str = "medium"


@dataclass
class ExportReport:
    """What an export did."""

    format: str
    out_dir: str
    frames: tuple[int, int]
    layers: list[str]
    patterns: dict[str, str] = field(default_factory=dict)  # file group -> path pattern with ####
    frames_written: int = 0
    frames_skipped: int = 0
    files_written: int = 0
    bytes_written: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    cancelled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- options --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    fmt: str
    ext: str
    bits: int
    compression: str
    transfer: str | None
    multipart: bool


def _plan(opts: ExportOptions) -> _Plan:
    fmt = (opts.format or "exr").strip().lower()
    fmt = {"tif": "tiff", "openexr": "exr"}.get(fmt, fmt)
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {opts.format!r}", hint=f"Choose one of: {', '.join(FORMATS)}")
    if opts.multipart and fmt != "exr":
        raise InputError("--multipart only applies to EXR files")
    if opts.transfer and fmt != "dpx":
        raise InputError("--transfer only applies to DPX files",
                         hint="PNG/TIFF plates are sRGB (8/16-bit) or plate space (float)")
    if fmt == "exr":
        from engine.export import exr

        bits = 16 if opts.bit_depth is None else int(opts.bit_depth)
        if bits not in (16, 32):
            raise InputError(f"EXR colour layers are half (16) or float (32), not {opts.bit_depth}",
                             hint="Data layers are always float")
        return _Plan(fmt, "exr", bits, exr.check_compression(opts.compression), None, bool(opts.multipart))
    if fmt == "dpx":
        from engine.export import dpx

        if opts.compression not in (None, "none"):
            raise InputError("DPX files are not compressed", hint="Leave out --compression")
        return _Plan(fmt, "dpx", dpx.check_bits(opts.bit_depth), "none", dpx.check_transfer(opts.transfer), False)
    from engine.export import images

    return _Plan(fmt, EXTENSIONS[fmt], images.check_bits(fmt, opts.bit_depth),
                 images.check_compression(fmt, opts.compression), None, False)


def _object_ids(session: Session, wanted: list[str | int] | None) -> list[int] | None:
    if not wanted:
        return None
    out: list[int] = []
    for w in wanted:
        text = str(w).strip()
        hit = None
        for o in session.data.objects.values():
            if o.name == text:
                hit = o.id
        if hit is None and text.isdigit() and int(text) in session.data.objects:
            hit = int(text)
        if hit is None:
            known = ", ".join(f"{o.name!r} ({o.id})" for o in session.data.objects.values()) or "none"
            raise PromptError(f"the session has no object {text!r}", hint=f"Objects: {known}")
        if hit not in out:
            out.append(hit)
    return out


def _prepare_out(out: Path) -> None:
    """Create the folder and prove it is writable before any work."""
    import tempfile

    from engine.util.atomic import _explain

    if out.exists() and not out.is_dir():
        raise OutputError("the output path is a file, not a folder", path=str(out), hint="Choose a folder for --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".roto-write-test.", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        err = _explain(exc, out)
        if "not writable" in err.message:
            raise OutputError("the output folder is not writable", path=str(out),
                              hint="Choose a folder you can write to (--out)") from exc
        raise OutputError(f"the output folder cannot be used ({exc.strerror or exc})", path=str(out),
                          hint="Choose another --out folder") from exc


# --- metadata -------------------------------------------------------------------------------


@dataclass
class _PlateFacts:
    fps: Fraction
    timecode: str | None
    tc_first: int
    drop: bool
    colourspace: str
    display: Any
    data: Any
    aspect: float


def _plate_facts(session: Session, need_plate: bool, notes: list[str]) -> _PlateFacts:
    from engine.media.types import Rect

    ref = session.data.clip
    h, w = session.shape
    try:
        info = session.clip.info
    except MediaError as exc:
        if need_plate:
            raise
        fps = Fraction(ref.rate or ref.fps or 24)
        notes.append(f"the plate could not be opened ({exc.message}); frame rate {fps} and timecode "
                     f"{ref.timecode or 'none'} come from the session")
        return _PlateFacts(fps, ref.timecode, ref.first, False, ref.plate_colourspace or ref.colourspace or "",
                           Rect(0, 0, w, h), Rect(0, 0, w, h), 1.0)
    display = info.display_window or Rect(0, 0, w, h)
    data = info.data_window or display
    return _PlateFacts(info.fps, info.timecode, info.first, bool(info.metadata.get("timecode_drop_frame")),
                       info.colourspace, display, data, float(info.pixel_aspect or 1.0))


def _data_window(facts: _PlateFacts, window: str) -> Any:
    from engine.media.types import Rect

    disp = facts.display
    if window == "display":
        return disp
    if window != "plate":
        raise InputError(f"unknown data window choice {window!r}", hint="Use plate or display")
    d = facts.data
    x0, y0 = max(d.x, disp.x), max(d.y, disp.y)
    x1, y1 = min(d.x + d.width, disp.x + disp.width), min(d.y + d.height, disp.y + disp.height)
    if x1 <= x0 or y1 <= y0:
        return disp
    return Rect(x0, y0, x1 - x0, y1 - y0)


def _frame_meta(facts: _PlateFacts, frame: int, session: Session, shot: str, lo: int, hi: int,
                data_window: Any) -> FrameMeta:
    from engine import __version__
    from engine.export.aovs import FrameMeta, timecode_add

    tc = None
    if facts.timecode:
        with contextlib.suppress(InputError):
            tc = timecode_add(facts.timecode, frame - facts.tc_first, facts.fps, facts.drop)
    return FrameMeta(frame=frame, fps=facts.fps, timecode=tc, drop_frame=facts.drop, colourspace=facts.colourspace,
                     display_window=facts.display, data_window=data_window, pixel_aspect=facts.aspect,
                     session_id=session.data.id, version=__version__, shot=shot, first=lo, last=hi)


# --- the job --------------------------------------------------------------------------------


def export_session(session: Session, out_dir: str | os.PathLike[str], options: ExportOptions | None = None, *,
                   progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
                   **overrides: Any) -> ExportReport:
    """Write the session's deliverables to ``out_dir``; see the module doc. ``overrides`` set option fields."""
    from engine.export import aovs
    from engine.export.naming import DEFAULT_EXR_TEMPLATE, DEFAULT_SEQUENCE_TEMPLATE, NameTemplate, host_safe, shot_name

    opts = dataclasses.replace(options or ExportOptions(), **overrides)
    plan = _plan(opts)
    ctx = aovs.ExportContext(session, objects=_object_ids(session, opts.objects), crypto_name=opts.crypto_name,
                             flow_preset=opts.flow_preset)
    providers = aovs.resolve(ctx, opts.layers, plan.fmt)
    _check_support(plan, providers)
    lo, hi = session.frame_range
    if opts.frames:
        a, b = opts.frames
        lo2, hi2 = (lo if a is None else int(a)), (hi if b is None else int(b))
        if not (lo <= lo2 <= hi2 <= hi):
            raise InputError(f"frames {lo2}-{hi2} are not inside the session's range {lo}-{hi}",
                             hint="Frames are the plate's own numbers")
        lo, hi = lo2, hi2
    default = DEFAULT_EXR_TEMPLATE if plan.fmt == "exr" else DEFAULT_SEQUENCE_TEMPLATE
    template = NameTemplate(opts.template or default.replace("####", "#" * session.frame_digits))
    shot = host_safe(opts.shot, "shot") if opts.shot else shot_name(str(session.path) if session.path else None,
                                                                    session.data.clip.path)
    out = Path(out_dir).expanduser()
    _prepare_out(out)

    # which files a frame has: relative path template per file group
    group_object: dict[str, str | None] = {}
    group_provider: dict[str, str] = {}
    for p in providers:
        for g in p.groups(ctx):
            group_object[g] = g
            group_provider[g] = p.name
    files: dict[str, list[str]] = {}  # pattern -> groups
    for g in group_object:
        pat = template.pattern(shot=shot, layer=g, object=group_object[g], ext=plan.ext)
        files.setdefault(pat, []).append(g)
    if plan.fmt != "exr":
        for pat, groups in files.items():
            if len(groups) > 1:
                raise InputError(f"the name template {template.text!r} writes the layers {', '.join(groups)} to "
                                 f"the same file ({pat})",
                                 hint="Put {layer} in the template, e.g. {layer}/{shot}_####." + plan.ext)
    lowered: dict[str, str] = {}
    for pat in files:
        if pat.lower() in lowered:
            raise InputError(f"the files {lowered[pat.lower()]} and {pat} differ only in case",
                             hint="Rename one of the objects")
        lowered[pat.lower()] = pat

    notes: list[str] = []
    facts = _plate_facts(session, need_plate=any(p.name in ("rgba", "motion") for p in providers), notes=notes)
    dwin = _data_window(facts, opts.window)
    settings = {"v": RECORD_VERSION, "fmt": plan.fmt, "bits": plan.bits, "comp": plan.compression,
                "transfer": plan.transfer, "multipart": plan.multipart, "window": opts.window,
                "providers": [p.name for p in providers],
                "objects": [(o.id, o.name, ctx.layer_of[o.id]) for o in ctx.objects],
                "files": sorted(files), "fps": str(facts.fps), "tc": facts.timecode, "dw": str(dwin)}
    rep = ExportReport(format=plan.fmt, out_dir=str(out), frames=(lo, hi), layers=[p.name for p in providers],
                       patterns={g: str(out / pat) for pat, gs in files.items() for g in gs})
    total = hi - lo + 1
    started = time.monotonic()
    try:
        for i, frame in enumerate(range(lo, hi + 1)):
            check_cancel(cancel)
            digest, pre = aovs.frame_signature(ctx, providers, frame, settings)
            targets = {out / template.render(shot=shot, layer=gs[0], object=group_object[gs[0]], frame=frame,
                                             ext=plan.ext): gs for pat, gs in files.items()}
            if not opts.force and all(_valid(plan.fmt, path, digest) for path in targets):
                rep.frames_skipped += 1
                report(progress, Progress(f"export {plan.fmt}", i + 1, total, frame=frame, started=started,
                                          message="already written"))
                continue
            frame_aovs = pre if pre is not None else aovs.collect(ctx, providers, frame)
            meta = _frame_meta(facts, frame, session, shot, lo, hi, dwin)
            written = _write_frame(plan, ctx, frame_aovs, meta, targets, digest, session, notes)
            rep.frames_written += 1
            rep.files_written += len(written)
            rep.bytes_written += sum(written.values())
            report(progress, Progress(f"export {plan.fmt}", i + 1, total, frame=frame, started=started))
    except Cancelled as exc:
        rep.cancelled = True
        exc.report = rep  # type: ignore[attr-defined]
        raise
    finally:
        rep.seconds = time.monotonic() - started
        rep.notes = list(dict.fromkeys(notes))
    return rep


def _check_support(plan: _Plan, providers: list[Provider]) -> None:
    for p in providers:
        if plan.fmt in ("png", "tiff") and plan.bits != 32 and p.kind == "data" and p.name != "id":
            raise InputError(f"the {p.name} layer holds data that {plan.bits}-bit {plan.fmt.upper()} cannot keep",
                             hint="Use --format exr, or --format tiff --bit-depth 32")


def _valid(fmt: str, path: Path, digest: str) -> bool:
    if fmt == "exr":
        from engine.export.exr import content_ok, read_digest

        # the header first (cheap); the content hash only for a file that would be skipped
        return read_digest(path) == digest and content_ok(path)
    if fmt == "dpx":
        from engine.export.dpx import read_record

        rec = read_record(path)
    else:
        from engine.export.images import read_record as read_image_record

        rec = read_image_record(path)
    return bool(rec) and rec.get("digest") == digest


def _record(digest: str, session: Session, frame: int, group: str) -> dict[str, Any]:
    from engine import __version__

    return {"digest": digest, "session": session.data.id[:12], "frame": frame, "layer": group[:16], "v": __version__}


def _write_frame(plan: _Plan, ctx: ExportContext, frame_aovs: FrameAOVs, meta: FrameMeta,
                 targets: dict[Path, list[str]], digest: str, session: Session, notes: list[str]) -> dict[Path, int]:
    """Write every file of one frame under temporary names, then rename them all; returns sizes."""
    from engine.util.atomic import _unlink_quietly, replace, temp_path_for

    by_group: dict[str, list[Layer]] = {}
    for layer in frame_aovs.layers:
        by_group.setdefault(layer.file_group, []).append(layer)
    temps: dict[Path, Path] = {}
    current = next(iter(targets))
    try:
        for target, groups in targets.items():
            current = target
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = temp_path_for(target)
            temps[target] = tmp
            layers = [layer for g in groups for layer in by_group.get(g, [])]
            record = _record(digest, session, meta.frame, groups[0])
            if plan.fmt == "exr":
                _write_exr_file(plan, ctx, tmp, layers, frame_aovs, meta, digest, notes)
            elif plan.fmt == "dpx":
                _write_dpx_file(plan, ctx, tmp, target.name, layers, meta, record)
            else:
                _write_image_file(plan, ctx, tmp, layers, meta, record)
        sizes = {}
        for target, tmp in temps.items():
            current = target
            sizes[target] = tmp.stat().st_size
            replace(tmp, target)  # keeps the mode of a file it replaces
        temps.clear()
        return sizes
    except OSError as exc:
        from engine.util.atomic import _explain

        err = _explain(exc, current)
        raise OutputError(err.message, path=str(current), frame=meta.frame, hint=err.hint) from exc
    except OutputError as exc:  # a writer names its temporary file: name the file the user asked for
        raise OutputError(exc.message, path=str(current), frame=meta.frame, hint=exc.hint) from exc
    finally:
        for tmp in temps.values():
            _unlink_quietly(tmp)


def _write_exr_file(plan: _Plan, ctx: ExportContext, path: Path, layers: list[Layer], frame_aovs: FrameAOVs,
                    meta: FrameMeta, digest: str, notes: list[str]) -> None:
    from engine.export import exr

    colour = any(layer.provider == "rgba" for layer in layers)
    objects = {layer.name: {"object": layer.object_id, "name": layer.label} for layer in layers
               if layer.object_id is not None}
    if any(layer.provider == "crypto" for layer in layers):
        objects[ctx.crypto_name] = {"cryptomatte": True, "objects": [o.name for o in ctx.objects]}
    attrs = exr.header_attributes(meta, colour_layers=colour, digest=digest, layer_objects=objects,
                                  ocio_config=ctx.session.data.clip.ocio_config)
    providers = {layer.provider for layer in layers}
    part_attrs = {k: v for k, v in frame_aovs.attributes.items() if k in providers}
    done = exr.write_exr(path, layers, meta, compression=plan.compression, multipart=plan.multipart,
                         attributes=attrs, part_attributes=part_attrs, colour_float=plan.bits == 32,
                         atomic=False)  # ``path`` is already _write_frame's temporary file
    notes.extend(done.notes)


def _write_dpx_file(plan: _Plan, ctx: ExportContext, path: Path, name: str, layers: list[Layer], meta: FrameMeta,
                    record: dict[str, Any]) -> None:
    import json

    import numpy as np

    from engine.export import dpx

    (layer,) = layers
    if layer.provider == "rgba":
        px, tcode, ccode = dpx.encode_plate(layer.pixels, meta.colourspace, plan.transfer or "log", plan.bits,
                                            ctx.session.data.clip.ocio_config)
        description = f"plate {plan.transfer}"
    else:
        px = np.repeat(layer.pixels[:, :, :1], 3, axis=2)
        tcode, ccode = dpx.MATTE_CODES
        description = f"matte {layer.file_group}"
    info = dpx.DpxInfo(transfer=tcode, colorimetric=ccode, fps=meta.fps, timecode=meta.timecode,
                       drop_frame=meta.drop_frame, frame=meta.frame, sequence_length=meta.last - meta.first + 1,
                       pixel_aspect=meta.pixel_aspect, creator=f"Ultimate Rotoscopy {meta.version}",
                       project=f"{meta.shot} session {meta.session_id}", description=description,
                       user_data=json.dumps(record, separators=(",", ":")).encode("ascii"))
    dpx.write_dpx(path, px, plan.bits, info, file_name=name, atomic=False)  # path: our temp


def _write_image_file(plan: _Plan, ctx: ExportContext, path: Path, layers: list[Layer], meta: FrameMeta,
                      record: dict[str, Any]) -> None:
    from engine.export import images

    (layer,) = layers
    px = layer.pixels
    attributes: dict[str, Any] = {"Software": f"Ultimate Rotoscopy {meta.version}", "DocumentName": meta.shot}
    names: tuple[str, ...] | None = None
    if layer.provider == "rgba":
        names = ("R", "G", "B", "A")[: px.shape[2]]
        if plan.bits != 32:
            import numpy as np

            from engine.media.colour import ColourTransform, canonical_colourspace

            srgb = canonical_colourspace("srgb", ctx.session.data.clip.ocio_config)
            rgb = ColourTransform(meta.colourspace, srgb, config=ctx.session.data.clip.ocio_config).apply(px[:, :, :3])
            px = np.concatenate([rgb, px[:, :, 3:]], axis=2) if px.shape[2] > 3 else rgb
            attributes["oiio:ColorSpace"] = srgb
        else:
            attributes["oiio:ColorSpace"] = meta.colourspace
    elif px.shape[2] == 1:
        names = ("Y",)
    images.write_image(path, px, plan.bits, fmt=plan.fmt, integer=layer.provider == "id",
                       compression=plan.compression, record=record, attributes=attributes, channel_names=names,
                       atomic=False)  # ``path`` is already _write_frame's temporary file
