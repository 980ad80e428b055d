"""``roto open``: a plate, a project file or a session id → a session on the server and a sign-in link."""

from __future__ import annotations

import http.client

from tests.serverkit import client, fake_backends, isolated_config, plate, root, server  # noqa: F401

from engine.cli.main import main


def follow(srv, link: str) -> tuple[int, str]:
    host, port = srv.url.split("//")[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    conn.request("GET", link.split(srv.url, 1)[1], headers={"Accept": "text/html"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status, resp.getheader("location") or ""


def run_open(capsys, *args):
    code = main(["open", *args])
    out = capsys.readouterr()
    return code, out.out.strip(), out.err


def test_open_a_plate_prints_a_one_time_link(server, capsys, plate):
    code, out, err = run_open(capsys, plate[0], "--backend", "fake", "--no-browser", "--url", server.url,
                              "--frames", "1002-1006")
    assert code == 0 and out.startswith(server.url + "/viewer/login?code=")
    assert server.token not in out and "within 2 minutes" in err
    sid = err.split("roto: session ", 1)[1].split()[0]
    status, location = follow(server, out)
    assert status == 303 and location == f"/?session={sid}"
    assert follow(server, out)[0] == 401  # used
    from engine.client import RotoClient

    s = RotoClient(url=server.url, token=server.token, autostart=False).session(sid)
    assert s["range"] == [1002, 1006] and s["backend"] == "fake"


def test_open_a_project_file_or_a_session_id(server, client, capsys, plate, root):
    s = client.open_session(plate[0], key="nuke:sh010.nk:RotoAI1", backend="fake")
    sid, project = s["session"], s["project"]  # a project file the server made in its state folder
    code, out, err = run_open(capsys, project, "--no-browser", "--url", server.url)
    assert code == 0 and f"roto: session {sid} " in err
    mine = root / "sh010.roto.json"
    other = client.open_session(plate[0], project=str(mine), backend="fake")["session"]
    client.close_session(other)
    code, out, err = run_open(capsys, str(mine), "--no-browser", "--url", server.url)
    assert code == 0 and f"roto: session {other} " in err
    code, out, err = run_open(capsys, sid, "--no-browser", "--url", server.url)
    assert code == 0 and f"roto: session {sid} " in err and follow(server, out)[1] == f"/?session={sid}"
    code, out, err = run_open(capsys, "0123456789ab", "--no-browser", "--url", server.url)
    assert code == 2 and "no plate, project file or open session named 0123456789ab" in err


def test_open_refuses_what_the_server_refuses(server, capsys, tmp_path):
    code, out, err = run_open(capsys, str(tmp_path / "elsewhere" / "plate.####.exr"), "--no-browser", "--url", server.url)
    assert code == 2 and "outside the folders" in err and out == ""


def test_open_starts_a_browser_with_the_link(server, capsys, plate, monkeypatch):
    import webbrowser

    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url, new=0: opened.append(url) or True)
    code, out, err = run_open(capsys, plate[0], "--backend", "fake", "--url", server.url)
    assert code == 0 and len(opened) == 1 and opened[0].startswith(server.url + "/viewer/login?code=")
    assert out.startswith(server.url + "/?session=") and "code=" not in out
    monkeypatch.setattr(webbrowser, "open", lambda url, new=0: False)
    code, out, err = run_open(capsys, plate[0], "--backend", "fake", "--url", server.url)
    assert code == 0 and "no browser could be started" in err and "/viewer/login?code=" in out


def test_open_without_a_server_says_how_to_start_one(isolated_config, capsys, monkeypatch, plate):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("ROTO_SERVER_COMMAND", "false")
    code, out, err = run_open(capsys, plate[0], "--no-browser", "--url", f"http://127.0.0.1:{port}")
    assert code == 2 and "not running" in err and "roto serve" in err


def test_open_starts_the_server_when_none_runs(isolated_config, capsys, monkeypatch, plate, root):
    """No server: ``roto open`` starts ``roto serve`` (same Python) on the URL's port, then signs in."""
    import json
    import os
    import signal
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.delenv("ROTO_SERVER_COMMAND", raising=False)
    url = f"http://127.0.0.1:{port}"
    pid = None
    try:
        code, out, err = run_open(capsys, plate[0], "--no-browser", "--url", url, "--root", str(root),
                                  "--backend", "classical")
        info = json.loads((isolated_config / "server.json").read_text())
        pid = info["pid"]
        assert code == 0, err
        assert info["url"] == url and out.startswith(url + "/viewer/login?code=")
        from engine.viewer.auth import LOGIN_PATH

        host, _ = url.split("//")[1].rsplit(":", 1)
        conn = http.client.HTTPConnection(host, port, timeout=20)
        conn.request("GET", out.split(url, 1)[1], headers={"Accept": "text/html"})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 303 and LOGIN_PATH not in resp.getheader("location")
    finally:
        if pid is None and (isolated_config / "server.json").exists():
            pid = json.loads((isolated_config / "server.json").read_text()).get("pid")
        if pid:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    if os.waitpid(pid, os.WNOHANG)[0]:  # our child (the client started it): reap it
                        break
                except ChildProcessError:
                    try:
                        os.kill(pid, 0)
                    except ProcessLookupError:
                        break
                time.sleep(0.1)
