"""``roto demo --out DIR``: the product end to end on a generated sample plate."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the main job on a generated sample plate",
                       description="Generate a small scene-linear EXR plate with ground truth, open it, "
                                   "write thumbnails and a contact sheet, track the object from one click "
                                   "with the default backend, and print where everything is.")
    p.add_argument("--out", default="demo_out", metavar="DIR", help="output folder (default demo_out)")
    p.add_argument("--frames", type=int, default=24, help="length of the sample plate (default 24)")
    p.add_argument("--size", default="640x360", help="sample resolution WxH (default 640x360)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.demo import run_demo

    w, _, h = args.size.lower().partition("x")
    run_demo(args.out, frames=args.frames, width=int(w), height=int(h))
    return 0
