"""A job that waits for another job's session (or the GPU) says so, and a cancel ends it at once."""

from __future__ import annotations

from tests.serverkit import (centre, client, client_for, fake_backends, isolated_config, plate, root,  # noqa: F401
                             server, wait_until, write_plate)


def _open(c, pattern, sample, key, backend="slowfake"):
    sid = c.open_session(pattern, key=key, backend=backend)["session"]
    c.set_prompts(sid, "hero", 1001, points=[centre(sample)])
    return sid


def test_a_job_waiting_for_the_session_is_waiting_not_running_and_cancels_at_once(server, client, plate):
    pattern, sample = plate
    sid = _open(client, pattern, sample, "a")
    a = client.track(sid, direction="forward")
    assert wait_until(lambda: client.job(a["id"])["state"] == "running")
    b = client.track(sid, direction="forward")
    assert wait_until(lambda: client.job(b["id"])["state"] == "waiting")
    waiting = client.job(b["id"])
    assert waiting["started"] is None
    assert waiting["progress"]["stage"] == "waiting"
    assert a["id"] in waiting["progress"]["message"] and "session" in waiting["progress"]["message"]
    assert any(j["id"] == b["id"] and j["state"] == "waiting" for j in client.jobs(sid)["jobs"])
    # the cancel answers with the job already cancelled, while job a still runs
    cancelled = client.cancel(b["id"])
    assert cancelled["state"] == "cancelled" and cancelled["error"]["code"] == "cancelled"
    assert client.job(a["id"])["state"] == "running"
    client.cancel(a["id"])
    assert client.wait(a["id"], poll=0.2)["state"] == "cancelled"
    final = client.wait(b["id"], poll=0.2)
    assert final["state"] == "cancelled" and final["started"] is None  # it never ran
    assert "before it started" in final["error"]["text"]


def test_a_job_waiting_for_the_gpu_says_so_then_runs(server, client, plate, root):
    pattern, sample = plate
    sid = _open(client, pattern, sample, "a")
    other_pattern, other_sample = write_plate(root / "second", name="other", seed=11)
    other = _open(client, other_pattern, other_sample, "b", backend="fake")
    a = client.track(sid, direction="forward")
    assert wait_until(lambda: client.job(a["id"])["state"] == "running")
    b = client.track(other, direction="forward")
    assert wait_until(lambda: client.job(b["id"])["state"] == "waiting")
    msg = client.job(b["id"])["progress"]["message"]
    assert "GPU" in msg and a["id"] in msg
    client.cancel(a["id"])
    done = client.wait(b["id"], poll=0.2)
    assert done["state"] == "succeeded" and done["result"]["frames_written"] == 7
    assert done["progress"]["stage"] != "waiting"
