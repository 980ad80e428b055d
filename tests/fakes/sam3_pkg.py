"""A stand-in for the ``sam3`` package (0.1.4) honouring the API our adapter uses.

Installed into ``sys.modules`` by :func:`install`: ``sam3``, ``sam3.model_builder``
(``build_sam3_image_model`` with the real signature and defaults) and
``sam3.model.sam3_image_processor`` (``Sam3Processor``: ``set_image``, ``set_text_prompt``,
``add_geometric_prompt``, ``reset_all_prompts``, ``set_confidence_threshold``; the state dict
keys and tensor shapes of the real one: ``masks`` bool (N, 1, H, W), ``boxes`` float (N, 4) x0 y0
x1 y1 pixels, ``scores`` (N,), ``masks_logits``; boxes in, normalised cx, cy, w, h).

Like the real package, the model builder touches CUDA unconditionally (a ``device="cuda"``
tensor in a constructor), so it only builds on a CPU machine under the adapter's CPU redirect,
and ``load_from_HF=True`` without a checkpoint would download (here: an error).

"Detection" is by colour, deterministic: a text naming a colour (red, green, blue, yellow,
white, black) finds the connected regions of that colour; a box exemplar finds the regions whose
colour matches the mean colour inside the box. Scores grow with region area, in (0.6, 0.99].
"""

from __future__ import annotations

import importlib.machinery
import sys
import types
from pathlib import Path

import numpy as np

COLOURS = {"red": (1, 0, 0), "green": (0, 1, 0), "blue": (0, 0, 1), "yellow": (1, 1, 0), "white": (1, 1, 1),
           "black": (0, 0, 0)}

CALLS: list[tuple] = []


class FakeSam3Image:
    """Stands for ``sam3.model.sam3_image.Sam3Image``."""

    def __init__(self, device: str, checkpoint_path: str | None, bpe_path: str | None) -> None:
        import torch

        # the real constructors precompute caches with device="cuda" (position_encoding.py, decoder.py)
        self._cache = torch.zeros((1, 1, 4, 4), device="cuda")
        self.device = device
        self.checkpoint_path = checkpoint_path
        self.bpe_path = bpe_path
        self.inst_interactive_predictor = None

    def eval(self):
        return self


def build_sam3_image_model(bpe_path=None, device="cpu", eval_mode=True, checkpoint_path=None, load_from_HF=True,
                           enable_segmentation=True, enable_inst_interactivity=False, compile=False):
    CALLS.append(("build", device, checkpoint_path, load_from_HF, bpe_path))
    if load_from_HF and checkpoint_path is None:
        raise RuntimeError("fake sam3: would download facebook/sam3 from Hugging Face")
    if checkpoint_path is not None and not Path(checkpoint_path).is_file():
        raise FileNotFoundError(checkpoint_path)
    if bpe_path is not None and not Path(bpe_path).is_file():
        raise FileNotFoundError(bpe_path)
    return FakeSam3Image(device, checkpoint_path, bpe_path).eval()


def _components(cond: np.ndarray, min_area: int = 12) -> list[np.ndarray]:
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(cond.astype(np.uint8), connectivity=4)
    return [labels == i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_area]


class Sam3Processor:
    def __init__(self, model, resolution=1008, device="cuda", confidence_threshold=0.5):
        CALLS.append(("processor", device, resolution, confidence_threshold))
        self.model = model
        self.resolution = resolution
        self.device = device
        self.confidence_threshold = confidence_threshold

    def set_image(self, image, state=None):
        import PIL.Image
        import torch

        if state is None:
            state = {}
        if isinstance(image, PIL.Image.Image):
            width, height = image.size
            arr = np.asarray(image.convert("RGB"), np.float32) / 255.0
        elif isinstance(image, (torch.Tensor, np.ndarray)):
            height, width = image.shape[-2:]  # the real one reads (H, W) from the last two axes: CHW
            arr = np.asarray(image, np.float32).transpose(1, 2, 0) / 255.0
        else:
            raise ValueError("Image must be a PIL image or a tensor")
        CALLS.append(("set_image", height, width))
        state["original_height"] = height
        state["original_width"] = width
        state["backbone_out"] = {"image": arr}
        return state

    def set_text_prompt(self, prompt: str, state):
        if "backbone_out" not in state:
            raise ValueError("You must call set_image before set_text_prompt")
        state["backbone_out"]["language_features"] = prompt
        return self._forward_grounding(state)

    def add_geometric_prompt(self, box, label, state):
        if "backbone_out" not in state:
            raise ValueError("You must call set_image before set_text_prompt")
        assert len(box) == 4 and all(0.0 <= float(v) <= 1.0 for v in box), box
        assert isinstance(label, bool)
        state.setdefault("geometric_prompt", []).append((tuple(float(v) for v in box), label))
        return self._forward_grounding(state)

    def reset_all_prompts(self, state):
        if "backbone_out" in state:
            state["backbone_out"].pop("language_features", None)
        for key in ["geometric_prompt", "boxes", "masks", "masks_logits", "scores"]:
            state.pop(key, None)

    def set_confidence_threshold(self, threshold, state=None):
        self.confidence_threshold = threshold
        if state is not None and "boxes" in state:
            return self._forward_grounding(state)
        return state

    def _forward_grounding(self, state):
        import torch

        img = state["backbone_out"]["image"]
        h, w = img.shape[:2]
        cond = np.ones((h, w), bool)
        text = state["backbone_out"].get("language_features")
        if text is not None:
            words = [c for c in COLOURS if c in text.lower().split()]
            cond = np.zeros((h, w), bool)
            for word in words:
                cond |= np.linalg.norm(img - np.array(COLOURS[word], np.float32), axis=2) < 0.35
        for (cx, cy, bw, bh), positive in state.get("geometric_prompt", []):
            x0, x1 = int((cx - bw / 2) * w), int(np.ceil((cx + bw / 2) * w))
            y0, y1 = int((cy - bh / 2) * h), int(np.ceil((cy + bh / 2) * h))
            patch = img[max(0, y0):y1, max(0, x0):x1].reshape(-1, 3)
            # the example's colour: the most saturated pixels inside the box
            sat = patch.max(axis=1) - patch.min(axis=1)
            mean = patch[sat >= np.quantile(sat, 0.5)].mean(axis=0)
            near = np.linalg.norm(img - mean, axis=2) < 0.2
            cond = cond & near if positive else cond & ~near
        comps = _components(cond)
        areas = np.array([c.sum() for c in comps], np.float32)
        scores = 0.6 + 0.39 * areas / areas.max() if len(comps) else np.zeros(0, np.float32)
        keep = [i for i, s in enumerate(scores) if s > self.confidence_threshold]
        masks = np.stack([comps[i] for i in keep]) if keep else np.zeros((0, h, w), bool)
        boxes = []
        for m in masks:
            ys, xs = np.nonzero(m)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        state["masks_logits"] = torch.from_numpy(masks[:, None].astype(np.float32))
        state["masks"] = torch.from_numpy(masks[:, None])
        state["boxes"] = torch.tensor(np.array(boxes, np.float32).reshape(-1, 4))
        state["scores"] = torch.from_numpy(scores[keep].astype(np.float32))
        CALLS.append(("grounding", text, len(state.get("geometric_prompt", [])), len(keep)))
        return state


def _module(name: str, package: bool = False) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=package)
    if package:
        mod.__path__ = []  # type: ignore[attr-defined]
        mod.__spec__.submodule_search_locations = []
    return mod


def install(monkeypatch) -> None:
    """Put the fake package in ``sys.modules`` for one test (``monkeypatch`` undoes it)."""
    CALLS.clear()
    root = _module("sam3", package=True)
    builder = _module("sam3.model_builder")
    builder.build_sam3_image_model = build_sam3_image_model
    model_pkg = _module("sam3.model", package=True)
    proc = _module("sam3.model.sam3_image_processor")
    proc.Sam3Processor = Sam3Processor
    root.model_builder = builder
    root.model = model_pkg
    model_pkg.sam3_image_processor = proc
    for name, mod in (("sam3", root), ("sam3.model_builder", builder), ("sam3.model", model_pkg),
                      ("sam3.model.sam3_image_processor", proc)):
        monkeypatch.setitem(sys.modules, name, mod)
