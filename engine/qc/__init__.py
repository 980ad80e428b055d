"""Quality control: per-frame scores per object and the frames an artist should review.

* :mod:`engine.qc.scores` — flicker not explained by motion, boundary jumps, area jumps, low
  backend confidence, occlusion; flags with reasons; stored in ``session.data.meta["qc"]``.
* :mod:`engine.qc.report` — text/JSON lists of the frames to review.
* :mod:`engine.qc.plot` — a PNG plot of the scores over time (OpenCV, no plotting library).

``roto qc SESSION`` drives them. Importing this package loads nothing heavy.
"""

from __future__ import annotations
