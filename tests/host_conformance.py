"""The conformance suite every host adapter passes (in the spirit of OpenAssetIO's manager suite).

A host test module subclasses :class:`HostConformance` and provides a ``harness`` fixture: an
object driving that host's fake the way an artist drives the real host. The suite then checks the
contract, not the host's business logic: the adapter has every method, prompts placed in the
host's own conventions reach the engine at the right plate pixels and frame, the mattes come back
into the host for every frame, errors and missing features become messages (never exceptions in
the host), a job kind added to the engine later reaches the host with no host change, and a
server that is not running is explained.

Harness protocol (duck-typed)::

    name                               "nuke", "flame", "resolve"
    key_part                           text the host's session keys contain (its node or clip name)
    adapter                            the adapter object
    scene(plate_pattern, out_dir)      set up the host's clip/node; returns ctx
    another_scene(plate_pattern, out_dir)  the same again with the host's default names in a second
                                       unsaved script / default-named comp / same-named clip; returns ctx
    place(ctx, frame, points, box)     prompts in engine pixels (top-left); the harness converts
                                       them to the host's convention (Nuke y-up, Fusion normalised)
    act(ctx, action)                   trigger the action as the artist would; pump the host's
                                       UI loop until it finished; returns the roto_host.Task
    start(ctx, action)                 trigger without waiting (for cancel); returns the Task
    finish(task)                       pump until the task ended
    cancel(ctx, task)                  the host's cancel gesture (False if it has none)
    mattes()                           [{"pattern", "first", "last"}] the host recorded
    shapes()                           [paths] the host imported
    messages()                         what the artist was told
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.serverkit import (centre, client_for, fake_backends, isolated_config, plate, root,  # noqa: F401
                             running_server, server, wait_until, write_plate)

HOSTS_COMMON = Path(__file__).resolve().parents[1] / "hosts" / "common"


@pytest.fixture
def host_env(server, monkeypatch):
    """The host side sees the test server through the environment only (like a real host)."""
    monkeypatch.setenv("ROTO_SERVER_URL", server.url)
    monkeypatch.setenv("ROTO_BACKEND", "fake")
    monkeypatch.setenv("PATH", os.environ.get("PATH", ""))
    if str(HOSTS_COMMON) not in sys.path:
        monkeypatch.syspath_prepend(str(HOSTS_COMMON))
    import roto_host

    roto_host.Task._active.clear()
    return server


def _session_of(server, key_part: str):
    for h in server.engine.sessions.handles():
        if key_part in (h.key or ""):
            return h.session
    raise AssertionError(f"no session with a key containing {key_part!r}: {[h.key for h in server.engine.sessions.handles()]}")


class HostConformance:
    """Subclass as ``TestXxxConformance`` with a ``harness`` fixture."""

    def test_adapter_has_every_method(self, harness):
        import roto_host

        assert roto_host.missing_methods(harness.adapter) == []

    def test_prompts_reach_the_engine_and_mattes_come_back(self, harness, host_env, plate, root):
        pattern, sample = plate
        ctx = harness.scene(pattern, root / "out")
        x, y = centre(sample, 1003)
        harness.place(ctx, 1003, [(x, y, 1), (2.0, 2.0, 0)], None)
        task = harness.act(ctx, "track_both")
        assert task.error is None, (task.error, harness.messages())
        s = _session_of(host_env, harness.key_part)
        obj = next(iter(s.data.objects))
        assert s.data.keyframes_of(obj) == [1003]
        assert s.mask(obj, 1003)[int(round(y)), int(round(x))]  # the click landed on the plate pixel
        assert all(s.mask(obj, f) is not None for f in range(1001, 1009))
        (m,) = harness.mattes()
        assert (m["first"], m["last"]) == (1001, 1008)
        files = [Path(m["pattern"].replace("####", str(f))) for f in range(1001, 1009)]
        assert all(f.is_file() and f.stat().st_size > 0 for f in files)
        assert Path(m["pattern"]).resolve().is_relative_to((root / "out").resolve())
        # again: the same session, the matte import updated rather than duplicated
        task = harness.act(ctx, "track_forward")
        assert task.error is None and len(harness.mattes()) == 1
        assert len(host_env.engine.sessions.handles()) == 1

    def test_default_named_scenes_on_two_plates_get_two_sessions(self, harness, host_env, plate, root):
        """Two unsaved scripts (both ``RotoAI1``), two ``Composition1`` comps (both ``Loader1``), two
        clips named alike: each plate gets its own session and its own mattes, never the other's."""
        pattern, sample = plate
        ctx = harness.scene(pattern, root / "out")
        harness.place(ctx, 1001, [(*centre(sample), 1)], None)
        task = harness.act(ctx, "track_both")
        assert task.error is None, (task.error, harness.messages())
        first = harness.mattes()
        other, other_sample = write_plate(root / "other", frames=6, seed=11)
        ctx2 = harness.another_scene(other, root / "out")  # the same output base: the folders must differ too
        harness.place(ctx2, 1002, [(*centre(other_sample, 1002), 1)], None)
        task = harness.act(ctx2, "track_both")
        assert task.error is None, (task.error, harness.messages())
        sessions = [h.session for h in host_env.engine.sessions.handles()]
        assert len(sessions) == 2 and len({h.key for h in host_env.engine.sessions.handles()}) == 2
        assert sorted(str(Path(s.data.clip.path).parent) for s in sessions) == sorted(
            [str(Path(pattern).parent), str(Path(other).parent)])
        m = harness.mattes()[-1]
        assert (m["first"], m["last"]) == (1001, 1006)  # the second plate's frames, not the first's 1001-1008
        assert m["pattern"] not in [f["pattern"] for f in first]
        assert all(Path(m["pattern"].replace("####", str(f))).is_file() for f in range(1001, 1007))

    def test_matte_and_qc(self, harness, host_env, plate, root):
        pattern, sample = plate
        ctx = harness.scene(pattern, root / "out")
        harness.place(ctx, 1001, [(*centre(sample), 1)], None)
        assert harness.act(ctx, "track_both").error is None
        task = harness.act(ctx, "matte")
        assert task.error is None, harness.messages()
        assert task.result is not None and harness.mattes()
        s = _session_of(host_env, harness.key_part)
        assert s.alpha(next(iter(s.data.objects)), 1004) is not None
        task = harness.act(ctx, "qc")
        assert task.error is None and any(m.startswith("QC:") for m in harness.messages())

    def test_problems_are_messages_never_exceptions(self, harness, host_env, tmp_path, root):
        outside = tmp_path / "outside"
        pattern, sample = write_plate(outside)
        ctx = harness.scene(pattern, root / "out")
        harness.place(ctx, 1001, [(*centre(sample), 1)], None)
        task = harness.act(ctx, "track_both")  # must not raise
        assert task.state == "failed" and "outside the folders" in task.error
        assert any("outside the folders" in m for m in harness.messages())
        # what the artist (or TD) can do about it: the engine was started by the host, not by them
        assert f"roto install-host {harness.name} --root DIR" in task.error and "ROTO_SERVER_ROOTS" in task.error
        assert "Start the server with --root" not in task.error and str(root) in task.error
        assert harness.mattes() == []

    def test_a_missing_feature_is_explained(self, harness, host_env, plate, root, monkeypatch):
        from tests.serverkit import absent_features

        absent_features(monkeypatch)
        pattern, sample = plate
        ctx = harness.scene(pattern, root / "out")
        harness.place(ctx, 1001, [(*centre(sample), 1)], None)
        task = harness.act(ctx, "depth")
        assert task.error is None and "not available in this engine version" in task.result["unavailable"]
        assert any("not available in this engine version" in m for m in harness.messages())

    @pytest.mark.parametrize("module", ["engine.shapes.job", "tests.fakes.shapes_job"])
    def test_shapes_reach_the_host(self, harness, host_env, plate, root, monkeypatch, module):
        """The engine's shapes job, and a stand-in module: a kind plugs in with no host change."""
        from engine.server import jobs

        jobs.job_kinds()  # load the built-in kinds before replacing one
        monkeypatch.setitem(jobs._KINDS, "shapes", jobs.JobKind("shapes", "Shapes", module=module))
        pattern, sample = plate
        ctx = harness.scene(pattern, root / "out")
        harness.place(ctx, 1001, [(*centre(sample), 1)], None)
        assert harness.act(ctx, "track_both").error is None
        task = harness.act(ctx, "shapes")
        assert task.error is None, harness.messages()
        got = harness.shapes()
        assert got and all(Path(p).is_file() and Path(p).stat().st_size > 0 for p in got), harness.messages()

    def test_cancel_stops_the_job(self, harness, host_env, plate, root, monkeypatch):
        monkeypatch.setenv("ROTO_BACKEND", "slowfake")
        pattern, sample = plate
        ctx = harness.scene(pattern, root / "out")
        harness.place(ctx, 1001, [(*centre(sample), 1)], None)
        task = harness.start(ctx, "track_forward")
        assert wait_until(lambda: harness.pump() or task.job_id is not None or not task.alive(), 20)
        assert task.job_id is not None, (task.error, harness.messages())
        if not harness.cancel(ctx, task):
            harness.finish(task)
            pytest.skip(f"{harness.name} has no cancel gesture")
        harness.finish(task)
        assert task.state == "failed" and "cancel" in task.error.lower()
        assert harness.mattes() == []

    def test_no_server_is_explained(self, harness, host_env, plate, root, monkeypatch):
        import socket

        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        monkeypatch.setenv("ROTO_SERVER_URL", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("PATH", "/nonexistent")
        monkeypatch.delenv("ROTO_SERVER_COMMAND", raising=False)
        pattern, sample = plate
        ctx = harness.scene(pattern, root / "out")
        harness.place(ctx, 1001, [(*centre(sample), 1)], None)
        task = harness.act(ctx, "track_both")
        assert task.state == "failed" and "roto serve" in task.error
        assert any("roto serve" in m for m in harness.messages())
