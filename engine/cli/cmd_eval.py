"""``roto eval``: quality on datasets with ground truth (``davis`` for video object segmentation,
``matting`` for soft alpha on generated clips)."""

from __future__ import annotations

import argparse
import json


def register(sub) -> None:
    p = sub.add_parser("eval", help="measure quality on a dataset with ground truth")
    es = p.add_subparsers(dest="eval_command", metavar="DATASET")
    d = es.add_parser("davis", help="DAVIS-2016/2017 semi-supervised J&F",
                      description="Track each sequence from its first frame (ground-truth mask, or one click at the "
                                  "mask's most interior point) and print per-sequence J, F, J&F, seconds per frame "
                                  "and the means. J and F follow the official DAVIS-2017 code (first and last frame "
                                  "skipped, boundary tolerance ceil(0.008 x diagonal)).")
    d.add_argument("path", metavar="PATH", help="DAVIS folder with JPEGImages/ and Annotations/")
    d.add_argument("--backend", default="classical", help="segmentation backend (default classical)")
    d.add_argument("--prompt", choices=("mask", "click"), default="mask", help="first-frame prompt (default mask)")
    d.add_argument("--sequences", metavar="A,B", help="only these sequences (comma-separated)")
    d.add_argument("--json", action="store_true", help="print JSON")
    d.set_defaults(func=run_davis_cmd)
    m = es.add_parser("matting", help="soft alpha on generated clips with exact ground truth",
                      description="Generate the synthetic matting clips (hair, motion blur, uneven green screen), "
                                  "track each from its first ground-truth mask, and print SAD, MSE, Grad, Conn, "
                                  "dtSSD and flicker %% for the binary tracked mask, per-frame closed-form matting on "
                                  "a fixed-width trimap (the baselines) and our matters, with the goals "
                                  "(SAD and dtSSD at least 30%% below both baselines, flicker below 2%%).")
    m.add_argument("--kinds", metavar="LIST", help="clips: hair,motionblur,greenscreen (default all)")
    m.add_argument("--size", metavar="WxH", default="480x270", help="clip size (default 480x270)")
    m.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    m.add_argument("--tracker", default="classical", help="segmentation backend that tracks the masks (default classical)")
    m.add_argument("--json", action="store_true", help="print JSON")
    m.set_defaults(func=run_matting_cmd)
    p.set_defaults(func=lambda args: p.print_help() or 0)


def run_davis_cmd(args: argparse.Namespace) -> int:
    from engine.cli.common import progress_bar
    from engine.eval.davis import run_davis

    seqs = [s for s in args.sequences.split(",") if s] if args.sequences else None
    with progress_bar() as progress:
        report = run_davis(args.path, sequences=seqs, prompt=args.prompt, backend=args.backend, progress=progress)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.table())
    return 0


def run_matting_cmd(args: argparse.Namespace) -> int:
    from engine.cli.common import progress_bar
    from engine.errors import InputError
    from engine.eval.matting import run_matting_eval

    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise InputError(f"--size {args.size!r} is not WxH", hint="Write it like 480x270") from None
    if w < 64 or h < 64 or args.frames < 2:
        raise InputError("the clips need at least 64x64 pixels and 2 frames")
    kinds = [k for k in args.kinds.split(",") if k] if args.kinds else None
    with progress_bar(not args.json) as progress:
        report = run_matting_eval(kinds, width=w, height=h, frames=args.frames, tracker=args.tracker, progress=progress)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.table())
    return 0

