"""The matter contract: frames and per-object masks (or trimaps) in, float alpha out, streaming.

A matter keeps an explicit per-shot *state* (like a segmenter, :mod:`engine.backends.base`) and
is fed one :class:`MatteFrame` at a time, in plate order; it answers that frame's alpha for every
object at once. The state holds only what the next frame needs (the previous frame and its
alpha, a network's memory), so a shot of any length runs in bounded memory. Matters never read
or write files: frames come in as arrays, alpha goes out as arrays.

Array conventions: ``image`` float32 ``(H, W, 3)`` RGB in the working space (display-referred
sRGB-encoded Rec.709, what :meth:`engine.media.clip.Clip.read_working` returns), full plate
resolution; masks ``bool (H, W)``; trimaps float32 ``(H, W)`` with 0 background, 1 foreground
and anything between unknown; alpha float32 ``(H, W)`` in [0, 1]. Frames are the plate's own
numbers. A matter that works on the object's region of interest still answers full-size alpha
(zero outside) plus the region it touched (:attr:`AlphaOut.roi`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class MatterInfo:
    """How a matter describes itself (``roto matte --backend``, the registry, DR008)."""

    name: str
    title: str
    needs_weights: bool
    licence: str = ""
    notes: str = ""
    #: what it needs per frame: "mask" (every frame), "first-mask" (the first frame only), "trimap"
    inputs: tuple[str, ...] = ("mask",)


@dataclass(frozen=True)
class MatteFrame:
    """One frame for a matter: the image and, per object, its mask and/or trimap.

    ``masks[obj]`` None means the object has no mask on this frame (not tracked there, or
    occluded): the matter answers zero alpha (a propagating matter may keep going from its memory).
    ``confidence[obj]`` is the segmenter's confidence in that mask (1 when unknown).
    """

    frame: int
    image: Any  # float32 (H, W, 3) working space
    masks: dict[int, Any] = field(default_factory=dict)  # obj -> bool (H, W) | None
    trimaps: dict[int, Any] = field(default_factory=dict)  # obj -> float32 (H, W), overrides the mask band
    confidence: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class AlphaOut:
    """One object's alpha on one frame.

    ``alpha`` float32 (H, W) in [0, 1] (full frame); ``roi`` ``(y0, y1, x0, x1)`` the region
    outside which alpha is zero (None = anywhere); ``confidence`` in [0, 1] (how well the matter's
    model explained the band); ``stats`` solver facts (unknown pixels, iterations, seconds…).
    """

    alpha: Any
    roi: tuple[int, int, int, int] | None = None
    confidence: float = 1.0
    stats: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Matter(Protocol):
    """A matting backend. Implementations: ``classical`` (default, weight-free), ``keyer``, ``matanyone``."""

    info: MatterInfo
    #: name + parameters + algorithm version: results are reusable only under the same token
    cache_token: str

    def init_state(self, shape: tuple[int, int]) -> Any:
        """A fresh state for one shot of plate size ``(H, W)``."""
        ...

    def process(self, state: Any, frame: MatteFrame) -> dict[int, AlphaOut]:
        """The alpha of every object of ``frame`` (frames come in plate order)."""
        ...

    def reset(self, state: Any) -> None:
        """Forget the temporal memory (a cut, a jump in the frame order)."""
        ...


def run_matter(matter: Matter, frames: Iterable[MatteFrame], shape: tuple[int, int]) -> Iterator[tuple[int, dict[int, AlphaOut]]]:
    """Stream ``frames`` through ``matter``: yields ``(frame, {obj: AlphaOut})`` one frame at a time.

    The frame iterable is consumed lazily, so frames are read, matted and released one by one.
    A gap in the frame numbers resets the temporal memory.
    """
    state = matter.init_state(shape)
    last: int | None = None
    for mf in frames:
        if last is not None and mf.frame != last + 1:
            matter.reset(state)
        yield mf.frame, matter.process(state, mf)
        last = mf.frame
