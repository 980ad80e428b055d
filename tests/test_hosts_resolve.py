"""The Resolve/Fusion scripts and adapter against stateful fakes, the real client and a real server.

Each menu entry is the script ``roto install-host resolve`` generates from
``hosts/resolve/entry_template.py``, run with the globals Resolve gives a Fusion-page script.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.host_conformance import HostConformance, host_env  # noqa: F401
from tests.serverkit import (centre, fake_backends, isolated_config, plate, root, server,  # noqa: F401
                             wait_until)

REPO = Path(__file__).resolve().parents[1]


def entry_script(action: str) -> str:
    from engine.cli.cmd_install_host import resolve_entry

    return resolve_entry(REPO / "hosts" / "resolve", action)


@pytest.fixture
def fusion(monkeypatch):
    from tests.fakes import fake_resolve

    saved = list(sys.path)
    sys.modules.pop("roto_resolve", None)
    yield fake_resolve
    sys.modules.pop("roto_resolve", None)
    sys.path[:] = saved


class ResolveHarness:
    name = "resolve"
    key_part = "resolve:"

    def __init__(self, fake, monkeypatch):
        self.fake = fake
        self.monkeypatch = monkeypatch
        self.comp = fake.Comp()
        self.env = None
        self.threads: dict = {}
        for folder in ("resolve", "common"):  # what the generated entry script puts on sys.path
            sys.path.insert(0, str(REPO / "hosts" / folder))
        import roto_resolve

        self.adapter = roto_resolve.HOST

    def scene(self, pattern, out_dir):
        self.monkeypatch.setenv("ROTO_RESOLVE_OUTPUT", str(out_dir))
        loader = self.comp.AddTool("Loader")
        loader.SetInput("Clip", pattern.replace("####", "1001"))
        loader.SetInput("GlobalIn", 0.0)
        self.comp.CurrentFrame.FlowView.SetPos(loader, 3, 4)
        self.env = self.fake.script_globals(self.comp, pattern.replace("####", "1001"))
        self.comp.select(loader)
        return {"loader": loader, "prompts": []}

    def another_scene(self, pattern, out_dir):
        self.comp = self.fake.Comp()  # another clip's comp: Composition1 with Loader1 again
        return self.scene(pattern, out_dir)

    def place(self, ctx, frame, points, box, width=64, height=48):
        self.comp.CurrentTime = float(frame - 1001)  # the playhead, in comp time (GlobalIn 0 = plate 1001)
        masks = []
        for x, y, label in points:
            m = self.comp.AddTool("EllipseMask")
            m.SetInput("Center", {1: x / width, 2: 1.0 - y / height})
            m.SetInput("Invert", 0 if label else 1)
            masks.append(m)
        if box is not None:
            x0, y0, x1, y1 = box
            m = self.comp.AddTool("RectangleMask")
            m.SetInput("Center", {1: (x0 + x1) / 2 / width, 2: 1.0 - (y0 + y1) / 2 / height})
            m.SetInput("Width", (x1 - x0) / width)
            m.SetInput("Height", (y1 - y0) / width)  # Fusion sizes are fractions of the image width
            masks.append(m)
        self.comp.select(ctx["loader"], *masks)

    def run_script(self, action):
        exec(compile(entry_script(action), f"{action}.py", "exec"), dict(self.env))  # noqa: S102 - as Resolve does

    def start(self, ctx, action):
        import roto_host

        roto_host.Task.last = None
        t = threading.Thread(target=self.run_script, args=(action,), daemon=True)  # its own script process
        t.start()
        assert wait_until(lambda: roto_host.Task.last is not None or not t.is_alive(), 20)
        task = roto_host.Task.last
        self.threads[id(task)] = t
        return task

    def pump(self):
        return None

    def finish(self, task):
        t = self.threads.pop(id(task), None)
        if t is not None:
            t.join(60)

    def act(self, ctx, action):
        import roto_host

        roto_host.Task.last = None
        self.run_script(action)
        return roto_host.Task.last

    def cancel(self, ctx, task):
        self.run_script("cancel_jobs")  # the "Cancel" menu entry, a separate script
        return True

    def mattes(self):
        out = []
        for name, tool in self.comp._tools.items():
            if name.endswith("_mattes"):
                first_path = tool.GetInput("Clip")
                m = re.search(r"\.(\d+)\.exr$", first_path)
                pattern = first_path[:m.start()] + ".####.exr"
                frames = sorted(int(re.search(r"\.(\d+)\.exr$", p.name).group(1))
                                for p in Path(first_path).parent.glob("*.exr"))
                out.append({"pattern": pattern, "first": frames[0], "last": frames[-1], "tool": tool})
        return out

    def shapes(self):
        return [p["_file"] for p in self.comp.pasted]

    def messages(self):
        prefix = "Ultimate Rotoscopy: "
        lines = [p[len(prefix):].rstrip("\n") if p.startswith(prefix) else p for p in self.comp.printed]
        return [line for line in lines if not re.search(r" \d+%$", line)]  # progress lines are not messages


@pytest.fixture
def harness(fusion, monkeypatch):
    return ResolveHarness(fusion, monkeypatch)


class TestResolveConformance(HostConformance):
    pass


def test_the_matte_loader_sits_beside_the_plate_in_one_undo_step(harness, host_env, plate, root):
    pattern, sample = plate
    ctx = harness.scene(pattern, root / "out")
    harness.place(ctx, 1001, [(*centre(sample), 1)], (5, 5, 40, 30))
    task = harness.act(ctx, "track_both")
    assert task.error is None, harness.messages()
    (m,) = harness.mattes()
    assert m["tool"].GetAttrs("TOOLS_Name") == "Loader1_mattes"
    assert harness.comp.CurrentFrame.FlowView.pos["Loader1_mattes"] == (4.0, 4.0)
    assert harness.comp.undo_names == ["Ultimate Rotoscopy mattes"] and harness.comp._undo_depth == 0
    assert harness.comp._locked == 0
    s = next(h.session for h in host_env.engine.sessions.handles())
    (box,) = [p.data for p in s.data.prompts.values() if p.kind == "box"]
    assert box == pytest.approx({"x0": 5, "y0": 5, "x1": 40, "y1": 30})


def test_mattes_to_media_pool_adds_clip_mattes(harness, host_env, plate, root):
    pattern, sample = plate
    ctx = harness.scene(pattern, root / "out")
    harness.place(ctx, 1001, [(*centre(sample), 1)], None)
    harness.run_script("mediapool")
    media = harness.env["resolve"].media
    assert len(media.mattes) == 1 and Path(media.mattes[0]).is_file() and media.mattes[0].endswith(".1001.exr")
    assert harness.mattes() == []  # no Loader in this mode


def test_nothing_selected_is_explained(harness, host_env, plate, root):
    harness.scene(plate[0], root / "out")
    harness.comp.select()
    task = harness.act(None, "track_both")
    assert task.state == "failed" and "Select the plate's Loader or MediaIn" in harness.messages()[-1]
    loader = harness.comp.FindTool("Loader1")
    harness.comp.select(loader)  # a Loader but no prompt mask
    task = harness.act(None, "track_both")
    assert "Select an Ellipse mask" in harness.messages()[-1]


def test_a_mediain_is_read_from_its_media_props(harness, host_env, plate, root):
    pattern, sample = plate
    harness.scene(pattern, root / "out")
    media_in = harness.comp.AddTool("MediaIn")
    media_in.SetData("MediaProps", {"MEDIA_PATH": pattern.replace("####", "1001")})
    ctx = {"loader": media_in}
    harness.place(ctx, 1002, [(*centre(sample, 1002), 1)], None)
    task = harness.act(ctx, "track_both")
    assert task.error is None, harness.messages()
    assert harness.comp.FindTool("MediaIn1_mattes") is not None
