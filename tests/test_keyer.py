"""The colour-difference keyer on uneven screens, despill, and the keyer matter."""

from __future__ import annotations

import numpy as np
import pytest

from engine.eval.matting import sad
from engine.matting.base import MatteFrame, run_matter
from engine.matting.keyer import KeyerMatter
from engine.media.synthetic_matte import generate_matte_clip
from engine.ops.despill import despill, spill_map
from engine.ops.keyer import colour_difference_key, detect_screen, estimate_screen, screen_channel, screen_key


def _uneven_screen_composite(h=60, w=90, screen="green"):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 0.6 + 0.6 * xx / w  # strong fall-off across the screen
    s, a, c = screen_channel(screen)
    scr = np.zeros((h, w, 3), np.float32)
    scr[..., s] = 0.5 * light
    scr[..., a] = 0.05 * light
    scr[..., c] = 0.08 * light
    alpha = np.clip((xx - 30) / 10.0, 0, 1) * (yy > 15)
    fg = np.array([0.7, 0.5, 0.3], np.float32)  # no screen excess: the classic key is exact
    fg = fg[[0, 1, 2]] if screen == "green" else fg[[0, 2, 1]]
    img = alpha[..., None] * fg + (1 - alpha[..., None]) * scr
    return img.astype(np.float32), alpha.astype(np.float32), scr


@pytest.mark.parametrize("screen", ["green", "blue"])
def test_key_against_a_per_pixel_screen(screen):
    img, alpha, scr = _uneven_screen_composite(screen=screen)
    assert detect_screen(img, screen)
    a = colour_difference_key(img, scr, screen)
    assert np.abs(a - alpha).max() < 1e-4
    # one picked screen colour cannot handle the fall-off; the estimated screen map can
    single = colour_difference_key(img, scr[5, 5], screen)
    assert np.abs(single - alpha).max() > 0.2
    on_screen = alpha == 0
    est = estimate_screen(img, on_screen, sigma_fine=4, sigma_coarse=30)
    a2 = colour_difference_key(img, est, screen)
    assert np.abs(a2 - alpha)[alpha == 0].max() < 0.05
    assert np.abs(a2 - alpha).mean() < 0.02


def test_fg_key_makes_any_subject_colour_exact():
    img, alpha, scr = _uneven_screen_composite()
    fg = np.array([0.6, 0.2, 0.1], np.float32)  # strongly negative key
    img2 = alpha[..., None] * fg + (1 - alpha[..., None]) * scr
    classic = colour_difference_key(img2, scr)
    exact = colour_difference_key(img2, scr, fg_key=float(screen_key(fg[None, None, :])[0, 0]))
    soft = (alpha > 0) & (alpha < 1)
    assert np.abs(classic - alpha)[soft].max() > 0.1 and np.abs(exact - alpha).max() < 1e-4


def test_key_levels_and_signal():
    img, alpha, scr = _uneven_screen_composite()
    k = screen_key(img)
    assert k[alpha == 1].max() <= 1e-6 < k[alpha == 0].min()
    a = colour_difference_key(img, scr, black=0.2, white=0.8)
    assert a[(alpha > 0) & (alpha <= 0.19)].max() < 1e-6 and a[alpha >= 0.81].min() == 1
    with pytest.raises(ValueError):
        screen_channel("red")


def test_despill():
    px = np.array([[[0.3, 0.6, 0.2], [0.5, 0.2, 0.4]]], np.float32)
    d = despill(px, "green")
    assert d[0, 0, 1] == pytest.approx(0.25) and d[0, 0, 0] == pytest.approx(0.3)
    np.testing.assert_array_equal(d[0, 1], px[0, 1])  # no spill, untouched
    assert spill_map(px)[0, 0] == pytest.approx(0.35) and spill_map(px)[0, 1] == 0
    assert despill(px, "green", "max")[0, 0, 1] == pytest.approx(0.3)
    assert despill(px, "green", "min")[0, 0, 1] == pytest.approx(0.2)
    assert despill(px, "green", amount=0.5)[0, 0, 1] == pytest.approx(0.425)
    lifted = despill(px, "green", restore_luma=True)
    assert lifted[0, 0, 0] > d[0, 0, 0]
    b = despill(np.array([[[0.3, 0.2, 0.6]]], np.float32), "blue")
    assert b[0, 0, 2] == pytest.approx(0.25)


def test_keyer_matter_on_the_green_screen_clip():
    clip = generate_matte_clip("greenscreen", width=240, height=135, frames=4)
    m = KeyerMatter()
    frames = (MatteFrame(f, clip.read_working(f), {1: clip.mask(f)}) for f in clip.frames)
    for f, out in run_matter(m, frames, clip.shape):
        a = out[1].alpha
        gt = clip.alpha(f)
        assert sad(a, gt) < 0.7 * sad(clip.mask(f), gt)
        assert a[clip.mask(f) & (gt == 1)].mean() > 0.98  # the core is solid
        # garbage matte: the grey stand and the dark studio at the frame edges never key in
        assert a[:, :10].max() == 0 and a[:, -10:].max() == 0
        assert 0 < out[1].confidence <= 1 and out[1].stats["screen_key"] > 0


def test_keyer_without_a_screen_says_so():
    rng = np.random.default_rng(0)
    img = (0.4 + 0.05 * rng.random((60, 80, 3))).astype(np.float32)
    img[..., 1] = 0.2  # nothing green anywhere
    mask = np.zeros((60, 80), bool)
    mask[20:40, 30:50] = True
    out = KeyerMatter().process(KeyerMatter().init_state((60, 80)), MatteFrame(1, img, {1: mask}))
    assert out[1].stats.get("no_screen") and out[1].confidence == 0.0
    assert out[1].alpha[30, 40] == 1 and out[1].alpha[5, 5] == 0


def test_keyer_rejects_other_screens():
    from engine.errors import InputError

    with pytest.raises(InputError):
        KeyerMatter(screen="red")
    assert KeyerMatter(screen="blue").cache_token != KeyerMatter().cache_token
