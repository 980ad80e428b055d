"""Session data: objects, prompts, keyframes and per-frame results, as plain serialisable values.

Masks are stored run-length encoded (:mod:`engine.ops.rle`), so a session of a long shot with
several objects stays small in memory and on disk. Every edit of this data goes through a
:class:`Patch` (see :mod:`engine.session.history`) so it can be undone exactly.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

PromptKind = Literal["point", "box", "mask", "text", "exemplar"]
PROMPT_KINDS: tuple[str, ...] = ("point", "box", "mask", "text", "exemplar")
#: how a frame's result came to be
Provenance = Literal["keyframe", "forward", "backward", "merged", "edit"]

#: pleasant, distinguishable overlay colours (sRGB 0..1) handed out to new objects in turn
PALETTE: tuple[tuple[float, float, float], ...] = (
    (0.95, 0.35, 0.20), (0.20, 0.65, 0.95), (0.35, 0.85, 0.35), (0.95, 0.80, 0.20),
    (0.75, 0.40, 0.90), (0.20, 0.85, 0.80), (0.95, 0.45, 0.70), (0.60, 0.60, 0.60),
)


@dataclass(frozen=True)
class RotoObject:
    """A tracked object: stable integer id (never reused in a session), name, overlay colour."""

    id: int
    name: str
    colour: tuple[float, float, float] = (0.95, 0.35, 0.20)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "colour": list(self.colour)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RotoObject:
        return cls(int(d["id"]), str(d["name"]), tuple(float(c) for c in d.get("colour", PALETTE[0])))  # type: ignore[arg-type]


@dataclass(frozen=True)
class PromptRecord:
    """One user prompt on one frame of one object.

    ``data`` by kind: point ``{"x", "y", "label"}`` (pixels, top-left origin, label 1/0);
    box ``{"x0", "y0", "x1", "y1"}``; mask an RLE dict; text ``{"text"}``;
    exemplar ``{"frame", "x0", "y0", "x1", "y1"}`` (a box on another frame).
    """

    uid: str
    object_id: int
    frame: int
    kind: str
    data: dict[str, Any]

    @staticmethod
    def new_uid() -> str:
        return uuid.uuid4().hex[:12]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PromptRecord:
        return cls(str(d["uid"]), int(d["object_id"]), int(d["frame"]), str(d["kind"]), dict(d["data"]))


@dataclass(frozen=True)
class FrameResult:
    """One object's mask on one frame, with where it came from.

    ``mask`` is an RLE dict; ``source`` the keyframe it was propagated from (None for a
    keyframe itself); ``confidence`` in [0, 1]; ``occluded`` True when the object is hidden
    on this frame (the mask is then empty); ``estimate`` True for a keyframe the backend segmented
    from prompts (clicks, a box, text), False for one painted, edited or approved by the user.
    """

    mask: dict[str, Any]
    backend: str
    direction: str
    source: int | None = None
    confidence: float = 1.0
    occluded: bool = False
    estimate: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FrameResult:
        return cls(dict(d["mask"]), str(d["backend"]), str(d["direction"]),
                   None if d.get("source") is None else int(d["source"]),
                   float(d.get("confidence", 1.0)), bool(d.get("occluded", False)), bool(d.get("estimate", False)))


@dataclass(frozen=True)
class ClipRef:
    """How the session opens its plate again, and what the plate was when it was made."""

    path: str
    colourspace: str | None = None
    missing: str = "error"
    in_point: int | None = None
    out_point: int | None = None
    fps: str | None = None
    ocio_config: str | None = None
    first: int = 0
    last: int = 0
    width: int = 0
    height: int = 0
    content_id: str = ""
    #: facts about the plate when the session was made, so outputs keep them if it goes offline
    rate: str = ""  # exact frame rate "24000/1001"
    timecode: str | None = None
    plate_colourspace: str = ""
    #: frame digits of the plate's file names (0: a movie or unpadded; None: a project made before
    #: this was recorded, worked out from the plate when it is online); outputs follow it
    padding: int | None = None
    #: ``path`` relative to the project file's folder, written when the project is saved: found
    #: there when ``path`` is gone (a project folder moved or mounted elsewhere)
    relative_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClipRef:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


@dataclass
class SessionData:
    """Everything a session knows, minus its history. Tables are plain dicts keyed by id."""

    clip: ClipRef
    backend: str = "auto"
    objects: dict[int, RotoObject] = field(default_factory=dict)
    prompts: dict[str, PromptRecord] = field(default_factory=dict)
    keyframes: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)  # (obj, frame) -> RLE
    results: dict[tuple[int, int], FrameResult] = field(default_factory=dict)  # (obj, frame) -> result
    next_object_id: int = 1
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. qc scores, notes

    # --- queries -------------------------------------------------------------------------

    def keyframes_of(self, obj: int) -> list[int]:
        return sorted(f for (o, f) in self.keyframes if o == obj)

    def prompts_on(self, obj: int, frame: int) -> list[PromptRecord]:
        return [p for p in self.prompts.values() if p.object_id == obj and p.frame == frame]

    def result_frames(self, obj: int) -> list[int]:
        return sorted(f for (o, f) in self.results if o == obj)
