"""``roto`` entry point: sub-commands, error mapping and exit codes.

Exit status: 0 success, 2 a :class:`~engine.errors.RotoError` (one or two sentences on stderr;
``--debug`` adds the traceback), 130 interrupted (Ctrl-C), 1 an unexpected bug (traceback).

Each sub-command lives in its own module exposing ``register(subparsers)``; only the chosen
command's module imports heavy packages.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from engine import __version__
from engine.errors import Cancelled, RotoError

#: module names under engine.cli that define sub-commands, in --help order
COMMAND_MODULES: tuple[str, ...] = (
    "cmd_demo",
    "cmd_info",
    "cmd_proxy",
    "cmd_track",
    "cmd_matte",
    "cmd_qc",
    "cmd_depth",
    "cmd_session",
    "cmd_eval",
    "cmd_colour",
    "cmd_export",
    "cmd_batch",
    "cmd_shapes",
    "cmd_roto_import",
    "cmd_models",
    "cmd_bench",
    "cmd_serve",
    "cmd_open",
    "cmd_install_host",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="roto",
        description="Ultimate Rotoscopy: production AI rotoscoping for VFX plates.",
        epilog="Run `roto COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"roto {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"engine.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        result = args.func(args)
        return int(result or 0)
    except Cancelled as exc:
        print(f"roto: {exc.sentence()}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("roto: interrupted; finished outputs are kept, partial ones were removed.", file=sys.stderr)
        return 130
    except RotoError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"roto: error: {exc.sentence()}", file=sys.stderr)
        return exc.exit_status
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
