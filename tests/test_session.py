"""Session behaviour with a deterministic fake backend: keyframes, propagation, undo, cache, files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.cache.store import Cache
from engine.errors import Cancelled, FrameOutOfRange, PromptError, SessionError
from engine.ops import rle
from engine.session import project
from engine.session.schedule import Run, affected_range, merge_masks, plan_runs
from engine.session.session import Session
from engine.util.progress import CancelToken
from tests.fakes.segmenter import FakeSegmenter, array_clip


def make_session(tmp_path=None, backend=None, count=20, **kw):
    clip = array_clip(count=count)
    path = None if tmp_path is None else tmp_path / "shot.roto.json"
    return Session.create(clip.info.path, clip=clip, path=path, backend=backend or FakeSegmenter(),
                          cache=Cache(64 << 20), **kw)


def snapshot(s: Session) -> dict:
    doc = project.to_document(s.data)
    doc.pop("saved")
    return json.loads(json.dumps(doc))


# --- planning ---------------------------------------------------------------------------------


def test_plan_runs_between_and_outside_keyframes():
    runs = plan_runs([1005, 1010], 1001, 1020, "both")
    assert Run(1005, 1001, "backward") in runs
    assert Run(1005, 1009, "forward") in runs and Run(1010, 1006, "backward") in runs
    assert Run(1010, 1020, "forward") in runs
    assert all(1005 not in r.frames and 1010 not in r.frames for r in runs)  # keyframes never targeted
    assert plan_runs([1005, 1010], 1001, 1020, "forward") == [Run(1005, 1009, "forward"), Run(1010, 1020, "forward")]
    assert plan_runs([1001, 1002], 1001, 1002, "both") == []
    assert plan_runs([], 1001, 1020) == []


def test_affected_range_stops_at_neighbouring_keyframes():
    assert affected_range([1005, 1010, 1015], 1010, 1001, 1020) == (1006, 1014)
    assert affected_range([1005], 1012, 1001, 1020) == (1006, 1020)
    assert affected_range([], 1003, 1001, 1020) == (1001, 1020)


def test_merge_interpolates_contours():
    a = np.zeros((40, 60), bool)
    a[10:30, 10:30] = True
    b = np.roll(a, 10, axis=1)
    mid = merge_masks(a, b, 1.0, 1.0)
    xs = np.flatnonzero(mid.any(axis=0))
    assert 14 <= xs.min() <= 16 and 34 <= xs.max() <= 36  # halfway between the two positions
    near_a = merge_masks(a, b, 0.9, 0.1)
    assert abs(np.flatnonzero(near_a.any(axis=0)).min() - 10) <= 2
    far = np.roll(a, 40, axis=1)  # disjoint: no blend, the heavier pass wins
    assert np.array_equal(merge_masks(a, far, 0.2, 0.8), far)


# --- prompts and keyframes ------------------------------------------------------------------------


def test_point_prompt_makes_a_locked_keyframe():
    s = make_session()
    hero = s.add_object("hero")
    m = s.add_point(hero.id, 1005, 30, 20)
    assert m.shape == (48, 64) and m[20, 30] and m.sum() > 200
    assert s.data.keyframes_of(hero.id) == [1005]
    r = s.result(hero.id, 1005)
    assert r.direction == "keyframe" and r.confidence == 1.0
    s.add_point(hero.id, 1005, 36, 20, label=0)  # a negative click carves the mask
    carved = s.mask(hero.id, 1005)
    assert carved[20, 22] and not carved[20, 36] and len(s.data.prompts) == 2
    with pytest.raises(PromptError, match="selects nothing"):  # erasing everything is refused
        s.add_point(hero.id, 1005, 30, 20, label=0)
    assert len(s.data.prompts) == 2 and np.array_equal(s.mask(hero.id, 1005), carved)


def test_propagate_both_ways_fills_every_frame_and_keeps_keyframes():
    s = make_session()
    hero = s.add_object("hero")
    s.add_point(hero.id, 1005, 30, 20)
    s.add_point(hero.id, 1012, 40, 20)
    key5 = s.mask(hero.id, 1005).copy()
    key12 = s.mask(hero.id, 1012).copy()
    rep = s.propagate()
    assert rep.frames_written == 20 - 2
    assert s.data.result_frames(hero.id) == list(range(1001, 1021))
    assert np.array_equal(s.mask(hero.id, 1005), key5) and np.array_equal(s.mask(hero.id, 1012), key12)
    assert s.result(hero.id, 1002).direction == "backward" and s.result(hero.id, 1002).source == 1005
    assert s.result(hero.id, 1015).direction == "forward" and s.result(hero.id, 1015).source == 1012
    assert s.result(hero.id, 1008).direction == "merged"
    # fake moves +1 px/frame forward: frame 1015 is key12 shifted by 3
    assert np.array_equal(s.mask(hero.id, 1015), np.roll(key12, 3, axis=1))


def test_undo_of_propagation_restores_previous_masks_exactly():
    s = make_session(backend=FakeSegmenter(step=1))
    hero = s.add_object("hero")
    s.add_point(hero.id, 1001, 20, 20)
    s.propagate(direction="forward")
    before = snapshot(s)
    s._backend = FakeSegmenter(step=2)  # a different backend result the second time
    s._backend_state = None
    s.set_keyframe(hero.id, 1001, np.roll(s.mask(hero.id, 1001), 3, axis=0))
    s.propagate(direction="forward")
    assert snapshot(s)["results"] != before["results"]
    assert s.undo().startswith("propagate") and s.undo().startswith("keyframe")
    assert snapshot(s) == before
    s.redo()
    s.redo()
    assert snapshot(s)["results"] != before["results"]


def test_correction_repropagates_only_up_to_neighbouring_keyframes():
    s = make_session()
    hero = s.add_object("hero")
    for f, x in ((1003, 20), (1010, 30), (1016, 40)):
        s.add_point(hero.id, f, x, 20)
    s.propagate()
    before = {f: s.mask(hero.id, f).copy() for f in range(1001, 1021)}
    s.add_point(hero.id, 1013, 50, 30)  # correction on 1013 between keyframes 1010 and 1016
    rep = s.update_from(1013)
    changed = {f for f in range(1001, 1021) if not np.array_equal(s.mask(hero.id, f), before[f])}
    assert changed and changed <= set(range(1011, 1016))
    assert rep.frames_written == len(range(1011, 1016)) - 1  # 1013 is now a keyframe


def test_occlusion_gives_empty_flagged_frames():
    s = make_session(backend=FakeSegmenter(occluded_frames=(1006, 1007)))
    hero = s.add_object("hero")
    s.add_point(hero.id, 1001, 20, 20)
    rep = s.propagate(direction="forward")
    assert rep.occluded == {hero.id: [1006, 1007]}
    assert s.result(hero.id, 1006).occluded and not s.mask(hero.id, 1006).any()
    assert s.mask(hero.id, 1008).any()


def test_cancel_leaves_a_consistent_undoable_session():
    token = CancelToken()
    backend = FakeSegmenter(cancel_after=5, token=token)
    s = make_session(backend=backend)
    hero = s.add_object("hero")
    s.add_point(hero.id, 1001, 20, 20)
    before = snapshot(s)
    with pytest.raises(Cancelled):
        s.propagate(direction="forward", cancel=token)
    frames = s.data.result_frames(hero.id)
    assert 1 < len(frames) < 20 and frames == list(range(1001, 1001 + len(frames)))  # a clean prefix
    s.undo()
    assert snapshot(s) == before


def test_unchanged_rerun_is_served_from_cache():
    backend = FakeSegmenter()
    s = make_session(backend=backend)
    hero = s.add_object("hero")
    s.add_point(hero.id, 1005, 20, 20)
    s.propagate()
    first = snapshot(s)
    calls = backend.calls["propagate"]
    rep = s.propagate()
    assert backend.calls["propagate"] == calls and rep.runs_from_cache == rep.runs == 2
    assert snapshot(s)["results"] == first["results"]
    s.set_keyframe(hero.id, 1005, np.roll(s.mask(hero.id, 1005), 2, axis=0))
    s.propagate()
    assert backend.calls["propagate"] > calls  # changed keyframe: recomputed


def test_a_clicked_keyframe_propagates_as_an_estimate_a_painted_or_approved_one_does_not():
    backend = FakeSegmenter()  # its clicks score 1.0: the flag must not come from the score
    s = make_session(backend=backend)
    hero, prop = s.add_object("hero"), s.add_object("prop")
    s.add_point(hero.id, 1005, 20, 20)
    s.add_mask(prop.id, 1005, s.mask(hero.id, 1005))
    assert s.keyframe_is_estimate(hero.id, 1005) and not s.keyframe_is_estimate(prop.id, 1005)
    s.propagate(direction="forward")
    assert backend.estimates[(hero.id, 1005)] is True and backend.estimates[(prop.id, 1005)] is False
    calls = backend.calls["propagate"]
    s.set_keyframe(hero.id, 1005)  # the user approves the same mask: now it is theirs
    assert not s.keyframe_is_estimate(hero.id, 1005)
    s.propagate(direction="forward")
    assert backend.calls["propagate"] > calls  # another conditioning: not served from the cache
    assert backend.estimates[(hero.id, 1005)] is False


def test_clicks_that_leave_a_painting_unchanged_keep_it_the_users():
    from engine.backends.base import MaskOut

    class Agreeing(FakeSegmenter):  # answers clicks on a painting with the painting, at a click's score
        def add_prompt(self, state, frame, obj_id, prompt):
            if prompt.mask is not None and prompt.points is not None:
                return MaskOut(np.asarray(prompt.mask, bool), 0.6)
            return super().add_prompt(state, frame, obj_id, prompt)

    s = make_session(backend=Agreeing())
    hero = s.add_object("hero")
    painted = np.pad(np.ones((10, 10), bool), ((10, 28), (10, 44)))
    s.add_mask(hero.id, 1005, painted)
    s.add_point(hero.id, 1005, 15, 15)
    res = s.data.results[(hero.id, 1005)]
    assert (s.mask(hero.id, 1005) == painted).all() and not res.estimate and res.confidence == 1.0


def test_approving_a_clicked_keyframe_reuses_the_run_of_a_backend_that_ignores_the_flag():
    backend = FakeSegmenter(uses_estimate=False)  # like SAM 2: an estimate propagates as a painting
    s = make_session(backend=backend)
    hero = s.add_object("hero")
    s.add_point(hero.id, 1005, 20, 20)
    s.propagate(direction="forward")
    calls = backend.calls["propagate"]
    s.set_keyframe(hero.id, 1005)
    assert not s.keyframe_is_estimate(hero.id, 1005)
    rep = s.propagate(direction="forward")
    assert backend.calls["propagate"] == calls and rep.runs_from_cache == rep.runs == 1


def test_a_resumed_run_starts_from_its_tracked_masks_as_estimates():
    token = CancelToken()
    backend = FakeSegmenter(cancel_after=5, token=token)
    s = make_session(backend=backend)
    hero = s.add_object("hero")
    s.add_mask(hero.id, 1001, np.pad(np.ones((10, 10), bool), ((10, 28), (10, 44))))
    with pytest.raises(Cancelled):
        s.propagate(direction="forward", cancel=token)
    assert backend.estimates == {(hero.id, 1001): False}
    backend.cancel_after = None
    rep = s.propagate(direction="forward")
    assert rep.frames_resumed >= 4
    resumed_from = max(f for (o, f) in backend.estimates if f != 1001)
    assert backend.estimates[(hero.id, resumed_from)] is True  # a tracked mask, not the painting


def test_many_objects_and_exclusive_id_matte():
    s = make_session()
    a = s.add_object("a")
    b = s.add_object("b")
    s.add_box(a.id, 1001, 5, 5, 35, 35)
    s.add_box(b.id, 1001, 25, 10, 60, 40)
    s.propagate()
    ids = s.id_matte(1001)
    ma, mb = s.mask(a.id, 1001), s.mask(b.id, 1001)
    assert (ma & mb).any()  # per-object mattes overlap and stay separate
    assert set(np.unique(ids)) == {0, a.id, b.id}
    assert np.array_equal(ids > 0, ma | mb)
    assert a.id != b.id and [o.id for o in s.data.objects.values()] == [1, 2]


def test_delete_object_is_undoable_and_ids_are_never_reused():
    s = make_session()
    a = s.add_object("a")
    s.add_point(a.id, 1002, 20, 20)
    s.propagate()
    before = snapshot(s)
    s.delete_object(a.id)
    assert not s.data.results and not s.data.keyframes
    s.undo()
    assert snapshot(s) == before
    s.redo()
    assert s.add_object("b").id == 2


def test_move_and_remove_prompts():
    s = make_session()
    a = s.add_object("a")
    s.add_point(a.id, 1002, 20, 20)
    uid = next(iter(s.data.prompts))
    moved = s.move_prompt(uid, 40, 30)
    assert moved[30, 40] and not moved[20, 20]
    s.remove_prompt(uid)
    assert (a.id, 1002) not in s.data.keyframes and s.result(a.id, 1002) is None
    s.undo()
    assert s.mask(a.id, 1002)[30, 40]


def test_edit_mask_and_clear_keyframe():
    s = make_session()
    a = s.add_object("a")
    s.add_point(a.id, 1002, 20, 20)
    s.propagate()
    new = s.edit_mask(a.id, 1010, lambda m: np.pad(m[:, 2:], ((0, 0), (0, 2))), label="nudge")
    assert (a.id, 1010) in s.data.keyframes and s.result(a.id, 1010).direction == "edit"
    assert np.array_equal(s.mask(a.id, 1010), new)
    s.clear_keyframe(a.id, 1010)
    assert (a.id, 1010) not in s.data.keyframes and s.mask(a.id, 1010) is not None


# --- bad input: clear error, session unchanged ------------------------------------------------------


@pytest.mark.parametrize("action,error,match", [
    (lambda s, o: s.add_point(o, 1002, 500, 20), PromptError, "outside"),
    (lambda s, o: s.add_point(o, 1002, 5, 5, label=3), PromptError, "label"),
    (lambda s, o: s.add_mask(o, 1002, np.zeros((48, 64), bool)), PromptError, "empty"),
    (lambda s, o: s.add_mask(o, 1002, np.ones((10, 10), bool)), PromptError, "plate is 64x48"),
    (lambda s, o: s.add_point(99, 1002, 5, 5), PromptError, "no object with id 99"),
    (lambda s, o: s.add_point(o, 2000, 5, 5), FrameOutOfRange, "outside the session"),
    (lambda s, o: s.add_box(o, 1002, 5, 5, 6, 6), PromptError, "too small"),
    (lambda s, o: s.propagate(direction="sideways"), PromptError, "direction"),
    (lambda s, o: s.propagate(frames=(1005, 1002)), FrameOutOfRange, "runs backwards"),
    (lambda s, o: s.add_object("a"), PromptError, "exists already"),
])
def test_bad_input_leaves_session_unchanged(action, error, match):
    s = make_session()
    a = s.add_object("a")
    s.add_point(a.id, 1001, 20, 20)
    before = snapshot(s)
    undo_len = len(s.history.undo_stack)
    with pytest.raises(error, match=match):
        action(s, a.id)
    assert snapshot(s) == before and len(s.history.undo_stack) == undo_len


def test_a_failed_transaction_undoes_its_edits_and_saves_nothing(tmp_path):
    s = make_session(tmp_path)
    a = s.add_object("a")
    s.add_point(a.id, 1001, 20, 20)
    s.undo()
    s.redo()
    s.undo()  # something on the redo stack too
    before, undo, redo = snapshot(s), list(s.history.undo_stack), list(s.history.redo_stack)
    on_disk = s.path.read_bytes()
    with pytest.raises(PromptError, match="outside"):
        with s.transaction():
            b = s.add_object("b")
            s.add_point(b.id, 1002, 5, 5)
            s.add_point(b.id, 1002, 500, 20)
    assert snapshot(s) == before and s.history.undo_stack == undo and s.history.redo_stack == redo
    assert s.path.read_bytes() == on_disk and s.autosave
    with s.transaction():  # a good one is kept and saved once at the end
        b = s.add_object("b")
        s.add_point(b.id, 1002, 5, 5)
        assert s.path.read_bytes() == on_disk
    assert [c.label for c in s.history.undo_stack[-2:]] == ["add object b", "add point to b on frame 1002"]
    assert Session.open(s.path).data.objects[b.id].name == "b"


def test_an_identical_prompt_added_once_is_not_added_again():
    s = make_session()
    a = s.add_object("a")
    s.add_point(a.id, 1001, 20, 20, once=True)
    s.add_box(a.id, 1003, 5, 5, 30, 30, once=True)
    mask = np.zeros((48, 64), bool)
    mask[10:20, 10:20] = True
    s.add_mask(a.id, 1005, mask, once=True)
    before, undo = snapshot(s), len(s.history.undo_stack)
    assert s.add_point(a.id, 1001, 20, 20, once=True) is not None
    s.add_box(a.id, 1003, 30, 30, 5, 5, once=True)  # the same box, corners given the other way round
    s.add_mask(a.id, 1005, mask.copy(), once=True)
    assert snapshot(s) == before and len(s.history.undo_stack) == undo
    s.add_point(a.id, 1001, 29, 20, label=0, once=True)  # another click is another prompt
    s.add_point(a.id, 1001, 20, 20)  # without once: added
    assert len(s.data.prompts_on(a.id, 1001)) == 3


def test_check_range_gives_the_range_in_order():
    s = make_session()
    assert s.check_range(None) == s.frame_range
    assert s.check_range([1002, 1004]) == (1002, 1004)
    with pytest.raises(FrameOutOfRange, match="outside the session"):
        s.check_range((1002, 5000))


def test_propagate_without_prompts_says_what_to_do():
    s = make_session()
    s.add_object("a")
    with pytest.raises(PromptError, match="no object has a prompt"):
        s.propagate()


# --- project file -----------------------------------------------------------------------------------


def test_project_file_round_trip_with_history(tmp_path):
    s = make_session(tmp_path)
    a = s.add_object("hero")
    s.add_point(a.id, 1004, 20, 20)
    s.propagate()
    path = s.path
    assert path.is_file()
    doc = json.loads(path.read_text())
    assert doc["format"] == "ultimate-rotoscopy.session" and len(doc["results"]) == 20
    again = Session.open(path, clip=array_clip(), backend=FakeSegmenter(), cache=Cache(1 << 20))
    assert snapshot(again) == snapshot(s)
    assert [c.label for c in again.history.undo_stack] == [c.label for c in s.history.undo_stack]
    again.undo()  # undo the propagation after reopening
    assert again.data.result_frames(a.id) == [1004]
    reloaded = Session.open(path, clip=array_clip(), backend=FakeSegmenter())  # autosaved after undo
    assert reloaded.data.result_frames(a.id) == [1004]
    assert path.with_name(path.name + ".bak").is_file()


def test_damaged_project_file_is_a_clear_error(tmp_path):
    p = tmp_path / "bad.roto.json"
    p.write_text("{not json")
    with pytest.raises(SessionError, match="not valid JSON"):
        Session.open(p)
    p.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(SessionError, match="not an Ultimate Rotoscopy session"):
        Session.open(p)
    p.write_text(json.dumps({"format": "ultimate-rotoscopy.session", "version": 99}))
    with pytest.raises(SessionError, match="newer engine"):
        Session.open(p)


@pytest.mark.parametrize("content", [b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", b"[1, 2, 3]", b'"text"'])
def test_a_file_that_is_not_a_session_is_named_in_a_clear_error(tmp_path, content):
    p = tmp_path / "shot.1001.jpg"
    p.write_bytes(content)
    with pytest.raises(SessionError, match="is not a roto session file") as e:
        Session.open(p)
    assert "shot.1001.jpg" in str(e.value)


def test_rle_round_trip_edges():
    for m in (np.zeros((3, 4), bool), np.ones((3, 4), bool), np.eye(5, dtype=bool)):
        d = rle.encode(m)
        assert np.array_equal(rle.decode(d), m) and rle.area(d) == m.sum()
    with pytest.raises(ValueError):
        rle.decode({"size": [2, 2], "rle": rle.encode(np.ones((3, 3), bool))["rle"]})


def test_run_cache_survives_a_new_process_through_the_disk_tier(tmp_path):
    backend = FakeSegmenter()
    s = make_session(backend=backend)
    s._cache = Cache(64 << 20, tmp_path / "cache", 64 << 20)
    hero = s.add_object("hero")
    s.add_point(hero.id, 1005, 20, 20)
    s.propagate()
    results = snapshot(s)["results"]
    # a new session (as a new `roto track` process would build) with an empty memory tier
    fresh_backend = FakeSegmenter()
    s2 = make_session(backend=fresh_backend)
    s2._cache = Cache(64 << 20, tmp_path / "cache", 64 << 20)
    h2 = s2.add_object("hero")
    s2.add_point(h2.id, 1005, 20, 20)
    rep = s2.propagate()
    assert fresh_backend.calls["propagate"] == 0 and rep.runs_from_cache == 2
    assert snapshot(s2)["results"] == results


def test_cache_memory_budget_spills_and_disk_budget_trims(tmp_path):
    c = Cache(1000, tmp_path, 2500)
    blobs = {k: np.full(100, i, np.float64) for i, k in enumerate("abcdef")}  # 800 bytes each
    for k, v in blobs.items():
        c.put("ns", k, v)
    assert c.stats()["bytes"] <= 1000 and c.disk_writes >= 4
    assert c.stats()["disk_bytes"] <= 2500  # oldest spilled files deleted
    got = c.get("ns", "e")
    assert got is not None and np.array_equal(got, blobs["e"])
    assert c.get("ns", "a") is None  # trimmed from disk
    (tmp_path / "ns").mkdir(exist_ok=True)
    bad = next((tmp_path / "ns").rglob("*.pkl"))
    bad.write_bytes(b"garbage")
    c.clear_memory()
    assert c.get("ns", bad.stem) is None and not bad.exists()  # damaged cache file = a miss


# --- mask images ------------------------------------------------------------------------------------


def test_mask_images_in_colour_palette_16_bit_and_alpha_are_read(tmp_path):
    import cv2
    from PIL import Image

    from engine.session.prompts_file import read_mask_image

    truth = np.zeros((48, 64), bool)
    truth[10:30, 20:40] = True
    red = np.zeros((48, 64, 3), np.uint8)
    red[truth] = (0, 0, 255)  # BGR: red on black
    cv2.imwrite(str(tmp_path / "red.png"), red)
    pal = Image.fromarray(truth.astype(np.uint8), mode="P")
    pal.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)  # DAVIS: index 1 = (128, 0, 0)
    pal.save(tmp_path / "pal.png")
    cv2.imwrite(str(tmp_path / "grey16.png"), truth.astype(np.uint16) * 65535)
    opaque = np.dstack([red, np.full((48, 64), 255, np.uint8)])  # alpha 255 everywhere: colour decides
    cv2.imwrite(str(tmp_path / "opaque.png"), opaque)
    alpha = np.dstack([np.full((48, 64, 3), 255, np.uint8), truth.astype(np.uint8) * 255])  # white, alpha cut
    cv2.imwrite(str(tmp_path / "alpha.png"), alpha)
    for name in ("red.png", "pal.png", "grey16.png", "opaque.png", "alpha.png"):
        assert np.array_equal(read_mask_image(name, tmp_path), truth), name
