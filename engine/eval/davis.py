"""DAVIS measures (J region similarity, F boundary accuracy) and a benchmark runner.

The measures follow the official DAVIS-2017 evaluation (``davis2017/metrics.py`` of
davisvideochallenge/davis2017-evaluation), re-implemented here:

* **J** (:func:`jaccard`) is the intersection over union of the two masks; two empty masks score 1.
* **F** (:func:`f_measure`) compares 1-pixel boundary maps (:func:`seg2bmap`, boundaries offset by
  half a pixel towards the origin). Each boundary is dilated by a disk of radius
  ``bound_pix = ceil(bound_th * diagonal)`` (``bound_th = 0.008``: 8 pixels at 854x480); precision is
  the share of predicted boundary pixels within that tolerance of the true boundary, recall the
  converse, F their harmonic mean. Empty boundaries: none predicted but some true → precision 1,
  recall 0; some predicted but none true → precision 0, recall 1; both empty → 1, 1.
* Per sequence, the first and last frames are skipped (the first is the prompt), as the official
  semi-supervised evaluation does (``masks[:, 1:-1]``); a sequence's J and F are the means over its
  remaining frames, J&F their mean; the dataset means are the means over sequences.

Masks everywhere are 2-D arrays (H, W), any dtype, non-zero = object. DAVIS-2016 annotations store the
object as 255; :func:`read_mask` turns them into bool.

:func:`run_davis` runs :class:`engine.backends.classical.tracker.ClassicalTracker` over a DAVIS-layout
folder (``JPEGImages/480p/<seq>/*.jpg``, ``Annotations/480p/<seq>/*.png``), prompting on frame 0 with
the ground-truth mask or with one positive click at the mask's most interior point, and propagating
forward. From the command line::

    python -c "from engine.eval.davis import run_davis; print(run_davis('/path/davis').table())"
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

__all__ = [
    "BOUND_TH",
    "jaccard",
    "seg2bmap",
    "disk",
    "f_measure",
    "evaluate_sequence",
    "SequenceScore",
    "DavisReport",
    "list_sequences",
    "check_sequences",
    "read_frames",
    "read_mask",
    "interior_point",
    "run_davis",
]

#: Boundary tolerance as a fraction of the image diagonal (official default).
BOUND_TH = 0.008


def _as_bool(mask: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D mask (H, W); got shape {arr.shape}")
    return arr.astype(bool, copy=False) if arr.dtype == bool else arr != 0


def jaccard(gt: np.ndarray, pred: np.ndarray) -> float:
    """Region similarity J: |gt ∩ pred| / |gt ∪ pred| of two (H, W) masks (non-zero = object).

    Returns a float in [0, 1]; 1.0 when both masks are empty (official convention).
    """
    g = _as_bool(gt, "gt")
    p = _as_bool(pred, "pred")
    if g.shape != p.shape:
        raise ValueError(f"mask shapes differ: gt {g.shape}, pred {p.shape}")
    union = np.count_nonzero(g | p)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(g & p) / union)


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """One-pixel-wide boundary map of a (H, W) mask, as bool (H, W).

    A pixel is a boundary pixel when it differs from its east, south or south-east neighbour
    (boundaries are offset by half a pixel towards the origin, top-left); the last row compares
    only with the east neighbour, the last column only with the south one, the bottom-right pixel
    is never a boundary. Same result as the DAVIS ``_seg2bmap`` at native size.
    """
    s = _as_bool(seg, "seg")
    e = np.zeros_like(s)
    so = np.zeros_like(s)
    se = np.zeros_like(s)
    e[:, :-1] = s[:, 1:]
    so[:-1, :] = s[1:, :]
    se[:-1, :-1] = s[1:, 1:]
    b = (s ^ e) | (s ^ so) | (s ^ se)
    b[-1, :] = s[-1, :] ^ e[-1, :]
    b[:, -1] = s[:, -1] ^ so[:, -1]
    b[-1, -1] = False
    return b


def disk(radius: float) -> np.ndarray:
    """Disk structuring element, uint8 (2r+1, 2r+1), 1 where x² + y² ≤ radius² (r = floor(radius))."""
    r = int(math.floor(radius))
    ax = np.arange(-r, r + 1)
    xx, yy = np.meshgrid(ax, ax)
    return ((xx * xx + yy * yy) <= radius * radius).astype(np.uint8)


def f_measure(pred: np.ndarray, gt: np.ndarray, bound_th: float = BOUND_TH) -> float:
    """Boundary F-measure of a predicted (H, W) mask against the ground truth, in [0, 1].

    ``bound_th`` < 1 is a fraction of the image diagonal (tolerance ``ceil(bound_th * diag)``
    pixels); ≥ 1 is the tolerance in pixels. See the module docstring for the empty conventions.
    """
    p = _as_bool(pred, "pred")
    g = _as_bool(gt, "gt")
    if g.shape != p.shape:
        raise ValueError(f"mask shapes differ: gt {g.shape}, pred {p.shape}")
    bound_pix = bound_th if bound_th >= 1 else math.ceil(bound_th * math.hypot(*p.shape))
    fb = seg2bmap(p)
    gb = seg2bmap(g)
    n_fg = int(np.count_nonzero(fb))
    n_gt = int(np.count_nonzero(gb))
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1.0, 0.0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0.0, 1.0
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    else:
        se = disk(bound_pix)
        fg_dil = cv2.dilate(fb.astype(np.uint8), se) > 0
        gt_dil = cv2.dilate(gb.astype(np.uint8), se) > 0
        precision = np.count_nonzero(fb & gt_dil) / n_fg
        recall = np.count_nonzero(gb & fg_dil) / n_gt
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def evaluate_sequence(
    gts: Sequence[np.ndarray], preds: Sequence[np.ndarray], *, skip_first_last: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame J and F of one sequence, as two float64 arrays.

    ``gts`` and ``preds`` are equally long lists of (H, W) masks. With ``skip_first_last`` (the
    official semi-supervised protocol) the first and last frames are left out, so the arrays have
    ``len(gts) - 2`` entries.
    """
    if len(gts) != len(preds):
        raise ValueError(f"{len(gts)} ground-truth masks but {len(preds)} predictions")
    idx = range(1, len(gts) - 1) if skip_first_last else range(len(gts))
    j = np.array([jaccard(gts[i], preds[i]) for i in idx], dtype=np.float64)
    f = np.array([f_measure(preds[i], gts[i]) for i in idx], dtype=np.float64)
    return j, f


@dataclass
class SequenceScore:
    """Scores of one sequence. ``seconds_per_frame`` is tracker time (prompt + steps) per frame."""

    name: str
    n_frames: int
    J: float
    F: float
    seconds_per_frame: float
    J_frames: list[float] = field(default_factory=list, repr=False)
    F_frames: list[float] = field(default_factory=list, repr=False)
    occluded_frames: int = 0

    @property
    def JF(self) -> float:
        return 0.5 * (self.J + self.F)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n_frames": self.n_frames,
            "J": self.J,
            "F": self.F,
            "JF": self.JF,
            "seconds_per_frame": self.seconds_per_frame,
            "occluded_frames": self.occluded_frames,
            "J_frames": list(self.J_frames),
            "F_frames": list(self.F_frames),
        }


@dataclass
class DavisReport:
    """Result of :func:`run_davis`: per-sequence scores and their means."""

    prompt: str
    sequences: list[SequenceScore]

    @property
    def J(self) -> float:
        return float(np.mean([s.J for s in self.sequences])) if self.sequences else float("nan")

    @property
    def F(self) -> float:
        return float(np.mean([s.F for s in self.sequences])) if self.sequences else float("nan")

    @property
    def JF(self) -> float:
        return 0.5 * (self.J + self.F)

    @property
    def seconds_per_frame(self) -> float:
        n = sum(s.n_frames for s in self.sequences)
        t = sum(s.seconds_per_frame * s.n_frames for s in self.sequences)
        return t / n if n else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "J": self.J,
            "F": self.F,
            "JF": self.JF,
            "seconds_per_frame": self.seconds_per_frame,
            "sequences": [s.to_dict() for s in self.sequences],
        }

    def table(self) -> str:
        """A plain-text table, one row per sequence and a mean row."""
        lines = [f"prompt={self.prompt}", f"{'sequence':<20} {'J':>6} {'F':>6} {'J&F':>6} {'s/frame':>8}"]
        for s in self.sequences:
            lines.append(f"{s.name:<20} {s.J:6.3f} {s.F:6.3f} {s.JF:6.3f} {s.seconds_per_frame:8.3f}")
        lines.append(f"{'mean':<20} {self.J:6.3f} {self.F:6.3f} {self.JF:6.3f} {self.seconds_per_frame:8.3f}")
        return "\n".join(lines)


# --- data ------------------------------------------------------------------------------------


def _res_dir(root: Path, kind: str) -> Path:
    base = root / kind
    if (base / "480p").is_dir():
        return base / "480p"
    return base


LAYOUT = ("A DAVIS folder holds JPEGImages/480p/<sequence>/*.jpg and Annotations/480p/<sequence>/*.png "
          "(480p/ may be left out)")


def list_sequences(root: str | Path) -> list[str]:
    """Names of the sequences under ``root/JPEGImages/480p`` (sorted); :class:`MediaNotFound` naming
    the expected layout when ``root`` is not a DAVIS-layout folder."""
    from engine.errors import MediaNotFound

    root = Path(root)
    if not root.is_dir():
        raise MediaNotFound("the DAVIS folder does not exist" if not root.exists() else "this is not a folder",
                            path=str(root), hint=LAYOUT)
    d = _res_dir(root, "JPEGImages")
    if not d.is_dir():
        raise MediaNotFound("this is not a DAVIS folder: it has no JPEGImages/480p folder", path=str(root), hint=LAYOUT)
    return sorted(p.name for p in d.iterdir() if p.is_dir())


def check_sequences(root: str | Path, names: Sequence[str]) -> None:
    """:class:`MediaNotFound` listing the available sequences when any of ``names`` is not under ``root``."""
    from engine.errors import MediaNotFound

    available = list_sequences(root)
    missing = [n for n in names if n not in available]
    if not names or missing:
        shown = ", ".join(available[:40]) + (f" … ({len(available)} in all)" if len(available) > 40 else "")
        what = "no sequence was named" if not names else (
            f"there is no sequence {missing[0]!r}" if len(missing) == 1 else
            "there are no sequences " + ", ".join(repr(m) for m in missing))
        raise MediaNotFound(f"{what} in the DAVIS folder", path=str(root),
                            hint=f"Available: {shown}" if available else "It has no sequences. " + LAYOUT)


def read_frames(root: str | Path, seq: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames (uint8 RGB (H, W, 3)) and ground-truth masks (bool (H, W)) of one sequence."""
    from engine.errors import CorruptMedia, MediaNotFound

    root = Path(root)
    img_dir = _res_dir(root, "JPEGImages") / seq
    ann_dir = _res_dir(root, "Annotations") / seq
    if not img_dir.is_dir():
        check_sequences(root, [seq])  # names the available ones
    imgs = sorted(img_dir.glob("*.jpg"))
    if not imgs:
        raise MediaNotFound(f"sequence {seq!r} has no JPEG frames", path=str(img_dir), hint=LAYOUT)
    if not ann_dir.is_dir():
        raise MediaNotFound(f"sequence {seq!r} has no annotation folder", path=str(ann_dir), hint=LAYOUT)
    frames = []
    masks = []
    for p in imgs:
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is None:
            raise CorruptMedia("the frame cannot be read", path=str(p))
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        mp = ann_dir / (p.stem + ".png")
        if not mp.is_file():
            raise MediaNotFound(f"sequence {seq!r} has no annotation for frame {p.name}", path=str(mp),
                                hint="Every JPEG frame needs its ground-truth PNG of the same name")
        try:
            masks.append(read_mask(mp))
        except OSError:
            raise CorruptMedia("the annotation cannot be read", path=str(mp)) from None
    return frames, masks


def read_mask(path: str | Path) -> np.ndarray:
    """A DAVIS annotation PNG as bool (H, W): any non-zero value (255 in DAVIS-2016) is object."""
    m = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if m is None:
        raise OSError(f"cannot read {path}")
    if m.ndim == 3:
        m = m.max(axis=2)
    return m > 0


def interior_point(mask: np.ndarray) -> tuple[float, float]:
    """The most interior pixel of a mask (maximum of the distance transform), as (x, y) pixels."""
    m = _as_bool(mask, "mask")
    if not m.any():
        raise ValueError("the mask is empty: it has no interior point")
    dt = cv2.distanceTransform(np.pad(m, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dt)), dt.shape)
    return float(x), float(y)


# --- runner ----------------------------------------------------------------------------------


class _ListSource:
    """A FrameSource over in-memory uint8 RGB frames (plate frames 0..n-1)."""

    def __init__(self, frames: list[np.ndarray]):
        self._frames = frames

    @property
    def frames(self) -> range:
        return range(len(self._frames))

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self._frames[0].shape[:2])

    def read_uint8(self, frame: int) -> np.ndarray:
        return self._frames[frame]

    def read_working(self, frame: int) -> np.ndarray:
        return self._frames[frame].astype(np.float32) / 255.0


def _run_contract(backend, name, frames, gts, prompt, progress, keep_masks) -> "SequenceScore":
    from engine.backends.base import Prompt
    from engine.backends.registry import get_segmenter
    from engine.util.progress import Progress, report

    seg, _ = get_segmenter(backend)
    t0 = time.perf_counter()
    state = seg.init_state(_ListSource(frames))
    if prompt == "mask":
        pr = Prompt(mask=gts[0])
    else:
        x, y = interior_point(gts[0])
        pr = Prompt(points=np.array([[x, y]], np.float32), labels=np.array([1], np.int32))
    first = seg.add_prompt(state, 0, 1, pr)
    preds = [np.asarray(first.mask, bool)]
    occl = 0
    started = time.monotonic()
    for pf in seg.propagate(state, 0, len(frames) - 1, "forward", [1]):
        mo = pf.objects.get(1)
        preds.append(np.zeros(gts[0].shape, bool) if mo is None else np.asarray(mo.mask, bool))
        occl += int(bool(mo is not None and mo.occluded))
        report(progress, Progress(f"davis:{name}", len(preds) - 1, len(frames) - 1, frame=pf.frame, started=started))
    while len(preds) < len(frames):
        preds.append(np.zeros(gts[0].shape, bool))
    elapsed = time.perf_counter() - t0
    j, f = evaluate_sequence(gts, preds)
    sc = SequenceScore(name=name, n_frames=len(frames), J=float(j.mean()) if j.size else float("nan"),
                       F=float(f.mean()) if f.size else float("nan"),
                       seconds_per_frame=elapsed / max(1, len(frames) - 1), J_frames=j.tolist(),
                       F_frames=f.tolist(), occluded_frames=occl)
    if keep_masks:
        sc.masks = preds  # type: ignore[attr-defined]
    return sc


# --- classical runner ----------------------------------------------------------------------------------


def run_davis(
    root: str | Path,
    sequences: Sequence[str] | None = None,
    prompt: str = "mask",
    tracker_params: Any = None,
    progress: Callable[..., None] | None = None,
    *,
    backend: str = "classical",
    keep_masks: bool = False,
) -> DavisReport:
    """Track each sequence from frame 0 with the classical tracker and score it.

    Parameters
    ----------
    root:
        A DAVIS-layout folder (``JPEGImages/480p/<seq>``, ``Annotations/480p/<seq>``).
    sequences:
        Names to run (default: all under ``root``).
    prompt:
        ``"mask"``: frame 0's ground-truth mask; ``"click"``: one positive click at the most interior
        point of that mask (:func:`interior_point`), with frame 1 given as the motion reference
        (the clip's own pixels, no annotation).
    tracker_params:
        A :class:`engine.backends.classical.tracker.TrackerParams` (default parameters if None).
    progress:
        Called with an :class:`engine.util.progress.Progress` after each frame.
    backend:
        ``"classical"`` (default) runs :class:`~engine.backends.classical.tracker.ClassicalTracker`
        directly (``tracker_params`` apply); any other name is built by
        :func:`engine.backends.registry.get_segmenter` and driven through the segmenter contract
        (``init_state`` / ``add_prompt`` / ``propagate``).
    keep_masks:
        Attach the predicted masks to each :class:`SequenceScore` as ``.masks`` (for inspection).
    """
    from engine.backends.classical.tracker import ClassicalTracker
    from engine.util.progress import Progress, report

    if prompt not in ("mask", "click"):
        raise ValueError(f"prompt must be 'mask' or 'click', not {prompt!r}")
    root = Path(root)
    if sequences is not None:
        names = list(sequences)
        check_sequences(root, names)  # every name checked before any is run
    else:
        names = list_sequences(root)
        if not names:
            check_sequences(root, names)
    scores: list[SequenceScore] = []
    for name in names:
        frames, gts = read_frames(root, name)
        if backend != "classical":
            scores.append(_run_contract(backend, name, frames, gts, prompt, progress, keep_masks))
            continue
        tracker = ClassicalTracker(tracker_params)
        t0 = time.perf_counter()
        if prompt == "mask":
            m0 = gts[0]
        else:
            x, y = interior_point(gts[0])
            ref = frames[1] if len(frames) > 1 else None
            m0, _ = tracker.segment(frames[0], points=[(x, y)], labels=[1], motion_ref=ref)
        state = tracker.start(frames[0], m0, estimate=prompt != "mask")
        preds = [np.asarray(m0, dtype=bool)]
        occl = 0
        started = time.monotonic()
        for i in range(1, len(frames)):
            (res,) = tracker.step([state], frames[i - 1], frames[i])
            preds.append(res.mask)
            occl += int(res.occluded)
            report(progress, Progress(f"davis:{name}", i, len(frames) - 1, frame=i, started=started))
        elapsed = time.perf_counter() - t0
        j, f = evaluate_sequence(gts, preds)
        sc = SequenceScore(
            name=name,
            n_frames=len(frames),
            J=float(j.mean()) if j.size else float("nan"),
            F=float(f.mean()) if f.size else float("nan"),
            seconds_per_frame=elapsed / max(1, len(frames) - 1),
            J_frames=j.tolist(),
            F_frames=f.tolist(),
            occluded_frames=occl,
        )
        if keep_masks:
            sc.masks = preds  # type: ignore[attr-defined]
        scores.append(sc)
    return DavisReport(prompt=prompt, sequences=scores)
