"""``roto export SESSION``: the deliverables of a session, one file per frame (and layer).

    roto export shot010.roto.json --format exr|dpx|png|tiff [--layers objects,matte,crypto,...]
                [--compression zip|piz|dwaa|...] [--multipart] [--bit-depth N] [--transfer log|adx|linear|rec709]
                [--objects NAME,...] [--frames IN-OUT] [--template T] [--shot NAME] [--force] --out DIR

Resumable: frames whose files exist, are valid and were made from the same session state and
settings are skipped; Ctrl-C stops between frames and keeps what is finished. Layers: see
``engine/export/aovs.py`` (rgba, objects, matte, crypto, id, depth, normals, motion, all).
"""

from __future__ import annotations

import argparse
import json
import sys

from engine.errors import InputError

LAYER_HELP = ("comma-separated layers: rgba (plate), objects (a matte per object), matte (combined), crypto "
              "(Cryptomatte), id (object id), depth, normals, motion (vectors), or all. Default: EXR "
              "objects,matte,crypto,id (+depth,normals when the session has them); DPX/PNG/TIFF objects,matte")


def register(sub) -> None:
    p = sub.add_parser("export", help="write a session's mattes and AOVs as EXR, DPX, PNG or TIFF sequences",
                       description=__doc__.split("\n\n")[0].rstrip(".") + ".",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="File names: --template tokens {shot} {layer} {object} {frame} {ext} and ####. "
                              "Defaults: {shot}.####.exr; {layer}/{shot}_####.{ext} for DPX/PNG/TIFF "
                              "(#### padded like the plate's file names, at least 4 digits).")
    p.add_argument("session", metavar="SESSION", help="session project file (.roto.json)")
    p.add_argument("--format", "-f", default="exr", choices=("exr", "dpx", "png", "tiff", "tif"),
                   help="output format (default exr)")
    p.add_argument("--layers", metavar="LIST", help=LAYER_HELP)
    p.add_argument("--objects", metavar="LIST", help="comma-separated object names or ids (default: all)")
    p.add_argument("--compression", metavar="NAME",
                   help="EXR: zip (default), zips, piz, rle, none, dwaa, dwab, b44, b44a, pxr24 (lossy ones never "
                        "touch data layers); TIFF: zip (default), lzw, none")
    p.add_argument("--multipart", action="store_true", help="EXR: one part per layer instead of one multi-layer part")
    p.add_argument("--bit-depth", type=int, metavar="N",
                   help="DPX 10 (default), 16 or 8; PNG 8 (default) or 16; TIFF 8, 16 or 32 (float); "
                        "EXR colour layers 16 (half, default) or 32")
    p.add_argument("--transfer", metavar="NAME",
                   help="DPX plate encoding: log (Cineon printing density, default), adx, linear, rec709")
    p.add_argument("--frames", metavar="IN-OUT", help="only these frames (plate numbers), e.g. 1001-1050")
    p.add_argument("--template", metavar="T", help="file names relative to --out (see below)")
    p.add_argument("--shot", metavar="NAME", help="{shot} in file names (default: the session file's name)")
    p.add_argument("--window", choices=("plate", "display"), default="plate",
                   help="EXR data window: the plate's (default) or the full display window")
    p.add_argument("--force", action="store_true", help="rewrite frames that are already written and valid")
    p.add_argument("--host-script", action="append", metavar="HOST", choices=("nuke", "fusion", "ae", "flame"),
                   help="also write this host's shapes file next to the EXRs, loading them (nuke, fusion, ae, "
                        "flame; repeatable)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.set_defaults(func=run)


def _list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise InputError(f"{text!r} names nothing", hint="Give a comma-separated list")
    return items


def run(args: argparse.Namespace) -> int:
    from engine.cli.common import cancel_on_interrupt, parse_frames, progress_bar
    from engine.errors import Cancelled
    from engine.export.deliver import ExportOptions, export_session
    from engine.session.session import Session

    session = Session.open(args.session, autosave=False)
    frames = parse_frames(args.frames) if args.frames else None
    opts = ExportOptions(format=args.format, layers=_list(args.layers), objects=_list(args.objects),
                         compression=args.compression, multipart=args.multipart, bit_depth=args.bit_depth,
                         transfer=args.transfer, template=args.template, shot=args.shot, frames=frames,
                         force=args.force, window=args.window)
    with cancel_on_interrupt() as cancel, progress_bar(not args.json) as progress:
        try:
            rep = export_session(session, args.out, opts, progress=progress, cancel=cancel)
        except Cancelled as exc:
            partial = getattr(exc, "report", None)
            if partial is not None:
                print(f"roto: {partial.frames_written} frame(s) written before stopping; run the same command "
                      f"again to finish", file=sys.stderr)
            raise
    scripts = _host_scripts(session, args, rep)
    if args.json:
        data = rep.to_dict()
        data["host_scripts"] = scripts
        print(json.dumps(data, indent=2, default=str))
        return 0
    lo, hi = rep.frames
    for pattern in dict.fromkeys(rep.patterns.values()):
        groups = [g for g, p in rep.patterns.items() if p == pattern]
        print(f"{pattern}  ({', '.join(groups)})" if len(groups) > 1 else f"{pattern}")
    print(f"{rep.format.upper()} frames {lo}-{hi}: {rep.frames_written} written, {rep.frames_skipped} already valid "
          f"(skipped); {rep.files_written} file(s), {rep.bytes_written / 1e6:.1f} MB in {rep.seconds:.1f} s")
    for host, path in scripts.items():
        print(f"{host}: {path}")
    for note in rep.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def _host_scripts(session, args: argparse.Namespace, rep) -> dict[str, str]:
    """Write the requested host shape files beside the deliverables, loading the EXR mattes."""
    if not args.host_script:
        return {}
    from engine.export.hostfiles import write_host_script

    exr = next((p for p in rep.patterns.values() if p.lower().endswith(".exr")), None)
    written: dict[str, str] = {}
    for host in dict.fromkeys(args.host_script):
        script = write_host_script(session, host, args.out, matte_pattern=exr, frames=rep.frames)
        written[host] = str(script.path)
    return written
