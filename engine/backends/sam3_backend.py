"""The ``sam3`` backend (optional extra): text and exemplar prompts through Meta's SAM 3.

SAM 3 finds *every* instance of a concept on a frame: a noun phrase (``"person wearing red
jacket"``) or a visual exemplar (a box around one example). This backend drives the ``sam3``
package's image model and its ``Sam3Processor`` (``set_image`` → ``set_text_prompt`` /
``add_geometric_prompt`` → ``masks``, ``boxes``, ``scores``) and turns the answer into objects:

* :meth:`Sam3Segmenter.detect` returns one :class:`Detection` per instance, with an instance id
  that stays the same when the same instance is found again on that frame (mask IoU ≥ 0.5), and
  :func:`add_text_objects` makes one session object per instance (stable session ids; an instance
  that overlaps an existing object's mask updates that object instead of duplicating it);
* ``add_prompt`` with ``Prompt(text=...)`` answers the instance bound to that object (the best
  unbound one the first time);
* an **exemplar on another frame** (``Prompt(exemplar=(frame, box))``) is segmented there, followed
  to the target frame by the tracker, and its box on the target frame is the visual exemplar —
  the way SAM 3's own video model carries a visual prompt across frames.

Points, boxes, masks and propagation go to a **tracker** backend: SAM 2 when its weights are here,
else the weight-free tracker (``tracker=`` picks one). SAM 3's own video tracker is not wired in:
its code path is CUDA-only in places and its 848M parameters run at ~40 s/frame on a CPU.

**CPU**: the package hard-codes ``cuda`` in a few constructors and calls (``device="cuda"``
position-encoding caches, ``.cuda()``, ``pin_memory()``); when the chosen device is the CPU every
call into the package runs under :func:`cpu_redirect`, a torch function mode that maps those to
the CPU. **Weights**: ``roto models fetch sam3`` (gated on Hugging Face: accept the licence, set
``HF_TOKEN``). **Tokenizer**: ``bpe_simple_vocab_16e6.txt.gz`` from the package, else the
``open_clip_torch`` wheel, else ``$ROTO_SAM3_BPE``.

Install it in its own environment: ``sam3==0.1.4`` pins ``numpy<2.4`` and other shared packages
below the base install's versions (see docs/decisions/DR007-models-and-weights.md).

Standard library only at import time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.backends.base import BackendInfo, Direction, FrameSource, MaskOut, Prompt, PropagatedFrame
from engine.backends.registry import register_segmenter
from engine.errors import BackendUnavailable, DependencyMissing, PromptError

BPE_NAME = "bpe_simple_vocab_16e6.txt.gz"
SAM3_RESOLUTION = 1008
MATCH_IOU = 0.5


def installed() -> bool:
    return importlib.util.find_spec("sam3") is not None and importlib.util.find_spec("torch") is not None


def _unavailable() -> str | None:
    if not installed():
        return ("SAM 3 is not installed (optional: pip install 'ultimate-rotoscopy[sam3]' in a separate "
                "environment, see docs/decisions/DR007-models-and-weights.md)")
    from engine.models.manager import find_weights

    if find_weights("sam3") is None:
        return "no SAM 3 weights found; run `roto models fetch sam3` (gated: accept the licence, set HF_TOKEN)"
    return None


def find_bpe(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The BPE vocabulary SAM 3's text encoder needs (without importing anything)."""
    cands: list[Path] = []
    if explicit:
        cands.append(Path(explicit))
    if os.environ.get("ROTO_SAM3_BPE"):
        cands.append(Path(os.environ["ROTO_SAM3_BPE"]))
    for pkg, rel in (("sam3", ("..", "assets", BPE_NAME)), ("sam3", ("assets", BPE_NAME)), ("open_clip", (BPE_NAME,))):
        spec = importlib.util.find_spec(pkg)
        if spec is not None and spec.submodule_search_locations:
            base = Path(list(spec.submodule_search_locations)[0])
            cands.append(base.joinpath(*rel).resolve())
    for c in cands:
        if c.is_file():
            return c
    raise DependencyMissing(f"SAM 3 text prompts need the tokenizer vocabulary {BPE_NAME}, which was not found",
                            hint="pip install open_clip_torch (it ships the file), or set ROTO_SAM3_BPE to its path")


@contextlib.contextmanager
def cpu_redirect() -> Iterator[None]:
    """Run code written for CUDA on the CPU: ``device="cuda"`` → cpu, ``.cuda()``/``pin_memory()`` → no-op."""
    import torch
    from torch.overrides import TorchFunctionMode

    def fix(v: Any) -> Any:
        if isinstance(v, torch.device) and v.type == "cuda":
            return torch.device("cpu")
        if isinstance(v, str) and v.startswith("cuda"):
            return "cpu"
        return v

    identity = {torch.Tensor.cuda, torch.Tensor.pin_memory}
    moves = {torch.Tensor.to}

    class _CpuMode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = dict(kwargs or {})
            if func in identity:
                return args[0]
            if "device" in kwargs:
                kwargs["device"] = fix(kwargs["device"])
            if func in moves:
                args = tuple(fix(a) for a in args)
            return func(*args, **kwargs)

    with _CpuMode():
        yield


@dataclass(frozen=True)
class Detection:
    """One instance SAM 3 found: ``mask`` bool (H, W), ``box`` x0, y0, x1, y1 pixels, ``score`` in [0, 1]."""

    instance_id: int
    mask: Any
    box: tuple[float, float, float, float]
    score: float


@dataclass
class Sam3State:
    source: FrameSource
    tracker_state: Any
    known: dict[int, dict[int, Any]] = field(default_factory=dict)  # frame -> {instance id: mask}
    bound: dict[int, int] = field(default_factory=dict)  # object id -> instance id
    next_instance: int = 1
    image_states: dict[int, dict] = field(default_factory=dict)  # frame -> processor state (1 kept)


def _iou(a: Any, b: Any) -> float:
    import numpy as np

    inter = np.logical_and(a, b).sum()
    union = np.logical_or(a, b).sum()
    return float(inter / union) if union else 0.0


class Sam3Segmenter:
    """SAM 3 detections + a tracker backend. See the module docstring.

    Parameters: ``checkpoint`` (default: the model store's ``sam3``); ``device``/``precision``;
    ``confidence`` detection threshold (SAM 3's default 0.5); ``tracker`` a backend name or
    instance for clicks and propagation (default: ``auto`` = SAM 2 with weights, else classical);
    ``model`` an already built SAM 3 image model (tests); ``bpe_path``.
    """

    info = BackendInfo(
        name="sam3",
        title="SAM 3",
        prompt_kinds=("text", "exemplar", "points", "box", "mask"),
        needs_weights=True,
        licence="SAM License (Meta)",
        notes="Text and exemplar prompts create one object per instance; tracking by SAM 2 or the classical tracker.",
    )

    def __init__(self, *, checkpoint: str | os.PathLike[str] | None = None, device: str | None = None,
                 precision: str | None = None, confidence: float = 0.5, tracker: Any = "auto", model: Any = None,
                 bpe_path: str | os.PathLike[str] | None = None) -> None:
        if not installed():
            raise BackendUnavailable("SAM 3 is not installed", hint=_unavailable())
        from engine.backends.torch_util import choose_device, declare_torchvision_ops
        from engine.cache.keys import make_key

        self.choice = choose_device(device, precision)
        self.confidence = float(confidence)
        declare_torchvision_ops()  # sam3's processor imports torchvision.transforms.v2
        with self._on_device():
            from sam3.model.sam3_image_processor import Sam3Processor

            if model is None:
                from sam3.model_builder import build_sam3_image_model

                if checkpoint is None:
                    from engine.models.manager import require

                    checkpoint = require("sam3", "The sam3 backend")
                self.checkpoint: Path | None = Path(checkpoint)
                model = build_sam3_image_model(bpe_path=str(find_bpe(bpe_path)), device=self._dev_str,
                                               eval_mode=True, checkpoint_path=str(self.checkpoint),
                                               load_from_HF=False)
                weights_id = f"{self.checkpoint.name}-{self.checkpoint.stat().st_size}"
            else:
                self.checkpoint = None
                weights_id = f"mem-{id(model)}"
            self.model = model
            self.processor = Sam3Processor(model, resolution=SAM3_RESOLUTION, device=self._dev_str,
                                           confidence_threshold=self.confidence)
        self._tracker_spec = tracker
        self._tracker: Any = None
        self.cache_token_base = make_key("sam3", weights_id, self.confidence, self.choice.token)[:12]
        self.stats = {"images": 0, "text": 0, "exemplar": 0}

    # --- helpers -------------------------------------------------------------------------------

    @property
    def _dev_str(self) -> str:
        return str(self.choice.device)

    @contextlib.contextmanager
    def _on_device(self) -> Iterator[None]:
        import torch

        from engine.backends.torch_util import autocast

        ctx = cpu_redirect() if self.choice.device.type == "cpu" else contextlib.nullcontext()
        with ctx, torch.inference_mode(), autocast(self.choice):
            yield

    @property
    def tracker(self) -> Any:
        if self._tracker is None:
            spec = self._tracker_spec
            if isinstance(spec, str):
                from engine.backends.registry import get_segmenter

                if spec == "sam3":
                    raise PromptError("the sam3 backend cannot be its own tracker")
                self._tracker, self.tracker_reason = get_segmenter(spec)
            else:
                self._tracker, self.tracker_reason = spec, "tracker given"
        return self._tracker

    @property
    def cache_token(self) -> str:
        """Propagation is the tracker's: its token, marked as run under SAM 3."""
        t = self.tracker
        return f"sam3-{self.cache_token_base}-" + str(getattr(t, "cache_token", t.info.name))

    @property
    def uses_estimate(self) -> bool:
        """Propagation is the tracker's: whether an estimated keyframe changes it is the tracker's too."""
        return bool(getattr(self.tracker, "uses_estimate", False))

    # --- contract --------------------------------------------------------------------------------

    def init_state(self, source: FrameSource) -> Sam3State:
        return Sam3State(source, self.tracker.init_state(source))

    def add_prompt(self, state: Sam3State, frame: int, obj_id: int, prompt: Prompt) -> MaskOut:
        import numpy as np

        if prompt.text is None and prompt.exemplar is None:
            out = self.tracker.add_prompt(state.tracker_state, frame, obj_id, prompt)
            return out
        dets = self.detect(state, frame, text=prompt.text, exemplar=prompt.exemplar)
        chosen = None
        want = state.bound.get(obj_id)
        if want is not None:
            chosen = next((d for d in dets if d.instance_id == want), None)
        if chosen is None:
            taken = {i for o, i in state.bound.items() if o != obj_id}
            chosen = next((d for d in dets if d.instance_id not in taken), None)
        h, w = tuple(state.source.shape)
        if chosen is None:
            return MaskOut(np.zeros((h, w), bool), 0.0, False)
        state.bound[obj_id] = chosen.instance_id
        self.tracker.add_prompt(state.tracker_state, frame, obj_id, Prompt(mask=chosen.mask, estimate=True))
        return MaskOut(chosen.mask, chosen.score, False)

    def propagate(self, state: Sam3State, start: int, end: int, direction: Direction,
                  obj_ids: list[int] | None = None) -> Iterator[PropagatedFrame]:
        return self.tracker.propagate(state.tracker_state, start, end, direction, obj_ids)

    def remove_object(self, state: Sam3State, obj_id: int) -> None:
        state.bound.pop(obj_id, None)
        self.tracker.remove_object(state.tracker_state, obj_id)

    def reset(self, state: Sam3State) -> None:
        state.bound.clear()
        state.known.clear()
        self.tracker.reset(state.tracker_state)

    # --- detection ---------------------------------------------------------------------------------

    def detect(self, state: Sam3State, frame: int, *, text: str | None = None, exemplar: Any = None,
               confidence: float | None = None) -> list[Detection]:
        """Every instance of ``text`` and/or ``exemplar`` (``(frame, (x0, y0, x1, y1))``) on ``frame``,
        best first, with stable instance ids."""
        import numpy as np

        if text is not None:
            text = " ".join(str(text).split())
            if not text:
                raise PromptError("the text prompt is empty", hint="Describe the object, e.g. 'person in red jacket'")
        if text is None and exemplar is None:
            raise PromptError("detect needs a text prompt or an exemplar box")
        box_here = None
        if exemplar is not None:
            ex_frame, ex_box = exemplar
            ex_box = tuple(float(v) for v in ex_box)
            box_here = ex_box if int(ex_frame) == int(frame) else self._carry_exemplar(state, int(ex_frame), ex_box,
                                                                                     int(frame))
        h, w = tuple(state.source.shape)
        proc = self.processor
        with self._on_device():
            st = self._image_state(state, frame)
            proc.reset_all_prompts(st)
            if confidence is not None and confidence != proc.confidence_threshold:
                proc.set_confidence_threshold(float(confidence))
            if text is not None:
                st = proc.set_text_prompt(prompt=text, state=st)
                self.stats["text"] += 1
            if box_here is not None:
                x0, y0, x1, y1 = box_here
                cx, cy, bw, bh = (x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h
                st = proc.add_geometric_prompt(box=[cx, cy, bw, bh], label=True, state=st)
                self.stats["exemplar"] += 1
            masks = st["masks"].reshape(-1, h, w).to("cpu").numpy().astype(bool)
            boxes = st["boxes"].reshape(-1, 4).float().to("cpu").numpy()
            scores = st["scores"].reshape(-1).float().to("cpu").numpy()
            if confidence is not None:
                proc.set_confidence_threshold(self.confidence)
        order = np.argsort(-scores, kind="stable")
        known = state.known.setdefault(frame, {})
        bound_masks = self._bound_masks(state, frame)
        out: list[Detection] = []
        used: set[int] = set()
        for i in order:
            m = masks[i]
            if not m.any():
                continue
            iid = None
            best = MATCH_IOU
            for cand_id, cand in list(known.items()) + list(bound_masks.items()):
                if cand_id in used:
                    continue
                iou = _iou(m, cand)
                if iou >= best:
                    iid, best = cand_id, iou
            if iid is None:
                iid = state.next_instance
                state.next_instance += 1
            used.add(iid)
            known[iid] = m
            x0, y0, x1, y1 = (float(v) for v in boxes[i])
            out.append(Detection(iid, m, (x0, y0, x1, y1), float(np.clip(scores[i], 0.0, 1.0))))
        return out

    def _bound_masks(self, state: Sam3State, frame: int) -> dict[int, Any]:
        """Instance id -> the bound object's conditioning mask on ``frame`` (from the tracker state)."""
        cond = getattr(state.tracker_state, "cond", {})
        return {iid: cond[(o, frame)] for o, iid in state.bound.items() if (o, frame) in cond}

    def _image_state(self, state: Sam3State, frame: int) -> dict:
        st = state.image_states.get(frame)
        if st is None:
            from PIL import Image

            rgb = state.source.read_uint8(frame)
            st = self.processor.set_image(Image.fromarray(rgb))
            self.stats["images"] += 1
            state.image_states = {frame: st}  # the backbone output is large: keep the last frame only
        return st

    def _carry_exemplar(self, state: Sam3State, ex_frame: int, box: tuple[float, ...], frame: int) -> tuple[float, ...]:
        """The exemplar's box on ``frame``: segment it on its own frame, track it, take the bounding box."""
        import numpy as np

        tr = self.tracker
        ts = tr.init_state(state.source)
        first = tr.add_prompt(ts, ex_frame, 1, Prompt(box=np.asarray(box, np.float32)))
        if not np.asarray(first.mask).any():
            raise PromptError(f"the exemplar box on frame {ex_frame} selects nothing",
                              hint="Draw the box tightly around one example")
        mask = np.asarray(first.mask, bool)
        tr.add_prompt(ts, ex_frame, 1, Prompt(mask=mask, estimate=True))
        for pf in tr.propagate(ts, ex_frame, frame, "forward" if frame > ex_frame else "backward", [1]):
            mask = np.asarray(pf.objects[1].mask, bool)
        if not mask.any():
            raise PromptError(f"the exemplar from frame {ex_frame} could not be followed to frame {frame}",
                              hint=f"Draw the exemplar box on frame {frame} itself")
        ys, xs = np.nonzero(mask)
        return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return (s[:32] or "object").rstrip("_")


def add_text_objects(session: Any, frame: int, text: str | None = None, exemplar: Any = None, *,
                     name: str | None = None, confidence: float | None = None) -> list[tuple[Any, Detection, bool]]:
    """One session object per instance SAM 3 finds on ``frame``, each locked with its mask.

    An instance overlapping an existing object's mask on that frame (IoU ≥ 0.5) updates that
    object (same id) instead of adding a new one. Returns ``(object, detection, created)``.
    """
    backend = session.backend
    if not hasattr(backend, "detect"):
        raise BackendUnavailable(f"the {backend.info.name} backend does not take text or exemplar prompts",
                                 hint="Open the session with --backend sam3 (run `roto models fetch sam3` first)")
    frame = session.check_frame(frame)
    state = backend.init_state(session.clip)
    dets = backend.detect(state, frame, text=text, exemplar=exemplar, confidence=confidence)
    base = name or _slug(text or "exemplar")
    out = []
    claimed: set[int] = set()
    for d in dets:
        target = None
        for o in sorted(session.data.objects):
            if o in claimed:
                continue
            m = session.mask(o, frame)
            if m is not None and _iou(m, d.mask) >= MATCH_IOU:
                target = session.data.objects[o]
                break
        created = target is None
        if created:
            n = 1
            while any(x.name == f"{base}{n}" for x in session.data.objects.values()):
                n += 1
            target = session.add_object(f"{base}{n}")
        claimed.add(target.id)
        session.set_keyframe(target.id, frame, d.mask)
        out.append((target, d, created))
    return out


def _factory(**options: Any) -> Sam3Segmenter:
    return Sam3Segmenter(**options)


register_segmenter("sam3", _factory, unavailable=_unavailable, priority=-1, title="SAM 3")
