"""``roto qc SESSION``: per-frame quality scores per object, the frames to review and a plot.

    roto qc shot.roto.json [--objects LIST] [--frames IN-OUT] [--plot PNG] [--stored] [--json]
                           [--flicker PCT] [--boundary PX] [--area FRACTION] [--confidence C]

Scores every object on every frame (its soft alpha when ``roto matte`` stored one, else its
mask): flicker not explained by motion, boundary jumps, area jumps, low backend confidence,
occlusion. Lists the frames to review with the reasons, writes a PNG plot of the scores over
time (default ``<session>.qc.png``) and stores the scores in the session (``meta["qc"]``) for
hosts to show. ``--stored`` lists the stored scores without recomputing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.errors import InputError


def register(sub) -> None:
    p = sub.add_parser("qc", help="score a session's mattes per frame and list the frames to review",
                       description=__doc__.split("\n\n")[0].rstrip(".") + ".",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("session", metavar="SESSION", help="session project file (.roto.json)")
    p.add_argument("--objects", metavar="LIST", help="only these objects (names or ids, comma-separated)")
    p.add_argument("--frames", metavar="IN-OUT", help="only these frames (plate numbers)")
    p.add_argument("--plot", metavar="PNG", help="where to write the plot (default: <session>.qc.png)")
    p.add_argument("--no-plot", action="store_true", help="do not write a plot")
    p.add_argument("--stored", action="store_true", help="show the scores stored in the session, do not recompute")
    p.add_argument("--json", action="store_true", help="print JSON")
    t = p.add_argument_group("thresholds")
    t.add_argument("--flicker", type=float, default=2.0, metavar="PCT", help="flicker %% above flags (default 2)")
    t.add_argument("--boundary", type=float, default=2.0, metavar="PX",
                   help="edge jump in pixels above flags (default 2, at least 0.2%% of the short side)")
    t.add_argument("--area", type=float, default=0.08, metavar="FRACTION", help="area change above flags (default 0.08)")
    t.add_argument("--confidence", type=float, default=0.5, metavar="C", help="confidence below flags (default 0.5)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.cli.cmd_matte import _frames, _objects
    from engine.cli.common import cancel_on_interrupt, progress_bar
    from engine.qc.plot import write_plot
    from engine.qc.report import review_json, review_lines, summary_lines
    from engine.qc.scores import QCThresholds, compute_qc, stored_qc
    from engine.session.session import Session

    session = Session.open(args.session, autosave=True)
    names = {o.id: o.name for o in session.data.objects.values()}
    if args.stored:
        result = stored_qc(session)
        if result is None:
            raise InputError("the session has no stored QC scores", path=args.session, hint="Run roto qc without --stored")
    else:
        th = QCThresholds(flicker=args.flicker, boundary=args.boundary, area=args.area, confidence=args.confidence)
        frames = _frames(session, args.frames)
        with cancel_on_interrupt() as cancel, progress_bar(not args.json) as progress:
            result = compute_qc(session, _objects(session, args.objects), thresholds=th, frames=frames,
                                progress=progress, cancel=cancel)
    plot = None
    if not args.no_plot:
        plot = Path(args.plot) if args.plot else Path(args.session).with_name(Path(args.session).name + ".qc.png")
        write_plot(plot, result, names, session.shape)
    if args.json:
        doc = review_json(result, names)
        doc["plot"] = None if plot is None else str(plot)
        print(json.dumps(doc, indent=2))
        return 0
    lines = review_lines(result, names)
    for line in summary_lines(result, names):
        print(line)
    lo, hi = result.range
    print(f"{len(lines)} frame(s) to review in {lo}-{hi}" + (":" if lines else ""))
    for line in lines:
        print("  " + line)
    if plot is not None:
        print(f"plot: {plot}")
    if not args.stored:
        print(f"scores stored in the session ({result.seconds:.1f} s)", file=sys.stderr)
    return 0
