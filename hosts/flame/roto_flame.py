"""Ultimate Rotoscopy for Autodesk Flame: the right-click actions and the adapter behind them.

Standard library + ``flame`` (+ PySide for the prompt dialog) only, Python 3.7+. Flow, on a
clip in the Media Panel or a Clip node in Batch:

1. (main thread) the clip's source file is used as it is, or exported to an EXR sequence when the
   clip has no file of its own; the engine opens (or resumes) the session for that clip;
2. (main thread) a small dialog shows a frame from the engine; clicks and a dragged box are the
   prompts, in plate pixels;
3. (background thread) the engine tracks and writes the matte EXR (one layer per object,
   Cryptomatte); progress goes to Flame's message bar; "Cancel Ultimate Rotoscopy" stops it;
4. (main thread, ``flame.schedule_idle_event``) the mattes are imported as a clip beside the
   source (Media Panel) or into the Batch schematic reel; shapes (GMask RAW) load into GMask nodes.

Nothing raises into Flame: problems are shown with ``flame.messages.show_in_dialog``.
"""

import os
import re
import threading
import time

import flame
import roto_host

HERE = os.path.dirname(os.path.abspath(__file__))
TITLE = "Ultimate Rotoscopy"
#: the export preset used for clips without a file of their own (override: ROTO_FLAME_EXR_PRESET)
DEFAULT_EXR_PRESET = "/opt/Autodesk/shared/export/presets/file_sequence/OpenEXR (16-bit fp PIZ).xml"
#: how prompts are collected: callable(client, session, source) -> prompts or None (cancelled)
PROMPT_DIALOG = None


def _value(attr):
    return attr.get_value() if hasattr(attr, "get_value") else attr


def _clip_of(item):
    if isinstance(item, flame.PyClip):
        return item
    clip = getattr(item, "clip", None)  # a Batch Clip node
    return clip if isinstance(clip, flame.PyClip) else None


def _flame_sequence(pattern, first, last):
    """``/a/b.####.exr`` → Flame's ``/a/b.[1001-1008].exr``."""
    n = pattern.count("#")
    return pattern.replace("#" * n, "[%0*d-%0*d]" % (n, first, n, last))


def clip_id(clip):
    """The clip's own id: its Wiretap node id (unique in the project; Flame gives one for clips in
    the Media Panel), else the project, reel and clip names (a Batch clip not in the Media Panel)."""
    try:
        uid = str(clip.get_wiretap_node_id() or "")
    except Exception:  # older Flame, or not in the Media Panel
        uid = ""
    if uid:
        return uid
    parent = getattr(clip, "parent", None)
    return "%s/%s/%s" % (flame.projects.current_project.name, _value(getattr(parent, "name", "")) if parent else "",
                         _value(clip.name))


class FlameHost(roto_host.HostAdapter):
    name = "flame"
    adapter_dir = HERE

    def __init__(self):
        self._last_progress = 0.0

    # --- main thread ------------------------------------------------------------------------

    def source(self, ctx):
        if ctx.get("source"):
            return ctx["source"]
        clip = ctx["clip"]
        name = str(_value(clip.name))
        uid = clip_id(clip)
        path = None
        try:
            path = clip.versions[0].tracks[0].segments[0].file_path
        except (AttributeError, IndexError):
            path = None
        m = re.search(r"\[(\d+)-(\d+)\]", path or "")
        if m:  # Flame's name.[1001-1010].exr: hand the engine one frame, it finds the sequence
            path = path[:m.start()] + m.group(1) + path[m.end():]
        if path and os.path.isfile(path):
            src = {"path": path, "shot": name}
        else:
            src = {"path": self._export(clip, name), "shot": name, "rendered": True}
        src["key"] = roto_host.session_key("flame", uid, src["path"])
        ctx["source"] = src
        return src

    def _export(self, clip, name):
        folder = os.path.join(self.output_dir({"clip": clip}, None), "input")
        if not os.path.isdir(folder):
            os.makedirs(folder)
        exporter = flame.PyExporter()
        exporter.foreground = True
        exporter.export(clip, os.environ.get("ROTO_FLAME_EXR_PRESET", DEFAULT_EXR_PRESET), folder)
        frames = sorted(f for f in os.listdir(folder) if f.lower().endswith(".exr"))
        if not frames:
            raise roto_host.HostProblem("Flame exported no EXR frames of %s to %s." % (name, folder))
        return os.path.join(folder, frames[0])  # one frame of the sequence: the engine finds the rest

    def prompts(self, ctx, session):
        return ctx.get("prompts") or []

    def output_dir(self, ctx, source):
        base = os.environ.get("ROTO_FLAME_OUTPUT")
        # the clip's id in the folder name: two clips of one name never write into one folder
        name = roto_host.folder_name(str(_value(ctx["clip"].name)), clip_id(ctx["clip"]))
        if base:
            return os.path.join(os.path.expanduser(base), name)
        if source and source.get("path") and not source.get("rendered"):
            return os.path.join(os.path.dirname(source["path"]), "roto", name)
        return os.path.join(os.path.expanduser("~"), "roto", name)

    def message(self, text, error=False):
        flame.messages.show_in_dialog(title=TITLE, message=text, type="error" if error else "info", buttons=["Ok"])

    def call_in_main(self, fn, *args):
        if threading.current_thread() is threading.main_thread():
            return fn(*args)
        box = {}
        done = threading.Event()

        def run():
            try:
                box["result"] = fn(*args)
            except BaseException as exc:  # handed back to the worker
                box["error"] = exc
            finally:
                done.set()

        flame.schedule_idle_event(run)
        done.wait()
        if "error" in box:
            raise box["error"]
        return box.get("result")

    def import_mattes(self, ctx, mattes):
        path = _flame_sequence(mattes["pattern"], int(mattes["first"]), int(mattes["last"]))
        if ctx.get("scope") == "batch":
            reel = flame.batch.reels[0].name if flame.batch.reels else "Schematic Reel 1"
            node = flame.batch.import_clip(path, _value(reel))
            return {"batch_node": _value(node.name), "path": path}
        clips = flame.import_clips(path, ctx["clip"].parent)
        return {"clips": [str(_value(c.name)) for c in clips or []], "path": path}

    def import_shapes(self, ctx, shapes):
        raws = (shapes.get("files") or {}).get("flame_gmask_raw") or []
        if not raws:
            raise roto_host.HostProblem("The engine made no GMask shapes.")
        if ctx.get("scope") != "batch":
            self.message("GMask RAW shapes written to:\n" + "\n".join(raws) + "\nLoad them into a GMask Tracer in Batch.")
            return {"files": raws}
        nodes = []
        for raw in raws:
            node = flame.batch.create_node("GMask Tracer")
            node.load_node_setup(raw)
            nodes.append(_value(node.name))
        return {"nodes": nodes, "files": raws}

    # --- any thread -------------------------------------------------------------------------

    def progress(self, ctx, fraction, text):
        now = time.time()
        if fraction < 1.0 and now - self._last_progress < 1.0:
            return
        self._last_progress = now
        line = "%s: %s %d%%" % (TITLE, text, int(fraction * 100)) if fraction < 1.0 else "%s: done" % TITLE
        flame.schedule_idle_event(lambda: flame.messages.show_in_console(line, "info", 3))

    def cancelled(self, ctx):
        return bool(ctx.get("cancel"))


HOST = FlameHost()


def _collect(client, session, source):
    dialog = PROMPT_DIALOG
    if dialog is None:
        import roto_flame_dialog

        dialog = roto_flame_dialog.collect_prompts
    return dialog(client, session, source)


def _run(selection, action, scope):
    """The body of every action: never raises into Flame."""
    clips = [c for c in (_clip_of(i) for i in selection) if c is not None]
    if not clips:
        HOST.message("Select a clip first.")
        return None
    ctx = {"clip": clips[0], "scope": scope}
    try:
        client = roto_host.make_client(HOST)
        client.ensure_server()
        src = HOST.source(ctx)
        if action.startswith("track"):
            session = client.open_session(src["path"], key=src["key"], backend=os.environ.get("ROTO_BACKEND") or None)
            prompts = _collect(client, session, src)
            if prompts is None:
                return None  # the artist closed the dialog
            ctx["prompts"] = prompts
        return roto_host.run_action(HOST, ctx, action, key=src["key"], client=client)
    except Exception as exc:
        return roto_host.fail(HOST, ctx, action, exc)


def cancel_all(selection=None):
    with roto_host.Task._active_lock:
        tasks = list(roto_host.Task._active.values())
    for t in tasks:
        t.ctx["cancel"] = True
        t.cancel()
    if not tasks:
        HOST.message("Nothing is running.")
    return tasks


def _is_clip(selection):
    return any(_clip_of(i) is not None for i in selection)


def menu(scope):
    """The hook's answer: one "Ultimate Rotoscopy" group of actions for clips."""

    def action(name, act):
        return {"name": name, "isVisible": _is_clip, "execute": lambda sel: _run(sel, act, scope)}

    return [{"name": TITLE, "actions": [
        action("Track both ways...", "track_both"),
        action("Track forward...", "track_forward"),
        action("Track backward...", "track_backward"),
        action("Matte", "matte"),
        action("Depth", "depth"),
        action("Shapes (GMask)", "shapes"),
        action("QC", "qc"),
        action("Undo", "undo"),
        action("Redo", "redo"),
        {"name": "Cancel Ultimate Rotoscopy", "execute": cancel_all},
    ]}]
