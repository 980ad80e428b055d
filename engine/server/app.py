"""The HTTP application: routes under ``/v1``, the token check, request limits, errors as data.

Every answer is JSON (a preview is a PNG, job events are ``text/event-stream``). An error is
``{"error": {"code": ..., "text": "<sentence>", "message", "hint", "path", "frame"}}`` with a
fitting HTTP status (400 bad input, 401 token, 403 path outside the roots, 404 unknown, 409
busy/cancelled, 413 too large, 422 invalid request, 501 feature not in this engine, 503 backend
unavailable); a bug answers 500 ``internal_error`` with a log reference, never a traceback.

Routes (all but ``/v1/health`` need ``Authorization: Bearer <token>``)::

    GET    /v1/health                          service, version (no token)
    GET    /v1/capabilities                    job kinds (available or why not), backends, roots, limits
    POST   /v1/sessions                        open or resume a session {clip, project?, key?, backend?...}
    GET    /v1/sessions                        sessions: open now and stored from earlier runs
    GET    /v1/sessions/{sid}                  summary (objects, keyframes, undo/redo labels, busy)
    DELETE /v1/sessions/{sid}                  save and close
    POST   /v1/sessions/{sid}/objects          {name}
    POST   /v1/sessions/{sid}/prompts          {kind: point|box|text|mask, object, frame, ...}
    POST   /v1/sessions/{sid}/prompt-set       {object, frame, points, box?, text?, replace} one undo step
    PATCH  /v1/sessions/{sid}/prompts/{uid}    {x, y}
    DELETE /v1/sessions/{sid}/prompts/{uid}
    POST   /v1/sessions/{sid}/keyframes        {object, frame}
    DELETE /v1/sessions/{sid}/keyframes/{object}/{frame}
    POST   /v1/sessions/{sid}/undo | /redo
    GET    /v1/sessions/{sid}/preview?frame=N  PNG with the masks laid over
    POST   /v1/sessions/{sid}/jobs             {kind, params} -> job (runs in the background)
    GET    /v1/jobs?session=                   jobs
    GET    /v1/jobs/{jid}?wait=S&after=SEQ     a job (long poll: answers when seq != SEQ or after S s)
    GET    /v1/jobs/{jid}/events               server-sent events until the job ends
    POST   /v1/jobs/{jid}/cancel
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine import __version__
from engine.errors import RotoError
from engine.server import schemas as S
from engine.server.auth import check_header, default_token_file, load_or_create_token
from engine.server.errors import InternalError, InvalidRequest, NotFound, RequestTooLarge, Unauthorized, http_status
from engine.server.jobs import TERMINAL, JobManager, describe_kinds
from engine.server.locks import OwnedLock
from engine.server.roots import RootsPolicy
from engine.server.sessions import SessionManager
from engine.server.settings import LOOPBACK, ServerConfig
from engine.server.store import Store

log = logging.getLogger("roto.server")

API = "/v1"
OPEN_PATHS = frozenset({API + "/health"})
SERVICE = "ultimate-rotoscopy"
MAX_WAIT = 30.0


class MalformedJSON(InvalidRequest):
    code = "malformed_json"


def validation_sentence(errors: list[dict[str, Any]], limit: int = 4) -> str:
    parts = []
    for e in errors[:limit]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body",)) or "body"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    more = len(errors) - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def error_body(exc: RotoError, **extra: Any) -> dict[str, Any]:
    return {"error": dict(exc.to_dict(), **extra)}


# --- services --------------------------------------------------------------------------------


class Engine:
    """Everything the routes use: store, roots, token, locks, sessions, jobs."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        state = Path(config.state_dir)  # type: ignore[arg-type]
        state.mkdir(parents=True, exist_ok=True)
        self.token_file = Path(config.token_file) if config.token_file else default_token_file()
        self.token = load_or_create_token(self.token_file)
        self.roots = RootsPolicy(config.roots)
        self.store = Store(state / "server.sqlite3")
        self.gpu = OwnedLock("GPU")
        self.sessions = SessionManager(self.store, self.roots, state, self.gpu, config.lock_timeout)
        self.jobs = JobManager(self.store, self.sessions, self.gpu, self.roots, workers=config.workers,
                               max_attempts=config.max_attempts)
        self.started = time.time()
        self.stopping = False

    def startup(self) -> None:
        resumed = self.jobs.recover()
        if resumed:
            log.info("resuming %d job(s) from the previous run", len(resumed))

    def shutdown(self) -> None:
        self.stopping = True
        self.jobs.shutdown()
        for h in self.sessions.handles():
            with contextlib.suppress(Exception), h.lock.hold("server stop", timeout=2.0):
                if h._session is not None and h._session.path is not None:
                    h._session.save()
        self.store.close()


# --- the request guard: host, token, size ------------------------------------------------------


async def _send_json(send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


class Guard:
    """Pure ASGI middleware run before routing: refuses browsers and foreign Host headers, checks
    the token (before the body is read), and enforces the body size limit."""

    def __init__(self, app, engine: Engine) -> None:
        self.app = app
        self.engine = engine

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        cfg = self.engine.config
        host = headers.get("host", "")
        hostname = host[1:host.index("]")] if host.startswith("[") and "]" in host else host.rsplit(":", 1)[0]
        allowed = set(LOOPBACK) | {cfg.host}
        if cfg.host in ("0.0.0.0", "::"):
            allowed = None  # bound everywhere on purpose (--allow-remote): any Host
        if allowed is not None and hostname not in allowed:
            await _send_json(send, 403, error_body(Unauthorized(
                f"requests must address the engine as {cfg.host}, not {hostname or 'an empty host'}")))
            return
        if "origin" in headers:
            await _send_json(send, 403, error_body(Unauthorized(
                "requests from web pages are refused", hint="Use the engine's host client")))
            return
        if scope["path"] not in OPEN_PATHS:
            why = check_header(headers.get("authorization"), self.engine.token)
            if why is not None:
                await _send_json(send, 401, error_body(Unauthorized(why, hint=f"The token is in {self.engine.token_file}")))
                return
        limit = cfg.max_body_bytes
        length = headers.get("content-length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                n = limit + 1
            if n > limit:
                await _send_json(send, 413, error_body(RequestTooLarge(
                    f"the request body is {n} bytes, over the server's limit of {limit} bytes",
                    hint="Send masks as image files (kind 'mask' with a path) rather than inline data")))
                return
        if scope["method"] in ("POST", "PUT", "PATCH", "DELETE") or length is not None or "transfer-encoding" in headers:
            chunks, size = [], 0
            while True:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    return
                body = msg.get("body", b"")
                size += len(body)
                if size > limit:
                    await _send_json(send, 413, error_body(RequestTooLarge(
                        f"the request body is over the server's limit of {limit} bytes")))
                    return
                chunks.append(body)
                if not msg.get("more_body", False):
                    break
            replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

            async def replayed():
                if replay:
                    return replay.pop()
                return await receive()

            await self.app(scope, replayed, send)
            return
        await self.app(scope, receive, send)


# --- the application -----------------------------------------------------------------------------


def create_app(config: ServerConfig, engine: Engine | None = None) -> FastAPI:
    """The ASGI application for ``config`` (its :class:`Engine` is ``app.state.engine``)."""
    eng = engine or Engine(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        eng.startup()
        if config.write_discovery:
            _write_discovery(config)
        try:
            yield
        finally:
            if config.write_discovery:
                _remove_discovery()
            await asyncio.get_running_loop().run_in_executor(None, eng.shutdown)

    app = FastAPI(title="Ultimate Rotoscopy engine", version=__version__, lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=API + "/openapi.json")
    app.state.engine = eng

    # --- errors as data ---------------------------------------------------------------------

    @app.exception_handler(RotoError)
    async def roto_error(request: Request, exc: RotoError):
        return JSONResponse(error_body(exc), status_code=http_status(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            err: RotoError = MalformedJSON("the request body is not valid JSON",
                                           hint="Send a JSON object with Content-Type: application/json")
            return JSONResponse(error_body(err), status_code=400)
        err = InvalidRequest("the request is not valid: " + validation_sentence(errors))
        return JSONResponse(error_body(err), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            err: RotoError = NotFound(f"there is no route {request.method} {request.url.path}",
                                      hint="See GET /v1/capabilities and the engine.client module")
        elif exc.status_code == 405:
            err = InvalidRequest(f"{request.method} is not allowed on {request.url.path}")
            err.code = "method_not_allowed"
        else:
            err = InvalidRequest(str(exc.detail))
        return JSONResponse(error_body(err), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception):
        ref = uuid.uuid4().hex[:8]
        log.error("unexpected error on %s %s [ref %s]", request.method, request.url.path, ref, exc_info=exc)
        err = InternalError(f"the engine hit an unexpected error ({type(exc).__name__})",
                            hint=f"Send pipeline support the server log entry {ref}")
        return JSONResponse(error_body(err, ref=ref), status_code=500)

    # --- server -----------------------------------------------------------------------------

    @app.get(API + "/health")
    def health() -> dict[str, Any]:
        return {"service": SERVICE, "version": __version__, "api": 1}

    @app.get(API + "/capabilities")
    def capabilities() -> dict[str, Any]:
        from engine.backends.registry import describe

        backends = [{"name": n, "title": t, "available": r is None, "reason": r} for n, t, r in describe()]
        return {"version": __version__, "job_kinds": describe_kinds(), "backends": backends,
                "roots": eng.roots.describe(), "limits": {"max_body_bytes": config.max_body_bytes},
                "gpu_busy": eng.gpu.owner}

    # --- sessions ---------------------------------------------------------------------------

    @app.post(API + "/sessions")
    def open_session(req: S.OpenSession) -> dict[str, Any]:
        h, created = eng.sessions.open(req)
        return dict(eng.sessions.summary(h.id), created=created)

    @app.get(API + "/sessions")
    def list_sessions() -> dict[str, Any]:
        return {"sessions": eng.sessions.listing()}

    @app.get(API + "/sessions/{sid}")
    def get_session(sid: str) -> dict[str, Any]:
        return eng.sessions.summary(sid)

    @app.delete(API + "/sessions/{sid}")
    def close_session(sid: str) -> dict[str, Any]:
        eng.sessions.close(sid)
        return {"closed": sid}

    @app.post(API + "/sessions/{sid}/objects")
    def add_object(sid: str, req: S.AddObject) -> dict[str, Any]:
        return eng.sessions.add_object(sid, req.name)

    @app.post(API + "/sessions/{sid}/prompts")
    def add_prompt(sid: str, req: S.AddPrompt) -> dict[str, Any]:
        return eng.sessions.add_prompt(sid, req)

    @app.post(API + "/sessions/{sid}/prompt-set")
    def prompt_set(sid: str, req: S.PromptSet) -> dict[str, Any]:
        return eng.sessions.set_prompts(sid, req)

    @app.patch(API + "/sessions/{sid}/prompts/{uid}")
    def move_prompt(sid: str, uid: str, req: S.MovePrompt) -> dict[str, Any]:
        return eng.sessions.move_prompt(sid, uid, req.x, req.y)

    @app.delete(API + "/sessions/{sid}/prompts/{uid}")
    def remove_prompt(sid: str, uid: str) -> dict[str, Any]:
        return eng.sessions.remove_prompt(sid, uid)

    @app.post(API + "/sessions/{sid}/keyframes")
    def set_keyframe(sid: str, req: S.Keyframe) -> dict[str, Any]:
        return eng.sessions.set_keyframe(sid, req.object, req.frame)

    @app.delete(API + "/sessions/{sid}/keyframes/{obj}/{frame}")
    def clear_keyframe(sid: str, obj: str, frame: int) -> dict[str, Any]:
        ref: int | str = int(obj) if obj.isdigit() else obj
        return eng.sessions.clear_keyframe(sid, ref, frame)

    @app.post(API + "/sessions/{sid}/undo")
    def undo(sid: str, req: S.Empty | None = None) -> dict[str, Any]:
        return eng.sessions.undo(sid)

    @app.post(API + "/sessions/{sid}/redo")
    def redo(sid: str, req: S.Empty | None = None) -> dict[str, Any]:
        return eng.sessions.redo(sid)

    @app.get(API + "/sessions/{sid}/preview")
    def preview(sid: str, frame: int, overlay: int = 1, max_size: int = 1024) -> Response:
        png = eng.sessions.preview_png(sid, frame, bool(overlay), max(16, min(int(max_size), 8192)))
        return Response(png, media_type="image/png")

    # --- jobs -------------------------------------------------------------------------------

    @app.post(API + "/sessions/{sid}/jobs")
    def submit(sid: str, req: S.SubmitJob) -> dict[str, Any]:
        return eng.jobs.submit(sid, req.kind, req.params).to_dict()

    @app.get(API + "/jobs")
    def list_jobs(session: str | None = None) -> dict[str, Any]:
        return {"jobs": eng.jobs.list(session)}

    @app.get(API + "/jobs/{jid}")
    def get_job(jid: str, wait: float = 0.0, after: int | None = None) -> dict[str, Any]:
        return eng.jobs.wait(jid, after, max(0.0, min(float(wait), MAX_WAIT))).to_dict()

    @app.post(API + "/jobs/{jid}/cancel")
    def cancel_job(jid: str, req: S.Empty | None = None) -> dict[str, Any]:
        return eng.jobs.cancel(jid).to_dict()

    @app.get(API + "/jobs/{jid}/events")
    async def job_events(jid: str, request: Request, after: int | None = None):
        eng.jobs.get(jid)  # 404 before the stream starts

        async def stream():
            last = after
            quiet = time.monotonic()
            while True:
                job = eng.jobs.get(jid)
                if job.seq != last:
                    last = job.seq
                    end = job.state in TERMINAL
                    yield f"event: {'end' if end else 'progress'}\nid: {job.seq}\ndata: {json.dumps(job.to_dict())}\n\n"
                    quiet = time.monotonic()
                    if end:
                        return
                elif time.monotonic() - quiet > 15:
                    yield ": keep-alive\n\n"
                    quiet = time.monotonic()
                if eng.stopping or await request.is_disconnected():
                    return  # the job goes on: a client that goes away does not stop it
                await asyncio.sleep(0.1)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    from engine.viewer.routes import mount_viewer  # the browser viewer and its sign-in gate (DR013)

    return mount_viewer(app, eng, Guard(app, eng))  # type: ignore[return-value]


# --- discovery file --------------------------------------------------------------------------


def _write_discovery(config: ServerConfig) -> None:
    from engine.client import discovery_path

    path = Path(discovery_path())
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"url": config.url, "pid": os.getpid(), "version": __version__,
                                   "started": time.time()}), encoding="utf-8")
        os.replace(tmp, path)


def _remove_discovery() -> None:
    from engine.client import discovery_path

    path = Path(discovery_path())
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()


# --- running ---------------------------------------------------------------------------------


def _uvicorn_config(app, config: ServerConfig, quiet: bool):
    import uvicorn

    return uvicorn.Config(app, host=config.host, port=config.port, log_level="warning" if quiet else "info",
                          access_log=False, log_config=None if quiet else uvicorn.config.LOGGING_CONFIG,
                          timeout_graceful_shutdown=5, lifespan="on")


def serve(config: ServerConfig) -> None:
    """Run the server in this thread until interrupted (``roto serve``)."""
    import uvicorn

    app = create_app(config)
    uvicorn.Server(_uvicorn_config(app, config, quiet=False)).run()


class ServerThread:
    """The real server (uvicorn) in a background thread on a free loopback port: for tests and for
    applications that embed the engine. ``with ServerThread(config) as srv: srv.url, srv.token``."""

    def __init__(self, config: ServerConfig) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((config.host, config.port if config.port else 0))
        config.port = self.sock.getsockname()[1]
        self.config = config
        self.app = create_app(config)
        self.engine: Engine = self.app.engine  # type: ignore[attr-defined]
        self.server = uvicorn.Server(_uvicorn_config(self.app, config, quiet=True))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True,
                                       name="roto-server")

    @property
    def url(self) -> str:
        return self.config.url

    @property
    def token(self) -> str:
        return self.engine.token

    def start(self, timeout: float = 20.0) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the engine server did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 20.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
