"""A fake ``matanyone`` package honouring MatAnyone's inference API (pq-yang/MatAnyone, commit e5ddc53).

What the real API does, and this fake checks:

* ``matanyone.InferenceCore`` (also ``matanyone.inference.inference_core.InferenceCore``):
  ``InferenceCore(network, cfg=None, *, image_feature_store=None, device=None)`` where ``network``
  is a ``MatAnyone`` model or a Hugging Face id string (``MatAnyone.from_pretrained``); the config
  gives ``max_internal_size`` (-1 = no resizing), ``mem_every``, ``chunk_size``…
* ``step(image, mask=None, objects=None, *, idx_mask=False, end=False, delete_buffer=True,
  force_permanent=False, matting=True, first_frame_pred=False)``: ``image`` a float tensor
  ``3 x H x W`` in [0, 1]; ``mask`` ``H x W`` float with values 0..255 in matting mode (the core
  divides by 255); returns ``(num_objects + 1) x H x W`` probabilities, background first. The
  first call must carry a mask (segmenting without memory only warns and returns zeros).
  ``first_frame_pred=True`` resets the time index and predicts the first frame again (warm-up).
* ``output_prob_to_mask(prob, matting=True)`` → ``prob[1:].squeeze(0)``: the alpha ``H x W``.
* ``matanyone.utils.get_default_model.get_matanyone_model(ckpt_path, device)`` → a model with ``.cfg``.

Behaviour of the fake "network": the memorised alpha (from the encoded mask) is returned for
first-frame predictions; every later ``step`` shifts the last alpha ``shift`` pixels right — a
deterministic propagation tests can predict. With ``max_internal_size`` set, the work happens at
the reduced size and the output is resized back, as the real core does. Every call is logged.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

import numpy as np


@dataclass
class FakeCfg:
    max_internal_size: int = -1
    mem_every: int = 5
    stagger_updates: int = 5
    chunk_size: int = -1
    save_aux: bool = False
    flip_aug: bool = False


@dataclass
class FakeNetwork:
    cfg: FakeCfg = field(default_factory=FakeCfg)
    source: str = ""


class Log:
    calls: list[tuple] = []
    processors: int = 0
    shift: int = 2


class InferenceCore:
    def __init__(self, network, cfg=None, *, image_feature_store=None, device=None):
        if isinstance(network, str):
            network = FakeNetwork(source=network)
        self.network = network
        self.cfg = cfg if cfg is not None else network.cfg
        self.device = device
        self.max_internal_size = self.cfg.max_internal_size
        self.curr_ti = -1
        self.memory: np.ndarray | None = None  # the memorised alpha
        self.last: np.ndarray | None = None
        Log.processors += 1
        self.id = Log.processors

    def step(self, image, mask=None, objects=None, *, idx_mask=False, end=False, delete_buffer=True,
             force_permanent=False, matting=True, first_frame_pred=False):
        import torch
        import torch.nn.functional as F

        assert isinstance(image, torch.Tensor) and image.dim() == 3 and image.shape[0] == 3, "image must be 3xHxW"
        assert image.dtype == torch.float32, "image must be float"
        assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0, "image must be in [0, 1]"
        h, w = image.shape[-2:]
        Log.calls.append(("step", self.id, "mask" if mask is not None else "", bool(first_frame_pred), (h, w)))
        resize = False
        if self.max_internal_size > 0 and min(h, w) > self.max_internal_size:
            resize = True
            nh = int(h / min(h, w) * self.max_internal_size)
            nw = int(w / min(h, w) * self.max_internal_size)
            image = F.interpolate(image.unsqueeze(0), size=(nh, nw), mode="bilinear", align_corners=False)[0]
            if mask is not None:
                mask = F.interpolate(mask.unsqueeze(0).unsqueeze(0), size=(nh, nw), mode="bilinear",
                                     align_corners=False)[0, 0]
        self.curr_ti += 1
        if first_frame_pred:
            self.curr_ti = 0
        if mask is not None:
            assert isinstance(mask, torch.Tensor) and mask.dim() == 2, "mask must be HxW"
            assert objects is not None and list(objects) == [1], "objects must be [1] for single-target matting"
            assert float(mask.max()) > 1.0 or float(mask.max()) == 0.0, "matting masks are 0..255"
            assert float(mask.max()) <= 255.0 + 1e-3
            self.memory = (mask / 255.0).clamp(0, 1).cpu().numpy().astype(np.float32)
            alpha = self.memory
        elif self.memory is None:
            alpha = np.zeros(tuple(image.shape[-2:]), np.float32)  # "segment without memory": zeros
        elif first_frame_pred:
            alpha = self.memory
        else:
            alpha = np.roll(self.last, Log.shift, axis=1)
        self.last = alpha
        a = torch.from_numpy(np.ascontiguousarray(alpha)).unsqueeze(0)
        prob = torch.cat([1 - a, a], 0)
        if resize:
            prob = F.interpolate(prob.unsqueeze(0), size=(h, w), mode="bilinear", align_corners=False)[0]
        return prob

    def output_prob_to_mask(self, output_prob, matting=True):
        assert matting
        return output_prob[1:].squeeze(0)


class MatAnyone:
    @classmethod
    def from_pretrained(cls, repo: str):
        Log.calls.append(("from_pretrained", repo))
        return FakeNetwork(source=repo)


def get_matanyone_model(ckpt_path, device=None):
    Log.calls.append(("get_matanyone_model", str(ckpt_path)))
    return FakeNetwork(source=str(ckpt_path))


def install(monkeypatch) -> type[Log]:
    """Put the fake package in ``sys.modules`` (undone by ``monkeypatch``); returns the call log."""
    Log.calls = []
    Log.processors = 0
    root = types.ModuleType("matanyone")
    root.__path__ = []  # a package
    root.__spec__ = types.SimpleNamespace(name="matanyone", submodule_search_locations=[], loader=None,
                                          origin="fake", parent="", has_location=False, cached=None)
    root.InferenceCore = InferenceCore
    root.MatAnyone = MatAnyone
    mods = {
        "matanyone": root,
        "matanyone.inference": types.ModuleType("matanyone.inference"),
        "matanyone.inference.inference_core": types.ModuleType("matanyone.inference.inference_core"),
        "matanyone.model": types.ModuleType("matanyone.model"),
        "matanyone.model.matanyone": types.ModuleType("matanyone.model.matanyone"),
        "matanyone.utils": types.ModuleType("matanyone.utils"),
        "matanyone.utils.get_default_model": types.ModuleType("matanyone.utils.get_default_model"),
    }
    mods["matanyone.inference.inference_core"].InferenceCore = InferenceCore
    mods["matanyone.model.matanyone"].MatAnyone = MatAnyone
    mods["matanyone.utils.get_default_model"].get_matanyone_model = get_matanyone_model
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return Log
