"""``roto info INPUT``: what a plate is (range, rate, size, channels, colour, gaps)."""

from __future__ import annotations

import argparse
import json

from engine.cli.common import add_input_args


def register(sub) -> None:
    p = sub.add_parser("info", help="summarise a movie or image sequence",
                       description="Print a clip's frame range, rate, resolution, channels, colourspace, "
                                   "timecode and missing frames. Missing frames are listed, not an error.")
    add_input_args(p, missing_default="black")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.cli.common import open_input
    from engine.media.sequence import missing_ranges

    if args.missing == "error":
        args.missing = "black"  # info reports gaps, it does not stop on them
    with open_input(args) as clip:
        info = clip.info
        if args.json:
            print(json.dumps(info.to_dict(), indent=2, sort_keys=True))
            return 0
        fps = info.fps
        rate = f"{float(fps):.3f}".rstrip("0").rstrip(".")
        exact = f" ({fps.numerator}/{fps.denominator})" if fps.denominator != 1 else ""
        rows = [
            ("path", info.path),
            ("kind", f"{info.kind} ({info.format}{', ' + info.codec if info.codec else ''})"),
            ("frames", f"{info.frame_in}-{info.frame_out} ({info.frame_count} frames, {info.duration_seconds:.2f} s)"),
            ("fps", f"{rate}{exact}{'' if info.fps_source == 'file' else ' [' + info.fps_source + ']'}"
                    f"{'  VARIABLE FRAME RATE' if info.vfr else ''}"),
            ("resolution", f"{info.width}x{info.height}" + (f"  pixel aspect {info.pixel_aspect:g}" if info.pixel_aspect != 1 else "")),
            ("data window", str(info.data_window) if info.data_window and info.display_window and info.data_window != info.display_window else ""),
            ("channels", " ".join(info.channels)),
            ("layers", ", ".join(layer or "rgba" for layer in info.layers) if info.layers != ("",) else ""),
            ("pixel type", info.pixel_type),
            ("colourspace", f"{info.colourspace} ({info.colourspace_source})"),
            ("timecode", info.timecode or ""),
            ("missing", f"{len(info.missing)} frame(s): {missing_ranges(info.missing)}" if info.missing else "none"),
        ]
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            if value:
                print(f"{key.rjust(width)}  {value}")
    return 0
