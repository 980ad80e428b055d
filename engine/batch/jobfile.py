"""The batch job file: shots, prompts, stages and outputs (JSON, or YAML), validated.

The minimal form::

    {"shots": [{"name": "sh010", "input": "/plates/sh010/sh010.####.exr", "mask": "/prompts/sh010.png",
                "stages": ["track", "matte", "export"], "out": "/out/sh010"}]}

Every key, with its default, is described in ``docs/formats/batch-job.md``. ``defaults`` holds
keys shared by every shot (a shot's own keys win; ``matte``/``depth``/``export`` tables are merged
key by key). Relative paths are relative to the job file's folder. Problems are reported all at
once with their location (``shots[1].stages[0]: …``) as an :class:`~engine.errors.InputError`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.errors import InputError

STAGES: tuple[str, ...] = ("track", "matte", "depth", "export")
StageName = Literal["track", "matte", "depth", "export"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MatteSpec(_Strict):
    """Soft alpha (``roto matte``) in chunks of ``chunk`` frames, each warmed up on ``warmup`` earlier frames."""

    backend: str = "auto"
    options: dict[str, Any] = Field(default_factory=dict)
    controls: dict[str, Any] = Field(default_factory=dict)
    chunk: int = Field(50, ge=1, le=100000)
    warmup: int = Field(4, ge=0, le=1000)
    #: local runs: processes matting chunks at once ("auto": a quarter of the CPUs, 1 to 4); the bytes do not change
    workers: int | Literal["auto"] = "auto"

    @field_validator("workers")
    @classmethod
    def _workers(cls, v: int | str) -> int | str:
        if isinstance(v, int) and not 1 <= v <= 64:
            raise ValueError("workers is 1-64 or \"auto\"")
        return v

    @property
    def worker_count(self) -> int:
        if isinstance(self.workers, int):
            return self.workers
        import os

        return max(1, min(4, (os.cpu_count() or 1) // 4))

    @field_validator("controls")
    @classmethod
    def _controls(cls, v: dict[str, Any]) -> dict[str, Any]:
        from dataclasses import fields

        from engine.matting.controls import EdgeControls

        known = {f.name for f in fields(EdgeControls)}
        bad = sorted(set(v) - known)
        if bad:
            raise ValueError(f"unknown edge control(s) {', '.join(bad)}; known: {', '.join(sorted(known))}")
        return v


class DepthSpec(_Strict):
    """Depth (``roto depth``) stored with the session, so the export carries ``depth.Z`` (and ``N`` with normals)."""

    model: str = "auto"
    weights: str | None = None
    device: str | None = None
    precision: str | None = None
    chunk: int | None = Field(None, ge=1, le=1000)
    temporal: float = Field(0.3, ge=0.0, le=1.0)
    convention: str = "distance"
    normals: bool = False


class ExportSpec(_Strict):
    """Deliverables (``roto export``); ``chunk`` frames are exported per step (and per Ray task)."""

    format: str = "exr"
    layers: list[str] | None = None
    objects: list[str] | None = None
    compression: str | None = None
    multipart: bool = False
    bit_depth: int | None = None
    transfer: str | None = None
    template: str | None = None
    chunk: int = Field(10, ge=1, le=100000)


class ShotSpec(_Strict):
    """One shot: plate, prompts, stages and output folder."""

    name: str
    input: str
    out: str
    stages: list[StageName] = Field(default_factory=lambda: ["track", "export"], min_length=1)
    # prompts: one of mask / points / box (on ``frame``, object ``object``), a prompts file, or an existing session
    mask: str | None = None
    points: list[list[float]] | None = None
    box: list[float] | None = None
    frame: int | None = None
    object: str = Field("matte", min_length=1, max_length=64)
    prompts: str | None = None
    session: str | None = None
    # plate
    frames: str | list[int] | None = None
    colourspace: str | None = None
    missing: Literal["error", "hold", "black"] = "error"
    fps: str | float | None = None
    ocio: str | None = None
    # tracking
    backend: str = "auto"
    direction: Literal["forward", "backward", "both"] = "both"
    # stage settings
    matte: MatteSpec = Field(default_factory=MatteSpec)
    depth: DepthSpec = Field(default_factory=DepthSpec)
    export: ExportSpec = Field(default_factory=ExportSpec)
    retries: int = Field(2, ge=0, le=20)  # Ray: how often a task whose worker died is retried

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("a shot name is 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")
        return v

    @field_validator("stages")
    @classmethod
    def _stages(cls, v: list[str]) -> list[str]:
        dup = sorted({s for s in v if v.count(s) > 1})
        if dup:
            raise ValueError(f"a stage is listed twice ({', '.join(dup)})")
        return [s for s in STAGES if s in v]  # run order

    @field_validator("points")
    @classmethod
    def _points(cls, v: list[list[float]] | None) -> list[list[float]] | None:
        for p in v or []:
            if len(p) not in (2, 3) or (len(p) == 3 and p[2] not in (0, 1)):
                raise ValueError("each point is [x, y] or [x, y, label] with label 1 (object) or 0 (background)")
        return v

    @field_validator("box")
    @classmethod
    def _box(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and len(v) != 4:
            raise ValueError("a box is [x0, y0, x1, y1]")
        return v

    @field_validator("frames")
    @classmethod
    def _frames(cls, v: str | list[int] | None) -> str | list[int] | None:
        if isinstance(v, list) and (len(v) != 2 or v[0] > v[1]):
            raise ValueError("frames is [first, last] or \"first-last\"")
        if isinstance(v, str):
            parse_range(v)
        return v

    @model_validator(mode="after")
    def _prompts(self) -> ShotSpec:
        given = [k for k in ("mask", "points", "box", "prompts") if getattr(self, k)]
        if "prompts" in given and len(given) > 1:
            raise ValueError("'prompts' (a prompts file) cannot be combined with mask/points/box")
        if "track" in self.stages and not given and not self.session:
            raise ValueError("the track stage needs a prompt: 'mask', 'points', 'box', 'prompts' or an existing 'session'")
        if "track" not in self.stages and not self.session:
            raise ValueError(f"without the track stage the shot needs an existing 'session' (stages: {', '.join(self.stages)})")
        return self

    # --- derived -------------------------------------------------------------------------

    @property
    def frame_range(self) -> tuple[int | None, int | None]:
        if self.frames is None:
            return None, None
        if isinstance(self.frames, list):
            return int(self.frames[0]), int(self.frames[1])
        return parse_range(self.frames)

    def resolved(self, base: Path) -> ShotSpec:
        """A copy whose relative paths are made relative to ``base`` (the job file's folder)."""
        def fix(p: str | None) -> str | None:
            if p is None or "://" in p:
                return p
            q = Path(p).expanduser()
            return str(q if q.is_absolute() else (base / q))

        upd: dict[str, Any] = {k: fix(getattr(self, k)) for k in ("input", "out", "mask", "prompts", "session")}
        if self.ocio and not self.ocio.startswith("ocio://"):
            upd["ocio"] = fix(self.ocio)
        if self.depth.weights and self.depth.weights not in ("random",):
            upd["depth"] = self.depth.model_copy(update={"weights": fix(self.depth.weights)})
        return self.model_copy(update=upd)

    @property
    def session_path(self) -> Path:
        """The shot's project file (an existing ``session`` or ``<out>/<name>.roto.json``)."""
        return Path(self.session) if self.session else Path(self.out) / f"{self.name}.roto.json"


class JobFile(_Strict):
    """A batch job: ``shots`` (at least one), optional shared ``defaults``."""

    version: Literal[1] = 1
    defaults: dict[str, Any] = Field(default_factory=dict)
    shots: list[ShotSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> JobFile:
        names = [s.name for s in self.shots]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"shot names must be unique (repeated: {', '.join(dup)})")
        outs = [str(Path(s.out)) for s in self.shots]
        dup = sorted({o for o in outs if outs.count(o) > 1})
        if dup:
            raise ValueError(f"each shot needs its own 'out' folder (shared: {', '.join(dup)})")
        return self

    def shot(self, name: str) -> ShotSpec:
        for s in self.shots:
            if s.name == name:
                return s
        raise InputError(f"the job has no shot {name!r}", hint="Shots: " + ", ".join(s.name for s in self.shots))


def parse_range(text: str) -> tuple[int, int]:
    """``"1001-1100"`` → ``(1001, 1100)``; ``"1010"`` → ``(1010, 1010)``."""
    t = str(text).strip()
    try:
        if "-" in t[1:]:
            i = t.index("-", 1)
            lo, hi = int(t[:i]), int(t[i + 1:])
        else:
            lo = hi = int(t)
    except ValueError:
        raise ValueError(f"{text!r} is not a frame range like 1001-1100") from None
    if lo > hi:
        raise ValueError(f"the frame range {text!r} ends before it starts")
    return lo, hi


def _merge(defaults: dict[str, Any], shot: dict[str, Any]) -> dict[str, Any]:
    out = dict(defaults)
    for k, v in shot.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


def _read_raw(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("the job file does not exist", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"the job file cannot be read ({exc})", path=str(path)) from exc
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise InputError("YAML job files need the PyYAML package", path=str(path),
                             hint="pip install PyYAML, or write the job file as JSON") from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            raise InputError(f"the job file is not valid YAML{where}: {getattr(exc, 'problem', exc)}",
                             path=str(path)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"the job file is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
                         path=str(path)) from None


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "top level"


def validate_job(raw: Any, *, base: Path | None = None, source: str = "") -> JobFile:
    """Validate a job (already parsed JSON/YAML); relative paths resolve against ``base``."""
    if not isinstance(raw, dict):
        raise InputError("the job file must hold an object with a 'shots' list", path=source or None,
                         hint='Minimal form: {"shots": [{"name": ..., "input": ..., "mask": ..., "out": ...}]}')
    data = dict(raw)
    defaults = data.get("defaults") or {}
    if isinstance(defaults, dict) and isinstance(data.get("shots"), list):
        data["shots"] = [_merge(defaults, s) if isinstance(s, dict) else s for s in data["shots"]]
    try:
        job = JobFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:10]:
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{_where(tuple(err['loc']))}: {msg}")
        more = f" (and {exc.error_count() - 10} more)" if exc.error_count() > 10 else ""
        raise InputError("the job file is invalid: " + "; ".join(problems) + more, path=source or None,
                         hint="See docs/formats/batch-job.md for the job file format") from None
    if base is not None:
        job = job.model_copy(update={"shots": [s.resolved(base) for s in job.shots]})
    return job


def load_job(path: str | Path) -> JobFile:
    """Read and validate a job file (``.json``, ``.yaml``/``.yml``)."""
    p = Path(path).expanduser()
    return validate_job(_read_raw(p), base=p.resolve().parent, source=str(p))
