"""Open sessions: one :class:`~engine.session.session.Session` per project file, each behind its lock.

A session id names a project file for the server's life and after restarts (the mapping is in
the store); the :class:`Session` itself is opened lazily. Hosts usually pass a ``key`` (e.g.
``"nuke:/shows/x/sh010.nk:RotoAI1"``) instead of a project path: the same key reopens the same
session, whose project file the server keeps in its state folder.

Interactive edits (prompts, keyframes, undo) wait at most ``lock_timeout`` seconds for a busy
session or GPU, then answer :class:`~engine.server.errors.Busy`. Reads (summary, preview) never
wait for a job: they answer from a copy of the session as far as the job has got. Sessions never
share objects, prompts or results: every edit goes through the handle of the session it names.
"""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import PromptError, SessionError
from engine.server.errors import NotFound
from engine.server.locks import OwnedLock

if TYPE_CHECKING:  # pragma: no cover
    from engine.server.roots import RootsPolicy
    from engine.server.schemas import AddPrompt, OpenSession, PromptSet
    from engine.server.store import Store
    from engine.session.session import Session


class SessionHandle:
    """A session id, its project file, its lock and (once opened) the Session."""

    def __init__(self, sid: str, project: Path, clip: str, key: str | None, options: dict[str, Any]) -> None:
        self.id = sid
        self.project = project
        self.clip = clip
        self.key = key
        self.options = options
        self.lock = OwnedLock(f"session {sid}")
        self.busy_job: str | None = None
        self._session: Session | None = None
        self._summary: dict[str, Any] | None = None
        self._read_lock = threading.Lock()  # reads beside a job: one at a time, with their own plate reader
        self._reader: Any = None  # that plate reader (a Clip), kept between reads

    @property
    def session(self) -> Session:
        """The Session (opened from its project file on first use; call with the lock held)."""
        if self._session is None:
            from engine.session.session import Session

            if not self.project.is_file():
                raise SessionError("the session's project file is gone", path=str(self.project),
                                   hint="Open the clip again to start a new session")
            s = Session.open(self.project)
            backend = self.options.get("backend")
            if backend and backend != s.data.backend:
                s.data.backend = backend
            self._session = s
        return self._session

    def summary(self) -> dict[str, Any]:
        """Refresh the summary (lock held)."""
        data = self.describe(self.session)
        self._summary = data
        return data

    def describe(self, s: Session) -> dict[str, Any]:
        data = s.summary()
        data["session"] = self.id
        data["project"] = str(self.project)
        data["key"] = self.key
        data["width"], data["height"] = s.data.clip.width, s.data.clip.height
        data["object_names"] = {str(o.id): o.name for o in s.data.objects.values()}
        return data

    def cached_summary(self) -> dict[str, Any] | None:
        return self._summary

    def read_only(self) -> Session:
        """A copy of the session to read while a job holds the lock (call with ``_read_lock`` held).

        From the loaded session: its tables copied (``dict(d)`` copies in one step under the GIL,
        so a job adding results meanwhile cannot break the copy), its history shared for reading,
        and a plate reader of its own (readers are not shared between threads). Not loaded yet
        (a job is opening it): the project file as last saved (written atomically). Never saved."""
        import dataclasses

        from engine.session.session import Session

        live = self._session
        if live is None:
            if not self.project.is_file():
                raise SessionError("the session's project file is gone", path=str(self.project),
                                   hint="Open the clip again to start a new session")
            copy = Session.open(self.project, autosave=False, clip=self._reader)
        else:
            d = live.data
            data = dataclasses.replace(d, objects=dict(d.objects), prompts=dict(d.prompts),
                                       keyframes=dict(d.keyframes), results=dict(d.results), meta=dict(d.meta))
            copy = Session(data, path=self.project, history=live.history, clip=self._reader, autosave=False)
        return copy

    def keep_reader(self, copy: Session) -> None:
        """Keep the plate reader a read-only copy opened (``_read_lock`` held)."""
        if copy._clip is not None:
            self._reader = copy._clip


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._")[:60] or "session"


class SessionManager:
    def __init__(self, store: Store, roots: RootsPolicy, state_dir: Path, gpu: OwnedLock, lock_timeout: float) -> None:
        self.store = store
        self.roots = roots
        self.state_dir = Path(state_dir)
        self.gpu = gpu
        self.lock_timeout = lock_timeout
        self._handles: dict[str, SessionHandle] = {}
        self._lock = threading.Lock()

    # --- opening --------------------------------------------------------------------------

    def get(self, sid: str) -> SessionHandle:
        with self._lock:
            h = self._handles.get(sid)
            if h is not None:
                return h
            row = self.store.session_row(sid)
            if row is None:
                raise NotFound(f"there is no session {sid!r} on this server",
                               hint="Open the clip again (POST /v1/sessions)")
            h = SessionHandle(sid, Path(row["project"]), row["clip"], row["key"], row["options"])
            self._handles[sid] = h
            return h

    def handles(self) -> list[SessionHandle]:
        with self._lock:
            return list(self._handles.values())

    def listing(self) -> list[dict[str, Any]]:
        """Every session: the ones this server has in hand and the ones its store knows from
        earlier runs (they reopen by id or key). ``loaded``: in memory now; ``closed``: closed
        with DELETE; ``missing``: its project file is gone (it cannot be reopened)."""
        handles = {h.id: h for h in self.handles()}
        out = []
        for row in self.store.sessions():
            h = handles.pop(row["id"], None)
            out.append(_listed(row["id"], row["clip"], row["project"], row["key"], h, closed=bool(row["closed"]),
                               created=row["created"]))
        for h in handles.values():  # being opened right now: not stored yet
            out.append(_listed(h.id, h.clip, str(h.project), h.key, h, closed=False, created=None))
        return out

    def open(self, req: OpenSession) -> tuple[SessionHandle, bool]:
        """Open or resume the session ``req`` describes; returns it and whether it is new."""
        if req.backend and req.backend != "auto":
            _check_backend_name(req.backend)
        clip = str(self.roots.check(req.clip, "clip"))
        options = {k: v for k, v in req.model_dump().items()
                   if k in ("backend", "colourspace", "missing", "in_point", "out_point", "fps", "ocio_config") and v is not None}
        if req.ocio_config and not req.ocio_config.startswith("ocio://"):
            self.roots.check(req.ocio_config, "OCIO config")
        if req.project:
            project = self.roots.check(req.project, "project file")
        elif req.key:
            row = self.store.session_by(key=req.key)
            if row is not None:
                project = Path(row["project"])
            else:
                digest = hashlib.sha1(req.key.encode("utf-8")).hexdigest()[:10]
                project = self.state_dir / "sessions" / f"{_slug(Path(clip).name.split('.')[0])}-{digest}.roto.json"
        else:
            project = self.state_dir / "sessions" / f"{_slug(Path(clip).name.split('.')[0])}-{uuid.uuid4().hex[:10]}.roto.json"
        row = self.store.session_by(project=str(project))
        sid = row["id"] if row is not None else uuid.uuid4().hex[:12]
        with self._lock:
            h = self._handles.get(sid)
            fresh = h is None
            if h is None:
                h = SessionHandle(sid, project, clip, req.key or (row["key"] if row else None), options)
                self._handles[sid] = h
        if h._session is not None:
            # already open (maybe busy with a job): the same plate check as from disk, without waiting
            self._check_plate(h._session, clip, req, project)
            if not req.backend or req.backend == h._session.data.backend:
                return h, False
        with h.lock.hold("opening the session", timeout=self.lock_timeout):
            created = False
            if h._session is None:
                if project.is_file():
                    s = h.session
                    try:
                        self._check_plate(s, clip, req, project)
                    except SessionError:
                        if fresh:  # made by this call, with the plate asked for: not this session's handle
                            with self._lock:
                                self._handles.pop(sid, None)
                        raise
                else:
                    from engine.session.session import Session

                    project.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        h._session = Session.create(clip, path=project, backend=req.backend or "auto",
                                                    colourspace=req.colourspace, missing=req.missing or "error",
                                                    in_point=req.in_point, out_point=req.out_point, fps=req.fps,
                                                    ocio_config=req.ocio_config)
                    except BaseException:
                        with self._lock:
                            self._handles.pop(sid, None)
                        raise
                    created = True
            elif req.backend and req.backend != h.session.data.backend:
                h.session.data.backend = req.backend
            h.options.update(options)
            self.store.add_session(sid, str(project), h.key, clip, h.options)
            h.summary()
        return h, created

    @staticmethod
    def _check_plate(s: Session, clip: str, req: OpenSession, project: Path) -> None:
        """Refuse to hand out a session made on another plate (the same key or project file asked
        for a different plate): delivering its mattes would put one shot's roto on another."""
        if s.same_plate(clip):  # any name of the same sequence or movie
            return
        if req.key and not req.project:
            raise SessionError(
                f"the session of key {req.key!r} was made on {s.data.clip.path}, not on {clip} "
                "(the plate asked for)", path=str(project),
                hint="Each plate needs its own session: give this node or tool a unique name (or save the "
                     "script or comp under its own name) so the host makes a new key, or point it back at "
                     f"{s.data.clip.path}")
        raise SessionError(f"the session was made on {s.data.clip.path}, not on {clip} "
                           "(the plate asked for)", path=str(project),
                           hint=f"Use another project file for this plate, or open it on {s.data.clip.path}")

    def close(self, sid: str) -> None:
        h = self.get(sid)
        with h.lock.hold("closing the session", timeout=self.lock_timeout):
            if h._session is not None:
                if h._session.path is not None:
                    h._session.save()
                h._session = None
            self.store.set_session_closed(sid, True)
        with self._lock:
            self._handles.pop(sid, None)
        with h._read_lock:
            reader, h._reader = h._reader, None
            if reader is not None:
                reader.close()

    # --- reads ----------------------------------------------------------------------------

    def _read_wait(self, h: SessionHandle) -> float:
        """How long a read waits for the session lock: not at all behind a job (it reads a copy
        instead), briefly behind an interactive edit."""
        return 0.0 if h.busy_job else min(0.5, self.lock_timeout)

    def summary(self, sid: str) -> dict[str, Any]:
        from engine.server.errors import Busy

        h = self.get(sid)
        try:
            with h.lock.hold("reading the session", timeout=self._read_wait(h)):
                return dict(h.summary(), busy=None)
        except Busy:
            pass
        owner = h.lock.owner
        with h._read_lock:  # a job has it: describe a copy, as far as the job has got
            return dict(h.describe(h.read_only()), busy=owner or h.busy_job)

    # --- edits ----------------------------------------------------------------------------

    def _edit(self, sid: str, what: str, fn, *, gpu: bool = False) -> Any:
        h = self.get(sid)
        with h.lock.hold(what, timeout=self.lock_timeout):
            if gpu:
                with self.gpu.hold(f"{what} (session {sid})", timeout=self.lock_timeout):
                    out = fn(h.session)
            else:
                out = fn(h.session)
            return out, h.summary()

    def add_object(self, sid: str, name: str | None) -> dict[str, Any]:
        obj, summary = self._edit(sid, "adding an object", lambda s: s.add_object(name))
        return {"object": obj.to_dict(), "summary": summary}

    def add_prompt(self, sid: str, req: AddPrompt) -> dict[str, Any]:
        mask_image = None
        if req.kind == "mask":
            from engine.session.prompts_file import read_mask_image

            mask_image = read_mask_image(self.roots.check(req.path, "mask image"))

        def run(s: Session) -> dict[str, Any]:
            oid = resolve_object(s, req.object, create=False)
            before = set(s.data.prompts)
            if req.kind == "point":
                mask = s.add_point(oid, req.frame, req.x, req.y, req.label)
            elif req.kind == "box":
                mask = s.add_box(oid, req.frame, req.x0, req.y0, req.x1, req.y1)
            elif req.kind == "text":
                mask = s.add_text(oid, req.frame, req.text)
            else:
                mask = s.add_mask(oid, req.frame, mask_image)
            new = sorted(set(s.data.prompts) - before)
            return {"prompt": new[0] if new else None, "object": oid, "frame": int(req.frame),
                    "mask_pixels": None if mask is None else int(mask.sum())}

        out, summary = self._edit(sid, f"adding a {req.kind} prompt", run, gpu=True)
        return dict(out, summary=summary)

    def set_prompts(self, sid: str, req: PromptSet) -> dict[str, Any]:
        def run(s: Session) -> dict[str, Any]:
            return set_prompts(s, req)

        out, summary = self._edit(sid, "setting prompts", run, gpu=True)
        return dict(out, summary=summary)

    def move_prompt(self, sid: str, uid: str, x: float, y: float) -> dict[str, Any]:
        def run(s: Session) -> dict[str, Any]:
            _known_prompt(s, uid)
            mask = s.move_prompt(uid, x, y)
            return {"prompt": uid, "mask_pixels": None if mask is None else int(mask.sum())}

        out, summary = self._edit(sid, "moving a prompt", run, gpu=True)
        return dict(out, summary=summary)

    def remove_prompt(self, sid: str, uid: str) -> dict[str, Any]:
        def run(s: Session) -> dict[str, Any]:
            _known_prompt(s, uid)
            mask = s.remove_prompt(uid)
            return {"prompt": uid, "mask_pixels": None if mask is None else int(mask.sum())}

        out, summary = self._edit(sid, "removing a prompt", run, gpu=True)
        return dict(out, summary=summary)

    def set_keyframe(self, sid: str, obj: int | str, frame: int) -> dict[str, Any]:
        _, summary = self._edit(sid, "setting a keyframe", lambda s: s.set_keyframe(resolve_object(s, obj), frame))
        return {"summary": summary}

    def clear_keyframe(self, sid: str, obj: int | str, frame: int) -> dict[str, Any]:
        _, summary = self._edit(sid, "clearing a keyframe", lambda s: s.clear_keyframe(resolve_object(s, obj), frame))
        return {"summary": summary}

    def undo(self, sid: str) -> dict[str, Any]:
        label, summary = self._edit(sid, "undo", lambda s: s.undo())
        return {"undone": label, "summary": summary}

    def redo(self, sid: str) -> dict[str, Any]:
        label, summary = self._edit(sid, "redo", lambda s: s.redo())
        return {"redone": label, "summary": summary}

    def preview_png(self, sid: str, frame: int, overlay: bool, max_size: int) -> bytes:
        from engine.server.preview import render_preview

        from engine.server.errors import Busy

        h = self.get(sid)
        try:
            with h.lock.hold("drawing a preview", timeout=self._read_wait(h)):
                return render_preview(h.session, frame, overlay=overlay, max_size=max_size)
        except Busy:
            pass
        with h._read_lock:  # a job has it: draw a copy with the masks the job has made so far
            copy = h.read_only()
            try:
                return render_preview(copy, frame, overlay=overlay, max_size=max_size)
            finally:
                h.keep_reader(copy)


def _listed(sid: str, clip: str, project: str, key: str | None, h: SessionHandle | None, *, closed: bool,
            created: float | None) -> dict[str, Any]:
    return {"session": sid, "clip": clip, "project": project, "key": key,
            "busy": h.lock.owner if h is not None else None,
            "loaded": h is not None and h._session is not None, "closed": closed and h is None,
            "missing": not Path(project).is_file(), "created": created}


def _check_backend_name(name: str) -> None:
    """Refuse a backend name no segmenter is registered under, when the session opens (not at its
    first prompt). Whether a known backend can run here is the prompt's business (it may need
    weights that arrive later); ``auto`` always passes."""
    from engine.backends.registry import segmenters
    from engine.server.errors import InvalidRequest

    known = sorted(r.name for r in segmenters())
    if name not in known:
        raise InvalidRequest(f"there is no backend named {name!r}",
                             hint="Use one of: auto, " + ", ".join(known) + " (check the host's ROTO_BACKEND "
                                  "setting for a typo; GET /v1/capabilities says which can run here)")


def _known_prompt(s: Session, uid: str) -> None:
    if uid not in s.data.prompts:
        raise NotFound(f"there is no prompt {uid!r} in this session")


def resolve_object(s: Session, ref: int | str, *, create: bool = False) -> int:
    """An object id from an id or a name; ``create`` makes a new object for an unknown name."""
    if isinstance(ref, int):
        return s.check_object(ref).id
    for o in s.data.objects.values():
        if o.name == ref:
            return o.id
    if create:
        return s.add_object(ref).id
    known = ", ".join(o.name for o in s.data.objects.values()) or "none yet"
    raise PromptError(f"there is no object named {ref!r}", hint=f"Known objects: {known}")


def resolve_objects(s: Session, refs: list[int | str] | None) -> list[int] | None:
    return None if not refs else [resolve_object(s, r) for r in refs]


def set_prompts(s: Session, req: PromptSet) -> dict[str, Any]:
    """Replace (or extend) one object's prompts on one frame as a single undoable command."""
    from engine.session.model import PromptRecord

    frame = s.check_frame(req.frame)
    for pt in req.points:  # validate everything before changing anything
        s._check_xy(pt[0], pt[1], "point")
        if len(pt) == 3 and pt[2] not in (0, 1):
            raise PromptError(f"a point label is 1 (object) or 0 (background), not {pt[2]:g}")
    box = None
    if req.box is not None:
        x0, x1 = sorted((req.box[0], req.box[2]))
        y0, y1 = sorted((req.box[1], req.box[3]))
        s._check_xy(x0, y0, "box corner")
        h, w = s.shape
        s._check_xy(min(x1, w - 0.01), min(y1, h - 0.01), "box corner")
        if x1 - x0 < 2 or y1 - y0 < 2:
            raise PromptError(f"the box {x0:g},{y0:g},{x1:g},{y1:g} is too small", hint="Draw a box around the object")
        box = {"x0": x0, "y0": y0, "x1": x1, "y1": y1}
    if not (req.points or box or req.text) and not req.replace:
        raise PromptError("no prompt given", hint="Send points, a box or a text")
    existed = isinstance(req.object, int) or any(o.name == req.object for o in s.data.objects.values())
    oid = resolve_object(s, req.object, create=True)
    changes: dict[str, Any] = {}
    if req.replace:
        for p in s.data.prompts_on(oid, frame):
            changes[p.uid] = None
    added = []
    for pt in req.points:
        rec = PromptRecord(PromptRecord.new_uid(), oid, frame, "point",
                           {"x": float(pt[0]), "y": float(pt[1]), "label": int(pt[2]) if len(pt) == 3 else 1})
        changes[rec.uid] = rec
        added.append(rec.uid)
    if box is not None:
        rec = PromptRecord(PromptRecord.new_uid(), oid, frame, "box", box)
        changes[rec.uid] = rec
        added.append(rec.uid)
    if req.text:
        rec = PromptRecord(PromptRecord.new_uid(), oid, frame, "text", {"text": req.text})
        changes[rec.uid] = rec
        added.append(rec.uid)
    name = s.data.objects[oid].name
    try:
        mask = s._replace_prompts(oid, frame, changes, f"set prompts of {name} on frame {frame}") if changes else None
    except BaseException:
        if not existed:
            s.undo()  # the object was made for these prompts: a refused prompt leaves no trace
        raise
    return {"object": oid, "frame": frame, "prompts": added,
            "mask_pixels": None if mask is None else int(mask.sum())}
