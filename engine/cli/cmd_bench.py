"""``roto bench SUITE``: speed of our code against the plain libraries, measured in one run.

Suites live in :mod:`engine.bench` (``io``, ``export``; ``track`` plugs in the same way). The
table shows frames/s of our path, of the raw library call, their ratio and the goal.
Exit status is 0 even when a ratio misses its goal (a benchmark reports, it does not fail);
``--check`` makes a missed goal exit 1 for CI.
"""

from __future__ import annotations

import argparse
import json
import sys

from engine.errors import InputError


def register(sub) -> None:
    from engine.bench import SUITES

    p = sub.add_parser("bench", help="benchmark our readers and writers against the plain libraries",
                       description="Generate test media, time our code path and the raw library on the same "
                                   "files in the same run, and print frames/s and their ratio (goal: ratio ≥ 0.8). "
                                   "Suites: io = movie and EXR decoding; export = EXR (AOV frame) and DPX writing at "
                                   "1080p and 4K.")
    p.add_argument("suite", choices=tuple(SUITES), help="which benchmark to run")
    p.add_argument("--workdir", metavar="DIR",
                   help="folder for the generated media (kept and reused); default: a temporary folder")
    p.add_argument("--size", metavar="WxH", default=None,
                   help="frame size (default: io 1920x1080; export both 1920x1080 and 4096x2160)")
    p.add_argument("--frames", type=int, default=None, metavar="N",
                   help="frames (default: io 48 movie frames; export 4 at 1080p, 2 at 4K)")
    p.add_argument("--exr-frames", type=int, default=None, metavar="N",
                   help="EXR sequence frames (default: half of --frames)")
    p.add_argument("--repeat", type=int, default=1, metavar="N", help="timed runs per side; the best counts (default 1)")
    p.add_argument("--keep", action="store_true", help="keep the temporary media and print where they are")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--check", action="store_true", help="exit 1 when a ratio misses its goal")
    p.set_defaults(func=run)


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = text.lower().replace("×", "x").split("x")
        return int(w), int(h)
    except ValueError:
        raise InputError(f"--size {text!r} is not a frame size", hint="Write it like 1920x1080") from None


def run(args: argparse.Namespace) -> int:
    from engine.bench import run_suite

    size = parse_size(args.size) if args.size else None
    quiet = args.json or not sys.stderr.isatty()

    def say(text: str) -> None:
        if not quiet:
            print(f"roto bench: {text}", file=sys.stderr)

    report = run_suite(args.suite, workdir=args.workdir, size=size, frames=args.frames,
                       exr_frames=args.exr_frames, repeat=args.repeat, keep=args.keep, progress=say)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        print_table(report)
    return 1 if (args.check and not report.ok) else 0


def print_table(report, console=None) -> None:
    """A rich table: case, frames, size, ours fps, raw fps, ratio, goal."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    m = report.machine
    cpus = m.get("cpus_usable", m.get("cpus"))
    table = Table(title=f"roto bench {report.suite}  ({cpus} CPU(s), Python {m.get('python')}, PyAV {m.get('pyav')}, "
                        f"OpenEXR {m.get('openexr')})")
    table.add_column("case")
    table.add_column("frames", justify="right")
    table.add_column("size", justify="right")
    table.add_column("fps ours", justify="right")
    table.add_column("fps raw", justify="right")
    table.add_column("ratio", justify="right")
    table.add_column("goal", justify="right")
    for r in report.rows:
        style = "green" if r.ok else "red"
        table.add_row(r.label, str(r.frames), f"{r.width}x{r.height}", f"{r.ours_fps:.1f}", f"{r.raw_fps:.1f}",
                      f"[{style}]{r.ratio:.2f}[/{style}]", f"≥ {r.goal:.2f}")
    console.print(table)
    for r in report.rows:
        console.print(f"  {r.name}: ours = {r.ours}; raw = {r.raw}; open {r.extra.get('ours_open_s', 0):.3f} s")
    if report.workdir:
        console.print(f"  media kept in {report.workdir}")
