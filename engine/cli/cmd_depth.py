"""``roto depth``: depth, normals, point clouds and the camera of a plate, for relighting and depth splits.

    roto depth INPUT --out DIR [--model NAME] [--normals] [--points] [--session FILE]
                     [--convention distance|z|inverse_z] [--split [NEAR,FAR]] [--range NEAR,FAR]

writes ``DIR/depth.<frame>.exr`` (float: ``depth.Z``; ``N.X/Y/Z`` with --normals; depth mattes
``fg.A mg.A bg.A`` / ``range.A`` with --split / --range) for every frame of the input with its own
frame numbers; with --points, ``DIR/points/depth.<frame>.ply`` (binary, coloured) and, when the
model gives cameras, the whole range in one world frame; with cameras, ``DIR/camera.nk`` (Nuke
Camera2) and ``DIR/camera.chan``. With --session the depth is stored with the session, so
``roto export`` delivers ``depth.Z`` and ``N.X/Y/Z``.

Models: ``auto`` (Depth Anything 3 base or small, Apache-2.0, when the weights are here),
``da3-small``, ``da3-base``; ``da3-large``/``da3-giant`` (CC BY-NC 4.0: non-commercial) only by
name; ``prior`` is a fixed ground-plane layout for pipeline tests — not a depth estimate.
Without weights it stops and prints the `roto models fetch` command to run (exit status 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.cli.common import add_input_args
from engine.errors import InputError


def register(sub) -> None:
    p = sub.add_parser("depth", help="depth, normals, point clouds and camera of a plate (Depth Anything 3)",
                       description=__doc__.split("\n\n")[0], epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input_args(p)
    p.add_argument("--out", metavar="DIR", help="folder for the EXRs (and points/, camera.nk, camera.chan); "
                                                "optional with --session")
    m = p.add_argument_group("model")
    m.add_argument("--model", default="auto", help="auto (default), da3-small, da3-base, da3-large, da3-giant, "
                                                   "da3metric-large, da3mono-large, prior")
    m.add_argument("--weights", metavar="PATH", help="a weights file instead of the model store's "
                                                     "(model.safetensors or a .pt/.pth state dict)")
    m.add_argument("--random-weights", action="store_true",
                   help="random weights (timing and pipeline checks only: the depth is meaningless)")
    m.add_argument("--device", help="cuda, cuda:N, mps or cpu (default: automatic, or $ROTO_DEVICE)")
    m.add_argument("--precision", help="bf16, fp16 (GPU only) or fp32 (default: automatic, or $ROTO_PRECISION)")
    m.add_argument("--process-res", type=int, metavar="PX", help="network input size, longer side (default 504)")
    m.add_argument("--intrinsics", metavar="FX,FY,CX,CY",
                   help="the camera, in plate pixels (OpenCV: the top-left pixel's centre is 0,0); metric models "
                        "use its focal length, and it replaces the model's camera")
    v = p.add_argument_group("video")
    v.add_argument("--chunk", type=int, metavar="N", help="frames per model call (default: 4 on a CPU, 16 on a GPU)")
    v.add_argument("--overlap", type=int, metavar="N", help="frames shared by consecutive chunks (default chunk/4)")
    v.add_argument("--align", choices=("auto", "scale", "scale_shift", "none"), default="auto",
                   help="alignment between chunks (default auto: scale for DA3, scale and shift for affine models)")
    v.add_argument("--temporal", type=float, default=None, metavar="S",
                   help="0..1 motion-compensated smoothing strength (default 0.3; 0 = off)")
    o = p.add_argument_group("outputs")
    o.add_argument("--convention", default="distance",
                   help="depth.Z holds: distance (camera distance, default), z (planar) or inverse_z (Nuke 1/Z)")
    o.add_argument("--normals", action="store_true", help="also write N.X N.Y N.Z (camera space, +Y up, +Z to viewer)")
    o.add_argument("--confidence", action="store_true", help="also write depth.confidence (0..1)")
    o.add_argument("--points", action="store_true", help="write coloured binary PLY point clouds")
    o.add_argument("--points-step", type=int, default=2, metavar="N", help="merged cloud: every Nth pixel (default 2)")
    o.add_argument("--split", nargs="?", const="auto", metavar="NEAR,FAR",
                   help="foreground/midground/background mattes fg.A mg.A bg.A (cuts in depth units; "
                        "no value: from the first frame's depth)")
    o.add_argument("--range", metavar="NEAR,FAR", help="a soft matte range.A for this depth range")
    o.add_argument("--falloff", type=float, metavar="D", help="soft edge of --split/--range in depth units")
    o.add_argument("--session", metavar="FILE", help="store the depth with this session (roto export delivers it)")
    o.add_argument("--object", metavar="NAME", help="with --session: intersect the depth mattes with this object")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def _floats(text: str, n: int, what: str) -> list[float]:
    try:
        vals = [float(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise InputError(f"{what} {text!r} is not {n} numbers") from None
    if len(vals) != n:
        raise InputError(f"{what} needs {n} comma-separated numbers, not {text!r}")
    return vals


def _session(args: argparse.Namespace, clip):
    from engine.cli.common import open_session_for_input
    from engine.session.session import Session

    if not args.session:
        return None
    if Path(args.session).is_file():
        return open_session_for_input(args)
    return Session.create(args.input, clip=clip, path=args.session, colourspace=args.colourspace,
                          missing=args.missing, fps=args.fps, ocio_config=args.ocio)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from engine.cli.common import cancel_on_interrupt, open_input, progress_bar
    from engine.depth.outputs import MatteSpec
    from engine.depth.pipeline import DEFAULT_TEMPORAL, run_depth
    from engine.ops.depth_convention import normalise_convention

    if not args.out and not args.session:
        raise InputError("give --out DIR (and/or --session FILE)", hint="See roto depth --help")
    try:
        convention = normalise_convention(args.convention)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if args.weights and args.random_weights:
        raise InputError("--weights and --random-weights exclude each other")
    if args.temporal is not None and not 0.0 <= args.temporal <= 1.0:
        raise InputError(f"--temporal must be between 0 and 1, not {args.temporal}")
    if args.object and not args.session:
        raise InputError("--object needs --session FILE (the object's matte comes from the session)")
    model = args.model
    weights = "random" if args.random_weights else args.weights
    if weights is not None and model == "auto":
        model = "da3-small"
    K = None
    if args.intrinsics:
        fx, fy, cx, cy = _floats(args.intrinsics, 4, "--intrinsics")
        if fx <= 0 or fy <= 0:
            raise InputError("--intrinsics needs positive focal lengths")
        K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float64)
    clip = open_input(args)
    session = _session(args, clip)
    mattes = None
    if args.split is not None or args.range:
        split = None if args.split is None else ("auto" if args.split == "auto" else _floats(args.split, 2, "--split"))
        rng = _floats(args.range, 2, "--range") if args.range else None
        for pair, what in ((split, "--split"), (rng, "--range")):
            if isinstance(pair, list) and pair[1] < pair[0]:
                raise InputError(f"{what}: the far value {pair[1]} is nearer than the near value {pair[0]}")
        coverage = None
        if args.object:
            from engine.export.aovs import ExportContext

            obj = session.object_by_name(args.object)
            ctx = ExportContext(session, objects=[obj.id])

            def coverage(frame: int, _ctx=ctx, _id=obj.id):
                c = _ctx.coverage(_id, frame)
                return np.zeros(session.shape, np.float32) if c is None else c

        mattes = MatteSpec(split=split, range=rng, falloff=args.falloff, coverage=coverage,
                           object_name=args.object or "")
    temporal = DEFAULT_TEMPORAL if args.temporal is None else float(args.temporal)
    with cancel_on_interrupt() as cancel, progress_bar(not args.json) as progress:
        rep = run_depth(clip, args.out, model=model, weights=weights, device=args.device, precision=args.precision,
                        process_res=args.process_res, chunk=args.chunk, overlap=args.overlap, align=args.align,
                        temporal=temporal, intrinsics=K, convention=convention, normals=args.normals,
                        points=args.points, confidence=args.confidence, points_step=args.points_step,
                        session=session, mattes=mattes, progress=progress, cancel=cancel)
    if args.json:
        print(json.dumps(rep.to_dict(), indent=2))
        return 0
    print(f"roto: {rep.why}", file=sys.stderr)
    print(f"roto: {rep.run.reason}", file=sys.stderr)
    if not rep.commercial:
        print(f"roto: note: {rep.run.model} is under {rep.licence}: NON-COMMERCIAL use only", file=sys.stderr)
    if rep.run.model == "prior" or (weights == "random"):
        print("roto: note: this is not a depth estimate (see above); use it to check the pipeline only",
              file=sys.stderr)
    for n in rep.notes:
        print(f"roto: note: {n}", file=sys.stderr)
    w = rep.written
    if w is not None:
        print(f"depth: {w.pattern} (depth.Z = {convention}{', N.X/Y/Z' if args.normals else ''})")
        if w.ply:
            print(f"points: {len(w.ply)} PLY file(s) in {Path(args.out) / 'points'}"
                  + (f"; merged: {w.world_ply}" if w.world_ply else ""))
        if w.camera_nk:
            print(f"camera: {w.camera_nk} and {w.camera_chan}")
    seams = rep.run.seams
    if seams:
        before = max(s.jump_before for s in seams)
        after = max(s.jump_after for s in seams)
        print(f"{len(seams)} chunk seam(s): largest jump {100 * before:.2f}% before alignment, "
              f"{100 * after:.2f}% after")
    print(f"{rep.run.frames} frames in {rep.run.seconds:.1f} s ({rep.run.seconds_per_frame:.2f} s/frame, "
          f"{rep.run.model_seconds_per_frame:.2f} s/frame in the model)")
    if rep.session_path:
        print(f"session: {rep.session_path} (roto export writes depth.Z and N.X/Y/Z)")
    return 0
