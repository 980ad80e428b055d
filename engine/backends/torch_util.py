"""Torch helpers shared by the model backends: device and precision, autocast, torchvision shim.

**Device and precision** (:func:`choose_device`): an explicit argument wins, then the
environment (``ROTO_DEVICE`` = ``cuda``, ``cuda:1``, ``mps``, ``cpu``; ``ROTO_PRECISION`` =
``bf16``, ``fp16``, ``fp32``), then the automatic choice: CUDA with bfloat16 autocast (float16
on GPUs without bf16), else Apple MPS in float32, else the CPU in float32. Asking for a device
that is not there is an error, not a silent fallback.

**torchvision shim** (:func:`declare_torchvision_ops`): the PyPI torchvision wheel that matches
the CPU torch build links CUDA libraries, so its C++ ops never load and ``import torchvision``
fails on ``torchvision::nms``. Declaring the two op schemas its Python side registers fakes for
(``nms``, ``qnms``) lets it import; the pure-Python transforms then work (SAM 2's image
predictor needs them). Call it before the first ``import torchvision``; it does nothing when the
real ops are loaded.

Importing this module imports torch.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from engine.errors import BackendUnavailable, InputError

PRECISIONS = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
              "fp16": torch.float16, "float16": torch.float16, "half": torch.float16}
_TV_LIB = None


@dataclass(frozen=True)
class DeviceChoice:
    """Where and how a model runs, and why (shown to the user)."""

    device: torch.device
    dtype: torch.dtype  # float32 = no autocast
    reason: str

    @property
    def label(self) -> str:
        return f"{self.device.type.upper() if self.device.type != 'cpu' else 'CPU'} " \
               f"{ {torch.float32: 'float32', torch.bfloat16: 'bf16', torch.float16: 'fp16'}[self.dtype] }"

    @property
    def autocast(self) -> bool:
        return self.dtype != torch.float32

    @property
    def token(self) -> str:
        """For cache tokens: results differ between devices/precisions."""
        return f"{self.device.type}-{str(self.dtype).replace('torch.', '')}"


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def choose_device(device: str | None = None, precision: str | None = None) -> DeviceChoice:
    """The device and precision to run on (argument > ``ROTO_DEVICE``/``ROTO_PRECISION`` > automatic)."""
    asked = device or os.environ.get("ROTO_DEVICE") or None
    prec = precision or os.environ.get("ROTO_PRECISION") or None
    if asked in ("auto", ""):
        asked = None
    if prec in ("auto", ""):
        prec = None
    if asked is None:
        if torch.cuda.is_available():
            dev, why = torch.device("cuda"), f"CUDA GPU {torch.cuda.get_device_name(0)}"
        elif _mps_available():
            dev, why = torch.device("mps"), "Apple GPU (MPS)"
        else:
            dev, why = torch.device("cpu"), "no CUDA or MPS GPU found"
    else:
        try:
            dev = torch.device(asked)
        except RuntimeError:
            raise InputError(f"{asked!r} is not a device", hint="Use cuda, cuda:N, mps or cpu") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailable(f"the device {asked!r} was asked for, but this torch build sees no CUDA GPU "
                                     f"(torch {torch.__version__})",
                                     hint="Install a CUDA build of torch (make setup TORCH_SPEC=...) or use --device cpu")
        if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
            raise BackendUnavailable(f"there is no GPU {dev.index} (this machine has {torch.cuda.device_count()})")
        if dev.type == "mps" and not _mps_available():
            raise BackendUnavailable("the device 'mps' was asked for, but Apple MPS is not available here",
                                     hint="Use cpu")
        if dev.type not in ("cuda", "mps", "cpu"):
            raise InputError(f"the device type {dev.type!r} is not supported", hint="Use cuda, mps or cpu")
        why = "asked for"
    if prec is None:
        if dev.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = torch.float32  # MPS autocast support is partial; CPU bf16 is slower on most CPUs
    else:
        dtype = PRECISIONS.get(prec.lower())  # type: ignore[assignment]
        if dtype is None:
            raise InputError(f"{prec!r} is not a precision", hint="Use bf16, fp16 or fp32")
        why += f", {prec} asked for"
    return DeviceChoice(dev, dtype, why)


@contextlib.contextmanager
def autocast(choice: DeviceChoice) -> Iterator[None]:
    """Mixed precision for ``choice`` (nothing for float32)."""
    if not choice.autocast:
        yield
        return
    with torch.autocast(device_type=choice.device.type, dtype=choice.dtype):
        yield


def declare_torchvision_ops() -> None:
    """Let ``import torchvision`` succeed when its compiled ops cannot load (see the module docstring)."""
    global _TV_LIB
    try:
        if hasattr(torch.ops.torchvision, "nms"):
            return  # real ops loaded, or declared already
    except (RuntimeError, AttributeError):
        pass
    if _TV_LIB is not None:
        return
    lib = torch.library.Library("torchvision", "DEF")
    for name in ("nms", "qnms"):
        lib.define(f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _TV_LIB = lib  # keep the reference: the definitions live as long as it does


def peak_memory_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_bytes(device: torch.device) -> int | None:
    """Peak GPU memory allocated since the last reset (None off CUDA)."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return None


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
