"""The ``sam2`` backend: Meta's SAM 2.1 behind the segmenter contract (the default with weights).

**Frames** come from the session's frame source (any plate the media layer reads: EXR, DPX,
movies…, converted to the working space) through :class:`~engine.backends.sam2_model.LazyFrames`,
never from a JPEG folder: a frame is read and resized when the model needs it.

**Clicks** (points ±, box, optionally with a painted mask as prior) take SAM 2's image-predictor
path on the model's own weights: the frame's image embedding is computed once and kept in the
engine cache (memory LRU + disk spill, namespace ``sam2-features``, keyed by the weights, the
input size and the frame's content), so a second click on the same frame only runs the prompt
encoder and mask decoder. Successive clicks on one object refine the previous mask (its low-res
logits are fed back, as in SAM's interactive mode). Confidence = the model's predicted IoU.

**Propagation** runs SAM 2's video predictor from the run's conditioning masks only (the state is
reset per run, so a run's output depends on its own keyframe masks, which the session's run
cache keys on), forward or backward, all objects of the run together. Per frame, confidence =
the object-presence probability x the mask's stability score; an object the model reports
absent is ``occluded`` with an empty mask. Memory stays bounded on long shots: frames are
streamed, and per-object outputs older than the model's memory window (``num_maskmem`` frames
and ``max_obj_ptrs_in_encoder`` object pointers) are released as tracking advances; only the
conditioning frame is kept. Embeddings of clicked frames are reused during propagation.

**Device and precision** come from :func:`engine.backends.torch_util.choose_device` (CUDA bf16
→ MPS → CPU float32; ``device=``/``precision=`` or ``ROTO_DEVICE``/``ROTO_PRECISION`` override).

**Weights**: ``model=`` names a catalogue entry (``sam2.1-tiny`` … ``sam2.1-large``; default:
``$ROTO_SAM2_MODEL``, else the largest one present in the model store) loaded through
:func:`engine.models.manager.require` (an error naming ``roto models fetch`` when missing);
``checkpoint=`` loads a file directly. ``image_size=`` (or ``$ROTO_SAM2_IMAGE_SIZE``) trades
quality for speed on slow machines (SAM 2 is trained at 1024). This module imports only the
standard library until a backend is built, so the registry's availability check stays cheap.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.backends.base import BackendInfo, Direction, FrameSource, MaskOut, Prompt, PropagatedFrame
from engine.backends.registry import register_segmenter
from engine.errors import BackendUnavailable, InputError, ModelError, PromptError

ALGORITHM_VERSION = "1"
#: preference order of `auto` when several sizes are present (best quality first)
PREFERENCE = ("sam2.1-large", "sam2.1-base_plus", "sam2.1-small", "sam2.1-tiny")
DEFAULT_FETCH = "sam2.1-tiny"
FEATURES_NS = "sam2-features"


def installed() -> bool:
    """The sam2 and torch packages can be imported (checked without importing them)."""
    return importlib.util.find_spec("sam2") is not None and importlib.util.find_spec("torch") is not None


def default_model() -> str | None:
    """``$ROTO_SAM2_MODEL``, else the best SAM 2.1 size whose weights are present, else None."""
    from engine.models.catalogue import get
    from engine.models.manager import find_weights

    env = os.environ.get("ROTO_SAM2_MODEL")
    if env:
        return get(env).name
    for name in PREFERENCE:
        if find_weights(name) is not None:
            return name
    return None


def _unavailable() -> str | None:
    if not installed():
        return ("SAM 2 is not installed (`make setup` installs it; by hand: "
                "SAM2_BUILD_CUDA=0 pip install --no-build-isolation sam2==1.1.0)")
    try:
        name = default_model()
    except ModelError as exc:  # ROTO_SAM2_MODEL names nothing we know
        return exc.sentence()
    if name is None:
        return f"no SAM 2 weights found; run `roto models fetch {DEFAULT_FETCH}`"
    from engine.models.manager import find_weights

    if find_weights(name) is None:
        return f"the {name} weights are not downloaded; run `roto models fetch {name}`"
    return None


@dataclass
class Sam2State:
    """Per-clip state: the source, conditioning masks, click history and the predictor's state."""

    source: FrameSource
    frames: list[int]
    cond: dict[tuple[int, int], Any] = field(default_factory=dict)  # (obj, frame) -> bool mask
    clicks: dict[tuple[int, int], tuple] = field(default_factory=dict)  # (obj, frame) -> (pts, labels, box, logits)
    video: dict | None = None  # the predictor's inference state, made at the first propagation
    frame_keys: dict[int, str] = field(default_factory=dict)
    device_features: tuple[int, Any] | None = None  # (frame, features on the device) of the last click

    def index(self, frame: int) -> int:
        i = frame - self.frames[0]
        if not 0 <= i < len(self.frames) or self.frames[i] != frame:
            from engine.errors import FrameOutOfRange

            raise FrameOutOfRange(f"frame {frame} is not in the clip ({self.frames[0]}-{self.frames[-1]})")
        return i


class Sam2Segmenter:
    """SAM 2.1 video segmenter. See the module docstring.

    Parameters: ``model`` catalogue name; ``checkpoint`` a weights file (overrides the store);
    ``device``/``precision`` (see :mod:`engine.backends.torch_util`); ``image_size`` the model's
    square input (default: the config's 1024; smaller is faster and coarser); ``keep_frames`` how
    many tracked frames of memory to keep per object (default: what the model reads; 0 = keep all);
    ``offload_state`` keep tracking memory in CPU RAM on a GPU; ``cache`` the embedding cache
    (default: the engine's); ``predictor`` an already built ``SAM2VideoPredictor`` (tests).
    """

    info = BackendInfo(
        name="sam2",
        title="SAM 2",
        prompt_kinds=("points", "box", "mask"),
        needs_weights=True,
        licence="Apache-2.0 (code and SAM 2.1 weights)",
        notes="Meta SAM 2.1 video predictor; image embeddings cached per frame.",
    )

    def __init__(self, model: str | None = None, *, checkpoint: str | os.PathLike[str] | None = None,
                 device: str | None = None, precision: str | None = None, image_size: int | None = None,
                 keep_frames: int | None = None, offload_state: bool = False, cache: Any = None,
                 predictor: Any = None, config: str | None = None) -> None:
        if not installed():
            raise BackendUnavailable("SAM 2 is not installed", hint=_unavailable())
        from engine.backends import sam2_model
        from engine.backends.torch_util import choose_device
        from engine.cache.keys import make_key
        from engine.models.catalogue import get

        self.choice = choose_device(device, precision)
        if predictor is None and checkpoint is None:
            model = model or default_model()
            if model is None:
                raise ModelError("the sam2 backend needs SAM 2.1 weights, and none are in the model store",
                                 hint=f"Run `roto models fetch {DEFAULT_FETCH}` (or another size; see `roto models list`)")
        self.model_name = get(model).name if model else (DEFAULT_FETCH if predictor is None else "custom")
        entry = get(self.model_name) if self.model_name != "custom" else None
        self.config = config or (entry.extra["config"] if entry else None)
        if predictor is not None:
            self.predictor = predictor.to(self.choice.device).eval()
            self.weights_id = "mem-" + sam2_model.weights_digest(self.predictor)
            self.checkpoint = None
        else:
            if checkpoint is None:
                from engine.models.manager import require

                checkpoint = require(self.model_name, "The sam2 backend")
            self.checkpoint = Path(checkpoint)
            if image_size is None and os.environ.get("ROTO_SAM2_IMAGE_SIZE"):
                try:
                    image_size = int(os.environ["ROTO_SAM2_IMAGE_SIZE"])
                except ValueError:
                    raise InputError(f"ROTO_SAM2_IMAGE_SIZE={os.environ['ROTO_SAM2_IMAGE_SIZE']!r} is not a number",
                                      hint="Use a multiple of 32, e.g. 512 (SAM 2 is trained at 1024)") from None
            st = self.checkpoint.stat()
            self.weights_id = f"{self.checkpoint.name}-{st.st_size}-{st.st_mtime_ns}"
            self.predictor = sam2_model.build_predictor(self.config, self.checkpoint, self.choice.device,
                                                        image_size=image_size, model_name=entry.title if entry else "SAM 2")
        self.image_size = int(self.predictor.image_size)
        derived = max((self.predictor.num_maskmem + 1) * self.predictor.memory_temporal_stride_for_eval,
                      self.predictor.max_obj_ptrs_in_encoder) + 1
        self.keep_frames = derived if keep_frames is None else int(keep_frames)
        self.offload_state = bool(offload_state)
        self._cache = cache
        self._image_predictor = None
        self._pos: dict[tuple, list] = {}
        self.stats = {"encoded": 0, "feature_hits": 0, "decoded": 0, "propagated": 0}
        self.features_token = make_key("sam2-features", ALGORITHM_VERSION, self.weights_id, self.image_size,
                                       self.choice.token)[:24]
        self.cache_token = "sam2-" + make_key(ALGORITHM_VERSION, self.weights_id, self.image_size,
                                              self.choice.token)[:16]

    # --- description -------------------------------------------------------------------------

    @property
    def description(self) -> str:
        return f"SAM 2.1 {self.model_name.split('-', 1)[-1]} at {self.image_size}px on {self.choice.label}"

    @property
    def cache(self) -> Any:
        if self._cache is None:
            from engine.cache.store import default_cache

            self._cache = default_cache()
        return self._cache

    # --- contract ----------------------------------------------------------------------------

    def init_state(self, source: FrameSource) -> Sam2State:
        frames = list(source.frames)
        if not frames:
            raise PromptError("the clip has no frames")
        return Sam2State(source, frames)

    def add_prompt(self, state: Sam2State, frame: int, obj_id: int, prompt: Prompt) -> MaskOut:
        import numpy as np

        if prompt.text is not None or prompt.exemplar is not None:
            raise BackendUnavailable("the sam2 backend does not understand text or exemplar prompts",
                                     hint="Use points, a box or a mask, or the sam3 backend")
        state.index(frame)
        h, w = tuple(state.source.shape)
        prior = None
        if prompt.mask is not None:
            prior = np.asarray(prompt.mask, bool)
            if prior.shape != (h, w):
                raise PromptError(f"the mask is {prior.shape[1]}x{prior.shape[0]}, the plate is {w}x{h}")
        if prompt.points is None and prompt.box is None:
            if prior is None:
                raise PromptError("an empty prompt", hint="Give points, a box or a mask")
            state.cond[(obj_id, frame)] = prior
            state.clicks.pop((obj_id, frame), None)
            return MaskOut(prior, 1.0, False)
        mask, conf = self._click(state, frame, obj_id, prompt, prior)
        state.cond[(obj_id, frame)] = mask
        return MaskOut(mask, conf, False)

    def propagate(self, state: Sam2State, start: int, end: int, direction: Direction,
                  obj_ids: list[int] | None = None) -> Iterator[PropagatedFrame]:
        import torch

        from engine.backends import sam2_model
        from engine.backends.torch_util import autocast

        ids = [o for o in (obj_ids if obj_ids is not None else sorted({k[0] for k in state.cond}))
               if (o, start) in state.cond]
        si, ei = state.index(start), state.index(end)
        if not ids or si == ei:
            return
        reverse = direction == "backward"
        if (ei < si) != reverse:
            raise PromptError(f"cannot propagate {direction} from frame {start} to frame {end}")
        p = self.predictor
        vs = self._video_state(state)

        def step(fn):
            with torch.inference_mode(), autocast(self.choice), sam2_model.quiet_predictor():
                return fn()

        def setup():
            p.reset_state(vs)  # this run's conditioning only: reproducible, cacheable runs
            self._seed(state, vs, si)
            for o in ids:
                p.add_new_mask(vs, si, o, torch.from_numpy(state.cond[(o, start)]))
            return p.propagate_in_video(vs, start_frame_idx=si, max_frame_num_to_track=abs(ei - si), reverse=reverse)

        gen = step(setup)
        expected = si
        try:
            while True:
                def advance(expected=expected):
                    self._seed(state, vs, expected)
                    try:
                        idx, obj_list, masks = next(gen)
                    except StopIteration:
                        return None
                    return idx, list(obj_list), self._frame_outputs(vs, idx, masks)

                item = step(advance)
                if item is None:
                    break
                idx, obj_list, outs = item
                expected = idx + (-1 if reverse else 1)
                if idx == si:
                    continue  # the conditioning frame itself
                self.stats["propagated"] += 1
                yield PropagatedFrame(state.frames[idx], {o: outs[k] for k, o in enumerate(obj_list) if o in ids})
                self._release(vs, idx, reverse)
        finally:
            gen.close()

    def remove_object(self, state: Sam2State, obj_id: int) -> None:
        for table in (state.cond, state.clicks):
            for key in [k for k in table if k[0] == obj_id]:
                del table[key]

    def reset(self, state: Sam2State) -> None:
        state.cond.clear()
        state.clicks.clear()
        if state.video is not None:
            self.predictor.reset_state(state.video)

    # --- clicks: the image-predictor path ----------------------------------------------------

    def image_predictor(self) -> Any:
        """SAM 2's ``SAM2ImagePredictor`` sharing this model's weights (hole filling off: no CUDA ext)."""
        if self._image_predictor is None:
            from engine.backends.torch_util import declare_torchvision_ops

            declare_torchvision_ops()  # sam2.utils.transforms imports torchvision
            from sam2.sam2_image_predictor import SAM2ImagePredictor

            ip = SAM2ImagePredictor(self.predictor, mask_threshold=0.0, max_hole_area=0, max_sprinkle_area=0)
            s = self.image_size
            ip._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
            self._image_predictor = ip
        return self._image_predictor

    def _click(self, state: Sam2State, frame: int, obj_id: int, prompt: Prompt, prior: Any) -> tuple[Any, float]:
        import numpy as np
        import torch

        from engine.backends.torch_util import autocast

        h, w = tuple(state.source.shape)
        pts = labels = box = None
        if prompt.points is not None:
            pts = np.asarray(prompt.points, np.float32).reshape(-1, 2)
            labels = (np.ones(len(pts), np.int32) if prompt.labels is None
                      else np.asarray(prompt.labels, np.int32).reshape(-1))
            if len(labels) != len(pts):
                raise PromptError(f"{len(pts)} points but {len(labels)} labels")
            if len(pts) == 0:
                pts = labels = None
        if prompt.box is not None:
            box = np.asarray(prompt.box, np.float32).reshape(4)
            if not (box[2] > box[0] and box[3] > box[1]):
                raise PromptError(f"the box {box.tolist()} is empty", hint="Give it as x0, y0, x1, y1 with x1 > x0, y1 > y0")
        if pts is None and box is None:
            raise PromptError("an empty prompt", hint="Give points, a box or a mask")
        # our pixel centres are at +0.5; SAM adds 0.5 itself to integer pixel positions
        sam_pts = None if pts is None else pts - 0.5
        sam_box = None if box is None else box - 0.5
        mask_input = None
        prev = state.clicks.get((obj_id, frame))
        if prev is not None and _extends(prev, pts, labels, box):
            mask_input = prev[3]
        elif prior is not None and prior.any():
            mask_input = self._mask_to_logits(prior)
        ip = self.image_predictor()
        with torch.inference_mode(), autocast(self.choice):
            ip._features = self._click_features(state, frame)
            ip._orig_hw = [(h, w)]
            ip._is_image_set, ip._is_batch = True, False
            single = pts is not None and len(pts) == 1 and box is None and mask_input is None
            masks, ious, low = ip.predict(point_coords=sam_pts, point_labels=labels, box=sam_box,
                                          mask_input=mask_input, multimask_output=single, return_logits=True)
        self.stats["decoded"] += 1
        best = int(np.argmax(ious))
        mask = masks[best] > 0.0
        state.clicks[(obj_id, frame)] = (None if pts is None else pts.copy(), None if labels is None else labels.copy(),
                                         None if box is None else box.copy(), low[best:best + 1].copy())
        return mask, float(np.clip(ious[best], 0.0, 1.0))

    def _mask_to_logits(self, mask: Any) -> Any:
        import cv2
        import numpy as np

        s = self.image_size // 4
        small = cv2.resize(mask.astype(np.float32), (s, s), interpolation=cv2.INTER_AREA)
        return ((small >= 0.5).astype(np.float32) * 20.0 - 10.0)[None]

    def _click_features(self, state: Sam2State, frame: int) -> dict:
        """The image predictor's features for ``frame`` (from the engine cache when possible)."""
        if state.device_features is not None and state.device_features[0] == frame:
            self.stats["feature_hits"] += 1
            return state.device_features[1]
        p = self.predictor
        fpn = self._features(state, frame, store=True)
        bo = {"backbone_fpn": fpn, "vision_pos_enc": self._positional(fpn)}
        _, vision_feats, _, sizes = p._prepare_backbone_features(bo)
        if p.directly_add_no_mem_embed:
            vision_feats[-1] = vision_feats[-1] + p.no_mem_embed
        feats = [f.permute(1, 2, 0).reshape(1, -1, *s) for f, s in zip(vision_feats, sizes)]
        out = {"image_embed": feats[-1], "high_res_feats": feats[:-1]}
        state.device_features = (frame, out)
        return out

    # --- image features (shared by clicks and propagation) -----------------------------------

    def _frame_key(self, state: Sam2State, frame: int) -> str:
        key = state.frame_keys.get(frame)
        if key is None:
            from engine.cache.keys import make_key

            src = state.source
            cid = getattr(src, "content_id", None)
            if cid:
                info = getattr(src, "info", None)
                ident = [cid, getattr(info, "colourspace", None), getattr(src, "ocio_config", None), frame]
            else:  # an anonymous source: key on the pixels themselves
                ident = ["pixels", src.read_working(frame)]
            key = make_key(self.features_token, ident)
            state.frame_keys[frame] = key
        return key

    def _features(self, state: Sam2State, frame: int, *, store: bool) -> list:
        """The backbone feature maps of ``frame`` on the device (engine cache, else the encoder)."""
        import torch

        from engine.backends import sam2_model

        key = self._frame_key(state, frame)
        hit = self.cache.get(FEATURES_NS, key)
        dev = self.choice.device
        if hit is not None:
            self.stats["feature_hits"] += 1
            return [t.to(dev, non_blocking=True) for t in hit]
        image = sam2_model.to_model_input(state.source.read_working(frame), self.image_size)
        with torch.inference_mode():
            out = self.predictor.forward_image(image[None].to(dev))
        self.stats["encoded"] += 1
        fpn = list(out["backbone_fpn"])
        if store:
            self.cache.put(FEATURES_NS, key, [t.detach().to("cpu") for t in fpn])
        return fpn

    def _positional(self, fpn: list) -> list:
        from engine.backends import sam2_model

        sig = tuple((tuple(t.shape), t.dtype, t.device) for t in fpn)
        pos = self._pos.get(sig)
        if pos is None:
            pos = sam2_model.positional_encodings(self.predictor, fpn)
            self._pos = {sig: pos}
        return pos

    def _seed(self, state: Sam2State, vs: dict, idx: int) -> None:
        """Hand the predictor the cached features of frame ``idx`` when the engine cache has them."""
        import torch

        cached = vs["cached_features"]
        if idx in cached or not 0 <= idx < len(state.frames):
            return
        if (FEATURES_NS, self._frame_key(state, state.frames[idx])) not in self.cache:
            return
        fpn = self._features(state, state.frames[idx], store=False)
        s = self.image_size
        image = torch.zeros(1, 1, 1, 1, device=fpn[0].device).expand(1, 3, s, s)  # unused by the predictor
        bo = {"backbone_fpn": fpn, "vision_pos_enc": self._positional(fpn), "vision_features": fpn[-1]}
        keep = {k: v for k, v in cached.items() if k != idx}
        keep = dict(list(keep.items())[-1:])
        keep[idx] = (image, bo)
        vs["cached_features"] = keep

    # --- propagation helpers -----------------------------------------------------------------

    def _video_state(self, state: Sam2State) -> dict:
        if state.video is None:
            from engine.backends import sam2_model

            h, w = tuple(state.source.shape)
            frames = sam2_model.LazyFrames(state.source, state.frames, self.image_size)
            offload = self.offload_state and self.choice.device.type != "cpu"
            state.video = sam2_model.predictor_state(self.predictor, frames, h, w, offload_state_to_cpu=offload)
        return state.video

    def _frame_outputs(self, vs: dict, idx: int, masks: Any) -> list[MaskOut]:
        """Masks at the plate size, confidence and occlusion per object of the run, for frame ``idx``."""
        import torch

        from engine.backends import sam2_model

        binary = (masks[:, 0] > 0.0).to("cpu").numpy()
        outs = []
        for k in range(binary.shape[0]):
            per = vs["output_dict_per_obj"][k]
            rec = per["non_cond_frame_outputs"].get(idx) or per["cond_frame_outputs"].get(idx)
            score = float(rec["object_score_logits"].float().reshape(-1)[0]) if rec is not None else 10.0
            p_obj = float(torch.sigmoid(torch.tensor(score)))
            visible = score > 0.0
            if visible:
                stab = sam2_model.stability(rec["pred_masks"].float()) if rec is not None else 1.0
                conf = p_obj * stab
            else:
                conf = 1.0 - p_obj
            mask = binary[k] if visible else binary[k] & False
            outs.append(MaskOut(mask, float(min(1.0, max(0.0, conf))), not visible or not mask.any()))
        return outs

    def _release(self, vs: dict, idx: int, reverse: bool) -> None:
        """Drop per-object outputs the model will not read again (bounded memory on long shots)."""
        if self.keep_frames <= 0:
            return
        for k, per in vs["output_dict_per_obj"].items():
            old = per["non_cond_frame_outputs"]
            stale = [t for t in old if (t > idx + self.keep_frames if reverse else t < idx - self.keep_frames)]
            for t in stale:
                del old[t]
                vs["frames_tracked_per_obj"][k].pop(t, None)


def _extends(prev: tuple, pts: Any, labels: Any, box: Any) -> bool:
    """The new prompt is the previous one plus more clicks (same box): refine the previous mask."""
    import numpy as np

    ppts, plabels, pbox = prev[:3]
    if (pbox is None) != (box is None) or (box is not None and not np.allclose(pbox, box)):
        return False
    if ppts is None:
        return pts is not None
    if pts is None or len(pts) <= len(ppts):
        return False
    return bool(np.allclose(pts[:len(ppts)], ppts) and np.array_equal(labels[:len(plabels)], plabels))


def _factory(**options: Any) -> Sam2Segmenter:
    return Sam2Segmenter(**options)


def _detail() -> str:
    from engine.backends.torch_util import choose_device

    return f"{default_model()} weights on {choose_device().label}"


register_segmenter("sam2", _factory, unavailable=_unavailable, priority=10, title="SAM 2", detail=_detail)
