"""``roto install-host nuke|flame|resolve``: put a host adapter where the host finds it.

    roto install-host nuke    [--dest DIR] [--nuke-home DIR] [--link] [--no-register]
    roto install-host flame   [--dest DIR] [--link]
    roto install-host resolve [--dest DIR] [--lib DIR] [--link]
    (all: [--server-command CMD] [--root DIR ...] [--dry-run])

By default the adapter is **copied** with the engine's stdlib-only client beside it (as
``roto_client.py``) and a ``roto_host.json`` naming the command that starts the server (this
Python's ``-m engine serve``), so the host starts the engine itself when it is not running.
Each ``--root DIR`` is added to that command as ``--root DIR``: the folders the engine a host
starts may read and write (default: the home folder only; studio plates under ``/shows`` or
``/mnt`` need a ``--root``). ``--link`` copies nothing and points the host at this checkout instead (studio set-ups that
manage ``NUKE_PATH`` / ``DL_PYTHON_HOOK_PATH`` themselves). Manual steps: ``docs/hosts/``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

from engine.errors import InputError, OutputError

HOSTS = ("nuke", "flame", "resolve")
MARK_BEGIN = "# >>> ultimate rotoscopy >>>"
MARK_END = "# <<< ultimate rotoscopy <<<"

#: files each host needs, relative to the repository (destination name after the arrow)
FILES = {
    "nuke": ["hosts/nuke/init.py", "hosts/nuke/menu.py", "hosts/nuke/roto_nuke.py", "hosts/common/roto_host.py",
             "gizmos/RotoAI.gizmo", "engine/client.py>roto_client.py"],
    "flame": ["hosts/flame/roto_flame_hooks.py", "hosts/flame/roto_flame.py", "hosts/flame/roto_flame_dialog.py",
              "hosts/common/roto_host.py", "engine/client.py>roto_client.py"],
    "resolve": ["hosts/resolve/roto_resolve.py", "hosts/common/roto_host.py", "engine/client.py>roto_client.py"],
}

#: Resolve/Fusion menu entries: script name -> action
RESOLVE_ACTIONS = {
    "Track Both": "track_both", "Track Forward": "track_forward", "Track Backward": "track_backward",
    "Matte": "matte", "Depth": "depth", "Shapes": "shapes", "QC": "qc", "Undo": "undo", "Redo": "redo",
    "Mattes to Media Pool": "mediapool", "Cancel": "cancel_jobs",
}


def register(sub) -> None:
    p = sub.add_parser("install-host", help="install the Nuke, Flame or Resolve adapter",
                       description=__doc__.split("\n\n")[0].rstrip(".") + ".",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="Details and manual steps: docs/hosts/nuke.md, flame.md, resolve.md.")
    p.add_argument("host", choices=HOSTS)
    p.add_argument("--dest", metavar="DIR", help="where the adapter goes (default: the host's user folder)")
    p.add_argument("--link", action="store_true", help="point the host at this checkout instead of copying")
    p.add_argument("--server-command", metavar="CMD",
                   help="command that starts the engine server (default: this Python -m engine serve)")
    p.add_argument("--root", action="append", metavar="DIR", default=[],
                   help="a folder the engine the host starts may read and write (plates, output); repeatable. "
                        "Replaces the default (your home folder): add --root ~ to keep it")
    p.add_argument("--nuke-home", metavar="DIR", help="nuke: the .nuke folder whose init.py is edited (default ~/.nuke)")
    p.add_argument("--no-register", action="store_true", help="nuke: do not edit ~/.nuke/init.py (print the line)")
    p.add_argument("--lib", metavar="DIR", help="resolve: folder for the adapter modules (default: <config dir>/hosts/resolve)")
    p.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    p.set_defaults(func=run)


def repo_root() -> Path:
    import engine

    root = Path(engine.__file__).resolve().parent.parent
    if not (root / "hosts").is_dir():
        raise InputError("the host adapters are not part of this installation (no hosts/ folder beside engine/)",
                         path=str(root), hint="Run roto install-host from a checkout of the engine")
    return root


def roots(args: argparse.Namespace) -> list[str]:
    """The ``--root`` folders, absolute."""
    return [os.path.abspath(os.path.expanduser(r)) for r in getattr(args, "root", None) or []]


def server_command(args: argparse.Namespace) -> list[str]:
    if args.server_command:
        cmd = shlex.split(args.server_command, posix=os.name != "nt")
    else:
        cmd = [sys.executable, "-m", "engine", "serve"]
    for r in roots(args):
        cmd += ["--root", r]
    return cmd


def note_roots(plan: Plan, args: argparse.Namespace, recorded: bool) -> None:
    """Say which folders the engine a host starts may use (and how to change them)."""
    folders = roots(args)
    for r in folders:
        if not os.path.isdir(r):
            plan.note(f"note: the root {r} does not exist (yet)")
    if not recorded:
        if folders:
            plan.note(f"--link records no server command: set ROTO_SERVER_ROOTS={os.pathsep.join(folders)} in the "
                      f"host's environment (or ROTO_SERVER_COMMAND) so the engine it starts may use them")
        return
    plan.note("the engine a host starts may use: " + (", ".join(folders) if folders else
                                                       "your home folder only (add --root DIR for plates elsewhere)"))


def _config_dir() -> Path:
    from engine.client import config_dir

    return Path(config_dir())


class Plan:
    """Steps, printed, then carried out unless --dry-run."""

    def __init__(self, dry: bool) -> None:
        self.dry = dry
        self.lines: list[str] = []

    def copy(self, src: Path, dst: Path) -> None:
        self.lines.append(f"copy {src} -> {dst}")
        if not self.dry:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)

    def write(self, dst: Path, text: str) -> None:
        self.lines.append(f"write {dst}")
        if not self.dry:
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(dst.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, dst)

    def note(self, text: str) -> None:
        self.lines.append(text)


def copy_files(plan: Plan, host: str, root: Path, dest: Path) -> None:
    for item in FILES[host]:
        src, _, name = item.partition(">")
        plan.copy(root / src, dest / (name or Path(src).name))


def host_json(args: argparse.Namespace) -> str:
    from engine import __version__

    return json.dumps({"server_command": server_command(args), "engine_version": __version__,
                       "installed": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=2) + "\n"


def with_block(text: str, block: str) -> str:
    """``text`` with our marked block replaced (or appended)."""
    begin, end = text.find(MARK_BEGIN), text.find(MARK_END)
    if begin != -1 and end != -1:
        return text[:begin] + block + text[end + len(MARK_END):]
    sep = "" if not text or text.endswith("\n") else "\n"
    return text + sep + block + "\n"


def install_nuke(args: argparse.Namespace, plan: Plan, root: Path) -> None:
    nuke_home = Path(args.nuke_home).expanduser() if args.nuke_home else Path.home() / ".nuke"
    if args.link:
        target = root / "hosts" / "nuke"
        plan.note(f"no copy: Nuke will load {target} (the repository's gizmos/ and hosts/common/ are added by its init.py)")
    else:
        target = Path(args.dest).expanduser() if args.dest else nuke_home / "ultimate_rotoscopy"
        copy_files(plan, "nuke", root, target)
        plan.write(target / "roto_host.json", host_json(args))
    note_roots(plan, args, recorded=not args.link)
    block = f"{MARK_BEGIN}\nimport nuke\nnuke.pluginAddPath({str(target)!r})\n{MARK_END}"
    init = nuke_home / "init.py"
    if args.no_register:
        plan.note(f"add to {init}:\n{block}\n(or add {target} to NUKE_PATH)")
    else:
        current = init.read_text(encoding="utf-8") if init.is_file() else ""
        plan.write(init, with_block(current, block))
    plan.note("restart Nuke: Nodes menu > Ultimate Rotoscopy > RotoAI")


def install_flame(args: argparse.Namespace, plan: Plan, root: Path) -> None:
    if args.link:
        plan.note(f"no copy: set DL_PYTHON_HOOK_PATH={root / 'hosts' / 'flame'} (the hooks find hosts/common and "
                  f"engine/client.py in this checkout) and restart Flame, or rescan the Python hooks")
        note_roots(plan, args, recorded=False)
        return
    shared = Path("/opt/Autodesk/shared/python")
    if args.dest:
        target = Path(args.dest).expanduser()
    elif shared.is_dir() and os.access(shared, os.W_OK):
        target = shared / "ultimate_rotoscopy"
    else:
        target = _config_dir() / "hosts" / "flame"
    copy_files(plan, "flame", root, target)
    plan.write(target / "roto_host.json", host_json(args))
    note_roots(plan, args, recorded=True)
    if target.parent != shared:
        plan.note(f"set DL_PYTHON_HOOK_PATH={target} in Flame's environment (or copy the folder to {shared})")
    plan.note("restart Flame or rescan the Python hooks: right-click a clip > Ultimate Rotoscopy")


def resolve_scripts_dir() -> Path:
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support" / "Blackmagic Design" / "DaVinci Resolve"
    elif os.name == "nt":
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "Blackmagic Design" / \
            "DaVinci Resolve" / "Support"
    else:
        base = Path.home() / ".local" / "share" / "DaVinciResolve"
    return base / "Fusion" / "Scripts" / "Comp" / "Ultimate Rotoscopy"


def resolve_entry(lib: Path, action: str) -> str:
    template = (repo_root() / "hosts" / "resolve" / "entry_template.py").read_text(encoding="utf-8")
    return template.replace('"__ROTO_LIB__"', repr(str(lib))).replace('"__ROTO_ACTION__"', repr(action))


def install_resolve(args: argparse.Namespace, plan: Plan, root: Path) -> None:
    scripts = Path(args.dest).expanduser() if args.dest else resolve_scripts_dir()
    if args.link:
        lib = root / "hosts" / "resolve"
        plan.note(f"no copy of the adapter: the menu scripts load it from {lib}")
    else:
        lib = Path(args.lib).expanduser() if args.lib else _config_dir() / "hosts" / "resolve"
        copy_files(plan, "resolve", root, lib)
        plan.write(lib / "roto_host.json", host_json(args))
    note_roots(plan, args, recorded=not args.link)
    for title, action in RESOLVE_ACTIONS.items():
        plan.write(scripts / f"{title}.py", resolve_entry(lib, action))
    plan.note("in Resolve: Fusion page > Workspace > Scripts > Ultimate Rotoscopy")


def run(args: argparse.Namespace) -> int:
    root = repo_root()
    plan = Plan(args.dry_run)
    try:
        {"nuke": install_nuke, "flame": install_flame, "resolve": install_resolve}[args.host](args, plan, root)
    except OSError as exc:
        raise OutputError(f"installing the {args.host} adapter failed ({exc.strerror or exc})",
                          path=getattr(exc, "filename", None), hint="Choose another --dest") from exc
    head = "would do" if args.dry_run else "done"
    print(f"roto install-host {args.host}: {head}:")
    for line in plan.lines:
        print("  " + line)
    return 0
