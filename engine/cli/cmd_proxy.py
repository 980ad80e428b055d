"""``roto proxy INPUT --out DIR``: thumbnails and a contact sheet for navigation."""

from __future__ import annotations

import argparse

from engine.cli.common import add_input_args


def register(sub) -> None:
    p = sub.add_parser("proxy", help="write thumbnails and a contact sheet",
                       description="Write display-referred thumbnails of every frame (or every Nth) "
                                   "and a labelled contact sheet PNG. Existing thumbnails are reused.")
    add_input_args(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--width", type=int, default=320, help="thumbnail width in pixels (default 320)")
    p.add_argument("--every", type=int, default=1, help="one thumbnail every N frames (default 1)")
    p.add_argument("--sheet-frames", type=int, default=48, help="most frames on the contact sheet (default 48)")
    p.add_argument("--columns", type=int, default=8, help="contact sheet columns (default 8)")
    p.add_argument("--format", choices=("jpg", "png"), default="jpg", help="thumbnail format")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.cli.common import cancel_on_interrupt, open_input, progress_bar
    from engine.media.proxy import write_proxies

    with open_input(args) as clip, cancel_on_interrupt() as cancel, progress_bar() as progress:
        result = write_proxies(clip, args.out, width=args.width, every=args.every, sheet_limit=args.sheet_frames,
                               columns=args.columns, image_format=args.format, progress=progress, cancel=cancel)
    print(f"{len(result.thumbnails)} thumbnails in {args.out}/thumbs")
    if result.contact_sheet:
        print(f"contact sheet: {result.contact_sheet}")
    return 0
