"""``run_batch``: every shot of a job, with progress per shot and overall; failures do not stop the others.

Locally the shots run one after the other, each streaming its stages (:mod:`engine.batch.shot`);
with ``ray=`` they run on a Ray cluster (:mod:`engine.batch.ray_exec`). Either way:

* a shot that fails is reported (its error as data: code, sentence, file, frame) and the next
  shot starts; the report's ``ok`` is False and ``roto batch`` exits with status 3;
* a re-run skips finished work, checked on the outputs (masks in the session, alpha files,
  export digests) and resumes unfinished shots where they stopped;
* cancelling (Ctrl-C) stops between frames, keeps everything finished and marks the remaining
  shots ``cancelled``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.batch.jobfile import JobFile, ShotSpec
from engine.batch.shot import ShotResult, error_dict, run_shot
from engine.errors import Cancelled, InputError
from engine.util.progress import CancelToken

STAGE_WEIGHT = {"track": 1.0, "matte": 3.0, "depth": 1.0, "export": 1.0}


@dataclass
class BatchEvent:
    """One progress update: a stage of a shot moved, or a shot started/finished."""

    shot: str
    index: int  # 0-based position of the shot in the run
    count: int  # shots in the run
    stage: str | None = None
    done: int = 0
    total: int = 0
    frame: int | None = None
    shot_fraction: float = 0.0
    overall_fraction: float = 0.0
    status: str = "running"  # running | done | failed | cancelled | skipped
    message: str = ""


BatchProgress = Callable[[BatchEvent], None]


@dataclass
class BatchReport:
    shots: list[ShotResult] = field(default_factory=list)
    seconds: float = 0.0
    executor: str = "local"
    budgets: dict[str, Any] = field(default_factory=dict)
    setup_seconds: float = 0.0  # connecting to / starting the Ray cluster

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.shots)

    @property
    def failed(self) -> list[ShotResult]:
        return [s for s in self.shots if s.status == "failed"]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "seconds": round(self.seconds, 3), "setup_seconds": round(self.setup_seconds, 3),
                "executor": self.executor, "budgets": self.budgets, "shots": [s.to_dict() for s in self.shots]}


class ProgressTracker:
    """Turns per-stage updates into shot and overall fractions (stages weighted by typical cost)."""

    def __init__(self, shots: list[ShotSpec], stages: dict[str, list[str]], callback: BatchProgress | None) -> None:
        self.shots = shots
        self.stages = stages
        self.callback = callback
        self.state: dict[str, dict[str, float]] = {s.name: {} for s in shots}
        self.finished: dict[str, str] = {}

    def shot_fraction(self, name: str) -> float:
        if name in self.finished:
            return 1.0
        wanted = self.stages[name]
        w = sum(STAGE_WEIGHT.get(s, 1.0) for s in wanted) or 1.0
        return sum(STAGE_WEIGHT.get(s, 1.0) * self.state[name].get(s, 0.0) for s in wanted) / w

    def overall(self) -> float:
        return sum(self.shot_fraction(s.name) for s in self.shots) / max(1, len(self.shots))

    def stage(self, name: str, stage: str, done: int, total: int, frame: int | None) -> None:
        self.state[name][stage] = 0.0 if total <= 0 else min(1.0, done / total)
        self._emit(name, stage=stage, done=done, total=total, frame=frame)

    def shot(self, name: str, status: str, message: str = "") -> None:
        if status in ("done", "failed", "cancelled", "skipped"):
            self.finished[name] = status
        self._emit(name, status=status, message=message)

    def _emit(self, name: str, **kw: Any) -> None:
        if self.callback is None:
            return
        idx = next(i for i, s in enumerate(self.shots) if s.name == name)
        self.callback(BatchEvent(shot=name, index=idx, count=len(self.shots), shot_fraction=self.shot_fraction(name),
                                 overall_fraction=self.overall(), **kw))


def select_shots(job: JobFile, names: list[str] | None) -> list[ShotSpec]:
    if not names:
        return list(job.shots)
    return [job.shot(n) for n in names]


def batch_cache(budgets: Any) -> Any:
    """The result cache of a batch run: the settings' folders and disk budget, per-kind memory budgets."""
    from engine.cache.store import Cache
    from engine.config import load_settings

    s = load_settings()
    return Cache(s.cache_bytes, s.cache_dir / "results", budgets.disk_bytes, budgets=budgets.result_kinds)


def run_batch(job: JobFile, *, shots: list[str] | None = None, stages: list[str] | None = None,
              frames: tuple[int, int] | None = None, force: bool = False, overlap: bool = True,
              ray: str | None = None, ray_workers: int | None = None, budgets: Any = None, cache: Any = None,
              progress: BatchProgress | None = None, cancel: CancelToken | None = None) -> BatchReport:
    """Run ``job`` (or the named ``shots``); see the module doc. ``stages`` overrides every shot's
    stages; ``frames`` runs only that chunk of the frame-parallel stages (farm tasks)."""
    from engine.cache.budgets import BATCH_TOTAL, resolve_budgets

    selected = select_shots(job, shots)
    budgets = budgets if budgets is not None else resolve_budgets(derived_cap=BATCH_TOTAL)
    report = BatchReport(executor="local" if ray is None else f"ray {ray}", budgets=budgets.to_dict())
    started = time.monotonic()
    if ray is not None:
        if frames is not None:
            raise InputError("--frames (a farm task's chunk) and --ray do not go together",
                             hint="On Ray the frame-parallel stages are split into chunks automatically")
        from engine.batch.ray_exec import run_batch_ray

        timing: dict[str, float] = {}
        report.shots = run_batch_ray(selected, address=ray, workers=ray_workers, stages=stages, force=force,
                                     budgets=budgets, progress=progress, cancel=cancel, timing=timing)
        report.seconds = time.monotonic() - started
        report.setup_seconds = timing.get("connect_s", 0.0)
        return report
    cache = cache if cache is not None else batch_cache(budgets)
    plan = {s.name: list(stages or s.stages) for s in selected}
    tracker = ProgressTracker(selected, plan, progress)
    cancelled = False
    for shot in selected:
        if cancelled or (cancel is not None and cancel.cancelled):
            res = ShotResult(shot.name, status="cancelled")
            report.shots.append(res)
            tracker.shot(shot.name, "cancelled")
            continue
        tracker.shot(shot.name, "running")
        try:
            res = run_shot(shot, cache=cache, frame_cache_bytes=budgets.memory["frames"], stages=plan[shot.name],
                           frames=frames, force=force, overlap=overlap, progress=tracker.stage, cancel=cancel)
        except Cancelled as exc:
            cancelled = True
            res = ShotResult(shot.name, status="cancelled", error=exc.to_dict())
        except Exception as exc:  # noqa: BLE001 - a shot's failure never stops the batch
            res = ShotResult(shot.name, status="failed", error=error_dict(exc))
        report.shots.append(res)
        tracker.shot(shot.name, res.status, (res.error or {}).get("message", ""))
    report.seconds = time.monotonic() - started
    return report
