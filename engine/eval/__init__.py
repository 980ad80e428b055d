"""Evaluation of segmentation quality against ground truth.

:mod:`engine.eval.davis` holds the DAVIS video-object-segmentation measures (region J, boundary F,
computed as the official DAVIS-2017 evaluation does) and :func:`engine.eval.davis.run_davis`, which
runs a segmentation backend (the weight-free tracker by default) over a DAVIS-layout folder and reports per-sequence and mean scores.

Importing this package loads nothing heavy; numpy and OpenCV are imported by the submodule.
"""

from __future__ import annotations

__all__ = ["davis"]
