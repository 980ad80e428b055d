"""SAM 2 plumbing for :mod:`engine.backends.sam2_backend`: building, loading weights, feeding frames.

* :func:`build_predictor` — the ``sam2`` package's video predictor for a SAM 2.1 config (official
  builder, so the architecture and post-processing match Meta's), with an optional input size,
  then :func:`load_checkpoint` — the path every real checkpoint takes: ``torch.load`` of
  ``{"model": state_dict}`` with errors that say what is wrong (damaged file, weights of
  another model size);
* :class:`LazyFrames` — what the predictor sees as ``inference_state["images"]``: frames read
  from our :class:`~engine.backends.base.FrameSource` (any plate the media layer opens,
  converted to the working space) on demand, resized to the model's square input and
  normalised, so a shot is never loaded whole;
* :func:`predictor_state` — the predictor's ``init_state`` fed by :class:`LazyFrames` through
  the module-level ``load_video_frames`` hook (restored afterwards), without encoding frame 0.

Imports torch and sam2.
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.errors import ModelError
from engine.models.download import refetch_hint

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def _quiet_import_sam2():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import sam2  # noqa: F401  (initialises hydra's config search path)
        import sam2.build_sam
        import sam2.sam2_video_predictor
    return sam2


def build_predictor(config: str, checkpoint: str | Path | None, device: torch.device, *, image_size: int | None = None,
                    overrides: list[str] | tuple[str, ...] = (), model_name: str = "SAM 2") -> Any:
    """A ``SAM2VideoPredictor`` for ``config`` (random weights when ``checkpoint`` is None)."""
    _quiet_import_sam2()
    from sam2.build_sam import build_sam2_video_predictor

    extra = list(overrides)
    if image_size is not None:
        if image_size % 32:
            raise ModelError(f"the SAM 2 input size must be a multiple of 32, not {image_size}")
        extra.append(f"++model.image_size={int(image_size)}")
    try:
        model = build_sam2_video_predictor(config, ckpt_path=None, device="cpu", hydra_overrides_extra=extra)
    except Exception as exc:  # hydra: unknown config, bad override
        raise ModelError(f"the SAM 2 model {config!r} cannot be built ({exc})",
                         hint="Reinstall the sam2 package (make setup)") from exc
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, model_name)
    return model.to(device).eval()


def load_checkpoint(model: torch.nn.Module, path: str | Path, model_name: str = "SAM 2") -> None:
    """Load ``{"model": state_dict}`` (or a bare state dict) from ``path`` into ``model``, strictly."""
    path = Path(path)
    try:
        blob = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"the {model_name} weights file is missing", path=str(path)) from None
    except Exception as exc:  # zip/pickle errors: truncated or not a torch file
        raise ModelError(f"the {model_name} weights file cannot be read: it is damaged or not a PyTorch checkpoint "
                         f"({type(exc).__name__})", path=str(path),
                         hint=f"Fetch it again with `{refetch_hint(None, path)}`") from exc
    sd = blob.get("model", blob) if isinstance(blob, dict) else None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ModelError(f"the file is not a {model_name} checkpoint (no 'model' state dict)", path=str(path))
    try:
        missing, unexpected = model.load_state_dict(sd, strict=False)
    except RuntimeError as exc:  # shape mismatches
        first = str(exc).splitlines()[1:2]
        raise ModelError(f"these weights do not fit the {model_name} architecture: tensor shapes differ"
                         f"{' (' + first[0].strip() + ')' if first else ''}", path=str(path),
                         hint="Is it the checkpoint of another model size? Check --model and the file") from None
    if missing or unexpected:
        raise ModelError(f"these weights do not fit the {model_name} architecture: {len(missing)} tensor(s) missing"
                         f"{' e.g. ' + missing[0] if missing else ''}, {len(unexpected)} unexpected"
                         f"{' e.g. ' + unexpected[0] if unexpected else ''}", path=str(path),
                         hint="Is it the checkpoint of another model (SAM 2.0 vs 2.1, another size)?")


def weights_digest(model: torch.nn.Module) -> str:
    """A short content id of a model's weights (a sample of every tensor): cache tokens for
    models built in memory without a checkpoint file."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        flat = t.detach().reshape(-1)[:256].to("cpu", torch.float32).contiguous()
        h.update(name.encode())
        h.update(flat.numpy().tobytes())
    return h.hexdigest()[:16]


def to_model_input(rgb: np.ndarray, size: int) -> torch.Tensor:
    """Working-space RGB (H, W, 3) → float32 tensor (3, size, size), ImageNet-normalised.

    Values are clipped to [0, 1] (the working space is display-referred but unclipped); the
    square resize ignores the aspect ratio, as SAM 2 does (masks come back at the plate size).
    """
    import cv2

    img = np.clip(np.asarray(rgb, np.float32)[:, :, :3], 0.0, 1.0)
    h, w = img.shape[:2]
    interp = cv2.INTER_AREA if (h > size or w > size) else cv2.INTER_LINEAR
    img = cv2.resize(img, (size, size), interpolation=interp)
    img = (img - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


class LazyFrames:
    """``len()`` and ``[i]`` over a frame source's frames, read and converted on access."""

    def __init__(self, source: Any, frames: list[int], size: int) -> None:
        self.source = source
        self.frames = frames
        self.size = size
        self.reads = 0

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> torch.Tensor:
        self.reads += 1
        return to_model_input(self.source.read_working(self.frames[i]), self.size)


@contextlib.contextmanager
def _swap(module: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def predictor_state(predictor: Any, frames: LazyFrames, height: int, width: int, *,
                    offload_state_to_cpu: bool = False) -> dict:
    """The predictor's inference state over ``frames`` (no JPEG folder, frame 0 not encoded yet)."""
    import sam2.sam2_video_predictor as svp

    def load(**_kwargs):
        return frames, height, width

    predictor._get_image_feature = lambda *a, **k: None  # skip the warm-up encode of frame 0
    try:
        with _swap(svp, "load_video_frames", load):
            state = predictor.init_state(video_path="<engine frames>", offload_video_to_cpu=True,
                                         offload_state_to_cpu=offload_state_to_cpu)
    finally:
        del predictor._get_image_feature  # back to the class method
    state["cached_features"] = {}
    return state


class _NoBar:
    """Stands in for tqdm inside the predictor: no progress bar on our stderr."""

    def __init__(self, iterable, *args, **kwargs) -> None:
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)


@contextlib.contextmanager
def quiet_predictor() -> Iterator[None]:
    """No tqdm bar and no "cannot import _C" warning (hole filling needs the CUDA extension)."""
    import sam2.sam2_video_predictor as svp

    with _swap(svp, "tqdm", _NoBar), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*cannot import name '_C'.*")
        warnings.filterwarnings("ignore", message=r".*Skipping the post-processing step.*")
        yield


def positional_encodings(model: Any, fpn: list[torch.Tensor]) -> list[torch.Tensor]:
    """The neck's positional encodings for feature maps shaped like ``fpn`` (they depend on shape only)."""
    pe = model.image_encoder.neck.position_encoding
    return [pe(t).to(t.dtype) for t in fpn]


def stability(low_res_logits: torch.Tensor, offset: float = 1.0) -> float:
    """SAM's stability score: area(logit > +offset) / area(logit > -offset) (1.0 for an empty mask)."""
    hi = int((low_res_logits > offset).sum())
    lo = int((low_res_logits > -offset).sum())
    return 1.0 if lo == 0 else hi / lo
