"""Text and JSON summaries of QC scores: the frames to review, with their reasons."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from engine.qc.scores import QCResult


def review_lines(result: QCResult, names: dict[int, str]) -> list[str]:
    """One line per flagged (object, frame): ``hero 1005: flicker 4.1% (> 2%); low confidence …``."""
    return [f"{names.get(o, str(o))} {f}: {'; '.join(reasons)}" for f, o, reasons in result.review()]


def summary_lines(result: QCResult, names: dict[int, str]) -> list[str]:
    """Per object: frames scored, frames flagged, worst flicker/boundary/area, lowest confidence."""
    out = []
    for o, q in sorted(result.objects.items()):

        def worst(values: list, fn=max):
            vals = [v for v in values if v is not None]
            return None if not vals else fn(vals)

        fl, bj, ar, cf = worst(q.flicker), worst(q.boundary), worst(q.area), worst(q.confidence, min)
        parts = [f"{len(q.frames)} frames", f"{len(q.flags)} to review", f"scored on {q.source}"]
        if fl is not None:
            parts.append(f"max flicker {fl:.2f}%")
        if bj is not None:
            parts.append(f"max boundary jump {bj:.1f} px")
        if ar is not None:
            parts.append(f"max area jump {100 * ar:.0f}%")
        if cf is not None:
            parts.append(f"min confidence {cf:.2f}")
        out.append(f"{names.get(o, str(o))}: " + ", ".join(parts))
    return out


def review_json(result: QCResult, names: dict[int, str]) -> dict[str, Any]:
    return {"range": list(result.range),
            "review": [{"frame": f, "object": names.get(o, str(o)), "object_id": o, "reasons": r}
                       for f, o, r in result.review()],
            "scores": {names.get(o, str(o)): q.to_dict() for o, q in result.objects.items()}}


def ranges(frames: list[int]) -> str:
    """``[1001, 1002, 1003, 1007]`` → ``"1001-1003, 1007"``."""
    if not frames:
        return ""
    fs = sorted(set(frames))
    out = []
    start = prev = fs[0]
    for f in fs[1:]:
        if f == prev + 1:
            prev = f
            continue
        out.append(f"{start}-{prev}" if prev > start else f"{start}")
        start = prev = f
    out.append(f"{start}-{prev}" if prev > start else f"{start}")
    return ", ".join(out)
