"""The stdlib-only host client: imports nothing outside the standard library, runs on Python 3.7,
finds the token and the server, retries, times out, and starts the server or says how to."""

from __future__ import annotations

import ast
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.serverkit import (centre, client, client_for, fake_backends, isolated_config, plate, root,  # noqa: F401
                             running_server, server, wait_until)

from engine.client import RotoClient, ServerError, ServerNotRunning  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLIENT = ROOT / "engine" / "client.py"
#: files that run inside host Pythons: standard library only, Python 3.7 syntax and runtime
HOST_SIDE = [CLIENT, ROOT / "hosts" / "common" / "roto_host.py", *sorted((ROOT / "hosts").glob("*/*.py")),
             *sorted((ROOT / "hosts").glob("*/*.py.in"))]


def python37() -> str | None:
    for cand in (shutil.which("python3.7"), "/root/.pyenv/versions/3.7.16/bin/python3.7",
                 os.path.expanduser("~/.pyenv/versions/3.7.16/bin/python3.7")):
        if cand and os.path.isfile(cand):
            try:
                if subprocess.run([cand, "-c", "import sys; assert sys.version_info[:2] == (3, 7)"],
                                  capture_output=True, timeout=30).returncode == 0:
                    return cand
            except (OSError, subprocess.SubprocessError):
                continue
    return None


def test_importing_the_client_loads_only_the_standard_library():
    code = ("import sys, json; before = set(sys.modules); import engine.client; "
            "new = sorted(set(sys.modules) - before); "
            "bad = [m for m in new if m.split('.')[0] not in sys.stdlib_module_names and m not in ('engine', 'engine.client')]; "
            "print(json.dumps(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []
    # and as a lone file in an isolated interpreter without site-packages (how hosts load it)
    code = ("import importlib.util, sys; s = importlib.util.spec_from_file_location('roto_client', sys.argv[1]); "
            "m = importlib.util.module_from_spec(s); s.loader.exec_module(m); print(m.RotoClient.__name__)")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(CLIENT)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "RotoClient", out.stderr


@pytest.mark.parametrize("path", HOST_SIDE, ids=lambda p: str(p.relative_to(ROOT)))
def test_host_side_code_is_python37_syntax_without_annotations(path):
    src = path.read_text(encoding="utf-8")
    tree = ast.parse(src, filename=str(path), feature_version=(3, 7))  # no walrus, match, positional-only...
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args.args + node.args.kwonlyargs + [a for a in (node.args.vararg, node.args.kwarg) if a]
            assert node.returns is None and all(a.annotation is None for a in args), \
                f"{path.name}:{node.lineno}: keep host-side code free of annotations (Python 3.7 evaluates them)"
        assert not isinstance(node, ast.AnnAssign), f"{path.name}:{node.lineno}: no variable annotations"
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            assert all(a.name != "annotations" for a in node.names), "from __future__ import annotations is 3.7-unsafe here"


def test_the_client_runs_on_python37_against_the_real_server(server, plate):
    py37 = python37()
    if py37 is None:
        pytest.skip("no Python 3.7 interpreter here (pyenv 3.7.16 is looked for)")
    script = (
        "import importlib.util, json, sys\n"
        "for name, path in (('roto_client', sys.argv[1]), ('roto_host', sys.argv[2])):\n"
        "    s = importlib.util.spec_from_file_location(name, path); m = importlib.util.module_from_spec(s)\n"
        "    sys.modules[name] = m; s.loader.exec_module(m)\n"
        "c = sys.modules['roto_client'].RotoClient(url=sys.argv[3], token=sys.argv[4], autostart=False)\n"
        "caps = c.capabilities()\n"
        "s = c.open_session(sys.argv[5], key='py37', backend='fake')\n"
        "try:\n"
        "    c.open_session('/etc/passwd')\n"
        "except sys.modules['roto_client'].ServerError as e:\n"
        "    err = e.code\n"
        "print(json.dumps({'kinds': sorted(k['name'] for k in caps['job_kinds']), 'range': s['range'], 'err': err}))\n")
    out = subprocess.run([py37, "-I", "-c", script, str(CLIENT), str(ROOT / "hosts" / "common" / "roto_host.py"),
                          server.url, server.token, plate[0]], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert "track" in data["kinds"] and data["range"] == [1001, 1008] and data["err"] == "path_refused"
    # every host-side file compiles under 3.7 (syntax the AST check cannot see, e.g. f"{x=}")
    out = subprocess.run([py37, "-I", "-c", "import sys; [compile(open(p).read(), p, 'exec') for p in sys.argv[1:]]",
                          *map(str, HOST_SIDE)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_token_and_url_come_from_the_same_config_as_the_server(tmp_path, root, isolated_config, fake_backends, monkeypatch):
    # the default token file is <XDG_CONFIG_HOME>/roto/token, shared by server and client
    from engine.client import read_token, server_url, token_path
    from engine.server.auth import default_token_file

    assert Path(token_path()) == default_token_file() == isolated_config / "token"
    from engine.server.app import ServerThread
    from tests.serverkit import make_config

    config = make_config(tmp_path, [root], write_discovery=True)
    config.token_file = None  # the default location
    srv = ServerThread(config).start()
    try:
        assert read_token() == srv.token
        assert server_url() == srv.url  # from server.json
        c = RotoClient(autostart=False)
        assert c.url == srv.url and c.capabilities()["version"]
        monkeypatch.setenv("ROTO_TOKEN", "not-it")
        with pytest.raises(ServerError) as e:
            RotoClient(autostart=False).capabilities()
        assert e.value.code == "unauthorized"
        monkeypatch.delenv("ROTO_TOKEN")
        monkeypatch.setenv("ROTO_SERVER_URL", "http://127.0.0.1:9")
        assert RotoClient().url == "http://127.0.0.1:9"
    finally:
        srv.stop()
    assert not (isolated_config / "server.json").exists()  # removed on a clean stop


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_no_server_and_no_command_says_exactly_how_to_start_it(isolated_config, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    c = RotoClient(url=f"http://127.0.0.1:{free_port()}", token="x", retries=1, backoff=0.01)
    with pytest.raises(ServerNotRunning) as e:
        c.capabilities()
    assert "roto serve" in e.value.text and c.url in e.value.text and "ROTO_SERVER_COMMAND" in e.value.text
    with pytest.raises(ServerNotRunning) as e:
        c.ensure_server()
    assert e.value.code == "server_not_running"
    c = RotoClient(url=f"http://127.0.0.1:{free_port()}", start_command=["/nonexistent/roto", "serve"])
    with pytest.raises(ServerNotRunning, match="failed"):
        c.ensure_server()


def test_the_client_starts_the_server_when_it_is_not_running(tmp_path, root, isolated_config, plate):
    port = free_port()
    cmd = [sys.executable, "-m", "engine", "serve", "--root", str(root), "--state-dir", str(tmp_path / "state")]
    c = RotoClient(url=f"http://127.0.0.1:{port}", start_command=cmd, start_timeout=60, timeout=20)
    try:
        assert c.ensure_server() == c.url
        assert c._started is not None and c._started.poll() is None
        assert "--port" in c._started.args and str(port) in c._started.args
        # the token the new server made is read from the shared config folder
        assert c.capabilities()["roots"] == [str(root.resolve())]
        assert c.open_session(plate[0])["range"] == [1001, 1008]
        assert c.ensure_server() == c.url  # running: nothing started twice
    finally:
        if c._started is not None:
            c._started.terminate()
            c._started.wait(30)


class SilentServer:
    """Accepts connections and never answers; counts them."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
                self.accepted.append(conn)
            except OSError:
                continue

    def close(self) -> None:
        self.stop = True
        self.thread.join(2)
        for c in self.accepted:
            c.close()
        self.sock.close()


def test_timeouts_and_retries():
    silent = SilentServer()
    try:
        c = RotoClient(url=f"http://127.0.0.1:{silent.port}", token="t", timeout=0.3, retries=2, backoff=0.01,
                       autostart=False)
        t0 = time.monotonic()
        with pytest.raises(ServerError) as e:
            c.capabilities()  # GET: tried 3 times
        assert e.value.code == "timeout" and "did not answer" in e.value.text
        assert wait_until(lambda: len(silent.accepted) == 3, 2)
        assert time.monotonic() - t0 < 5
        with pytest.raises(ServerError) as e:
            c.open_session("/x")  # POST: a request that may have arrived is never sent twice
        assert e.value.code == "timeout"
        time.sleep(0.2)
        assert len(silent.accepted) == 4
    finally:
        silent.close()


def test_wait_follows_progress_and_cancels_on_request(server, plate):
    c = client_for(server)
    pattern, sample = plate
    sid = c.open_session(pattern, backend="slowfake")["session"]
    x, y = centre(sample)
    c.set_prompts(sid, "hero", 1001, points=[(x, y, 1)])
    seen: list = []
    job = c.track(sid, direction="forward")
    done = c.wait(job["id"], on_progress=lambda j: seen.append(j), should_cancel=lambda: len(seen) >= 2, poll=0.5)
    assert done["state"] == "cancelled"
    assert [j["seq"] for j in seen] == sorted({j["seq"] for j in seen})  # each change reported once, in order
    with pytest.raises(ServerError) as e:
        c.wait(job["id"], raise_on_error=True)
    assert e.value.code == "cancelled"


def test_errors_are_data_not_exceptions_from_the_transport(client):
    with pytest.raises(ServerError) as e:
        client.job("missing")
    err = e.value
    assert err.code == "not_found" and err.status == 404 and err.text.endswith(".") and isinstance(err.data, dict)
    from engine.client import describe_error

    assert describe_error(err) == err.text
    assert "ValueError" in describe_error(ValueError("x"))
