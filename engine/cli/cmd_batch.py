"""``roto batch``: run a job file of shots unattended — here, on a Ray cluster, or through a render farm.

    roto batch JOBFILE [--shot NAME ...] [--stages track,matte,depth,export] [--force]
                       [--ray auto|local|ADDRESS [--ray-workers N]] [--frames A-B]
                       [--memory-budget SIZE] [--cache KIND=SIZE,...] [--report FILE] [--json]
    roto batch JOBFILE --check                       validate the job file and its inputs, run nothing
    roto batch JOBFILE --farm deadline --farm-out DIR   write Deadline submission files instead

Progress per shot and overall goes to stderr. A failed shot is reported and the others go on;
a re-run skips finished work (outputs are checked) and resumes unfinished shots. Exit status:
0 every shot done, 3 one or more shots failed, 2 the job file or options are wrong, 130
interrupted (finished outputs are kept). Job file format: docs/formats/batch-job.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from engine.errors import InputError

EXIT_SHOTS_FAILED = 3


def register(sub) -> None:
    p = sub.add_parser("batch", help="run a job file of shots (track, matte, depth, export) unattended",
                       description=__doc__.split("\n\n")[0] + ".", formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="Job file format: docs/formats/batch-job.md. Exit status 3 = some shots failed.")
    p.add_argument("jobfile", metavar="JOBFILE", help="the job file (.json, .yaml/.yml)")
    p.add_argument("--shot", action="append", metavar="NAME", help="run only this shot (repeatable)")
    p.add_argument("--stages", metavar="LIST", help="override every shot's stages, e.g. track,matte")
    p.add_argument("--frames", metavar="A-B",
                   help="only this chunk of the frame-parallel stages (matte, export): what a farm task runs")
    p.add_argument("--force", action="store_true", help="redo outputs that are already valid")
    p.add_argument("--check", action="store_true",
                   help="validate the job file, open every plate, mask and prompts file and check the named "
                        "backends; run nothing")
    p.add_argument("--sequential", action="store_true",
                   help="run a shot's stages one after the other instead of streaming them together")
    g = p.add_argument_group("scale-out")
    g.add_argument("--ray", metavar="auto|local|ADDRESS",
                   help="run on Ray: auto = this machine's cluster (or a local one), local, or a cluster address")
    g.add_argument("--ray-workers", type=int, metavar="N", help="CPUs of a local Ray cluster (default: all)")
    g.add_argument("--farm", choices=("deadline",), help="write render-farm submission files instead of running")
    g.add_argument("--farm-out", metavar="DIR", help="folder for the submission files (default: JOBFILE.deadline)")
    g.add_argument("--farm-roto", metavar="CMD", help="the roto command on the farm workers (default: this install's)")
    g.add_argument("--farm-pool", default="", help="Deadline pool")
    g.add_argument("--farm-group", default="", help="Deadline group")
    g.add_argument("--farm-priority", type=int, default=50, help="Deadline priority (default 50)")
    g.add_argument("--farm-chunk", type=int, metavar="N", help="frames per farm task (default: the matte chunk)")
    g.add_argument("--farm-info", action="append", metavar="KEY=VALUE", help="extra Deadline job info key (repeatable)")
    c = p.add_argument_group("memory")
    c.add_argument("--memory-budget", metavar="SIZE", help="memory all caches may use, e.g. 3G (default: 15%% of RAM, at most 1G)")
    c.add_argument("--cache", metavar="KIND=SIZE,...",
                   help="per-kind cache budgets: frames, embeddings, masks, mattes, depth (e.g. frames=512M)")
    o = p.add_argument_group("output")
    o.add_argument("--report", metavar="FILE", help="write the run's report (JSON) to FILE")
    o.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.set_defaults(func=run)


def _budgets(args: argparse.Namespace):
    from engine.cache.budgets import BATCH_TOTAL, parse_budget_spec, parse_size, resolve_budgets

    total = parse_size(args.memory_budget, "--memory-budget") if args.memory_budget else None
    return resolve_budgets(overrides=parse_budget_spec(args.cache) if args.cache else None, memory_budget=total,
                           derived_cap=BATCH_TOTAL)


def run(args: argparse.Namespace) -> int:
    from engine.batch.jobfile import load_job, parse_range

    job = load_job(args.jobfile)
    if args.shot:
        for n in args.shot:
            job.shot(n)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()] if args.stages else None
    if stages:
        from engine.batch.shot import st_order

        st_order(stages)
    frames = None
    if args.frames:
        try:
            frames = parse_range(args.frames)
        except ValueError as exc:
            raise InputError(f"--frames: {exc}", hint="Write it like 1001-1050") from None
    if args.farm:
        return _farm(job, args)
    if args.check:
        return _check(job, args)
    budgets = _budgets(args)
    from engine.cli.common import cancel_on_interrupt
    from engine.util.memory import return_freed_memory

    return_freed_memory()  # a long job's freed frame buffers go back to the system (bounded RSS)

    with cancel_on_interrupt() as cancel, _Printer(enabled=not args.json) as printer:
        from engine.batch.runner import run_batch

        report = run_batch(job, shots=args.shot, stages=stages, frames=frames, force=args.force,
                           overlap=not args.sequential, ray=args.ray, ray_workers=args.ray_workers, budgets=budgets,
                           progress=printer, cancel=cancel)
    if args.report:
        from engine.util.atomic import write_text

        write_text(args.report, json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n")
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        _summary(report)
    if any(s.status == "cancelled" for s in report.shots):
        from engine.errors import Cancelled

        raise Cancelled("interrupted; finished outputs are kept, re-run the same command to resume")
    return 0 if report.ok else EXIT_SHOTS_FAILED


def _check(job, args: argparse.Namespace) -> int:
    """Open every shot's plate, prompts and models the way the run does, without tracking anything;
    print ``NAME: ok (...)`` or every problem of the shot, each with the sentence the run would give."""
    bad = 0
    for shot in job.shots if not args.shot else [job.shot(n) for n in args.shot]:
        info, problems = check_shot(shot)
        if problems:
            bad += 1
            for p in problems:
                print(f"{shot.name}: {p}")
        else:
            print(f"{shot.name}: ok ({info}; stages {', '.join(shot.stages)}; out {shot.out})")
    return 0 if not bad else EXIT_SHOTS_FAILED


class _CheckSegmenter:
    """Stands in for the shot's tracker while ``--check`` applies its prompts: every prompt is checked
    (frames, coordinates, mask files, sizes) by the session's own code, but no model is loaded or run."""

    def __init__(self, name: str) -> None:
        from engine.backends.base import BackendInfo

        self.info = BackendInfo(name, name, ("point", "box", "mask", "text", "exemplar"), False)
        self.cache_token = name
        self._shape = (1, 1)

    def init_state(self, clip):
        self._shape = (clip.info.height, clip.info.width)

    def add_prompt(self, state, frame, obj, prompt):
        import numpy as np

        from engine.backends.base import MaskOut

        return MaskOut(np.ones(self._shape, bool), 1.0)


def check_shot(shot) -> tuple[str, list[str]]:
    """``(plate description, problems)`` for one shot: plate (first frame decoded), existing session,
    mask and prompts (decoded, validated and sized against the plate by the run's code), and the
    tracking, matting and depth backends the shot names (available here, with the registry's reason)."""
    from engine.errors import RotoError
    from engine.media.clip import open_clip

    problems: list[str] = []
    info = ""
    clip = None
    lo, hi = shot.frame_range
    try:
        clip = open_clip(shot.input, colourspace=shot.colourspace, missing=shot.missing, in_point=lo,
                         out_point=hi, fps=shot.fps, ocio_config=shot.ocio, cache_bytes=0)
        info = f"{clip.info.width}x{clip.info.height} {clip.first}-{clip.last}"
        clip.read(clip.first)
    except RotoError as exc:
        problems.append(exc.sentence())
    for p in (shot.mask, shot.prompts, shot.session):
        if p and not Path(p).is_file():
            problems.append(InputError("the file does not exist", path=p).sentence())
    if shot.session and Path(shot.session).is_file():
        try:
            from engine.session import project

            project.load(shot.session)
        except RotoError as exc:
            problems.append(exc.sentence())
    if clip is not None and not problems and (shot.mask or shot.points or shot.box or shot.prompts):
        try:
            from engine.batch.stages import apply_shot_prompts
            from engine.session.session import Session

            session = Session.create(shot.input, clip=clip, backend=_CheckSegmenter(shot.backend), autosave=False)
            apply_shot_prompts(session, shot)
        except RotoError as exc:
            problems.append(exc.sentence())
    if clip is not None:
        clip.close()
    checks = []
    if "track" in shot.stages:
        from engine.backends.registry import resolve_segmenter

        checks.append(lambda: resolve_segmenter(shot.backend))
    if "matte" in shot.stages:
        from engine.matting.registry import resolve_matter

        checks.append(lambda: resolve_matter(shot.matte.backend))
    if "depth" in shot.stages:
        from engine.depth.registry import resolve_depth_estimator

        checks.append(lambda: resolve_depth_estimator(shot.depth.model, weights_given=bool(shot.depth.weights)))
    for check in checks:
        try:
            check()
        except RotoError as exc:
            problems.append(exc.sentence())
    return info, problems


def _farm(job, args: argparse.Namespace) -> int:
    from engine.batch.farm import FarmOptions, default_roto_command, parse_keyvalues, write_deadline

    out = args.farm_out or (str(Path(args.jobfile).with_suffix("")) + ".deadline")
    opts = FarmOptions(roto=args.farm_roto or default_roto_command(), pool=args.farm_pool, group=args.farm_group,
                       priority=args.farm_priority, chunk=args.farm_chunk, extra=parse_keyvalues(args.farm_info))
    files = write_deadline(job, args.jobfile, out, opts, shots=args.shot)
    print(f"{len(files) - 1} Deadline files and submit.py written to {out}")
    print(f"submit with: python {Path(out) / 'submit.py'}")
    return 0


class _Printer:
    """Progress on stderr: a rich bar per shot plus an overall bar on a terminal, else a line per change."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.tty = enabled and sys.stderr.isatty()
        self._bar = None
        self._tasks: dict[str, int] = {}
        self._last: dict[str, float] = {}

    def __enter__(self) -> _Printer:
        if self.tty:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                                 TextColumn("{task.fields[stage]}"), TimeRemainingColumn(), transient=False)
            self._bar.__enter__()
            self._tasks["*"] = self._bar.add_task("overall", total=1.0, stage="")
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def __call__(self, ev) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            if ev.shot not in self._tasks:
                self._tasks[ev.shot] = self._bar.add_task(ev.shot, total=1.0, stage="")
            stage = ev.status if ev.status != "running" else (f"{ev.stage} {ev.done}/{ev.total}" if ev.stage else "")
            self._bar.update(self._tasks[ev.shot], completed=ev.shot_fraction, stage=stage)
            self._bar.update(self._tasks["*"], completed=ev.overall_fraction,
                             stage=f"{sum(1 for _ in self._tasks) - 1}/{ev.count} shots started")
            return
        now = time.monotonic()
        if ev.stage and ev.status == "running" and ev.done < ev.total and now - self._last.get(ev.shot, 0) < 5.0:
            return
        self._last[ev.shot] = now
        what = f"{ev.stage} {ev.done}/{ev.total}" if ev.stage else ev.status
        msg = f": {ev.message}" if ev.message else ""
        print(f"roto batch: [{ev.index + 1}/{ev.count}] {ev.shot} {what} (shot {ev.shot_fraction:.0%}, "
              f"overall {ev.overall_fraction:.0%}){msg}", file=sys.stderr, flush=True)


def _summary(report) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    table = Table(title=f"roto batch: {sum(s.ok for s in report.shots)}/{len(report.shots)} shots done "
                        f"in {report.seconds:.1f} s ({report.executor})")
    for col in ("shot", "status", "frames", "seconds", "stages"):
        table.add_column(col)
    for s in report.shots:
        stages = "; ".join(f"{k} {v.done}/{v.total}" + (f" ({v.note})" if v.note else "") for k, v in s.stages.items())
        style = {"done": "green", "failed": "red"}.get(s.status, "yellow")
        frames = f"{s.frames[0]}-{s.frames[1]}" if s.frames else ""
        table.add_row(escape(s.name), f"[{style}]{escape(s.status)}[/{style}]", frames, f"{s.seconds:.1f}",
                      escape(stages))  # engine text ("pip install 'x[sam3]'") is not markup
    console.print(table)
    for s in report.shots:
        for note in s.notes:
            console.print(f"{s.name}: {note}", markup=False)
    for s in report.shots:
        if s.error:
            console.print(f"[red]{escape(s.name)}[/red]: {escape(str(s.error.get('text') or s.error.get('message')))}")
