"""The viewer's routes: its page and static files, and the endpoints only a viewer needs.

Mounted into the engine server by :func:`mount_viewer` (one line in ``engine.server.app``).
Everything here sits behind the server's Guard (token, Host check, body limit); the browser gets
in through :class:`~engine.viewer.auth.ViewerGate` (login link → cookie, same origin only).
The viewer otherwise uses the ordinary ``/v1`` API (sessions, prompts, undo/redo, jobs with SSE).

Routes (token or viewer cookie)::

    GET    /                                            the viewer page (?session=SID)
    GET    /viewer/static/{file}                        its CSS/JS (shipped in the package, no CDN)
    GET    /viewer/login?code=C | POST /viewer/login    sign in (see engine.viewer.auth)
    POST   /viewer/logout
    POST   /v1/viewer/link            {session?}        a one-time login link for a browser
    GET    /v1/viewer/kinds                             job kinds with their parameter schema (export panel)
    GET    /v1/viewer/sessions/{sid}/info               clip, range, fps, objects, prompts, keyframes,
                                                        frames with masks, QC flags, depth, undo/redo, busy job
    GET    /v1/viewer/sessions/{sid}/frames/{N}.jpg?size=S   plate proxy (display-referred 8-bit)
    GET    /v1/viewer/sessions/{sid}/overlay/{N}.png?size=S  object-id map (204: no masks; ETag)
    GET    /v1/viewer/sessions/{sid}/matte/{N}.png?size=S&objects=1,2   grey matte (soft alpha if any)
    GET    /v1/viewer/sessions/{sid}/depth/{N}.png?size=S   depth as grey (501 when the session has none)
    GET    /v1/viewer/sessions/{sid}/thumbs.jpg?count=K&height=H   thumbnail strip (X-Roto-Frames header)
    PATCH  /v1/viewer/sessions/{sid}/objects/{oid}  {name?, colour?}   one undo step
    DELETE /v1/viewer/sessions/{sid}/objects/{oid}                      one undo step
    POST   /v1/viewer/sessions/{sid}/paint  {object, frame, mode, radius, points}  brush/eraser stroke
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field

from engine.errors import PromptError, RotoError
from engine.server.errors import FeatureUnavailable, NotFound
from engine.server.schemas import Coord, Frame, Name, Strict
from engine.viewer.auth import CODE_SECONDS, LOGIN_PATH, SECURITY_HEADERS, ViewerAuth, ViewerGate
from engine.viewer.media import ViewerMedia, fit_size

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI

    from engine.server.app import Engine
    from engine.session.session import Session

API = "/v1"
STATIC = Path(__file__).resolve().parent / "static"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon",
         ".json": "application/json"}
SessionId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
MAX_THUMBS = 200


class LinkRequest(Strict):
    session: SessionId | None = None


class ObjectEdit(Strict):
    name: Name | None = None
    colour: Annotated[list[Annotated[float, Field(ge=0, le=1)]], Field(min_length=3, max_length=3)] | None = None


class PaintStroke(Strict):
    object: Annotated[int, Field(ge=1, le=1_000_000)] | Name
    frame: Frame
    mode: Literal["add", "erase"] = "add"
    radius: Annotated[float, Field(gt=0, le=4000, allow_inf_nan=False)] = 10.0
    points: Annotated[list[Annotated[list[Coord], Field(min_length=2, max_length=2)]], Field(min_length=1, max_length=20000)]


# --- helpers ------------------------------------------------------------------------------------


def _static(name: str, request: Request) -> Response:
    path = (STATIC / name).resolve()
    try:
        path.relative_to(STATIC)
    except ValueError:
        raise NotFound(f"there is no viewer file {name!r}") from None
    if not path.is_file() or path.suffix not in TYPES:
        raise NotFound(f"there is no viewer file {name!r}")
    data = path.read_bytes()
    tag = '"' + hashlib.sha1(data).hexdigest()[:20] + '"'
    headers = {"ETag": tag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if path.suffix == ".html":
        headers.update(SECURITY_HEADERS)
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=TYPES[path.suffix], headers=headers)


def _image(data: bytes, media_type: str, tag: str | None, request: Request, cache: str = "private, no-cache") -> Response:
    headers = {"Cache-Control": cache, "X-Content-Type-Options": "nosniff"}
    if tag is not None:
        headers["ETag"] = f'"{tag}"'
        if request.headers.get("if-none-match") == headers["ETag"]:
            return Response(status_code=304, headers=headers)
    return Response(data, media_type=media_type, headers=headers)


def _ranges(frames: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for f in sorted(set(frames)):
        if out and f == out[-1][1] + 1:
            out[-1][1] = f
        else:
            out.append([f, f])
    return out


def _int_list(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()][:1000]
    except ValueError:
        raise PromptError(f"objects must be object ids separated by commas, not {text[:40]!r}") from None


def _size(size: int) -> int:
    return 0 if size <= 0 else max(16, min(int(size), 16384))


# --- the router -----------------------------------------------------------------------------------


def build_router(eng: Engine, auth: ViewerAuth, media: ViewerMedia) -> APIRouter:
    r = APIRouter()

    def session_of(sid: str) -> Session:
        """The open Session of ``sid`` without waiting for a job that holds its lock (reads only)."""
        h = eng.sessions.get(sid)
        s = h._session
        if s is None:
            from engine.server.errors import Busy

            try:
                with h.lock.hold("opening the session for the viewer", timeout=eng.sessions.lock_timeout):
                    s = h.session
            except Busy:
                if h._session is None:
                    raise
                s = h._session
        return s

    def edit(sid: str, what: str, fn) -> dict[str, Any]:
        h = eng.sessions.get(sid)
        with h.lock.hold(what, timeout=eng.sessions.lock_timeout):
            out = fn(h.session)
            return {"result": out, "summary": h.summary()}

    def frame_of(s: Session, frame: int) -> int:
        return s.check_frame(frame)

    # --- page -------------------------------------------------------------------------------

    @r.get("/", include_in_schema=False)
    def page(request: Request) -> Response:
        return _static("index.html", request)

    @r.get("/viewer/static/{name:path}", include_in_schema=False)
    def static(name: str, request: Request) -> Response:
        return _static(name, request)

    # --- sign-in links ----------------------------------------------------------------------

    @r.post(API + "/viewer/link")
    def link(request: Request, req: LinkRequest | None = None) -> dict[str, Any]:
        sid = req.session if req is not None else None
        if sid is not None:
            eng.sessions.get(sid)  # 404 for an unknown session
        base = "http://" + request.headers.get("host", f"127.0.0.1:{eng.config.port}")
        code = auth.new_code(sid)
        return {"url": f"{base}{LOGIN_PATH}?code={code}", "page": base + "/" + (f"?session={sid}" if sid else ""),
                "expires_in": CODE_SECONDS}

    # --- job kinds for the export panel ----------------------------------------------------

    @r.get(API + "/viewer/kinds")
    def kinds() -> dict[str, Any]:
        from engine.server.jobs import describe_kinds, get_kind

        out = []
        for k in describe_kinds():
            schema = None
            if k["available"]:
                try:
                    model = get_kind(k["name"]).resolve()[0]
                    schema = model.model_json_schema() if hasattr(model, "model_json_schema") else None
                except RotoError as exc:
                    k = dict(k, available=False, reason=exc.sentence())
            out.append(dict(k, schema=schema))
        return {"kinds": out}

    # --- session info -----------------------------------------------------------------------

    @r.get(API + "/viewer/sessions/{sid}/info")
    def info(sid: str) -> dict[str, Any]:
        h = eng.sessions.get(sid)
        s = session_of(sid)
        d = s.data
        c = d.clip
        objects = dict(d.objects)
        prompts = list(dict(d.prompts).values())
        keyframes = list(dict(d.keyframes))
        results = dict(d.results)
        lo, hi = s.frame_range
        objs = []
        for o in sorted(objects.values(), key=lambda x: x.id):
            frames = [f for (oid, f) in results if oid == o.id]
            objs.append({"id": o.id, "name": o.name, "colour": list(o.colour),
                         "keyframes": sorted(f for (oid, f) in keyframes if oid == o.id),
                         "frames": _ranges(frames),
                         "occluded": sorted(f for (oid, f), res in results.items() if oid == o.id and res.occluded),
                         "prompts": sum(1 for p in prompts if p.object_id == o.id)})
        plist = [{"uid": p.uid, "object": p.object_id, "frame": p.frame, "kind": p.kind,
                  "data": None if p.kind == "mask" else p.data} for p in prompts]
        qc = None
        try:
            from engine.qc.scores import stored_qc

            stored = stored_qc(s)
            if stored is not None:
                qc = [{"frame": f, "object": o, "reasons": reasons} for f, o, reasons in stored.review()]
        except (ImportError, RotoError, KeyError, TypeError, ValueError):
            qc = None
        from engine.depth.store import depth_record

        undo = list(s.history.undo_stack)
        redo = list(s.history.redo_stack)
        backend = s._backend
        rate = (c.rate or "24/1").split("/")
        try:
            num, den = int(rate[0]), int(rate[1]) if len(rate) > 1 else 1
        except ValueError:
            num, den = 24, 1
        rev = hashlib.sha1(repr((len(undo), id(undo[-1]) if undo else 0, len(redo), len(results), len(prompts),
                                 sorted(objects.items()), h.busy_job, id(d.meta.get("qc")), d.meta.get("matte"),
                                 depth_record(s))).encode()).hexdigest()[:16]
        return {
            "session": sid, "project": str(h.project), "key": h.key, "rev": rev,
            "clip": {"path": c.path, "first": c.first, "last": c.last, "width": c.width, "height": c.height,
                     "fps": [num, den], "rate": c.rate, "timecode": c.timecode, "content_id": c.content_id,
                     "colourspace": c.plate_colourspace or c.colourspace},
            "range": [lo, hi], "backend": d.backend,
            "prompt_kinds": list(backend.info.prompt_kinds) if backend is not None else None,
            "objects": objs, "prompts": plist, "qc": qc,
            "depth": depth_record(s) is not None, "alpha": bool(d.meta.get("matte")),
            "undo": [u.label for u in undo[-10:]], "redo": [u.label for u in redo[-10:]],
            "busy": h.lock.owner, "busy_job": h.busy_job,
            "suggested_out_dir": _suggest_out(eng, c.path),
        }

    # --- pictures ---------------------------------------------------------------------------

    @r.get(API + "/viewer/sessions/{sid}/frames/{frame}.jpg")
    def frame_jpeg(sid: str, frame: int, request: Request, size: int = 1280, quality: int = 88) -> Response:
        s = session_of(sid)
        f = frame_of(s, frame)
        data = media.frame_jpeg(sid, s, f, _size(size), max(30, min(int(quality), 98)))
        return _image(data, "image/jpeg", None, request, cache="private, max-age=86400")

    @r.get(API + "/viewer/sessions/{sid}/overlay/{frame}.png")
    def overlay(sid: str, frame: int, request: Request, size: int = 1280) -> Response:
        s = session_of(sid)
        f = frame_of(s, frame)
        tag, _ = media.overlay_tag(s, f, _size(size))
        if request.headers.get("if-none-match") == f'"{tag}"':
            return Response(status_code=304, headers={"ETag": f'"{tag}"', "Cache-Control": "private, no-cache"})
        data, tag = media.overlay_png(s, f, _size(size))
        if data is None:
            return Response(status_code=204, headers={"ETag": f'"{tag}"', "Cache-Control": "private, no-cache"})
        return _image(data, "image/png", tag, request)

    @r.get(API + "/viewer/sessions/{sid}/matte/{frame}.png")
    def matte(sid: str, frame: int, request: Request, size: int = 1280, objects: str | None = None) -> Response:
        s = session_of(sid)
        f = frame_of(s, frame)
        tag, _ = media.matte_tag(s, f, _size(size), _int_list(objects))
        if request.headers.get("if-none-match") == f'"{tag}"':
            return Response(status_code=304, headers={"ETag": f'"{tag}"', "Cache-Control": "private, no-cache"})
        data, tag = media.matte_png(s, f, _size(size), _int_list(objects))
        return _image(data, "image/png", tag, request)

    @r.get(API + "/viewer/sessions/{sid}/depth/{frame}.png")
    def depth(sid: str, frame: int, request: Request, size: int = 1280) -> Response:
        s = session_of(sid)
        f = frame_of(s, frame)
        data = media.depth_png(s, f, _size(size))
        if data is None:
            raise FeatureUnavailable(f"the session has no depth for frame {f}",
                                     hint="Run the depth job (roto depth) on this session first")
        return _image(data, "image/png", None, request)

    @r.get(API + "/viewer/sessions/{sid}/thumbs.jpg")
    def thumbs(sid: str, request: Request, count: int = 24, height: int = 54) -> Response:
        from engine.media.proxy import pick_frames

        s = session_of(sid)
        lo, hi = s.frame_range
        frames = pick_frames(range(lo, hi + 1), max(1, min(int(count), MAX_THUMBS)))
        height = max(16, min(int(height), 512))
        data = media.thumbs(sid, s, frames, height)
        c = s.data.clip
        resp = _image(data, "image/jpeg", None, request, cache="private, max-age=86400")
        resp.headers["X-Roto-Frames"] = ",".join(str(f) for f in frames)
        resp.headers["X-Roto-Tile-Width"] = str(max(8, round(c.width * height / max(1, c.height))))
        return resp

    # --- edits the /v1 API does not have -----------------------------------------------------

    @r.patch(API + "/viewer/sessions/{sid}/objects/{oid}")
    def edit_object(sid: str, oid: int, req: ObjectEdit) -> dict[str, Any]:
        if req.name is None and req.colour is None:
            raise PromptError("nothing to change", hint="Send a name or a colour")

        def run(s: Session) -> dict[str, Any]:
            from engine.session.history import Recorder
            from engine.session.model import RotoObject

            o = s.check_object(oid)
            name = o.name if req.name is None else req.name.strip()
            if not name:
                raise PromptError("an object needs a name")
            if any(x.name == name and x.id != o.id for x in s.data.objects.values()):
                raise PromptError(f"an object named {name!r} exists already", hint="Choose another name")
            colour = o.colour if req.colour is None else tuple(float(v) for v in req.colour)
            what = [w for w, changed in (("rename", name != o.name), ("colour", colour != o.colour)) if changed]
            if what:
                rec = Recorder(s.data, f"{' and '.join(what)} {o.name}" + (f" to {name}" if name != o.name else ""))
                rec.set("objects", o.id, RotoObject(o.id, name, colour))  # type: ignore[arg-type]
                s._commit(rec)
            return s.data.objects[o.id].to_dict()

        return edit(sid, "editing an object", run)

    @r.delete(API + "/viewer/sessions/{sid}/objects/{oid}")
    def delete_object(sid: str, oid: int) -> dict[str, Any]:
        def run(s: Session) -> int:
            s.delete_object(oid)
            return oid

        return edit(sid, "deleting an object", run)

    @r.post(API + "/viewer/sessions/{sid}/paint")
    def paint(sid: str, req: PaintStroke) -> dict[str, Any]:
        def run(s: Session) -> dict[str, Any]:
            import cv2
            import numpy as np

            from engine.server.sessions import resolve_object

            oid = resolve_object(s, req.object)
            h, w = s.shape
            radius = max(1, int(round(req.radius)))
            pts = [(int(round(x)), int(round(y))) for x, y in req.points]

            def op(mask: np.ndarray) -> np.ndarray:
                brush = np.zeros((h, w), np.uint8)
                for a, b in zip(pts, pts[1:] or pts):
                    cv2.line(brush, a, b, 1, thickness=2 * radius + 1, lineType=cv2.LINE_8)
                    cv2.circle(brush, b, radius, 1, thickness=-1)
                cv2.circle(brush, pts[0], radius, 1, thickness=-1)
                return mask | (brush > 0) if req.mode == "add" else mask & ~(brush > 0)

            new = s.edit_mask(oid, req.frame, op, label="paint" if req.mode == "add" else "erase")
            return {"object": oid, "frame": int(req.frame), "mask_pixels": int(new.sum())}

        return edit(sid, "painting a mask", run)

    return r


def _suggest_out(eng: Engine, clip_path: str) -> str | None:
    """A folder for exports the roots allow: ``<plate folder>/../roto/<plate name>`` or ``<plate folder>/roto``."""
    plate = Path(clip_path)
    folder = plate if plate.is_dir() else plate.parent
    stem = plate.name.split(".")[0] or "plate"
    for cand in (folder.parent / "roto" / stem, folder / "roto"):
        try:
            return str(eng.roots.check(str(cand), "export folder"))
        except RotoError:
            continue
    return None


def mount_viewer(app: FastAPI, eng: Engine, guarded: Any) -> ViewerGate:
    """Add the viewer's routes to ``app`` and put its sign-in gate in front of ``guarded`` (the
    Guard-wrapped app). Returns the ASGI application to serve."""
    auth = ViewerAuth(eng.token, eng.config.port)
    media = ViewerMedia()
    app.state.viewer_auth = auth
    app.state.viewer_media = media
    app.include_router(build_router(eng, auth, media))
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a):  # close the viewer's readers when the server stops
        async with inner(a) as state:
            try:
                yield state
            finally:
                media.close()

    app.router.lifespan_context = lifespan
    return ViewerGate(guarded, eng, auth)
