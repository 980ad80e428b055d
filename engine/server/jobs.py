"""Background jobs: a registry of job kinds and a runner with progress, cancel, one GPU lock and persistence.

**Job kinds** are registered by name (:func:`register_job_kind`). A kind has a pydantic
``params`` model and a ``run(ctx, params) -> dict`` function; both may instead come lazily from
a ``module`` exposing ``PARAMS`` and ``run`` (and optionally ``GPU = False``, ``TITLE``), which
is how engine features plug in without touching the server or the hosts (``depth`` and ``shapes``
do, from :mod:`engine.depth.job` and :mod:`engine.shapes.job`)::

    # engine/depth/job.py  (the server finds it by name)
    PARAMS = DepthParams            # a pydantic model
    def run(ctx, params):           # ctx.session, ctx.progress, ctx.cancel, ctx.objects(...)
        ...
        return {"frames": n}

An engine without that module answers
``{"code": "feature_unavailable", "text": "Depth is not available in this engine version…"}``.
Third-party packages can also register kinds from the entry-point group
``ultimate_rotoscopy.server_jobs`` (each entry point is a module that calls
:func:`register_job_kind` when imported).

**Runner.** Jobs run in worker threads, each holding its session's lock (and the GPU lock when
the kind needs it) for its whole run. A job is ``queued`` until a worker takes it, ``waiting``
while another job holds its session (or the GPU) — its progress ``message`` names that job, and a
cancel ends it at once — and ``running`` once it holds what it needs. Progress updates a sequence number clients poll (long
poll) or stream (SSE). Cancelling sets the job's :class:`~engine.util.progress.CancelToken`;
the engine stops between frames and keeps what it finished. Every state change is written to
SQLite: a server stopped gracefully puts its running jobs back in the queue, and a restarted
server re-runs queued jobs and resumes jobs that were running (the track/export/matte/QC kinds
are idempotent: finished work is served from the cache or skipped — a track goes on from the
frames its interrupted run finished, an export skips the frames already written and valid) up to
``max_attempts``; a job it cannot resume is reported ``interrupted``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.errors import Cancelled, RotoError
from engine.server.errors import FeatureUnavailable, InternalError, Interrupted, InvalidRequest, NotFound
from engine.util.progress import CancelToken, Progress

if TYPE_CHECKING:  # pragma: no cover
    from engine.server.locks import OwnedLock
    from engine.server.roots import RootsPolicy
    from engine.server.sessions import SessionHandle, SessionManager
    from engine.server.store import Store
    from engine.session.session import Session

log = logging.getLogger("roto.server")

TERMINAL = ("succeeded", "failed", "cancelled", "interrupted")
ACTIVE = ("queued", "waiting", "running")
ENTRY_POINT_GROUP = "ultimate_rotoscopy.server_jobs"
STOP_REASON = "the server is stopping; the job resumes when it starts again"


# --- kinds -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobKind:
    """A kind of background job. Give ``params`` + ``run``, or ``module`` (see the module doc)."""

    name: str
    title: str
    params: Any = None  # pydantic model class
    run: Callable[..., dict[str, Any]] | None = None
    module: str | None = None  # lazily imported module with PARAMS and run
    requires: tuple[str, ...] = ()  # modules that must exist for the kind to be offered
    gpu: bool = True  # hold the GPU lock while running
    resumable: bool = True  # safe to run again after a server stop
    paths: Callable[[Any], list[tuple[str, str]]] | None = None  # (path, what) pairs the roots policy checks
    description: str = ""

    def unavailable(self) -> str | None:
        """None when the kind can run in this engine, else a sentence saying why not."""
        for mod in (*self.requires, *((self.module,) if self.module else ())):
            try:
                found = importlib.util.find_spec(mod) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                return (f"{self.title} is not available in this engine version (the module {mod} is not part of it); "
                        f"update the engine on the server machine, the host needs no change")
        return None

    def resolve(self) -> tuple[Any, Callable[..., dict[str, Any]], bool, Callable[[Any], list[tuple[str, str]]]]:
        """``(params model, run, gpu, paths)``, importing ``module`` if needed; :class:`FeatureUnavailable`
        if it cannot. ``paths(params)`` lists the ``(path, what)`` pairs the roots policy must pass:
        the kind's own, else the module's ``PATHS``, else every parameter named ``*_dir``, ``*path``, ``*_file``."""
        reason = self.unavailable()
        if reason is not None:
            raise FeatureUnavailable(reason)
        if self.module is None:
            return self.params, self.run, self.gpu, self.paths or default_paths  # type: ignore[return-value]
        try:
            mod = importlib.import_module(self.module)
        except ImportError as exc:
            raise FeatureUnavailable(f"{self.title} cannot run here: {exc}",
                                     hint="Install the engine extra this feature needs") from exc
        params = getattr(mod, "PARAMS", None) or self.params
        run = getattr(mod, "run", None)
        if params is None or run is None:
            raise FeatureUnavailable(f"{self.title} is not available in this engine version ({self.module} has no "
                                     f"PARAMS/run for the server yet)")
        return params, run, bool(getattr(mod, "GPU", self.gpu)), self.paths or getattr(mod, "PATHS", None) or default_paths


def default_paths(params: Any) -> list[tuple[str, str]]:
    """Every string parameter whose name says it is a path (``out_dir``, ``mask_path``, ``lut_file``…)."""
    data = params.model_dump() if hasattr(params, "model_dump") else dict(params)
    return [(v, k.replace("_", " ")) for k, v in data.items()
            if isinstance(v, str) and (k.endswith("_dir") or k.endswith("path") or k.endswith("_file"))]


_KINDS: dict[str, JobKind] = {}
_loaded = False


def register_job_kind(kind: JobKind) -> None:
    """Add (or replace) a job kind."""
    _KINDS[kind.name] = kind


def job_kinds() -> dict[str, JobKind]:
    global _loaded
    if not _loaded:
        _loaded = True
        import engine.server.kinds  # noqa: F401  (registers the built-in kinds)

        try:
            from importlib.metadata import entry_points

            for ep in entry_points(group=ENTRY_POINT_GROUP):
                try:
                    ep.load()
                except Exception:  # a broken plugin must not break the server
                    log.exception("job kind plugin %s failed to load", ep.name)
        except Exception:
            pass
    return dict(_KINDS)


def get_kind(name: str) -> JobKind:
    kinds = job_kinds()
    if name not in kinds:
        raise NotFound(f"there is no job kind {name!r}", hint="Known kinds: " + ", ".join(sorted(kinds)))
    return kinds[name]


def describe_kinds() -> list[dict[str, Any]]:
    out = []
    for k in sorted(job_kinds().values(), key=lambda k: k.name):
        reason = k.unavailable()
        out.append({"name": k.name, "title": k.title, "available": reason is None, "reason": reason,
                    "gpu": k.gpu, "description": k.description})
    return out


# --- jobs ------------------------------------------------------------------------------------


@dataclass
class Job:
    id: str
    session: str
    kind: str
    params: dict[str, Any]
    state: str = "queued"
    progress: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    attempt: int = 1
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    seq: int = 0
    cancel: CancelToken = field(default_factory=CancelToken, repr=False)
    cond: threading.Condition = field(default_factory=threading.Condition, repr=False)
    saved_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "session": self.session, "kind": self.kind, "params": self.params, "state": self.state,
                "progress": self.progress, "result": self.result, "error": self.error, "attempt": self.attempt,
                "created": self.created, "started": self.started, "finished": self.finished, "seq": self.seq}

    def row(self) -> dict[str, Any]:
        return self.to_dict()

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        return cls(id=row["id"], session=row["session"], kind=row["kind"], params=row["params"] or {},
                   state=row["state"], progress=row["progress"], result=row["result"], error=row["error"],
                   attempt=int(row["attempt"] or 1), created=row["created"], started=row["started"],
                   finished=row["finished"], seq=1)

    def touch(self) -> None:
        """Something changed: bump the sequence number and wake waiters (call with ``cond`` held)."""
        self.seq += 1
        self.cond.notify_all()


@dataclass
class JobContext:
    """What a job kind's ``run`` gets."""

    job: Job
    handle: SessionHandle
    roots: RootsPolicy
    cancel: CancelToken
    progress: Callable[[Progress], None]

    @property
    def session(self) -> Session:
        return self.handle.session

    def objects(self, refs: list[int | str] | None) -> list[int] | None:
        from engine.server.sessions import resolve_objects

        return resolve_objects(self.session, refs)

    def names(self) -> dict[int, str]:
        return {o.id: o.name for o in self.session.data.objects.values()}


class JobManager:
    def __init__(self, store: Store, sessions: SessionManager, gpu: OwnedLock, roots: RootsPolicy, *,
                 workers: int = 2, max_attempts: int = 3) -> None:
        self.store = store
        self.sessions = sessions
        self.gpu = gpu
        self.roots = roots
        self.max_attempts = max_attempts
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="roto-job")
        self.stopping = False

    # --- life -------------------------------------------------------------------------------

    def recover(self) -> list[Job]:
        """Re-queue what a previous server left queued or running (see the module doc)."""
        resumed = []
        for row in self.store.jobs(ACTIVE):
            job = Job.from_row(row)
            if job.state == "waiting":  # it never started: back in the queue, same attempt
                job.state = "queued"
                job.progress = dict(job.progress or {}, message="queued again after the server restarted")
            elif job.state == "running":
                kind = job_kinds().get(job.kind)
                if kind is not None and kind.resumable and job.attempt < self.max_attempts:
                    job.attempt += 1
                    job.state = "queued"
                    job.progress = dict(job.progress or {}, message="resumed after the server restarted")
                else:
                    job.state = "interrupted"
                    job.finished = time.time()
                    job.error = Interrupted(f"the server stopped while this {job.kind} job ran (attempt {job.attempt})",
                                            hint="Run it again").to_dict()
            self.store.save_job(job.row())
            with self._lock:
                self._jobs[job.id] = job
            if job.state == "queued":
                resumed.append(job)
                self._pool.submit(self._execute, job)
        return resumed

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop taking jobs; running ones stop between frames and go back to the queue."""
        self.stopping = True
        with self._lock:
            running = [j for j in self._jobs.values() if j.state in ("waiting", "running")]
        for j in running:
            j.cancel.cancel(STOP_REASON)
        deadline = time.monotonic() + timeout
        for j in running:
            with j.cond:
                j.cond.wait_for(lambda j=j: j.state not in ("waiting", "running"),
                                timeout=max(0.0, deadline - time.monotonic()))
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- API --------------------------------------------------------------------------------

    def submit(self, sid: str, kind_name: str, params: dict[str, Any]) -> Job:
        if self.stopping:
            from engine.server.errors import Busy

            raise Busy("the server is stopping", hint="Start it again and resubmit")
        self.sessions.get(sid)  # the session must exist
        kind = get_kind(kind_name)
        model, _, _, paths = kind.resolve()  # FeatureUnavailable when the feature's module is absent
        from pydantic import ValidationError

        try:
            parsed = model.model_validate(params)
        except ValidationError as exc:
            from engine.server.app import validation_sentence

            raise InvalidRequest(f"the {kind.name} job's parameters are not valid: {validation_sentence(exc.errors())}")
        for path, what in paths(parsed):
            self.roots.check(path, what)
        job = Job(id=uuid.uuid4().hex[:16], session=sid, kind=kind.name,
                  params=parsed.model_dump(mode="json", exclude_none=True))
        with self._lock:
            self._jobs[job.id] = job
        self.store.save_job(job.row())
        self._pool.submit(self._execute, job)
        return job

    def get(self, jid: str) -> Job:
        with self._lock:
            job = self._jobs.get(jid)
        if job is not None:
            return job
        row = self.store.job(jid)
        if row is None:
            raise NotFound(f"there is no job {jid!r} on this server")
        return Job.from_row(row)

    def list(self, session: str | None = None) -> list[dict[str, Any]]:
        rows = {r["id"]: r for r in self.store.jobs()}
        with self._lock:
            for j in self._jobs.values():
                rows[j.id] = j.to_dict()
        out = [r for r in rows.values() if session is None or r["session"] == session]
        return sorted(out, key=lambda r: r["created"])[-200:]

    def cancel(self, jid: str) -> Job:
        job = self.get(jid)
        with job.cond:
            if job.state in ("queued", "waiting"):  # not started: it ends now (a waiting worker lets go)
                job.cancel.cancel("cancelled by the user")
                job.state = "cancelled"
                job.finished = time.time()
                job.error = Cancelled("cancelled before it started").to_dict()
                job.touch()
                self.store.save_job(job.row())
            elif job.state == "running":
                job.cancel.cancel("cancelled by the user")
        return job

    def wait(self, jid: str, after: int | None, timeout: float) -> Job:
        """The job once its sequence number differs from ``after`` (or it ends), at most ``timeout`` s."""
        job = self.get(jid)
        if after is None or timeout <= 0:
            return job
        with job.cond:
            job.cond.wait_for(lambda: job.seq != after or job.state in TERMINAL, timeout=timeout)
        return job

    # --- running ----------------------------------------------------------------------------

    def _save(self, job: Job, force: bool = True) -> None:
        now = time.monotonic()
        if force or now - job.saved_at > 0.5:
            job.saved_at = now
            self.store.save_job(job.row())

    def _set(self, job: Job, **changes: Any) -> None:
        with job.cond:
            for k, v in changes.items():
                setattr(job, k, v)
            job.touch()
        self._save(job)

    def _progress(self, job: Job) -> Callable[[Progress], None]:
        last = [0.0]

        def update(p: Progress) -> None:
            eta = p.eta_seconds
            info = {"stage": p.stage, "done": p.done, "total": p.total, "fraction": round(p.fraction, 4),
                    "frame": p.frame, "eta": None if eta is None else round(eta, 1), "message": p.message}
            now = time.monotonic()
            final = p.total > 0 and p.done >= p.total
            with job.cond:
                job.progress = info
                if final or now - last[0] >= 0.05:
                    last[0] = now
                    job.touch()
            self._save(job, force=False)

        return update

    @contextlib.contextmanager
    def _acquire(self, job: Job, lock: OwnedLock, owner: str, what: str) -> Iterator[None]:
        """Hold ``lock`` for ``job``; while another holder has it the job is ``waiting``, its
        progress saying for what (a cancel or a server stop ends the wait with Cancelled)."""
        from engine.server.errors import Busy

        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(lock.hold(owner, timeout=0))
            except Busy:
                holder = lock.owner or "another request"
                with job.cond:
                    if job.state not in TERMINAL:  # not if a cancel came first
                        job.state = "waiting"
                        job.progress = {"stage": "waiting", "done": 0, "total": 0, "fraction": 0.0, "frame": None,
                                        "eta": None, "message": f"waiting for {holder} to finish with {what}; "
                                                                f"it starts then (cancel it to give up)"}
                        job.touch()
                self._save(job)
                stack.enter_context(lock.hold(owner, cancel=job.cancel))
            yield

    def _execute(self, job: Job) -> None:
        if job.state != "queued" or self.stopping:
            return
        try:
            handle = self.sessions.get(job.session)
            kind = get_kind(job.kind)
        except RotoError as exc:
            self._set(job, state="failed", error=exc.to_dict(), finished=time.time())
            return
        owner = f"job {job.id} ({job.kind})"
        try:
            model, run, gpu, _ = kind.resolve()
            params = model.model_validate(job.params)
            ctx = JobContext(job, handle, self.roots, job.cancel, self._progress(job))
            with self._acquire(job, handle.lock, owner, "this session"):
                handle.busy_job = job.id
                try:
                    with self._acquire(job, self.gpu, owner, "the GPU") if gpu else contextlib.nullcontext():
                        with job.cond:
                            if job.state in TERMINAL:  # cancelled while it waited: already recorded
                                return
                            if (job.progress or {}).get("stage") == "waiting":
                                job.progress = None
                            job.state, job.started, job.error = "running", time.time(), None
                            job.touch()
                        self._save(job)
                        result = run(ctx, params)
                    with contextlib.suppress(Exception):
                        handle.summary()
                finally:
                    handle.busy_job = None
            self._set(job, state="succeeded", result=result, finished=time.time())
        except Cancelled as exc:
            if job.state in TERMINAL:  # cancelled while it waited: already recorded
                return
            if self.stopping and job.cancel.reason == STOP_REASON and kind.resumable:
                job.cancel = CancelToken()
                self._set(job, state="queued", progress=dict(job.progress or {}, message=STOP_REASON))
            else:
                self._set(job, state="cancelled", error=exc.to_dict(), finished=time.time())
        except RotoError as exc:
            from engine.server.hints import job_error  # hints an artist in a host can act on

            self._set(job, state="failed", error=job_error(exc), finished=time.time())
        except Exception as exc:  # a bug: log it with a reference, answer a sentence
            ref = uuid.uuid4().hex[:8]
            log.exception("job %s (%s) failed [ref %s]", job.id, job.kind, ref)
            err = InternalError(f"the engine hit an unexpected error while running this {job.kind} job "
                                f"({type(exc).__name__})", hint=f"Send pipeline support the server log entry {ref}")
            self._set(job, state="failed", error=dict(err.to_dict(), ref=ref), finished=time.time())
