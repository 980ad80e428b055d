"""``roto session show FILE``: what a session project holds."""

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
