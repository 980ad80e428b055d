"""QC scores: what gets flagged and why, storage in the session, the report, the plot, ``roto qc``."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from engine.cache.store import Cache
from engine.qc.plot import draw_plot
from engine.qc.report import ranges, review_json, review_lines, summary_lines
from engine.qc.scores import QCThresholds, area_jump, boundary_jump, compute_qc, stored_qc
from engine.session.session import Session
from tests.fakes.segmenter import ArrayClip, FakeSegmenter


def static_clip(count=8, h=72, w=96):
    """A steady plate: textured background, a disc that does not move."""
    rng = np.random.default_rng(3)
    base = (rng.random((h, w, 3)) * 80 + 60).astype(np.uint8)
    base = cv2.GaussianBlur(base, (5, 5), 1.5)
    yy, xx = np.mgrid[0:h, 0:w]
    disc = (xx - 48) ** 2 + (yy - 36) ** 2 <= 18 ** 2
    base[disc] = (220, 120, 60)
    frames = {1001 + i: base.copy() for i in range(count)}
    return ArrayClip(frames), disc


@pytest.fixture()
def session(tmp_path):
    clip, disc = static_clip()
    s = Session.create(clip.info.path, clip=clip, path=tmp_path / "qc.roto.json",
                       backend=FakeSegmenter(step=0, occluded_frames=(1007,)), cache=Cache(16 << 20))
    o = s.add_object("hero")
    s.add_mask(o.id, 1001, disc)
    s.propagate(direction="forward")
    # a bad frame: the mask jumps 8 px and grows
    s.edit_mask(o.id, 1004, lambda m: np.roll(cv2.dilate(m.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool), 8, axis=1))
    return s, o.id


def test_scores_flag_jumps_and_occlusion(session):
    s, oid = session
    res = compute_qc(s)
    q = res.objects[oid]
    assert q.frames == list(range(1001, 1009)) and q.source == "mask"
    assert q.flicker[0] is None and q.boundary[0] is None  # nothing to compare the first frame with
    flagged = dict(q.flags)
    assert 1004 in flagged and any("boundary jump" in r for r in flagged[1004]) and any("area jump" in r for r in flagged[1004])
    assert 1005 in flagged  # and back again
    assert flagged[1007] == ["occluded or missing"]
    assert 1003 not in flagged and 1002 not in flagged  # steady frames are fine
    assert q.boundary[2] == pytest.approx(0.0, abs=0.01)
    # stored in the session and saved with it
    again = Session.open(s.path, clip=s.clip)
    st = stored_qc(again)
    assert st is not None and st.objects[oid].flags == q.flags and st.range == (1001, 1008)


def test_low_confidence_threshold(session):
    s, oid = session
    res = compute_qc(s, thresholds=QCThresholds(confidence=0.95), store=False)
    reasons = res.objects[oid].flags
    assert any("low confidence 0.90" in r for r in reasons[1002])  # the fake's propagated confidence
    assert "qc" not in s.data.meta  # store=False


def test_qc_scores_soft_alpha_when_stored(session):
    from engine.matting.pipeline import matte_session

    s, oid = session
    matte_session(s, backend="classical")
    res = compute_qc(s)
    q = res.objects[oid]
    assert q.source == "alpha"
    steady = [v for f, v in zip(q.frames, q.flicker) if v is not None and f in (1002, 1003)]
    assert steady and max(steady) < 2.0  # a steady plate gives a steady matte


def test_jump_measures():
    a = np.zeros((40, 40), bool)
    a[10:30, 10:30] = True
    assert boundary_jump(a, a) == 0
    assert boundary_jump(a, np.roll(a, 4, axis=1)) == pytest.approx(2.0, abs=0.6)
    assert boundary_jump(a, np.zeros_like(a)) is None
    assert area_jump(a, a) == 0 and area_jump(a, a[:, ::-1] & (np.arange(40) < 20)[None, :]) == pytest.approx(0.5)
    assert area_jump(np.zeros((3, 3)), np.zeros((3, 3))) is None


def test_report_and_plot(session):
    s, oid = session
    res = compute_qc(s, store=False)
    names = {oid: "hero"}
    lines = review_lines(res, names)
    assert lines[0].startswith("hero 1004:") and any(line.startswith("hero 1007: occluded") for line in lines)
    assert "to review" in summary_lines(res, names)[0]
    doc = review_json(res, names)
    assert doc["review"][0]["frame"] == 1004 and doc["scores"]["hero"]["frames"][0] == 1001
    json.dumps(doc)
    img = draw_plot(res, names, s.shape)
    assert img.dtype == np.uint8 and img.shape[2] == 3 and (img < 250).any()
    assert (img[..., 2] > 200)[img[..., 0] < 60].any()  # red review ticks
    assert ranges([1001, 1002, 1003, 1007]) == "1001-1003, 1007"


def test_roto_qc_command(tmp_path, capsys):
    from engine.cli.main import main

    clip, disc = static_clip(count=5)
    for f, img in clip._frames.items():
        cv2.imwrite(str(tmp_path / f"plate.{f}.png"), img[:, :, ::-1])
    path = tmp_path / "cli.roto.json"
    s = Session.create(str(tmp_path / "plate.1001.png"), path=path, backend=FakeSegmenter(step=0),
                       cache=Cache(16 << 20))
    o = s.add_object("hero")
    s.add_mask(o.id, s.frame_range[0], disc)
    s.propagate(direction="forward")
    s.edit_mask(o.id, s.frame_range[0] + 2, lambda m: np.roll(m, 9, axis=1))
    plot = tmp_path / "qc.png"
    assert main(["qc", str(path), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert f"hero {s.frame_range[0] + 2}:" in out and "to review" in out and plot.is_file()
    assert main(["qc", str(path), "--stored", "--no-plot", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert any(r["frame"] == s.frame_range[0] + 2 for r in doc["review"]) and doc["plot"] is None
    assert main(["qc", str(tmp_path / "missing.roto.json")]) == 2
    capsys.readouterr()
    # --frames outside the session or backwards, unknown --objects: errors naming what is known
    assert main(["qc", str(path), "--frames", "1-5", "--no-plot"]) == 2
    err = capsys.readouterr().err
    assert "--frames 1-5" in err and "1001-1005" in err and "Traceback" not in err
    assert main(["qc", str(path), "--frames", "1004-1002", "--no-plot"]) == 2
    assert "backwards" in capsys.readouterr().err
    assert main(["qc", str(path), "--objects", "9", "--no-plot"]) == 2
    assert "Known objects: 1 (hero)" in capsys.readouterr().err
    # a partial run keeps the stored scores of the other frames
    assert main(["qc", str(path), "--frames", "1002-1003", "--no-plot"]) == 0
    assert "in 1002-1003" in capsys.readouterr().out
    assert main(["qc", str(path), "--stored", "--no-plot", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["scores"]["hero"]["frames"] == list(range(1001, 1006))


def test_partial_qc_merges_into_the_stored_scores(session):
    s, oid = session
    other = s.add_object("prop")
    s.add_mask(other.id, 1001, np.roll(static_clip()[1], 20, axis=0))
    s.propagate(direction="forward")
    full = compute_qc(s)
    before = stored_qc(s)
    part = compute_qc(s, [oid], frames=(1004, 1005), thresholds=QCThresholds(area=0.99))
    # the run itself reports only what was asked, scored against the real predecessor frame
    assert part.range == (1004, 1005) and list(part.objects) == [oid]
    q = part.objects[oid]
    assert q.frames == [1004, 1005] and q.boundary[0] == full.objects[oid].boundary[3]
    # what was stored before stays: every frame of both objects, the re-scored ones replaced
    st = stored_qc(Session.open(s.path, clip=s.clip))
    assert st.range == (1001, 1008) and set(st.objects) == {oid, other.id}
    assert st.objects[other.id].frames == list(range(1001, 1009))
    assert st.objects[other.id].flicker == before.objects[other.id].flicker
    hero = st.objects[oid]
    assert hero.frames == list(range(1001, 1009)) and hero.flags[1007] == ["occluded or missing"]
    assert not any("area jump" in r for r in hero.flags.get(1004, []))  # re-flagged with the new thresholds


def test_frames_out_of_range_is_an_error(session):
    from engine.errors import FrameOutOfRange

    s, oid = session
    compute_qc(s)
    for bad in ((1, 5), (1005, 1003), (1006, 1020)):
        with pytest.raises(FrameOutOfRange):
            compute_qc(s, frames=bad)
    assert stored_qc(s).objects[oid].frames == list(range(1001, 1009))  # nothing lost


def _moving_shape_session(tmp_path, edit=None):
    """A synthetic object moving over a textured plate, its exact hard mask a keyframe on every frame."""
    from engine.media.synthetic import generate

    clip = generate(width=256, height=160, frames=8)
    frames = {f.frame: (np.clip(f.rgb, 0, 1) ** (1 / 2.2) * 255).astype(np.uint8) for f in clip}
    ac = ArrayClip(frames)
    s = Session.create(ac.info.path, clip=ac, path=tmp_path / "move.roto.json", backend=FakeSegmenter(step=0),
                       cache=Cache(16 << 20))
    o = s.add_object("hero")
    for f in clip:
        m = f.mask
        s.add_mask(o.id, f.frame, edit(f.frame, m) if edit else m)
    return s, o.id


def test_hard_masks_of_a_moving_object_are_not_flicker(tmp_path):
    s, oid = _moving_shape_session(tmp_path)
    q = compute_qc(s, store=False).objects[oid]
    assert q.source == "mask"
    scored = [v for v in q.flicker if v is not None]
    assert len(scored) == 7 and max(scored) < 1.0  # the exact mask follows its object: no flicker
    assert not any("flicker" in r for reasons in q.flags.values() for r in reasons)


def test_hard_mask_that_shrinks_or_jumps_on_one_frame_is_flicker(tmp_path):
    def shrink(frame, m):
        return cv2.erode(m.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool) if frame == 1004 else m

    def jump(frame, m):
        return np.roll(m, 4, axis=1) if frame == 1004 else m

    for edit in (shrink, jump):
        s, oid = _moving_shape_session(tmp_path / edit.__name__, edit)
        q = compute_qc(s, store=False).objects[oid]
        fl = dict(zip(q.frames, q.flicker))
        assert fl[1004] > 2.0 and fl[1005] > 2.0, (edit.__name__, fl)  # into the bad frame and out again
        assert any("flicker" in r for r in q.flags[1004])
        assert max(fl[f] for f in (1002, 1003, 1006, 1007, 1008)) < 1.0
