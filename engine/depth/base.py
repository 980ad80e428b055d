"""The depth-estimator contract (mirrors the segmenter contract of :mod:`engine.backends.base`).

An estimator takes a **group of frames** (working-space RGB, float32 ``(H, W, 3)``, one shot,
one size) and returns one :class:`DepthOut` per frame, at the frames' own resolution. A
multi-view estimator (Depth Anything 3 any-view) makes the group consistent (one scale, one
world frame); a single-view one treats the frames independently. Estimators never read files,
never write outputs and never align across calls: chunking, alignment between chunks and
temporal smoothing are :mod:`engine.depth.video`'s job.

Array conventions (``docs/formats/depth-conventions.md``):

* ``depth`` float32 ``(H, W)``: **planar** depth ``z`` along the optical axis, > 0; 0 where
  there is no estimate. Units: metres for ``kind == "metric"``; arbitrary but consistent
  within one call for ``"relative"`` (scale unknown); scale *and* shift unknown for ``"affine"``.
* ``confidence`` float32 ``(H, W)`` in [0, 1] (higher = surer) or None.
* ``intrinsics`` float64 ``(3, 3)`` in pixels of the frame (OpenCV: pixel ``(col, row)`` is
  centred at ``(col, row)``) or None when the estimator has no camera.
* ``extrinsics`` float64 ``(3, 4)`` world-to-camera (OpenCV axes), world shared by the frames
  of one call, or None.
* ``normals`` float32 ``(H, W, 3)`` camera space, OpenGL/Nuke axes (``+Y`` up, ``+Z`` towards
  the viewer), when the model predicts them; else None (:mod:`engine.ops.normals` derives them).

Standard library only at import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

KINDS = ("metric", "relative", "affine")


@dataclass(frozen=True)
class DepthInfo:
    """How an estimator describes itself (``roto depth --help``, ``roto models``, reports)."""

    name: str
    title: str
    needs_weights: bool
    kind: str = "relative"  # metric | relative | affine (see the module doc)
    multiview: bool = False  # frames of one call are made consistent (one scale, one world)
    camera: bool = False  # predicts intrinsics and extrinsics
    normals: bool = False  # predicts normals
    chunk: int = 1  # frames per call it is built for (memory/time on this device)
    licence: str = ""
    commercial: bool = True
    notes: str = ""


@dataclass
class DepthOut:
    """One frame's estimate (see the module doc for every field's convention)."""

    depth: Any
    confidence: Any = None
    intrinsics: Any = None
    extrinsics: Any = None
    normals: Any = None
    frame: int | None = None
    notes: list[str] = field(default_factory=list)


@runtime_checkable
class DepthEstimator(Protocol):
    """Implementations: ``da3-*`` (:mod:`engine.depth.da3`), ``prior`` (:mod:`engine.depth.prior`)."""

    info: DepthInfo

    @property
    def token(self) -> str:
        """What the results depend on (model, weights, input size, device/precision): store keys."""
        ...

    @property
    def reason(self) -> str:
        """One sentence: what runs and where (weights file or random weights, device, precision)."""
        ...

    def estimate(self, images: Sequence[np.ndarray], intrinsics: np.ndarray | None = None) -> list[DepthOut]:
        """Depth for ``images`` (working-space RGB float32 (H, W, 3), same size), one per image.

        ``intrinsics`` (3, 3), when the user knows the camera: metric models use its focal
        length; estimators without a camera pass it through.
        """
        ...
