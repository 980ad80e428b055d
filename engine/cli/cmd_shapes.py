"""``roto shapes SESSION``: a session's mattes as editable, animated shapes for a host.

    roto shapes shot010.roto.json --host nuke|fusion|ae|flame [--points N] [--tolerance PX]
                [--keys all|needed] [--objects NAME,...] [--frames IN-OUT] [--mattes PATTERN]
                [--layout object|shape|single] [--save-shapes FILE.json] --out FILE

Each object's matte (its soft alpha when ``roto matte`` made one, else its mask) becomes closed
Bézier shapes with at most ``--points`` points, within ``--tolerance`` px of the matte's edge,
the same points following the same spots of the object over time; a split, merge or occlusion
starts a new shape with its own lifetime. Hosts: ``nuke`` (.nk with the plate, Roto nodes and
the matte EXR + Cryptomatte), ``fusion`` (.setting for Fusion/Resolve), ``ae`` (.jsx for After
Effects), ``flame`` (GMask RAW setups + a JSON manifest). SESSION may also be a shapes file
saved with ``--save-shapes`` (no refitting).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.errors import InputError


def register(sub) -> None:
    p = sub.add_parser("shapes", help="turn a session's mattes into editable shapes for Nuke, Fusion, AE or Flame",
                       description=__doc__.split("\n\n")[0].rstrip(".") + ".",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="Formats: docs/formats/nuke-roto.md, fusion-polylinemask.md, ae-mask-jsx.md, "
                              "flame-gmask.md. Import existing Nuke roto with `roto import-roto`.")
    p.add_argument("session", metavar="SESSION", help="session project file (.roto.json) or a saved shapes file")
    p.add_argument("--host", required=True, choices=("nuke", "fusion", "resolve", "ae", "flame"),
                   help="which host's file to write (resolve = fusion)")
    p.add_argument("--out", required=True, metavar="FILE", help="output file (.nk, .setting, .jsx; flame: .json "
                   "manifest with the .raw setups beside it), or a folder")
    g = p.add_argument_group("shapes")
    g.add_argument("--points", type=int, default=32, metavar="N", help="at most N points per shape (default 32)")
    g.add_argument("--min-points", type=int, default=4, metavar="N", help="at least N points per shape (default 4)")
    g.add_argument("--tolerance", type=float, default=0.5, metavar="PX",
                   help="how close the curve stays to the matte's edge, pixels (default 0.5)")
    g.add_argument("--keys", choices=("all", "needed"), default="all",
                   help="a key on every frame (default) or only where interpolation would leave the tolerance")
    g.add_argument("--objects", metavar="LIST", help="comma-separated object names or ids (default: all)")
    g.add_argument("--frames", metavar="IN-OUT", help="only these frames (plate numbers), e.g. 1001-1050")
    g.add_argument("--min-area", type=float, default=16.0, metavar="PX2",
                   help="drop islands and holes smaller than this many pixels (default 16)")
    g.add_argument("--corner-angle", type=float, default=50.0, metavar="DEG",
                   help="a turn sharper than this within 4 px is a corner (default 50)")
    g.add_argument("--no-flow", action="store_true", help="carry points by outline matching only (no optical flow)")
    g.add_argument("--no-holes", action="store_true", help="ignore holes in the mattes")
    g.add_argument("--save-shapes", metavar="FILE", help="also save the shapes (JSON) to re-export without refitting")
    h = p.add_argument_group("host")
    h.add_argument("--mattes", metavar="PATTERN",
                   help="the delivered matte EXR sequence (shot.####.exr) to load beside the shapes")
    h.add_argument("--layout", choices=("object", "shape", "single"), default="object",
                   help="nuke: one Roto node per object (default), per shape, or one for everything")
    h.add_argument("--crypto-layer", default="CryptoObject", metavar="NAME", help="nuke: the Cryptomatte layer")
    h.add_argument("--time-offset", type=int, default=0, metavar="N",
                   help="fusion: add N to frame numbers (Resolve clips often start at 0: -1001)")
    h.add_argument("--origin", choices=("centre", "bottom-left"), default="centre",
                   help="flame: coordinate origin of the RAW setups (default: image centre, y up)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def _load_source(path: str):
    """A Session, or a ShapeSet when ``path`` is a saved shapes file."""
    p = Path(path)
    if not p.is_file():
        raise InputError("the session file does not exist", path=path)
    try:
        head = p.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError as exc:
        raise InputError(f"the file cannot be read ({exc.strerror})", path=path) from exc
    if '"roto-shapes"' in head:
        from engine.shapes.model import ShapeSet

        return ShapeSet.load(p)
    from engine.session.session import Session

    return Session.open(p, autosave=False)


def run(args: argparse.Namespace) -> int:
    from engine.cli.common import cancel_on_interrupt, parse_frames, progress_bar
    from engine.export.hostfiles import write_host_script
    from engine.shapes.track import ShapeOptions

    if args.points < 3:
        raise InputError(f"--points {args.points} is too few", hint="A closed shape needs at least 3 points")
    if args.tolerance <= 0:
        raise InputError("--tolerance must be more than 0 pixels")
    source = _load_source(args.session)
    objects = [o.strip() for o in args.objects.split(",") if o.strip()] if args.objects else None
    frames = None
    if args.frames:
        lo, hi = parse_frames(args.frames)
        frames = (lo if lo is not None else -10**9, hi if hi is not None else 10**9)
    opts = ShapeOptions(tolerance=args.tolerance, max_points=args.points, min_points=min(args.min_points, args.points),
                        corner_angle=args.corner_angle, min_area=args.min_area, keys=args.keys,
                        flow=not args.no_flow, holes=not args.no_holes)
    host = "fusion" if args.host == "resolve" else args.host
    extra: dict = {}
    if host == "nuke":
        extra = {"layout": args.layout, "crypto_layer": args.crypto_layer}
    elif host == "fusion":
        extra = {"time_offset": args.time_offset}
    elif host == "flame":
        extra = {"origin": args.origin}
    with cancel_on_interrupt() as cancel, progress_bar(not args.json) as progress:
        result = write_host_script(source, host, args.out, matte_pattern=args.mattes, objects=objects,
                                   shape_options=opts, frames=frames, progress=progress, cancel=cancel, **extra)
    if args.save_shapes:
        result.shapes.save(args.save_shapes)
    if args.json:
        data = result.to_dict()
        if args.save_shapes:
            data["shapes_file"] = args.save_shapes
        print(json.dumps(data, indent=2, default=str))
        return 0
    for name, rep in (result.shapes.report or {}).items():
        pts = rep.get("points") or []
        line = (f"{name}: {rep.get('shapes', 0)} shape(s)"
                + (f" + {rep['holes']} hole(s)" if rep.get("holes") else "")
                + f", {min(pts) if pts else 0}-{max(pts) if pts else 0} points, {rep.get('keys', 0)} keys, "
                  f"max error {rep.get('max_error_px', 0):.2f} px")
        if rep.get("frames_over_tolerance"):
            line += f" ({rep['frames_over_tolerance']} key(s) over the tolerance)"
        print(line)
        for ev in rep.get("events", []):
            print(f"  {ev['shape']} starts on frame {ev['frame']} ({ev['event']})")
    for f in result.files:
        print(f)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.save_shapes:
        print(f"shapes: {args.save_shapes}")
    return 0
