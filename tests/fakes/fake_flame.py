"""A hand-written, stateful stand-in for Autodesk Flame's ``flame`` module (what the adapter uses).

Installed as ``sys.modules["flame"]`` by the Flame host tests. Like Flame, it only lets the main
thread touch the project (imports, exports, Batch nodes, messages); background work must go
through :func:`schedule_idle_event`, whose callbacks run when the test pumps :func:`process_events`.
Unknown attributes raise ``AttributeError`` (no MagicMock leniency). Sequences are written the way
Flame writes them: ``/path/plate.[1001-1008].exr``.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import threading
from pathlib import Path

_state: dict = {}
_local = threading.local()


def _require_main(what: str) -> None:
    if threading.current_thread() is not threading.main_thread() and not getattr(_local, "in_main", False):
        raise RuntimeError(f"fake flame: {what} called from a background thread; use flame.schedule_idle_event")


class PyAttribute:
    def __init__(self, value):
        self._value = value

    def get_value(self):
        return self._value

    def set_value(self, value) -> bool:
        _require_main("attribute.set_value")
        self._value = value
        return True

    def __str__(self) -> str:
        return str(self._value)

    def __eq__(self, other) -> bool:
        return self._value == (other._value if isinstance(other, PyAttribute) else other)

    __hash__ = None  # type: ignore[assignment]


class PyFlameObject:
    __slots__ = ()


class PyArchiveEntry(PyFlameObject):
    __slots__ = ("name", "parent")


class PySegment(PyFlameObject):
    __slots__ = ("file_path", "name")

    def __init__(self, file_path: str, name: str = "segment"):
        self.file_path = file_path
        self.name = PyAttribute(name)


class PyTrack(PyFlameObject):
    __slots__ = ("segments",)

    def __init__(self, segments):
        self.segments = list(segments)


class PyVersion(PyFlameObject):
    __slots__ = ("tracks",)

    def __init__(self, tracks):
        self.tracks = list(tracks)


class PyClip(PyArchiveEntry):
    __slots__ = ("versions", "start_frame", "width", "height", "_frames", "_wiretap_id")

    def __init__(self, name: str, file_path: str = "", *, parent=None, frames: str | None = None, first: int = 1001,
                 width: int = 64, height: int = 48):
        self.name = PyAttribute(name)
        self.parent = parent
        self.versions = [PyVersion([PyTrack([PySegment(file_path)])])]
        self.start_frame = first
        self.width, self.height = width, height
        self._frames = frames  # what an export of this clip renders (a #### pattern), for clips without a file
        _state["clips"] = _state.get("clips", 0) + 1
        self._wiretap_id = "/projects/fake_project/clip_%06d" % _state["clips"]

    def get_wiretap_node_id(self) -> str:
        """Unique in the project, but only for a clip in the Media Panel (in a reel), as Flame says."""
        return self._wiretap_id if isinstance(self.parent, PyReel) else ""


class PyReel(PyArchiveEntry):
    __slots__ = ("clips",)

    def __init__(self, name: str):
        self.name = PyAttribute(name)
        self.parent = None
        self.clips: list = []


class PyNode(PyFlameObject):
    __slots__ = ("name", "type", "setups")

    def __init__(self, name: str, type_: str):
        self.name = PyAttribute(name)
        self.type = type_
        self.setups: list = []

    def load_node_setup(self, path: str) -> bool:
        _require_main("node.load_node_setup")
        if not os.path.isfile(path):
            raise RuntimeError(f"fake flame: no setup at {path}")
        self.setups.append(path)
        return True


class PyClipNode(PyNode):
    __slots__ = ("clip",)

    def __init__(self, name: str, clip: PyClip):
        super().__init__(name, "Clip")
        self.clip = clip


NODE_TYPES = ("Clip", "GMask Tracer", "Action", "Comp", "Write File")


class PyBatch(PyFlameObject):
    __slots__ = ("reels", "nodes", "imported")

    def __init__(self):
        self.reels = [PyReel("Schematic Reel 1")]
        self.nodes: list = []
        self.imported: list = []

    def create_node(self, node_type: str, file_path: str = ""):
        _require_main("batch.create_node")
        if node_type not in NODE_TYPES:
            raise RuntimeError(f"fake flame: unknown node type {node_type!r}")
        node = PyNode(f"{node_type.lower().replace(' ', '_')}{len(self.nodes) + 1}", node_type)
        self.nodes.append(node)
        return node

    def import_clip(self, file_path: str, reel_name: str):
        _require_main("batch.import_clip")
        reel = next((r for r in self.reels if r.name == reel_name), None)
        if reel is None:
            raise RuntimeError(f"fake flame: no reel {reel_name!r} in Batch")
        clip = _clip_from_files(file_path, reel)
        node = PyClipNode(str(clip.name), clip)
        self.nodes.append(node)
        self.imported.append(file_path)
        return node


class _Project:
    name = "fake_project"


class _Projects:
    current_project = _Project()


projects = _Projects()


class _Messages:
    def show_in_dialog(self, title: str, message: str, type: str, buttons: list, cancel_button: str = ""):  # noqa: A002
        _require_main("messages.show_in_dialog")
        if type not in ("info", "error", "warning", "question"):
            raise ValueError(f"fake flame: bad dialog type {type!r}")
        _state["dialogs"].append({"title": title, "message": message, "type": type})
        return buttons[0] if buttons else None

    def show_in_console(self, message: str, type: str = "info", duration: int = -1):  # noqa: A002
        _require_main("messages.show_in_console")
        _state["console"].append(message)


messages = _Messages()


class PyExporter:
    """Exports a clip: the fake renders the clip's hidden frames as ``<name>.####.exr``."""

    def __init__(self):
        self.foreground = False
        self.export_between_marks = False

    def export(self, sources, preset_path: str, output_directory: str, background_job_settings=None, hooks=None):
        _require_main("PyExporter.export")
        if not str(preset_path).endswith(".xml"):
            raise RuntimeError(f"fake flame: {preset_path!r} is not an export preset")
        clip = sources if isinstance(sources, PyClip) else sources[0]
        if not clip._frames:
            raise RuntimeError("fake flame: nothing to export")
        for src in sorted(Path(clip._frames.split("#")[0]).parent.glob("*.exr")):
            m = re.search(r"\.(\d+)\.exr$", src.name)
            if m:
                shutil.copyfile(src, Path(output_directory) / f"{clip.name}.{m.group(1)}.exr")
        _state["exports"].append((str(clip.name), preset_path, output_directory))


batch = None  # set by reset()


def _clip_from_files(path: str, reel: PyReel) -> PyClip:
    m = re.search(r"\[(\d+)-(\d+)\]", path)
    if not m:
        raise RuntimeError(f"fake flame: {path} is not a sequence path like name.[1001-1010].exr")
    width = len(m.group(1))
    first, last = int(m.group(1)), int(m.group(2))
    for f in range(first, last + 1):
        p = path[:m.start()] + str(f).zfill(width) + path[m.end():]
        if not os.path.isfile(p):
            raise RuntimeError(f"fake flame: cannot import {path}: {p} is missing")
    name = os.path.basename(path[:m.start()]).rstrip("._") or "clip"
    clip = PyClip(name, path, parent=reel, first=first)
    reel.clips.append(clip)
    return clip


def import_clips(path, destination=None) -> list:
    _require_main("flame.import_clips")
    if not isinstance(destination, PyReel):
        raise RuntimeError("fake flame: import_clips needs a reel (or library) destination")
    paths = [path] if isinstance(path, str) else list(path)
    clips = [_clip_from_files(p, destination) for p in paths]
    _state["imported"].extend(paths)
    return clips


def schedule_idle_event(function, delay: int = 0) -> None:
    _state["queue"].put(function)


def process_events(max_items: int = 1000) -> int:
    """Flame's idle loop (test helper): run what background threads scheduled."""
    assert threading.current_thread() is threading.main_thread()
    n = 0
    while n < max_items:
        try:
            fn = _state["queue"].get_nowait()
        except queue.Empty:
            break
        _local.in_main = True
        try:
            fn()
        finally:
            _local.in_main = False
        n += 1
    return n


def reset() -> None:
    global batch
    _state.clear()
    _state.update(queue=queue.Queue(), dialogs=[], console=[], imported=[], exports=[])
    batch = PyBatch()


reset()
