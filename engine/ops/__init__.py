"""Pure array operations shared by the engine's algorithms (no state, no I/O). Among them:

* :mod:`engine.ops.flow` — dense optical flow (OpenCV DIS), warping of images and (soft) masks by a
  flow field, forward–backward consistency (occlusion / unreliable-flow maps);
* :mod:`engine.ops.idmatte` — object-id mattes from overlapping masks;
* :mod:`engine.ops.rle` — run-length encoding of binary masks.

Conventions of :mod:`engine.ops.flow` (stated again in each of its docstrings):

* images are ``(H, W)`` or ``(H, W, C)`` arrays, ``uint8`` in [0, 255] or floating point in [0, 1];
  colour images are RGB;
* masks are ``bool (H, W)``; soft masks are ``float32 (H, W)`` in [0, 1];
* a flow field is ``float32 (H, W, 2)`` in pixels, channel 0 = x (to the right), channel 1 = y
  (downwards), origin at the top-left pixel centre: pixel ``(x, y)`` of the frame the flow is
  defined on corresponds to position ``(x + flow[y, x, 0], y + flow[y, x, 1])`` in the other frame.

Importing this package loads nothing heavy; numpy and OpenCV are imported by the submodules.
"""

from __future__ import annotations

