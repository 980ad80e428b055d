"""Edge controls and the matting building blocks: every op is a pure function with a check."""

from __future__ import annotations

import numpy as np
import pytest

from engine.ops.blur import blur
from engine.ops.core_edge import core_edge
from engine.ops.feather import feather
from engine.ops.holes import fill_holes
from engine.ops.islands import remove_islands
from engine.ops.levels import clip_levels
from engine.ops.morphology import grow, signed_distance
from engine.ops.motion_blur import motion_blur
from engine.ops.temporal import static_confidence, temporal_smooth, unexplained_change
from engine.ops.trimap import band_width, expand_by_evidence, motion_width, trimap_from_mask, unknown_of


def square(h=40, w=40, y0=10, y1=30, x0=10, x1=30):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_signed_distance_binary_and_soft():
    m = square()
    d = signed_distance(m)
    assert d[20, 20] < 0 and d[0, 0] > 0
    assert d[20, 10] == pytest.approx(-0.5) and d[20, 9] == pytest.approx(0.5)
    assert d[20, 5] == pytest.approx(4.5)
    # a soft edge shifted by a quarter pixel shifts the distance by a quarter pixel
    soft = m.astype(np.float32)
    soft[:, 9] = np.where(m[:, 10], 0.25, 0.0)
    ds = signed_distance(soft)
    assert ds[20, 9] == pytest.approx(0.25)
    assert signed_distance(np.zeros((4, 4), bool)).min() > 0
    assert signed_distance(np.ones((4, 4), bool)).max() < 0


def test_grow_binary_is_subpixel_and_symmetric():
    m = square()
    for amount in (0.5, 1.25, 3.0):
        g = grow(m, amount)
        assert g.dtype == np.float32 and 0 <= g.min() and g.max() <= 1
        # coverage along a row grows by about 2 * amount
        assert g[20].sum() == pytest.approx(m[20].sum() + 2 * amount, abs=0.51)
    e = grow(m, -2.0)
    assert e[20].sum() == pytest.approx(m[20].sum() - 4.0, abs=0.51)
    assert grow(m, 0.0)[20].sum() == pytest.approx(20.0)


def test_grow_soft_is_continuous_and_monotonic():
    a = grow(square(), 0.0) * 0.8
    sums = [grow(a, r).sum() for r in (-2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2)]
    assert all(x < y for x, y in zip(sums, sums[1:]))
    np.testing.assert_allclose(grow(a, 0), a)
    half = grow(a, 0.5)
    np.testing.assert_allclose(half, 0.5 * a + 0.5 * grow(a, 1.0), atol=1e-6)


def test_feather_ramp_width_and_placement():
    m = square(40, 60, 0, 40, 20, 60)  # a vertical edge at x = 19.5
    f = feather(m, 6.0)
    row = f[20]
    assert row[10] == 0 and row[30] == 1
    assert ((row > 0) & (row < 1)).sum() == 6
    assert row[19] == pytest.approx(0.5 + 0.5 / 6, abs=1e-5) or row[20] == pytest.approx(0.5 + 0.5 / 6, abs=1e-5)
    inside = feather(m, 6.0, placement="inside")[20]
    assert inside[:20].max() == 0.0 and inside[26] == 1.0  # nothing grows outwards
    outside = feather(m, 6.0, placement="outside")[20]
    assert outside[20:].min() == 1.0 and outside[13] == 0.0 and 0 < outside[14] < 0.1  # nothing shrinks
    smooth = feather(m, 6.0, falloff="smooth")
    assert smooth[20, 19] != f[20, 19] or smooth[20, 18] != f[20, 18]
    np.testing.assert_array_equal(feather(m, 0), m.astype(np.float32))
    with pytest.raises(ValueError):
        feather(m, 2, placement="middle")


def test_feather_keeps_detail_outside():
    m = square(40, 60, 0, 40, 20, 60).astype(np.float32)
    m[10, 5] = 0.4  # a faint strand pixel far outside
    assert feather(m, 4.0)[10, 5] == pytest.approx(0.4)
    assert feather(m, 4.0, keep_detail=False)[10, 5] == 0.0


def test_blur_and_keep_core():
    m = square().astype(np.float32)
    b = blur(m, 2.0)
    assert b[20, 10] < 1 and b[20, 8] > 0
    assert b.sum() == pytest.approx(m.sum(), rel=0.01)
    k = blur(m, 2.0, keep_core=True)
    assert k[m > 0].min() == 1.0 and k[20, 8] > 0
    np.testing.assert_array_equal(blur(m, 0), m)


def test_clip_levels():
    a = np.linspace(0, 1, 11, dtype=np.float32)
    c = clip_levels(a, 0.2, 0.8)
    assert c[2] == 0 and c[8] == 1 and c[5] == pytest.approx(0.5)
    assert clip_levels(a, 0, 1, gamma=2.0)[4] == pytest.approx(np.sqrt(0.4), rel=1e-5)
    with pytest.raises(ValueError):
        clip_levels(a, 0.5, 0.5)


def test_fill_holes():
    m = square().astype(np.float32)
    m[18:22, 18:22] = 0  # a 16 px hole
    m[10:12, 28:30] = 0  # a notch touching the outside: not a hole
    f = fill_holes(m)
    assert f[20, 20] == 1 and f[10, 29] == 0
    assert fill_holes(m, max_area=10)[20, 20] == 0  # too big for the limit
    assert fill_holes(m, max_area=16)[20, 20] == 1


def test_remove_islands_keeps_soft_rim_of_kept_objects():
    m = square().astype(np.float32)
    m[9, 10:30] = 0.4  # soft rim of the big object
    m[2:4, 2:4] = 1.0  # a 4 px speck
    m[1, 2:4] = 0.3  # its rim
    r = remove_islands(m, 10)
    assert r[2:4, 2:4].max() == 0 and r[1, 2] == 0
    assert r[20, 20] == 1 and r[9, 15] == pytest.approx(0.4)
    np.testing.assert_array_equal(remove_islands(m, 1), m)


def test_temporal_smooth():
    a = np.zeros((4, 4), np.float32)
    p = np.ones((4, 4), np.float32)
    np.testing.assert_array_equal(temporal_smooth(a, p, 1.0, 0.0), a)
    np.testing.assert_array_equal(temporal_smooth(a, p, 1.0, 1.0), p)
    conf = np.zeros((4, 4), np.float32)
    conf[0, 0] = 1
    out = temporal_smooth(a, p, conf, 0.5)
    assert out[0, 0] == 0.5 and out[1, 1] == 0


def test_static_confidence_and_unexplained_change():
    rng = np.random.default_rng(1)
    img = rng.random((30, 30, 3), dtype=np.float32)
    assert static_confidence(img, img).min() == pytest.approx(1.0)
    assert static_confidence(img, img + 0.2).max() < 0.01
    alpha = np.clip(np.linspace(-1, 2, 30, dtype=np.float32)[None, :].repeat(30, 0), 0, 1)
    change, region = unexplained_change(alpha, alpha, img, img)
    assert region.any() and change[region].max() == 0
    shimmer = np.clip(alpha + 0.2 * (rng.random(alpha.shape, dtype=np.float32) - 0.5), 0, 1)
    change, region = unexplained_change(shimmer, alpha, img, img)
    assert change[region].mean() > 0.03
    # a picture change as large as the alpha change explains it
    flat = np.zeros((30, 30, 3), np.float32)
    flat[:, 15:] = 1.0
    a2 = (flat[..., 0] > 0).astype(np.float32) * 0.6 + 0.2
    b2 = a2 + 0.1
    change, region = unexplained_change(b2, a2, flat * 0.1 + 0.1, flat * 0.1)
    assert change.max() == pytest.approx(0.0, abs=1e-6)


def test_motion_blur_along_flow():
    m = np.zeros((10, 60), np.float32)
    m[:, 30:] = 1.0
    flow = np.zeros((10, 60, 2), np.float32)
    flow[..., 0] = 8.0  # moving right 8 px/frame
    mb = motion_blur(m, flow, 0.5)
    row = mb[5]
    assert row[20] == 0 and row[40] == 1
    assert 3 <= ((row > 0.01) & (row < 0.99)).sum() <= 5  # a ramp of about shutter * 8 = 4 px
    assert row.sum() == pytest.approx(m[5].sum(), abs=0.6)
    np.testing.assert_array_equal(motion_blur(m, np.zeros_like(flow), 0.5), m)
    np.testing.assert_array_equal(motion_blur(m, flow, 0.0), m)


def test_core_edge_sum_to_alpha():
    a = blur(square(), 1.5)
    core, edge = core_edge(a)
    np.testing.assert_allclose(core + edge, a, atol=1e-6)
    assert core[20, 20] == 1 and edge[20, 20] == 0
    assert edge.max() > 0.3 and core[a < 0.98].max() == 0.0 or core[a < 0.98].max() < 0.98
    z_core, z_edge = core_edge(a * 0.5)  # nothing solid: all edge
    assert z_core.max() == 0 and np.allclose(z_edge, a * 0.5)


def test_trimap_widths_and_band():
    m = square()
    t = trimap_from_mask(m, 3.0)
    assert t[20, 20] == 1 and t[0, 0] == 0 and t[20, 10] == 0.5 and t[20, 8] == 0.5
    row = t[20]
    assert (row == 0.5).sum() == 12  # 3 px each side of both edges (pixel centres within 3 px)
    per = np.full(m.shape, 1.0, np.float32)
    per[:, 30:] = 5.0
    t2 = trimap_from_mask(m, per, per)
    assert (t2[20, :20] == 0.5).sum() < (t2[20, 20:] == 0.5).sum()
    assert unknown_of(t).sum() == (t == 0.5).sum()
    assert band_width((270, 480)) == pytest.approx(2.565)
    assert band_width((1080, 1920)) == pytest.approx(10.26)
    assert band_width((1080, 1920), confidence=0.5) == pytest.approx(15.39)
    flow = np.zeros((20, 20, 2), np.float32)
    flow[10, 10] = (6.0, 8.0)
    mw = motion_width(flow, shutter=0.5, reach=2)
    assert mw[10, 10] == pytest.approx(5.0) and mw[10, 12] == pytest.approx(5.0) and mw[0, 0] == 0


def test_expand_by_evidence_takes_in_strands():
    h, w = 60, 80
    img = np.full((h, w, 3), 0.2, np.float32)
    img[:, :, 1] = 0.5  # green-grey background
    m = np.zeros((h, w), bool)
    m[20:60, 20:60] = True
    img[m] = (0.8, 0.4, 0.2)
    img[5:20, 40] = 0.5 * np.array([0.8, 0.4, 0.2]) + 0.5 * img[0, 0]  # a half-transparent strand above
    t = trimap_from_mask(m, 2.0)
    assert t[10, 40] == 0
    t2 = expand_by_evidence(t, img, reach=20, bg_sigma=3, fg_sigma=12)
    assert t2[10, 40] == 0.5 and t2[6, 40] == 0.5
    assert t2[5, 10] == 0  # plain background stays known
