"""The demo job: sample plate → clip → proxies → one-click track → outputs. Printed as it goes."""

from __future__ import annotations

import time
from pathlib import Path


def run_demo(out: str | Path, *, frames: int = 24, width: int = 640, height: int = 360, echo=print) -> dict:
    """Run the demo into ``out``; returns the paths written (also printed through ``echo``)."""
    from engine.media.clip import open_clip
    from engine.media.proxy import write_proxies
    from engine.media.synthetic import generate, write_exr_sequence

    out = Path(out)
    t0 = time.monotonic()
    sample = generate(width=width, height=height, frames=frames)
    pattern = write_exr_sequence(sample, out / "sample")
    echo(f"sample plate: {pattern}  ({frames} frames {width}x{height}, half-float scene-linear EXR)")
    written: dict = {"plate": pattern}
    with open_clip(pattern) as clip:
        i = clip.info
        echo(f"opened: frames {i.first}-{i.last} @ {float(i.fps):g} fps, {i.width}x{i.height}, "
             f"channels {' '.join(i.channels)}, colourspace {i.colourspace} ({i.colourspace_source})")
        proxies = write_proxies(clip, out / "proxy")
        written["contact_sheet"] = str(proxies.contact_sheet)
        echo(f"contact sheet: {proxies.contact_sheet}")
    echo(f"done in {time.monotonic() - t0:.1f} s; outputs in {out.resolve()}")
    return written
