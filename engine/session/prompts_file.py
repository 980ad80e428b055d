"""The ``--prompts FILE`` JSON format for ``roto track``: several objects, prompts and keyframes.

Example::

    {
      "direction": "both",
      "objects": [
        {"name": "hero",
         "prompts": [{"frame": 1001, "points": [[640, 360], [700, 200, 0]]},
                     {"frame": 1040, "box": [500, 100, 820, 700]}],
         "keyframes": [{"frame": 1080, "mask": "hero_1080.png"}]},
        {"name": "car", "prompts": [{"frame": 1001, "mask": "car_1001.png"}]}
      ]
    }

Points are ``[x, y]`` or ``[x, y, label]`` in pixels from the top-left (label 1 = object,
0 = background). Mask paths are relative to the prompts file; a mask is any 8/16-bit image
of the plate's size where non-zero is the object: a grey value, any colour channel (a red mask on
black), the alpha channel when it varies, or a palette PNG's index other than 0 (DAVIS style).
Validated with pydantic; every problem is reported with its location in the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.errors import PromptError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PromptSpec(_Strict):
    frame: int
    points: list[list[float]] | None = None
    box: list[float] | None = None
    mask: str | None = None
    text: str | None = None

    @field_validator("points")
    @classmethod
    def _points(cls, v):
        if v is None:
            return v
        for p in v:
            if len(p) not in (2, 3):
                raise ValueError("each point is [x, y] or [x, y, label]")
            if len(p) == 3 and p[2] not in (0, 1):
                raise ValueError("a point label is 1 (object) or 0 (background)")
        return v

    @field_validator("box")
    @classmethod
    def _box(cls, v):
        if v is not None and len(v) != 4:
            raise ValueError("a box is [x0, y0, x1, y1]")
        return v

    @model_validator(mode="after")
    def _something(self):
        if not (self.points or self.box or self.mask or self.text):
            raise ValueError("a prompt needs points, a box, a mask or text")
        return self


class KeyframeSpec(_Strict):
    frame: int
    mask: str


class ObjectSpec(_Strict):
    name: str = Field(min_length=1)
    prompts: list[PromptSpec] = Field(default_factory=list)
    keyframes: list[KeyframeSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_input(self):
        if not self.prompts and not self.keyframes:
            raise ValueError(f"object {self.name!r} has no prompts and no keyframes")
        return self


class PromptsFile(_Strict):
    objects: list[ObjectSpec] = Field(min_length=1)
    direction: Literal["forward", "backward", "both"] | None = None

    @model_validator(mode="after")
    def _unique(self):
        names = [o.name for o in self.objects]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"object names must be unique (repeated: {', '.join(dup)})")
        return self


def load_prompts_file(path: str | Path) -> PromptsFile:
    """Read and validate a prompts file; raises :class:`PromptError` listing every problem."""
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PromptError("the prompts file does not exist", path=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptError(f"the prompts file cannot be read ({exc})", path=str(p)) from exc
    except json.JSONDecodeError as exc:
        raise PromptError(f"the prompts file is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
                          path=str(p)) from exc
    try:
        return PromptsFile.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:8]:
            where = ".".join(str(x) for x in err["loc"]) or "top level"
            problems.append(f"{where}: {err['msg']}")
        more = f" (and {exc.error_count() - 8} more)" if exc.error_count() > 8 else ""
        raise PromptError("the prompts file is invalid: " + "; ".join(problems) + more, path=str(p),
                          hint="See `roto track --help` for the prompts file format") from None


def read_mask_image(path: str | Path, relative_to: Path | None = None):
    """A mask image as bool (H, W): non-zero = object.

    Grey (8/16-bit, float): any non-zero value. Colour (RGB): any non-zero channel, so a red or
    coloured mask on black works. RGBA / grey+alpha: the alpha channel when it varies, else the
    colour (an opaque, alpha-255-everywhere image is read by its colour). Palette PNGs (DAVIS
    style): palette index != 0 (read with Pillow when it is installed, else any non-zero colour).
    """
    import numpy as np

    from engine.errors import CorruptMedia, MediaNotFound

    p = Path(path)
    if relative_to is not None and not p.is_absolute():
        p = relative_to / p
    if not p.is_file():
        raise MediaNotFound("the mask image does not exist", path=str(p))
    index = _palette_index(p)
    if index is not None:
        return index != 0
    import cv2

    img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise CorruptMedia("the mask image cannot be decoded", path=str(p), hint="Use an 8- or 16-bit PNG or TIFF")
    img = np.asarray(img)
    if img.ndim == 3:
        channels = img.shape[2]
        if channels in (2, 4):  # grey+alpha or BGRA: the alpha channel unless it is constant
            alpha = img[:, :, -1]
            if alpha.size and alpha.min() != alpha.max():
                return alpha > 0
            img = img[:, :, :-1]
        return (img != 0).any(axis=2)
    return img != 0


def _palette_index(p: Path):
    """A palette PNG's index image (H, W), or None when it is not one (or Pillow is missing)."""
    try:
        from PIL import Image
    except ImportError:
        return None
    import numpy as np

    try:
        with Image.open(p) as im:
            if im.mode not in ("P", "PA"):
                return None
            return np.asarray(im.getchannel(0) if im.mode == "PA" else im)
    except Exception:  # not an image Pillow reads: OpenCV decides
        return None
