"""Render-farm submission files: Deadline job/plugin info pairs that call ``roto batch`` on frame chunks.

For each shot of a job, a chain of Deadline jobs (CommandLine plugin), each depending on the one
before it::

    <shot>_1_track    1 task    roto batch JOB --shot S --stages track,depth
    <shot>_2_chunks   N tasks   roto batch JOB --shot S --stages matte,export --frames <STARTFRAME>-<ENDFRAME>
    <shot>_3_finish   1 task    roto batch JOB --shot S           (checks every output, records the
                                                                   matte in the project file)

(jobs are left out when the shot has none of their stages). The chunk job's ``ChunkSize`` is the
shot's matte chunk (or its export chunk without matting) and its frame list starts at the shot's
first frame, so each farm task matches the engine's own chunk plan: a task writes exactly the
bytes a single-machine run writes, and a re-queued task skips what is already valid.

Files written to ``out_dir``::

    <shot>_<n>_<step>.job        job info  (key=value; JobDependencies filled at submission)
    <shot>_<n>_<step>.plugin     plugin info (Executable, Arguments, StartupDirectory)
    submit.py                    submits every pair in order with ``deadlinecommand`` and fills
                                 each JobDependencies with the job ID its predecessor got

``deadlinecommand JOBINFO PLUGININFO`` prints ``JobID=<id>`` on success; ``submit.py`` reads it.
Frame-chunk runs never write the shot's project file, so chunk tasks of one shot can run on
several machines at once; the output folder must be on storage every worker sees.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.batch.jobfile import JobFile, ShotSpec
from engine.errors import InputError
from engine.util.atomic import write_text

DEPENDENCY_PLACEHOLDER = "{previous}"


@dataclass
class FarmJob:
    """One Deadline job: its job info and plugin info keys."""

    name: str
    job_info: dict[str, str]
    plugin_info: dict[str, str]
    depends_on_previous: bool = False

    def job_text(self) -> str:
        return "".join(f"{k}={v}\n" for k, v in self.job_info.items())

    def plugin_text(self) -> str:
        return "".join(f"{k}={v}\n" for k, v in self.plugin_info.items())


@dataclass
class FarmOptions:
    roto: str = "roto"  # the command the farm workers run (a path to roto, or "python -m engine")
    pool: str = ""
    group: str = ""
    priority: int = 50
    batch_name: str = ""
    chunk: int | None = None  # frames per task (default: the shot's matte chunk, else its export chunk)
    startup_dir: str = ""
    extra: dict[str, str] = field(default_factory=dict)  # more job info keys (e.g. LimitGroups)


def _frame_range(shot: ShotSpec) -> tuple[int, int]:
    lo, hi = shot.frame_range
    if lo is not None and hi is not None:
        return lo, hi
    from engine.media.clip import open_clip

    clip = open_clip(shot.input, missing=shot.missing, fps=shot.fps, colourspace=shot.colourspace,
                     ocio_config=shot.ocio, in_point=lo, out_point=hi, cache_bytes=0)
    try:
        return clip.first, clip.last
    finally:
        clip.close()


def _split(command: str) -> tuple[str, list[str]]:
    parts = shlex.split(command)
    if not parts:
        raise InputError("the farm command is empty", hint="Pass --farm-roto with the roto command on the workers")
    return parts[0], parts[1:]


def deadline_jobs(job: JobFile, job_path: str | os.PathLike[str], options: FarmOptions | None = None,
                  shots: list[str] | None = None) -> list[FarmJob]:
    """The Deadline jobs for ``job`` (see the module doc), in submission order."""
    opts = options or FarmOptions()
    exe, pre = _split(opts.roto)
    job_file = str(Path(job_path).expanduser().resolve())
    selected = [job.shot(n) for n in shots] if shots else list(job.shots)
    batch = opts.batch_name or f"roto {Path(job_file).stem}"
    out: list[FarmJob] = []
    for shot in selected:
        lo, hi = _frame_range(shot)
        base_args = [*pre, "batch", job_file, "--shot", shot.name]
        common = {"Plugin": "CommandLine", "BatchName": batch, "Priority": str(int(opts.priority)),
                  "OutputDirectory0": shot.out, "Comment": f"Ultimate Rotoscopy shot {shot.name}"}
        if opts.pool:
            common["Pool"] = opts.pool
        if opts.group:
            common["Group"] = opts.group
        common.update(opts.extra)
        steps: list[tuple[str, list[str], str, int]] = []
        first = [s for s in shot.stages if s in ("track", "depth")]
        chunked = [s for s in shot.stages if s in ("matte", "export")]
        if first:
            steps.append(("track" if "track" in first else "depth", ["--stages", ",".join(first)], str(lo), 1))
        if chunked:
            size = opts.chunk or (shot.matte.chunk if "matte" in chunked else shot.export.chunk)
            steps.append(("chunks", ["--stages", ",".join(chunked), "--frames", "<STARTFRAME>-<ENDFRAME>"],
                          f"{lo}-{hi}", int(size)))
        steps.append(("finish", [], str(lo), 1))
        for i, (step, args, frames, size) in enumerate(steps):
            name = f"{shot.name}_{i + 1}_{step}"
            info = {"Name": f"{shot.name} {step}", **common, "Frames": frames, "ChunkSize": str(size)}
            if i > 0:
                info["JobDependencies"] = DEPENDENCY_PLACEHOLDER
            plugin = {"Executable": exe, "Arguments": " ".join(_quote(a) for a in (*base_args, *args)),
                      "Shell": "default", "ShellExecute": "False"}
            if opts.startup_dir:
                plugin["StartupDirectory"] = opts.startup_dir
            out.append(FarmJob(name, info, plugin, depends_on_previous=i > 0))
    return out


def _quote(arg: str) -> str:
    """Deadline's argument string: our tokens stay bare, anything with spaces gets <QUOTE>s."""
    if arg and not any(c.isspace() for c in arg):
        return arg
    return f"<QUOTE>{arg}<QUOTE>"


SUBMIT_SCRIPT = '''#!/usr/bin/env python3
"""Submit the Deadline jobs beside this file, in order, each depending on the one before it
within a shot. Written by `roto batch --farm deadline`; needs `deadlinecommand` on PATH
(or DEADLINE_COMMAND). Standard library only."""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ORDER = {order!r}
DEPENDENT = {dependent!r}
COMMAND = os.environ.get("DEADLINE_COMMAND", "deadlinecommand")


def main(dry_run=False):
    previous = None
    for name in ORDER:
        job_path = os.path.join(HERE, name + ".job")
        with open(job_path) as fh:
            text = fh.read()
        if DEPENDENT[name]:
            text = text.replace("{placeholder}", previous or "")
        else:
            previous = None
        filled = os.path.join(HERE, name + ".submit.job")
        with open(filled, "w") as fh:
            fh.write(text)
        cmd = [COMMAND, filled, os.path.join(HERE, name + ".plugin")]
        if dry_run:
            print(" ".join(cmd))
            previous = "JOBID-" + name
            continue
        out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
        found = re.search(r"JobID=(\\S+)", out)
        if not found:
            sys.exit("submission of %s failed:\\n%s" % (name, out))
        previous = found.group(1)
        print("%s: %s" % (name, previous))


if __name__ == "__main__":
    main(dry_run="--dry-run" in sys.argv)
'''


def write_deadline(job: JobFile, job_path: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                   options: FarmOptions | None = None, shots: list[str] | None = None) -> list[Path]:
    """Write the job/plugin info files and ``submit.py`` to ``out_dir``; returns the files written."""
    jobs = deadline_jobs(job, job_path, options, shots)
    folder = Path(out_dir).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for j in jobs:
        for suffix, text in ((".job", j.job_text()), (".plugin", j.plugin_text())):
            p = folder / f"{j.name}{suffix}"
            write_text(p, text)
            written.append(p)
    script = SUBMIT_SCRIPT.format(order=[j.name for j in jobs], dependent={j.name: j.depends_on_previous for j in jobs},
                                  placeholder=DEPENDENCY_PLACEHOLDER)
    p = folder / "submit.py"
    write_text(p, script)
    os.chmod(p, 0o755)
    written.append(p)
    return written


def default_roto_command() -> str:
    """``roto`` beside this Python when installed there, else ``python -m engine``."""
    exe = Path(sys.executable).with_name("roto")
    return str(exe) if exe.is_file() else f"{sys.executable} -m engine"


def parse_keyvalues(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for it in items or []:
        if "=" not in it:
            raise InputError(f"--farm-info {it!r} is not KEY=VALUE")
        k, v = it.split("=", 1)
        out[k.strip()] = v.strip()
    return out
