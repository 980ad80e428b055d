"""A hand-written, stateful stand-in for Nuke's ``nuke`` module (only what the adapter uses).

Installed as ``sys.modules["nuke"]`` by the Nuke host tests. Unlike a MagicMock it refuses what
Nuke refuses: an unknown knob raises ``NameError``, an unknown node class ``RuntimeError``, and
touching the node graph, knobs or ``nuke.message`` from a thread other than the main one (outside
``executeInMainThread*``) raises ``RuntimeError``, as real Nuke would crash or misbehave.
``executeInMainThread*`` queue work that runs when the test (the "UI loop") calls
:func:`process_events`, so an adapter that blocks the UI thread waiting for its job deadlocks here
as it would in Nuke.

The ``RotoAI`` gizmo is built from the real ``gizmos/RotoAI.gizmo`` found on the plugin path
(:func:`pluginAddPath`), and :func:`press` runs a button's script the way Nuke does, with
``nuke.thisNode()`` set: the test clicks exactly what the artist clicks.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import threading
from pathlib import Path

# --- state -------------------------------------------------------------------------------------

_state: dict = {}
_local = threading.local()


def reset(script: str = "Root", frame: int = 1001) -> None:
    """A fresh, empty script."""
    _state.clear()
    _state.update(nodes=[], counters={}, messages=[], progress=[], plugin_path=[], menus={}, frame=frame,
                  queue=queue.Queue(), executed=[], pasted=[], deleted=[], this=None)
    _state["root"] = Node("Root", {"name": String_Knob("name", script), "first_frame": Int_Knob("first_frame", 1),
                                   "last_frame": Int_Knob("last_frame", 100)}, register=False)


def _require_main(what: str) -> None:
    if threading.current_thread() is not threading.main_thread() and not getattr(_local, "in_main", False):
        raise RuntimeError(f"fake nuke: {what} called from a background thread; Nuke needs the main thread "
                           f"(use nuke.executeInMainThread)")


# --- knobs ---------------------------------------------------------------------------------------


class Knob:
    def __init__(self, name: str, value=None, label: str = "", script: str | None = None, **_):
        self._name = name
        self._value = self._coerce(value) if value is not None else self.default()
        self.label = label
        self.script = script

    def default(self):
        return ""

    def _coerce(self, v):
        return v

    def name(self) -> str:
        return self._name

    def value(self):
        return self._value

    def setValue(self, v) -> bool:  # noqa: N802 - Nuke's name
        _require_main(f"knob {self._name}.setValue")
        self._value = self._coerce(v)
        return True

    def getValue(self):  # noqa: N802
        return self._value


class String_Knob(Knob):  # noqa: N801
    def _coerce(self, v):
        return str(v)


class File_Knob(String_Knob):  # noqa: N801
    pass


class Text_Knob(String_Knob):  # noqa: N801
    pass


class Tab_Knob(String_Knob):  # noqa: N801
    pass


class Int_Knob(Knob):  # noqa: N801
    def default(self):
        return 0

    def _coerce(self, v):
        if isinstance(v, str):
            v = float(v)
        if isinstance(v, float) and v != int(v):
            raise TypeError(f"fake nuke: {self._name} takes an integer, not {v}")
        return int(v)


class Double_Knob(Knob):  # noqa: N801
    def default(self):
        return 0.0

    def _coerce(self, v):
        return float(v)


class Boolean_Knob(Knob):  # noqa: N801
    def default(self):
        return False

    def _coerce(self, v):
        if isinstance(v, str):
            return v.strip().lower() in ("true", "1", "yes")
        return bool(v)


class Enumeration_Knob(Knob):  # noqa: N801
    def __init__(self, name, value=None, values=(), **kw):
        self.values = list(values)
        super().__init__(name, value, **kw)

    def default(self):
        return self.values[0] if self.values else ""

    def _coerce(self, v):
        if self.values and v not in self.values:
            raise ValueError(f"fake nuke: {self._name} is one of {self.values}, not {v!r}")
        return v


class XY_Knob(Knob):  # noqa: N801
    def default(self):
        return [0.0, 0.0]

    def _coerce(self, v):
        if isinstance(v, str):
            v = v.strip("{} ").split()
        x, y = (float(a) for a in v)
        return [x, y]

    def value(self, index: int | None = None):
        return list(self._value) if index is None else self._value[index]


class BBox_Knob(Knob):  # noqa: N801
    def default(self):
        return [0.0, 0.0, 0.0, 0.0]

    def _coerce(self, v):
        if isinstance(v, str):
            v = v.strip("{} ").split()
        vals = [float(a) for a in v]
        if len(vals) != 4:
            raise ValueError("fake nuke: a BBox_Knob holds x y r t")
        return vals

    def value(self, index: int | None = None):
        return list(self._value) if index is None else self._value[index]

    def x(self):
        return self._value[0]

    def y(self):
        return self._value[1]

    def r(self):
        return self._value[2]

    def t(self):
        return self._value[3]


class PyScript_Knob(Knob):  # noqa: N801
    def execute(self):
        _require_main(f"button {self._name}")
        return _run_script(self.script or "", self._node)


KNOB_TYPES = {1: String_Knob, 2: File_Knob, 3: Int_Knob, 4: Enumeration_Knob, 6: Boolean_Knob, 7: Double_Knob,
              12: XY_Knob, 15: BBox_Knob, 20: Tab_Knob, 22: PyScript_Knob, 26: Text_Knob}


# --- nodes ---------------------------------------------------------------------------------------


class Node:
    def __init__(self, cls: str, knobs: dict, *, inputs: int = 1, register: bool = True):
        self._class = cls
        self._knobs = dict(knobs)
        for k in self._knobs.values():
            k._node = self
        self._inputs = [None] * inputs
        self._x = self._y = 0
        self._size: tuple[int, int] | None = None
        if register:
            n = _state["counters"].get(cls, 0) + 1
            _state["counters"][cls] = n
            self._name = f"{cls}{n}"
            _state["nodes"].append(self)
        else:
            self._name = cls

    def __repr__(self) -> str:
        return f"<fake nuke {self._class} {self._name}>"

    def Class(self) -> str:  # noqa: N802
        return self._class

    def name(self) -> str:
        if self._class == "Root":
            return self._knobs["name"].value()
        return self._name

    def fullName(self) -> str:  # noqa: N802
        return self.name()

    def setName(self, name: str) -> None:  # noqa: N802
        _require_main("node.setName")
        if any(n is not self and n._name == name for n in _state["nodes"]):
            raise ValueError(f"fake nuke: a node named {name} exists")
        self._name = name

    def knob(self, name: str):
        return self._knobs.get(name)

    def knobs(self) -> dict:
        return dict(self._knobs)

    def __getitem__(self, name: str):
        if name not in self._knobs:
            raise NameError(f"knob {name} does not exist")
        return self._knobs[name]

    def addKnob(self, knob: Knob) -> None:  # noqa: N802
        _require_main("node.addKnob")
        knob._node = self
        self._knobs[knob.name()] = knob

    def input(self, i: int):
        return self._inputs[i] if 0 <= i < len(self._inputs) else None

    def inputs(self) -> int:
        return sum(1 for n in self._inputs if n is not None)

    def setInput(self, i: int, node) -> bool:  # noqa: N802
        _require_main("node.setInput")
        if i >= len(self._inputs):
            self._inputs.extend([None] * (i + 1 - len(self._inputs)))
        self._inputs[i] = node
        return True

    def dependent(self) -> list:
        return [n for n in _state["nodes"] if self in n._inputs]

    def xpos(self) -> int:
        return self._x

    def ypos(self) -> int:
        return self._y

    def setXYpos(self, x: int, y: int) -> None:  # noqa: N802
        _require_main("node.setXYpos")
        self._x, self._y = int(x), int(y)

    def width(self) -> int:
        if self._size:
            return self._size[0]
        return self.input(0).width() if self.input(0) is not None else 0

    def height(self) -> int:
        if self._size:
            return self._size[1]
        return self.input(0).height() if self.input(0) is not None else 0

    def firstFrame(self) -> int:  # noqa: N802
        if self._class == "Read":
            return self["first"].value()
        return self.input(0).firstFrame() if self.input(0) is not None else 1

    def lastFrame(self) -> int:  # noqa: N802
        if self._class == "Read":
            return self["last"].value()
        return self.input(0).lastFrame() if self.input(0) is not None else 1


def _read_knobs(**values) -> dict:
    knobs = {"file": File_Knob("file"), "first": Int_Knob("first", 1), "last": Int_Knob("last", 1),
             "origfirst": Int_Knob("origfirst", 1), "origlast": Int_Knob("origlast", 1),
             "colorspace": String_Knob("colorspace", "default (linear)"), "raw": Boolean_Knob("raw"),
             "on_error": Enumeration_Knob("on_error", values=["error", "black", "checkerboard", "nearest frame"]),
             "reload": PyScript_Knob("reload")}
    return knobs


_CLASSES = {
    "Read": lambda: (_read_knobs(), 0),
    "Write": lambda: ({"file": File_Knob("file"), "file_type": String_Knob("file_type"),
                       "channels": String_Knob("channels", "rgb")}, 1),
    "Cryptomatte": lambda: ({"cryptoLayer": String_Knob("cryptoLayer"), "matteList": String_Knob("matteList")}, 1),
    "Dot": lambda: ({}, 1),
    "NoOp": lambda: ({}, 1),
    "Grade": lambda: ({"white": Double_Knob("white", 1.0)}, 1),
    "Roto": lambda: ({"curves": String_Knob("curves")}, 1),
}


def _make(cls: str, **knob_values) -> Node:
    _require_main(f"creating a {cls} node")
    if cls in _CLASSES:
        knobs, inputs = _CLASSES[cls]()
    else:
        gizmo = _find_gizmo(cls)
        if gizmo is None:
            raise RuntimeError(f"{cls} is not a valid node class (no plug-in or gizmo of that name on the plugin path)")
        knobs, inputs = _gizmo_knobs(gizmo), 1
    node = Node(cls, knobs, inputs=inputs)
    for k, v in knob_values.items():
        node[k].setValue(v)
    return node


class _Nodes:
    def __getattr__(self, cls: str):
        if cls.startswith("_"):
            raise AttributeError(cls)
        return lambda **kw: _make(cls, **kw)


nodes = _Nodes()


def createNode(cls: str, args: str = "", inpanel: bool = True):  # noqa: N802
    node = _make(cls)
    sel = [n for n in _state["nodes"] if getattr(n, "_selected", False)]
    if sel and node._inputs:
        node.setInput(0, sel[-1])
    return node


def toNode(name: str):  # noqa: N802
    for n in _state["nodes"]:
        if n._name == name:
            return n
    return None


def allNodes(filter: str | None = None, group=None, recurseGroups: bool = False) -> list:  # noqa: N802, A002
    if group is not None and group is not _state["root"]:
        raise RuntimeError("fake nuke: only the root group exists")
    return [n for n in _state["nodes"] if filter is None or n._class == filter]


# --- scripts: save, open, copy/paste (what persists is what Nuke writes to a .nk) ----------------


def _snapshot(node: Node) -> dict:
    return {"class": node._class, "name": node._name, "xy": [node._x, node._y], "size": node._size,
            "knobs": {k: v.value() for k, v in node._knobs.items() if not isinstance(v, PyScript_Knob)},
            "inputs": [i._name if i is not None else None for i in node._inputs]}


def scriptSaveAs(filename: str, overwrite: int = -1) -> None:  # noqa: N802
    """Write the script (the fake's own JSON, not .nk) and make it the root's name."""
    import json

    _require_main("nuke.scriptSaveAs")
    _state["root"]["name"].setValue(filename)
    Path(filename).write_text(json.dumps({"frame": _state["frame"], "nodes": [_snapshot(n) for n in _state["nodes"]]}))


def scriptClear() -> None:  # noqa: N802
    """Close the script: an empty, unsaved one (the plugin path and menus stay, as in a running Nuke)."""
    keep = {k: _state[k] for k in ("plugin_path", "menus")}
    reset()
    _state.update(keep)


def scriptOpen(filename: str) -> None:  # noqa: N802
    """Open a script written by :func:`scriptSaveAs`: the nodes come back with their saved knob values
    (a gizmo's knobs are rebuilt from the .gizmo on the plugin path, as Nuke does)."""
    import json

    scriptClear()
    data = json.loads(Path(filename).read_text())
    _state["root"]["name"].setValue(filename)
    _state["frame"] = data["frame"]
    made = {}
    for snap in data["nodes"]:
        node = _make(snap["class"])
        node._name, (node._x, node._y) = snap["name"], snap["xy"]
        node._size = tuple(snap["size"]) if snap["size"] else None
        for k, v in snap["knobs"].items():
            if node.knob(k) is not None:
                node[k].setValue(v)
        made[node._name] = (node, snap["inputs"])
    for node, inputs in made.values():
        for i, name in enumerate(inputs):
            if name is not None:
                node.setInput(i, made[name][0])


def copy_paste(node: Node) -> Node:
    """What Edit > Copy then Edit > Paste of ``node`` gives (test helper): every knob value copied,
    hidden ones included, the same inputs, and a new name when the original's is taken."""
    snap = _snapshot(node)
    new = _make(snap["class"])
    for k, v in snap["knobs"].items():
        new[k].setValue(v)
    for i, n in enumerate(node._inputs):
        if n is not None:
            new.setInput(i, n)
    return new


def delete(node: Node) -> None:
    _require_main("nuke.delete")
    _state["nodes"].remove(node)
    _state["deleted"].append(node._name)
    for n in _state["nodes"]:
        n._inputs = [None if i is node else i for i in n._inputs]


def root() -> Node:
    return _state["root"]


def frame(f: int | None = None) -> int:
    if f is not None:
        _state["frame"] = int(f)
    return _state["frame"]


def filename(node: Node) -> str:
    """The Read's file with ``####`` written as ``%04d`` (what Nuke returns)."""
    path = node["file"].value()
    return re.sub(r"#+", lambda m: f"%0{len(m.group(0))}d", path)


def message(text: str) -> None:
    _require_main("nuke.message")
    _state["messages"].append(text)


def execute(node: Node, first: int, last: int, incr: int = 1) -> None:
    """Render a Write: the fake copies the frames of the nearest upstream Read (same extension)."""
    _require_main("nuke.execute")
    if node.Class() != "Write":
        raise RuntimeError(f"fake nuke: cannot execute a {node.Class()}")
    src = node.input(0)
    while src is not None and src.Class() != "Read":
        src = src.input(0)
    if src is None:
        raise RuntimeError("fake nuke: nothing to render (no Read upstream)")
    for f in range(first, last + 1, incr):
        target = Path(_frame(node["file"].value(), f))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_frame(src["file"].value(), f), target)
    _state["executed"].append((node._name, first, last))


def _frame(pattern: str, f: int) -> str:
    m = re.search(r"#+", pattern)
    if m:
        return pattern[:m.start()] + str(f).zfill(len(m.group(0))) + pattern[m.end():]
    return re.sub(r"%0(\d)d", lambda mm: str(f).zfill(int(mm.group(1))), pattern)


def nodePaste(path: str):  # noqa: N802
    _require_main("nuke.nodePaste")
    if not os.path.isfile(path):
        raise RuntimeError(f"fake nuke: cannot paste {path}: no such file")
    _state["pasted"].append(path)
    return _make("Roto")


# --- threads -------------------------------------------------------------------------------------


def executeInMainThread(fn, args=(), kwargs=None) -> None:  # noqa: N802
    if not isinstance(args, tuple):
        args = (args,)
    _state["queue"].put((fn, args, kwargs or {}, None))


def executeInMainThreadWithResult(fn, args=(), kwargs=None):  # noqa: N802
    if not isinstance(args, tuple):
        args = (args,)
    if threading.current_thread() is threading.main_thread():
        return fn(*args, **(kwargs or {}))
    box: dict = {"done": threading.Event()}
    _state["queue"].put((fn, args, kwargs or {}, box))
    if not box["done"].wait(60):
        raise RuntimeError("fake nuke: the main thread never ran the call (is the UI thread blocked?)")
    if "error" in box:
        raise box["error"]
    return box.get("result")


def process_events(max_items: int = 1000) -> int:
    """The UI loop: run what background threads queued for the main thread (test helper)."""
    assert threading.current_thread() is threading.main_thread()
    n = 0
    q = _state["queue"]
    while n < max_items:
        try:
            fn, args, kwargs, box = q.get_nowait()
        except queue.Empty:
            break
        _local.in_main = True
        try:
            result = fn(*args, **kwargs)
            if box is not None:
                box["result"] = result
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller, as Nuke does
            if box is None:
                raise
            box["error"] = exc
        finally:
            _local.in_main = False
            if box is not None:
                box["done"].set()
        n += 1
    return n


class ProgressTask:
    """Nuke's progress bar (usable from any thread); ``cancel()`` is the test's Cancel click."""

    def __init__(self, title: str):
        self.title = title
        self.values: list[int] = []
        self.messages: list[str] = []
        self._cancelled = False
        _state["progress"].append(self)

    def setProgress(self, value: int) -> None:  # noqa: N802
        if not isinstance(value, int) or not 0 <= value <= 100:
            raise ValueError(f"fake nuke: progress is an int 0..100, not {value!r}")
        self.values.append(value)

    def setMessage(self, text: str) -> None:  # noqa: N802
        self.messages.append(str(text))

    def isCancelled(self) -> bool:  # noqa: N802
        return self._cancelled

    def cancel(self) -> None:
        self._cancelled = True


# --- plugin path, menus, gizmos -------------------------------------------------------------------


def pluginAddPath(path: str) -> None:  # noqa: N802
    import sys

    path = os.path.normpath(os.path.abspath(path))
    if path not in _state["plugin_path"]:
        _state["plugin_path"].insert(0, path)
    if path not in sys.path:
        sys.path.insert(0, path)


def pluginPath() -> list:  # noqa: N802
    return list(_state["plugin_path"])


class Menu:
    def __init__(self, name: str):
        self.name = name
        self.items: dict = {}

    def addMenu(self, name: str, **_):  # noqa: N802
        return self.items.setdefault(name, Menu(name))

    def addCommand(self, name: str, command="", shortcut: str = "", **_):  # noqa: N802
        self.items[name] = command
        return command

    def findItem(self, name: str):  # noqa: N802
        return self.items.get(name)


def menu(name: str) -> Menu:
    if name not in ("Nuke", "Nodes", "Pane", "Viewer", "Node Graph", "Properties", "Animation"):
        raise RuntimeError(f"fake nuke: there is no menu {name!r}")
    return _state["menus"].setdefault(name, Menu(name))


def thisNode():  # noqa: N802
    node = getattr(_local, "this", None)
    if node is None:
        raise RuntimeError("fake nuke: thisNode() outside a knob callback")
    return node


def _run_script(script: str, node: Node):
    import sys

    previous = getattr(_local, "this", None)
    _local.this = node
    try:
        namespace = {"nuke": sys.modules["nuke"]}
        exec(script, namespace)  # noqa: S102 - what Nuke does with a PyScript_Knob
        return namespace
    finally:
        _local.this = previous


def press(node: Node, knob: str):
    """Click a button knob (test helper); returns the script's namespace."""
    return node[knob].execute()


def _find_gizmo(cls: str) -> Path | None:
    for d in _state["plugin_path"]:
        p = Path(d) / f"{cls}.gizmo"
        if p.is_file():
            return p
    return None


def _words(text: str) -> list[str]:
    """Split TCL-ish words: braces and double quotes group."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c == "{":
            depth, j = 1, i + 1
            while j < n and depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            out.append(text[i + 1:j - 1])
            i = j
        elif c == '"':
            j, buf = i + 1, []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(text[j])
                j += 1
            out.append("".join(buf))
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace():
                j += 1
            out.append(text[i:j])
            i = j
    return out


def parse_gizmo(path: Path) -> tuple[list[dict], dict]:
    """``(knob specs, default values)`` of a .gizmo's top-level ``addUserKnob`` lines."""
    specs, defaults, in_gizmo = [], {}, False
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        s = line.strip()
        if s.startswith("Gizmo {"):
            in_gizmo = True
            continue
        if not in_gizmo:
            continue
        if s == "}":
            break
        if s.startswith("addUserKnob {"):
            w = _words(s[len("addUserKnob"):].strip())[0]
            words = _words(w)
            spec = {"type": int(words[0]), "name": words[1], "label": "", "script": None, "flags": []}
            k = 2
            while k < len(words):
                if words[k] == "l":
                    spec["label"] = words[k + 1]
                    k += 2
                elif words[k] == "T":
                    spec["script"] = words[k + 1]
                    k += 2
                elif words[k] == "t":
                    k += 2
                else:
                    spec["flags"].append(words[k])
                    k += 1
            if spec["type"] not in KNOB_TYPES:
                raise ValueError(f"fake nuke: unknown knob type {spec['type']} in {path}")
            specs.append(spec)
        elif s and not s.startswith("#"):
            words = _words(s)
            defaults[words[0]] = words[1] if len(words) == 2 else words[1:]
    return specs, defaults


def _gizmo_knobs(path: Path) -> dict:
    specs, defaults = parse_gizmo(path)
    knobs = {}
    for spec in specs:
        cls = KNOB_TYPES[spec["type"]]
        value = defaults.get(spec["name"])
        knobs[spec["name"]] = cls(spec["name"], value, label=spec["label"], script=spec["script"])
    return knobs


reset()
