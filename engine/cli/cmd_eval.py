"""``roto eval``: quality on datasets with ground truth (``davis`` for video object segmentation)."""

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
