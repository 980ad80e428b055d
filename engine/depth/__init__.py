"""Depth, normals and cameras from plates (use case: relighting and depth splits).

* :mod:`engine.depth.base` — the :class:`~engine.depth.base.DepthEstimator` contract and what it returns;
* :mod:`engine.depth.registry` — estimators by name; ``auto`` picks Depth Anything 3 small/base
  when its weights are present and otherwise says exactly what to fetch;
* :mod:`engine.depth.da3` — the Depth Anything 3 adapter (``depth-anything-3`` package, network only);
* :mod:`engine.depth.prior` — the weight-free ``prior`` backend: a fixed ground-plane layout, NOT
  a measurement of the plate (pipeline tests, and the sanity baseline of ``roto eval depth``);
* :mod:`engine.depth.video` — chunked video inference with overlap, scale alignment between
  chunks, world-frame cameras across chunks and motion-compensated temporal smoothing;
* :mod:`engine.depth.store` — depth kept with a session (``<project>.depth/``) and the
  ``Session.depth(frame)`` / ``Session.normals(frame)`` seam the EXR exporter reads;
* :mod:`engine.depth.outputs` — per-frame EXR (``depth.Z``, ``N.X/Y/Z``), PLY points and the
  Nuke camera for ``roto depth``.

Conventions: ``docs/formats/depth-conventions.md``; decisions: ``docs/decisions/DR011-depth.md``.
Importing this package loads the standard library only.
"""

from __future__ import annotations
