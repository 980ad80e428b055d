"""Matting: tracked masks in, production soft alpha out (see docs/decisions/DR008-matting-and-qc.md).

* :mod:`engine.matting.base` — the matter contract (:class:`~engine.matting.base.Matter`): frames
  and per-object masks or trimaps in, float alpha per frame out, streaming with explicit state.
* :mod:`engine.matting.registry` — matters by name; ``auto`` = the weight-free ``classical`` one.
* :mod:`engine.matting.classical` — adaptive trimap + closed-form matting with sampling and
  motion-compensated temporal priors (default, no weights).
* :mod:`engine.matting.keyer` — colour-difference keyer for uneven green/blue screens, the tracked
  mask as garbage and core matte.
* :mod:`engine.matting.matanyone` — adapter for MatAnyone (user-installed, non-commercial licence).
* :mod:`engine.matting.controls` — edge controls (grow, feather, blur, clip, holes, islands,
  temporal smoothing, motion blur) over the pure ops in :mod:`engine.ops`.
* :mod:`engine.matting.pipeline` — stream a session through a matter into its alpha store.

Importing this package loads nothing heavy.
"""

from __future__ import annotations
