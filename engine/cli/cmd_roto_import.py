"""``roto import-roto SCRIPT.nk --session FILE``: existing Nuke roto as keyframes or prompts.

    roto import-roto shot010_roto.nk --session shot010.roto.json [--as keyframes|prompts]
                     [--by node|shape|all] [--object NAME] [--node NAME ...] [--every-frame]
                     [--frame-offset N]

Reads the Roto and RotoPaint shapes of a Nuke script (one key or many, expression-driven points,
separate or ``idem`` feather) and rasterises them on the session's plate: each Roto node becomes
an object (``--by``), each of its key frames a locked keyframe (default) or a mask prompt.
Keys outside the session's frame range are not imported; the command lists them (shape, key range,
session range). ``--frame-offset 1000`` moves a script keyed from 1 onto a plate numbered from 1001.
Run ``roto track`` on the session afterwards to fill the frames in between.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(sub) -> None:
    p = sub.add_parser("import-roto", help="use existing Nuke Roto shapes as keyframes or prompts of a session",
                       description=__doc__.split("\n\n")[0].rstrip(".") + ".",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("script", metavar="SCRIPT", help="Nuke script (.nk) with Roto/RotoPaint nodes")
    p.add_argument("--session", required=True, metavar="FILE", help="the session project file to add them to")
    p.add_argument("--as", dest="mode", choices=("keyframes", "prompts"), default="keyframes",
                   help="locked keyframes (default) or mask prompts")
    p.add_argument("--by", choices=("node", "shape", "all"), default="node",
                   help="one object per Roto node (default), per shape, or one for all shapes")
    p.add_argument("--object", metavar="NAME", help="object name (with --by all), or a prefix for the others")
    p.add_argument("--node", action="append", metavar="NAME", help="only this Roto node (repeatable)")
    p.add_argument("--frame-offset", type=int, default=0, metavar="N",
                   help="add N to the script's frame numbers (e.g. 1000: a Roto keyed from 1 on a plate from 1001)")
    p.add_argument("--every-frame", action="store_true",
                   help="rasterise every frame a shape lives on, not only its key frames")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.cli.common import cancel_on_interrupt, progress_bar
    from engine.media.sequence import missing_ranges
    from engine.session.session import Session
    from engine.shapes.importer import import_nuke_roto

    session = Session.open(args.session)
    with cancel_on_interrupt() as cancel, progress_bar(not args.json) as progress:
        rep = import_nuke_roto(session, args.script, mode=args.mode, by=args.by, object_name=args.object,
                               nodes=args.node, frames="all" if args.every_frame else "keys",
                               frame_offset=args.frame_offset, progress=progress, cancel=cancel)
    if args.json:
        print(json.dumps(rep.to_dict(), indent=2))
        return 0
    kind = "keyframe(s)" if args.mode == "keyframes" else "mask prompt(s)"
    for name, frames in rep.objects.items():
        print(f"{name}: {len(frames)} {kind} on {missing_ranges(frames) or 'no frame'}")
    for line in rep.out_of_range_lines():
        print(f"not imported: {line}")
    print(f"{rep.shapes_used} of {rep.shapes_read} shape(s) used; session: {session.path}")
    for note in rep.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0
