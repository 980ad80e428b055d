"""One shot on one machine: every stage streams frames, so the slowest stage sets the pace.

::

    plate ─► decode ─► colour ─┐                                   (bounded queues, maxsize frames)
                               ├─► matte ─► write alpha ─┐
    track (propagate) ── final frames gate ──┘            ├─► export (frame chunks) ─► files
    depth (its own reader) ── depth frames gate ──────────┘

Stages run in their own threads at the same time: the tracker marks each frame *final* as soon
as both passes over it are merged (``Session.propagate(on_final=...)``); the matte stage waits
for a frame's masks, and the exporter for a chunk's masks, alpha and depth. Pixels only travel
through bounded queues (or are re-read from the plate), masks are RLE in the session, alpha and
depth go to their stores on disk: memory is bounded by the queue sizes and the cache budgets,
not by the shot length.

**Resume.** Before working, each stage checks its outputs: frames with their masks are not
tracked again (and the tracker's completed runs come from the run cache), matte chunks whose
alpha files are complete are skipped, the exporter skips frames whose files carry the same
digest, depth is redone only when its record or files are missing. A run killed at any point
(``kill -9``) loses only the work in flight; the journal (:mod:`engine.batch.journal`) records
what finished.

**Consistency.** Only one thread ever writes the session's results (the tracker); other stages
change its metadata under the shot's lock, and the project file is saved from the tracker's
thread between frames or once the tracker is done, never while a result is being written.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.batch import stages as st
from engine.batch.journal import Journal, ShotLock
from engine.batch.pipeline import FrameGate, LinkedCancel, StageFailed, StageStats
from engine.errors import Cancelled, InputError, RotoError
from engine.util.progress import CancelToken

if TYPE_CHECKING:  # pragma: no cover
    from engine.batch.jobfile import ShotSpec



@dataclass
class StageReport:
    total: int = 0
    done: int = 0
    skipped: int = 0
    seconds: float = 0.0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "done": self.done, "skipped": self.skipped, "seconds": round(self.seconds, 3),
                "note": self.note}


@dataclass
class ShotResult:
    """What happened to one shot."""

    name: str
    status: str = "pending"  # done | failed | cancelled | pending
    frames: tuple[int, int] | None = None
    seconds: float = 0.0
    stages: dict[str, StageReport] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.status == "done"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "frames": list(self.frames) if self.frames else None,
                "seconds": round(self.seconds, 3), "stages": {k: v.to_dict() for k, v in self.stages.items()},
                "timings": self.timings, "error": self.error, "notes": list(self.notes), "attempts": self.attempts}


#: progress(shot name, stage, done, total, frame)
ShotProgress = Callable[[str, str, int, int, "int | None"], None]


def error_dict(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, RotoError):
        return exc.to_dict()
    return {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}",
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:]}


class _Shared:
    """The session shared by the stage threads: one lock for metadata and saves."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.lock = threading.RLock()
        self.tracking = False
        self.dirty = False

    def save(self) -> None:
        """Save now if the tracker is not running, else ask its thread to save between frames."""
        with self.lock:
            if self.tracking:
                self.dirty = True
            else:
                self.session.save()
                self.dirty = False

    def save_from_tracker(self) -> None:
        """Between two tracked frames: save when another stage asked to, and at least every
        AUTOSAVE_SECONDS anyway, so a killed run keeps the frames tracked so far (and the session
        resumes its unfinished run from them)."""
        with self.lock:
            if self.dirty or self.session.save_due():
                self.session.save()
                self.dirty = False


def run_shot(shot: ShotSpec, *, cache: Any = None, frame_cache_bytes: int | None = None,
             stages: list[str] | None = None, frames: tuple[int, int] | None = None, force: bool = False,
             overlap: bool = True, progress: ShotProgress | None = None, cancel: CancelToken | None = None) -> ShotResult:
    """Run (or resume) one shot locally; see the module doc. ``stages`` overrides the shot's (in
    run order); ``frames`` limits the frame-parallel stages (matte, export) to a chunk — such a run
    never writes the project file, so chunk runs of one shot may run at the same time (farm
    tasks). ``overlap=False`` runs the stages one after the other (the benchmarks' baseline)."""
    wanted = [s for s in st_order(stages or shot.stages)]
    result = ShotResult(shot.name)
    started = time.monotonic()
    if frames is not None and any(s in ("track", "depth") for s in wanted):
        raise InputError("--frames runs the frame-parallel stages (matte, export) of a shot; track and depth run "
                         "over the whole shot", hint="Run them first without --frames (--stages track,depth)")
    scope = "main" if frames is None else f"{frames[0]}-{frames[1]}"
    journal = Journal(shot.out, scope)
    lock = ShotLock(shot.out) if frames is None else None
    try:
        if lock is not None:
            lock.__enter__()
        journal.append("shot_start", stages=wanted, frames=list(frames) if frames else None)
        if lock is not None:
            removed = clean_stale_temps(shot)
            if removed:
                result.notes.append(f"removed {removed} partial file(s) left by an interrupted run")
        _run(shot, wanted, result, journal, cache=cache, frame_cache_bytes=frame_cache_bytes, frames=frames,
             force=force, overlap=overlap, progress=progress, cancel=cancel)
        result.status = "done"
        journal.append("shot_done", stages=wanted)
    except Cancelled as exc:
        result.status, result.error = "cancelled", exc.to_dict()
        journal.append("cancelled", error=result.error)
        raise
    except BaseException as exc:
        result.status, result.error = "failed", error_dict(exc)
        try:
            journal.append("failed", error={k: v for k, v in result.error.items() if k != "traceback"})
        except OSError:
            pass
        if not isinstance(exc, Exception):
            raise
    finally:
        result.seconds = time.monotonic() - started
        if lock is not None:
            lock.__exit__(None, None, None)
    return result


def clean_stale_temps(shot: ShotSpec) -> int:
    """Delete the temporary files (``.<name>.<random>.tmp.<ext>``, :func:`engine.util.atomic.temp_path_for`)
    a killed run left in the shot's folders. Only called while holding the shot's lock, so no live
    writer owns them."""
    import contextlib

    from engine.batch.journal import FOLDER

    out = Path(shot.out)
    folders = [out] + [p for p in out.iterdir() if p.is_dir() and p.name != FOLDER] if out.is_dir() else []
    removed = 0
    for folder in folders:
        for p in folder.rglob(".*.tmp*"):
            if p.is_file() and ".tmp" in p.name:
                with contextlib.suppress(OSError):
                    p.unlink()
                    removed += 1
    return removed


def st_order(stages: list[str]) -> list[str]:
    from engine.batch.jobfile import STAGES

    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        raise InputError(f"unknown stage(s) {', '.join(unknown)}", hint=f"Stages: {', '.join(STAGES)}")
    return [s for s in STAGES if s in stages]


def _run(shot: ShotSpec, wanted: list[str], result: ShotResult, journal: Journal, *, cache: Any,
         frame_cache_bytes: int | None, frames: tuple[int, int] | None, force: bool, overlap: bool,
         progress: ShotProgress | None, cancel: CancelToken | None) -> None:
    session = st.open_shot_session(shot, cache=cache, frame_cache_bytes=frame_cache_bytes,
                                   create=frames is None, notes=result.notes)
    shared = _Shared(session)
    lo, hi = session.frame_range
    a, b = (lo, hi) if frames is None else (max(lo, frames[0]), min(hi, frames[1]))
    if a > b:
        raise InputError(f"frames {frames[0]}-{frames[1]} are outside the shot's range {lo}-{hi}")  # type: ignore[index]
    result.frames = (a, b)
    inner = LinkedCancel(cancel)
    timings = StageStats()
    reports = {s: StageReport() for s in wanted}
    result.stages = reports

    def tell(stage: str, done: int, total: int, frame: int | None = None) -> None:
        rep = reports[stage]
        rep.done, rep.total = done, total
        if progress is not None:
            progress(shot.name, stage, done, total, frame)

    # --- what is left to do ------------------------------------------------------------------
    direction = st.shot_direction(shot)
    final = FrameGate(range(lo, hi + 1), "track")
    track_needed = "track" in wanted and (force or not st.track_complete(session))
    if not track_needed:
        if not st.track_complete(session) and any(s in wanted for s in ("matte", "export")):
            raise InputError(f"the shot {shot.name} is not tracked on every frame yet",
                             path=str(shot.session_path), hint="Run the track stage first")
        final.mark_all()
        if "track" in wanted:
            reports["track"].skipped = reports["track"].total = hi - lo + 1
            reports["track"].note = "already tracked"
            tell("track", hi - lo + 1, hi - lo + 1)

    matted = FrameGate(range(a, b + 1), "matte")
    setup = None
    pending: list[st.Chunk] = []
    if "matte" in wanted:
        setup = st.prepare_matte(session, shot.matte)
        with shared.lock:
            st.set_matte_records(session, setup)
        chunks = st.chunks_touching(st.plan_chunks(lo, hi, shot.matte.chunk, shot.matte.warmup), a, b)
        journalled = journal.done_units("matte", setup.token[-40:])
        for c in chunks:
            if not force and not track_needed and st.matte_chunk_valid(session, setup.token, c, setup.objects):
                reports["matte"].skipped += len(c.frames)
                for f in c.frames:
                    matted.mark(f)
            else:
                pending.append(c)
        # chunks a crashed run finished while its tracker was still going: checked once their masks are final
        recheck = {c.unit for c in pending if track_needed and not force and c.unit in journalled}
        reports["matte"].total = sum(len(c.frames) for c in chunks)
        if not pending:
            reports["matte"].note = "already matted"
        tell("matte", reports["matte"].skipped, reports["matte"].total)
    else:
        matted.mark_all()

    depth_gate = FrameGate(range(lo, hi + 1), "depth")
    depth_needed = "depth" in wanted and (force or not st.depth_complete(session, shot.depth))
    if not depth_needed:
        depth_gate.mark_all()
        if "depth" in wanted:
            reports["depth"].skipped = reports["depth"].total = hi - lo + 1
            reports["depth"].note = "already computed"
            tell("depth", hi - lo + 1, hi - lo + 1)
    if frames is None:
        shared.save()  # matte records, before any alpha is written

    # --- stage threads -----------------------------------------------------------------------
    errors: list[tuple[str, BaseException]] = []

    def guard(name: str, gate: FrameGate | None, fn: Callable[[], None]) -> Callable[[], None]:
        def body() -> None:
            t0 = time.monotonic()
            try:
                journal.append("stage_start", stage=name)
                fn()
                if gate is not None:
                    gate.close()
            except BaseException as exc:  # noqa: BLE001 - reported by the coordinator
                errors.append((name, exc))
                if gate is not None:
                    gate.fail(exc)
                inner.cancel(f"the {name} stage stopped")
            finally:
                reports[name].seconds = time.monotonic() - t0
        return body

    def track() -> None:
        backend = session.backend
        warm = None
        if getattr(getattr(backend, "choice", None), "device", None) is not None and \
                str(backend.choice.device).startswith("cuda"):
            from engine.batch.warm import embedding_warmer

            warm = embedding_warmer(backend, session._state(), range(lo, hi + 1))
        session.clip.readahead = max(session.clip.readahead, 4)  # pre-decode ahead of the tracker
        last = [None]

        def on_progress(step) -> None:
            tell("track", step.done, step.total, step.frame)
            if warm is not None and step.frame is not None:
                warm.follow(step.frame, 1 if last[0] is None or step.frame >= last[0] else -1)
            last[0] = step.frame
            shared.save_from_tracker()

        with shared.lock:
            shared.tracking = True
        t0 = time.perf_counter()
        try:
            rep = session.propagate(direction=direction, progress=on_progress, cancel=inner,  # type: ignore[arg-type]
                                    on_final=final.mark)
        finally:
            timings.add_busy("track", time.perf_counter() - t0, 0)
            if warm is not None:
                warm.close()
            with shared.lock:
                shared.tracking = False
                shared.session.save()  # the results so far (a cancelled run keeps them)
                shared.dirty = False
        resumed = f", {rep.frames_resumed} resumed from an interrupted run" if rep.frames_resumed else ""
        reports["track"].note = (f"{rep.frames_written} frames, {rep.runs_from_cache}/{rep.runs} runs from cache"
                                 f"{resumed}, backend {rep.backend}")
        timings.get("track").items += rep.frames_written
        journal.append("done", stage="track", unit="all", digest=st.track_digest(session, direction))

    def matte() -> None:
        assert setup is not None
        clip = st.open_shot_clip(session.data.clip, 0)
        base = reports["matte"].skipped
        count = [0]

        def on_frame(f: int) -> None:
            matted.mark(f)
            count[0] += 1
            tell("matte", base + count[0], reports["matte"].total, f)

        def on_chunk(c: st.Chunk) -> None:
            journal.append("done", stage="matte", unit=c.unit, digest=setup.token[-40:])

        def matte_chunks(todo: list[st.Chunk]) -> None:
            if todo:
                st.run_matte(session, setup, todo, clip=clip, gate=final, on_frame=on_frame, on_chunk=on_chunk,
                             cancel=inner, stats=timings)

        if shot.matte.worker_count > 1 and len(pending) > 1:
            try:
                _matte_in_processes(shot, session, setup, pending, recheck, final, matted, inner, timings,
                                    on_chunk, lambda c: [on_frame(f) for f in c.frames], force, reports["matte"])
            finally:
                clip.close()
            reports["matte"].done = reports["matte"].skipped + count[0]
            return
        try:
            todo: list[st.Chunk] = []
            for c in pending:
                if c.unit in recheck:
                    matte_chunks(todo)
                    todo = []
                    final.wait_all(c.frames, inner)
                    if st.matte_chunk_valid(session, setup.token, c, setup.objects):
                        reports["matte"].skipped += len(c.frames)
                        for f in c.frames:
                            matted.mark(f)
                        continue
                todo.append(c)
            matte_chunks(todo)
        finally:
            clip.close()
        reports["matte"].done = reports["matte"].skipped + count[0]

    def depth() -> None:
        clip = st.open_shot_clip(session.data.clip, (frame_cache_bytes or 0) // 4 or None)
        n = [0]

        def publish(rec: dict) -> None:
            with shared.lock:
                session.data.meta["depth"] = rec
                session.__dict__.pop("_depth_cache", None)

        def on_frame(f: int) -> None:
            depth_gate.mark(f)
            n[0] += 1
            tell("depth", n[0], hi - lo + 1, f)

        t0 = time.perf_counter()
        try:
            rep = st.run_depth_stage(session, shot.depth, clip=clip, streaming=True, on_frame=on_frame,
                                     publish=publish, cancel=inner)
        finally:
            clip.close()
            timings.add_busy("depth", time.perf_counter() - t0, n[0])
        reports["depth"].note = rep.why
        shared.save()
        journal.append("done", stage="depth", unit="all", digest=st.depth_digest(session, shot.depth))

    def export() -> None:
        from dataclasses import asdict

        from engine.cache.keys import make_key

        opts = st.export_options(shot)
        if force:
            opts.force = True
        export_digest = make_key(asdict(opts))[:16]
        total = b - a + 1
        count = [0]
        for (x, y) in st.export_chunks(a, b, shot.export.chunk):
            t_wait = final.wait_all(range(x, y + 1), inner) + matted.wait_all(range(x, y + 1), inner) + \
                depth_gate.wait_all(range(x, y + 1), inner)
            timings.get("export").wait_in += t_wait
            t0 = time.perf_counter()

            def on_frame(f: int) -> None:
                count[0] += 1
                tell("export", count[0], total, f)

            rep = st.run_export(session, shot.out, opts, x, y, cancel=inner, on_frame=on_frame)
            timings.add_busy("export", time.perf_counter() - t0, rep.frames_written)
            reports["export"].skipped += rep.frames_skipped
            for n_ in rep.notes:
                if n_ not in result.notes:
                    result.notes.append(n_)
            journal.append("done", stage="export", unit=f"{x}-{y}", digest=export_digest)

    plan: list[tuple[str, FrameGate | None, Callable[[], None]]] = []
    if track_needed:
        plan.append(("track", final, track))
    if pending:
        plan.append(("matte", matted, matte))
    if depth_needed:
        plan.append(("depth", depth_gate, depth))
    if "export" in wanted:
        reports["export"].total = b - a + 1
        plan.append(("export", None, export))

    threads = [threading.Thread(target=guard(n, g, f), name=f"roto-shot-{n}", daemon=True) for n, g, f in plan]
    try:
        for th in threads:
            th.start()
            if not overlap:
                _join(th, cancel, inner)
        for th in threads:
            _join(th, cancel, inner)
    except BaseException:
        inner.cancel("interrupted")
        for th in threads:
            th.join()
        raise
    finally:
        result.timings = timings.to_dict()
    if errors:
        root = [e for n, e in errors if not isinstance(e, (Cancelled, StageFailed))]
        if cancel is not None and cancel.cancelled and not root:
            raise Cancelled(cancel.reason)
        name, exc = next(((n, e) for n, e in errors if not isinstance(e, (Cancelled, StageFailed))), errors[0])
        if isinstance(exc, RotoError) and not exc.message.startswith(f"{name}:"):
            exc.message = f"{name}: {exc.message}"
        raise exc
    if frames is None:
        shared.save()


def _matte_in_processes(shot: ShotSpec, session: Any, setup: Any, pending: list[st.Chunk], recheck: set[str],
                        final: FrameGate, matted: FrameGate, cancel: LinkedCancel, timings: StageStats,
                        on_chunk: Callable[[st.Chunk], None], on_frames: Callable[[st.Chunk], Any], force: bool,
                        report: StageReport) -> None:
    """Matte chunks in ``shot.matte.worker_count`` processes at once. Chunks are independent (each
    warms up on its own), so the bytes are those of one process; a chunk is handed out as soon as
    the tracker has finished its frames (warm-up included), with those frames' masks."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    workers = shot.matte.worker_count
    data = shot.model_dump()
    inflight: dict[Any, st.Chunk] = {}
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))

    def collect(block: bool) -> None:
        while inflight:
            done, _ = wait(list(inflight), timeout=0.2, return_when=FIRST_COMPLETED)
            for fut in done:
                c = inflight.pop(fut)
                value = fut.result()
                timings.merge(value["timings"])
                for f in c.frames:
                    matted.mark(f)
                on_frames(c)
                on_chunk(c)
            if cancel.cancelled:
                raise Cancelled(cancel.reason)
            if done or not block:
                return

    try:
        for c in pending:
            final.wait_all(range(c.start, c.last + 1), cancel)
            if c.unit in recheck and not force and st.matte_chunk_valid(session, setup.token, c, setup.objects):
                report.skipped += len(c.frames)
                for f in c.frames:
                    matted.mark(f)
                continue
            while len(inflight) >= workers:
                collect(block=True)
            results = [(o, f, r.to_dict()) for f in range(c.start, c.last + 1) for o in setup.objects
                       if (r := session.result(o, f)) is not None]
            inflight[pool.submit(st.matte_chunk_in_process, data, (c.start, c.first, c.last), results)] = c
            collect(block=False)
        while inflight:
            collect(block=True)
        pool.shutdown(wait=True)
    except BaseException:
        for proc in list(getattr(pool, "_processes", {}).values()):  # stop the chunks in flight now
            proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise


def _join(th: threading.Thread, cancel: CancelToken | None, inner: LinkedCancel) -> None:
    while th.is_alive():
        th.join(0.2)
        if cancel is not None and cancel.cancelled:
            inner.cancel(cancel.reason)


def shot_done(shot: ShotSpec) -> bool:
    """Cheap check from the journal: the last whole-shot run of this shot finished."""
    events = [e for e in Journal(shot.out).events() if e.get("event") in ("shot_start", "shot_done")]
    return bool(events) and events[-1].get("event") == "shot_done"


__all__ = ["ShotResult", "StageReport", "run_shot", "shot_done", "Path"]
