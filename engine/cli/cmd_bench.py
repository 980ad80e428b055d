"""``roto bench SUITE``: speed of our code against the plain libraries, measured in one run.

Suites live in :mod:`engine.bench` (``io``, ``export``, ``track``). The table shows frames/s of
our path, of the raw library call, their ratio and the goal; ``track`` shows seconds per frame and
peak memory of ``--backend`` against the weight-free tracker (its own table).
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
                                   "1080p and 4K; track = s/frame and peak memory of --backend vs the weight-free "
                                   "tracker at 640x360 and 1080p (or --clip).")
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
    t = p.add_argument_group("track suite")
    t.add_argument("--backend", default="auto", help="backend to time against the classical tracker (default auto)")
    t.add_argument("--clip", metavar="PATH", help="time on this plate instead of synthetic ones")
    t.add_argument("--point", metavar="X,Y", help="the click on the clip's first frame (default: its centre)")
    t.add_argument("--model", metavar="NAME", help="SAM 2 weights to use, e.g. sam2.1-tiny")
    t.add_argument("--image-size", type=int, metavar="N", help="SAM 2 input size (default 1024)")
    t.add_argument("--device", metavar="DEV", help="cuda, mps or cpu (default: automatic)")
    t.add_argument("--random-weights", action="store_true",
                   help="SAM 2 architecture with random weights: real speed and memory without downloaded weights")
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

    extra = {}
    if args.suite == "track":
        point = None
        if args.point:
            try:
                x, y = (float(v) for v in args.point.split(","))
            except ValueError:
                raise InputError(f"--point {args.point!r} is not X,Y", hint="Write it like 210,350") from None
            point = (x, y)
        extra = {"backend": args.backend, "clip": args.clip, "point": point, "model": args.model,
                 "image_size": args.image_size, "device": args.device, "random_weights": args.random_weights}
    report = run_suite(args.suite, workdir=args.workdir, size=size, frames=args.frames,
                       exr_frames=args.exr_frames, repeat=args.repeat, keep=args.keep, progress=say, **extra)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        from engine.bench import get_suite

        getattr(get_suite(args.suite), "print_table", print_table)(report)
    return 1 if (args.check and not report.ok) else 0


def print_table(report, console=None) -> None:
    """A rich table: case, frames, size, ours fps, raw fps, ratio, goal."""
    from rich.console import Console
    from rich.markup import escape
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
        table.add_row(escape(r.label), str(r.frames), f"{r.width}x{r.height}", f"{r.ours_fps:.1f}", f"{r.raw_fps:.1f}",
                      f"[{style}]{r.ratio:.2f}[/{style}]", f"≥ {r.goal:.2f}")
    console.print(table)
    for r in report.rows:
        console.print(f"  {r.name}: ours = {r.ours}; raw = {r.raw}; open {r.extra.get('ours_open_s', 0):.3f} s",
                      markup=False)
    if report.workdir:
        console.print(f"  media kept in {report.workdir}", markup=False)
