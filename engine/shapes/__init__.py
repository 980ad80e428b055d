"""Editable shapes from mattes, and existing roto back in.

* :mod:`engine.shapes.contours` — sub-pixel 0.5 iso-lines of a matte: outer boundaries, holes,
  islands dropped by area; the edge width of a soft matte (feather).
* :mod:`engine.shapes.bezier` — closed cubic Bézier fitting with a pixel tolerance and a point
  budget, corners kept sharp.
* :mod:`engine.shapes.track` — animated shapes: the same points on the same spots over time
  (optical flow + outline matching), re-fitted where the fit leaves the tolerance, keys on every
  frame or where needed, new shapes with lifetimes on splits, merges and occlusions.
  Entry points: :func:`~engine.shapes.track.shapes_from_mattes`,
  :func:`~engine.shapes.track.shapes_from_session`.
* :mod:`engine.shapes.model` — the data (``BezierKey``, ``Shape``, ``ShapeSet``), JSON-serialisable.
* :mod:`engine.shapes.raster` — shapes back to mattes; :mod:`engine.shapes.metrics` — IoU,
  boundary distance, jitter.
* :mod:`engine.shapes.nk_reader` / :mod:`engine.shapes.importer` — Nuke Roto/RotoPaint shapes
  read from ``.nk`` scripts and rasterised into a session as keyframes or prompts.
* :mod:`engine.shapes.synthetic` — moving shapes with exact ground truth (tests, benchmark).

Host files are written by :mod:`engine.export.hostfiles`. Coordinates here are the engine's
(top-left origin, pixels); hosts' conventions live in their writers. Importing this package
loads nothing heavy (numpy, OpenCV and SciPy are imported by the submodules).
"""
