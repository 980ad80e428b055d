"""The same job file on a Ray cluster (``roto batch JOB --ray auto|ADDRESS``).

Shots run in parallel (one coordinating thread per shot in the driver); within a shot:

* **track** — one Ray task per backend run (sequential per object; a shot with several objects
  or locked keyframes has several runs, which run in parallel). Each task returns the run's
  masks (RLE); the driver seeds its run cache with them and propagates, which merges the runs
  exactly as a single-process run does;
* **matte** — one task per matte chunk (each warmed up on the frames before it, so chunks are
  independent: :func:`engine.batch.stages.plan_chunks`);
* **depth** — one task for the whole shot (depth chunks are scale-aligned in order, DR011),
  in parallel with the matte tasks; the driver stores its record in the session;
* **export** — one task per export chunk, once the shot's alpha and depth are there.

Workers read the plate and write alpha, depth and deliverables straight to the shot's output
folder, which must be on storage every node sees (the same path); only the driver writes the
project file. Outputs are exactly the bytes a local run writes (same chunk plan, same code).
A task whose worker dies is retried (``retries`` per shot, default 2); an error raised by the
engine is not retried and fails the shot, which is reported while the other shots go on.

``address``: ``auto`` joins the cluster this machine belongs to (``ray start``), or starts a
local one with ``workers`` CPUs when there is none; ``local`` always starts a local one; anything
else is a cluster address (``10.0.0.5:6379``, ``ray://head:10001``).
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from engine.batch import stages as st
from engine.batch.journal import Journal, ShotLock
from engine.batch.pipeline import StageStats
from engine.batch.runner import BatchProgress, ProgressTracker
from engine.batch.shot import ShotResult, StageReport, error_dict, st_order
from engine.errors import Cancelled, RotoError
from engine.util.progress import CancelToken

#: test hook: a file path; the first task that finds it missing creates it and kills its own worker
DIE_ONCE_ENV = "ROTO_BATCH_TEST_DIE_ONCE"
WORKER_CACHE_BYTES = 256 << 20
_ENV_PREFIXES = ("ROTO_", "OCIO")


def _die_once() -> None:
    marker = os.environ.get(DIE_ONCE_ENV)
    if marker and not os.path.exists(marker):
        with open(marker, "w") as fh:
            fh.write(str(os.getpid()))
        os._exit(17)  # the worker process dies: Ray retries the task on another worker


def _worker_session(shot_data: dict[str, Any]) -> tuple[Any, Any]:
    from engine.batch.jobfile import ShotSpec
    from engine.cache.store import Cache
    from engine.util.memory import return_freed_memory

    return_freed_memory()  # as in the local run: a worker's freed frame buffers leave the process
    shot = ShotSpec.model_validate(shot_data)
    session = st.open_shot_session(shot, cache=Cache(WORKER_CACHE_BYTES), frame_cache_bytes=WORKER_CACHE_BYTES,
                                   create=False)
    return shot, session


# --- tasks (plain functions; wrapped with ray.remote by the executor) ----------------------------


def task_track(shot_data: dict[str, Any], run: tuple[int, int, str], objs: list[int]) -> dict[str, Any]:
    from engine.session.schedule import Run

    _die_once()
    _shot, session = _worker_session(shot_data)
    t0 = time.perf_counter()
    key, outputs = session.compute_run(Run(*run), objs)
    session.clip.close()
    return {"key": key, "outputs": outputs, "seconds": time.perf_counter() - t0, "pid": os.getpid()}


def task_matte(shot_data: dict[str, Any], chunks: list[tuple[int, int, int]]) -> dict[str, Any]:
    _die_once()
    shot, session = _worker_session(shot_data)
    setup = st.prepare_matte(session, shot.matte)
    stats = StageStats()
    clip = st.open_shot_clip(session.data.clip, 0)
    try:
        n = st.run_matte(session, setup, [st.Chunk(*c) for c in chunks], clip=clip, stats=stats)
    finally:
        clip.close()
        session.clip.close()
    return {"frames": n, "timings": stats.to_dict(), "pid": os.getpid()}


def task_depth(shot_data: dict[str, Any]) -> dict[str, Any]:
    _die_once()
    shot, session = _worker_session(shot_data)
    got: dict[str, Any] = {}
    t0 = time.perf_counter()
    try:
        rep = st.run_depth_stage(session, shot.depth, streaming=True, publish=got.update)
    finally:
        session.clip.close()
    return {"record": got, "why": rep.why, "seconds": time.perf_counter() - t0, "frames": rep.run.frames,
            "pid": os.getpid()}


def task_export(shot_data: dict[str, Any], first: int, last: int) -> dict[str, Any]:
    _die_once()
    shot, session = _worker_session(shot_data)
    t0 = time.perf_counter()
    try:
        rep = st.run_export(session, shot.out, st.export_options(shot), first, last)
    finally:
        session.clip.close()
    return {"written": rep.frames_written, "skipped": rep.frames_skipped, "notes": rep.notes,
            "seconds": time.perf_counter() - t0, "pid": os.getpid()}


# --- the executor ----------------------------------------------------------------------------------


#: seconds to wait for a TCP connection to a cluster's head before saying it cannot be reached
PROBE_TIMEOUT_S = 5.0


def check_reachable(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Raise :class:`InputError` at once when nothing answers at a cluster address (``HOST:PORT`` of
    the head's GCS, default port 6379, or ``ray://HOST:PORT`` of a Ray client server, default 10001):
    ``ray.init`` would otherwise retry for minutes with only Ray's own log lines."""
    import socket

    from engine.errors import InputError

    text = address.strip()
    client = text.startswith("ray://")
    rest = text[len("ray://"):] if client else text
    rest = rest.split("/", 1)[0]
    if rest.startswith("["):  # [IPv6]:port
        host, _, tail = rest[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    elif rest.count(":") == 1:
        host, port_text = rest.split(":")
    else:  # a bare host name or IPv6 address
        host, port_text = rest, ""
    host = host or "127.0.0.1"
    try:
        port = int(port_text) if port_text else (10001 if client else 6379)
    except ValueError:
        raise InputError(f"--ray {address!r} is not a cluster address",
                         hint="Give HOST:PORT of the head node (ray start --head prints it), ray://HOST:PORT, "
                              "'auto' or 'local'") from None
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        what = "a Ray client server (ray://)" if client else "a Ray head node"
        raise InputError(f"no Ray cluster answers at {host}:{port} ({exc.strerror or exc}); {what} was expected there",
                         hint="Start the head with `ray start --head` (it prints the address to use), check the "
                              "address, port and firewall, or run without --ray (or with --ray local)") from None


def connect(address: str, workers: int | None = None) -> tuple[Any, bool]:
    """``ray.init`` for ``address`` (see the module doc); returns (ray, whether we started it). A
    given cluster address is probed first (:func:`check_reachable`): an unreachable one fails fast."""
    from engine.deps import require

    if address not in ("auto", "local", None):
        check_reachable(address)
    ray = require("ray", "running a batch on a Ray cluster (--ray)")
    if ray.is_initialized():
        return ray, False
    env = {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)}
    kw: dict[str, Any] = {"runtime_env": {"env_vars": env}, "log_to_driver": False, "include_dashboard": False,
                          "configure_logging": False}
    if address in ("auto", None):
        try:
            ray.init(address="auto", **{k: v for k, v in kw.items() if k != "include_dashboard"})
        except (ConnectionError, RuntimeError, ValueError):
            ray.init(num_cpus=workers, **kw)
    elif address == "local":
        ray.init(num_cpus=workers, **kw)
    else:
        ray.init(address=address, **{k: v for k, v in kw.items() if k != "include_dashboard"})
    return ray, True


def _cause(exc: BaseException) -> BaseException:
    return getattr(exc, "cause", None) or exc


class _RayShot:
    """Runs one shot's stages as Ray tasks from a driver thread."""

    def __init__(self, ray: Any, shot: Any, wanted: list[str], *, force: bool, budgets: Any,
                 tracker: ProgressTracker, cancel: CancelToken | None) -> None:
        self.ray, self.shot, self.wanted, self.force = ray, shot, wanted, force
        self.budgets, self.tracker, self.cancel = budgets, tracker, cancel
        self.result = ShotResult(shot.name, stages={s: StageReport() for s in wanted})
        self.data = shot.model_dump()
        opts = {"max_retries": int(shot.retries), "num_cpus": 1}
        self.remote = {name: ray.remote(**opts)(fn) for name, fn in
                       (("track", task_track), ("matte", task_matte), ("depth", task_depth), ("export", task_export))}
        self.timings = StageStats()

    def tell(self, stage: str, done: int, total: int) -> None:
        rep = self.result.stages[stage]
        rep.done, rep.total = done, total
        self.tracker.stage(self.shot.name, stage, done, total, None)

    def wait(self, refs: list[Any], on_done: Any) -> None:
        """Wait for ``refs``, calling ``on_done(index, value)`` as each finishes; cancels the rest on error."""
        index = {r: i for i, r in enumerate(refs)}
        left = list(refs)
        try:
            while left:
                if self.cancel is not None and self.cancel.cancelled:
                    raise Cancelled(self.cancel.reason)
                ready, left = self.ray.wait(left, num_returns=1, timeout=0.5)
                for r in ready:
                    try:
                        value = self.ray.get(r)
                    except Exception as exc:  # noqa: BLE001 - the engine's error, unwrapped
                        raise _cause(exc) from None
                    on_done(index[r], value)
        except BaseException:
            for r in left:
                try:
                    self.ray.cancel(r)
                except Exception:  # noqa: BLE001
                    pass
            raise

    def run(self) -> ShotResult:
        shot = self.shot
        started = time.monotonic()
        journal = Journal(shot.out)
        try:
            with ShotLock(shot.out):
                journal.append("shot_start", stages=self.wanted, executor="ray")
                self._stages(journal)
                journal.append("shot_done", stages=self.wanted)
            self.result.status = "done"
        except Cancelled as exc:
            self.result.status, self.result.error = "cancelled", exc.to_dict()
        except Exception as exc:  # noqa: BLE001 - reported, the other shots go on
            self.result.status, self.result.error = "failed", error_dict(exc)
            try:
                journal.append("failed", error={k: v for k, v in self.result.error.items() if k != "traceback"})
            except OSError:
                pass
        self.result.seconds = time.monotonic() - started
        self.result.timings = self.timings.to_dict()
        return self.result

    def _stages(self, journal: Journal) -> None:
        from engine.batch.runner import batch_cache

        shot, ray = self.shot, self.ray
        cache = batch_cache(self.budgets)
        session = st.open_shot_session(shot, cache=cache, frame_cache_bytes=self.budgets.memory["frames"],
                                       notes=self.result.notes)
        lo, hi = session.frame_range
        self.result.frames = (lo, hi)
        reports = self.result.stages
        direction = st.shot_direction(shot)

        # --- track: runs in parallel, merged by the driver's propagation from the seeded cache
        if "track" in self.wanted:
            t0 = time.monotonic()
            if self.force or not st.track_complete(session):
                plans = st.plan_track(session, direction)
                refs = [self.remote["track"].remote(self.data, (r.start, r.end, r.direction), objs)
                        for r, objs in plans.items()]
                total = sum(len(r.frames) for r in plans)
                done = [0]

                def seeded(i: int, value: dict[str, Any]) -> None:
                    session.cache.put("runs", value["key"], value["outputs"], persist=True)
                    done[0] += len(list(plans)[i].frames)
                    self.timings.add_busy("track", value["seconds"], len(list(plans)[i].frames))
                    self.tell("track", done[0], total)

                self.wait(refs, seeded)
                rep = session.propagate(direction=direction, cancel=self.cancel)  # type: ignore[arg-type]
                session.save()
                reports["track"].note = f"{rep.frames_written} frames, {len(refs)} run task(s)"
            else:
                reports["track"].note = "already tracked"
                reports["track"].skipped = hi - lo + 1
            self.tell("track", hi - lo + 1, hi - lo + 1)
            reports["track"].seconds = time.monotonic() - t0
            journal.append("done", stage="track", unit="all", digest=st.track_digest(session, direction))
        elif any(s in self.wanted for s in ("matte", "export")) and not st.track_complete(session):
            from engine.errors import InputError

            raise InputError(f"the shot {shot.name} is not tracked on every frame yet", hint="Add the track stage")

        # --- matte (chunks) and depth (one task) in parallel
        t0 = time.monotonic()
        matte_refs: list[Any] = []
        pending: list[st.Chunk] = []
        setup = None
        if "matte" in self.wanted:
            setup = st.prepare_matte(session, shot.matte)
            st.set_matte_records(session, setup)
            session.save()
            chunks = st.plan_chunks(lo, hi, shot.matte.chunk, shot.matte.warmup)
            pending = [c for c in chunks if self.force or not st.matte_chunk_valid(session, setup.token, c, setup.objects)]
            reports["matte"].total = hi - lo + 1
            reports["matte"].skipped = (hi - lo + 1) - sum(len(c.frames) for c in pending)
            matte_refs = [self.remote["matte"].remote(self.data, [(c.start, c.first, c.last)]) for c in pending]
        depth_ref = None
        if "depth" in self.wanted and (self.force or not st.depth_complete(session, shot.depth)):
            depth_ref = self.remote["depth"].remote(self.data)
        elif "depth" in self.wanted:
            reports["depth"].note, reports["depth"].skipped = "already computed", hi - lo + 1
            self.tell("depth", hi - lo + 1, hi - lo + 1)
        if matte_refs:
            matted = [reports["matte"].skipped]

            def chunk_done(i: int, value: dict[str, Any]) -> None:
                matted[0] += len(pending[i].frames)
                self.timings.merge(value["timings"])
                self.tell("matte", matted[0], hi - lo + 1)
                assert setup is not None
                journal.append("done", stage="matte", unit=pending[i].unit, digest=setup.token[-40:])

            self.wait(matte_refs, chunk_done)
        elif "matte" in self.wanted:
            reports["matte"].note = "already matted"
            self.tell("matte", hi - lo + 1, hi - lo + 1)
        if "matte" in self.wanted:
            reports["matte"].seconds = time.monotonic() - t0
        if depth_ref is not None:
            def depth_done(_i: int, value: dict[str, Any]) -> None:
                session.data.meta["depth"] = value["record"]
                session.__dict__.pop("_depth_cache", None)
                reports["depth"].note = value["why"]
                self.timings.add_busy("depth", value["seconds"], value["frames"])
                self.tell("depth", hi - lo + 1, hi - lo + 1)

            self.wait([depth_ref], depth_done)
            reports["depth"].seconds = time.monotonic() - t0
            session.save()
            journal.append("done", stage="depth", unit="all", digest=st.depth_digest(session, shot.depth))

        # --- export (chunks)
        if "export" in self.wanted:
            t0 = time.monotonic()
            chunks_e = st.export_chunks(lo, hi, shot.export.chunk)
            refs = [self.remote["export"].remote(self.data, a, b) for a, b in chunks_e]
            exported = [0]

            def export_done(i: int, value: dict[str, Any]) -> None:
                a, b = chunks_e[i]
                exported[0] += b - a + 1
                reports["export"].skipped += value["skipped"]
                self.timings.add_busy("export", value["seconds"], value["written"])
                for n in value["notes"]:
                    if n not in self.result.notes:
                        self.result.notes.append(n)
                self.tell("export", exported[0], hi - lo + 1)
                journal.append("done", stage="export", unit=f"{a}-{b}", digest="ray")

            self.wait(refs, export_done)
            reports["export"].seconds = time.monotonic() - t0
        session.save()
        session.clip.close()


def run_batch_ray(shots: list[Any], *, address: str = "auto", workers: int | None = None,
                  stages: list[str] | None = None, force: bool = False, budgets: Any = None,
                  progress: BatchProgress | None = None, cancel: CancelToken | None = None,
                  timing: dict[str, float] | None = None) -> list[ShotResult]:
    """Run ``shots`` on Ray (see the module doc); returns one result per shot, in order. ``timing``
    receives ``connect_s`` (joining or starting the cluster)."""
    from engine.cache.budgets import resolve_budgets

    budgets = budgets if budgets is not None else resolve_budgets()
    plan = {s.name: st_order(list(stages or s.stages)) for s in shots}
    tracker = ProgressTracker(shots, plan, progress)
    t0 = time.monotonic()
    ray, started = connect(address, workers)
    if timing is not None:
        timing["connect_s"] = time.monotonic() - t0
    lock = threading.Lock()
    results: dict[str, ShotResult] = {}

    def one(shot: Any) -> None:
        tracker.shot(shot.name, "running")
        res = _RayShot(ray, shot, plan[shot.name], force=force, budgets=budgets, tracker=tracker, cancel=cancel).run()
        with lock:
            results[shot.name] = res
        tracker.shot(shot.name, res.status, (res.error or {}).get("message", ""))

    try:
        with ThreadPoolExecutor(max_workers=max(1, len(shots)), thread_name_prefix="roto-ray-shot") as pool:
            list(pool.map(one, shots))
    finally:
        if started:
            ray.shutdown()
    out = [results[s.name] for s in shots]
    if cancel is not None and cancel.cancelled:
        raise Cancelled(cancel.reason)
    return out


__all__ = ["connect", "run_batch_ray", "task_track", "task_matte", "task_depth", "task_export", "RotoError"]
