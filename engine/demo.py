"""The demo job: sample plate → clip → proxies → one-click track → soft alpha + QC → EXR deliverables
with Cryptomatte → native Nuke Roto shapes. Printed as it goes."""

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
        written.update(_track(clip, pattern, sample, out, echo))
    written.update(_deliver(written["session"], sample, out, echo))
    echo(f"done in {time.monotonic() - t0:.1f} s; outputs in {out.resolve()}")
    return written


def _track(clip, pattern: str, sample, out: Path, echo) -> dict:
    """One click on the first frame → a matte for every frame, scored against the ground truth."""
    import numpy as np

    from engine.export.masks import write_mask_sequence
    from engine.session.session import Session

    session_path = out / "demo.roto.json"
    session_path.unlink(missing_ok=True)
    session = Session.create(pattern, clip=clip, path=session_path)
    echo(f"backend: {session.backend_reason}")
    blob = session.add_object("blob")
    x, y = sample[0].centre
    session.add_point(blob.id, sample[0].frame, x, y)
    echo(f"one click at ({x:.0f}, {y:.0f}) on frame {sample[0].frame}")
    rep = session.propagate(direction="forward")
    mattes = write_mask_sequence(session, out / "mattes")
    ious = []
    for f in sample:
        m = session.mask(blob.id, f.frame)
        inter = np.logical_and(m, f.mask).sum()
        ious.append(inter / max(1, np.logical_or(m, f.mask).sum()))
    echo(f"tracked {rep.frames_written} frames in {rep.seconds:.1f} s "
         f"({rep.seconds / max(1, rep.frames_written):.2f} s/frame); mean IoU vs ground truth {np.mean(ious):.3f}")
    echo(f"mattes: {mattes['blob']}")
    echo(f"session: {session_path}")
    return {"mattes": mattes["blob"], "session": str(session_path), "mean_iou": float(np.mean(ious))}


def _deliver(session_path: str, sample, out: Path, echo) -> dict:
    """Soft alpha (weight-free matter) scored against the ground truth, QC, the multi-layer EXR
    deliverables with Cryptomatte, and the Nuke script with the matte as editable Roto shapes."""
    import numpy as np

    from engine.export.deliver import ExportOptions, export_session
    from engine.export.hostfiles import write_host_script
    from engine.matting.pipeline import matte_session
    from engine.qc.scores import compute_qc
    from engine.session.session import Session

    session = Session.open(session_path)
    rep = matte_session(session)
    obj = sorted(session.data.objects)[0]
    sad = [float(np.abs(session.alpha(obj, f.frame) - f.alpha).mean()) for f in sample]
    echo(f"soft alpha: {rep.frames} frames in {rep.seconds:.1f} s ({rep.backend}); "
         f"mean absolute alpha error vs ground truth {np.mean(sad):.4f}")
    qc = compute_qc(session)
    flagged = len(qc.review())
    echo(f"QC: {flagged} frame(s) flagged for review")
    exp = export_session(session, out / "deliver", ExportOptions(format="exr", shot="demo", layers=["all"]))
    exr = next(p for p in exp.patterns.values() if p.lower().endswith(".exr"))
    echo(f"EXR deliverables ({', '.join(exp.layers)}): {exr}")
    nk = write_host_script(session, "nuke", out / "deliver", matte_pattern=exr, frames=exp.frames)
    echo(f"Nuke script (Read + Cryptomatte + Roto shapes): {nk.path}")
    return {"exr": exr, "nuke_script": str(nk.path), "mean_alpha_error": float(np.mean(sad)),
            "qc_flagged": flagged}
