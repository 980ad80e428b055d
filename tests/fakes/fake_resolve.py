"""A hand-written, stateful stand-in for the DaVinci Resolve / Fusion scripting objects.

What a Resolve script sees as globals (``resolve``, ``fusion``, ``comp``, ``bmd``), reduced to what
the adapter uses. Tools only have the inputs their real counterparts have (an unknown input raises
``AttributeError``), tool names are unique, undo blocks must balance, and ``comp.Print`` records
what the artist reads in the Console. Fusion conventions: points are ``{1: x, 2: y}`` normalised,
origin bottom-left; ``GetToolList`` answers ``{1: tool, 2: tool…}``.
"""

from __future__ import annotations

import os

INPUTS = {
    "Loader": {"Clip": "", "GlobalIn": 0.0, "GlobalOut": 0.0},
    "MediaIn": {"GlobalIn": 0.0, "GlobalOut": 0.0},
    "EllipseMask": {"Center": {1: 0.5, 2: 0.5}, "Width": 0.5, "Height": 0.5, "Invert": 0},
    "RectangleMask": {"Center": {1: 0.5, 2: 0.5}, "Width": 0.5, "Height": 0.5, "Invert": 0},
    "PolylineMask": {"Center": {1: 0.5, 2: 0.5}, "Invert": 0},
    "Merge": {"Blend": 1.0},
}


class Tool:
    def __init__(self, comp: Comp, reg: str, name: str):
        self._comp = comp
        self._reg = reg
        self._name = name
        self._inputs = {k: (dict(v) if isinstance(v, dict) else v) for k, v in INPUTS[reg].items()}
        self._data: dict = {}

    def __repr__(self) -> str:
        return f"<fake {self._reg} {self._name}>"

    def GetAttrs(self, key: str | None = None):  # noqa: N802
        attrs = {"TOOLS_RegID": self._reg, "TOOLS_Name": self._name}
        if self._reg == "Loader":
            attrs["TOOLST_Clip_Name"] = {1: self._inputs["Clip"]} if self._inputs["Clip"] else {}
        return attrs if key is None else attrs.get(key)

    def SetAttrs(self, attrs: dict) -> None:  # noqa: N802
        for k, v in attrs.items():
            if k != "TOOLS_Name":
                raise AttributeError(f"fake fusion: attribute {k} is read-only")
            if self._comp.FindTool(v) not in (None, self):
                raise ValueError(f"fake fusion: a tool named {v} exists")
            self._comp._tools[v] = self._comp._tools.pop(self._name)
            self._name = v

    def GetInput(self, name: str, time: float | None = None):  # noqa: N802
        if name not in self._inputs:
            raise AttributeError(f"fake fusion: {self._reg} has no input {name!r}")
        v = self._inputs[name]
        return dict(v) if isinstance(v, dict) else v

    def SetInput(self, name: str, value, time: float | None = None) -> None:  # noqa: N802
        if name not in self._inputs:
            raise AttributeError(f"fake fusion: {self._reg} has no input {name!r}")
        self._inputs[name] = value

    def GetData(self, key: str):  # noqa: N802
        return self._data.get(key)

    def SetData(self, key: str, value) -> None:  # noqa: N802
        self._data[key] = value


class FlowView:
    def __init__(self):
        self.pos: dict = {}

    def GetPosTable(self, tool: Tool) -> dict:  # noqa: N802
        x, y = self.pos.get(tool._name, (0.0, 0.0))
        return {1: x, 2: y}

    def SetPos(self, tool: Tool, x: float, y: float) -> None:  # noqa: N802
        self.pos[tool._name] = (float(x), float(y))


class _Frame:
    def __init__(self):
        self.FlowView = FlowView()


class Comp:
    def __init__(self, name: str = "Composition1"):
        self._name = name
        self._tools: dict[str, Tool] = {}
        self._selected: list[str] = []
        self.CurrentTime = 0.0
        self.CurrentFrame = _Frame()
        self.printed: list[str] = []
        self.pasted: list = []
        self._undo_depth = 0
        self._locked = 0
        self.undo_names: list[str] = []

    def GetAttrs(self, key: str | None = None):  # noqa: N802
        attrs = {"COMPS_Name": self._name, "COMPN_GlobalStart": 0.0, "COMPN_GlobalEnd": 1000.0}
        return attrs if key is None else attrs.get(key)

    def AddTool(self, reg: str, x: float = -32768, y: float = -32768) -> Tool:  # noqa: N802
        if reg not in INPUTS:
            raise AttributeError(f"fake fusion: unknown tool {reg!r}")
        n = 1
        while f"{reg}{n}" in self._tools:
            n += 1
        tool = Tool(self, reg, f"{reg}{n}")
        self._tools[tool._name] = tool
        return tool

    def FindTool(self, name: str):  # noqa: N802
        return self._tools.get(name)

    def GetToolList(self, selected: bool = False, reg: str | None = None) -> dict:  # noqa: N802
        names = [n for n in self._selected if n in self._tools] if selected else list(self._tools)
        tools = [self._tools[n] for n in names if reg is None or self._tools[n]._reg == reg]
        return {i + 1: t for i, t in enumerate(tools)}

    def select(self, *tools: Tool) -> None:
        """The artist's selection in the Flow (test helper)."""
        self._selected = [t._name for t in tools]

    def Lock(self) -> None:  # noqa: N802
        self._locked += 1

    def Unlock(self) -> None:  # noqa: N802
        if self._locked == 0:
            raise RuntimeError("fake fusion: Unlock without Lock")
        self._locked -= 1

    def StartUndo(self, name: str) -> None:  # noqa: N802
        self._undo_depth += 1
        self.undo_names.append(name)

    def EndUndo(self, keep: bool = True) -> None:  # noqa: N802
        if self._undo_depth == 0:
            raise RuntimeError("fake fusion: EndUndo without StartUndo")
        self._undo_depth -= 1

    def Print(self, text: str) -> None:  # noqa: N802
        self.printed.append(str(text))

    def Paste(self, settings) -> bool:  # noqa: N802
        if not isinstance(settings, dict):
            raise TypeError("fake fusion: Paste takes a settings table")
        self.pasted.append(settings)
        return True


class Fusion:
    def __init__(self, comp: Comp):
        self._comp = comp

    def GetCurrentComp(self) -> Comp:  # noqa: N802
        return self._comp


class Bmd:
    def readfile(self, path: str) -> dict:
        if not os.path.isfile(path):
            return None  # type: ignore[return-value]
        return {"Tools": {}, "_file": path}

    def scriptapp(self, name: str):
        raise RuntimeError("fake bmd: no running application in tests")


class MediaPoolItem:
    def __init__(self, path: str):
        self.path = path
        self.mattes: list[str] = []

    def GetClipProperty(self, key: str = ""):  # noqa: N802
        return {"File Path": self.path} if not key else {"File Path": self.path}.get(key)


class TimelineItem:
    def __init__(self, media: MediaPoolItem):
        self._media = media

    def GetMediaPoolItem(self) -> MediaPoolItem:  # noqa: N802
        return self._media


class Timeline:
    def __init__(self, item: TimelineItem | None):
        self._item = item

    def GetCurrentVideoItem(self):  # noqa: N802
        return self._item


class Project:
    def __init__(self, timeline: Timeline):
        self._timeline = timeline

    def GetCurrentTimeline(self):  # noqa: N802
        return self._timeline


class ProjectManager:
    def __init__(self, project: Project):
        self._project = project

    def GetCurrentProject(self) -> Project:  # noqa: N802
        return self._project


class MediaStorage:
    def AddClipMattesToMediaPool(self, item: MediaPoolItem, paths: list, stereo_eye: str = "") -> bool:  # noqa: N802
        if not isinstance(item, MediaPoolItem) or not isinstance(paths, list):
            raise TypeError("fake resolve: AddClipMattesToMediaPool(MediaPoolItem, [paths], stereoEye)")
        if not all(os.path.isfile(p) for p in paths):
            return False
        item.mattes.extend(paths)
        return True


class Resolve:
    def __init__(self, comp: Comp, media_path: str = ""):
        self.media = MediaPoolItem(media_path)
        self._pm = ProjectManager(Project(Timeline(TimelineItem(self.media))))
        self._storage = MediaStorage()
        self._fusion = Fusion(comp)

    def GetProjectManager(self) -> ProjectManager:  # noqa: N802
        return self._pm

    def GetMediaStorage(self) -> MediaStorage:  # noqa: N802
        return self._storage

    def Fusion(self) -> Fusion:  # noqa: N802
        return self._fusion


def script_globals(comp: Comp, media_path: str = "") -> dict:
    """The globals Resolve gives a Fusion-page script."""
    resolve = Resolve(comp, media_path)
    return {"resolve": resolve, "fusion": resolve.Fusion(), "comp": comp, "bmd": Bmd(), "__name__": "__main__"}
