"""Thin straight lines attached to an object, found from a click (synthetic frames, numpy only)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from engine.backends.classical.lines import find_attached_lines, lines_moving_with
from engine.backends.classical.prompt_segment import segment_prompt

H, W = 160, 240


def _texture(seed, cell):
    rng = np.random.default_rng(seed)
    n = rng.random((H // cell + 3, W // cell + 3, 3)).astype(np.float32)
    return cv2.resize(n, (W + 2 * cell, H + 2 * cell), interpolation=cv2.INTER_CUBIC)[cell : cell + H, cell : cell + W]


BG = np.clip(0.25 + 0.35 * _texture(1, 5) * np.array([0.5, 1.0, 0.8], np.float32), 0, 1)
OBJ = np.clip(np.array([0.9, 0.25, 0.2], np.float32) * (0.75 + 0.5 * _texture(2, 4)), 0, 1)


def _disk(cx, cy, r):
    yy, xx = np.mgrid[:H, :W]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def scene(t):
    """An object moving right 5 px a frame with a 1-px kite line to the top border; a scene pole (static)
    that touches the object's right side on frame 0. Returns (rgb uint8, object, its line, the pole)."""
    cx, cy = 90 + 5 * t, 110
    obj = _disk(cx, cy, 20)
    img = BG.copy()
    line = np.zeros((H, W), np.uint8)
    cv2.line(line, (cx - 10, cy - 18), (cx - 70, 0), 1, 1)
    pole = np.zeros((H, W), np.uint8)
    cv2.line(pole, (113, 102), (113, 0), 1, 2)
    pole_m = pole.astype(bool) & ~obj
    line_m = line.astype(bool) & ~obj
    img[pole_m] = 0.95
    tex = np.roll(OBJ, 5 * t, axis=1)  # the object carries its texture
    img[obj] = tex[obj]
    img[line_m] = 0.05
    return (img * 255).astype(np.uint8), obj, line_m, pole_m


def _covered(part, mask, tol=1):
    near = cv2.dilate(mask.astype(np.uint8), np.ones((2 * tol + 1, 2 * tol + 1), np.uint8)).astype(bool)
    return (part & near).sum() / max(1, part.sum())


def _angle(seg):
    return math.degrees(math.atan2(seg[3] - seg[1], seg[2] - seg[0])) % 360


def test_find_attached_lines_finds_both_straight_lines_touching_the_object():
    img, obj, _, _ = scene(0)
    segs = find_attached_lines(img, obj)
    assert segs.dtype == np.float32 and segs.shape[1] == 4
    angles = sorted(_angle(s) for s in segs)
    assert any(abs(a - 270.0) < 3 for a in angles)  # the pole, straight up
    kite = math.degrees(math.atan2(-92, -60)) % 360  # the kite line, up and to the left
    assert any(abs(a - kite) < 3 for a in angles)
    for s in segs:  # attached end first
        assert math.hypot(s[0] - 90, s[1] - 110) < math.hypot(s[2] - 90, s[3] - 110)
    k = min(segs, key=lambda s: abs(_angle(s) - kite))
    assert math.hypot(k[0] - 90, k[1] - 110) < 23  # the kite line starts on the object's edge (r = 20)


def test_find_attached_lines_on_a_plain_scene_finds_nothing():
    img = (BG * 255).astype(np.uint8)
    obj = _disk(90, 110, 20)
    img[obj] = (OBJ[obj] * 255).astype(np.uint8)
    assert len(find_attached_lines(img, obj)) == 0
    assert len(find_attached_lines(img, np.zeros((H, W), bool))) == 0


def test_lines_moving_with_keeps_the_line_that_follows_the_object():
    img0, obj, _, _ = scene(0)
    img1, _, _, _ = scene(1)
    segs = find_attached_lines(img0, obj)
    kept = lines_moving_with(img0, img1, obj, segs)
    assert len(kept) >= 1
    assert all(abs(_angle(s) - 270.0) > 10 for s in kept)  # the static pole is dropped
    # nothing moves: nothing can be told apart
    assert len(lines_moving_with(img0, img0, obj, segs)) == 0


@pytest.mark.parametrize("with_lines", [True, False])
def test_click_with_motion_reference_adds_the_attached_line_not_the_pole(with_lines):
    img0, obj, line, pole = scene(0)
    img1, _, _, _ = scene(1)
    m, score = segment_prompt(img0, points=[(90, 110)], labels=[1], motion_ref=img1, attached_lines=with_lines)
    assert m.shape == (H, W) and m.dtype == bool and 0 <= score <= 1
    assert (m & obj).sum() > 0.8 * obj.sum()
    assert _covered(pole, m) < 0.1
    far = line & ~_disk(90, 110, 60)  # GrabCut alone may take the line's first few pixels
    assert far.sum() > 40
    if with_lines:
        assert _covered(far, m) > 0.8
    else:
        assert _covered(far, m) < 0.2


def test_click_on_a_large_plate_finds_the_line_at_the_working_size_and_draws_it_full_size():
    big = 6  # 1440 x 960: searched on a 960-px copy, drawn back at full size
    img0, obj, line, pole = (cv2.resize(a.astype(np.uint8), (W * big, H * big), interpolation=cv2.INTER_NEAREST)
                             for a in scene(0))
    img1 = cv2.resize(scene(1)[0], (W * big, H * big), interpolation=cv2.INTER_NEAREST)
    obj, line, pole = obj.astype(bool), line.astype(bool), pole.astype(bool)
    m, _ = segment_prompt(img0, points=[(90 * big, 110 * big)], labels=[1], motion_ref=img1)
    far = line & ~cv2.resize(_disk(90, 110, 60).astype(np.uint8), (W * big, H * big)).astype(bool)
    assert _covered(far, m, tol=2) > 0.8
    assert _covered(pole, m, tol=2) < 0.1
