"""Request bodies, validated by pydantic before anything runs.

Every model forbids unknown fields (a misspelt option is an error, not silently ignored),
bounds its numbers and string lengths, and refuses NaN/inf. Paths are plain strings here;
the roots policy checks them in the route.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

Frame = Annotated[int, Field(ge=-10_000_000, le=10_000_000)]
Coord = Annotated[float, Field(ge=-1e6, le=1e6, allow_inf_nan=False)]
PathStr = Annotated[str, Field(min_length=1, max_length=4096)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
ObjectRef = Union[Annotated[int, Field(ge=1, le=1_000_000)], Name]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)


class OpenSession(Strict):
    clip: PathStr
    project: PathStr | None = None  # session project file (.roto.json); created when absent
    key: Annotated[str, Field(min_length=1, max_length=1000)] | None = None  # stable host-side name
    backend: Name | None = None  # segmenter: auto, classical, sam2, ...
    colourspace: Name | None = None
    missing: Literal["error", "hold", "black"] | None = None
    in_point: Frame | None = None
    out_point: Frame | None = None
    fps: Annotated[str, Field(max_length=40)] | None = None
    ocio_config: PathStr | None = None


class AddObject(Strict):
    name: Name | None = None


class PointPrompt(Strict):
    kind: Literal["point"]
    object: ObjectRef
    frame: Frame
    x: Coord
    y: Coord
    label: Literal[0, 1] = 1


class BoxPrompt(Strict):
    kind: Literal["box"]
    object: ObjectRef
    frame: Frame
    x0: Coord
    y0: Coord
    x1: Coord
    y1: Coord


class TextPrompt(Strict):
    kind: Literal["text"]
    object: ObjectRef
    frame: Frame
    text: Annotated[str, Field(min_length=1, max_length=500)]


class MaskPrompt(Strict):
    kind: Literal["mask"]
    object: ObjectRef
    frame: Frame
    path: PathStr  # an image file, non-zero = object


AddPrompt = Annotated[Union[PointPrompt, BoxPrompt, TextPrompt, MaskPrompt], Field(discriminator="kind")]


class PromptSet(Strict):
    """All prompts of one object on one frame, applied as one undoable step."""

    object: ObjectRef
    frame: Frame
    points: Annotated[list[Annotated[list[Coord], Field(min_length=2, max_length=3)]], Field(max_length=256)] = []
    box: Annotated[list[Coord], Field(min_length=4, max_length=4)] | None = None
    text: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    replace: bool = True


class MovePrompt(Strict):
    x: Coord
    y: Coord


class Keyframe(Strict):
    object: ObjectRef
    frame: Frame


class Empty(Strict):
    pass


class SubmitJob(Strict):
    kind: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
    params: dict[str, Any] = {}


# --- job parameters (validated by the job kind) -------------------------------------------------


class TrackParams(Strict):
    direction: Literal["forward", "backward", "both"] = "both"
    objects: Annotated[list[ObjectRef], Field(max_length=1000)] | None = None
    frames: Annotated[list[Frame], Field(min_length=2, max_length=2)] | None = None
    around: Frame | None = None  # re-propagate only what a correction on this frame changed


class ExportParams(Strict):
    out_dir: PathStr
    format: Literal["exr", "dpx", "png", "tiff", "tif"] = "exr"
    layers: Annotated[list[Name], Field(max_length=50)] | None = None
    objects: Annotated[list[ObjectRef], Field(max_length=1000)] | None = None
    compression: Name | None = None
    multipart: bool = False
    bit_depth: Literal[8, 10, 16, 32] | None = None
    transfer: Literal["log", "adx", "linear", "rec709"] | None = None
    frames: Annotated[list[Frame], Field(min_length=2, max_length=2)] | None = None
    template: Annotated[str, Field(max_length=1000)] | None = None
    shot: Name | None = None
    force: bool = False
    window: Literal["plate", "display"] = "plate"


class MatteParams(Strict):
    backend: Name = "auto"
    objects: Annotated[list[ObjectRef], Field(max_length=1000)] | None = None
    frames: Annotated[list[Frame], Field(min_length=2, max_length=2)] | None = None
    out_dir: PathStr | None = None  # also write one file per object and frame
    format: Literal["png16", "exr"] = "exr"
    screen: Literal["green", "blue"] = "green"
    grow: Annotated[float, Field(ge=-500, le=500)] = 0.0
    feather: Annotated[float, Field(ge=0, le=500)] = 0.0
    blur: Annotated[float, Field(ge=0, le=500)] = 0.0
    clip_black: Annotated[float, Field(ge=0, le=1)] = 0.0
    clip_white: Annotated[float, Field(ge=0, le=1)] = 1.0
    fill_holes: Annotated[int, Field(ge=-1, le=10_000_000)] = 0
    min_island: Annotated[int, Field(ge=0, le=10_000_000)] = 0
    temporal: Annotated[float, Field(ge=0, le=1)] = 0.0
    motion_blur: Annotated[float, Field(ge=0, le=4)] = 0.0


class QCParams(Strict):
    objects: Annotated[list[ObjectRef], Field(max_length=1000)] | None = None
    frames: Annotated[list[Frame], Field(min_length=2, max_length=2)] | None = None


class OpenParams(Strict):
    """For job kinds provided by later engine modules (depth, shapes): validated by the module."""

    model_config = ConfigDict(extra="allow")
