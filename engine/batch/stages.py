"""Stage work shared by the local runner (:mod:`engine.batch.shot`) and the Ray workers.

Everything here is a deterministic function of the shot's settings and the chunk it is given, so
a shot computed in one process, resumed after a crash, or split over a cluster writes the same
bytes:

* **session** — :func:`open_shot_session` creates ``<out>/<shot>.roto.json`` from the prompts, or
  reopens it when the prompts digest is unchanged (its id is derived from the shot, so files
  that carry it — EXR headers — do not depend on which run made the session);
* **track** — :func:`plan_track` lists the backend runs (sequential per object, split only at
  locked keyframes); :func:`track_complete` says whether every frame already has its mask;
* **matte** — :func:`plan_chunks` cuts the range into chunks; each chunk is matted from a fresh
  matter state started ``warmup`` frames before it (those frames are matted and thrown away), so a
  chunk's alpha does not depend on the chunks before it. :func:`run_matte` streams chunks through
  decode → colour → matte → write threads; :func:`matte_chunk_valid` checks a chunk's files;
* **depth** — :func:`run_depth_stage` (whole shot: the depth model's chunks are scale-aligned to
  each other in order, DR011);
* **export** — :func:`export_options` / :func:`run_export` (frame chunks; the exporter skips
  frames whose files are valid and carry the same digest).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import InputError, RotoError, SessionError
from engine.util.progress import CancelToken

if TYPE_CHECKING:  # pragma: no cover
    from engine.batch.jobfile import DepthSpec, ExportSpec, MatteSpec, ShotSpec
    from engine.batch.pipeline import FrameGate, StageStats
    from engine.session.session import Session

#: test hook: seconds to sleep per frame written (lets the crash tests kill a run mid-shot)
THROTTLE_ENV = "ROTO_BATCH_THROTTLE_S"


def throttle() -> None:
    s = os.environ.get(THROTTLE_ENV)
    if s:
        time.sleep(float(s))


# --- digests -------------------------------------------------------------------------------------


def file_digest(path: str | os.PathLike[str] | None) -> str | None:
    if not path:
        return None
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return "missing"
    return h.hexdigest()


def prompts_digest(shot: ShotSpec) -> str:
    """What the shot's session is made from: plate settings, backend, prompts (files by content)."""
    from engine.cache.keys import make_key

    prompt_files: list[Any] = []
    if shot.prompts:
        prompt_files.append(file_digest(shot.prompts))
        try:
            from engine.session.prompts_file import load_prompts_file

            spec = load_prompts_file(shot.prompts)
            base = Path(shot.prompts).parent
            for o in spec.objects:
                for m in [p.mask for p in o.prompts if p.mask] + [k.mask for k in o.keyframes]:
                    prompt_files.append(file_digest(m if Path(m).is_absolute() else base / m))
        except RotoError:
            pass  # reported when the prompts are applied
    return make_key("batch-prompts", 1, shot.input, list(shot.frame_range), shot.colourspace, shot.missing,
                    None if shot.fps is None else str(shot.fps), shot.ocio, shot.backend, shot.object, shot.frame,
                    shot.points, shot.box, file_digest(shot.mask), prompt_files, shot.session)


# --- session -------------------------------------------------------------------------------------


def open_shot_clip(ref: Any, cache_bytes: int | None = None) -> Any:
    """Open the plate of a session's :class:`~engine.session.model.ClipRef` with a frame budget."""
    from engine.media.clip import open_clip

    clip = open_clip(ref.path, colourspace=ref.colourspace, missing=ref.missing, in_point=ref.in_point,  # type: ignore[arg-type]
                     out_point=ref.out_point, fps=ref.fps, ocio_config=ref.ocio_config, cache_bytes=cache_bytes)
    if (clip.info.width, clip.info.height) != (ref.width, ref.height):
        clip.close()
        raise SessionError(f"the plate is now {clip.info.width}x{clip.info.height}, the session was made on "
                           f"{ref.width}x{ref.height}", path=ref.path, hint="Re-render the plate or start the shot again")
    if ref.content_id:
        # the plate's identity is the one the session recorded (its run cache is keyed by it): keys that
        # other stages derive from the clip (depth tokens, encoder features) are then the same in every
        # process. What the files hold now is computed only where it is compared (actual_content_id).
        clip.__dict__["_content_id"] = ref.content_id
    return clip


_ACTUAL_ID = "_batch_actual_content_id"
#: meta key: the plate's content id as the batch last saw it, computed by the deterministic scheme
#: of engine.cache.keys.clip_content_id (older sessions hold ids made in a per-process order)
PLATE_META = "batch_plate"
PLATE_SCHEME = 2


def actual_content_id(clip: Any) -> str:
    """What the plate's files hold now (``clip.content_id`` of a fresh clip), even when
    :func:`open_shot_clip` gave the clip the session's recorded identity; computed once per clip."""
    cid = clip.__dict__.get(_ACTUAL_ID)
    if cid is None:
        recorded = clip.__dict__.pop("_content_id", None)
        cid = clip.__dict__[_ACTUAL_ID] = clip.content_id
        if recorded is not None:
            clip.__dict__["_content_id"] = recorded
    return cid


def record_plate(session: Session, content_id: str) -> None:
    session.data.meta[PLATE_META] = {"content_id": content_id, "scheme": PLATE_SCHEME}


def plate_changed(session: Session) -> tuple[bool, str | None]:
    """``(changed, note)``: whether the plate's files hold other content than when the shot was last
    run. A session without a record of the current scheme (written by an older engine) is not
    compared this once: the plate is recorded now and compared from the next run on (``note`` says so)."""
    actual = actual_content_id(session.clip)
    rec = session.data.meta.get(PLATE_META) or {}
    if rec.get("scheme") == PLATE_SCHEME and rec.get("content_id"):
        return rec["content_id"] != actual, None
    record_plate(session, actual)
    if actual == session.data.clip.content_id:
        return False, None
    return False, ("the plate's identity was recorded by an older engine; it is recorded now and a changed plate "
                   "is noticed from the next run on")


def open_shot_session(shot: ShotSpec, *, cache: Any = None, frame_cache_bytes: int | None = None,
                      create: bool = True, notes: list[str] | None = None) -> Session:
    """The shot's session: reopened when its prompts digest and its plate's content are unchanged,
    else (re)created (a session given by the shot's ``session`` key keeps its keyframes and loses its
    propagated masks and depth: they are tracked again). What happened goes to ``notes``.

    ``create=False`` (frame-chunk runs, Ray workers) never writes the project file: it raises
    :class:`SessionError` when the session is missing, was made from other prompts or on another plate.
    """
    from engine.cache.keys import make_key
    from engine.session.session import Session

    path = shot.session_path
    digest = prompts_digest(shot)
    session = None
    plate_before: Any = None
    carried: tuple[str, Any] | None = None  # depth does not depend on the prompts: kept for the same plate
    if path.is_file():
        try:
            session = Session.open(path, cache=cache, autosave=False)
        except RotoError:
            if shot.session or not create:
                raise
            session = None  # a damaged batch session: make it again
        if session is not None and not shot.session and (session.data.meta.get("batch") or {}).get("prompts") != digest:
            if session.data.meta.get("depth"):
                carried = (session.data.clip.content_id, session.data.meta["depth"])
            session = None
        if session is not None:
            plate_before = session.data.meta.get(PLATE_META)
            session._clip = open_shot_clip(session.data.clip, frame_cache_bytes)
            changed, note = plate_changed(session)
            if note and notes is not None:
                notes.append(note)
            if changed:
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
                if not create:
                    raise SessionError(f"the plate changed since the shot was tracked ({when})", path=shot.input,
                                       hint="Run the track stage again first (roto batch JOBFILE --shot NAME)")
                if notes is not None:
                    notes.append(f"the plate changed since the last run ({when}): re-tracking")
                if shot.session:
                    _forget_plate_work(session)
                else:
                    session.clip.close()
                    session = None
    elif shot.session:
        raise SessionError("the session file does not exist", path=str(path), hint="Check the shot's 'session' key")
    if session is None:
        if not create:
            raise SessionError(f"the shot {shot.name} has no session for these prompts yet", path=str(path),
                               hint="Run the track stage first (roto batch JOBFILE --shot NAME --stages track)")
        from engine.media.clip import open_clip

        lo, hi = shot.frame_range
        Path(shot.out).mkdir(parents=True, exist_ok=True)
        clip = open_clip(shot.input, colourspace=shot.colourspace, missing=shot.missing, in_point=lo, out_point=hi,
                         fps=shot.fps, ocio_config=shot.ocio, cache_bytes=frame_cache_bytes)
        session = Session.create(shot.input, clip=clip, path=path, backend=shot.backend, colourspace=shot.colourspace,
                                 missing=shot.missing, fps=None if shot.fps is None else str(shot.fps),
                                 ocio_config=shot.ocio, cache=cache, autosave=False)
        session.data.id = make_key("batch-session", shot.name, digest)[:32]
        record_plate(session, session.data.clip.content_id)
        if carried is not None and carried[0] == session.data.clip.content_id:
            session.data.meta["depth"] = carried[1]
    batch_meta = session.data.meta.get("batch") or {}
    if batch_meta.get("prompts") != digest:
        if shot.mask or shot.points or shot.box or shot.prompts:
            apply_shot_prompts(session, shot)
        session.data.meta["batch"] = {"prompts": digest, "shot": shot.name}
        if create:
            session.save()
    elif create and session.data.meta.get(PLATE_META) != plate_before:
        session.save()  # the plate's identity recorded (older session) or taken over (changed plate)
    return session


def _forget_plate_work(session: Session) -> None:
    """A user's session whose plate changed: it takes the new plate's identity and keeps its
    keyframes; its propagated masks and depth are dropped so they are made again from the new plate."""
    import dataclasses

    actual = actual_content_id(session.clip)
    session.data.clip = dataclasses.replace(session.data.clip, content_id=actual)
    session.clip.__dict__["_content_id"] = actual
    for key in [k for k in session.data.results if k not in session.data.keyframes]:
        del session.data.results[key]
    session.data.meta.pop("depth", None)
    record_plate(session, actual)


def apply_shot_prompts(session: Session, shot: ShotSpec) -> str | None:
    """The shot's prompts into the session (the same code path as ``roto track``)."""
    from engine.cli.cmd_track import apply_prompts

    args = argparse.Namespace(
        mask=shot.mask, prompts=shot.prompts, frame=shot.frame, object=shot.object,
        point=[",".join(f"{v:g}" for v in p) for p in shot.points] if shot.points else None,
        box=",".join(f"{v:g}" for v in shot.box) if shot.box else None)
    return apply_prompts(session, args)


def shot_direction(shot: ShotSpec) -> str:
    if "direction" in shot.model_fields_set or not shot.prompts:
        return shot.direction
    from engine.session.prompts_file import load_prompts_file

    return load_prompts_file(shot.prompts).direction or shot.direction


# --- track ---------------------------------------------------------------------------------------


def plan_track(session: Session, direction: str) -> dict[Any, list[int]]:
    """The backend runs a propagation of the whole range makes (``Run -> objects``), as
    :meth:`Session.propagate` plans them: sequential per object, split only at locked keyframes."""
    from engine.session.schedule import plan_runs

    lo, hi = session.frame_range
    plans: dict[Any, list[int]] = defaultdict(list)
    for o in sorted(session.data.objects):
        for run in plan_runs(session.data.keyframes_of(o), lo, hi, direction):  # type: ignore[arg-type]
            plans[run].append(o)
    return dict(sorted(plans.items(), key=lambda kv: (kv[0].start, kv[0].direction)))


def track_complete(session: Session) -> bool:
    """Every object has a result on every frame of the range."""
    lo, hi = session.frame_range
    objs = list(session.data.objects)
    return bool(objs) and all((o, f) in session.data.results for o in objs for f in range(lo, hi + 1))


def track_digest(session: Session, direction: str) -> str:
    from engine.cache.keys import make_key

    keys = sorted((o, f, v["rle"]) for (o, f), v in session.data.keyframes.items())
    return make_key("batch-track", session.data.clip.content_id, session.data.backend, direction,
                    list(session.frame_range), keys)[:16]


# --- matte ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """Frames ``first..last`` matted from a fresh state started at ``start`` (= first - warm-up)."""

    start: int
    first: int
    last: int

    @property
    def unit(self) -> str:
        return f"{self.first}-{self.last}"

    @property
    def frames(self) -> range:
        return range(self.first, self.last + 1)


def plan_chunks(lo: int, hi: int, size: int, warmup: int = 0) -> list[Chunk]:
    """Chunks of ``size`` frames from ``lo`` (the last may be shorter), each with its warm-up start."""
    size = max(1, int(size))
    return [Chunk(max(lo, a - int(warmup)), a, min(hi, a + size - 1)) for a in range(lo, hi + 1, size)]


def chunks_touching(chunks: list[Chunk], a: int, b: int) -> list[Chunk]:
    return [c for c in chunks if c.last >= a and c.first <= b]


@dataclass
class MatteSetup:
    matter: Any
    why: str
    controls: Any
    token: str
    objects: list[int]


def prepare_matte(session: Session, spec: MatteSpec) -> MatteSetup:
    """The matter, controls and alpha token of the shot's matte stage (chunking is part of the token:
    other chunk settings give other alpha)."""
    from engine.cache.keys import make_key
    from engine.matting.controls import EdgeControls
    from engine.matting.registry import get_matter

    try:
        controls = EdgeControls(**spec.controls)
    except TypeError as exc:
        raise InputError(f"the matte controls are invalid ({exc})") from None
    matter, why = get_matter(spec.backend, **spec.options)
    token = (f"{matter.cache_token}+{make_key(controls.to_dict())[:12]}"
             f"+batch-c{int(spec.chunk)}w{int(spec.warmup)}")
    return MatteSetup(matter, why, controls, token, sorted(session.data.objects))


def set_matte_records(session: Session, setup: MatteSetup) -> None:
    """``meta["matte"]`` for every object, as ``roto matte`` records it (the exporter finds the alpha by it)."""
    from engine.session.alpha_store import set_matte_record

    lo, hi = session.frame_range
    for o in setup.objects:
        set_matte_record(session, o, {"token": setup.token, "backend": setup.matter.info.name,
                                      "controls": setup.controls.to_dict(), "range": [lo, hi],
                                      "licence": setup.matter.info.licence, "batch": True})


_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def png_complete(path: Path) -> bool:
    """A PNG that was written to the end (signature and IEND chunk)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            fh.seek(-12, os.SEEK_END)
            tail = fh.read(12)
    except OSError:
        return False
    return head == b"\x89PNG\r\n\x1a\n" and tail == _PNG_END


def matte_chunk_valid(session: Session, token: str, chunk: Chunk, objects: list[int]) -> bool:
    """Every frame of ``chunk`` has, for every object with a mask, a complete alpha file of ``token``."""
    from engine.session.alpha_store import frame_key, store_for

    store = store_for(session)
    for f in chunk.frames:
        for o in objects:
            res = session.result(o, f)
            if res is not None and not png_complete(store.path(o, f, frame_key(token, res))):
                return False
    return True


#: bytes of float32 RGB frames allowed to wait in each queue between two pixel stages
QUEUE_BYTES = 80 << 20


def queue_frames(shape: tuple[int, int], most: int = 3) -> int:
    """Frames each bounded queue of the matte stream may hold for frames of ``shape`` (h, w): up to
    ``most`` while they fit :data:`QUEUE_BYTES` (3 at 1080p, 1 at 4K and above), at least 1 —
    at 4K four queues of three float frames alone would hold 1.3 GB."""
    h, w = int(shape[0]), int(shape[1])
    return max(1, min(int(most), QUEUE_BYTES // max(1, h * w * 3 * 4)))


def run_matte(session: Session, setup: MatteSetup, chunks: list[Chunk], *, clip: Any = None,
              gate: FrameGate | None = None, on_frame: Callable[[int], None] | None = None,
              on_chunk: Callable[[Chunk], None] | None = None, cancel: CancelToken | None = None,
              stats: StageStats | None = None, maxsize: int | None = None) -> int:
    """Matte ``chunks`` in order through decode → colour → matte → write threads; returns frames written.

    ``maxsize``: frames per queue (default :func:`queue_frames` of the plate's size).

    ``gate`` (the tracker's final frames) is waited on before a frame's masks are read. The
    per-frame work mirrors :func:`engine.matting.pipeline.matte_session` (edge controls with
    flow, the alpha store keyed by the frame's mask), with the state reset at each chunk."""
    import numpy as np

    from engine.matting.base import MatteFrame
    from engine.matting.controls import apply_controls
    from engine.matting.pipeline import frame_masks
    from engine.media.colour import WORKING_SPACE, ColourTransform
    from engine.session.alpha_store import frame_key, store_for

    from engine.batch.pipeline import run_stages

    clip = clip if clip is not None else session.clip
    to_working = ColourTransform(clip.info.colourspace, WORKING_SPACE, config=clip.ocio_config)
    store = store_for(session)
    shape = tuple(session.shape)
    controls, matter, token, objs = setup.controls, setup.matter, setup.token, setup.objects
    items = [(ci, f, f >= c.first) for ci, c in enumerate(chunks) for f in range(c.start, c.last + 1)]
    st: dict[str, Any] = {"ci": None}

    def decode(item):
        ci, f, keep = item
        return ci, f, keep, clip.read_rgb(f)

    def colour(item):
        ci, f, keep, rgb = item
        return ci, f, keep, to_working.apply(rgb)

    def matte(item):
        ci, f, keep, image = item
        if st["ci"] != ci:
            st.update(ci=ci, state=matter.init_state(shape), prev={}, prev_grey=None)
        if gate is not None:
            waited = gate.wait(f, cancel)
            if stats is not None and waited:  # waiting for the tracker is not matting time
                t = stats.get("matte")
                t.busy -= waited
                t.wait_in += waited
        masks, conf = frame_masks(session, objs, f)
        outs = matter.process(st["state"], MatteFrame(f, image, masks, confidence=conf))
        grey = flows = None
        if controls.needs_flow:
            from engine.matting.pipeline import _flow_for_controls

            grey = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
            if st["prev_grey"] is not None:
                flows = _flow_for_controls(st["prev_grey"], grey)
        done: dict[int, Any] = {}
        for o in objs:
            ao = outs.get(o)
            alpha = np.zeros(shape, np.float32) if ao is None else np.asarray(ao.alpha, np.float32)
            if not controls.is_identity():
                kw: dict[str, Any] = {}
                if flows is not None:
                    from engine.ops.flow import warp
                    from engine.ops.temporal import static_confidence

                    f_cp, f_pc, ok = flows
                    if o in st["prev"] and controls.temporal > 0:
                        kw["prev_warped"] = warp(st["prev"][o], f_cp, border="constant")
                        kw["static"] = static_confidence(grey, warp(st["prev_grey"], f_cp), ok)
                    kw["flow"] = -f_cp
                alpha = apply_controls(alpha, controls, **kw)
            done[o] = alpha
        st["prev"], st["prev_grey"] = done, grey
        return ci, f, keep, done

    written = [0]

    def write(item):
        ci, f, keep, done = item
        if keep:
            for o, alpha in done.items():
                res = session.result(o, f)
                if res is not None:
                    store.put(o, f, frame_key(token, res), alpha)
            written[0] += 1
            throttle()
            if on_frame is not None:
                on_frame(f)
        if f == chunks[ci].last and on_chunk is not None:
            on_chunk(chunks[ci])

    run_stages(items, [("decode", decode), ("colour", colour), ("matte", matte), ("write-alpha", write)],
               maxsize=maxsize if maxsize is not None else queue_frames(shape), cancel=cancel, stats=stats)
    return written[0]


def matte_chunk_in_process(shot_data: dict[str, Any], chunk: tuple[int, int, int],
                           results: list[tuple[int, int, dict[str, Any]]]) -> dict[str, Any]:
    """One matte chunk in a worker process (local parallel matting): the session is read from its
    project file and given the chunk's final masks (``(object, frame, FrameResult dict)``, which the
    tracker may not have saved yet); the alpha goes to the session's store. Returns stage timings."""
    from engine.batch.jobfile import ShotSpec
    from engine.batch.pipeline import StageStats
    from engine.cache.store import Cache
    from engine.session.model import FrameResult
    from engine.session.session import Session
    from engine.util.memory import return_freed_memory

    return_freed_memory()  # as in the parent: this process's freed frame buffers leave it
    shot = ShotSpec.model_validate(shot_data)
    session = Session.open(shot.session_path, cache=Cache(64 << 20), autosave=False)
    for o, f, d in results:
        session.data.results[(int(o), int(f))] = FrameResult.from_dict(d)
    clip = open_shot_clip(session.data.clip, 0)
    session._clip = clip
    stats = StageStats()
    try:
        setup = prepare_matte(session, shot.matte)
        n = run_matte(session, setup, [Chunk(*chunk)], clip=clip, stats=stats)
    finally:
        clip.close()
    return {"frames": n, "timings": stats.to_dict(), "pid": os.getpid()}


# --- depth ---------------------------------------------------------------------------------------


def depth_digest(session: Session, spec: DepthSpec) -> str:
    from engine.cache.keys import make_key

    return make_key("batch-depth", session.data.clip.content_id, list(session.frame_range), spec.model_dump())[:16]


def depth_complete(session: Session, spec: DepthSpec) -> bool:
    from engine.depth.store import depth_record, store_for

    rec = depth_record(session)
    if rec is None or rec.get("batch") != depth_digest(session, spec):
        return False
    store = store_for(session)
    lo, hi = session.frame_range
    return all(store.has(f) for f in range(lo, hi + 1))


class _DepthProxy:
    """What :func:`engine.depth.pipeline.run_depth` needs of a session, without touching the real
    one while other stages run: its record lands here and is copied over under the shot's lock."""

    def __init__(self, session: Session) -> None:
        from types import SimpleNamespace

        from engine.depth.store import store_for

        self.shape = session.shape
        self.path = None
        self.data = SimpleNamespace(id=session.data.id, meta={})
        self.__dict__["_depth_store"] = (None, store_for(session))


def run_depth_stage(session: Session, spec: DepthSpec, *, clip: Any = None, streaming: bool = False,
                    on_frame: Callable[[int], None] | None = None, publish: Callable[[dict], None] | None = None,
                    cancel: CancelToken | None = None) -> Any:
    """Depth for the shot, stored with the session. ``streaming``: the session is shared with other
    stage threads — its record goes to ``publish(record)`` (called before the first frame is
    reported) instead of being written into it directly."""
    from engine.depth.pipeline import run_depth

    clip = clip if clip is not None else session.clip
    digest = depth_digest(session, spec)
    target: Any = _DepthProxy(session) if streaming else session
    published = [False]

    def progress(step) -> None:
        if streaming and not published[0]:
            rec = dict(target.data.meta.get("depth") or {})
            rec["batch"] = digest
            if publish is not None:
                publish(rec)
            published[0] = True
        if on_frame is not None and step.frame is not None:
            on_frame(int(step.frame))

    rep = run_depth(clip, None, model=spec.model, weights=spec.weights, device=spec.device,
                    precision=spec.precision, chunk=spec.chunk, temporal=spec.temporal, convention=spec.convention,
                    normals=spec.normals, session=target, progress=progress, cancel=cancel)
    if not streaming:
        session.data.meta["depth"]["batch"] = digest
    elif not published[0] and publish is not None:
        rec = dict(target.data.meta.get("depth") or {})
        rec["batch"] = digest
        publish(rec)
    return rep


# --- export --------------------------------------------------------------------------------------


def export_options(shot: ShotSpec) -> Any:
    from engine.export.deliver import ExportOptions

    e: ExportSpec = shot.export
    return ExportOptions(format=e.format, layers=e.layers, objects=e.objects, compression=e.compression,  # type: ignore[arg-type]
                         multipart=e.multipart, bit_depth=e.bit_depth, transfer=e.transfer, template=e.template,
                         shot=shot.name)


def export_chunks(lo: int, hi: int, size: int) -> list[tuple[int, int]]:
    size = max(1, int(size))
    return [(a, min(hi, a + size - 1)) for a in range(lo, hi + 1, size)]


def run_export(session: Session, out: str | os.PathLike[str], options: Any, first: int, last: int, *,
               cancel: CancelToken | None = None, on_frame: Callable[[int], None] | None = None) -> Any:
    """Export frames ``first..last`` (valid frames are skipped by the exporter's digests)."""
    from engine.export.deliver import export_session

    def progress(step) -> None:
        if step.message != "already written":
            throttle()
        if on_frame is not None and step.frame is not None:
            on_frame(int(step.frame))

    return export_session(session, out, options, frames=(first, last), progress=progress, cancel=cancel)
