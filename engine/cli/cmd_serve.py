"""``roto serve``: run the engine as a local service for the host adapters (Nuke, Flame, Resolve).

    roto serve [--host 127.0.0.1] [--port 47810] [--root DIR ...] [--state-dir DIR]
               [--token-file FILE] [--max-body-mb N] [--workers N] [--allow-remote]

Requests must carry ``Authorization: Bearer <token>``; the token is made on the first start
and kept in the token file (mode 0600), where :mod:`engine.client` reads it. Paths outside the
roots (default: your home folder) are refused. Jobs and sessions are kept in the state folder,
so a restarted server resumes or reports them. See docs/hosts/ and DR009.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.errors import DependencyMissing, InputError


def register(sub) -> None:
    p = sub.add_parser("serve", help="run the engine as a local service for Nuke, Flame and Resolve",
                       description=__doc__.split("\n\n")[0].rstrip(".") + ".",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="Environment: ROTO_SERVER_HOST, ROTO_SERVER_PORT, ROTO_SERVER_ROOTS (os.pathsep-separated), "
                              "ROTO_SERVER_STATE, ROTO_SERVER_MAX_BODY_MB, ROTO_TOKEN_FILE.")
    p.add_argument("--host", help="address to bind (default 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, help="port (default 47810)")
    p.add_argument("--root", action="append", metavar="DIR",
                   help="a folder requests may read and write; repeatable (default: your home folder)")
    p.add_argument("--state-dir", metavar="DIR", help="jobs database and server-made session files "
                                                      "(default: <cache dir>/server)")
    p.add_argument("--token-file", metavar="FILE", help="the token file (default: ~/.config/roto/token)")
    p.add_argument("--max-body-mb", type=float, metavar="N", help="largest request body accepted (default 8)")
    p.add_argument("--workers", type=int, metavar="N", help="background job threads (default 2; GPU jobs run one at a time)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow binding an address other than loopback (the token is then sent in clear text)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise DependencyMissing("roto serve needs FastAPI and uvicorn",
                                hint='pip install "ultimate-rotoscopy[server]"') from None
    from engine.server.app import serve
    from engine.server.settings import LOOPBACK, ServerConfig

    overrides = {"host": args.host, "port": args.port,
                 "roots": [Path(r) for r in args.root] if args.root else None,
                 "state_dir": Path(args.state_dir) if args.state_dir else None,
                 "token_file": Path(args.token_file) if args.token_file else None,
                 "max_body_bytes": int(args.max_body_mb * 1024 * 1024) if args.max_body_mb else None,
                 "workers": args.workers}
    config = ServerConfig.from_env(**overrides)
    if config.host not in LOOPBACK and not args.allow_remote:
        raise InputError(f"--host {config.host} would expose the engine beyond this machine",
                         hint="Keep the default 127.0.0.1, or add --allow-remote if you really mean it")
    from engine.server.auth import default_token_file, load_or_create_token

    token_file = config.token_file or default_token_file()
    load_or_create_token(token_file)
    print(f"roto: engine server on {config.url}", file=sys.stderr)
    print(f"roto: token file {token_file} (hosts read it through engine.client)", file=sys.stderr)
    print(f"roto: roots {', '.join(str(r) for r in config.roots)}; state {config.state_dir}", file=sys.stderr)
    serve(config)
    return 0
