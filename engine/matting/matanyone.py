"""The ``matanyone`` matter: MatAnyone (Yang et al., CVPR 2025) propagating a first-frame mask.

**Licence: MatAnyone's code and weights are under the NTU S-Lab License 1.0 — non-commercial use
only.** It is never installed or chosen automatically: the user installs it from its repository
(``pip install git+https://github.com/pq-yang/MatAnyone``) and asks for ``--backend matanyone``.

How it is driven — exactly as the project's own ``inference_matanyone.py`` / Hugging Face
wrapper do, through its public ``InferenceCore``:

* one processor per object (MatAnyone's matting head is single-object), built from the Hugging
  Face id (``InferenceCore("PeiqingYang/MatAnyone")``) or from a local checkpoint
  (``get_matanyone_model(ckpt, device)`` then ``InferenceCore(model, cfg=model.cfg)``);
* the first-frame mask (0..255 float, optionally eroded/dilated like its ``--erode_kernel`` /
  ``--dilate_kernel``) is encoded with ``step(image, mask, objects=[1])``, then
  ``step(image, first_frame_pred=True)`` plus ``warmup`` more first-frame steps refine the first
  alpha; later frames call ``step(image)``; ``output_prob_to_mask(prob)`` is the alpha;
* images are ``3 x H x W`` float tensors in [0, 1] (RGB, the working space), on the model's device,
  under ``torch.inference_mode()`` (and CUDA autocast on a GPU).

**Bounded memory for long shots**: frames are streamed (never the whole clip in memory, unlike
the reference script), and every ``chunk`` frames the processor is rebuilt and re-seeded from
the last alpha (with the warm-up again), so its memory cannot grow with the shot. ``max_size``
caps the internal resolution (MatAnyone's ``max_internal_size``; the output is full size).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.matting.base import AlphaOut, MatteFrame, MatterInfo

LICENCE = "NTU S-Lab License 1.0 (non-commercial use only)"
HF_REPO = "PeiqingYang/MatAnyone"
INSTALL = "pip install git+https://github.com/pq-yang/MatAnyone"


def unavailable() -> str | None:
    """None when the ``matanyone`` package and torch can be imported, else why not."""
    for mod, hint in (("torch", "pip install torch"), ("matanyone", INSTALL)):
        try:
            if importlib.util.find_spec(mod) is None:
                return f"the {mod} package is not installed ({hint}); MatAnyone's licence is {LICENCE}"
        except (ImportError, ValueError):
            return f"the {mod} package cannot be found ({hint})"
    return None


@dataclass
class _Track:
    processor: Any = None
    started: int | None = None  # frame the current processor was seeded on
    frames_in_chunk: int = 0
    last_alpha: np.ndarray | None = None


@dataclass
class MatAnyoneState:
    shape: tuple[int, int]
    tracks: dict[int, _Track] = field(default_factory=dict)


class MatAnyoneMatter:
    info = MatterInfo(
        name="matanyone",
        title="MatAnyone (first-frame mask → propagated alpha)",
        needs_weights=True,
        licence=LICENCE,
        notes="Install from https://github.com/pq-yang/MatAnyone; non-commercial licence.",
        inputs=("first-mask",),
    )

    def __init__(self, *, weights: str | None = None, repo: str = HF_REPO, device: str | None = None,
                 warmup: int = 10, erode: int = 10, dilate: int = 10, chunk: int = 300, max_size: int = -1,
                 reseed_from_masks: bool = False) -> None:
        if unavailable() is not None:
            from engine.errors import BackendUnavailable

            raise BackendUnavailable(f"the matanyone matting backend cannot run: {unavailable()}")
        self.weights = weights
        self.repo = repo
        self.device = device
        self.warmup = int(warmup)
        self.erode = int(erode)
        self.dilate = int(dilate)
        self.chunk = int(chunk)
        self.max_size = int(max_size)
        self.reseed_from_masks = bool(reseed_from_masks)
        self._network: Any = None
        from engine.cache.keys import make_key

        self.cache_token = "matanyone-" + make_key(weights or repo, warmup, erode, dilate, chunk, max_size,
                                                   reseed_from_masks)[:16]

    # --- model -----------------------------------------------------------------------------

    def _torch(self):
        import torch

        return torch

    def _device(self):
        torch = self._torch()
        if self.device:
            return torch.device(self.device)
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")

    def _new_processor(self) -> Any:
        """A fresh ``InferenceCore`` (the network is loaded once and shared)."""
        from engine.errors import BackendUnavailable

        core_mod = importlib.import_module("matanyone.inference.inference_core")
        InferenceCore = core_mod.InferenceCore
        device = self._device()
        try:
            if self._network is None:
                if self.weights:
                    getter = importlib.import_module("matanyone.utils.get_default_model").get_matanyone_model
                    self._network = getter(self.weights, device)
                else:
                    model_mod = importlib.import_module("matanyone.model.matanyone")
                    self._network = model_mod.MatAnyone.from_pretrained(self.repo)
            proc = InferenceCore(self._network, cfg=getattr(self._network, "cfg", None), device=device)
        except (OSError, ValueError, RuntimeError) as exc:
            raise BackendUnavailable(f"the MatAnyone weights could not be loaded ({exc})",
                                     hint=f"Download matanyone.pth from the project's releases and pass its path "
                                          f"(weights=...), or make {self.repo} reachable once") from exc
        if self.max_size > 0:
            proc.max_internal_size = self.max_size
        return proc

    def _prepare_mask(self, mask: np.ndarray) -> np.ndarray:
        """float32 0..255 like the reference script: dilate then erode with elliptical kernels."""
        import cv2

        m = np.asarray(mask)
        m = (m.astype(np.float32) * 255.0) if m.dtype == bool else np.clip(np.asarray(m, np.float32), 0, 1) * 255.0
        if self.dilate > 0:
            k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (self.dilate, self.dilate))
            m = cv2.dilate((m != 0).astype(np.float32), k) * 255.0
        if self.erode > 0:
            k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (self.erode, self.erode))
            m = cv2.erode((m >= 255.0).astype(np.float32), k) * 255.0
        return m.astype(np.float32)

    def _tensor(self, image: np.ndarray):
        torch = self._torch()
        img = np.clip(np.asarray(image, np.float32), 0.0, 1.0)
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().to(self._device())

    def _alpha(self, proc: Any, prob: Any) -> np.ndarray:
        a = proc.output_prob_to_mask(prob)
        return np.clip(a.detach().float().cpu().numpy(), 0.0, 1.0).astype(np.float32)

    def _seed(self, track: _Track, frame: int, image_t: Any, seed: np.ndarray, prepare: bool) -> np.ndarray:
        """New processor seeded with ``seed`` (a mask, or a soft alpha when re-seeding a chunk)."""
        torch = self._torch()
        proc = self._new_processor()
        m = self._prepare_mask(seed) if prepare else np.clip(np.asarray(seed, np.float32), 0, 1) * 255.0
        mask_t = torch.from_numpy(m).float().to(self._device())
        proc.step(image_t, mask_t, objects=[1])  # encode the given mask
        prob = proc.step(image_t, first_frame_pred=True)  # first-frame prediction
        for _ in range(self.warmup):  # re-init as the first frame: refines the first alpha
            prob = proc.step(image_t, first_frame_pred=True)
        track.processor, track.started, track.frames_in_chunk = proc, frame, 1
        return self._alpha(proc, prob)

    # --- contract ------------------------------------------------------------------------

    def init_state(self, shape: tuple[int, int]) -> MatAnyoneState:
        return MatAnyoneState((int(shape[0]), int(shape[1])))

    def reset(self, state: MatAnyoneState) -> None:
        state.tracks.clear()

    def process(self, state: MatAnyoneState, frame: MatteFrame) -> dict[int, AlphaOut]:
        from engine.matting.classical import check_inputs

        torch = self._torch()
        h, w = state.shape
        check_inputs(frame, (h, w))
        out: dict[int, AlphaOut] = {}
        objs = sorted(set(frame.masks) | set(state.tracks))
        with torch.inference_mode():
            ctx = torch.autocast("cuda") if self._device().type == "cuda" else _null()
            with ctx:
                image_t = self._tensor(frame.image)
                for o in objs:
                    mask = frame.masks.get(o)
                    track = state.tracks.get(o)
                    if track is None or track.processor is None:
                        if mask is None or not np.asarray(mask).any():
                            out[o] = AlphaOut(np.zeros((h, w), np.float32), None, 0.0, {"waiting": True})
                            continue
                        track = state.tracks.setdefault(o, _Track())
                        alpha = self._seed(track, frame.frame, image_t, np.asarray(mask), True)
                        stats = {"seeded": True}
                    elif self.reseed_from_masks and mask is not None and np.asarray(mask).any() and frame.confidence.get(o, 1.0) >= 1.0:
                        alpha = self._seed(track, frame.frame, image_t, np.asarray(mask), True)
                        stats = {"seeded": True}
                    elif self.chunk > 0 and track.frames_in_chunk >= self.chunk and track.last_alpha is not None:
                        # bounded memory: a new processor seeded from the last alpha
                        alpha = self._seed(track, frame.frame, image_t, track.last_alpha, False)
                        stats = {"rechunked": True}
                    else:
                        prob = track.processor.step(image_t)
                        alpha = self._alpha(track.processor, prob)
                        track.frames_in_chunk += 1
                        stats = {}
                    if alpha.shape != (h, w):
                        import cv2

                        alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)
                    track.last_alpha = alpha
                    out[o] = AlphaOut(alpha, None, 1.0, stats)
        return out


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
