"""The Flame hooks and adapter against a stateful fake ``flame``, the real client and a real server."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

from tests.host_conformance import HostConformance, host_env  # noqa: F401
from tests.serverkit import (centre, fake_backends, isolated_config, plate, root, server,  # noqa: F401
                             wait_until)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def flame(monkeypatch):
    """Flame with DL_PYTHON_HOOK_PATH=<repo>/hosts/flame: the hooks file is imported by path."""
    import importlib.util

    from tests.fakes import fake_flame

    saved = list(sys.path)
    fake_flame.reset()
    monkeypatch.setitem(sys.modules, "flame", fake_flame)
    for mod in ("roto_flame", "roto_flame_dialog", "roto_flame_hooks"):
        sys.modules.pop(mod, None)
    spec = importlib.util.spec_from_file_location("roto_flame_hooks", REPO / "hosts" / "flame" / "roto_flame_hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    fake_flame.hooks = hooks
    yield fake_flame
    for mod in ("roto_flame", "roto_flame_dialog"):
        sys.modules.pop(mod, None)
    sys.path[:] = saved


class FlameHarness:
    name = "flame"
    key_part = "flame:"

    def __init__(self, flame, scope, monkeypatch):
        import roto_flame

        self.flame = flame
        self.scope = scope
        self.monkeypatch = monkeypatch
        self.adapter = roto_flame.HOST
        self.roto_flame = roto_flame
        self.previews: list = []

    def scene(self, pattern, out_dir, file_based=True):
        self.monkeypatch.setenv("ROTO_FLAME_OUTPUT", str(out_dir))
        reel = self.flame.PyReel("Reel 1")
        seq = pattern.replace("####", "[1001-1008]")
        clip = self.flame.PyClip("plate", seq if file_based else "", parent=reel, frames=pattern)
        reel.clips.append(clip)
        if self.scope == "batch":
            return self.flame.PyClipNode("plate", clip)
        return clip

    def another_scene(self, pattern, out_dir):
        return self.scene(pattern, out_dir)  # another "Reel 1" with another clip named "plate"

    def place(self, item, frame, points, box):
        """What the artist does in the dialog: the frame is shown at half size, clicks are in widget pixels."""
        from roto_flame_dialog import PromptModel

        def dialog(client, session, source):
            lo, hi = session["range"]
            model = PromptModel(session["width"], session["height"], lo, lo, hi)
            model.set_frame(frame)
            png = client.preview(session["session"], model.frame, max_size=32)
            self.previews.append(png)
            model.shown_width = 32  # the preview is drawn 32 px wide
            for x, y, label in points:
                model.click(x / model.scale, y / model.scale, background=label == 0)
            if box is not None:
                model.drag(box[0] / model.scale, box[1] / model.scale, box[2] / model.scale, box[3] / model.scale)
            return model.result()

        self.monkeypatch.setattr(self.roto_flame, "PROMPT_DIALOG", dialog)

    ACTIONS = {"track_both": "Track both ways...", "track_forward": "Track forward...",
               "track_backward": "Track backward...", "matte": "Matte", "depth": "Depth", "shapes": "Shapes (GMask)",
               "qc": "QC", "undo": "Undo", "redo": "Redo"}

    def _menu(self):
        fn = (self.flame.hooks.get_batch_custom_ui_actions if self.scope == "batch"
              else self.flame.hooks.get_media_panel_custom_ui_actions)
        (group,) = fn()
        return {a["name"]: a for a in group["actions"]}

    def start(self, item, action):
        import roto_host

        roto_host.Task.last = None
        entry = self._menu()[self.ACTIONS[action]]
        assert entry["isVisible"]([item])
        t0 = time.monotonic()
        task = entry["execute"]([item])
        assert time.monotonic() - t0 < 5
        return task or roto_host.Task.last

    def pump(self):
        self.flame.process_events()

    def finish(self, task):
        deadline = time.monotonic() + 60
        while task is not None and task.alive() and time.monotonic() < deadline:
            self.flame.process_events()
            time.sleep(0.01)
        if task is not None:
            task.join(5)
        self.flame.process_events()

    def act(self, item, action):
        task = self.start(item, action)
        self.finish(task)
        return task

    def cancel(self, item, task):
        self._menu()["Cancel Ultimate Rotoscopy"]["execute"]([item])
        return True

    def mattes(self):
        out = []
        paths = list(self.flame._state["imported"]) + list(self.flame.batch.imported)
        for p in dict.fromkeys(paths):
            m = re.search(r"\[(\d+)-(\d+)\]", p)
            out.append({"pattern": p[:m.start()] + "#" * len(m.group(1)) + p[m.end():],
                        "first": int(m.group(1)), "last": int(m.group(2))})
        return out

    def shapes(self):
        loaded = [s for n in self.flame.batch.nodes for s in getattr(n, "setups", [])]
        shown = [line for d in self.flame._state["dialogs"] for line in d["message"].splitlines() if Path(line).is_file()]
        return loaded + shown

    def messages(self):
        return [d["message"] for d in self.flame._state["dialogs"]]


@pytest.fixture(params=["media_panel", "batch"])
def harness(request, flame, monkeypatch):
    return FlameHarness(flame, request.param, monkeypatch)


class TestFlameConformance(HostConformance):
    pass


def test_hooks_offer_the_actions_only_for_clips(flame):
    (group,) = flame.hooks.get_media_panel_custom_ui_actions()
    names = [a["name"] for a in group["actions"]]
    assert group["name"] == "Ultimate Rotoscopy" and "Track both ways..." in names and "Cancel Ultimate Rotoscopy" in names
    track = group["actions"][0]
    assert track["isVisible"]([flame.PyClip("x")]) and not track["isVisible"]([flame.PyReel("r")])
    assert flame.hooks.get_batch_custom_ui_actions()[0]["actions"][0]["isVisible"]([flame.PyClipNode("n", flame.PyClip("x"))])


def test_the_dialog_model_maps_widget_clicks_to_plate_pixels():
    sys.path.insert(0, str(REPO / "hosts" / "flame"))
    try:
        from roto_flame_dialog import PromptModel
    finally:
        sys.path.remove(str(REPO / "hosts" / "flame"))
    m = PromptModel(1920, 1080, 1001, 1001, 1100)
    m.shown_width = 960
    m.click(100, 50)
    m.click(10, 20, background=True)
    m.drag(300, 200, 100, 100)
    assert m.points == [(200.0, 100.0, 1), (20.0, 40.0, 0)] and m.box == (200.0, 200.0, 600.0, 400.0)
    m.click(5000, -5)  # clamped into the plate
    assert m.points[-1] == (1919.99, 0.0, 1)
    m.set_frame(1050)
    assert m.points == [] and m.box is None and not m.ready()
    m.set_frame(5000)
    assert m.frame == 1100
    assert m.result() == [{"object": "matte", "frame": 1100, "points": [], "box": None}]


def test_a_clip_without_a_file_is_exported_first(flame, host_env, plate, root, monkeypatch):
    h = FlameHarness(flame, "media_panel", monkeypatch)
    pattern, sample = plate
    clip = h.scene(pattern, root / "out", file_based=False)
    h.place(clip, 1001, [(*centre(sample), 1)], None)
    task = h.act(clip, "track_both")
    assert task.error is None, h.messages()
    ((name, preset, folder),) = flame._state["exports"]
    assert preset.endswith(".xml") and Path(folder).is_relative_to(root / "out")
    assert h.mattes() and h.previews and h.previews[0][:4] == b"\x89PNG"
    assert any("done" in line for line in flame._state["console"])


def test_closing_the_dialog_does_nothing(flame, host_env, plate, root, monkeypatch):
    h = FlameHarness(flame, "media_panel", monkeypatch)
    clip = h.scene(plate[0], root / "out")
    monkeypatch.setattr(h.roto_flame, "PROMPT_DIALOG", lambda client, session, source: None)
    assert h.start(clip, "track_both") is None
    assert h.mattes() == [] and h.messages() == []
