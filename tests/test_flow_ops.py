"""Optical flow, warping and forward-backward consistency (engine.ops.flow)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.ops.flow import dis_flow, fb_consistency, fb_error, resize_flow, to_grey_u8, warp, warp_mask


def texture(h, w, seed=0):
    rng = np.random.default_rng(seed)
    import cv2

    noise = rng.random((h // 4 + 2, w // 4 + 2)).astype(np.float32)
    img = cv2.resize(noise, (w + 8, h + 8), interpolation=cv2.INTER_CUBIC)
    img = cv2.GaussianBlur(img, (0, 0), 1.0)
    img = (img - img.min()) / (img.max() - img.min())
    return (img * 255).astype(np.uint8)


def test_flow_recovers_translation():
    big = texture(160, 200)
    a = big[10:130, 10:170]
    b = big[7:127, 5:165]  # content moves right by 5, down by 3
    f = dis_flow(a, b, preset="medium")
    assert f.shape == (120, 160, 2) and f.dtype == np.float32
    inner = f[20:-20, 20:-20]
    assert np.median(inner[..., 0]) == pytest.approx(5.0, abs=0.5)
    assert np.median(inner[..., 1]) == pytest.approx(3.0, abs=0.5)


def test_flow_accepts_rgb_and_float_and_scale():
    big = texture(160, 200)
    a = np.repeat(big[4:124, 4:164, None], 3, axis=2)
    b = np.repeat(big[4:124, 0:160, None], 3, axis=2)  # content moves right by 4
    f = dis_flow(a.astype(np.float32) / 255, b, scale=0.5)
    assert f.shape == (120, 160, 2)
    assert np.median(f[20:-20, 20:-20, 0]) == pytest.approx(4.0, abs=0.8)


def test_warp_mask_by_known_flow():
    m = np.zeros((50, 60), bool)
    m[10:20, 10:25] = True
    flow = np.zeros((50, 60, 2), np.float32)
    flow[..., 0] = -7  # each pixel of this frame looks 7 px to the left in the other frame
    out = warp_mask(m, flow)
    expected = np.zeros_like(m)
    expected[10:20, 17:32] = True
    assert (out == expected).all()
    soft = warp_mask(m, flow * 0.5 + 0.0, soft=True)
    assert soft.dtype == np.float32 and 0.0 <= soft.min() and soft.max() <= 1.0


def test_warp_keeps_dtype_and_channels():
    img = np.random.default_rng(1).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    out = warp(img, np.zeros((30, 40, 2), np.float32))
    assert out.dtype == np.uint8 and (out == img).all()


def test_fb_consistency_flags_occluded_region():
    h, w = 60, 80
    fab = np.zeros((h, w, 2), np.float32)
    fba = np.zeros((h, w, 2), np.float32)
    # a block moves 6 px right from A to B; in B its old place is covered by background
    fab[20:40, 20:40, 0] = 6
    fba[20:40, 26:46, 0] = -6
    ok, err = fb_consistency(fab, fba)
    assert ok[30, 30] and ok[5, 5]
    # pixels of A just right of the block are occluded in B (covered by the block): inconsistent
    assert not ok[30, 43]
    assert err[30, 43] > 3
    assert fb_error(fab, fba).shape == (h, w)


def test_resize_flow_scales_vectors():
    f = np.ones((10, 20, 2), np.float32)
    g = resize_flow(f, (20, 40))
    assert g.shape == (20, 40, 2)
    assert np.allclose(g, 2.0)


def test_bad_inputs():
    with pytest.raises(ValueError):
        dis_flow(np.zeros((10, 10), np.uint8), np.zeros((12, 10), np.uint8))
    with pytest.raises(ValueError):
        to_grey_u8(np.zeros((4, 4, 2), np.uint8))


def test_fine_preset_is_sharper_at_a_moving_object_edge():
    # a textured square moves 4 px right over a still textured background: "fine" (computed down to
    # full size) errs less than "medium" both along the square's edge and inside it
    import cv2

    h, w, dx = 180, 320, 4
    bg, obj = texture(h, w, 1)[:h, :w], texture(h, w, 2)[:h, :w]
    m = np.zeros((h, w), bool)
    m[60:120, 100:180] = True
    a, b = bg.copy(), bg.copy()
    a[m] = obj[m]
    b[np.roll(m, dx, axis=1)] = obj[m]
    truth = np.zeros((h, w, 2), np.float32)
    truth[m, 0] = dx
    k = np.ones((7, 7), np.uint8)
    inner = cv2.erode(m.astype(np.uint8), k) > 0
    band = (cv2.dilate(m.astype(np.uint8), k) > 0) & ~inner
    err = {p: np.linalg.norm(dis_flow(a, b, preset=p) - truth, axis=2) for p in ("medium", "fine")}
    assert err["fine"][band].mean() < 0.85 * err["medium"][band].mean()
    assert err["fine"][inner].mean() < 0.5 * err["medium"][inner].mean()
