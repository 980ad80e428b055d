"""Depth Anything 3 presets and availability, without importing torch (for the registry).

Licences as published on the authors' model cards: small/base Apache-2.0, large/giant and the
nested giant CC BY-NC 4.0 (non-commercial), metric-large Apache-2.0; mono-large's card is
not checked here. ``catalogue`` says whether ``roto models fetch NAME`` knows the weights;
the others run with ``--weights PATH``.

Standard library only.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

INSTALL = "pip install --no-deps depth-anything-3==0.1.1 omegaconf addict einops safetensors"


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    kind: str
    multiview: bool
    camera: bool
    licence: str
    commercial: bool
    catalogue: bool  # has a `roto models` entry (else --weights PATH)
    notes: str = ""


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("da3-small", "Depth Anything 3 small", "relative", True, True, "Apache-2.0", True, True),
    Preset("da3-base", "Depth Anything 3 base", "relative", True, True, "Apache-2.0", True, True),
    Preset("da3-large", "Depth Anything 3 large", "relative", True, True, "CC BY-NC 4.0", False, True,
           "non-commercial use only"),
    Preset("da3-giant", "Depth Anything 3 giant", "relative", True, True, "CC BY-NC 4.0", False, True,
           "non-commercial use only"),
    Preset("da3metric-large", "Depth Anything 3 metric large", "metric", False, False, "Apache-2.0", True, False,
           "metres from the focal length; no camera"),
    Preset("da3mono-large", "Depth Anything 3 mono large", "relative", False, False,
           "Apache-2.0 (per its model card; unverified here)", True, False, "single-image relative depth; no camera"),
    Preset("da3nested-giant-large", "Depth Anything 3 nested giant + metric large", "metric", True, True,
           "CC BY-NC 4.0", False, False, "non-commercial use only"),
)}


def installed() -> bool:
    """torch, depth_anything_3 and its light dependencies can be imported (checked without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "depth_anything_3", "omegaconf", "addict",
                                                                  "einops"))


def unavailable(model: str, *, weights_given: bool = False) -> str | None:
    """None when ``model`` can run here, else why not (cheap: a ``stat``, no torch import)."""
    if not installed():
        return f"Depth Anything 3 is not installed ({INSTALL})"
    p = PRESETS.get(model)
    if p is None:
        return f"there is no Depth Anything 3 model {model!r}"
    if weights_given:
        return None
    if not p.catalogue:
        return f"{model} needs --weights PATH (it has no `roto models` entry)"
    from engine.models.manager import find_weights

    if find_weights(model) is None:
        return f"the {model} weights are not downloaded; run `roto models fetch {model}`"
    return None
