"""The segmenter contract, shaped like SAM 2's video predictor.

A backend keeps an explicit per-clip *state*. ``add_prompt`` answers a frame's mask at once;
``propagate`` is a generator that yields one :class:`PropagatedFrame` per frame, so callers
report progress and honour cancellation between frames. Backends never read files or write
outputs: frames come from a :class:`FrameSource` as arrays; masks go back as arrays.

Array conventions: frames ``uint8 (H, W, 3)`` RGB in the working space (``rgb8``) or
``float32 (H, W, 3)`` working space (``working``); masks ``bool (H, W)``; points ``float32
(N, 2)`` as (x, y) pixels, origin top-left, pixel centres at +0.5; labels ``int (N,)`` with
1 = positive, 0 = negative; box ``float32 (4,)`` as x0, y0, x1, y1 pixels.
Frames are the plate's own numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

Direction = Literal["forward", "backward"]


@runtime_checkable
class FrameSource(Protocol):
    """Frames by plate number. :class:`engine.media.clip.Clip` is one."""

    @property
    def frames(self) -> range: ...

    @property
    def shape(self) -> tuple[int, int]: ...

    def read_uint8(self, frame: int) -> np.ndarray: ...

    def read_working(self, frame: int) -> np.ndarray: ...


@dataclass(frozen=True)
class MaskOut:
    """One object's mask on one frame: ``mask`` bool (H, W), ``confidence`` in [0, 1]."""

    mask: Any
    confidence: float = 1.0
    occluded: bool = False


@dataclass(frozen=True)
class PropagatedFrame:
    """What ``propagate`` yields: every tracked object's mask on ``frame``."""

    frame: int
    objects: dict[int, MaskOut] = field(default_factory=dict)


@dataclass(frozen=True)
class Prompt:
    """A prompt on one frame for one object (any combination the backend supports)."""

    points: Any = None  # float32 (N, 2) x, y
    labels: Any = None  # int (N,) 1 positive / 0 negative
    box: Any = None  # float32 (4,) x0, y0, x1, y1
    mask: Any = None  # bool (H, W)
    text: str | None = None
    exemplar: Any = None  # (frame, box) on another frame
    #: True when ``mask`` is itself an estimate (segmented from clicks or a box, or a tracked result),
    #: not painted or approved by the user: a backend may hold the propagation to it less tightly
    #: (one that does says so with a true ``uses_estimate`` attribute, so the flag enters its run
    #: cache key; for the others approving a clicked keyframe does not recompute the run).
    estimate: bool = False

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(k for k in ("points", "box", "mask", "text", "exemplar") if getattr(self, k) is not None)


@dataclass(frozen=True)
class BackendInfo:
    """How a backend describes itself in ``roto backends`` and in the registry."""

    name: str
    title: str
    prompt_kinds: tuple[str, ...]
    needs_weights: bool
    licence: str = ""
    notes: str = ""


class Segmenter(Protocol):
    """A video segmenter. Implementations: ``classical`` (weight-free), ``sam2``, ``sam3``."""

    info: BackendInfo

    def init_state(self, source: FrameSource) -> Any:
        """A fresh state for one clip (holds conditioning masks and per-object memory)."""
        ...

    def add_prompt(self, state: Any, frame: int, obj_id: int, prompt: Prompt) -> MaskOut:
        """Condition ``obj_id`` on ``frame`` with ``prompt``; returns that frame's mask at once."""
        ...

    def propagate(
        self,
        state: Any,
        start: int,
        end: int,
        direction: Direction,
        obj_ids: list[int] | None = None,
    ) -> Iterator[PropagatedFrame]:
        """Track from ``start`` (exclusive: its mask is the conditioning) to ``end`` (inclusive).

        Objects without a conditioning mask on ``start`` are skipped.
        """
        ...

    def remove_object(self, state: Any, obj_id: int) -> None: ...

    def reset(self, state: Any) -> None: ...
