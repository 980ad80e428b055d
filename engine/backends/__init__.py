"""Segmentation/tracking backends behind the engine's segmenter contract (:mod:`.base`).

Backends register themselves in :mod:`.registry`; :mod:`.classical` is the weight-free tracker
(optical flow, keyframe anchoring, motion and colour cues, graph cut) that a fresh install runs
before any model weights are present; model-based backends live beside it.

Importing this package loads nothing heavy.
"""

from __future__ import annotations
