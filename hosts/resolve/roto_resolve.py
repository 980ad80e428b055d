"""Ultimate Rotoscopy for DaVinci Resolve (Fusion page): menu scripts and the adapter behind them.

Standard library + the Resolve/Fusion scripting objects only, Python 3.7+. Scripts run in
Resolve's own script process, so the job runs in the script's thread without freezing Resolve.

How the artist works (Fusion page): select the plate's **Loader** or **MediaIn** together with
the prompt tools, then run *Workspace > Scripts > Ultimate Rotoscopy > Track Both* (or another
entry). Prompts are Fusion's own viewer-draggable masks, on the current frame:

* an **EllipseMask** = a point on the object at its centre (``Invert`` on = a background point);
* a **RectangleMask** = a box around the object.

The mattes come back as a Loader named ``<tool>_mattes`` beside the plate (one EXR layer per
object, Cryptomatte), or, with *Mattes to Media Pool*, as clip mattes of the current timeline
item's media. Fusion coordinates are normalised with the origin bottom-left: a centre ``(cx, cy)``
is plate pixel ``(cx * width, (1 - cy) * height)``; mask widths and heights are fractions of the
image width (``SIZE_REFERENCE``) — converted here, once.
"""

import os

import roto_host

HERE = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else os.getcwd()
SOURCE_TOOLS = ("Loader", "MediaIn")
#: Fusion mask Width/Height are fractions of this image dimension (checked against the fake;
#: verify on a real comp, see docs/hosts/resolve.md)
SIZE_REFERENCE = "width"


def _xy(value):
    """A Fusion point input as (x, y): Python sees a dict {1: x, 2: y[, 3: z]} or a sequence."""
    if isinstance(value, dict):
        return float(value.get(1, value.get(1.0, 0.5))), float(value.get(2, value.get(2.0, 0.5)))
    return float(value[0]), float(value[1])


def _tools(comp, selected):
    found = comp.GetToolList(selected) or {}
    return [found[k] for k in sorted(found)]


def _reg(tool):
    return tool.GetAttrs().get("TOOLS_RegID")


ID_DATA, OWNER_DATA = "RotoAI.id", "RotoAI.tool"  # the tool's custom data (saved with the comp)


def tool_id(comp, tool):
    """The tool's own id: Fusion has no persistent unique tool id, so a uuid is made on first use
    and kept in the tool's custom data (``SetData``), saved with the comp. A copy pasted into the
    same comp carries its original's data; it gets a fresh id on first use (``roto_host.own_id``)."""
    name = tool.GetAttrs()["TOOLS_Name"]
    others = [(t.GetData(ID_DATA), t.GetData(OWNER_DATA), t.GetAttrs()["TOOLS_Name"])
              for t in _tools(comp, False) if t is not tool and _reg(t) in SOURCE_TOOLS]
    current = tool.GetData(ID_DATA)
    uid = roto_host.own_id(current, name, others)
    if uid != current:
        tool.SetData(ID_DATA, uid)
    if tool.GetData(OWNER_DATA) != name:
        tool.SetData(OWNER_DATA, name)
    return uid


class ResolveHost(roto_host.HostAdapter):
    name = "resolve"
    adapter_dir = HERE

    def source(self, ctx):
        comp = ctx["comp"]
        tools = [t for t in _tools(comp, True) if _reg(t) in SOURCE_TOOLS]
        if not tools:
            raise roto_host.HostProblem("Select the plate's Loader or MediaIn (and your Ellipse/Rectangle prompt "
                                        "masks), then run the script again.")
        tool = tools[0]
        attrs = tool.GetAttrs()
        if attrs["TOOLS_RegID"] == "Loader":
            clips = attrs.get("TOOLST_Clip_Name") or {}
            path = clips.get(1) or clips.get(1.0) if isinstance(clips, dict) else (clips[0] if clips else None)
        else:
            path = (tool.GetData("MediaProps") or {}).get("MEDIA_PATH")
        if not path:
            raise roto_host.HostProblem("%s has no file to read." % attrs["TOOLS_Name"])
        ctx["tool"] = tool
        uid = tool_id(comp, tool)  # comp and tool names are Fusion's defaults on every clip: not a key
        return {"path": path, "key": roto_host.session_key("resolve", uid, path), "shot": attrs["TOOLS_Name"],
                "folder": roto_host.folder_name(attrs["TOOLS_Name"], uid)}

    def prompts(self, ctx, session):
        comp, tool = ctx["comp"], ctx["tool"]
        w, h = float(session["width"]), float(session["height"])
        ref = w if SIZE_REFERENCE == "width" else h
        now = comp.CurrentTime
        global_in = tool.GetInput("GlobalIn")
        lo, hi = session["range"]
        frame = int(lo + (now - (global_in if global_in is not None else 0)))
        frame = min(max(frame, lo), hi)
        points, box = [], None
        for t in _tools(comp, True):
            reg = _reg(t)
            if reg == "EllipseMask":
                cx, cy = _xy(t.GetInput("Center", now))
                label = 0 if t.GetInput("Invert", now) else 1
                points.append((cx * w, (1.0 - cy) * h, label))
            elif reg == "RectangleMask":
                cx, cy = _xy(t.GetInput("Center", now))
                bw, bh = float(t.GetInput("Width", now)) * ref, float(t.GetInput("Height", now)) * ref
                x, y = cx * w, (1.0 - cy) * h
                box = (x - bw / 2.0, y - bh / 2.0, x + bw / 2.0, y + bh / 2.0)
        if not any(p[2] == 1 for p in points) and box is None:
            raise roto_host.HostProblem("Select an Ellipse mask on the object (its centre is the click) or a "
                                        "Rectangle mask around it, together with the Loader.")
        return [{"object": ctx.get("object", "matte"), "frame": frame, "points": points, "box": box}]

    def output_dir(self, ctx, source):
        base = os.environ.get("ROTO_RESOLVE_OUTPUT")
        name = source.get("folder") or source.get("shot", "roto")
        if base:
            return os.path.join(os.path.expanduser(base), name)
        return os.path.join(os.path.dirname(source["path"]), "roto", name)

    def progress(self, ctx, fraction, text):
        if fraction < 1.0 and text:
            ctx["comp"].Print("Ultimate Rotoscopy: %s %d%%\n" % (text, int(fraction * 100)))

    def message(self, text, error=False):
        comp = self._comp
        line = ("Ultimate Rotoscopy: " + text + "\n")
        if comp is not None:
            comp.Print(line)
        else:
            print(line)

    _comp = None

    def import_mattes(self, ctx, mattes):
        comp, tool = ctx["comp"], ctx["tool"]
        first = roto_host.frame_path(mattes["pattern"], int(mattes["first"]))
        if ctx.get("mediapool"):
            return self._clip_mattes(ctx, first)
        name = tool.GetAttrs()["TOOLS_Name"] + "_mattes"
        comp.Lock()
        comp.StartUndo("Ultimate Rotoscopy mattes")
        try:
            loader = comp.FindTool(name)
            if loader is None:
                loader = comp.AddTool("Loader", -32768, -32768)
                loader.SetAttrs({"TOOLS_Name": name})
                flow = comp.CurrentFrame.FlowView
                x, y = _xy(flow.GetPosTable(tool))
                flow.SetPos(loader, x + 1, y)
            loader.SetInput("Clip", first)
        finally:
            comp.EndUndo(True)
            comp.Unlock()
        return {"loader": name, "path": first}

    def _clip_mattes(self, ctx, first):
        resolve = ctx.get("resolve")
        if resolve is None:
            raise roto_host.HostProblem("Adding clip mattes needs Resolve (not Fusion Studio).")
        timeline = resolve.GetProjectManager().GetCurrentProject().GetCurrentTimeline()
        item = timeline.GetCurrentVideoItem() if timeline else None
        media = item.GetMediaPoolItem() if item else None
        if media is None:
            raise roto_host.HostProblem("Put the playhead on the plate's clip in the timeline first.")
        if not resolve.GetMediaStorage().AddClipMattesToMediaPool(media, [first]):
            raise roto_host.HostProblem("Resolve refused the clip matte %s." % first)
        return {"clip_matte": first}

    def import_shapes(self, ctx, shapes):
        path = (shapes.get("files") or {}).get("fusion")
        if not path:
            raise roto_host.HostProblem("The engine made no Fusion shapes.")
        comp, bmd = ctx["comp"], ctx.get("bmd")
        if bmd is None:
            raise roto_host.HostProblem("Loading shapes needs Fusion's bmd module.")
        comp.Paste(bmd.readfile(path))
        return {"pasted": path}


HOST = ResolveHost()


def _environment(env):
    """``(resolve, fusion, comp, bmd)`` from the script's globals, else DaVinciResolveScript."""
    env = env or {}
    bmd = env.get("bmd")
    resolve = env.get("resolve")
    fusion = env.get("fusion") or env.get("fu")
    if resolve is None and bmd is not None and hasattr(bmd, "scriptapp"):
        resolve = bmd.scriptapp("Resolve")
    if resolve is None:
        try:
            import DaVinciResolveScript as dvr  # noqa: N813

            resolve = dvr.scriptapp("Resolve")
        except ImportError:
            resolve = None
    if fusion is None and resolve is not None:
        fusion = resolve.Fusion()
    comp = env.get("comp") or (fusion.GetCurrentComp() if fusion is not None else None)
    return resolve, fusion, comp, bmd


def main(action, env=None):
    """A menu script's body: ``roto_resolve.main("track_both", globals())``. Never raises."""
    resolve, fusion, comp, bmd = _environment(env)
    HOST._comp = comp
    if comp is None:
        print("Ultimate Rotoscopy: open a Fusion composition first.")
        return None
    ctx = {"comp": comp, "resolve": resolve, "bmd": bmd}
    if action == "mediapool":
        ctx["mediapool"] = True
        action = "track_both"
    try:
        return roto_host.run_action(HOST, ctx, action, background=False)
    except Exception as exc:
        return roto_host.fail(HOST, ctx, action, exc)
