"""Depth Anything 3 adapter: the ``depth-anything-3`` network driven directly (no ``api`` module).

* **Build**: ``depth_anything_3.registry.MODEL_REGISTRY[preset]`` → ``cfg.load_config`` →
  ``cfg.create_object`` (the authors' architecture, bit for bit). The package's high-level
  ``DepthAnything3`` API is not used: it imports huggingface_hub, moviepy, pycolmap, trimesh…
  and picks float16 autocast on CPUs (4x slower there). Installed with
  ``pip install --no-deps depth-anything-3==0.1.1 omegaconf addict einops safetensors``.
* **Weights** through the model manager (``roto models fetch da3-small``): the authors'
  ``model.safetensors`` (keys of their ``DepthAnything3`` wrapper, ``model.`` prefix stripped),
  or any ``.pt``/``.pth`` state dict; loaded strictly with sentences for damaged files and
  other model sizes. ``weights="random"`` builds random weights (tests, timing, the eval
  harness) and says so in :attr:`DA3Estimator.reason`.
* **Input**: working-space RGB (display-referred, clipped to [0, 1]), resized so the longer
  side is ``process_res`` (default 504, the authors' default) and both sides are multiples of
  14 (aspect kept within one patch), ImageNet-normalised, all frames of a call as one
  ``(1, N, 3, h, w)`` batch (multi-view: consistent scale and one world frame).
* **Output** back at the plate size: depth and confidence resized bilinearly; intrinsics
  rescaled; extrinsics (world-to-camera) re-expressed so the **first frame of the call is the
  world origin**. Intrinsics the network cannot have meant (random weights, garbage: field of
  view outside 2–170°, non-square pixels) are dropped with a note rather than passed on.
  Confidence ``c`` (the head's ``1 + exp`` activation, ≥ 1) is mapped to ``1 - 1/c`` in [0, 1).
* **Metric**: ``da3metric-large`` predicts canonical depth: metres = ``raw * focal / 300`` with
  the focal length in pixels of the network input (the user's ``intrinsics`` or the assumed
  50° lens, noted). ``da3nested-giant-large`` is metric as it comes.
* **Device/precision**: :func:`engine.backends.torch_util.choose_device` (CUDA bf16, MPS fp32,
  CPU fp32; ``ROTO_DEVICE``/``ROTO_PRECISION``); float16 is never used on a CPU — asked for, it
  becomes bfloat16, and the reason says so.

Imports torch and depth_anything_3.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.depth.base import DepthInfo, DepthOut
from engine.depth.da3_info import INSTALL, PRESETS, installed, unavailable  # noqa: F401  (re-exported)
from engine.errors import DependencyMissing, ModelError
from engine.models.download import refetch_hint

PATCH = 14
DEFAULT_PROCESS_RES = 504
METRIC_CANONICAL_FOCAL = 300.0
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def _import_da3():
    """The package's network modules (not its ``api``), with its stdout logger turned down."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from depth_anything_3 import cfg, registry
            from depth_anything_3.utils import logger as da3_logger
    except ImportError as exc:
        raise DependencyMissing(f"Depth Anything 3 cannot be imported ({exc})",
                                hint=f"Install it with: {INSTALL}") from exc
    if "DA3_LOG_LEVEL" not in os.environ:  # its INFO lines go to stdout and would mix with our output
        da3_logger.logger.level = da3_logger.LOG_LEVELS["WARN"]
    return cfg, registry


def build_network(preset: str, *, seed: int | None = 0) -> torch.nn.Module:
    """The preset's network with random weights (deterministic for a given ``seed``)."""
    if preset not in PRESETS:
        raise ModelError(f"there is no Depth Anything 3 model {preset!r}", hint="Choose one of: " + ", ".join(PRESETS))
    cfg, registry = _import_da3()
    if preset not in registry.MODEL_REGISTRY:
        raise ModelError(f"the installed depth-anything-3 has no {preset!r} config", hint=f"Reinstall: {INSTALL}")
    state = torch.random.get_rng_state()
    try:
        if seed is not None:
            torch.manual_seed(seed)
        net = cfg.create_object(cfg.load_config(registry.MODEL_REGISTRY[preset]))
    finally:
        torch.random.set_rng_state(state)
    return net.eval()


def _read_state_dict(path: Path, title: str) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        blob = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"the {title} weights file is missing", path=str(path)) from None
    except ImportError as exc:
        raise DependencyMissing(f"reading {path.name} needs the 'safetensors' package ({exc})",
                                hint="Install it with: pip install safetensors") from exc
    except Exception as exc:  # header/zip/pickle errors: truncated, or not a weights file
        raise ModelError(f"the {title} weights file cannot be read: it is damaged or not a weights file "
                         f"({type(exc).__name__})", path=str(path),
                         hint=f"Fetch it again with `{refetch_hint(None, path)}`") from exc
    for key in ("model", "state_dict"):
        if isinstance(blob, dict) and isinstance(blob.get(key), dict):
            blob = blob[key]
    if not isinstance(blob, dict) or not blob or not all(isinstance(v, torch.Tensor) for v in blob.values()):
        raise ModelError(f"the file is not a {title} checkpoint (no state dict of tensors)", path=str(path))
    return blob


def _strip(sd: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    if sd and all(k.startswith(prefix) for k in sd):
        return {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def load_weights(net: torch.nn.Module, path: str | Path, title: str = "Depth Anything 3") -> None:
    """Load a checkpoint into ``net`` strictly (authors' safetensors or a torch state dict)."""
    path = Path(path)
    raw = _read_state_dict(path, title)
    candidates = [_strip(_strip(raw, "module."), "model.")]
    try:  # the authors' training checkpoints use older key names; their converter knows them
        from depth_anything_3.utils.model_loading import convert_general_state_dict

        conv = _strip(convert_general_state_dict(dict(raw)), "model.")
        if conv.keys() != candidates[0].keys():
            candidates.append(conv)
    except Exception:  # noqa: BLE001 - the converter is a convenience only
        pass
    own = net.state_dict()
    # tensors the network ties together (same storage under several names) are saved once by
    # safetensors' save_model, which the authors' Hub mixin uses: fill the other names from it
    groups: dict[tuple[int, tuple[int, ...]], list[str]] = {}
    for k, v in own.items():
        groups.setdefault((v.data_ptr(), tuple(v.shape)), []).append(k)
    tied = {k: names for names in groups.values() if len(names) > 1 for k in names}
    for sd in candidates:
        for k, names in tied.items():
            if k not in sd:
                src = next((n for n in names if n in sd), None)
                if src is not None:
                    sd[k] = sd[src]
    best = None
    for sd in candidates:
        missing = [k for k in own if k not in sd]
        unexpected = [k for k in sd if k not in own]
        if best is None or len(missing) + len(unexpected) < len(best[1]) + len(best[2]):
            best = (sd, missing, unexpected)
    sd, missing, unexpected = best  # type: ignore[misc]
    if missing or unexpected:
        raise ModelError(f"these weights do not fit the {title} architecture: {len(missing)} tensor(s) missing"
                         f"{' e.g. ' + missing[0] if missing else ''}, {len(unexpected)} unexpected"
                         f"{' e.g. ' + unexpected[0] if unexpected else ''}", path=str(path),
                         hint="Is it the checkpoint of another model size? Check --model and the file")
    bad = [k for k, v in sd.items() if tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        raise ModelError(f"these weights do not fit the {title} architecture: tensor shapes differ "
                         f"({bad[0]}: {tuple(sd[bad[0]].shape)} vs {tuple(own[bad[0]].shape)})", path=str(path),
                         hint="Is it the checkpoint of another model size? Check --model and the file")
    net.load_state_dict(sd, strict=True)


def choose_da3_device(device: str | None = None, precision: str | None = None):
    """:func:`choose_device`, except that float16 never runs on a CPU (bfloat16 instead, said so)."""
    from engine.backends.torch_util import DeviceChoice, choose_device

    choice = choose_device(device, precision)
    if choice.device.type == "cpu" and choice.dtype == torch.float16:
        choice = DeviceChoice(choice.device, torch.bfloat16,
                              choice.reason + "; float16 is not used on a CPU (4x slower than float32 there): "
                                              "bfloat16 instead")
    return choice


def input_size(h: int, w: int, process_res: int) -> tuple[int, int]:
    """Network input ``(h, w)``: longer side ``process_res``, both multiples of 14, aspect kept."""
    if process_res < PATCH:
        raise ModelError(f"the processing size must be at least {PATCH} pixels, not {process_res}")
    s = process_res / float(max(h, w))

    def mult(x: float) -> int:
        return max(PATCH, int(round(x / PATCH)) * PATCH)

    return mult(h * s), mult(w * s)


def to_network_input(images: Sequence[np.ndarray], size: tuple[int, int]) -> torch.Tensor:
    """Working-space RGB frames → ``(1, N, 3, h, w)`` float32, ImageNet-normalised."""
    import cv2

    nh, nw = size
    out = []
    for img in images:
        a = np.clip(np.asarray(img, np.float32)[:, :, :3], 0.0, 1.0)
        h, w = a.shape[:2]
        interp = cv2.INTER_AREA if (nh < h or nw < w) else cv2.INTER_CUBIC
        a = cv2.resize(a, (nw, nh), interpolation=interp) if (h, w) != (nh, nw) else a
        a = np.clip(a, 0.0, 1.0)
        out.append(((a - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1))
    return torch.from_numpy(np.ascontiguousarray(np.stack(out)[None]))


class DA3Estimator:
    """A Depth Anything 3 preset as a :class:`~engine.depth.base.DepthEstimator` (see the module doc)."""

    def __init__(self, model: str = "da3-small", *, weights: str | Path | None = None, device: str | None = None,
                 precision: str | None = None, process_res: int = DEFAULT_PROCESS_RES, chunk: int | None = None,
                 seed: int = 0) -> None:
        if model not in PRESETS:
            raise ModelError(f"there is no Depth Anything 3 model {model!r}",
                             hint="Choose one of: " + ", ".join(PRESETS))
        self.preset = PRESETS[model]
        self.process_res = int(process_res)
        self.choice = choose_da3_device(device, precision)
        self.random = weights == "random"
        if weights is None:
            if not self.preset.catalogue:
                raise ModelError(f"{model} has no `roto models` entry yet",
                                 hint="Pass its weights file with --weights PATH")
            from engine.models.manager import require

            weights = require(model, f"Depth with {self.preset.title}")
        self.weights = None if self.random else Path(weights)  # type: ignore[arg-type]
        net = build_network(model, seed=seed)
        if self.weights is not None:
            load_weights(net, self.weights, self.preset.title)
        self.net = net.to(self.choice.device).eval()
        self._digest = self._weights_id(seed)
        default_chunk = 16 if self.choice.device.type == "cuda" else 4
        self.info = DepthInfo(
            name=model, title=self.preset.title, needs_weights=True, kind=self.preset.kind,
            multiview=self.preset.multiview, camera=self.preset.camera, normals=False,
            chunk=int(chunk or (default_chunk if self.preset.multiview else 8)), licence=self.preset.licence,
            commercial=self.preset.commercial, notes=self.preset.notes)

    def _weights_id(self, seed: int) -> str:
        if self.weights is None:
            return f"random-{seed}"
        st = self.weights.stat()
        return hashlib.sha256(f"{self.weights.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]

    @property
    def token(self) -> str:
        return f"{self.preset.name}|{self._digest}|{self.process_res}|{self.choice.token}"

    @property
    def reason(self) -> str:
        what = ("RANDOM WEIGHTS (not a depth estimate: tests and timing only)" if self.random
                else f"weights {self.weights}")
        lic = f", {self.preset.licence}" + ("" if self.preset.commercial else " (non-commercial use only)")
        return f"{self.preset.title} ({what}{lic}) on {self.choice.label} ({self.choice.reason})"

    # --- inference -------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        """The network on a ``(1, N, 3, h, w)`` batch under the chosen precision; tensors on the CPU, float32."""
        from engine.backends.torch_util import autocast

        with torch.inference_mode(), autocast(self.choice):
            out = self.net(x.to(self.choice.device))
        res = {}
        for k in ("depth", "depth_conf", "extrinsics", "intrinsics", "sky"):
            v = out.get(k) if hasattr(out, "get") else None
            if isinstance(v, torch.Tensor):
                res[k] = v.detach().to("cpu", torch.float32)
        return res

    def estimate(self, images: Sequence[np.ndarray], intrinsics: np.ndarray | None = None) -> list[DepthOut]:
        import cv2

        from engine.ops.camera_geometry import (as_4x4, default_intrinsics, invert_pose, plausible_intrinsics,
                                                scale_intrinsics)

        if not images:
            return []
        h, w = np.asarray(images[0]).shape[:2]
        for im in images:
            if np.asarray(im).shape[:2] != (h, w):
                raise ModelError("the frames of one call must have one size")
        size = input_size(h, w, self.process_res)
        out = self.forward(to_network_input(images, size))
        depth = out["depth"].reshape(len(images), *size).numpy()
        conf = out.get("depth_conf")
        conf = None if conf is None else conf.reshape(len(images), *size).numpy()
        Ks = out.get("intrinsics")
        Es = out.get("extrinsics")
        notes: list[str] = []
        user_K = None if intrinsics is None else np.asarray(intrinsics, np.float64)
        net_K: list[np.ndarray | None] = []
        for i in range(len(images)):
            K = None
            if Ks is not None:
                K = Ks[0, i].numpy().astype(np.float64)
                if not plausible_intrinsics(K, size):
                    K = None
            net_K.append(K)
        if Ks is not None and any(K is None for K in net_K):
            notes.append("the model's camera intrinsics were implausible and were dropped")
        if self.preset.kind == "metric" and self.preset.name.startswith("da3metric"):
            if user_K is not None:
                f_in = scale_intrinsics(user_K, (h, w), size)
            else:
                f_in = default_intrinsics(size)
                notes.append("metric scale from an assumed 50° lens (pass the camera's intrinsics for true metres)")
            depth = depth * ((f_in[0, 0] + f_in[1, 1]) / 2.0 / METRIC_CANONICAL_FOCAL)
        w2c0 = None
        if Es is not None:
            w2c0 = as_4x4(Es[0, 0].numpy().astype(np.float64))
        results = []
        for i in range(len(images)):
            d = depth[i].astype(np.float32)
            d = cv2.resize(d, (w, h), interpolation=cv2.INTER_LINEAR) if d.shape != (h, w) else d
            d = np.where(np.isfinite(d) & (d > 0), d, 0.0).astype(np.float32)
            c = None
            if conf is not None:
                ci = cv2.resize(conf[i].astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
                c = np.clip(1.0 - 1.0 / np.maximum(ci, 1.0), 0.0, 1.0).astype(np.float32)
            K = user_K
            if K is None and net_K[i] is not None:
                K = scale_intrinsics(net_K[i], size, (h, w))
            E = None
            if Es is not None and w2c0 is not None:
                E = (as_4x4(Es[0, i].numpy().astype(np.float64)) @ invert_pose(w2c0))[:3]
                if not np.all(np.isfinite(E)):
                    E = None
            results.append(DepthOut(d, c, K, E, None, None, list(notes)))
        return results


__all__ = ["PRESETS", "DA3Estimator", "build_network", "load_weights", "input_size", "to_network_input",
           "choose_da3_device", "installed", "unavailable"]
