"""A hard kill (``kill -9``) during tracking loses at most the last autosave interval: the session
file holds the frames finished so far and a re-run resumes from them instead of from the keyframe.
The kill is simulated deterministically: the tracking process ``os._exit``s from its progress
callback after a fixed number of frames (the autosave interval is set to 0 so every frame is saved)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.test_batch_kit import make_plate, shot

ROOT = Path(__file__).resolve().parents[1]
FRAMES, KILL_AT = 12, 6


def _run_and_die(code: str, tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import os, sys
        import engine.session.session as ss
        ss.AUTOSAVE_SECONDS = 0.0  # save between every two frames (the default is every 10 s)
        from engine.cache.store import Cache, set_default_cache
        set_default_cache(Cache(64 << 20))  # memory only: the resume must come from the session file
        seen = [0]
        def die_after(done):
            if done >= %d:
                os._exit(9)  # like kill -9: no finally, no atexit
    """ % KILL_AT) + textwrap.dedent(code)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 9, proc.stdout + proc.stderr


def _count_backend_frames(session) -> list[int]:
    computed: list[int] = []
    backend = session.backend
    orig = backend.propagate

    def counting(state, start, end, direction, objs):
        for pf in orig(state, start, end, direction, objs):
            computed.append(pf.frame)
            yield pf

    backend.propagate = counting
    return computed


def test_session_killed_mid_propagation_keeps_frames_and_resumes(tmp_path):
    from engine.cache.store import Cache
    from engine.session.session import Session

    pattern, mask = make_plate(tmp_path, frames=FRAMES)
    path = tmp_path / "s.roto.json"
    _run_and_die(f"""
        import cv2
        from engine.session.session import Session
        s = Session.create({pattern!r}, path={str(path)!r}, backend="classical")
        o = s.add_object("fg")
        s.add_mask(o.id, 1001, cv2.imread({mask!r}, 0) > 127)
        s.propagate(direction="forward", progress=lambda p: die_after(p.done))
    """, tmp_path)
    doc = json.loads(path.read_text())
    tracked = {r["frame"] for r in doc["results"]}
    assert len(tracked - {1001}) >= KILL_AT - 1  # the frames finished before the kill are on disk

    s = Session.open(path, cache=Cache(64 << 20))
    computed = _count_backend_frames(s)
    rep = s.propagate(direction="forward")
    assert rep.frames_resumed >= KILL_AT - 1
    assert computed and min(computed) >= 1001 + KILL_AT - 1  # the backend went on from the saved frames
    assert len(computed) <= FRAMES - (KILL_AT - 1)
    assert all((o.id, f) in s.data.results for o in s.data.objects.values() for f in range(1001, 1001 + FRAMES))
    assert "runs_partial" not in json.loads(path.read_text())["meta"]  # finished: the stash is gone


def test_batch_killed_mid_track_keeps_frames_and_resumes(tmp_path):
    from engine.batch.jobfile import load_job
    from engine.batch.shot import run_shot
    from engine.cache.store import Cache

    pattern, mask = make_plate(tmp_path, frames=FRAMES)
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"shots": [shot("sh", pattern, mask, tmp_path / "out", stages=["track"],
                                               backend="classical", direction="forward")]}))
    _run_and_die(f"""
        from engine.batch.jobfile import load_job
        from engine.batch.shot import run_shot
        spec = load_job({str(job)!r}).shots[0]
        run_shot(spec, progress=lambda name, stage, done, total, frame: stage == "track" and die_after(done))
    """, tmp_path)
    spec = load_job(str(job)).shots[0]
    doc = json.loads(Path(spec.session_path).read_text())
    assert len({r["frame"] for r in doc["results"]} - {1001}) >= KILL_AT - 1

    res = run_shot(spec, cache=Cache(64 << 20))
    assert res.ok, res.error
    note = res.stages["track"].note
    assert "resumed from an interrupted run" in note, note
    assert int(note.split(" resumed")[0].rsplit(", ", 1)[1]) >= KILL_AT - 1
