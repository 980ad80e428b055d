"""``roto track``: prompts on a frame → a matte per frame, propagated forward/backward/both.

A stable contract users script against::

    roto track INPUT (--mask PNG | --point X,Y[,LABEL] ... | --box X0,Y0,X1,Y1 | --prompts FILE)
                     [--frame N] [--direction forward|backward|both] [--backend NAME]
                     [--object NAME] [--session FILE] --out DIR

writes ``DIR/<object>.<frame>.png`` (8-bit single channel, 0/255) for every frame of the input,
with the input's own frame numbers, padded like the input's file names (at least 4 digits). ``--session`` creates or updates a project file that the
later commands take as input.

With --session, a command is one edit, all or nothing: when a prompt is bad (outside the image,
frame out of range, empty mask, a bad entry in --prompts) nothing is kept and the project file is
left as it was (a new one is not created). Re-running the same command is idempotent: a prompt
the session already holds (same object, frame, points and labels, box or mask) is not added again
and adds no undo step; a different prompt on that frame is added to the ones already there (use a
new --session file to start over).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from engine.cli.common import add_input_args
from engine.errors import PromptError


def _floats(text: str, n: tuple[int, ...], what: str) -> list[float]:
    try:
        vals = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        raise PromptError(f"{what} {text!r} is not a list of numbers") from None
    if len(vals) not in n:
        raise PromptError(f"{what} {text!r} needs {' or '.join(map(str, n))} numbers")
    return vals


def register(sub) -> None:
    p = sub.add_parser("track", help="track objects from prompts and write a matte per frame",
                       description=__doc__.split("\n\n")[0] + ".",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=__doc__.strip().split("\n\n")[-1] + "\n\nPrompts file format: see "
                              "`python -c \"import engine.session.prompts_file as m; print(m.__doc__)\"`")
    add_input_args(p)
    g = p.add_argument_group("prompts (one kind, or a prompts file)")
    g.add_argument("--mask", metavar="PNG", help="a mask image of the object on --frame (non-zero = object: a grey "
                                                 "value, any colour channel or a palette index other than 0)")
    g.add_argument("--point", action="append", metavar="X,Y[,LABEL]",
                   help="a click in pixels from the top-left; LABEL 1 = object (default), 0 = background; repeatable")
    g.add_argument("--box", metavar="X0,Y0,X1,Y1", help="a box around the object, pixels")
    g.add_argument("--prompts", metavar="FILE", help="JSON file with several objects, prompts and keyframes")
    p.add_argument("--frame", type=int, help="frame of --mask/--point/--box, the input's own number (default: its first frame)")
    p.add_argument("--object", default="matte", help="object name for --mask/--point/--box (default: matte)")
    p.add_argument("--direction", choices=("forward", "backward", "both"), default=None,
                   help="propagation direction (default both)")
    p.add_argument("--backend", default=None, help="segmentation backend: auto (default), classical, sam2, ...")
    p.add_argument("--session", metavar="FILE", help="create or update this session project file (all or nothing; "
                                                      "a prompt it already holds is not added twice)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the matte PNGs")
    p.set_defaults(func=run)


def _open_session(args: argparse.Namespace):
    from engine.cli.common import open_input, open_session_for_input
    from engine.session.session import Session

    if args.session and Path(args.session).is_file():
        session = open_session_for_input(args)
        if args.backend and args.backend != session.data.backend:
            session.data.backend = args.backend
        return session
    clip = open_input(args)
    # not saved yet: the project file is written once the command's prompts are all valid
    session = Session.create(args.input, clip=clip, path=args.session, backend=args.backend or "auto",
                             colourspace=args.colourspace, missing=args.missing, fps=args.fps,
                             ocio_config=args.ocio, autosave=False)
    session.autosave = True
    return session


def _object(session, name: str) -> int:
    for o in session.data.objects.values():
        if o.name == name:
            return o.id
    return session.add_object(name).id


def apply_prompts(session, args: argparse.Namespace) -> str | None:
    """Add the command line's prompts to the session, all or nothing: when one of them is bad
    (a point outside the image, a frame out of range, an empty mask...) none is kept, no object
    is made and nothing is saved. Returns the prompts file's direction, if any."""
    with session.transaction():
        return _apply_prompts(session, args)


def _apply_prompts(session, args: argparse.Namespace) -> str | None:
    from engine.session.prompts_file import load_prompts_file, read_mask_image

    kinds = [k for k in ("mask", "point", "box", "prompts") if getattr(args, k)]
    if len(kinds) > 1 and "prompts" in kinds:
        raise PromptError("--prompts cannot be combined with --mask/--point/--box")
    if args.prompts:
        spec = load_prompts_file(args.prompts)
        base = Path(args.prompts).parent
        for i, obj in enumerate(spec.objects):
            oid = _object(session, obj.name)
            for j, pr in enumerate(obj.prompts):
                with _located(args.prompts, f"objects[{i}] ({obj.name!r}), prompts[{j}] (frame {pr.frame})"):
                    if pr.mask:
                        session.add_mask(oid, pr.frame, read_mask_image(pr.mask, base), once=True)
                    for pt in pr.points or []:
                        session.add_point(oid, pr.frame, pt[0], pt[1], int(pt[2]) if len(pt) == 3 else 1, once=True)
                    if pr.box:
                        session.add_box(oid, pr.frame, *pr.box, once=True)
                    if pr.text:
                        session.add_text(oid, pr.frame, pr.text, once=True)
            for j, kf in enumerate(obj.keyframes):
                with _located(args.prompts, f"objects[{i}] ({obj.name!r}), keyframes[{j}] (frame {kf.frame})"):
                    session.set_keyframe(oid, kf.frame, read_mask_image(kf.mask, base))
        return spec.direction
    if not kinds:
        if any(session.data.keyframes_of(o) for o in session.data.objects):
            return None  # an existing session: re-propagate what it has
        raise PromptError("no prompt given", hint="Add --point X,Y, --box X0,Y0,X1,Y1, --mask PNG or --prompts FILE")
    frame = args.frame if args.frame is not None else session.frame_range[0]
    oid = _object(session, args.object)
    if args.mask:
        session.add_mask(oid, frame, read_mask_image(args.mask), once=True)
    for text in args.point or []:
        vals = _floats(text, (2, 3), "--point")
        session.add_point(oid, frame, vals[0], vals[1], int(vals[2]) if len(vals) == 3 else 1, once=True)
    if args.box:
        session.add_box(oid, frame, *_floats(args.box, (4,), "--box"), once=True)
    return None


@contextlib.contextmanager
def _located(prompts_file: str, where: str) -> Iterator[None]:
    """Say which object and prompt of the prompts file an error in its content comes from."""
    from engine.errors import MissingFrames, RotoError

    try:
        yield
    except MissingFrames:
        raise
    except RotoError as exc:
        raise type(exc)(f"{where}: {exc.sentence()}", path=prompts_file) from exc


def run(args: argparse.Namespace) -> int:
    from engine.session.project import preserved

    with preserved(args.session):  # a failed command leaves the project file as it was (or absent)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from engine.cli.common import cancel_on_interrupt, progress_bar
    from engine.errors import Cancelled
    from engine.export.masks import write_mask_sequence

    session = _open_session(args)
    print(f"roto: {session.backend_reason}", file=sys.stderr)
    direction = apply_prompts(session, args)
    direction = args.direction or direction or "both"
    cancelled = None
    with cancel_on_interrupt() as cancel, progress_bar() as progress:
        try:
            rep = session.propagate(direction=direction, progress=progress, cancel=cancel)
        except Cancelled as exc:
            cancelled, rep = exc, None
        written = write_mask_sequence(session, args.out, progress=progress)
    for name, pattern in written.items():
        print(f"{name}: {pattern}")
    if rep is not None:
        for oid, frames in rep.occluded.items():
            from engine.media.sequence import missing_ranges

            print(f"{session.data.objects[oid].name}: occluded on {missing_ranges(frames)}")
        cached = f"; {rep.runs_from_cache} of {rep.runs} runs served from cache" if rep.runs_from_cache else ""
        print(f"{rep.frames_written} frames tracked in {rep.seconds:.1f} s "
              f"({rep.seconds / max(1, rep.frames_written):.2f} s/frame, backend {rep.backend}{cached})")
    if session.path:
        print(f"session: {session.path}")
    if cancelled is not None:
        raise cancelled
    return 0
