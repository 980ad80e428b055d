"""The Nuke adapter and RotoAI gizmo against a stateful fake ``nuke``, the real client and a real server."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

from tests.host_conformance import HostConformance, host_env  # noqa: F401
from tests.serverkit import (centre, client_for, fake_backends, isolated_config, plate, root, server,  # noqa: F401
                             wait_until)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def nuke(monkeypatch):
    """Nuke started with NUKE_PATH=<repo>/hosts/nuke: plugin path, then init.py, then menu.py."""
    from tests.fakes import fake_nuke

    saved_path = list(sys.path)
    fake_nuke.reset(script="Root")
    monkeypatch.setitem(sys.modules, "nuke", fake_nuke)
    sys.modules.pop("roto_nuke", None)
    fake_nuke.pluginAddPath(str(REPO / "hosts" / "nuke"))
    for startup in ("init.py", "menu.py"):
        path = REPO / "hosts" / "nuke" / startup
        exec(compile(path.read_text(), str(path), "exec"), {"__name__": "__main__"})  # noqa: S102 - as Nuke does
    yield fake_nuke
    sys.modules.pop("roto_nuke", None)
    sys.path[:] = saved_path


class NukeHarness:
    name = "nuke"
    key_part = "nuke:"

    def __init__(self, nuke):
        import roto_nuke

        self.nuke = nuke
        self.adapter = roto_nuke.HOST
        self.press_seconds: list[float] = []

    def scene(self, pattern, out_dir, through=None):
        nuke = self.nuke
        read = nuke.nodes.Read(file=pattern, first=1001, last=1008, origfirst=1001, origlast=1008)
        read._size = (64, 48)
        src = read
        if through:
            src = getattr(nuke.nodes, through)()
            src.setInput(0, read)
        node = nuke.createNode("RotoAI")
        node.setInput(0, src)
        node["output"].setValue(str(out_dir))
        return node

    def another_scene(self, pattern, out_dir):
        self.nuke.scriptClear()  # File > New: a second unsaved script, its node named RotoAI1 again
        node = self.scene(pattern, out_dir)
        node["output"].setValue("")  # the default folder (the knob names one folder: it is the artist's)
        return node

    def place(self, node, frame, points, box):
        self.nuke.frame(frame)  # the artist is on that frame
        h = node.height()
        pos = [p for p in points if p[2] == 1]
        neg = [p for p in points if p[2] == 0]
        for names, pts in ((("p1", "p2", "p3", "p4"), pos), (("n1", "n2", "n3"), neg)):
            for i, name in enumerate(names):
                node[name + "_on"].setValue(i < len(pts))
                if i < len(pts):
                    x, y = pts[i][0], pts[i][1]
                    node[name].setValue([x, h - y])  # Nuke's y goes up
        node["box_on"].setValue(box is not None)
        if box is not None:
            x0, y0, x1, y1 = box
            node["box"].setValue([x0, h - y1, x1, h - y0])

    BUTTONS = {"track_both": "track_both", "track_forward": "track_forward", "track_backward": "track_backward",
               "matte": "matte", "depth": "depth", "shapes": "shapes", "qc": "qc", "undo": "undo", "redo": "redo"}

    def start(self, node, action):
        import roto_host

        roto_host.Task.last = None
        t0 = time.monotonic()
        self.nuke.press(node, self.BUTTONS[action])
        self.press_seconds.append(time.monotonic() - t0)
        return roto_host.Task.last

    def pump(self):
        self.nuke.process_events()

    def finish(self, task):
        deadline = time.monotonic() + 60
        while task.alive() and time.monotonic() < deadline:
            self.nuke.process_events()
            time.sleep(0.01)
        task.join(5)
        self.nuke.process_events()
        assert not task.alive()

    def act(self, node, action):
        task = self.start(node, action)
        self.finish(task)
        return task

    def cancel(self, node, task):
        assert wait_until(lambda: self.pump() or bool(self.nuke._state["progress"]), 10)
        self.nuke._state["progress"][-1].cancel()  # the Cancel button of Nuke's progress bar
        return True

    def mattes(self):
        out = []
        for read in self.nuke.allNodes("Read"):
            if read.name().endswith("_mattes"):
                out.append({"pattern": read["file"].value(), "first": read["first"].value(),
                            "last": read["last"].value(), "node": read})
        return out

    def shapes(self):
        return list(self.nuke._state["pasted"])

    def messages(self):
        return list(self.nuke._state["messages"])


@pytest.fixture
def harness(nuke):
    return NukeHarness(nuke)


class TestNukeConformance(HostConformance):
    pass


# --- Nuke specifics -------------------------------------------------------------------------------


def test_startup_files_are_short_and_register_path_and_menus(nuke):
    for name in ("init.py", "menu.py"):
        assert len((REPO / "hosts" / "nuke" / name).read_text().splitlines()) <= 20
    paths = nuke.pluginPath()
    assert str(REPO / "gizmos") in paths and str(REPO / "hosts" / "common") in paths
    assert nuke.menu("Nodes").items["Ultimate Rotoscopy"].items["RotoAI"] == "nuke.createNode('RotoAI')"
    assert "Engine status" in nuke.menu("Nuke").items["Ultimate Rotoscopy"].items


def test_gizmo_buttons_are_one_line_calls_into_the_adapter(nuke):
    from tests.fakes.fake_nuke import parse_gizmo

    import roto_nuke

    specs, defaults = parse_gizmo(REPO / "gizmos" / "RotoAI.gizmo")
    buttons = [s for s in specs if s["type"] == 22]
    assert len(buttons) >= 10
    for b in buttons:
        m = re.fullmatch(r"import roto_nuke; roto_nuke\.(\w+)\(nuke\.thisNode\(\)(?:, '(\w+)')?\)", b["script"])
        assert m, b["script"]
        assert callable(getattr(roto_nuke, m.group(1)))
    kinds = {s["name"]: s["type"] for s in specs}
    assert all(kinds[p] == 12 for p in ("p1", "p2", "p3", "p4", "n1", "n2", "n3")) and kinds["box"] == 15


def test_buttons_return_at_once_and_the_graph_is_only_touched_on_the_main_thread(nuke, host_env, plate, root, monkeypatch):
    monkeypatch.setenv("ROTO_BACKEND", "slowfake")
    h = NukeHarness(nuke)
    pattern, sample = plate
    node = h.scene(pattern, root / "out")
    h.place(node, 1001, [(*centre(sample), 1)], None)
    task = h.start(node, "track_forward")
    assert h.press_seconds[-1] < 0.5 and task.alive()  # the UI thread is free while the engine works
    h.finish(task)
    assert task.error is None, h.messages()
    pt = nuke._state["progress"][0]
    assert pt.values[-1] >= 50 and any("Tracking" in m for m in pt.messages)
    (m,) = h.mattes()
    crypto = nuke.toNode("RotoAI1_crypto")
    assert crypto.input(0) is m["node"] and crypto["matteList"].value() == "matte"
    assert crypto["cryptoLayer"].value() == "CryptoObject" and m["node"]["raw"].value() is True


def test_box_and_negative_points_are_flipped_to_the_engines_top_left(nuke, host_env, plate, root):
    h = NukeHarness(nuke)
    pattern, sample = plate
    node = h.scene(pattern, root / "out")
    x, y = centre(sample, 1002)
    h.place(node, 1002, [(x, y, 1), (3.0, 4.0, 0)], (x - 10, y - 8, x + 12, y + 9))
    assert h.act(node, "track_both").error is None
    s = next(hd.session for hd in host_env.engine.sessions.handles())
    prompts = {p.kind: p.data for p in s.data.prompts.values() if p.kind == "box"}
    assert prompts["box"] == pytest.approx({"x0": x - 10, "y0": y - 8, "x1": x + 12, "y1": y + 9})
    negs = [p.data for p in s.data.prompts.values() if p.kind == "point" and p.data["label"] == 0]
    assert negs == [pytest.approx({"x": 3.0, "y": 4.0, "label": 0})]
    assert node["keyframe"].value() == 1002  # remembered


def test_a_non_read_input_is_rendered_to_a_temporary_exr(nuke, host_env, plate, root):
    h = NukeHarness(nuke)
    pattern, sample = plate
    node = h.scene(pattern, root / "out", through="Grade")
    h.place(node, 1001, [(*centre(sample), 1)], None)
    task = h.act(node, "track_both")
    assert task.error is None, h.messages()
    (write, first, last), = nuke._state["executed"]
    assert (first, last) == (1001, 1008) and write in nuke._state["deleted"]
    s = next(hd.session for hd in host_env.engine.sessions.handles())
    assert s.data.clip.path.endswith("RotoAI1_input.####.exr") and "out" in s.data.clip.path
    h.act(node, "undo")  # reuses the rendered input, no second render
    assert len(nuke._state["executed"]) == 1 and any(m.startswith("Undo: ") for m in h.messages())


def test_nothing_connected_or_no_prompt_is_a_message(nuke, host_env, plate, root):
    h = NukeHarness(nuke)
    node = nuke.createNode("RotoAI")
    task = h.act(node, "track_both")
    assert task.state == "failed" and h.messages()[-1].endswith("Connect the plate (a Read) to RotoAI1's input first.")
    node2 = h.scene(plate[0], root / "out")
    node2["p1_on"].setValue(False)
    task = h.act(node2, "track_both")
    assert "Turn on at least one + point" in h.messages()[-1]


def test_cancel_with_nothing_running_and_a_second_press_while_busy(nuke, host_env, plate, root, monkeypatch):
    monkeypatch.setenv("ROTO_BACKEND", "slowfake")
    h = NukeHarness(nuke)
    pattern, sample = plate
    node = h.scene(pattern, root / "out")
    nuke.press(node, "cancel")
    nuke.process_events()
    assert h.messages()[-1] == "Nothing is running for this node."
    h.place(node, 1001, [(*centre(sample), 1)], None)
    task = h.start(node, "track_forward")
    nuke.press(node, "track_both")
    nuke.process_events()
    assert "already running" in h.messages()[-1]
    nuke.press(node, "cancel")
    h.finish(task)
    assert task.state == "failed" and "cancel" in task.error


def test_status_menu_reports_features(nuke, host_env, monkeypatch):
    import roto_nuke
    from tests.serverkit import absent_features

    absent_features(monkeypatch)

    roto_nuke.status()
    text = nuke._state["messages"][-1]
    assert "Tracking: available" in text and "Depth: Depth is not available" in text


def _keys(server):
    return sorted(h.key for h in server.engine.sessions.handles())


def _tracked_node(nuke, host_env, plate, root):
    """A RotoAI node on ``plate``, clicked and tracked: (harness, node, its session key)."""
    h = NukeHarness(nuke)
    pattern, sample = plate
    node = h.scene(pattern, root / "out")
    h.place(node, 1001, [(*centre(sample), 1)], None)
    assert h.act(node, "track_both").error is None, h.messages()
    (key,) = _keys(host_env)
    return h, node, key


def test_a_saved_and_reopened_script_keeps_its_session_key(nuke, host_env, plate, root):
    h, node, key = _tracked_node(nuke, host_env, plate, root)
    uid = node["roto_id"].value()
    assert uid and uid in key and "Root" not in key  # the node's own id, not the script's name
    script = root / "sh010_v001.nk"
    nuke.scriptSaveAs(str(script))
    nuke.scriptClear()
    nuke.scriptOpen(str(script))
    node = nuke.toNode("RotoAI1")
    assert node["roto_id"].value() == uid
    task = h.act(node, "undo")  # the session found again: its history is there
    assert task.error is None and any(m.startswith("Undo: ") for m in h.messages()), h.messages()
    assert _keys(host_env) == [key]
    nuke.scriptSaveAs(str(root / "sh010_v002.nk"))  # Save As a new version: still the same session
    assert h.act(nuke.toNode("RotoAI1"), "redo").error is None and _keys(host_env) == [key]


def test_a_pasted_copy_starts_its_own_session_and_the_original_keeps_its_own(nuke, host_env, plate, root):
    h, node, key = _tracked_node(nuke, host_env, plate, root)
    copy = nuke.copy_paste(node)
    assert copy.name() == "RotoAI2" and copy["roto_id"].value() == node["roto_id"].value()
    copy["output"].setValue(str(root / "out2"))
    assert h.act(copy, "track_both").error is None, h.messages()
    assert copy["roto_id"].value() != node["roto_id"].value()
    assert len(_keys(host_env)) == 2 and key in _keys(host_env)
    assert h.act(node, "track_forward").error is None and len(_keys(host_env)) == 2  # the original: its own again


def test_another_plate_on_the_same_node_is_a_new_session(nuke, host_env, plate, root):
    from tests.serverkit import write_plate

    h, node, _ = _tracked_node(nuke, host_env, plate, root)
    other, other_sample = write_plate(root / "other", frames=6, seed=11)
    node.input(0)["file"].setValue(other)
    h.place(node, 1001, [(*centre(other_sample), 1)], None)
    assert h.act(node, "track_both").error is None, h.messages()
    assert len(_keys(host_env)) == 2 and h.mattes()[0]["last"] == 1006


def test_the_servers_refusal_of_a_key_on_another_plate_reaches_the_artist(nuke, host_env, plate, root, monkeypatch):
    """A key that still collided (e.g. sent by an older adapter) is refused by the server; the
    artist reads the server's sentence, nothing raises."""
    import roto_host
    from tests.serverkit import write_plate

    monkeypatch.setattr(roto_host, "session_key", lambda host, uid, path: "nuke:Root:RotoAI1")
    h, node, _ = _tracked_node(nuke, host_env, plate, root)
    other, other_sample = write_plate(root / "other", frames=6, seed=11)
    nuke.scriptClear()
    node = h.scene(other, root / "out2")
    h.place(node, 1001, [(*centre(other_sample), 1)], None)
    task = h.act(node, "track_both")
    assert task.state == "failed" and "made on" in task.error and str(root / "plate") in task.error
    assert h.messages()[-1] == "Ultimate Rotoscopy: " + task.error
    assert h.mattes() == []


def test_job_errors_name_the_step_in_the_host_not_a_cli_command(nuke, host_env, plate, root):
    """Errors of the server's jobs read as host steps ("Track an object first"), not `roto track …
    --session FILE` or `--model prior`, which an artist cannot type (audit C#10); the CLI keeps its own."""
    h = NukeHarness(nuke)
    pattern, sample = plate
    node = h.scene(pattern, root / "out")
    h.place(node, 1001, [(*centre(sample), 1)], None)
    for action in ("shapes", "matte"):  # nothing tracked yet
        task = h.act(node, action)
        assert task.state == "failed" and task.error.endswith("Track an object first."), task.error
        assert "roto track" not in h.messages()[-1] and "--session" not in h.messages()[-1]


def test_host_hints_drop_cli_options_and_keep_the_rest():
    from engine.errors import BackendUnavailable, PromptError
    from engine.server.hints import job_error

    err = BackendUnavailable("depth needs Depth Anything 3 weights, and none are here",
                             hint="Run `roto models fetch da3-small` (~138 MB) and try again. `--model prior` runs "
                                  "the pipeline on a fixed ground-plane layout, which is not a depth estimate")
    data = job_error(err)
    assert data["hint"] == "Run `roto models fetch da3-small` (~138 MB) and try again."
    assert "--model" not in data["text"] and data["text"].startswith("depth needs Depth Anything 3 weights")
    assert "--model prior" in err.sentence()  # the CLI's own sentence is unchanged
    data = job_error(PromptError("the session has no objects", hint="Track something first: roto track ... --session FILE"))
    assert data["text"] == "the session has no objects. Track an object first."
    keep = PromptError("no prompt on frame 1001", hint="Place a point on the object")
    assert job_error(keep) == keep.to_dict()
