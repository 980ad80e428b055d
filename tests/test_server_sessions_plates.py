"""Sessions on the real server: plate checks, backend names, listing after a restart."""

from __future__ import annotations

import threading
import time

import pytest

from tests.fakes.segmenter import FakeSegmenter
from tests.serverkit import (centre, client, client_for, fake_backends, isolated_config, plate, root,  # noqa: F401
                             running_server, server, wait_until, write_plate)

from engine.client import ServerError  # noqa: E402


def test_a_key_reused_on_another_plate_is_refused_while_its_session_is_open(server, client, plate, root):
    pattern, _ = plate
    other = write_plate(root / "second", name="other")[0]
    a = client.open_session(pattern, key="nuke:Root:RotoAI1", backend="fake")
    assert a["created"] and server.engine.sessions.get(a["session"])._session is not None  # loaded: the fast path
    with pytest.raises(ServerError) as err:
        client.open_session(other, key="nuke:Root:RotoAI1")
    e = err.value
    assert e.status == 400 and e.code == "session_error"
    assert "nuke:Root:RotoAI1" in e.text and str(root / "plate") in e.text and str(root / "second") in e.text
    assert "unique name" in e.text  # a hint the artist can act on in the host
    # the first plate's session is untouched and still reopens with its key
    again = client.open_session(pattern, key="nuke:Root:RotoAI1")
    assert again["session"] == a["session"] and not again["created"] and again["clip"] == a["clip"]
    # another key on the other plate is a session of its own
    b = client.open_session(other, key="nuke:Root:RotoAI1:other", backend="fake")
    assert b["created"] and b["session"] != a["session"]


def test_a_project_file_reused_on_another_plate_is_refused_while_its_session_is_open(server, client, plate, root):
    pattern, _ = plate
    other = write_plate(root / "second", name="other")[0]
    project = str(root / "shot.roto.json")
    a = client.open_session(pattern, project=project, backend="fake")
    with pytest.raises(ServerError) as err:
        client.open_session(other, project=project)
    assert err.value.code == "session_error" and "the session was made on" in err.value.text
    assert client.open_session(pattern, project=project)["session"] == a["session"]


def test_an_unknown_backend_is_refused_when_the_session_opens(server, client, plate):
    pattern, _ = plate
    with pytest.raises(ServerError) as err:
        client.open_session(pattern, key="typo", backend="nonesuch")
    e = err.value
    assert e.status == 422 and e.code == "invalid_request" and "nonesuch" in e.text
    assert "auto" in e.text and "classical" in e.text and "fake" in e.text  # the known backends are listed
    assert client.sessions()["sessions"] == []  # nothing was made or stored
    s = client.open_session(pattern, key="typo", backend="auto")
    assert s["created"] and s["backend"] == "auto"
    with pytest.raises(ServerError) as err:  # nor can an open session be switched to one
        client.open_session(pattern, key="typo", backend="nonesuch")
    assert err.value.code == "invalid_request"
    assert client.open_session(pattern, key="typo", backend="fake")["backend"] == "fake"


def test_a_restarted_server_lists_the_sessions_it_stored(tmp_path, root, isolated_config, fake_backends, plate):
    pattern, _ = plate
    other = write_plate(root / "second", name="other")[0]
    with running_server(tmp_path, [root]) as srv:
        c = client_for(srv)
        a = c.open_session(pattern, key="a", backend="fake")["session"]
        b = c.open_session(other, key="b", backend="fake")["session"]
        gone = c.open_session(other, key="c", backend="fake")["session"]
        c.close_session(gone)
        before = {s["session"]: s for s in c.sessions()["sessions"]}
        assert before[a]["loaded"] and not before[a]["closed"] and before[gone]["closed"]
    with running_server(tmp_path, [root]) as srv:  # a new server over the same state folder
        c = client_for(srv)
        listed = {s["session"]: s for s in c.sessions()["sessions"]}
        assert set(listed) == {a, b, gone}
        assert listed[a]["clip"] == before[a]["clip"] and listed[a]["key"] == "a"
        assert listed[b]["project"] == before[b]["project"] and not listed[b]["missing"]
        assert not listed[a]["loaded"] and not listed[a]["closed"] and listed[gone]["closed"]
        assert c.session(a)["session"] == a  # a listed session opens by its id
        assert {s["session"]: s for s in c.sessions()["sessions"]}[a]["loaded"]


# --- reads while a job holds the session -----------------------------------------------------------


class GatedSegmenter(FakeSegmenter):
    """The fake segmenter, whose propagation stops after ``before`` frames until ``gate`` is set:
    a job that holds its session for as long as the test needs, with no timing involved."""

    gate = threading.Event()
    before = 2

    def __init__(self, **kw):
        super().__init__(**kw)
        self.cache_token = f"gated-{time.monotonic_ns()}"  # never served from the result cache

    def propagate(self, state, start, end, direction, obj_ids=None):
        for n, item in enumerate(super().propagate(state, start, end, direction, obj_ids)):
            if n == self.before:
                assert self.gate.wait(60), "the test never opened the gate"
            yield item


@pytest.fixture
def gated(fake_backends):  # noqa: F811
    from engine.backends import registry

    GatedSegmenter.gate = threading.Event()
    registry.register_segmenter("gated", lambda **kw: GatedSegmenter(), priority=-10, title="gated fake test")
    yield GatedSegmenter.gate
    GatedSegmenter.gate.set()  # never leave a job thread waiting
    registry._SEGMENTERS.pop("gated", None)


def _job_holds(srv, c, sid, jid) -> bool:
    h = srv.engine.sessions.get(sid)
    return h.busy_job == jid and (c.job(jid)["progress"] or {}).get("done", 0) >= GatedSegmenter.before


def _reads_answer_while_the_job_runs(srv, c, sid, jid):
    summary = c.session(sid)
    assert summary["session"] == sid and summary["busy"] and jid in summary["busy"]
    assert summary["objects"][0]["name"] == "hero"
    png = c.preview(sid, 1002)  # the frame the job made a mask for, drawn over the plate
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png != c.preview(sid, 1002, overlay=False)
    assert c.job(jid)["state"] == "running"  # the answers came while the job still held the session
    return summary


def test_summary_and_preview_answer_while_a_job_holds_the_session(tmp_path, root, isolated_config, gated, plate):
    pattern, sample = plate
    with running_server(tmp_path, [root], lock_timeout=5.0) as srv:
        c = client_for(srv)
        sid = c.open_session(pattern, key="k", backend="gated")["session"]
        c.set_prompts(sid, "hero", 1001, points=[centre(sample)])
        job = c.track(sid, direction="forward")
        assert wait_until(lambda: _job_holds(srv, c, sid, job["id"]), timeout=30)
        summary = _reads_answer_while_the_job_runs(srv, c, sid, job["id"])
        assert summary["objects"][0]["frames_with_masks"] > 1  # as far as the job has got
        gated.set()
        assert c.wait(job["id"], poll=0.1)["state"] == "succeeded"  # the reads did not upset it
        assert c.session(sid)["objects"][0]["frames_with_masks"] == 8 and c.session(sid)["busy"] is None


def test_after_a_restart_summary_and_preview_answer_while_a_job_holds_the_session(tmp_path, root, isolated_config,
                                                                                  gated, plate):
    pattern, sample = plate
    with running_server(tmp_path, [root]) as srv:
        c = client_for(srv)
        sid = c.open_session(pattern, key="k", backend="gated")["session"]
        c.set_prompts(sid, "hero", 1001, points=[centre(sample)])
    with running_server(tmp_path, [root], lock_timeout=5.0) as srv:  # nothing of the session in memory
        c = client_for(srv)
        job = c.track(sid, direction="forward")
        assert wait_until(lambda: _job_holds(srv, c, sid, job["id"]), timeout=30)
        summary = _reads_answer_while_the_job_runs(srv, c, sid, job["id"])
        assert summary["key"] == "k" and summary["objects"][0]["prompts"] == 1
        gated.set()
        assert c.wait(job["id"], poll=0.1)["state"] == "succeeded"
