"""A roto session: one plate, its objects, prompts, locked keyframes and per-frame results.

Every edit is validated first (bad input raises and leaves the session unchanged), then
recorded as an undoable :class:`~engine.session.history.Command`, then autosaved when the
session has a project file. Propagation runs the segmenter backend between keyframes (see
:mod:`engine.session.schedule`), reports progress, honours cancellation between frames and
serves unchanged runs from the result cache.

>>> s = Session.create("plate.####.exr", path="shot.roto.json")        # doctest: +SKIP
>>> hero = s.add_object("hero")                                         # doctest: +SKIP
>>> s.add_point(hero.id, 1001, 640.0, 360.0)                             # doctest: +SKIP
>>> s.propagate()                                                       # doctest: +SKIP
>>> s.undo()                                                            # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.depth.store import SessionSeam as _DepthSeam
from engine.errors import BackendUnavailable, Cancelled, FrameOutOfRange, PromptError, RotoError, SessionError
from engine.session import project
from engine.session.history import History, Recorder, apply as apply_command
from engine.session.model import PALETTE, ClipRef, FrameResult, PromptRecord, RotoObject, SessionData
from engine.session.plate import absolute_plate_path, plate_candidates, plate_exists, plate_identity, resolve_plate
from engine.session.schedule import DirectionChoice, Run, affected_range, merge_masks, merge_weights, plan_runs
from engine.util.progress import CancelToken, Progress, ProgressCallback, check_cancel, report

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from engine.media.clip import Clip

AUTOSAVE_SECONDS = 10.0
PARTIAL_META = "runs_partial"


def _load_partial(doc: Any) -> dict[str, list]:
    """The unfinished runs stored in a project file (``meta["runs_partial"]``); damaged entries are dropped."""
    out: dict[str, list] = {}
    for key, items in (doc or {}).items() if isinstance(doc, dict) else ():
        try:
            out[str(key)] = [(int(f), {int(o): (dict(v[0]), float(v[1]), bool(v[2])) for o, v in objs.items()})
                             for f, objs in items]
        except (TypeError, ValueError, KeyError, IndexError, AttributeError):
            continue
    return out


@dataclass
class PropagationReport:
    """What a propagation did."""

    frames_written: int = 0
    runs: int = 0
    runs_from_cache: int = 0
    seconds: float = 0.0
    backend: str = ""
    backend_reason: str = ""
    cancelled: bool = False
    occluded: dict[int, list[int]] = field(default_factory=dict)  # object -> frames flagged occluded
    frames_resumed: int = 0  # frames an interrupted run had finished, served again instead of recomputed


class Session:
    """Open with :meth:`create` (new) or :meth:`open` (project file)."""

    def __init__(self, data: SessionData, *, path: str | Path | None = None, history: History | None = None,
                 clip: Clip | None = None, backend: Any = None, cache: Any = None, autosave: bool = True) -> None:
        self.data = data
        self.path = Path(path) if path is not None else None
        self.history = history if history is not None else History()
        self.autosave = autosave
        self._clip = clip
        self._backend = backend
        self._backend_name = getattr(getattr(backend, "info", None), "name", None)
        self._backend_reason = ""
        self._backend_state: Any = None
        self._cache = cache
        self._decoded: dict[tuple[int, int], Any] = {}
        self._last_save = 0.0
        # run cache key -> the outputs of a run not finished yet (live lists while it runs); saved in the
        # project file (meta "runs_partial") so a killed process resumes from them (see _run)
        self._partial: dict[str, list] = _load_partial(data.meta.get(PARTIAL_META))

    # --- construction ------------------------------------------------------------------

    @classmethod
    def create(cls, clip_path: str, *, path: str | Path | None = None, backend: Any = "auto",
               colourspace: str | None = None, missing: str = "error", in_point: int | None = None,
               out_point: int | None = None, fps: str | None = None, ocio_config: str | None = None,
               clip: Clip | None = None, **kwargs: Any) -> Session:
        """A new session on ``clip_path`` (the plate is opened now to validate it)."""
        from engine.export.naming import clip_padding
        from engine.media.clip import open_clip

        if clip is None:
            clip = open_clip(clip_path, colourspace=colourspace, missing=missing, in_point=in_point,  # type: ignore[arg-type]
                             out_point=out_point, fps=fps, ocio_config=ocio_config)
        info = clip.info
        ref = ClipRef(path=absolute_plate_path(clip_path), colourspace=colourspace, missing=missing,
                      in_point=info.frame_in, out_point=info.frame_out, fps=fps, ocio_config=ocio_config,
                      first=info.first, last=info.last, width=info.width, height=info.height, content_id=clip.content_id,
                      rate=f"{info.fps.numerator}/{info.fps.denominator}", timecode=info.timecode,
                      plate_colourspace=info.colourspace,
                      padding=clip_padding(info))
        if isinstance(backend, str):
            session = cls(SessionData(clip=ref, backend=backend), path=path, clip=clip, **kwargs)
        else:  # a backend instance (embedding applications, tests)
            session = cls(SessionData(clip=ref, backend=backend.info.name), path=path, clip=clip, backend=backend, **kwargs)
        session._save_if_needed(force=True)
        return session

    @classmethod
    def open(cls, path: str | Path, **kwargs: Any) -> Session:
        """Reopen a project file (with its undo history); the plate is opened on first use."""
        data, history = project.load(path)
        session = cls(data, path=path, history=history, **kwargs)
        session._relocate_plate()
        return session

    def _relocate_plate(self) -> None:
        """Found the plate elsewhere than its stored path (a moved project folder: beside the project
        file; an old project's path as typed)? Keep the absolute path found, so the next save
        records it (and the path relative to the project file) correctly."""
        c = self.data.clip
        where = self.plate_path
        if where != c.path and plate_exists(where):
            self.data.clip = dataclasses.replace(c, path=absolute_plate_path(where))

    # --- plate and backend -------------------------------------------------------------

    @property
    def clip(self) -> Clip:
        if self._clip is None:
            from engine.media.clip import open_clip

            c = self.data.clip
            where = self.plate_path
            self._clip = open_clip(where, colourspace=c.colourspace, missing=c.missing, in_point=c.in_point,  # type: ignore[arg-type]
                                   out_point=c.out_point, fps=c.fps, ocio_config=c.ocio_config)
            if (self._clip.info.width, self._clip.info.height) != (c.width, c.height):
                raise SessionError(
                    f"the plate is now {self._clip.info.width}x{self._clip.info.height}, the session was made on "
                    f"{c.width}x{c.height}", path=c.path, hint="Re-open the original plate or start a new session")
        return self._clip

    @property
    def plate_path(self) -> str:
        """Where the plate is now: the stored absolute path, else the one relative to the project
        file (a moved project folder); an old project's typed path beside the project file, then in
        the current folder (see :mod:`engine.session.plate`)."""
        c = self.data.clip
        return resolve_plate(c.path, c.relative_path, self.path)

    def same_plate(self, path: str) -> bool:
        """True when the INPUT ``path`` names this session's plate, in any of its forms (another
        frame of the sequence, its pattern, its folder, from any current folder)."""
        try:
            return plate_identity(self.plate_path) == plate_identity(path)
        except (RotoError, OSError):  # one of them is not there: only the same path is the same plate
            return absolute_plate_path(path) in plate_candidates(self.data.clip.path, self.data.clip.relative_path,
                                                                 self.path)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.data.clip.height, self.data.clip.width)

    @property
    def frame_range(self) -> tuple[int, int]:
        c = self.data.clip
        return (c.in_point if c.in_point is not None else c.first, c.out_point if c.out_point is not None else c.last)

    @property
    def frame_digits(self) -> int:
        """Digits of the frame numbers in output file names: the plate's padding (at least 4, enough for
        the last frame), so ``plate.########.exr`` gets ``matte.########.png``."""
        from engine.export.naming import clip_padding, frame_digits

        padding = self.data.clip.padding
        if padding is None:  # an older project: ask the plate, when it can be opened
            try:
                padding = clip_padding(self.clip.info)
            except RotoError:
                padding = 0
        return frame_digits(self.frame_range, padding)

    @property
    def backend(self) -> Any:
        if self._backend is None:
            from engine.backends.registry import get_segmenter

            self._backend, self._backend_reason = get_segmenter(self.data.backend)
            self._backend_name = self._backend.info.name
        return self._backend

    @property
    def backend_reason(self) -> str:
        _ = self.backend
        return self._backend_reason

    def _state(self) -> Any:
        if self._backend_state is None:
            self._backend_state = self.backend.init_state(self.clip)
        return self._backend_state

    @property
    def cache(self) -> Any:
        if self._cache is None:
            from engine.cache.store import default_cache

            self._cache = default_cache()
        return self._cache

    # --- validation ----------------------------------------------------------------------

    def check_frame(self, frame: int) -> int:
        """``frame`` as an int when it is inside the session's range, else :class:`FrameOutOfRange`."""
        lo, hi = self.frame_range
        f = int(frame)
        if not lo <= f <= hi:
            raise FrameOutOfRange(f"frame {f} is outside the session's range {lo}-{hi}", path=self.data.clip.path,
                                  hint="Frames are the plate's own numbers")
        return f

    def check_range(self, frames: Sequence[int] | None) -> tuple[int, int]:
        """``(first, last)`` of a ``(first, last)`` pair of plate frames, both checked and in order;
        the session's whole range for None."""
        if frames is None:
            return self.frame_range
        lo, hi = self.check_frame(frames[0]), self.check_frame(frames[1])
        if hi < lo:
            raise FrameOutOfRange(f"the frame range {lo}-{hi} runs backwards", path=self.data.clip.path,
                                  hint="Give the first frame first")
        return lo, hi

    def check_object(self, obj: int) -> RotoObject:
        """The object with id ``obj``, else :class:`PromptError` naming the known objects."""
        o = self.data.objects.get(int(obj))
        if o is None:
            known = ", ".join(f"{x.id} ({x.name})" for x in self.data.objects.values()) or "none yet"
            raise PromptError(f"there is no object with id {obj}", hint=f"Known objects: {known}")
        return o

    def _check_xy(self, x: float, y: float, what: str) -> None:
        h, w = self.shape
        if not (0 <= x < w and 0 <= y < h):
            raise PromptError(f"the {what} ({x:g}, {y:g}) is outside the {w}x{h} image",
                              hint="Coordinates are pixels from the top-left corner")

    def _check_mask(self, mask: Any) -> Any:
        import numpy as np

        m = np.asarray(mask)
        if m.ndim == 3 and m.shape[2] in (1, 3, 4):
            m = m[:, :, 0]
        if m.shape != self.shape:
            raise PromptError(f"the mask is {m.shape[1] if m.ndim > 1 else '?'}x{m.shape[0]}, the plate is "
                              f"{self.shape[1]}x{self.shape[0]}", hint="Give a mask of the plate's size")
        m = m > (127 if m.dtype == np.uint8 else 0.5) if m.dtype != bool else m
        if not m.any():
            raise PromptError("the mask is empty", hint="Paint the object, or use a point or box prompt")
        return m

    # --- objects -------------------------------------------------------------------------

    def add_object(self, name: str | None = None, colour: tuple[float, float, float] | None = None) -> RotoObject:
        oid = self.data.next_object_id
        name = (name or f"object{oid}").strip()
        if not name:
            raise PromptError("an object needs a name")
        if any(o.name == name for o in self.data.objects.values()):
            raise PromptError(f"an object named {name!r} exists already", hint="Choose another name")
        obj = RotoObject(oid, name, tuple(colour) if colour else PALETTE[(oid - 1) % len(PALETTE)])  # type: ignore[arg-type]
        rec = Recorder(self.data, f"add object {name}")
        rec.set("objects", oid, obj)
        rec.set("scalars", "next_object_id", oid + 1)
        self._commit(rec)
        return obj

    def object_by_name(self, name: str) -> RotoObject:
        for o in self.data.objects.values():
            if o.name == name:
                return o
        raise PromptError(f"there is no object named {name!r}")

    def rename_object(self, obj: int, name: str) -> None:
        o = self.check_object(obj)
        name = name.strip()
        if not name:
            raise PromptError("an object needs a name")
        if any(x.name == name and x.id != o.id for x in self.data.objects.values()):
            raise PromptError(f"an object named {name!r} exists already")
        rec = Recorder(self.data, f"rename {o.name} to {name}")
        rec.set("objects", o.id, RotoObject(o.id, name, o.colour))
        self._commit(rec)

    def delete_object(self, obj: int) -> None:
        o = self.check_object(obj)
        rec = Recorder(self.data, f"delete object {o.name}")
        for uid in [p.uid for p in self.data.prompts.values() if p.object_id == o.id]:
            rec.set("prompts", uid, None)
        for key in [k for k in self.data.keyframes if k[0] == o.id]:
            rec.set("keyframes", key, None)
        for key in [k for k in self.data.results if k[0] == o.id]:
            rec.set("results", key, None)
        rec.set("objects", o.id, None)
        self._commit(rec)
        if self._backend_state is not None:
            self.backend.remove_object(self._backend_state, o.id)

    # --- prompts -------------------------------------------------------------------------

    def add_point(self, obj: int, frame: int, x: float, y: float, label: int = 1, *, once: bool = False) -> Any:
        """Add a positive (1) or negative (0) click; returns the frame's new mask (bool HxW).

        ``once=True`` (for every ``add_*``): an identical prompt already on the object's frame is not
        added again (nothing changes, no undo step), so re-running a script is idempotent."""
        self._check_xy(x, y, "point")
        if label not in (0, 1):
            raise PromptError(f"a point label is 1 (positive) or 0 (negative), not {label}")
        return self._add_prompt(obj, frame, "point", {"x": float(x), "y": float(y), "label": int(label)}, once)

    def add_box(self, obj: int, frame: int, x0: float, y0: float, x1: float, y1: float, *, once: bool = False) -> Any:
        x0, x1 = sorted((float(x0), float(x1)))
        y0, y1 = sorted((float(y0), float(y1)))
        self._check_xy(x0, y0, "box corner")
        self._check_xy(min(x1, self.shape[1] - 0.01), min(y1, self.shape[0] - 0.01), "box corner")
        if x1 - x0 < 2 or y1 - y0 < 2:
            raise PromptError(f"the box {x0:g},{y0:g},{x1:g},{y1:g} is too small", hint="Draw a box around the object")
        return self._add_prompt(obj, frame, "box", {"x0": x0, "y0": y0, "x1": x1, "y1": y1}, once)

    def add_mask(self, obj: int, frame: int, mask: Any, *, once: bool = False) -> Any:
        """Use a painted/imported mask as the object's keyframe on ``frame``."""
        from engine.ops import rle

        m = self._check_mask(mask)
        return self._add_prompt(obj, frame, "mask", rle.encode(m), once)

    def add_text(self, obj: int, frame: int, text: str, *, once: bool = False) -> Any:
        if not text or not text.strip():
            raise PromptError("a text prompt needs some words, e.g. 'person wearing red jacket'")
        return self._add_prompt(obj, frame, "text", {"text": text.strip()}, once)

    def add_exemplar(self, obj: int, frame: int, source_frame: int, box: tuple[float, float, float, float]) -> Any:
        self.check_frame(source_frame)
        x0, y0, x1, y1 = box
        self._check_xy(x0, y0, "exemplar box corner")
        return self._add_prompt(obj, frame, "exemplar", {"frame": int(source_frame), "x0": x0, "y0": y0, "x1": x1, "y1": y1})

    def move_prompt(self, uid: str, x: float, y: float) -> Any:
        p = self._prompt(uid)
        if p.kind != "point":
            raise PromptError(f"only points can be moved; prompt {uid} is a {p.kind}")
        self._check_xy(x, y, "point")
        moved = PromptRecord(p.uid, p.object_id, p.frame, p.kind, {**p.data, "x": float(x), "y": float(y)})
        return self._replace_prompts(p.object_id, p.frame, {uid: moved}, f"move point on frame {p.frame}")

    def remove_prompt(self, uid: str) -> Any:
        p = self._prompt(uid)
        return self._replace_prompts(p.object_id, p.frame, {uid: None}, f"remove {p.kind} on frame {p.frame}")

    def _prompt(self, uid: str) -> PromptRecord:
        p = self.data.prompts.get(uid)
        if p is None:
            raise PromptError(f"there is no prompt {uid!r}")
        return p

    def _add_prompt(self, obj: int, frame: int, kind: str, data: dict[str, Any], once: bool = False) -> Any:
        o = self.check_object(obj)
        f = self.check_frame(frame)
        if once and any(p.kind == kind and p.data == data for p in self.data.prompts_on(o.id, f)):
            return self.mask(o.id, f)  # already there: nothing to add
        rec = PromptRecord(PromptRecord.new_uid(), o.id, f, kind, data)
        return self._replace_prompts(o.id, f, {rec.uid: rec}, f"add {kind} to {o.name} on frame {f}")

    def _replace_prompts(self, obj: int, frame: int, changes: dict[str, PromptRecord | None], label: str) -> Any:
        """Apply prompt changes on (obj, frame), recompute that frame's mask, make it a keyframe."""
        from engine.ops import rle

        prompts = {p.uid: p for p in self.data.prompts_on(obj, frame)}
        for uid, new in changes.items():
            if new is None:
                prompts.pop(uid, None)
            else:
                prompts[uid] = new
        out = self._segment_frame(obj, frame, list(prompts.values()))  # may raise: nothing changed yet
        rec = Recorder(self.data, label)
        for uid, new in changes.items():
            rec.set("prompts", uid, new)
        if out is None:
            if not any(p.kind in ("point", "box", "mask") for p in prompts.values()):
                rec.set("keyframes", (obj, frame), None)
                rec.set("results", (obj, frame), None)
            self._commit(rec)
            return None
        mask, confidence, estimate = out
        packed = rle.encode(mask)
        rec.set("keyframes", (obj, frame), packed)
        rec.set("results", (obj, frame), FrameResult(packed, self._backend_label(), "keyframe", None, confidence, False,
                                                     estimate))
        self._commit(rec)
        return mask

    def _segment_frame(self, obj: int, frame: int, prompts: list[PromptRecord]) -> tuple[Any, float, bool] | None:
        """Run the backend on one frame's prompts → ``(mask, confidence, estimate)``: ``estimate`` is False
        only for a painted mask taken as it is (alone, or with clicks that leave it unchanged). None when
        nothing there makes a mask."""
        import numpy as np

        from engine.backends.base import Prompt
        from engine.ops import rle

        pts = [p for p in prompts if p.kind == "point"]
        boxes = [p for p in prompts if p.kind == "box"]
        masks = [p for p in prompts if p.kind == "mask"]
        texts = [p for p in prompts if p.kind == "text"]
        exemplars = [p for p in prompts if p.kind == "exemplar"]
        if not (pts or boxes or masks or texts or exemplars):
            return None
        prompt = Prompt(
            points=np.array([[p.data["x"], p.data["y"]] for p in pts], np.float32) if pts else None,
            labels=np.array([p.data["label"] for p in pts], np.int32) if pts else None,
            box=np.array([boxes[-1].data[k] for k in ("x0", "y0", "x1", "y1")], np.float32) if boxes else None,
            mask=rle.decode(masks[-1].data) if masks else None,
            text=texts[-1].data["text"] if texts else None,
            exemplar=(exemplars[-1].data["frame"], tuple(exemplars[-1].data[k] for k in ("x0", "y0", "x1", "y1")))
            if exemplars else None,
        )
        supported = set(self.backend.info.prompt_kinds)
        wanted = set(prompt.kinds)
        if wanted and not wanted & supported:
            raise BackendUnavailable(
                f"the {self.backend.info.name} backend does not take {', '.join(sorted(wanted))} prompts",
                hint="Text and exemplar prompts need SAM 3: run `roto models fetch sam3` and choose --backend sam3")
        if masks and not (pts or boxes):
            return prompt.mask, 1.0, False  # a painted mask is taken as it is
        out = self.backend.add_prompt(self._state(), frame, obj, prompt)
        if out.mask is None or not np.asarray(out.mask).any():
            raise PromptError(f"the prompt on frame {frame} selects nothing",
                              hint="Click inside the object, or draw a box around it")
        seg = np.asarray(out.mask, bool)
        # clicks that agree with the painting leave it as it was: still the user's mask, scored as one
        estimate = not (masks and seg.shape == prompt.mask.shape and np.array_equal(seg, prompt.mask))
        return seg, float(out.confidence) if estimate else 1.0, estimate

    # --- keyframes and edits -------------------------------------------------------------

    def set_keyframe(self, obj: int, frame: int, mask: Any = None) -> None:
        """Lock ``frame`` for ``obj`` with ``mask`` (default: its current result)."""
        from engine.ops import rle

        o = self.check_object(obj)
        f = self.check_frame(frame)
        if mask is None:
            res = self.data.results.get((o.id, f))
            if res is None:
                raise PromptError(f"{o.name} has no mask on frame {f} to lock", hint="Prompt or propagate first")
            packed = res.mask
        else:
            packed = rle.encode(self._check_mask(mask))
        rec = Recorder(self.data, f"keyframe {o.name} on frame {f}")
        rec.set("keyframes", (o.id, f), packed)
        rec.set("results", (o.id, f), FrameResult(packed, self._backend_label(), "keyframe", None, 1.0, False))
        self._commit(rec)

    def clear_keyframe(self, obj: int, frame: int) -> None:
        """Unlock ``frame``: its mask stays as a result until the next propagation overwrites it."""
        o = self.check_object(obj)
        f = self.check_frame(frame)
        if (o.id, f) not in self.data.keyframes:
            raise PromptError(f"frame {f} is not a keyframe of {o.name}")
        rec = Recorder(self.data, f"clear keyframe {o.name} on frame {f}")
        rec.set("keyframes", (o.id, f), None)
        res = self.data.results.get((o.id, f))
        if res is not None:
            rec.set("results", (o.id, f), FrameResult(res.mask, res.backend, "edit", None, res.confidence, res.occluded))
        self._commit(rec)

    def edit_mask(self, obj: int, frame: int, op: Any, label: str = "edit mask") -> Any:
        """Apply ``op(mask bool HxW) -> mask`` to a frame's mask (paint, erode…); the frame becomes a keyframe."""
        import numpy as np

        from engine.ops import rle

        o = self.check_object(obj)
        f = self.check_frame(frame)
        current = self.mask(o.id, f)
        base = current if current is not None else np.zeros(self.shape, bool)
        new = self._check_mask(op(base.copy()))
        packed = rle.encode(new)
        rec = Recorder(self.data, f"{label} {o.name} frame {f}")
        rec.set("keyframes", (o.id, f), packed)
        rec.set("results", (o.id, f), FrameResult(packed, self._backend_label(), "edit", None, 1.0, False))
        self._commit(rec)
        return new

    # --- propagation ---------------------------------------------------------------------

    def propagate(self, objects: list[int] | None = None, direction: DirectionChoice = "both",
                  frames: tuple[int, int] | None = None, *, around: int | None = None,
                  progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
                  on_final: Any = None) -> PropagationReport:
        """Fill every frame of ``frames`` (default: the session range) from the keyframes.

        ``around=N`` re-propagates only what a change on frame N affects: the frames between
        N's neighbouring keyframes. Keyframes are never overwritten. A cancelled propagation
        keeps the frames finished so far (one undoable command) and raises :class:`Cancelled`.
        ``on_final(frame)`` is called once per frame of the range as soon as every propagated
        object's result on it is final (both passes merged), so later stages can stream behind
        the tracker; frames no run touches are reported first.
        """
        if direction not in ("forward", "backward", "both"):
            raise PromptError(f"direction must be forward, backward or both, not {direction!r}")
        lo, hi = self.check_range(frames)
        objs = [self.check_object(o).id for o in objects] if objects else sorted(self.data.objects)
        plans: dict[Run, list[int]] = defaultdict(list)
        coverage: dict[tuple[int, int], int] = defaultdict(int)
        for o in objs:
            keys = self.data.keyframes_of(o)
            within = affected_range(keys, around, lo, hi) if around is not None else None
            for run in plan_runs(keys, lo, hi, direction, within=within):
                plans[run].append(o)
                for f in run.frames:
                    if lo <= f <= hi:
                        coverage[(o, f)] += 1
        report_ = PropagationReport(backend=self._backend_label(), backend_reason=self.backend_reason)
        open_runs: dict[int, int] = defaultdict(int)  # frame -> (object, run) passes still to come
        for (_o, f), n in coverage.items():
            open_runs[f] += n
        if on_final is not None:
            for f in range(lo, hi + 1):
                if not open_runs.get(f):
                    on_final(f)
        if not plans:
            if not any(self.data.keyframes_of(o) for o in objs):
                raise PromptError("nothing to propagate: no object has a prompt or keyframe yet",
                                  hint="Add a point, box or mask prompt on a frame first")
            return report_
        live = {self.run_cache_key(run, run_objs) for run, run_objs in plans.items()}
        for k in [k for k in self._partial if k not in live]:
            del self._partial[k]  # keyframes or settings changed since: those frames are not reusable
        label = f"propagate {direction} {lo}-{hi}" + (f" around {around}" if around is not None else "")
        rec = Recorder(self.data, label)
        pending: dict[tuple[int, int], dict[str, tuple[dict, float, bool, int]]] = defaultdict(dict)
        total = sum(1 for r in plans for f in r.frames if lo <= f <= hi)
        done = 0
        started = time.monotonic()
        try:
            for run, run_objs in sorted(plans.items(), key=lambda kv: (kv[0].start, kv[0].direction)):
                report_.runs += 1
                from_cache: list[bool] = []
                resumed: list[int] = []
                for frame, per_obj in self._run(run, run_objs, lo, hi, cancel, from_cache, resumed):
                    if not lo <= frame <= hi:
                        continue
                    done += 1
                    for o, (packed, conf, occl) in per_obj.items():
                        if o in run_objs:
                            open_runs[frame] -= 1
                        if (o, frame) in self.data.keyframes:
                            continue  # locked
                        if coverage[(o, frame)] > 1:
                            pending[(o, frame)][run.direction] = (packed, conf, occl, run.start)
                            if len(pending[(o, frame)]) < 2:
                                continue
                            result = self._merge(pending.pop((o, frame)), frame)
                        else:
                            result = FrameResult(packed, self._backend_label(), run.direction, run.start, conf, occl)
                        rec.set("results", (o, frame), result)
                        report_.frames_written += 1
                        if result.occluded:
                            report_.occluded.setdefault(o, []).append(frame)
                    report(progress, Progress("propagate", done, total, frame=frame, started=started))
                    if on_final is not None and open_runs[frame] <= 0:
                        on_final(frame)
                    self._save_if_needed()
                report_.runs_from_cache += int(any(from_cache))
                report_.frames_resumed += len(resumed)
        except Cancelled:
            report_.cancelled = True
            raise
        finally:
            for (o, frame), sides in pending.items():  # one side finished: keep it, it is a valid result
                direction_, (packed, conf, occl, src) = next(iter(sides.items()))
                rec.set("results", (o, frame), FrameResult(packed, self._backend_label(), direction_, src, conf, occl))
                report_.frames_written += 1
            self._decoded.clear()
            self._commit(rec)
            report_.seconds = time.monotonic() - started
        return report_

    def update_from(self, frame: int, objects: list[int] | None = None, **kwargs: Any) -> PropagationReport:
        """Re-propagate what a correction on ``frame`` changed (up to the neighbouring keyframes)."""
        return self.propagate(objects, "both", around=self.check_frame(frame), **kwargs)

    def _run(self, run: Run, objs: list[int], lo: int, hi: int, cancel: CancelToken | None, from_cache: list[bool],
             resumed: list[int]):
        """Yield ``(frame, {obj: (rle, confidence, occluded)})`` for one backend run from keyframe
        ``run.start``. A complete run is cached; an unchanged run is served from the cache
        (``from_cache`` gets True). Cancellation is checked before every frame. The frames an
        interrupted run finished are cached too (``runs-partial``): the same run later serves them
        from the cache (``resumed`` gets those inside ``lo``-``hi``) and continues from the last one
        whose masks are all visible (its masks condition the rest), so a cancelled or server-stopped
        track resumes instead of starting over.
        """
        from engine.backends.base import Prompt
        from engine.ops import rle

        backend = self.backend
        key = self.run_cache_key(run, objs)
        cached = self.cache.get("runs", key)
        if cached is not None:
            from_cache.append(True)
            self._partial.pop(key, None)
            for item in cached:
                check_cancel(cancel)
                yield item
            return
        outputs: list[tuple[int, dict[int, tuple[dict, float, bool]]]] = []
        start, cond = run.start, {o: self.data.keyframes[(o, run.start)] for o in objs}
        # the frames an interrupted run finished: from the run cache (graceful stop) or from the project
        # file (saved every AUTOSAVE_SECONDS while the run goes on, so a kill -9 loses at most that)
        stored = [list(self.cache.get("runs-partial", key) or []), list(self._partial.get(key) or [])]
        partial = max(stored, key=len)
        while partial and not all(o in partial[-1][1] and not partial[-1][1][o][2] for o in objs):
            partial.pop()  # resume only from a frame where every object is visible
        self._partial[key] = outputs  # live: save() writes what is finished so far
        if partial:
            from_cache.append(True)
            for item in partial:
                check_cancel(cancel)
                outputs.append(item)
                if lo <= item[0] <= hi:
                    resumed.append(item[0])
                yield item
                if not lo <= item[0] <= hi:
                    self._partial.pop(key, None)
                    return
            start, cond = partial[-1][0], {o: partial[-1][1][o][0] for o in objs}
        state = self._state()
        for o in objs:
            # a resumed run starts from tracked masks: estimates too
            estimate = bool(partial) or self.keyframe_is_estimate(o, start)
            backend.add_prompt(state, start, o, Prompt(mask=rle.decode(cond[o]), estimate=estimate))
        gen = backend.propagate(state, start, run.end, run.direction, objs)
        complete = False
        try:
            for pf in gen:
                check_cancel(cancel)
                item = (pf.frame, {o: (rle.encode(m.mask), float(m.confidence), bool(m.occluded))
                                   for o, m in pf.objects.items()})
                outputs.append(item)
                yield item
                if not lo <= pf.frame <= hi:
                    break
            complete = True
        finally:
            close = getattr(gen, "close", None)
            if close:
                close()
            if not complete and outputs:
                self.cache.put("runs-partial", key, outputs, persist=True, replace=True)
        if complete:
            self._partial.pop(key, None)
            self.cache.put("runs", key, outputs, persist=True)

    def run_cache_key(self, run: Run, objs: list[int]) -> str:
        """The run cache key of one backend run (clip content, backend token, bounds, conditioning
        masks). A batch executor that computed the run elsewhere seeds the cache under this key."""
        from engine.cache.keys import make_key

        backend = self.backend
        token = getattr(backend, "cache_token", backend.info.name)
        # the estimate flag changes the run only for a backend that reads it
        flag = bool(getattr(backend, "uses_estimate", False))
        return make_key("run", self.data.clip.content_id, token, run.start, run.end, run.direction,
                        [(o, self.data.keyframes[(o, run.start)]["rle"], flag and self.keyframe_is_estimate(o, run.start))
                         for o in objs])

    def keyframe_is_estimate(self, obj: int, frame: int) -> bool:
        """Whether ``obj``'s keyframe on ``frame`` is the backend's segmentation of prompts (clicks, a box,
        text) rather than a mask painted, edited or approved by the user."""
        res = self.data.results.get((obj, frame))
        return res is not None and res.direction == "keyframe" and res.estimate

    def compute_run(self, run: Run, objs: list[int], cancel: CancelToken | None = None) -> tuple[str, list]:
        """One backend run as ``(cache key, [(frame, {obj: (rle, confidence, occluded)}), ...])``,
        served from the cache when unchanged; a batch worker runs it and the driver seeds its cache."""
        lo, hi = self.frame_range
        outputs = list(self._run(run, objs, min(lo, run.end), max(hi, run.end), cancel, [], []))
        return self.run_cache_key(run, objs), outputs

    def _merge(self, sides: dict[str, tuple[dict, float, bool, int]], frame: int) -> FrameResult:
        from engine.ops import rle

        fwd, bwd = sides["forward"], sides["backward"]
        wf, wb = merge_weights(frame, fwd[3], bwd[3], fwd[1], bwd[1])
        if fwd[2] and bwd[2]:
            return FrameResult(fwd[0], self._backend_label(), "merged", fwd[3], max(fwd[1], bwd[1]), True)
        merged = merge_masks(rle.decode(fwd[0]), rle.decode(bwd[0]), wf, wb)
        conf = (wf * fwd[1] + wb * bwd[1]) / max(1e-6, wf + wb)
        source = fwd[3] if wf >= wb else bwd[3]
        return FrameResult(rle.encode(merged), self._backend_label(), "merged", source, float(conf), not merged.any())

    # --- results -------------------------------------------------------------------------

    def result(self, obj: int, frame: int) -> FrameResult | None:
        return self.data.results.get((int(obj), int(frame)))

    def mask(self, obj: int, frame: int) -> np.ndarray | None:
        """The object's mask on ``frame`` (bool HxW, read-only), or None when there is none."""
        from engine.ops import rle

        key = (int(obj), int(frame))
        res = self.data.results.get(key)
        if res is None:
            return None
        hit = self._decoded.get(key)
        if hit is not None and hit[0] is res.mask:
            return hit[1]
        m = rle.decode(res.mask)
        m.flags.writeable = False
        if len(self._decoded) > 256:
            self._decoded.clear()
        self._decoded[key] = (res.mask, m)
        return m

    def alpha(self, obj: int, frame: int) -> np.ndarray | None:
        """The object's soft alpha on ``frame`` (float32 HxW in [0, 1]) from ``roto matte``, or None
        when none is stored for the frame's current mask (see :mod:`engine.session.alpha_store`)."""
        from engine.session.alpha_store import session_alpha

        return session_alpha(self, int(obj), int(frame))

    def alpha_signature(self, obj: int, frame: int) -> object:
        """What the object's coverage on ``frame`` depends on (the exporter's resume digest)."""
        from engine.session.alpha_store import session_alpha_signature

        return session_alpha_signature(self, int(obj), int(frame))

    #: ``depth(frame)`` → float32 HxW (camera distance by default) and ``normals(frame)`` → float32
    #: HxWx3 (camera space) once ``roto depth`` stored depth with the session; None before, so
    #: exports carry depth.Z and N.X/Y/Z only when there is depth (see engine.depth.store)
    depth = _DepthSeam("depth")
    normals = _DepthSeam("normals")

    def depth_signature(self, frame: int) -> object:
        from engine.depth.store import depth_signature

        return depth_signature(self, int(frame))

    def normals_signature(self, frame: int) -> object:
        from engine.depth.store import normals_signature

        return normals_signature(self, int(frame))

    def id_matte(self, frame: int) -> np.ndarray:
        """uint16 (H, W): the id of the object owning each pixel (0 = none); overlaps go to the
        object with the higher confidence, then to the pixel's deeper inside."""
        from engine.ops.idmatte import id_matte

        items = []
        for o in sorted(self.data.objects):
            m = self.mask(o, frame)
            res = self.result(o, frame)
            if m is not None and res is not None:
                items.append((o, m, res.confidence))
        return id_matte(items, self.shape)

    # --- history and saving --------------------------------------------------------------

    def undo(self) -> str | None:
        cmd = self.history.undo(self.data)
        self._decoded.clear()
        self._save_if_needed(force=True)
        return None if cmd is None else cmd.label

    def redo(self) -> str | None:
        cmd = self.history.redo(self.data)
        self._decoded.clear()
        self._save_if_needed(force=True)
        return None if cmd is None else cmd.label

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """Edits in the block are all or nothing: nothing is saved until the block succeeds (then
        once); when it raises, every command it recorded is undone and dropped from the history
        (the redo stack comes back too) and nothing is written, so a failed batch of prompts
        leaves no phantom object or prompt behind::

            with session.transaction():
                obj = session.add_object("hero")
                session.add_point(obj.id, 1001, 640, 360)   # raises: "hero" is gone again
        """
        undo, redo = list(self.history.undo_stack), list(self.history.redo_stack)
        autosave, self.autosave = self.autosave, False
        try:
            yield self
        except BaseException:
            kept = {id(c) for c in undo}
            for cmd in reversed([c for c in self.history.undo_stack if id(c) not in kept]):
                apply_command(self.data, cmd, undo=True)
            self.history.undo_stack, self.history.redo_stack = undo, redo
            self._decoded.clear()
            raise
        finally:
            self.autosave = autosave
        changed = len(self.history.undo_stack) != len(undo) or any(
            a is not b for a, b in zip(self.history.undo_stack, undo))
        if changed or (self.path is not None and not self.path.exists()):
            self._save_if_needed(force=True)

    def save(self, path: str | Path | None = None) -> Path:
        if path is not None:
            self.path = Path(path)
        if self.path is None:
            raise SessionError("the session has no project file yet", hint="Pass --session FILE or save(path)")
        self._stash_partial()
        project.save(self.path, self.data, self.history)
        self._last_save = time.monotonic()
        return self.path

    def _stash_partial(self) -> None:
        """Put the unfinished runs' outputs into the project data (``meta["runs_partial"]``)."""
        runs = {k: [[f, {str(o): [v[0], v[1], v[2]] for o, v in objs.items()}] for f, objs in list(items)]
                for k, items in self._partial.items() if items}
        if runs:
            self.data.meta[PARTIAL_META] = runs
        else:
            self.data.meta.pop(PARTIAL_META, None)

    def _commit(self, rec: Recorder) -> None:
        self.history.push(rec.finish())
        self._save_if_needed(force=True)

    def save_due(self) -> bool:
        """True when the last save is more than AUTOSAVE_SECONDS ago (what autosave waits for)."""
        return time.monotonic() - self._last_save > AUTOSAVE_SECONDS

    def _save_if_needed(self, force: bool = False) -> None:
        if self.autosave and self.path is not None and (force or self.save_due()):
            self.save()

    def _backend_label(self) -> str:
        if self._backend_name:
            return self._backend_name
        return self.data.backend

    def summary(self) -> dict[str, Any]:
        """A compact description for ``roto session show``."""
        lo, hi = self.frame_range
        objs = []
        for o in sorted(self.data.objects.values(), key=lambda x: x.id):
            frames = self.data.result_frames(o.id)
            occluded = [f for f in frames if self.data.results[(o.id, f)].occluded]
            confs = [self.data.results[(o.id, f)].confidence for f in frames]
            objs.append({
                "id": o.id, "name": o.name, "keyframes": self.data.keyframes_of(o.id),
                "prompts": len([p for p in self.data.prompts.values() if p.object_id == o.id]),
                "frames_with_masks": len(frames), "occluded_frames": occluded,
                "min_confidence": round(min(confs), 3) if confs else None,
            })
        return {"id": self.data.id, "clip": self.data.clip.path, "range": [lo, hi], "backend": self.data.backend,
                "objects": objs, "undo": [c.label for c in self.history.undo_stack[-10:]],
                "redo": [c.label for c in self.history.redo_stack[-10:]]}
