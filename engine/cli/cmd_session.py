"""``roto session show FILE``: what a session project holds; ``roto session undo|redo FILE [--steps N]``:
take back (or redo) the last edits saved in it, e.g. a mis-click and the propagation it started."""

from __future__ import annotations

import argparse
import json


def register(sub) -> None:
    p = sub.add_parser("session", help="inspect a session project file")
    ss = p.add_subparsers(dest="session_command", metavar="ACTION")
    show = ss.add_parser("show", help="summarise a session: plate, objects, keyframes, history")
    show.add_argument("file", metavar="FILE")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=run_show)
    for name, what in (("undo", "take back the last edits (a prompt, a propagation...), as listed by `show`"),
                       ("redo", "redo edits taken back by undo")):
        a = ss.add_parser(name, help=what)
        a.add_argument("file", metavar="FILE")
        a.add_argument("--steps", type=int, default=1, metavar="N", help="how many edits (default 1)")
        a.set_defaults(func=run_undo_redo, action=name)
    p.set_defaults(func=lambda args: p.print_help() or 0)


def run_show(args: argparse.Namespace) -> int:
    from engine.media.sequence import missing_ranges
    from engine.session.session import Session

    s = Session.open(args.file, autosave=False)
    info = s.summary()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    lo, hi = info["range"]
    print(f"session {info['id'][:8]}  plate {info['clip']}  frames {lo}-{hi}  backend {info['backend']}")
    for o in info["objects"]:
        keys = missing_ranges(o["keyframes"]) or "none"
        line = (f"  [{o['id']}] {o['name']}: {o['frames_with_masks']} frames with masks, keyframes {keys}, "
                f"{o['prompts']} prompts")
        if o["occluded_frames"]:
            line += f", occluded {missing_ranges(o['occluded_frames'])}"
        if o["min_confidence"] is not None:
            line += f", lowest confidence {o['min_confidence']}"
        print(line)
    if info["undo"]:
        print("  undo: " + " | ".join(reversed(info["undo"])))
    return 0


def run_undo_redo(args: argparse.Namespace) -> int:
    from engine.errors import InputError
    from engine.session.session import Session

    if args.steps < 1:
        raise InputError(f"--steps must be 1 or more, not {args.steps}")
    s = Session.open(args.file, autosave=False)  # nothing is written until every step is done
    step = s.undo if args.action == "undo" else s.redo
    done = []
    for _ in range(args.steps):
        label = step()
        if label is None:
            break
        done.append(label)
    if not done:
        print(f"nothing to {args.action} in {args.file}")
        return 0
    s.save()
    verb = "undid" if args.action == "undo" else "redid"
    for label in done:
        print(f"{verb}: {label}")
    if len(done) < args.steps:
        print(f"(only {len(done)} of {args.steps}: the history has no more)")
    return 0
