"""``roto install-host``: what lands where, the copied adapter stands alone, the startup hook is idempotent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli.main import main

REPO = Path(__file__).resolve().parents[1]


def test_nuke_copy_installs_a_standalone_adapter_and_registers_it_once(tmp_path, capsys):
    dest, home = tmp_path / "ur", tmp_path / ".nuke"
    home.mkdir()
    (home / "init.py").write_text("import nuke\nnuke.pluginAddPath('./mine')\n")
    for _ in range(2):
        assert main(["install-host", "nuke", "--dest", str(dest), "--nuke-home", str(home),
                     "--server-command", "/opt/roto/bin/roto serve --port 5555"]) == 0
    names = sorted(p.name for p in dest.iterdir())
    assert names == ["RotoAI.gizmo", "init.py", "menu.py", "roto_client.py", "roto_host.json", "roto_host.py", "roto_nuke.py"]
    assert (dest / "roto_client.py").read_text() == (REPO / "engine" / "client.py").read_text()
    init = (home / "init.py").read_text()
    assert init.startswith("import nuke\nnuke.pluginAddPath('./mine')\n")
    assert init.count("# >>> ultimate rotoscopy >>>") == 1 and f"nuke.pluginAddPath({str(dest)!r})" in init
    cfg = json.loads((dest / "roto_host.json").read_text())
    assert cfg["server_command"] == ["/opt/roto/bin/roto", "serve", "--port", "5555"]
    # the client beside the adapter uses that command to start the engine
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import roto_host; m = roto_host.load_client(); "
            "c = m.RotoClient(adapter_dir=sys.argv[1]); print(m.__name__, m.__file__); print(c._command())")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(dest)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.splitlines()
    assert first == f"roto_client {dest / 'roto_client.py'}"
    assert second == "['/opt/roto/bin/roto', 'serve', '--port', '5555']"


def test_default_server_command_is_this_python(tmp_path):
    dest = tmp_path / "f"
    assert main(["install-host", "flame", "--dest", str(dest)]) == 0
    assert json.loads((dest / "roto_host.json").read_text())["server_command"] == [sys.executable, "-m", "engine", "serve"]
    assert {p.name for p in dest.iterdir()} >= {"roto_flame_hooks.py", "roto_flame.py", "roto_flame_dialog.py",
                                                "roto_host.py", "roto_client.py"}


def test_resolve_writes_one_menu_script_per_action(tmp_path):
    scripts, lib = tmp_path / "Scripts" / "Comp" / "Ultimate Rotoscopy", tmp_path / "lib"
    assert main(["install-host", "resolve", "--dest", str(scripts), "--lib", str(lib)]) == 0
    from engine.cli.cmd_install_host import RESOLVE_ACTIONS

    assert sorted(p.stem for p in scripts.glob("*.py")) == sorted(RESOLVE_ACTIONS)
    text = (scripts / "Track Both.py").read_text()
    compile(text, "Track Both.py", "exec")
    assert f"LIB = {str(lib)!r}" in text and "roto_resolve.main('track_both', globals())" in text
    assert (lib / "roto_resolve.py").is_file() and (lib / "roto_client.py").is_file()


def test_link_and_dry_run_change_nothing_they_should_not(tmp_path, capsys):
    home = tmp_path / ".nuke"
    assert main(["install-host", "nuke", "--link", "--nuke-home", str(home), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would do" in out and str(REPO / "hosts" / "nuke") in out and not home.exists()
    assert main(["install-host", "flame", "--link"]) == 0
    assert f"DL_PYTHON_HOOK_PATH={REPO / 'hosts' / 'flame'}" in capsys.readouterr().out
    assert main(["install-host", "nuke", "--dest", str(tmp_path / "d"), "--nuke-home", str(home), "--no-register"]) == 0
    assert not (home / "init.py").exists() and "add to" in capsys.readouterr().out


def test_unknown_host_is_refused():
    with pytest.raises(SystemExit):
        main(["install-host", "houdini"])


def test_roots_are_recorded_in_the_command_the_hosts_start_the_engine_with(tmp_path, capsys, monkeypatch):
    """A host starts the engine itself: the folders it may use must come from install-host (A-C#4)."""
    from engine.cli.main import build_parser
    from engine.server.settings import ServerConfig

    shows = tmp_path / "shows"
    shows.mkdir()
    monkeypatch.chdir(tmp_path)
    dest = tmp_path / "f"
    assert main(["install-host", "flame", "--dest", str(dest), "--root", str(shows), "--root", "mnt/x"]) == 0
    cmd = json.loads((dest / "roto_host.json").read_text())["server_command"]
    assert cmd == [sys.executable, "-m", "engine", "serve", "--root", str(shows), "--root", str(tmp_path / "mnt" / "x")]
    out = capsys.readouterr().out
    assert f"the engine a host starts may use: {shows}, {tmp_path / 'mnt' / 'x'}" in out and "does not exist" in out
    # what `roto serve` makes of that command: exactly those roots, not the home folder
    args = build_parser().parse_args(cmd[3:])
    assert [str(r) for r in ServerConfig.from_env({}, roots=[Path(r) for r in args.root]).roots] == cmd[5::2]
    # with a command of its own, the roots are added to it
    assert main(["install-host", "resolve", "--dest", str(tmp_path / "s"), "--lib", str(tmp_path / "lib"),
                 "--server-command", "/opt/roto/bin/roto serve", "--root", str(shows)]) == 0
    cmd = json.loads((tmp_path / "lib" / "roto_host.json").read_text())["server_command"]
    assert cmd == ["/opt/roto/bin/roto", "serve", "--root", str(shows)]
    # without --root the output says the engine only sees the home folder
    assert main(["install-host", "nuke", "--dest", str(tmp_path / "n"), "--no-register"]) == 0
    assert "your home folder only (add --root DIR" in capsys.readouterr().out
    # --link records no command: the environment variable is named instead
    assert main(["install-host", "nuke", "--link", "--no-register", "--root", str(shows), "--dry-run"]) == 0
    assert f"ROTO_SERVER_ROOTS={shows}" in capsys.readouterr().out
