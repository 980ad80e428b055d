"""Benchmarks behind ``roto bench SUITE``: our code against the raw library, in the same run.

Each suite is a module ``engine.bench.<name>`` exposing ``DESCRIPTION`` and
``run(*, workdir=None, size=None, frames=None, repeat=1, keep=False, progress=None) -> BenchReport``.
A suite generates its own media (in a temporary folder, or ``workdir``), times our code path
and the plain-library baseline on the same files in the same process, and reports frames per
second and their ratio (ours / raw) against a goal. Register a new suite in :data:`SUITES`.

Numbers depend on the machine and its load: compare ratios, not absolute frame rates, and
compare absolute rates only between runs on the same machine.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.errors import InputError

#: suite name -> module
SUITES: dict[str, str] = {
    "io": "engine.bench.io",
    "export": "engine.bench.export",
    "track": "engine.bench.track",
    "shapes": "engine.bench.shapes",
    "pipeline": "engine.bench.pipeline",
}


@dataclass
class BenchRow:
    """One measured case: our path and the raw baseline on the same data."""

    name: str  # short key, e.g. "video", "exr"
    label: str  # what was measured, for people
    frames: int
    width: int
    height: int
    ours_fps: float
    raw_fps: float
    goal: float = 0.8  # minimum ours/raw ratio
    ours: str = ""  # description of our code path
    raw: str = ""  # description of the baseline
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.ours_fps / self.raw_fps if self.raw_fps > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.ratio >= self.goal

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ours_fps"] = round(self.ours_fps, 3)
        data["raw_fps"] = round(self.raw_fps, 3)
        data["ratio"] = round(self.ratio, 4)
        data["ok"] = self.ok
        return data


@dataclass
class BenchReport:
    """What a suite measured, plus the machine it ran on."""

    suite: str
    rows: list[BenchRow]
    params: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=lambda: machine_info())
    workdir: str | None = None

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def row(self, name: str) -> BenchRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "ok": self.ok,
            "params": {k: _plain(v) for k, v in self.params.items()},
            "machine": self.machine,
            "workdir": self.workdir,
            "rows": [r.to_dict() for r in self.rows],
        }


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def machine_info() -> dict[str, Any]:
    """CPU count, platform and library versions: the context a number needs."""
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }
    try:
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        pass
    for mod, key in (("numpy", "numpy"), ("av", "pyav"), ("OpenEXR", "openexr")):
        try:
            info[key] = getattr(importlib.import_module(mod), "__version__", "?")
        except Exception:  # noqa: BLE001 - a missing library is reported by the suite itself
            info[key] = None
    return info


def bench_folder(workdir: Any, suite: str) -> tuple[Any, bool]:
    """The folder a suite writes its media to: ``workdir`` (created; kept), or a new temporary folder
    (``temp`` True: the suite removes it unless asked to keep it). Returns ``(Path, temp)``."""
    import tempfile
    from pathlib import Path

    temp = workdir is None
    root = Path(tempfile.mkdtemp(prefix=f"roto-bench-{suite}-")) if temp else Path(workdir).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root, temp


def suite_names() -> tuple[str, ...]:
    return tuple(SUITES)


def get_suite(name: str):
    """The suite module for ``name`` (raises :class:`InputError` for unknown names)."""
    module = SUITES.get(name)
    if module is None:
        raise InputError(f"there is no benchmark suite {name!r}", hint=f"Choose one of: {', '.join(SUITES)}")
    return importlib.import_module(module)


def run_suite(name: str, *, progress: Callable[[str], None] | None = None, **options: Any) -> BenchReport:
    """Run one suite; ``options`` are the suite's ``run`` keywords (workdir, size, frames, repeat, keep)."""
    return get_suite(name).run(progress=progress, **options)
