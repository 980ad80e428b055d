"""A PNG plot of QC scores over time, drawn with OpenCV (no plotting library needed).

One panel per object. Each score is drawn relative to its threshold (1.0 = the threshold, the
dashed line), so flicker %, boundary px, area change and (inverted) confidence share one axis;
flagged frames get a red tick along the bottom, occluded frames a grey band. The x axis is the
plate's frame numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import OutputError
from engine.util.atomic import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    from engine.qc.scores import QCResult

#: BGR colours per score
COLOURS = {"flicker": (40, 120, 255), "boundary": (200, 120, 30), "area": (60, 170, 60), "confidence": (170, 60, 170)}
Y_MAX = 3.0  # ratio to threshold at the top of a panel


def _series(result: QCResult, q, name: str, shape: tuple[int, int]) -> list[float | None]:
    th = result.thresholds
    if name == "flicker":
        return [None if v is None else v / th.flicker for v in q.flicker]
    if name == "boundary":
        bpx = th.boundary_px(shape)
        return [None if v is None else v / bpx for v in q.boundary]
    if name == "area":
        return [None if v is None else v / th.area for v in q.area]
    # confidence: 1 at the threshold, growing as it falls below
    return [None if v is None else (1.0 - v) / max(1e-6, 1.0 - th.confidence) for v in q.confidence]


def draw_plot(result: QCResult, names: dict[int, str], shape: tuple[int, int], *, width: int = 1400,
              panel: int = 260) -> np.ndarray:
    """uint8 BGR image of the plot."""
    import cv2

    objs = sorted(result.objects)
    H = 40 + panel * max(1, len(objs))
    img = np.full((H, width, 3), 255, np.uint8)
    lo, hi = result.range
    left, right = 70, width - 20
    cv2.putText(img, f"QC scores relative to thresholds (1 = threshold), frames {lo}-{hi}", (left, 26),
                cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)

    def x_of(f: int) -> int:
        return int(round(left + (f - lo) / max(1, hi - lo) * (right - left)))

    for k, o in enumerate(objs):
        q = result.objects[o]
        top = 40 + k * panel + 20
        bottom = 40 + (k + 1) * panel - 30

        def y_of(v: float) -> int:
            return int(round(bottom - min(v, Y_MAX) / Y_MAX * (bottom - top)))

        for f, occ in zip(q.frames, q.occluded):
            if occ:
                cv2.rectangle(img, (x_of(f) - 2, top), (x_of(f) + 2, bottom), (225, 225, 225), -1)
        cv2.rectangle(img, (left, top), (right, bottom), (0, 0, 0), 1)
        for gv in (1.0, 2.0):
            y = y_of(gv)
            for x in range(left, right, 12):  # dashed threshold lines
                cv2.line(img, (x, y), (min(x + 6, right), y), (0, 0, 200) if gv == 1.0 else (190, 190, 190), 1)
            cv2.putText(img, f"{gv:g}", (left - 30, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (80, 80, 80), 1, cv2.LINE_AA)
        for name, colour in COLOURS.items():
            pts = [(x_of(f), y_of(v)) for f, v in zip(q.frames, _series(result, q, name, shape)) if v is not None]
            if len(pts) > 1:
                cv2.polylines(img, [np.array(pts, np.int32).reshape(-1, 1, 2)], False, colour, 2, cv2.LINE_AA)
            elif pts:
                cv2.circle(img, pts[0], 2, colour, -1)
        for f in q.flags:
            cv2.line(img, (x_of(f), bottom + 2), (x_of(f), bottom + 10), (0, 0, 230), 2)
        # frame labels
        step = max(1, (hi - lo) // 10)
        for f in range(lo, hi + 1, step):
            cv2.putText(img, str(f), (x_of(f) - 14, bottom + 24), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (60, 60, 60), 1,
                        cv2.LINE_AA)
        label = f"{names.get(o, str(o))} ({len(q.flags)} to review, scored on {q.source})"
        cv2.putText(img, label, (left + 6, top + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        x = right - 430
        for name, colour in COLOURS.items():
            cv2.line(img, (x, top + 12), (x + 18, top + 12), colour, 3)
            cv2.putText(img, name, (x + 22, top + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
            x += 105
    return img


def write_plot(path: str | Path, result: QCResult, names: dict[int, str], shape: tuple[int, int]) -> Path:
    """Write the plot as a PNG atomically; returns the path."""
    import cv2

    target = Path(path)
    img = draw_plot(result, names, shape)
    with atomic_path(target) as tmp:
        if not cv2.imwrite(str(tmp), img):
            raise OutputError("the QC plot could not be written", path=str(target))
    return target
