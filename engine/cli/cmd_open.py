"""``roto open``: open a plate or a session in the browser viewer, starting the engine server if needed.

    roto open PLATE | SESSION.roto.json | SESSION_ID [--key KEY] [--backend NAME] [--frames IN-OUT]
              [--project FILE] [--url URL] [--root DIR ...] [--no-browser]

The browser is signed in with a one-time link (valid two minutes) that sets an HttpOnly cookie;
the token itself never reaches the browser. ``--no-browser`` prints that link instead (open it
on this machine). See docs/viewer.md.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from engine.errors import InputError, RotoError

SESSION_ID = re.compile(r"^[0-9a-f]{12}$")


def register(sub) -> None:
    p = sub.add_parser("open", help="open a plate or a session in the browser viewer",
                       description=__doc__.split("\n\n")[0].rstrip(".") + ".",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="The server is started with `roto serve` when none answers (ROTO_SERVER_COMMAND overrides).")
    p.add_argument("target", metavar="PLATE|SESSION",
                   help="a plate (movie, sequence pattern, one frame or folder), a session project file "
                        "(.roto.json) or the id of a session open on the server")
    p.add_argument("--project", metavar="FILE", help="project file to use (or create) for a plate")
    p.add_argument("--key", help="a stable name for the session: the same key reopens the same session")
    p.add_argument("--backend", metavar="NAME", help="segmenter: auto, classical, sam2, sam3 (default: auto)")
    p.add_argument("--frames", metavar="IN-OUT", help="in/out points of a new session, e.g. 1001-1100")
    p.add_argument("--fps", metavar="RATE", help="frame rate for sequences that do not state one")
    p.add_argument("--colourspace", "--colorspace", dest="colourspace", metavar="NAME", help="input colourspace")
    p.add_argument("--url", help="the engine server (default: the running one, else http://127.0.0.1:47810)")
    p.add_argument("--root", action="append", metavar="DIR",
                   help="folders a server started by this command may use (default: your home folder)")
    p.add_argument("--no-browser", action="store_true",
                   help="print the one-time sign-in link instead of opening a browser")
    p.set_defaults(func=run)


def _start_command(args: argparse.Namespace) -> list[str] | None:
    if os.environ.get("ROTO_SERVER_COMMAND"):
        return None  # the client uses it
    cmd = [sys.executable, "-m", "engine.cli.main", "serve"]
    for r in args.root or ():
        cmd += ["--root", os.path.abspath(os.path.expanduser(r))]
    return cmd


def _open_session(client, args: argparse.Namespace) -> tuple[str, str]:
    """``(session id, plate path)`` for the target."""
    from engine.cli.common import parse_frames

    target = args.target
    path = os.path.abspath(os.path.expanduser(target))
    if os.path.isfile(path) and path.endswith(".json"):
        from engine.session import project

        for s in client.request("GET", "/v1/sessions").get("sessions", []):  # open already (e.g. server-made)
            if os.path.realpath(str(s.get("project"))) == os.path.realpath(path):
                return s["session"], s["clip"]
        data, _ = project.load(path)
        body = {"clip": data.clip.path, "project": path}
        if args.backend:
            body["backend"] = args.backend
        s = client.request("POST", "/v1/sessions", body)
        return s["session"], data.clip.path
    if SESSION_ID.match(target) and not os.path.exists(path):
        s = client.request("GET", f"/v1/sessions/{target}")
        return s["session"], s["clip"]
    lo, hi = parse_frames(args.frames)
    body = {"clip": path, "project": os.path.abspath(args.project) if args.project else None, "key": args.key,
            "backend": args.backend, "in_point": lo, "out_point": hi, "fps": args.fps, "colourspace": args.colourspace}
    s = client.request("POST", "/v1/sessions", {k: v for k, v in body.items() if v is not None})
    return s["session"], path


def run(args: argparse.Namespace) -> int:
    from engine.client import RotoClient, ServerError

    client = RotoClient(url=args.url, start_command=_start_command(args), timeout=60.0)
    try:
        client.ensure_server()
        sid, clip = _open_session(client, args)
        link = client.request("POST", "/v1/viewer/link", {"session": sid})
    except ServerError as exc:
        if exc.code == "not_found" and SESSION_ID.match(args.target):
            raise InputError(f"there is no plate, project file or open session named {args.target}",
                             hint="Give the plate's path or the session's .roto.json file") from None
        raise RotoError(exc.text.rstrip("."), hint=None) from None
    print(f"roto: session {sid} on {clip}", file=sys.stderr)
    if args.no_browser:
        print(f"roto: open this link on this machine within {link['expires_in'] // 60} minutes "
              "(it signs the browser in once):", file=sys.stderr)
        print(link["url"])
        return 0
    import webbrowser

    opened = False
    try:
        opened = webbrowser.open(link["url"], new=2)
    except Exception:  # no browser machinery at all (headless box)
        opened = False
    if not opened:
        print("roto: no browser could be started; open this link on this machine within "
              f"{link['expires_in'] // 60} minutes:", file=sys.stderr)
        print(link["url"])
        return 0
    print(f"roto: viewer {link['page']}", file=sys.stderr)
    print(link["page"])
    return 0
