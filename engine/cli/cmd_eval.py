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
    z = es.add_parser("depth", help="depth AbsRel and delta<1.25 on RGB-D frames, after scale/shift alignment",
                      description="Run a depth model on the RGB-D frames of ../shared/evaldata/depth-rgbd-open3d "
                                  "(Redwood 5-frame clip, TUM, SUN, NYU), align each estimate to the ground truth "
                                  "with one scale and shift, and print AbsRel and delta<1.25, next to two sanity "
                                  "baselines under the same alignment (a constant depth; the fixed ground-plane "
                                  "prior). The redwood/clip row uses one alignment for all 5 frames.")
    z.add_argument("path", metavar="PATH", nargs="?", help="the depth-rgbd-open3d folder (default: "
                                                           "../shared/evaldata/depth-rgbd-open3d)")
    z.add_argument("--model", default="auto", help="depth model (default auto: da3-base/da3-small with weights)")
    z.add_argument("--weights", metavar="PATH", help="a weights file instead of the model store's")
    z.add_argument("--random-weights", action="store_true", help="random weights (checks the harness; meaningless "
                                                                 "scores)")
    z.add_argument("--process-res", type=int, metavar="PX", help="network input size, longer side (default 504)")
    z.add_argument("--align", choices=("scale_shift", "scale", "median"), default="scale_shift",
                   help="alignment to the ground truth (default scale_shift)")
    z.add_argument("--space", choices=("depth", "inverse"), default="depth", help="align depth or inverse depth")
    z.add_argument("--device", help="cuda, mps or cpu (default automatic)")
    z.add_argument("--json", action="store_true", help="print JSON")
    z.set_defaults(func=run_depth_cmd)
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


def run_depth_cmd(args: argparse.Namespace) -> int:
    from engine.errors import InputError
    from engine.eval.depth import default_root, run_depth_eval

    root = args.path or default_root()
    if root is None:
        raise InputError("the RGB-D evaluation data is not here",
                         hint="Pass the depth-rgbd-open3d folder (../shared/evaldata/depth-rgbd-open3d)")
    if args.weights and args.random_weights:
        raise InputError("--weights and --random-weights exclude each other")
    weights = "random" if args.random_weights else args.weights
    model = "da3-small" if (weights is not None and args.model == "auto") else args.model
    report = run_depth_eval(root, model=model, weights=weights, process_res=args.process_res, align=args.align,
                            space=args.space, device=args.device)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.table())
    return 0
