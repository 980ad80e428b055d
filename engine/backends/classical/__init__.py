"""Weight-free ("classical") object segmentation and tracking, as pure array code.

Modules:

* :mod:`.tracker` — :class:`~.tracker.ClassicalTracker` (prompt → mask on one frame, keyframe →
  :class:`~.tracker.ObjectState`, ``step`` forward or backward for many objects at once,
  per-frame confidence and occlusion flag), :func:`~.tracker.resolve_overlaps`.
* :mod:`.prompt_segment` — clicks / box / mask → mask on one frame (GrabCut based).
* :mod:`.colour_model` — colour histograms; :mod:`.appearance` — object-relative colour grid;
  :mod:`.graphcut` — binary graph cut with SciPy's max-flow.

Needs numpy, scipy and OpenCV (base install). Importing this package loads nothing heavy; import
the submodules.
"""

from __future__ import annotations

__all__ = ["tracker", "prompt_segment", "colour_model", "appearance", "graphcut"]
