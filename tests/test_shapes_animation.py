"""Animated shapes from matte sequences: fidelity, correspondence over time, topology, sessions."""

from __future__ import annotations

import numpy as np
import pytest

from engine.cache.store import Cache
from engine.errors import Cancelled, InputError
from engine.session.session import Session
from engine.shapes.contours import extract_regions
from engine.shapes.metrics import boundary_distance, iou, shape_jitter
from engine.shapes.raster import rasterize_frame
from engine.shapes.synthetic import make_clip
from engine.shapes.track import ShapeOptions, shapes_from_mattes, shapes_from_session
from engine.util.progress import CancelToken
from tests.fakes.segmenter import ArrayClip, FakeSegmenter

W, H, N = 240, 160, 12


@pytest.fixture(scope="module")
def blob():
    return make_clip("blob", W, H, N)


def fidelity(clip, shapes):
    ious, mbds = [], []
    for f in clip.frames:
        ious.append(iou(rasterize_frame(shapes, f, (clip.height, clip.width)), clip.alphas[f] >= 0.5))
        regs = extract_regions(clip.alphas[f])
        conts = [r.outer for r in regs] + [h for r in regs for h in r.holes]
        keys = [k for k in (s.at(f) for s in shapes) if k is not None]
        mbds.append(boundary_distance(keys, conts)[0])
    return min(ious), float(np.mean(mbds))


def test_blob_shapes_are_faithful_and_keep_their_points(blob):
    shapes, rep = shapes_from_mattes(blob.frames, blob.alphas.get, get_image=blob.plates.get)
    assert len(shapes) == 1 and rep["flow"] is True
    s = shapes[0]
    assert s.key_frames == blob.frames and (s.first, s.last) == (blob.frames[0], blob.frames[-1])
    assert len({k.n for k in s.keys.values()}) == 1 and 4 <= s.n_points <= 32
    worst_iou, mbd = fidelity(blob, shapes)
    assert worst_iou >= 0.97 and mbd < 0.5
    # the same point stays on the same physical spot: compare with the ground truth
    slips = []
    for f in s.key_frames[:-1]:
        u = blob.nearest_u(f, s.keys[f].points)
        slips.append(np.linalg.norm(s.keys[f + 1].points - blob.truth(f + 1, u), axis=1).mean())
    u = np.arange(32) / 32
    motion = np.mean([np.linalg.norm(blob.truth(f + 1, u) - blob.truth(f, u), axis=1).mean() for f in blob.frames[:-1]])
    assert np.mean(slips) < 0.15 * motion
    assert shape_jitter(s)[0] < 1.0


def test_outline_matching_alone_works_without_a_plate(blob):
    shapes, rep = shapes_from_mattes(blob.frames, blob.alphas.get, options=ShapeOptions(flow=False))
    assert rep["flow"] is False
    worst_iou, mbd = fidelity(blob, shapes)
    assert worst_iou >= 0.97 and mbd < 0.5


def test_point_budget_and_tolerance_are_honoured(blob):
    frames = blob.frames[:5]
    shapes, rep = shapes_from_mattes(frames, blob.alphas.get, options=ShapeOptions(max_points=8, flow=False))
    assert shapes[0].n_points <= 8
    loose, _ = shapes_from_mattes(frames, blob.alphas.get, options=ShapeOptions(tolerance=2.0, flow=False))
    tight, _ = shapes_from_mattes(frames, blob.alphas.get, options=ShapeOptions(tolerance=0.25, flow=False))
    assert loose[0].n_points < tight[0].n_points


def test_corners_stay_corners_over_time():
    clip = make_clip("star", W, H, 8)
    shapes, _ = shapes_from_mattes(clip.frames, clip.alphas.get, options=ShapeOptions(flow=False))
    s = shapes[0]
    assert s.n_points == 10 and all(k.corner.sum() == 10 for k in s.keys.values())
    assert fidelity(clip, shapes)[0] >= 0.97


def test_hole_becomes_a_hole_shape_with_its_parent():
    clip = make_clip("ring", W, H, 6)
    shapes, rep = shapes_from_mattes(clip.frames, clip.alphas.get, options=ShapeOptions(flow=False),
                                     object_name="hero")
    holes = [s for s in shapes if s.hole]
    assert rep["shapes"] == 1 and len(holes) == 1 and holes[0].parent == "hero"
    assert (holes[0].first, holes[0].last) == (clip.frames[0], clip.frames[-1])
    assert fidelity(clip, shapes)[0] >= 0.97


def test_split_starts_new_shapes_with_lifetimes():
    clip = make_clip("split", W, H, 12)
    shapes, rep = shapes_from_mattes(clip.frames, clip.alphas.get, options=ShapeOptions(flow=False))
    assert len(shapes) == 3
    before, *after = sorted(shapes, key=lambda s: s.first)
    assert before.first == clip.frames[0] and before.last < clip.frames[-1]
    assert all(s.first == before.last + 1 and s.last == clip.frames[-1] for s in after)
    assert {e["event"] for e in rep["events"]} == {"split"}
    assert any("split" in n for n in before.notes)
    assert fidelity(clip, shapes)[0] >= 0.97


def test_soft_matte_gives_feather():
    clip = make_clip("soft", W, H, 5)
    shapes, rep = shapes_from_mattes(clip.frames, clip.alphas.get, options=ShapeOptions(flow=False))
    assert shapes[0].feather == pytest.approx(clip.feather, rel=0.25)
    soft = rasterize_frame(shapes, clip.frames[2], (H, W), soft=True)
    assert np.abs(soft - clip.alphas[clip.frames[2]]).mean() < 0.02


def test_keys_only_where_needed_on_slow_motion():
    clip = make_clip("blob", W, H, 12, motion=0.05)
    every, _ = shapes_from_mattes(clip.frames, clip.alphas.get, options=ShapeOptions(flow=False))
    needed, rep = shapes_from_mattes(clip.frames, clip.alphas.get,
                                     options=ShapeOptions(flow=False, keys="needed", tolerance=0.75))
    assert len(needed[0].keys) < len(every[0].keys)
    assert {clip.frames[0], clip.frames[-1]} <= set(needed[0].keys)
    assert fidelity(clip, needed)[0] >= 0.97
    with pytest.raises(InputError):
        shapes_from_mattes(clip.frames, clip.alphas.get, options=ShapeOptions(keys="some"))


def test_gaps_end_shapes_and_cancel_stops():
    clip = make_clip("blob", W, H, 8)
    gap = {f: (None if f in (1004,) else a) for f, a in clip.alphas.items()}
    shapes, rep = shapes_from_mattes(clip.frames, gap.get, options=ShapeOptions(flow=False))
    assert [(s.first, s.last) for s in sorted(shapes, key=lambda s: s.first)] == [(1001, 1003), (1005, 1008)]
    token = CancelToken()
    token.cancel("test")
    with pytest.raises(Cancelled):
        shapes_from_mattes(clip.frames, clip.alphas.get, cancel=token)


def make_session(clip, tmp_path=None):
    frames = {f: clip.plates[f] for f in clip.frames}
    ac = ArrayClip(frames)
    path = None if tmp_path is None else tmp_path / "shot.roto.json"
    s = Session.create(ac.info.path, clip=ac, path=path, backend=FakeSegmenter(), cache=Cache(16 << 20))
    hero = s.add_object("hero")
    for f in clip.frames:
        s.set_keyframe(hero.id, f, clip.alphas[f] >= 0.5)
    return s


def test_shapes_from_a_session_use_its_masks_and_plate(blob):
    session = make_session(blob)
    ss = shapes_from_session(session, options=ShapeOptions(max_points=24))
    assert (ss.width, ss.height, ss.first, ss.last) == (W, H, blob.frames[0], blob.frames[-1])
    assert ss.objects == {1: "hero"} and ss.report["hero"]["flow"] is True
    assert all(s.object_name == "hero" for s in ss.shapes)
    assert fidelity(blob, ss.shapes)[0] >= 0.97
    part = shapes_from_session(session, ["hero"], frames=(1003, 1006), options=ShapeOptions(flow=False))
    assert (part.first, part.last) == (1003, 1006) and part.shapes[0].key_frames == [1003, 1004, 1005, 1006]
    from engine.errors import PromptError

    with pytest.raises(PromptError):
        shapes_from_session(session, [7])


def test_session_soft_alpha_is_preferred_when_present(blob):
    session = make_session(blob)
    soft = make_clip("soft", W, H, N)
    session.alpha = lambda obj, frame: soft.alphas[frame]  # what `roto matte` would give
    ss = shapes_from_session(session, options=ShapeOptions(flow=False))
    assert ss.shapes[0].feather > 2.0


def test_max_error_is_the_distance_between_curve_and_matte_outline_on_every_frame():
    # a star with only 5 points misses its tips; the report must say by how much — the largest
    # distance from curve to matte outline and back over all frames — not a fitting residual
    # between samples and curve parameters (which read 23.5 px here for a 14.8 px miss)
    clip = make_clip("star", W, H, N)
    for keys in ("all", "needed"):
        shapes, rep = shapes_from_mattes(clip.frames, clip.alphas.get,
                                         options=ShapeOptions(max_points=5, flow=False, keys=keys))
        s = shapes[0]
        measured = {f: boundary_distance([s.at(f)], [r.outer for r in extract_regions(clip.alphas[f])])[1]
                    for f in clip.frames}
        assert max(measured.values()) > 5.0  # a real miss, not a rounding-size one
        assert rep["max_error_px"] == pytest.approx(max(measured.values()), abs=0.05)
        for f, k in s.keys.items():
            assert k.error == pytest.approx(measured[f], abs=0.05)
        assert rep["frames_over_tolerance"] == sum(k.error > 0.5 for k in s.keys.values())
