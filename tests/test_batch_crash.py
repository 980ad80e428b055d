"""``kill -9`` in the middle of a batch: the re-run finishes the job, rewrites nothing finished, and
writes exactly the bytes of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.batch.journal import Journal
from tests.test_batch_kit import fingerprint, make_plate, results, shot, write_job

ROOT = Path(__file__).resolve().parents[1]


def _roto(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finished(folder: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of every finished output: deliverables and alpha files."""
    return {str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.rglob("*")
            if p.is_file() and ".roto-batch" not in p.parts and not p.name.startswith(".")
            and p.suffix in (".exr", ".png")}


def test_kill_9_mid_shot_then_resume(tmp_path):
    pattern, mask = make_plate(tmp_path, frames=16)
    env = dict(os.environ, ROTO_CACHE_DIR=str(tmp_path / "cache"))
    # the reference: the same job, uninterrupted, in its own process
    ref_job = write_job(tmp_path / "ref.json", [shot("sh010", pattern, mask, tmp_path / "ref/sh010")])
    ref = _roto(["batch", str(ref_job)], env)
    # the victim: a second shot after it, both slowed down so the kill lands mid-run
    job = write_job(tmp_path / "job.json", [shot("sh010", pattern, mask, tmp_path / "out/sh010"),
                                            shot("sh020", pattern, mask, tmp_path / "out/sh020")])
    slow = dict(env, ROTO_BATCH_THROTTLE_S="0.25")
    victim = _roto(["batch", str(job)], slow)
    journal = Journal(tmp_path / "out/sh010")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        matte_done = [e for e in journal.events() if e.get("event") == "done" and e.get("stage") == "matte"]
        exported = list((tmp_path / "out/sh010").glob("sh010.*.exr"))
        if len(matte_done) >= 2 and exported:
            break
        assert victim.poll() is None, victim.stdout.read().decode()
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    events = [e["event"] for e in journal.events()]
    assert "shot_done" not in events  # it really died mid-shot
    assert not (tmp_path / "out/sh020").exists() or "shot_done" not in [
        e["event"] for e in Journal(tmp_path / "out/sh020").events()]
    # finished = exported frames and the alpha of the matte chunks the journal records as done;
    # the chunk in flight (some of its alpha files written) is matted again, from its warm-up
    done_frames = set()
    for e in journal.events():
        if e.get("event") == "done" and e.get("stage") == "matte":
            a, b = (int(x) for x in e["unit"].split("-"))
            done_frames.update(range(a, b + 1))
    before = {k: v for k, v in _finished(tmp_path / "out/sh010").items()
              if k.endswith(".exr") or int(Path(k).name.split(".")[0]) in done_frames}
    assert any(k.endswith(".exr") for k in before) and sum(k.endswith(".png") for k in before) >= 8

    again = _roto(["batch", str(job), "--json"], env)
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out.decode()
    report = json.loads(out.decode()[out.decode().index("{"):])
    assert [s["status"] for s in report["shots"]] == ["done", "done"]
    after = _finished(tmp_path / "out/sh010")
    assert all(after[k] == v for k, v in before.items())  # nothing finished was rewritten
    assert len(after) > len(before)

    ref.communicate(timeout=300)
    assert ref.returncode == 0
    assert fingerprint(tmp_path / "out/sh010") == fingerprint(tmp_path / "ref/sh010")
    assert results(tmp_path / "out/sh010/sh010.roto.json")["results"] == \
        results(tmp_path / "ref/sh010/sh010.roto.json")["results"]
    assert not list((tmp_path / "out/sh010").rglob(".*.tmp*"))  # no partial files left behind
