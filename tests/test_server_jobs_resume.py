"""Jobs resumed after a server restart continue from what was finished instead of starting over."""

from __future__ import annotations

import time

from tests.serverkit import (FakeSegmenter, centre, client_for, fake_backends, isolated_config, plate,  # noqa: F401
                             root, running_server, wait_until)

from engine.backends import registry


class StableSlowSegmenter(FakeSegmenter):
    """The slow fake with a cache token that survives a restart, as a real backend's does; it counts
    the frames it computes (across instances)."""

    delay = 0.25
    computed: list[int] = []

    def propagate(self, state, start, end, direction, obj_ids=None):
        for item in super().propagate(state, start, end, direction, obj_ids):
            StableSlowSegmenter.computed.append(item.frame)
            time.sleep(self.delay)
            yield item


def _register():
    registry.segmenters()
    registry.register_segmenter("stableslow", lambda **kw: StableSlowSegmenter(), priority=-10, title="stable slow")


def test_a_track_resumed_after_a_restart_continues_from_the_finished_frames(tmp_path, root, isolated_config,
                                                                              fake_backends, plate):
    from engine.cache.store import default_cache

    _register()
    try:
        pattern, sample = plate
        StableSlowSegmenter.computed.clear()
        with running_server(tmp_path, [root]) as srv:
            c = client_for(srv)
            sid = c.open_session(pattern, key="resume", backend="stableslow")["session"]
            c.set_prompts(sid, "hero", 1001, points=[centre(sample)])
            job = c.track(sid, direction="forward")
            assert wait_until(lambda: (c.job(job["id"])["progress"] or {}).get("done", 0) >= 2)
        before = list(StableSlowSegmenter.computed)  # the graceful stop put the job back in the queue
        assert 2 <= len(before) < 7
        default_cache().clear_memory()  # a new process: only what reached the disk is known
        with running_server(tmp_path, [root]) as srv:
            c = client_for(srv)
            done = c.wait(job["id"], poll=0.5, timeout=30)
            assert done["state"] == "succeeded", done["error"]
            assert done["result"]["runs_from_cache"] >= 1
            after = StableSlowSegmenter.computed[len(before):]
            assert after and min(after) > before[-1] - 1  # it went on from the finished frames
            assert sorted(set(before) | set(after)) == list(range(1002, 1009))
            assert len(after) <= 7 - len(before) + 1
            s = srv.engine.sessions.get(sid).session
            assert all(s.mask(1, f) is not None for f in range(1002, 1009))
    finally:
        registry._SEGMENTERS.pop("stableslow", None)


def test_an_export_resumed_after_a_crash_skips_the_frames_already_written(tmp_path, root, isolated_config,
                                                                          fake_backends, plate):
    pattern, sample = plate
    out = root / "out"
    with running_server(tmp_path, [root]) as srv:
        c = client_for(srv)
        sid = c.open_session(pattern, key="exp", backend="fake")["session"]
        c.set_prompts(sid, "hero", 1001, points=[centre(sample)])
        assert c.wait(c.track(sid, direction="forward")["id"])["state"] == "succeeded"
        exp = c.wait(c.export(sid, str(out), format="exr")["id"])
        assert exp["state"] == "succeeded" and exp["result"]["frames_written"] == 8
        # as if the server died while the export ran: the row still says running
        row = srv.engine.store.job(exp["id"])
        srv.engine.store.save_job(dict(row, state="running", result=None, finished=None))
    with running_server(tmp_path, [root]) as srv:
        c = client_for(srv)
        again = c.wait(exp["id"], poll=0.5, timeout=30)
        assert again["state"] == "succeeded" and again["attempt"] == 2
        assert again["result"]["frames_skipped"] == 8 and again["result"]["frames_written"] == 0
