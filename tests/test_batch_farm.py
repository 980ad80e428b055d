"""Deadline submission files: job/plugin info content, chunking aligned with the engine's, the submit script."""

from __future__ import annotations

import subprocess
import sys

from engine.batch.farm import FarmOptions, deadline_jobs, write_deadline
from engine.batch.jobfile import validate_job
from engine.cli.main import main


def _job(tmp_path):
    return validate_job({"shots": [
        {"name": "sh010", "input": "/plates/sh010.####.exr", "frames": "1001-1120", "mask": "/p/sh010.png",
         "stages": ["track", "matte", "export"], "out": "/out/sh010", "matte": {"chunk": 50}},
        {"name": "sh020", "input": "/plates/sh020.####.exr", "frames": [1, 30], "mask": "/p/sh020.png",
         "stages": ["track", "depth", "export"], "out": "/out/my shots/sh020", "export": {"chunk": 8}},
    ]})


def _parse(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_deadline_jobs_chain_track_chunks_and_finish(tmp_path):
    jobs = deadline_jobs(_job(tmp_path), tmp_path / "job.json",
                         FarmOptions(roto="/opt/roto/bin/roto", pool="gpu", group="roto", priority=70,
                                     extra={"LimitGroups": "roto-licence"}))
    assert [j.name for j in jobs] == ["sh010_1_track", "sh010_2_chunks", "sh010_3_finish",
                                      "sh020_1_track", "sh020_2_chunks", "sh020_3_finish"]
    track, chunks, finish = jobs[:3]
    ti = _parse(track.job_text())
    assert ti["Plugin"] == "CommandLine" and ti["Frames"] == "1001" and ti["ChunkSize"] == "1"
    assert ti["Pool"] == "gpu" and ti["Group"] == "roto" and ti["Priority"] == "70"
    assert ti["LimitGroups"] == "roto-licence" and ti["OutputDirectory0"] == "/out/sh010"
    assert "JobDependencies" not in ti
    tp = _parse(track.plugin_text())
    job_file = str((tmp_path / "job.json").resolve())
    assert tp["Executable"] == "/opt/roto/bin/roto"
    assert tp["Arguments"] == f"batch {job_file} --shot sh010 --stages track"
    ci = _parse(chunks.job_text())
    assert ci["Frames"] == "1001-1120" and ci["ChunkSize"] == "50"  # tasks = the engine's matte chunks
    assert ci["JobDependencies"] == "{previous}" and chunks.depends_on_previous
    assert _parse(chunks.plugin_text())["Arguments"].endswith(
        "--shot sh010 --stages matte,export --frames <STARTFRAME>-<ENDFRAME>")
    assert _parse(finish.plugin_text())["Arguments"] == f"batch {job_file} --shot sh010"
    # a shot with depth: depth with the tracking job; export chunks of its export chunk size
    s2 = jobs[3:]
    assert _parse(s2[0].plugin_text())["Arguments"].endswith("--stages track,depth")
    assert _parse(s2[1].job_text())["ChunkSize"] == "8" and _parse(s2[1].job_text())["Frames"] == "1-30"
    assert _parse(s2[1].job_text())["OutputDirectory0"] == "/out/my shots/sh020"


def test_written_files_and_submit_script(tmp_path):
    files = write_deadline(_job(tmp_path), tmp_path / "job.json", tmp_path / "dl", FarmOptions(roto="roto"),
                           shots=["sh020"])
    names = sorted(p.name for p in files)
    assert names == ["sh020_1_track.job", "sh020_1_track.plugin", "sh020_2_chunks.job", "sh020_2_chunks.plugin",
                     "sh020_3_finish.job", "sh020_3_finish.plugin", "submit.py"]
    fake = tmp_path / "deadlinecommand"
    fake.write_text("#!/bin/sh\necho \"Submitting $1\"\necho \"Result=Success\"\n"
                    "echo \"JobID=id-$(basename $1 .submit.job)\"\n")
    fake.chmod(0o755)
    out = subprocess.run([sys.executable, str(tmp_path / "dl/submit.py")], capture_output=True, text=True,
                         env={"DEADLINE_COMMAND": str(fake), "PATH": "/usr/bin:/bin"}, check=True).stdout
    assert out.splitlines() == ["sh020_1_track: id-sh020_1_track", "sh020_2_chunks: id-sh020_2_chunks",
                                "sh020_3_finish: id-sh020_3_finish"]
    filled = _parse((tmp_path / "dl/sh020_2_chunks.submit.job").read_text())
    assert filled["JobDependencies"] == "id-sh020_1_track"
    assert _parse((tmp_path / "dl/sh020_3_finish.submit.job").read_text())["JobDependencies"] == "id-sh020_2_chunks"


def test_cli_writes_the_files(tmp_path, capsys):
    import json

    (tmp_path / "job.json").write_text(json.dumps({"shots": [
        {"name": "a", "input": "/p/a.####.exr", "frames": "1-10", "mask": "/m.png", "out": "/o/a"}]}))
    assert main(["batch", str(tmp_path / "job.json"), "--farm", "deadline", "--farm-roto", "python -m engine",
                 "--farm-info", "Whitelist=node1"]) == 0
    folder = tmp_path / "job.deadline"
    assert (folder / "submit.py").is_file()
    info = _parse((folder / "a_2_chunks.job").read_text())
    assert info["Whitelist"] == "node1" and info["ChunkSize"] == "10"  # no matte stage: the export chunk
    plugin = _parse((folder / "a_2_chunks.plugin").read_text())
    assert plugin["Executable"] == "python" and plugin["Arguments"].startswith("-m engine batch ")
    assert "submit with" in capsys.readouterr().out


def test_running_the_farm_tasks_gives_the_single_machine_bytes(tmp_path):
    """Play the farm: run every task of every job in order, as Deadline would (tokens substituted)."""
    import json
    import shlex

    from engine.batch.runner import run_batch
    from tests.test_batch_kit import fingerprint, make_plate, shot

    pattern, mask = make_plate(tmp_path)
    job_path = tmp_path / "job.json"
    job_path.write_text(json.dumps({"shots": [shot("f", pattern, mask, str(tmp_path / "farm"))]}))
    ref = validate_job({"shots": [shot("f", pattern, mask, str(tmp_path / "ref"))]})
    assert run_batch(ref).ok
    for j in deadline_jobs(validate_job(json.loads(job_path.read_text())), job_path, FarmOptions(roto="roto")):
        info, args = _parse(j.job_text()), _parse(j.plugin_text())["Arguments"]
        frames, size = info["Frames"], int(info["ChunkSize"])
        lo, hi = (int(x) for x in frames.split("-")) if "-" in frames else (int(frames), int(frames))
        for a in range(lo, hi + 1, size):
            b = min(hi, a + size - 1)
            argv = shlex.split(args.replace("<STARTFRAME>", str(a)).replace("<ENDFRAME>", str(b)))
            assert main(argv) == 0, (j.name, argv)
    assert fingerprint(tmp_path / "farm") == fingerprint(tmp_path / "ref")
