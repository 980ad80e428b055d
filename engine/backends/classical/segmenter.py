"""The ``classical`` backend: the weight-free tracker behind the segmenter contract.

Always available (numpy + OpenCV): it is what a fresh install runs. Prompts: points (±), box,
mask. Propagation steps every object of a run together (flow is shared) and gives each pixel
claimed by several objects of the run to the most probable one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from engine.backends.base import BackendInfo, Direction, FrameSource, MaskOut, Prompt, PropagatedFrame
from engine.backends.registry import register_segmenter
from engine.errors import PromptError

ALGORITHM_VERSION = "6"


@dataclass
class ClassicalState:
    """Per-clip state: the frame source and the conditioning masks by (object, frame)."""

    source: FrameSource
    cond: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    #: the conditioning masks that are estimates (segmented from clicks or a box), not painted
    estimated: set[tuple[int, int]] = field(default_factory=set)


class ClassicalSegmenter:
    info = BackendInfo(
        name="classical",
        title="classical (weight-free)",
        prompt_kinds=("points", "box", "mask"),
        needs_weights=False,
        licence="built-in",
        notes="Optical flow + colour models + graph cut; no model weights needed.",
    )
    #: an estimated keyframe (``Prompt.estimate``) holds the propagation less than a painted one
    uses_estimate = True

    def __init__(self, params: Any = None, **overrides: Any) -> None:
        from engine.backends.classical.tracker import ClassicalTracker, TrackerParams

        if params is None:
            params = TrackerParams(**overrides)
        elif overrides:
            params = TrackerParams(**{**asdict(params), **overrides})
        self.params = params
        self.tracker = ClassicalTracker(params)
        from engine.cache.keys import make_key

        self.cache_token = "classical-" + make_key(ALGORITHM_VERSION, asdict(params))[:16]

    def init_state(self, source: FrameSource) -> ClassicalState:
        return ClassicalState(source)

    def add_prompt(self, state: ClassicalState, frame: int, obj_id: int, prompt: Prompt) -> MaskOut:
        if prompt.text is not None or prompt.exemplar is not None:
            from engine.errors import BackendUnavailable

            raise BackendUnavailable("the classical backend does not understand text or exemplar prompts",
                                     hint="Use points, a box or a mask, or the sam3 backend")
        if prompt.mask is not None and prompt.points is None and prompt.box is None:
            mask = np.asarray(prompt.mask, bool)
            if mask.shape != tuple(state.source.shape):
                raise PromptError(f"the mask is {mask.shape[::-1]}, the plate is {tuple(state.source.shape)[::-1]}")
            state.cond[(obj_id, frame)] = mask
            if prompt.estimate:
                state.estimated.add((obj_id, frame))
            else:
                state.estimated.discard((obj_id, frame))
            return MaskOut(mask, 1.0, False)
        image = state.source.read_uint8(frame)
        ref = None
        if prompt.points is not None and prompt.box is None and prompt.mask is None:
            ref = self._motion_ref(state, frame)
        mask, score = self.tracker.segment(image, points=prompt.points, labels=prompt.labels, box=prompt.box,
                                           mask=prompt.mask, motion_ref=ref)
        mask = np.asarray(mask, bool)
        state.cond[(obj_id, frame)] = mask
        state.estimated.add((obj_id, frame))
        return MaskOut(mask, float(score), False)

    @staticmethod
    def _motion_ref(state: ClassicalState, frame: int) -> np.ndarray | None:
        """The next frame of the shot (the previous one on the last frame): clicks on an object that
        moves unlike the camera then seed the region that moves with them (what ``roto eval davis
        --prompt click`` measures)."""
        frames = state.source.frames
        for f in (frame + 1, frame - 1):
            if f in frames:
                return state.source.read_uint8(f)
        return None

    def propagate(self, state: ClassicalState, start: int, end: int, direction: Direction,
                  obj_ids: list[int] | None = None) -> Iterator[PropagatedFrame]:
        from engine.backends.classical.tracker import resolve_overlaps

        ids = [o for o in (obj_ids if obj_ids is not None else sorted({k[0] for k in state.cond}))
               if (o, start) in state.cond]
        if not ids:
            return
        step = 1 if direction == "forward" else -1
        prev = state.source.read_uint8(start)
        tracks = [self.tracker.start(prev, state.cond[(o, start)], estimate=(o, start) in state.estimated) for o in ids]
        for frame in range(start + step, end + step, step):
            image = state.source.read_uint8(frame)
            results = self.tracker.step(tracks, prev, image)
            if len(results) > 1:
                results = resolve_overlaps(results)
            yield PropagatedFrame(frame, {o: MaskOut(r.mask, float(r.confidence), bool(r.occluded))
                                          for o, r in zip(ids, results)})
            prev = image

    def remove_object(self, state: ClassicalState, obj_id: int) -> None:
        for key in [k for k in state.cond if k[0] == obj_id]:
            del state.cond[key]
            state.estimated.discard(key)

    def reset(self, state: ClassicalState) -> None:
        state.cond.clear()
        state.estimated.clear()


def _unavailable() -> str | None:
    from engine.deps import available

    if not available("cv2"):
        return "OpenCV is not installed (pip install opencv-python-headless)"
    return None


register_segmenter("classical", ClassicalSegmenter, unavailable=_unavailable, priority=0,
                   title="classical (weight-free)")
