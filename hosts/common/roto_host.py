"""What every host adapter shares: finding the client, the adapter contract, and the job driver.

Standard library only, Python 3.7+ (it runs inside Nuke, Flame and Resolve). A host adapter is
a class with the methods in :data:`REQUIRED` (checked by :func:`missing_methods`, and by the
shared conformance test ``tests/host_conformance.py``); :func:`run_action` does the rest:

1. make sure the engine server runs (start it, or tell the artist exactly how);
2. open (or resume) the session for the host's clip, keyed by the host's node/clip so the same
   node always gets the same session;
3. send the prompts the artist placed (one undoable step per object and frame);
4. run the job in the server (track, matte, depth, shapes, qc) following its progress, with
   cancel; write the deliverable (a multi-layer EXR with Cryptomatte) through an ``export`` job;
5. hand the files to the adapter to bring into the host (a Read node, clips, a Loader).

Long work runs in a background thread; every call into the host goes through
``adapter.call_in_main`` (the host's UI thread). Nothing raises into the host: errors reach the
artist as ``adapter.message(text, error=True)`` with the engine's sentence.
"""

import hashlib
import importlib.util
import os
import re
import sys
import threading
import traceback
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))

#: the methods a host adapter provides (see :class:`HostAdapter`)
REQUIRED = ("source", "prompts", "output_dir", "progress", "cancelled", "message", "import_mattes",
            "import_shapes", "call_in_main")

#: what the artist can ask for; the value is (job kind, params, then export the mattes?)
ACTIONS = {
    "track_forward": ("track", {"direction": "forward"}, True),
    "track_backward": ("track", {"direction": "backward"}, True),
    "track_both": ("track", {"direction": "both"}, True),
    "matte": ("matte", {}, True),
    "depth": ("depth", {}, True),
    "shapes": ("shapes", {}, False),
    "qc": ("qc", {}, False),
}


class HostProblem(Exception):
    """Something the artist can fix (no input connected, no prompt placed): shown as it is."""

    @property
    def text(self):
        return str(self)


def load_client(search=None):
    """The engine's client module: ``roto_client`` beside the adapter (``roto install-host``),
    else ``engine.client`` when the engine is importable, else ``engine/client.py`` of the
    checkout this file sits in (``hosts/common/../../engine``) or under ``$ROTO_ENGINE_ROOT``."""
    try:
        import roto_client  # noqa: F401

        if hasattr(roto_client, "RotoClient"):
            return roto_client
    except ImportError:
        pass
    try:
        from engine import client

        if hasattr(client, "RotoClient"):
            return client
    except ImportError:
        pass
    folders = list(search or []) + [HERE, os.path.join(HERE, "..", "..", "engine")]
    if os.environ.get("ROTO_ENGINE_ROOT"):
        folders.append(os.path.join(os.environ["ROTO_ENGINE_ROOT"], "engine"))
    for folder in folders:
        for name in ("roto_client.py", "client.py"):
            path = os.path.normpath(os.path.join(folder, name))
            if os.path.isfile(path):
                spec = importlib.util.spec_from_file_location("roto_client", path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                if hasattr(module, "RotoClient"):
                    sys.modules["roto_client"] = module
                    return module
    raise ImportError("The Ultimate Rotoscopy client (roto_client.py) was not found beside the host adapter. "
                      "Run `roto install-host <host>` from the engine's environment, or set ROTO_ENGINE_ROOT to "
                      "the engine's folder.")


class HostAdapter(object):
    """The contract (duck-typed; subclassing is optional). ``ctx`` is whatever the host hands the
    action: the Nuke node, the Flame selection, the Fusion comp."""

    name = "host"
    adapter_dir = HERE  # where roto_host.json (written by `roto install-host`) is looked for

    def source(self, ctx):
        """``{"path": plate file/pattern, "key": stable session key, "first"?, "last"?, "colourspace"?}``."""
        raise NotImplementedError

    def prompts(self, ctx, session):
        """``[{"object": name, "frame": plate frame, "points": [(x, y, label)], "box": (x0, y0, x1, y1) or None}]``
        in plate pixels from the top-left; ``session`` is the server's summary (range, size)."""
        raise NotImplementedError

    def output_dir(self, ctx, source):
        """Folder for the deliverables (inside the server's roots)."""
        raise NotImplementedError

    def progress(self, ctx, fraction, text):
        """Show progress (any thread)."""

    def cancelled(self, ctx):
        """True when the artist asked to stop (any thread)."""
        return False

    def message(self, text, error=False):
        """Tell the artist (main thread)."""
        raise NotImplementedError

    def import_mattes(self, ctx, mattes):
        """Bring the matte EXRs into the host (main thread); ``mattes`` is :func:`describe_mattes`."""
        raise NotImplementedError

    def import_shapes(self, ctx, shapes):
        """Bring shape files into the host (main thread); ``shapes`` is the shapes job's result."""
        raise NotImplementedError

    def call_in_main(self, fn, *args):
        """Run ``fn(*args)`` in the host's UI thread and return its result."""
        return fn(*args)


def session_key(host, node_id, plate):
    """The session key of one node/tool on one plate: ``host:<node id>:<plate digest>``.

    ``node_id`` is unique per node (a uuid kept on the node, see :func:`own_id`, or the host's own
    id), so two unsaved scripts or two default-named comps never share a session; the plate's
    digest gives a node pointed at another plate a new session (pointing it back resumes the old
    one). The key never contains a script, comp or node name: renaming or saving keeps it."""
    plate = os.path.normpath(os.path.expanduser(str(plate)))
    return "%s:%s:%s" % (host, node_id, hashlib.sha1(plate.encode("utf-8")).hexdigest()[:12])


def folder_name(name, node_id):
    """``<name>_<8 hex>``: the default output folder of one node, so two scripts' or comps' nodes
    with the same default name never write their mattes into one folder."""
    return "%s_%s" % (name, hashlib.sha1(str(node_id).encode("utf-8")).hexdigest()[:8])


def own_id(current, name, others):
    """The id a node keeps (or gets) for :func:`session_key`; store it on the node with ``name``.

    ``current`` is the id stored on the node ("" when none yet), ``name`` the node's name now,
    ``others`` ``(id, name stored with that id, name now)`` for the host's other nodes. A copied
    node carries its original's id: a node whose id another node also holds gets a fresh one,
    unless it is the node that claimed the id (the name stored with it is its own name), so the
    original keeps its session and the copy starts its own. When neither claims it, the first one
    used keeps it (and from then on claims it)."""
    current = str(current or "").strip()
    if current:
        for oid, stored, oname in others:
            if str(oid or "").strip() == current and stored == oname and oname != name:
                return uuid.uuid4().hex
        return current
    return uuid.uuid4().hex


def missing_methods(adapter):
    """The :data:`REQUIRED` methods ``adapter`` lacks (AYON-style interface check)."""
    return [m for m in REQUIRED if not callable(getattr(adapter, m, None))]


def describe_mattes(export_result):
    """What a host needs from an export job's result: the file pattern (``####``), frames, layers."""
    patterns = export_result.get("patterns") or {}
    first, last = export_result.get("frames") or [None, None]
    objects = export_result.get("objects") or {}
    pattern = sorted(set(patterns.values()))[0] if patterns else None
    crypto = [g for g in patterns if g.startswith("Crypto")]
    return {"pattern": pattern, "first": first, "last": last, "format": export_result.get("format"),
            "layers": sorted(patterns), "objects": sorted(objects.values()),
            "crypto_layer": crypto[0] if crypto else None, "out_dir": export_result.get("out_dir")}


def frame_path(pattern, frame):
    """``/a/b.####.exr`` → ``/a/b.1001.exr``."""
    hashes = pattern.count("#")
    return pattern.replace("#" * hashes, "%0*d" % (hashes, frame)) if hashes else pattern


def make_client(adapter):
    module = load_client()
    return module.RotoClient(adapter_dir=getattr(adapter, "adapter_dir", None))


class Task(object):
    """One action running for a host: its thread, its outcome (for the adapter and for tests)."""

    _active = {}
    _active_lock = threading.Lock()
    last = None  # the most recent task (diagnostics, tests)

    def __init__(self, adapter, ctx, action, key):
        self.adapter = adapter
        self.ctx = ctx
        self.action = action
        self.key = key
        self.client = None
        self.job_id = None
        self.result = None  # what the adapter imported / showed
        self.error = None  # the sentence shown, when it failed
        self.state = "starting"
        self.cancel_requested = False
        self.thread = None

    @classmethod
    def running(cls, key):
        with cls._active_lock:
            return cls._active.get(key)

    def cancel(self):
        """Ask the running job to stop (from any thread)."""
        self.cancel_requested = True
        if self.client is not None and self.job_id is not None:
            try:
                self.client.cancel(self.job_id)
            except Exception:
                pass

    def alive(self):
        if self.thread is not None:
            return self.thread.is_alive()
        return self.state in ("starting", "running")  # run in the caller's thread (Resolve scripts)

    def join(self, timeout=None):
        if self.thread is not None:
            self.thread.join(timeout)


def run_action(adapter, ctx, action, background=True, key=None, client=None):
    """Run ``action`` (a key of :data:`ACTIONS`, or undo/redo/cancel) for ``ctx``; returns the
    :class:`Task` at once (its thread does the work) or, with ``background=False``, when done."""
    task = Task(adapter, ctx, action, key)
    task.client = client
    Task.last = task
    if action == "cancel":
        running = Task.running(key)
        if running is None:
            _say(adapter, "Nothing is running for this node.", error=False)
        else:
            running.cancel()
        task.state = "done"
        return task
    if key is not None:
        with Task._active_lock:
            busy = Task._active.get(key)
            if busy is not None and busy.alive():
                _say(adapter, "A job is already running for this node; cancel it or wait for it to finish.")
                task.state = "done"
                return task
            Task._active[key] = task
    if background:
        task.thread = threading.Thread(target=_work, args=(task,), name="roto-" + action)
        task.thread.daemon = True
        task.thread.start()
    else:
        _work(task)
    return task


def fail(adapter, ctx, action, exc, key=None):
    """A task that failed before it could start (e.g. in a host's own pre-dialog step): the artist
    is told, nothing raises."""
    task = Task(adapter, ctx, action, key)
    Task.last = task
    task.state = "failed"
    task.error = _error_text(exc, adapter) or getattr(exc, "text", None) or "%s: %s" % (type(exc).__name__, exc)
    _say(adapter, task.error, error=True)
    return task


def refused_text(exc, host):
    """A ``path_refused`` error as the artist should read it: the server's "start the server with
    --root" is not something an artist can do when the host started the engine, so the sentence
    names what can be done instead (``roto install-host <host> --root DIR`` or ROTO_SERVER_ROOTS)."""
    text = exc.text
    hint = str((getattr(exc, "data", None) or {}).get("hint") or "").rstrip(".")
    roots = re.search(r"\(roots: ([^)]*)\)", hint)
    if hint and hint in text:
        text = text[:text.index(hint)].rstrip()
    return (text + " The engine may only use the folders it was started with%s. To add one, re-run "
            "`roto install-host %s --root DIR` (once per folder, e.g. --root /shows), or set ROTO_SERVER_ROOTS "
            "where the engine starts; then quit the running engine (its pid is in server.json in the roto config "
            "folder) so the host starts it again with them."
            % (" (" + roots.group(1) + ")" if roots else "", host or "<host>"))


def _error_text(exc, adapter):
    """The sentence to show for ``exc``, or None for an unexpected error."""
    if isinstance(exc, HostProblem):
        return exc.text
    for mod in (sys.modules.get("roto_client"), sys.modules.get("engine.client")):
        if mod is not None and isinstance(exc, getattr(mod, "ServerError", ())):
            if exc.code == "path_refused":
                return refused_text(exc, getattr(adapter, "name", None))
            return exc.text
    return None


def _say(adapter, text, error=False):
    try:
        adapter.call_in_main(adapter.message, text, error)
    except Exception:
        print("Ultimate Rotoscopy: " + text)


def _work(task):
    adapter, ctx = task.adapter, task.ctx
    try:
        task.state = "running"
        _run(task)
        task.state = "done"
    except Exception as exc:  # never raise into the host
        task.state = "failed"
        text = _error_text(exc, adapter)
        if text is None:
            text = "Ultimate Rotoscopy hit an unexpected error: %s: %s" % (type(exc).__name__, exc)
            traceback.print_exc()
        task.error = text
        try:
            adapter.progress(ctx, 1.0, "")
        except Exception:
            pass
        _say(adapter, text, error=True)
    finally:
        with Task._active_lock:
            if Task._active.get(task.key) is task:
                del Task._active[task.key]


def _follow(task, job, label):
    """Wait for a job, feeding the host's progress and cancel; returns the finished job or raises."""
    client, adapter, ctx = task.client, task.adapter, task.ctx
    task.job_id = job["id"]

    def on_progress(j):
        p = j.get("progress") or {}
        text = label
        if p.get("frame") is not None:
            text += " frame %s (%s of %s)" % (p["frame"], p.get("done"), p.get("total"))
        adapter.progress(ctx, float(p.get("fraction") or 0.0), text)

    def should_cancel():
        return task.cancel_requested or bool(adapter.cancelled(ctx))

    done = client.wait(job["id"], on_progress=on_progress, should_cancel=should_cancel, poll=1.0)
    task.job_id = None
    if done.get("state") != "succeeded":
        module = sys.modules.get("roto_client") or load_client()
        raise module.ServerError.from_data(done.get("error") or {"code": done.get("state"),
                                                                   "text": "the %s job ended as %s" % (label, done.get("state"))})
    return done


def _run(task):
    adapter, ctx, action = task.adapter, task.ctx, task.action
    if task.client is None:
        task.client = make_client(adapter)
    client = task.client
    adapter.progress(ctx, 0.0, "Connecting to the engine")
    client.ensure_server()
    source = adapter.call_in_main(adapter.source, ctx)
    session = client.open_session(source["path"], key=source.get("key"), backend=os.environ.get("ROTO_BACKEND") or None,
                                  colourspace=source.get("colourspace"))
    sid = session["session"]
    if action == "cancel_jobs":  # hosts whose scripts run in separate processes cancel through the server
        active = [j for j in client.jobs(sid).get("jobs", []) if j.get("state") in load_client().ACTIVE_STATES]
        for j in active:
            client.cancel(j["id"])
        task.result = {"cancelled": [j["id"] for j in active]}
        _say(adapter, "Cancelled %d job(s)." % len(active) if active else "Nothing is running for this clip.")
        return
    if action in ("undo", "redo"):
        out = client.undo(sid) if action == "undo" else client.redo(sid)
        label = out.get("undone" if action == "undo" else "redone")
        task.result = out
        _say(adapter, ("%s: %s." % (action.capitalize(), label)) if label else "Nothing to %s." % action)
        return
    if action not in ACTIONS:
        raise ValueError("unknown action %r" % action)
    kind, params, export = ACTIONS[action]
    caps = client.capabilities()
    info = dict((k["name"], k) for k in caps.get("job_kinds", []))
    if kind not in info or not info[kind].get("available"):
        reason = (info.get(kind) or {}).get("reason") or "%s is not available in this engine version." % kind
        task.result = {"unavailable": reason}
        _say(adapter, reason[:1].upper() + reason[1:])
        return
    if kind == "track":
        for p in adapter.call_in_main(adapter.prompts, ctx, session) or []:
            client.set_prompts(sid, p["object"], int(p["frame"]), points=p.get("points") or (), box=p.get("box"),
                               text=p.get("text"), replace=True)
    titles = {"track": "Tracking", "matte": "Matting", "depth": "Depth", "shapes": "Shapes", "qc": "QC"}
    out_dir = adapter.call_in_main(adapter.output_dir, ctx, source)
    job_params = dict(params)
    if kind in ("shapes",):
        job_params["out_dir"] = out_dir
    done = _follow(task, client.submit(sid, kind, **job_params), titles[kind])
    result = done.get("result") or {}
    if kind == "qc":
        review = result.get("review") or []
        lines = ["%s %s: %s" % (r["object"], r["frame"], "; ".join(r["reasons"])) for r in review[:20]]
        text = "QC: %d frame(s) to review." % len(review) + ("\n" + "\n".join(lines) if lines else "")
        task.result = result
        _say(adapter, text)
        adapter.progress(ctx, 1.0, "")
        return
    if kind == "shapes":
        task.result = adapter.call_in_main(adapter.import_shapes, ctx, result)
        adapter.progress(ctx, 1.0, "")
        return
    if export:
        exported = _follow(task, client.export(sid, out_dir, format="exr", shot=source.get("shot")), "Writing mattes")
        mattes = describe_mattes(exported.get("result") or {})
        mattes["job"] = result
        task.result = adapter.call_in_main(adapter.import_mattes, ctx, mattes)
    adapter.progress(ctx, 1.0, "")
