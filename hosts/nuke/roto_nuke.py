"""Ultimate Rotoscopy for Nuke: the RotoAI gizmo's buttons and the adapter behind them.

Standard library + ``nuke`` only (Python 3.7+); the engine runs in its own process (``roto
serve``) and is reached through the stdlib client. Buttons return at once: the job runs in a
background thread, shows progress in Nuke's progress bar (with Cancel), and comes back to the
main thread (``nuke.executeInMainThreadWithResult``) to read knobs and to create nodes. Nothing
raises into Nuke: problems are shown with ``nuke.message``.

Conventions handled here, once: Nuke's y axis points up (the engine's down), so a point at Nuke
``(x, y)`` is engine ``(x, height - y)``; frames are the Read's frame numbers.
"""

import os
import threading

import nuke
import roto_host

HERE = os.path.dirname(os.path.abspath(__file__))
POINTS = (("p1", 1), ("p2", 1), ("p3", 1), ("p4", 1), ("n1", 0), ("n2", 0), ("n3", 0))
PASS_THROUGH = ("Dot", "NoOp", "Input")


def _main_thread():
    return threading.current_thread() is threading.main_thread()


def upstream_read(node):
    """The Read feeding ``node`` directly or through Dots/NoOps, else None (then the input is rendered)."""
    n = node.input(0)
    seen = 0
    while n is not None and seen < 100:
        if n.Class() == "Read":
            return n
        if n.Class() not in PASS_THROUGH:
            return None
        n = n.input(0)
        seen += 1
    return None


ID_KNOB, OWNER_KNOB = "roto_id", "roto_id_node"  # hidden knobs of the RotoAI gizmo


def _all_nodes():
    try:
        return nuke.allNodes(group=nuke.root(), recurseGroups=True)
    except TypeError:
        return nuke.allNodes()


def node_id(node):
    """The node's own id (main thread): a uuid made on its first use and kept in the hidden
    ``roto_id`` knob, so it is saved with the script and survives save/reopen and Save As. A copy
    pasted into the same script carries its original's id; it gets a fresh one on its first use
    (see :func:`roto_host.own_id`), so it starts its own session."""
    if node.knob(ID_KNOB) is None:  # not a RotoAI gizmo: nothing to keep an id in
        return "node-" + node.fullName()
    name = node.fullName()
    others = [(n[ID_KNOB].value(), str(n[OWNER_KNOB].value()), n.fullName())
              for n in _all_nodes() if n is not node and n.knob(ID_KNOB) is not None and n.knob(OWNER_KNOB) is not None]
    uid = roto_host.own_id(node[ID_KNOB].value(), name, others)
    if uid != str(node[ID_KNOB].value()):
        node[ID_KNOB].setValue(uid)
    if str(node[OWNER_KNOB].value()) != name:
        node[OWNER_KNOB].setValue(name)
    return uid


def _colourspace(read):
    try:
        value = str(read["colorspace"].value())
    except NameError:
        return None
    if not value or value.startswith("default"):
        return None  # Nuke's default: let the engine infer it from the file
    return value


class NukeHost(roto_host.HostAdapter):
    name = "nuke"
    adapter_dir = HERE

    def __init__(self):
        self._tasks = {}

    # --- what goes to the engine (main thread) --------------------------------------------

    def source(self, node):
        if node.input(0) is None:
            raise roto_host.HostProblem("Connect the plate (a Read) to %s's input first." % node.name())
        read = upstream_read(node)
        uid = node_id(node)
        if read is not None:
            path = nuke.filename(read)
            return {"path": path, "first": int(read["first"].value()), "last": int(read["last"].value()),
                    "colourspace": _colourspace(read), "key": roto_host.session_key("nuke", uid, path),
                    "shot": node.name()}
        return self._render_input(node, uid)

    def _render_input(self, node, uid):
        """A non-Read input: render it once to a temporary EXR sequence (reused while it is there)."""
        src = node.input(0)
        first, last = int(src.firstFrame()), int(src.lastFrame())
        folder = os.path.join(self.output_dir(node, None), "input")
        pattern = os.path.join(folder, "%s_input.####.exr" % node.name())  # the folder is the node's own
        if not all(os.path.isfile(roto_host.frame_path(pattern, f)) for f in range(first, last + 1)):
            if not os.path.isdir(folder):
                os.makedirs(folder)
            write = nuke.nodes.Write(file=pattern.replace(os.sep, "/"), file_type="exr", channels="rgb")
            try:
                write.setInput(0, src)
                nuke.execute(write, first, last)
            finally:
                nuke.delete(write)
        return {"path": pattern, "first": first, "last": last, "colourspace": None,
                "key": roto_host.session_key("nuke", uid, pattern), "shot": node.name(),
                "rendered": True}

    def prompts(self, node, session):
        height = float(session["height"])
        frame = int(node["keyframe"].value())
        if frame == 0:
            frame = int(nuke.frame())
            node["keyframe"].setValue(frame)
        points = []
        for name, label in POINTS:
            if node[name + "_on"].value():
                x, y = node[name].value()
                points.append((float(x), height - float(y), label))
        box = None
        if node["box_on"].value():
            x, y, r, t = node["box"].value()
            box = (float(x), height - float(t), float(r), height - float(y))
        if not points and box is None:
            raise roto_host.HostProblem("Turn on at least one + point or the box on %s, on the object, then track." % node.name())
        obj = str(node["object"].value()).strip() or "matte"
        return [{"object": obj, "frame": frame, "points": points, "box": box}]

    def output_dir(self, node, source):
        out = str(node["output"].value()).strip()
        if out:
            return os.path.abspath(os.path.expanduser(out))
        script = nuke.root().name()
        if script and script != "Root":
            base = os.path.dirname(script)
        elif source and source.get("path") and not source.get("rendered"):
            base = os.path.dirname(source["path"])
        else:
            base = os.path.join(os.path.expanduser("~"), "roto")
        # the node's id in the name: two scripts' RotoAI1 (unsaved, or side by side) never write into one folder
        return os.path.join(base, "roto", roto_host.folder_name(node.name(), node_id(node)))

    # --- feedback -------------------------------------------------------------------------

    def progress(self, node, fraction, text):
        name = node.fullName()
        task = self._tasks.get(name)
        if fraction >= 1.0:
            if task is not None:
                del self._tasks[name]
            return
        if task is None:
            task = self._tasks[name] = nuke.ProgressTask("Ultimate Rotoscopy: %s" % node.name())
        task.setProgress(int(round(fraction * 100)))
        task.setMessage(text)

    def cancelled(self, node):
        task = self._tasks.get(node.fullName())
        return bool(task is not None and task.isCancelled())

    def message(self, text, error=False):
        nuke.message(("Ultimate Rotoscopy: " if error else "") + text)

    def call_in_main(self, fn, *args):
        if _main_thread():
            return fn(*args)
        return nuke.executeInMainThreadWithResult(fn, args)

    # --- results (main thread) ------------------------------------------------------------

    def import_mattes(self, node, mattes):
        read = None
        name = str(node["matte_read"].value())
        if name:
            read = nuke.toNode(name)
        if read is None:
            read = nuke.nodes.Read()
            read.setName(node.name() + "_mattes")
            read.setXYpos(node.xpos() + 150, node.ypos())
            node["matte_read"].setValue(read.name())
        read["file"].setValue(mattes["pattern"].replace(os.sep, "/"))
        for knob in ("first", "origfirst"):
            read[knob].setValue(int(mattes["first"]))
        for knob in ("last", "origlast"):
            read[knob].setValue(int(mattes["last"]))
        read["raw"].setValue(True)  # mattes and ids are data: no colour conversion
        read["on_error"].setValue("black")
        read["reload"].execute()  # the files may have been rewritten (a re-track, soft alpha)
        crypto = None
        if mattes.get("crypto_layer"):
            crypto = nuke.toNode(node.name() + "_crypto")
            if crypto is None:
                try:
                    crypto = nuke.nodes.Cryptomatte()
                except Exception:  # Nuke before 12 has no native Cryptomatte node
                    crypto = None
                else:
                    crypto.setName(node.name() + "_crypto")
                    crypto.setXYpos(read.xpos(), read.ypos() + 120)
            if crypto is not None:
                crypto.setInput(0, read)
                crypto["cryptoLayer"].setValue(mattes["crypto_layer"])
                crypto["matteList"].setValue(", ".join(mattes.get("objects") or []))
        return {"read": read.name(), "cryptomatte": crypto.name() if crypto is not None else None}

    def import_shapes(self, node, shapes):
        path = (shapes.get("files") or {}).get("nuke")
        if not path:
            raise roto_host.HostProblem("The engine made no Nuke shapes for %s." % node.name())
        nuke.nodePaste(path)
        return {"pasted": path}


HOST = NukeHost()


def _start(node, action):
    try:
        return roto_host.run_action(HOST, node, action, key=node.fullName())
    except Exception as exc:  # never raise into Nuke
        nuke.message("Ultimate Rotoscopy: %s" % exc)
        return None


# --- gizmo buttons (one-line calls from gizmos/RotoAI.gizmo) -------------------------------


def track(node, direction="both"):
    return _start(node, "track_" + direction)


def matte(node):
    return _start(node, "matte")


def depth(node):
    return _start(node, "depth")


def shapes(node):
    return _start(node, "shapes")


def qc(node):
    return _start(node, "qc")


def undo(node):
    return _start(node, "undo")


def redo(node):
    return _start(node, "redo")


def cancel(node):
    return _start(node, "cancel")


# --- menus ---------------------------------------------------------------------------------


def install_menu():
    nodes = nuke.menu("Nodes").addMenu("Ultimate Rotoscopy")
    nodes.addCommand("RotoAI", "nuke.createNode('RotoAI')")
    main = nuke.menu("Nuke").addMenu("Ultimate Rotoscopy")
    main.addCommand("Create RotoAI", "nuke.createNode('RotoAI')")
    main.addCommand("Engine status", "import roto_nuke; roto_nuke.status()")


def status():
    """Show whether the engine runs and what it offers (menu: Ultimate Rotoscopy > Engine status)."""
    try:
        client = roto_host.make_client(HOST)
        client.autostart = False
        caps = client.capabilities()
        lines = ["Engine %s at %s" % (caps.get("version"), client.url)]
        for k in caps.get("job_kinds", []):
            lines.append("%s: %s" % (k["title"], "available" if k["available"] else k["reason"]))
        nuke.message("\n".join(lines))
    except Exception as exc:
        nuke.message(getattr(exc, "text", None) or str(exc))
    return None
