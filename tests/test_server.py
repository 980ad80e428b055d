"""The engine server on a real uvicorn, loopback, free port: auth, roots, validation, jobs, isolation."""

from __future__ import annotations

import http.client
import json
import os
import stat
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.serverkit import (SlowSegmenter, absent_features, centre, client, client_for,  # noqa: F401
                             fake_backends, isolated_config, plate, root, running_server, server, wait_until,
                             write_plate)

from engine.client import RotoClient, ServerError  # noqa: E402


def raw(srv, method: str, path: str, body: bytes | None = None, headers: dict | None = None, token: bool = True):
    """One request by hand (http.client), returning (status, decoded JSON or text)."""
    host, port = srv.url.split("//")[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    h = {"Content-Type": "application/json"}
    if token:
        h["Authorization"] = f"Bearer {srv.token}"
    h.update(headers or {})
    conn.request(method, path, body=body, headers=h)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    try:
        return resp.status, json.loads(data)
    except ValueError:
        return resp.status, data.decode("utf-8", "replace")


def open_tracked(c: RotoClient, plate, key="k", backend="fake", obj="hero"):
    pattern, sample = plate
    s = c.open_session(pattern, key=key, backend=backend)
    x, y = centre(sample)
    c.set_prompts(s["session"], obj, 1001, points=[(x, y, 1)])
    return s["session"], (x, y)


# --- auth ---------------------------------------------------------------------------------------


def test_health_is_open_but_everything_else_needs_the_token(server):
    status, body = raw(server, "GET", "/v1/health", token=False)
    assert status == 200 and body["service"] == "ultimate-rotoscopy"
    status, body = raw(server, "GET", "/v1/capabilities", token=False)
    assert status == 401 and body["error"]["code"] == "unauthorized" and "no token" in body["error"]["text"]
    status, body = raw(server, "GET", "/v1/capabilities", token=False, headers={"Authorization": "Bearer wrong"})
    assert status == 401 and "does not match" in body["error"]["text"]
    status, body = raw(server, "GET", "/v1/capabilities", token=False, headers={"Authorization": server.token})
    assert status == 401 and "Bearer" in body["error"]["text"]
    # a wrong token is refused before the body is even looked at, and on unknown routes too
    status, body = raw(server, "POST", "/v1/sessions", b"{not json", token=False, headers={"Authorization": "Bearer x"})
    assert status == 401
    assert raw(server, "GET", "/v1/nope", token=False)[0] == 401
    status, body = raw(server, "GET", "/v1/capabilities")
    assert status == 200 and {k["name"] for k in body["job_kinds"]} >= {"track", "export", "depth", "shapes"}


def test_token_is_made_once_with_mode_0600(tmp_path, root, isolated_config, fake_backends):
    with running_server(tmp_path, [root]) as srv:
        path = Path(srv.engine.token_file)
        first = srv.token
        assert path.read_text().strip() == first and len(first) >= 32
        if os.name != "nt":
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
    os.chmod(path, 0o644)
    with running_server(tmp_path, [root]) as srv:
        assert srv.token == first  # reused, and tightened again
        if os.name != "nt":
            assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_browser_origin_and_foreign_host_are_refused(server):
    status, body = raw(server, "GET", "/v1/capabilities", headers={"Origin": "http://evil.example"})
    assert status == 403 and "web pages" in body["error"]["text"]
    status, body = raw(server, "GET", "/v1/capabilities", headers={"Host": "evil.example:80"})
    assert status == 403 and body["error"]["code"] == "unauthorized"


# --- roots --------------------------------------------------------------------------------------


def test_paths_outside_the_roots_are_refused(server, client, plate, tmp_path):
    pattern, _ = plate
    outside = tmp_path / "outside"
    outside.mkdir()
    write_plate(outside / "p")
    for bad in ("/etc/passwd", str(outside / "p" / "plate.####.exr"), "relative/plate.####.exr",
                str(Path(pattern).parent / ".." / ".." / "outside" / "p" / "plate.####.exr")):
        with pytest.raises(ServerError) as e:
            client.open_session(bad)
        assert e.value.code == "path_refused" and e.value.status == 403, bad
    link = Path(pattern).parent.parent / "sneaky"
    link.symlink_to(outside / "p")  # a link inside a root pointing outside it
    with pytest.raises(ServerError, match="outside the folders") as e:
        client.open_session(str(link / "plate.####.exr"))
    assert e.value.code == "path_refused"
    sid = client.open_session(pattern, backend="fake")["session"]
    with pytest.raises(ServerError) as e:
        client.export(sid, str(outside / "out"))
    assert e.value.code == "path_refused" and not (outside / "out").exists()
    with pytest.raises(ServerError) as e:
        client.add_mask(sid, 1, 1001, str(outside / "mask.png"))
    assert e.value.code in ("path_refused", "bad_input")
    with pytest.raises(ServerError) as e:
        client.open_session(pattern, project="/tmp/elsewhere.roto.json")
    assert e.value.code == "path_refused"


# --- validation and limits ------------------------------------------------------------------------


def test_malformed_and_invalid_requests_are_refused_as_data(server, client, plate):
    status, body = raw(server, "POST", "/v1/sessions", b'{"clip": "/x", ')
    assert status == 400 and body["error"]["code"] == "malformed_json"
    assert "Traceback" not in json.dumps(body)
    status, body = raw(server, "POST", "/v1/sessions", json.dumps({"clip": plate[0], "colour": "x"}).encode())
    assert status == 422 and body["error"]["code"] == "invalid_request" and "colour" in body["error"]["text"]
    sid = client.open_session(plate[0], backend="fake")["session"]
    status, body = raw(server, "POST", f"/v1/sessions/{sid}/prompts",
                       b'{"kind": "point", "object": 1, "frame": 1001, "x": NaN, "y": 3}')
    assert status in (400, 422) and body["error"]["code"] in ("malformed_json", "invalid_request")
    status, body = raw(server, "POST", f"/v1/sessions/{sid}/prompts",
                       json.dumps({"kind": "lasso", "object": 1, "frame": 1001}).encode())
    assert status == 422
    status, body = raw(server, "POST", f"/v1/sessions/{sid}/jobs", json.dumps({"kind": "track", "params": {"direction": "sideways"}}).encode())
    assert status == 422 and "direction" in body["error"]["text"]
    status, body = raw(server, "DELETE", "/v1/health")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"
    with pytest.raises(ServerError) as e:
        client.session("nope")
    assert e.value.code == "not_found" and e.value.status == 404
    # engine errors come back as the engine's sentence
    with pytest.raises(ServerError) as e:
        client.set_prompts(sid, "hero", 999, points=[(5, 5, 1)])
    assert e.value.code == "frame_out_of_range" and "1001-1008" in e.value.text


def test_oversized_bodies_are_refused(server):
    limit = server.config.max_body_bytes
    big = b'{"clip": "' + b"a" * (limit + 10) + b'"}'
    status, body = raw(server, "POST", "/v1/sessions", big)
    assert status == 413 and body["error"]["code"] == "request_too_large"
    # no Content-Length (chunked): counted while it arrives
    host, port = server.url.split("//")[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    chunks = (b"x" * 65536 for _ in range(limit // 65536 + 2))
    conn.request("POST", "/v1/sessions", body=chunks, encode_chunked=True,
                 headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 413 and json.loads(resp.read())["error"]["code"] == "request_too_large"
    conn.close()


# --- sessions, prompts, jobs --------------------------------------------------------------------------


def test_track_export_undo_redo(server, client, plate, root):
    sid, (x, y) = open_tracked(client, plate)
    summary = client.session(sid)
    assert summary["range"] == [1001, 1008] and summary["objects"][0]["keyframes"] == [1001]
    job = client.wait(client.track(sid, direction="forward")["id"])
    assert job["state"] == "succeeded" and job["result"]["frames_written"] == 7
    assert job["progress"]["done"] == job["progress"]["total"] == 7
    handle = server.engine.sessions.get(sid)
    assert handle.session.mask(1, 1004) is not None
    out = root / "out"
    exp = client.wait(client.export(sid, str(out), format="exr", shot="sh010")["id"])
    assert exp["state"] == "succeeded", exp["error"]
    assert sorted(p.name for p in out.glob("*.exr")) == [f"sh010.{f}.exr" for f in range(1001, 1009)]
    assert exp["result"]["patterns"]["CryptoObject"].endswith("sh010.####.exr")
    undone = client.undo(sid)
    assert undone["undone"].startswith("propagate") and handle.session.mask(1, 1004) is None
    assert client.redo(sid)["redone"].startswith("propagate") and handle.session.mask(1, 1004) is not None
    png = client.preview(sid, 1003, max_size=32)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # a prompt-set replaces the frame's prompts in one undoable step
    client.set_prompts(sid, "hero", 1001, points=[(x + 3, y, 1), (x - 8, y, 0)], box=(x - 15, y - 12, x + 15, y + 12))
    assert len([p for p in handle.session.data.prompts.values() if p.frame == 1001]) == 3
    assert client.undo(sid)["undone"].startswith("set prompts")
    assert len([p for p in handle.session.data.prompts.values() if p.frame == 1001]) == 1


def test_single_prompts_move_remove_keyframes(server, client, plate):
    pattern, sample = plate
    sid = client.open_session(pattern, backend="fake")["session"]
    obj = client.add_object(sid, "car")["object"]["id"]
    x, y = centre(sample)
    p = client.add_point(sid, obj, 1002, x, y)
    assert p["mask_pixels"] > 100 and p["prompt"]
    assert client.move_prompt(sid, p["prompt"], x + 2, y)["mask_pixels"] > 100
    with pytest.raises(ServerError) as e:
        client.move_prompt(sid, "nope", 1, 1)
    assert e.value.code == "not_found"
    client.add_box(sid, "car", 1005, 5, 5, 30, 30)
    client.remove_prompt(sid, p["prompt"])
    summary = client.session(sid)
    assert summary["objects"][0]["keyframes"] == [1005]
    client.clear_keyframe(sid, "car", 1005)
    assert client.session(sid)["objects"][0]["keyframes"] == []
    client.set_keyframe(sid, obj, 1005)
    assert client.session(sid)["objects"][0]["keyframes"] == [1005]


def test_same_key_reopens_the_same_session(server, client, plate):
    a = client.open_session(plate[0], key="nuke:sh010.nk:RotoAI1", backend="fake")
    b = client.open_session(plate[0], key="nuke:sh010.nk:RotoAI1")
    c = client.open_session(plate[0], key="nuke:sh010.nk:RotoAI2", backend="fake")
    assert a["session"] == b["session"] != c["session"] and a["created"] and not b["created"]


def test_a_project_file_opens_with_any_name_of_its_plate(server, client, plate, root):
    """A host may name the plate by its pattern, another frame or its folder: the same plate."""
    from engine.session.session import Session

    pattern, _ = plate
    first = pattern.replace("####", "1001")
    assert Path(first).is_file()
    project = root / "shot.roto.json"
    Session.create(first, path=project, backend="fake")
    opened = client.open_session(pattern, project=str(project))
    assert not opened["created"]
    other = write_plate(root / "second", name="other")[0]
    Session.create(other, path=root / "shot2.roto.json", backend="fake")
    with pytest.raises(ServerError) as err:
        client.open_session(pattern, project=str(root / "shot2.roto.json"))
    assert "the session was made on" in str(err.value)


def test_a_cancelled_job_stops_and_keeps_what_it_finished(server, client, plate):
    sid, _ = open_tracked(client, plate, backend="slowfake")
    job = client.track(sid, direction="forward")
    assert wait_until(lambda: (client.job(job["id"])["progress"] or {}).get("done", 0) >= 1)
    t0 = time.monotonic()
    client.cancel(job["id"])
    done = client.wait(job["id"], poll=0.2)
    assert done["state"] == "cancelled" and done["error"]["code"] == "cancelled"
    assert time.monotonic() - t0 < 2.0  # stopped between frames, long before the 7 frames were done
    s = server.engine.sessions.get(sid).session
    kept = [f for f in range(1002, 1009) if s.mask(1, f) is not None]
    assert 1 <= len(kept) < 7
    assert client.undo(sid)["undone"].startswith("propagate")  # the finished part is one undo step
    assert client.job(job["id"])["state"] == "cancelled"


def test_busy_session_and_gpu_answer_busy_not_hang(server, client, plate, root):
    sid, (x, y) = open_tracked(client, plate, key="a", backend="slowfake")
    other = client.open_session(write_plate(root / "second", name="other")[0], key="b", backend="fake")["session"]
    job = client.track(sid, direction="forward")
    handle = server.engine.sessions.get(sid)
    assert wait_until(lambda: (handle.lock.owner or "").startswith("job") and (server.engine.gpu.owner or "").startswith("job"))
    with pytest.raises(ServerError) as e:
        client.set_prompts(sid, "hero", 1001, points=[(x, y, 1)])
    assert e.value.code == "busy" and job["id"] in e.value.text and e.value.status == 409
    assert client.session(sid)["busy"].startswith("job")  # reads still answer, from the last summary
    with pytest.raises(ServerError) as e:  # another session's prompt needs the GPU the job holds
        client.set_prompts(other, "car", 1001, points=[(x, y, 1)])
    assert e.value.code == "busy" and "GPU" in e.value.text
    client.cancel(job["id"])
    client.wait(job["id"], poll=0.2)
    client.set_prompts(other, "car", 1001, points=[(x, y, 1)])  # free again


def test_concurrent_sessions_do_not_leak(server, root, plate):
    (pa, sa), (pb, sb) = plate, write_plate(root / "b", name="bplate", seed=11)
    results: dict = {}
    errors: list = []

    def work(name, pattern, sample, obj):
        try:
            c = client_for(server)
            sid = c.open_session(pattern, key=name, backend="fake")["session"]
            x, y = centre(sample)
            c.set_prompts(sid, obj, 1001, points=[(x, y, 1)])
            c.set_prompts(sid, obj + "2", 1004, box=(2, 2, 20, 20))
            job = c.wait(c.track(sid)["id"], poll=0.2)
            results[name] = (sid, job, c.session(sid))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=("A", pa, sa, "hero")),
               threading.Thread(target=work, args=("B", pb, sb, "car"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    (sid_a, job_a, sum_a), (sid_b, job_b, sum_b) = results["A"], results["B"]
    assert sid_a != sid_b and job_a["state"] == job_b["state"] == "succeeded"
    assert [o["name"] for o in sum_a["objects"]] == ["hero", "hero2"]
    assert [o["name"] for o in sum_b["objects"]] == ["car", "car2"]
    assert sum_a["clip"] != sum_b["clip"]
    sa_, sb_ = server.engine.sessions.get(sid_a).session, server.engine.sessions.get(sid_b).session
    assert set(sa_.data.prompts).isdisjoint(sb_.data.prompts)
    c = client_for(server)
    assert {j["session"] for j in c.jobs(sid_a)["jobs"]} == {sid_a}
    with pytest.raises(ServerError):  # an object of B is not an object of A
        c.set_keyframe(sid_a, "car", 1001)


def test_unavailable_features_answer_as_data(server, client, plate, monkeypatch):
    absent_features(monkeypatch)
    sid, _ = open_tracked(client, plate)
    caps = {k["name"]: k for k in client.capabilities()["job_kinds"]}
    for kind in ("depth", "shapes"):
        assert not caps[kind]["available"] and "not available in this engine version" in caps[kind]["reason"]
        with pytest.raises(ServerError) as e:
            client.submit(sid, kind)
        assert e.value.code == "feature_unavailable" and e.value.status == 501


def test_a_job_kind_plugs_in_without_server_changes(server, client, plate, monkeypatch):
    from engine.server import jobs

    jobs.job_kinds()  # load the built-in kinds before replacing one
    monkeypatch.setitem(jobs._KINDS, "shapes", jobs.JobKind("shapes", "Shapes", module="tests.fakes.shapes_job"))
    sid, _ = open_tracked(client, plate)
    caps = {k["name"]: k for k in client.capabilities()["job_kinds"]}
    assert caps["shapes"]["available"]
    job = client.wait(client.submit(sid, "shapes", out_dir=str(Path(plate[0]).parent.parent / "shapes"))["id"])
    assert job["state"] == "succeeded" and job["result"]["files"]["nuke"].endswith(".nk")


def test_bugs_come_back_as_a_sentence_with_a_reference(server, client, plate, monkeypatch):
    from engine.server import jobs
    from engine.server.schemas import OpenParams

    def broken(ctx, params):
        return 1 / 0

    monkeypatch.setitem(jobs._KINDS, "broken", jobs.JobKind("broken", "Broken", OpenParams, broken, gpu=False))
    sid, _ = open_tracked(client, plate)
    job = client.wait(client.submit(sid, "broken")["id"])
    assert job["state"] == "failed" and job["error"]["code"] == "internal_error"
    assert job["error"]["ref"] in job["error"]["text"] and "Traceback" not in json.dumps(job)


def test_events_stream_progress_and_a_disconnect_does_not_stop_the_job(server, client, plate):
    sid, _ = open_tracked(client, plate, backend="slowfake")
    job = client.track(sid, direction="forward")
    events = client.events(job["id"])
    first = next(events)
    assert first[0] == "progress" and first[1]["id"] == job["id"]
    events.close()  # the host went away
    done = client.wait(job["id"], poll=0.5)
    assert done["state"] == "succeeded" and done["result"]["frames_written"] == 7
    kinds = [e for e, _ in client.events(job["id"])]
    assert kinds == ["end"]
    with pytest.raises(ServerError) as e:
        list(client.events("missing"))
    assert e.value.code == "not_found"


def test_a_restarted_server_resumes_or_reports_jobs(tmp_path, root, isolated_config, fake_backends, plate):
    with running_server(tmp_path, [root]) as srv:
        c = client_for(srv)
        sid, _ = open_tracked(c, plate, backend="slowfake")
        job = c.track(sid, direction="forward")
        assert wait_until(lambda: (c.job(job["id"])["progress"] or {}).get("done", 0) >= 1)
    # graceful stop: the running job went back to the queue; the new server resumes it
    with running_server(tmp_path, [root]) as srv:
        c = client_for(srv)
        done = c.wait(job["id"], poll=0.5, timeout=30)
        assert done["state"] == "succeeded" and done["attempt"] == 1
        assert srv.engine.sessions.get(sid).session.mask(1, 1008) is not None
        # a job left "running" by a crash is resumed while attempts remain, then reported
        store = srv.engine.store
        row = store.job(job["id"])
        store.save_job(dict(row, state="running", attempt=3))
    with running_server(tmp_path, [root], max_attempts=3) as srv:
        c = client_for(srv)
        gone = c.job(job["id"])
        assert gone["state"] == "interrupted" and gone["error"]["code"] == "interrupted"


def test_serve_refuses_a_public_address_without_allow_remote(capsys):
    from engine.cli.main import main

    assert main(["serve", "--host", "0.0.0.0", "--port", "1"]) == 2
    assert "--allow-remote" in capsys.readouterr().err


def test_roots_policy_unit(tmp_path):
    from engine.server.errors import PathRefused
    from engine.server.roots import RootsPolicy

    (tmp_path / "a" / "b").mkdir(parents=True)
    pol = RootsPolicy([tmp_path / "a"])
    assert pol.check(str(tmp_path / "a" / "b" / "x.####.exr")) == tmp_path.resolve() / "a" / "b" / "x.####.exr"
    assert pol.check(str(tmp_path / "a")) == (tmp_path / "a").resolve()
    for bad in (str(tmp_path / "ab"), str(tmp_path / "a" / ".."), str(tmp_path / "a" / "b" / ".." / ".." / "c"), "", "a\x00b"):
        with pytest.raises(PathRefused):
            pol.check(bad)


def test_urllib_client_sees_the_same_errors(server):
    req = urllib.request.Request(server.url + "/v1/capabilities")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert json.loads(e.value.read())["error"]["code"] == "unauthorized"


def test_deliverables_are_named_after_the_plate_not_the_servers_project_file(server, client, plate, root):
    """Without shot=, files take the plate's name (its folder's for a numbers-only plate), never the
    hashed name of the project file the server made for a key; a user-named project file still names them."""
    import shutil

    sid, _ = open_tracked(client, plate, key="my-tool:sh010")
    assert "-" in Path(client.session(sid)["project"]).name  # the server's own <slug>-<hash> file
    exp = client.wait(client.export(sid, str(root / "out_key"), format="exr")["id"])
    assert exp["state"] == "succeeded", exp["error"]
    assert sorted(p.name for p in (root / "out_key").glob("*.exr")) == [f"plate.{f}.exr" for f in range(1001, 1009)]
    assert exp["result"]["patterns"]["CryptoObject"].endswith("/out_key/plate.####.exr")
    # a plate named only by numbers (DAVIS-style %05d): the folder's name, no "05d"
    nums = root / "sh030"
    nums.mkdir()
    for f in range(1001, 1009):
        shutil.copy(root / "plate" / f"plate.{f}.exr", nums / f"{f:05d}.exr")
    pattern, sample = str(nums / "%05d.exr"), plate[1]
    sid2, _ = open_tracked(client, (pattern, sample), key="davis-like")
    exp = client.wait(client.export(sid2, str(root / "out_nums"), format="exr")["id"])
    assert exp["state"] == "succeeded", exp["error"]
    # ... padded like the plate (5 digits)
    assert sorted(p.name for p in (root / "out_nums").glob("*.exr")) == [f"sh030.{f:05d}.exr" for f in range(1001, 1009)]
    # a project file the user named gives the name
    s3 = client.open_session(plate[0], project=str(root / "sh010.roto.json"), backend="fake")["session"]
    client.set_prompts(s3, "hero", 1001, points=[centre(sample)])
    exp = client.wait(client.export(s3, str(root / "out_user"), format="exr")["id"])
    assert exp["state"] == "succeeded", exp["error"]
    assert sorted(p.name for p in (root / "out_user").glob("*.exr")) == [f"sh010.{f}.exr" for f in range(1001, 1009)]


def test_a_project_path_the_server_cannot_write_is_a_4xx_not_a_500(server, client, plate, root):
    """A bad client-given path (a folder, an unwritable place) answers 4xx with the sentence; 500 stays
    for the server's own faults (a bug, its own state folder)."""
    from engine.errors import OutputError
    from engine.server.errors import InternalError, http_status

    folder = root / "out"
    folder.mkdir()
    with pytest.raises(ServerError) as e:
        client.open_session(plate[0], project=str(folder), backend="fake")
    assert e.value.status == 400 and e.value.code == "output_error"
    assert str(folder) in e.value.text
    if os.geteuid() != 0:  # root writes anywhere
        locked = root / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        try:
            with pytest.raises(ServerError) as e:
                client.open_session(plate[0], project=str(locked / "sh010.roto.json"), backend="fake")
            assert e.value.status == 400 and e.value.code == "output_error"
        finally:
            locked.chmod(0o755)
    assert http_status(OutputError("cannot write the file", path=str(root / "x.roto.json"))) == 400
    assert http_status(OutputError("cannot write the file",
                                   path="/var/tmp/roto/sessions/plate-39aa5398dd.roto.json")) == 500
    assert http_status(InternalError("a bug")) == 500
