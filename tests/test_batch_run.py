"""Local batch runs: failures isolated, progress, re-runs skip finished work, resume, farm-style chunks."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from engine.batch.jobfile import load_job, validate_job
from engine.batch.journal import Journal
from engine.batch.runner import run_batch
from engine.cli.main import main
from tests.test_batch_kit import fingerprint, make_plate, results, shot, write_job


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch-plate")
    pattern, mask = make_plate(folder)
    return folder, pattern, mask


@pytest.fixture(scope="module")
def reference(plate, tmp_path_factory):
    """One clean single-process run of the standard shot: (job, out folder, fingerprint)."""
    folder, pattern, mask = plate
    out = tmp_path_factory.mktemp("batch-ref") / "sh010"
    job = validate_job({"shots": [shot("sh010", pattern, mask, out)]})
    rep = run_batch(job)
    assert rep.ok, rep.shots[0].error
    return job, out, fingerprint(out)


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")
            if p.is_file() and ".roto-batch" not in p.parts and not p.name.endswith((".json", ".bak"))}


def test_a_failed_shot_is_reported_and_the_others_go_on(plate, tmp_path):
    folder, pattern, mask = plate
    job = write_job(tmp_path / "job.json", [
        shot("bad", str(folder / "nothing.####.exr"), mask, tmp_path / "out/bad"),
        shot("good", pattern, mask, tmp_path / "out/good", stages=["track", "export"]),
    ])
    events = []
    rep = run_batch(load_job(job), progress=events.append)
    bad, good = rep.shots
    assert not rep.ok and bad.status == "failed" and good.status == "done"
    assert bad.error["code"] == "media_not_found" and "nothing.####.exr" in bad.error["path"]
    assert len(list((tmp_path / "out/good").glob("good.*.exr"))) == 12
    # progress per shot and overall, ending at 100 %
    assert {e.shot for e in events} == {"bad", "good"}
    assert any(e.stage == "track" and e.shot == "good" for e in events)
    assert events[-1].overall_fraction == pytest.approx(1.0) and events[-1].status == "done"
    fractions = [e.overall_fraction for e in events]
    assert fractions == sorted(fractions)
    # the journal says what finished
    ev = [e["event"] for e in Journal(tmp_path / "out/good").events()]
    assert ev[0] == "shot_start" and ev[-1] == "shot_done" and "done" in ev
    assert [e["event"] for e in Journal(tmp_path / "out/bad").events()][-1] == "failed"


def test_cli_exit_status_report_and_check(plate, tmp_path, capsys):
    folder, pattern, mask = plate
    job = write_job(tmp_path / "job.json", [
        shot("good", pattern, mask, tmp_path / "out/good", stages=["track", "export"]),
        shot("bad", str(folder / "nothing.####.exr"), mask, tmp_path / "out/bad"),
    ])
    assert main(["batch", str(job), "--check"]) == 3
    assert "good: ok (128x80 1001-1012" in capsys.readouterr().out
    assert main(["batch", str(job), "--json", "--report", str(tmp_path / "r.json")]) == 3
    printed = json.loads(capsys.readouterr().out)
    assert [s["status"] for s in printed["shots"]] == ["done", "failed"]
    assert json.loads((tmp_path / "r.json").read_text())["ok"] is False
    assert main(["batch", str(job), "--shot", "good"]) == 0  # finished work skipped: fast and successful
    assert main(["batch", str(job), "--shot", "nope"]) == 2
    assert main(["batch", str(job), "--stages", "track,wobble"]) == 2


def test_rerun_skips_finished_work_without_rewriting(reference):
    job, out, prints = reference
    before = _mtimes(out)
    rep = run_batch(job)
    s = rep.shots[0]
    assert rep.ok and {k: v.note for k, v in s.stages.items()} == {
        "track": "already tracked", "matte": "already matted", "export": ""}
    assert s.stages["export"].skipped == 12
    assert _mtimes(out) == before and fingerprint(out) == prints


def test_resume_redoes_only_missing_or_damaged_outputs(reference, tmp_path):
    job, out, prints = reference
    copy = tmp_path / "sh010"
    shutil.copytree(out, copy)
    job = validate_job({"shots": [dict(job.shots[0].model_dump(), out=str(copy))]})
    exr = sorted(copy.glob("sh010.*.exr"))
    exr[4].unlink()  # lost
    exr[7].write_bytes(exr[7].read_bytes()[:300])  # torn
    alpha = sorted((copy / "sh010.roto.json.alpha").rglob("*.png"))
    alpha[9].write_bytes(alpha[9].read_bytes()[:-20])  # a damaged alpha file: its matte chunk is redone
    (copy / ".sh010.1003.abcd.tmp.exr").write_bytes(b"partial")  # left by a killed writer
    before = _mtimes(copy)
    rep = run_batch(job)
    assert rep.ok
    s = rep.shots[0]
    # the damaged alpha's chunk (4 frames) is matted again, to the same bytes: its exports stay valid
    assert s.stages["matte"].skipped == 8 and s.stages["export"].skipped == 10
    after = _mtimes(copy)
    changed = sorted(k for k in after if after[k] != before.get(k))
    assert sum(k.endswith(".exr") for k in changed) == 2 and sum(k.endswith(".png") for k in changed) == 4
    assert fingerprint(copy) == prints  # exactly the bytes of the uninterrupted run
    assert any("partial file" in n for n in s.notes)


def test_farm_style_chunk_runs_and_sequential_stages_write_the_same_bytes(reference, tmp_path):
    job, out, prints = reference
    data = dict(job.shots[0].model_dump(), out=str(tmp_path / "sh010"))
    job2 = validate_job({"shots": [data]})
    assert run_batch(job2, stages=["track"]).ok
    # farm tasks: matte chunks of 4 frames, each with its export; in reverse order to prove independence
    for a in (1009, 1005, 1001):
        rep = run_batch(job2, stages=["matte", "export"], frames=(a, a + 3))
        assert rep.ok, rep.shots[0].error
    assert fingerprint(tmp_path / "sh010") == prints
    fin = run_batch(job2)  # the farm's finishing task: everything valid, records the matte in the project file
    assert fin.ok and fin.shots[0].stages["export"].skipped == 12
    assert json.loads((tmp_path / "sh010/sh010.roto.json").read_text())["meta"]["matte"]
    assert results(tmp_path / "sh010/sh010.roto.json")["results"] == results(out / "sh010.roto.json")["results"]
    # the stages one after the other (the benchmarks' baseline) give the same bytes too
    job3 = validate_job({"shots": [dict(data, out=str(tmp_path / "seq"))]})
    assert run_batch(job3, overlap=False).ok
    assert fingerprint(tmp_path / "seq") == prints


def test_chunk_runs_need_a_tracked_session(reference, tmp_path):
    job, _out, _ = reference
    job2 = validate_job({"shots": [dict(job.shots[0].model_dump(), out=str(tmp_path / "x"))]})
    rep = run_batch(job2, stages=["matte"], frames=(1001, 1004))
    assert rep.shots[0].status == "failed" and "track stage first" in rep.shots[0].error["hint"]
    with pytest.raises(Exception, match="whole shot"):
        from engine.batch.shot import run_shot

        run_shot(job2.shots[0], stages=["track"], frames=(1001, 1004))


def test_new_prompts_make_a_new_session_and_depth_reaches_the_export(plate, tmp_path):
    import cv2
    import numpy as np

    folder, pattern, mask = plate
    out = tmp_path / "d"
    data = shot("d", pattern, mask, out, stages=["track", "depth", "export"], depth={"model": "prior"})
    rep = run_batch(validate_job({"shots": [data]}))
    assert rep.ok, rep.shots[0].error
    import OpenEXR

    with OpenEXR.File(str(out / "d.1005.exr")) as f:
        assert "depth.Z" in f.parts[0].channels
    first = results(out / "d.roto.json")
    m = cv2.imread(mask, cv2.IMREAD_UNCHANGED)
    smaller = cv2.erode(m, np.ones((9, 9), np.uint8))
    cv2.imwrite(str(tmp_path / "m2.png"), smaller)
    rep = run_batch(validate_job({"shots": [dict(data, mask=str(tmp_path / "m2.png"))]}))
    assert rep.ok and rep.shots[0].stages["depth"].note == "already computed"
    assert results(out / "d.roto.json")["keyframes"] != first["keyframes"]


def test_memory_budget_options_reach_the_run(plate, tmp_path):
    folder, pattern, mask = plate
    job = write_job(tmp_path / "job.json", [shot("m", pattern, mask, tmp_path / "m", stages=["track"])])
    assert main(["batch", str(job), "--memory-budget", "1G", "--cache", "masks=64M", "--json"]) == 0
    assert main(["batch", str(job), "--cache", "frames"]) == 2
    os.environ.pop("ROTO_BATCH_THROTTLE_S", None)


def test_summary_prints_error_text_with_brackets_verbatim(capsys, monkeypatch):
    """Engine sentences are not Rich markup: ``[sam3]`` in an install hint survives the summary."""
    from engine.batch.runner import BatchReport
    from engine.batch.shot import ShotResult, StageReport
    from engine.cli.cmd_batch import _summary

    hint = "pip install 'ultimate-rotoscopy[sam3]' in a separate environment"
    shot_ = ShotResult("sh[1]", status="failed", frames=(1, 2),
                       stages={"track": StageReport(total=2, note="backend [bold]x[/bold]")},
                       error={"code": "backend_unavailable", "message": f"SAM 3 is not installed; {hint}"})
    monkeypatch.setenv("COLUMNS", "400")  # no line wrapping
    _summary(BatchReport(shots=[shot_]))
    out = capsys.readouterr().out
    assert hint in out
    assert "sh[1]: SAM 3 is not installed" in out
    assert "[bold]x[/bold]" in out


def test_check_opens_masks_prompts_and_backends_like_the_run(plate, tmp_path, capsys):
    """``--check`` gives, per shot, every problem the run would stop on, with the run's sentence."""
    import cv2
    import numpy as np

    folder, pattern, mask = plate
    (tmp_path / "junk.png").write_bytes(bytes(range(256)) * 2)
    (tmp_path / "prompts.json").write_text('{"x": 1}')
    cv2.imwrite(str(tmp_path / "small.png"), np.full((40, 64), 255, np.uint8))
    job = write_job(tmp_path / "job.json", [
        shot("junk", pattern, str(tmp_path / "junk.png"), tmp_path / "out/a"),
        shot("prompts", pattern, None, tmp_path / "out/b", prompts=str(tmp_path / "prompts.json")),
        shot("size", pattern, str(tmp_path / "small.png"), tmp_path / "out/c"),
        shot("models", pattern, mask, tmp_path / "out/d", backend="nope", stages=["track", "matte", "depth"],
             matte={"backend": "nope-matte"}, depth={"model": "nope-depth"}),
        shot("good", pattern, mask, tmp_path / "out/e", backend="classical", matte={"backend": "classical"}),
    ])
    assert main(["batch", str(job), "--check"]) == 3
    out = capsys.readouterr().out
    assert "junk: " in out and "the mask image cannot be decoded" in out
    assert "prompts: " in out and "the prompts file is invalid" in out
    assert "size: the mask is 64x40, the plate is 128x80" in out
    assert "models: there is no backend named 'nope'" in out
    assert "models: there is no matting backend named 'nope-matte'" in out
    assert "models: there is no depth model named 'nope-depth'" in out
    assert "good: ok (128x80 1001-1012" in out
    assert not (tmp_path / "out").exists()  # nothing was written


def test_a_changed_plate_is_tracked_again_and_an_unchanged_one_resumes(tmp_path):
    """A re-rendered plate frame makes the re-run track, matte and export again (and say so); the
    same plate resumes. A session from an older engine (no plate record) is not redone for nothing."""
    import shutil as sh

    from engine.batch.stages import PLATE_META

    pattern, mask = make_plate(tmp_path, frames=6)
    other, _ = make_plate(tmp_path / "other", frames=6, seed=11)
    out = tmp_path / "out/sh"
    job = validate_job({"shots": [shot("sh", pattern, mask, out, stages=["track", "matte", "export"],
                                       backend="classical", matte={"backend": "classical", "chunk": 4})]})

    def run():
        rep = run_batch(job)
        assert rep.ok, rep.shots[0].error
        return rep.shots[0]

    run()
    again = run()
    assert again.stages["track"].note == "already tracked" and not again.notes
    before = fingerprint(out)

    frame = Path(pattern.replace("####", "1003"))
    sh.copyfile(Path(other.replace("####", "1003")), frame)  # frame 1003 re-rendered
    redo = run()
    assert any("the plate changed since the last run" in n and "re-tracking" in n for n in redo.notes), redo.notes
    assert redo.stages["track"].note != "already tracked" and redo.stages["matte"].done > redo.stages["matte"].skipped
    after = fingerprint(out)
    assert after[f"sh.1003.exr"] != before[f"sh.1003.exr"]
    resumed = run()  # the new plate, unchanged since: nothing redone
    assert resumed.stages["track"].note == "already tracked" and not resumed.notes
    assert fingerprint(out) == after

    # a session written before plates were recorded, its id made the older way: recorded, not redone
    session_file = out / "sh.roto.json"
    doc = json.loads(session_file.read_text())
    del doc["meta"][PLATE_META]
    doc["clip"]["content_id"] = "0" * 32
    session_file.write_text(json.dumps(doc))
    old = run()
    assert old.stages["track"].note == "already tracked"
    assert any("recorded by an older engine" in n for n in old.notes), old.notes
    assert run().notes == []


def test_an_unreachable_ray_address_fails_at_once_with_a_sentence(plate, tmp_path, capsys, monkeypatch):
    """``--ray HOST:PORT`` where nothing listens: exit 2 naming the address and what to do, before Ray is
    even imported (ray.init would retry for minutes); a reachable address goes on to ray.init."""
    import socket

    import engine.deps
    from engine.batch.ray_exec import check_reachable

    def no_ray(*a, **k):
        raise AssertionError("Ray was imported for an unreachable address")

    monkeypatch.setattr(engine.deps, "require", no_ray)
    folder, pattern, mask = plate
    job = write_job(tmp_path / "job.json", [shot("sh", pattern, mask, tmp_path / "out/sh")])
    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    assert main(["batch", str(job), "--ray", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert f"no Ray cluster answers at 127.0.0.1:{port}" in err and "ray start --head" in err
    assert "Traceback" not in err
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        check_reachable(f"127.0.0.1:{server.getsockname()[1]}")  # something answers: no error
        check_reachable(f"ray://127.0.0.1:{server.getsockname()[1]}")
