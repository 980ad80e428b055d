"""The weight-free ``prior`` depth backend: a fixed ground-plane layout, **not a measurement**.

A fresh install has no Depth Anything 3 weights. Rather than invent depth from image cues and
call it an estimate, the engine's weight-free backend says exactly what it is: the depth a
level camera (assumed 50° horizontal field of view, or the given intrinsics) would see if the
picture were an infinite floor below a horizon at ``horizon`` of the frame height, with a far
backdrop above it. It ignores the pixels — every frame gets the same map.

What it is for: running the whole pipeline (chunking, normals, PLY, cameras, EXR, session
export, depth mattes) without weights in tests and demos, and as the *sanity baseline* of
``roto eval depth`` (a model that does not beat a fixed layout after scale/shift alignment
has learnt nothing about the plate). ``auto`` never picks it: ask for it by name
(``--model prior``). Its :class:`~engine.depth.base.DepthInfo` ``kind`` is ``affine``.

numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.depth.base import DepthInfo, DepthOut

TITLE = "ground-plane prior (no model: a fixed layout, not a measurement of the plate)"


class PriorEstimator:
    """See the module doc. ``camera_height`` and ``far`` are in nominal metres."""

    def __init__(self, *, horizon: float = 0.45, camera_height: float = 1.6, far: float = 60.0) -> None:
        if not 0.0 <= horizon < 1.0:
            raise ValueError("horizon is a fraction of the frame height in [0, 1)")
        self.horizon = float(horizon)
        self.camera_height = float(camera_height)
        self.far = float(far)
        self.info = DepthInfo(name="prior", title=TITLE, needs_weights=False, kind="affine", multiview=False,
                              camera=False, normals=False, chunk=8, licence="(engine code)",
                              notes="ignores the pixels; for pipeline tests and as the eval baseline")

    @property
    def token(self) -> str:
        return f"prior|{self.horizon}|{self.camera_height}|{self.far}"

    @property
    def reason(self) -> str:
        return f"the {TITLE}"

    def layout(self, shape: tuple[int, int], K: np.ndarray | None = None) -> np.ndarray:
        from engine.ops.camera_geometry import default_intrinsics

        h, w = int(shape[0]), int(shape[1])
        K = default_intrinsics((h, w)) if K is None else np.asarray(K, np.float64)
        fy = K[1, 1]
        v_h = self.horizon * (h - 1)
        rows = np.arange(h, dtype=np.float64) - v_h
        with np.errstate(divide="ignore"):
            z = np.where(rows > 0, self.camera_height * fy / np.where(rows > 0, rows, 1.0), np.inf)
        z = np.minimum(z, self.far)
        return np.repeat(z[:, None], w, axis=1).astype(np.float32)

    def estimate(self, images: Sequence[np.ndarray], intrinsics: np.ndarray | None = None) -> list[DepthOut]:
        out = []
        for img in images:
            h, w = np.asarray(img).shape[:2]
            out.append(DepthOut(self.layout((h, w), intrinsics), None, None if intrinsics is None else
                                np.asarray(intrinsics, np.float64), None, None, None,
                                ["ground-plane prior: not a measurement of the plate"]))
        return out
