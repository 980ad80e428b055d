"""``roto matte``: tracked masks → production soft alpha, one file per object and frame.

    roto matte INPUT (--mask PNG [--frame N] | --session FILE) [--backend NAME] [--format png16|exr]
                     [edge controls] [--core-edge] [--despill] --out DIR

writes ``DIR/<object>.<frame>.<ext>`` (16-bit PNG by default, or half EXR with channel ``A``) for
every frame of the input, with the input's own frame numbers. Given only a mask it first tracks
the object with the default tracker (``--tracker``); given a session it mattes the session's
tracked objects, stores the alpha with the session (``<session>.alpha/``) so ``roto export``
delivers it, and records how it was made. Backends: ``auto``/``classical`` (weight-free,
default), ``keyer`` (green/blue screen), ``matanyone`` (user-installed, non-commercial licence).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli.common import add_input_args
from engine.errors import InputError


def register(sub) -> None:
    p = sub.add_parser("matte", help="turn tracked masks into soft alpha (hair, motion blur, green screen)",
                       description=__doc__.split("\n\n")[0].rstrip(".") + ".",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="Edge controls apply in this order: fill holes, remove islands, clip black/white, "
                              "grow/shrink, feather, blur, temporal smoothing, motion blur.")
    add_input_args(p)
    g = p.add_argument_group("what to matte (a mask, a session, or both: the mask becomes a keyframe)")
    g.add_argument("--mask", metavar="PNG", help="a mask image of the object on --frame (non-zero = object); "
                                                 "the object is tracked over the shot first")
    g.add_argument("--frame", type=int, help="frame of --mask, the input's own number (default: its first frame)")
    g.add_argument("--session", metavar="FILE", help="a session project file (created when --mask is given and it "
                                                     "does not exist)")
    g.add_argument("--object", default="matte", help="object name for --mask (default: matte)")
    g.add_argument("--objects", metavar="LIST", help="only these objects of the session (names or ids, comma-separated)")
    g.add_argument("--tracker", default=None, help="segmentation backend for --mask: auto (default), classical, sam2 …")
    p.add_argument("--backend", default="auto", help="matting backend: auto (= classical), classical, keyer, matanyone")
    p.add_argument("--screen", choices=("green", "blue"), default="green", help="keyer: the screen colour (default green)")
    p.add_argument("--matanyone-weights", metavar="PTH", help="matanyone: local matanyone.pth (default: the Hugging "
                                                             "Face model PeiqingYang/MatAnyone)")
    p.add_argument("--format", choices=("png16", "exr"), default="png16",
                   help="png16 (16-bit grey PNG, default) or exr (half, channel A, plate timecode)")
    e = p.add_argument_group("edge controls (all off by default)")
    e.add_argument("--grow", type=float, default=0.0, metavar="PX", help="dilate (> 0) or erode (< 0), sub-pixel")
    e.add_argument("--feather", type=float, default=0.0, metavar="PX", help="re-make the edge as a ramp this wide")
    e.add_argument("--feather-placement", choices=("centre", "inside", "outside"), default="centre")
    e.add_argument("--blur", type=float, default=0.0, metavar="PX", help="Gaussian blur sigma")
    e.add_argument("--clip-black", type=float, default=0.0, metavar="A", help="alpha at or below becomes 0")
    e.add_argument("--clip-white", type=float, default=1.0, metavar="A", help="alpha at or above becomes 1")
    e.add_argument("--fill-holes", type=int, default=0, metavar="PX", help="fill enclosed holes up to PX pixels (-1: any)")
    e.add_argument("--min-island", type=int, default=0, metavar="PX", help="remove specks smaller than PX pixels")
    e.add_argument("--temporal", type=float, default=0.0, metavar="S",
                   help="0..1: blend towards the motion-compensated previous alpha where nothing moved")
    e.add_argument("--motion-blur", type=float, default=0.0, metavar="SHUTTER",
                   help="smear the matte along the optical flow over this shutter (0.5 = 180 degrees)")
    o = p.add_argument_group("extra outputs")
    o.add_argument("--core-edge", action="store_true", help="also write <object>_core and <object>_edge mattes "
                                                            "(core + edge = alpha)")
    o.add_argument("--despill", action="store_true", help="also write the despilled plate despill.<frame> "
                                                          "(--screen colour)")
    o.add_argument("--qc", action="store_true", help="score the result for QC afterwards (see roto qc)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the matte files")
    p.set_defaults(func=run)


def _session(args: argparse.Namespace):
    """Open or create the session; track the --mask object when there is one."""
    from engine.cli.cmd_track import _open_session, apply_prompts

    if not args.mask and not args.session:
        raise InputError("give --mask PNG (tracked first) or --session FILE", hint="See roto matte --help")
    if args.session and not args.mask and not Path(args.session).is_file():
        raise InputError("the session file does not exist", path=args.session,
                         hint="Create it with roto track --session FILE, or give --mask too")
    targs = argparse.Namespace(**vars(args))
    targs.backend = args.tracker  # cmd_track's --backend is the segmenter
    targs.point = targs.box = targs.prompts = None
    session = _open_session(targs)
    if args.mask:
        apply_prompts(session, targs)
        print(f"roto: tracking: {session.backend_reason}", file=sys.stderr)
        return session, True
    lo, hi = session.frame_range
    needs = any(session.data.keyframes_of(o) for o in session.data.objects) and not any(
        session.result(o, f) is not None for o in session.data.objects for f in range(lo, hi + 1)
        if (o, f) not in session.data.keyframes)
    return session, needs


def _objects(session, text: str | None) -> list[int] | None:
    """``--objects`` (names or ids, comma-separated) → object ids; an unknown one is an error
    listing the session's objects."""
    from engine.errors import PromptError

    if not text:
        return None
    by_name = {o.name: o.id for o in session.data.objects.values()}
    out = []
    for item in [t.strip() for t in text.split(",") if t.strip()]:
        if item in by_name:
            out.append(by_name[item])
        elif item.isdigit() and int(item) in session.data.objects:
            out.append(int(item))
        else:
            known = ", ".join(f"{o.id} ({o.name})" for o in session.data.objects.values()) or "none yet"
            raise PromptError(f"--objects: the session has no object named or numbered {item!r}",
                              path=session.path, hint=f"Known objects: {known}")
    return out


def _frames(session, text: str | None) -> tuple[int, int] | None:
    """``--frames`` → ``(first, last)`` inside the session's range (an open end is the session's end);
    a range outside the session or running backwards is an error naming both ranges."""
    from engine.cli.common import parse_frames
    from engine.errors import FrameOutOfRange

    if not text:
        return None
    lo, hi = parse_frames(text)
    first, last = session.frame_range
    pair = (first if lo is None else lo, last if hi is None else hi)
    try:
        return session.check_range(pair)
    except FrameOutOfRange as exc:
        raise FrameOutOfRange(f"--frames {text}: {exc.message}", path=session.path,
                              hint=f"The session covers frames {first}-{last}. {exc.hint or ''}".strip()) from None


def run(args: argparse.Namespace) -> int:
    from engine.session.project import preserved

    with preserved(args.session):  # a failed command leaves the project file as it was (or absent)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from engine.cli.common import cancel_on_interrupt, progress_bar
    from engine.errors import Cancelled
    from engine.matting.controls import EdgeControls
    from engine.matting.outputs import MatteWriter, object_names
    from engine.matting.pipeline import matte_session
    from engine.matting.registry import resolve_matter

    resolve_matter(args.backend)  # an unknown or unavailable backend fails before any tracking
    session, track = _session(args)
    controls = EdgeControls(fill_holes=args.fill_holes, min_island=args.min_island, black=args.clip_black,
                            white=args.clip_white, grow=args.grow, feather=args.feather,
                            feather_placement=args.feather_placement, blur=args.blur, temporal=args.temporal,
                            motion_blur=args.motion_blur)
    if not controls.black < controls.white:
        raise InputError(f"--clip-black ({controls.black}) must be below --clip-white ({controls.white})")
    options: dict = {}
    if args.backend == "keyer":
        options["screen"] = args.screen
    if args.backend == "matanyone" and args.matanyone_weights:
        options["weights"] = args.matanyone_weights
    objs = _objects(session, args.objects)
    frames = _frames(session, args.frames) if getattr(args, "frames", None) and args.session else None
    writer = MatteWriter(session, Path(args.out), args.format, core_edge=args.core_edge,
                         despill=args.screen if args.despill else None)
    writer.names = object_names(session, objs or sorted(session.data.objects))
    cancelled = None
    with cancel_on_interrupt() as cancel, progress_bar() as progress:
        if track:
            session.propagate(direction="both", progress=progress, cancel=cancel)
        try:
            rep = matte_session(session, objs, backend=args.backend, controls=controls, frames=frames,
                                options=options, sink=writer, progress=progress, cancel=cancel)
        except Cancelled as exc:
            cancelled, rep = exc, None
        qc = None
        if args.qc and cancelled is None:
            from engine.qc.scores import compute_qc

            qc = compute_qc(session, objs, frames=frames, progress=progress, cancel=cancel)
    if rep is not None:
        print(f"roto: {rep.backend_reason}", file=sys.stderr)
        if rep.backend == "matanyone":
            from engine.matting.matanyone import LICENCE

            print(f"roto: note: MatAnyone is under the {LICENCE}", file=sys.stderr)
    for o, name in writer.names.items():
        print(f"{name}: {writer.pattern(name)}")
        if args.core_edge:
            print(f"{name}_core: {writer.pattern(name + '_core')}\n{name}_edge: {writer.pattern(name + '_edge')}")
    if args.despill:
        print(f"despill: {writer.pattern('despill')}")
    if rep is not None and rep.cached:
        print(f"{rep.frames} frames served from the session's alpha store in {rep.seconds:.1f} s "
              f"(masks and settings unchanged, nothing recomputed)")
    elif rep is not None:
        print(f"{rep.frames} frames matted in {rep.seconds:.1f} s ({rep.seconds_per_frame:.2f} s/frame, "
              f"{rep.matte_seconds_per_frame:.2f} s/frame in the {rep.backend} matter)")
    if qc is not None:
        from engine.qc.report import review_lines

        names = {o.id: o.name for o in session.data.objects.values()}
        lines = review_lines(qc, names)
        print(f"QC: {len(lines)} frame(s) to review" + (":" if lines else ""))
        for line in lines:
            print("  " + line)
    if session.path:
        print(f"session: {session.path}")
    if cancelled is not None:
        raise cancelled
    return 0
