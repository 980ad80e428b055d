"""Unit tests of the classical tracker's cues on small synthetic frames (numpy only, no data files).

* ``motion``: :func:`tolerant_difference`, :func:`fit_background_motion`, :func:`photometric_evidence`;
* ``anchor``: :meth:`KeyframeAnchor.local_votes` (part-wise keyframe-mask transfer);
* ``prompt_segment``: :func:`motion_residual` and :func:`segment_prompt` with several motion
  reference frames.

Scenes are procedural: a smoothed-noise background panned by a known integer shift (the camera)
and a textured square or disc translated by another known shift on top of it.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.backends.classical.anchor import KeyframeAnchor, sift_points
from engine.backends.classical.colour_model import rgb_to_lab
from engine.backends.classical.motion import fit_background_motion, photometric_evidence, tolerant_difference
from engine.backends.classical.prompt_segment import motion_residual, segment_prompt
from engine.errors import PromptError
from engine.ops.flow import dis_flow

MARGIN = 40  # canvas border, so that panned frames never run off the background texture
GREENISH = np.array([0.5, 0.7, 0.55], np.float32)
RED = np.array([0.9, 0.25, 0.2], np.float32)


def smooth_noise(h, w, seed, cell=5):
    rng = np.random.default_rng(seed)
    n = rng.random((h // cell + 3, w // cell + 3, 3)).astype(np.float32)
    img = cv2.resize(n, (w + 2 * cell, h + 2 * cell), interpolation=cv2.INTER_CUBIC)[cell : cell + h, cell : cell + w]
    return np.clip(img, 0, 1)


def red_texture(h, w, seed, lo=0.6, hi=0.7, cell=4):
    return np.clip(RED * (lo + hi * smooth_noise(h, w, seed, cell=cell)), 0, 1)


def erode(m, k):
    return cv2.erode(m.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)


def dilate(m, k):
    return cv2.dilate(m.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)


def iou(a, b):
    return float((a & b).sum() / max(1, (a | b).sum()))


def pan_scene(h, w, *, pos, size, obj_v, cam_v, n=2, flat=None, statics=(), noise=0.0, seed=0):
    """Frames ``uint8 (h, w, 3)`` and object masks: the background moves by ``cam_v`` px a frame (the
    A → B displacement of its content), the textured square (top-left ``pos``) by ``obj_v``.

    ``flat``: ``(x0, y0, x1, y1)`` of frame 0 painted uniform grey (widened so it stays inside it);
    ``statics``: ``(x, y, seed)`` red squares of ``size`` painted into the background (follow the camera).
    """
    canvas = smooth_noise(h + 2 * MARGIN, w + 2 * MARGIN, 1) * GREENISH + 0.15
    if flat is not None:
        x0, y0, x1, y1 = flat
        canvas[MARGIN + y0 : MARGIN + y1, MARGIN + x0 - 30 : MARGIN + x1 + 30] = 0.5
    for x, y, s in statics:
        canvas[MARGIN + y : MARGIN + y + size, MARGIN + x : MARGIN + x + size] = red_texture(size, size, s)
    tex = red_texture(size, size, 5)
    rng = np.random.default_rng(seed)
    frames, masks = [], []
    for t in range(n):
        bu, bv = cam_v[0] * t, cam_v[1] * t
        img = canvas[MARGIN - bv : MARGIN - bv + h, MARGIN - bu : MARGIN - bu + w].copy()
        x, y = pos[0] + obj_v[0] * t, pos[1] + obj_v[1] * t
        img[y : y + size, x : x + size] = tex
        m = np.zeros((h, w), bool)
        m[y : y + size, x : x + size] = True
        f = img * 255.0 + 0.5
        if noise:
            f = f + rng.normal(0.0, noise, f.shape)
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
        masks.append(m)
    return frames, masks


# --------------------------------------------------------------------------------------------
# motion.tolerant_difference
# --------------------------------------------------------------------------------------------


def _shift(img, dx, dy):
    """``out[y, x] = img[y - dy, x - dx]`` (content moves by (dx, dy)), borders replicated."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_REPLICATE)


def test_tolerant_difference_constant_colours_is_the_lab_distance():
    a = np.zeros((6, 7, 3), np.float32) + (50.0, 0.0, 0.0)
    b = np.zeros((6, 7, 3), np.float32) + (53.0, 4.0, 0.0)
    d = tolerant_difference(a, b)
    assert d.shape == (6, 7) and d.dtype == np.float32
    np.testing.assert_allclose(d, 5.0, atol=1e-5)


@pytest.mark.parametrize("dx, dy", [(1, 0), (0, -1), (1, 1), (-1, 1)])
def test_tolerant_difference_forgives_shifts_within_the_radius(dx, dy):
    lab = rgb_to_lab((smooth_noise(40, 50, 3, cell=3) * 255).astype(np.uint8))
    moved = _shift(lab, dx, dy)
    assert np.abs(lab - moved).sum(axis=2)[3:-3, 3:-3].mean() > 1.0  # the shift does change pixels
    d = tolerant_difference(lab, moved, radius=1)
    assert d[2:-2, 2:-2].max() < 1e-4


def test_tolerant_difference_sees_shifts_beyond_the_radius():
    lab = rgb_to_lab((smooth_noise(40, 50, 3, cell=3) * 255).astype(np.uint8))
    moved = _shift(lab, 3, 0)
    d1 = tolerant_difference(lab, moved, radius=1)[4:-4, 4:-4]
    assert np.median(d1) > 1.0 and (d1 > 0.1).mean() > 0.8
    d3 = tolerant_difference(lab, moved, radius=3)[4:-4, 4:-4]
    assert d3.max() < 1e-4


# --------------------------------------------------------------------------------------------
# motion.fit_background_motion
# --------------------------------------------------------------------------------------------

H, W = 120, 160
GX = np.arange(W, dtype=np.float64)[None, :]
GY = np.arange(H, dtype=np.float64)[:, None]
HOMOGRAPHY = np.array([[1.01, 0.02, 3.0], [-0.015, 0.99, -2.0], [2e-5, -3e-5, 1.0]])
AFFINE = np.array([[0.98, 0.03, 1.5], [-0.02, 1.02, 2.5]])


def _homography_maps(m):
    den = m[2, 0] * GX + m[2, 1] * GY + m[2, 2]
    return (m[0, 0] * GX + m[0, 1] * GY + m[0, 2]) / den, (m[1, 0] * GX + m[1, 1] * GY + m[1, 2]) / den


def _flow_of(mx, my):
    return np.stack([mx - GX, my - GY], axis=2).astype(np.float32)


def _outlier_square():
    out = np.zeros((H, W), bool)
    out[30:80, 50:110] = True
    return out


def test_fit_background_motion_recovers_a_homography_with_the_object_excluded():
    tx, ty = _homography_maps(HOMOGRAPHY)
    flow = _flow_of(tx, ty)
    out = _outlier_square()
    flow[out] = (10.0, -7.0)  # an independently moving object
    got = fit_background_motion(flow, ~out)
    assert got is not None
    mx, my, ratio = got
    assert mx.shape == (H, W) and my.shape == (H, W) and mx.dtype == np.float32 and my.dtype == np.float32
    # everywhere, the object's pixels included: where the *background* there would go
    assert np.abs(mx - tx).max() < 0.02 and np.abs(my - ty).max() < 0.02
    assert ratio > 0.99


def test_fit_background_motion_ransac_rejects_a_minority_of_outliers():
    tx, ty = _homography_maps(HOMOGRAPHY)
    flow = _flow_of(tx, ty)
    out = _outlier_square()
    flow[out] = (10.0, -7.0)
    frac = out.mean()  # ~0.16 of the selected points disagree
    mx, my, ratio = fit_background_motion(flow, np.ones((H, W), bool))
    assert np.abs(mx - tx).max() < 0.05 and np.abs(my - ty).max() < 0.05
    assert abs(ratio - (1.0 - frac)) < 0.04
    # the outliers dominate the fit when they are all that is selected
    mx2, my2, _ = fit_background_motion(flow, out)
    assert np.abs(mx2 - GX - 10.0)[out].max() < 0.05 and np.abs(my2 - GY + 7.0)[out].max() < 0.05


def test_fit_background_motion_affine_model_and_few_points():
    tx = AFFINE[0, 0] * GX + AFFINE[0, 1] * GY + AFFINE[0, 2]
    ty = AFFINE[1, 0] * GX + AFFINE[1, 1] * GY + AFFINE[1, 2]
    flow = _flow_of(tx, ty)
    mx, my, ratio = fit_background_motion(flow, np.ones((H, W), bool), model="affine")
    assert np.abs(mx - tx).max() < 0.02 and np.abs(my - ty).max() < 0.02 and ratio > 0.99
    # 40 points (< 60): affine even when a homography is asked for; still exact
    sel = np.zeros((H, W), bool)
    sel[10:110:25, 5:155:16] = True
    assert 30 <= sel.sum() < 60
    mx, my, _ = fit_background_motion(flow, sel)
    assert np.abs(mx - tx).max() < 0.02 and np.abs(my - ty).max() < 0.02
    # fewer than 30 points: no fit
    sel2 = np.zeros((H, W), bool)
    sel2[10:110:25, 5:155:30] = True
    assert sel2.sum() < 30
    assert fit_background_motion(flow, sel2) is None


# --------------------------------------------------------------------------------------------
# motion.photometric_evidence
# --------------------------------------------------------------------------------------------

OBJ_POS, OBJ_SIZE, OBJ_V, CAM_V = (30, 30), 36, (5, 3), (2, 0)
FLAT = (100, 70, 150, 110)  # x0, y0, x1, y1: a textureless grey patch of the background


def _evidence_scene(noise=0.0):
    (a, b), (ma, mb) = pan_scene(H, W, pos=OBJ_POS, size=OBJ_SIZE, obj_v=OBJ_V, cam_v=CAM_V, flat=FLAT,
                                 noise=noise)
    flow = np.zeros((H, W, 2), np.float32)
    flow[...] = CAM_V
    flow[ma] = OBJ_V  # the exact flow: the object moves by OBJ_V, everything else with the camera
    bg_sel = ~dilate(ma, 9)
    bgm = fit_background_motion(flow, bg_sel)
    assert bgm is not None
    flat = np.zeros((H, W), bool)
    x0, y0, x1, y1 = FLAT
    flat[y0 + 4 : y1 - 4, x0 + 4 : x1 - 4] = True
    return a, b, ma, mb, flow, bgm, bg_sel, flat


def test_photometric_evidence_exact_flow_signs():
    a, b, ma, mb, flow, bgm, bg_sel, flat = _evidence_scene()
    pe = photometric_evidence(a, b, flow, bgm, noise_sel=bg_sel)
    assert pe.shape == (H, W) and pe.dtype == np.float32
    assert np.isfinite(pe).all() and np.abs(pe).max() <= 3.0
    assert pe[erode(ma, 5)].mean() > 2.5  # the object moves unlike the camera, and the flow explains it
    textured_bg = bg_sel & ~flat
    assert np.abs(pe[textured_bg]).max() < 0.05  # followed the camera, residual 0: no evidence either way
    assert np.abs(pe[flat]).max() < 0.05
    # the last two columns land outside B under the camera's motion (+2 px): not scored
    assert (pe[:, W - 2 :] == 0).all() and (pe[erode(ma, 5)] > 0).mean() > 0.98


def test_photometric_evidence_smeared_flow_is_negative_on_texture_and_zero_on_flat():
    """Dense flow smears the object's motion onto the background around it (and a residual onto
    textureless areas): textured background that demonstrably followed the camera gets negative
    evidence, flat background none."""
    a, b, ma, mb, flow, bgm, bg_sel, flat = _evidence_scene(noise=2.0)
    ring = dilate(ma, 13) & ~ma
    smeared = flow.copy()
    smeared[ring] = OBJ_V
    flat_patch = np.zeros((H, W), bool)
    flat_patch[78:102, 108:142] = True
    smeared[flat_patch] = (6.0, 3.0)  # a flow error inside the textureless patch
    pe = photometric_evidence(a, b, smeared, bgm, noise_sel=bg_sel & ~ring & ~flat_patch)
    # the ring away from the object's edges and from where it is seen in B (ghosts)
    ghost = _shift(mb.astype(np.uint8), -CAM_V[0], -CAM_V[1]).astype(bool)  # B's object seen from A's grid
    clean_ring = ring & ~dilate(ma, 5) & ~dilate(mb | ghost, 5)
    assert clean_ring.sum() > 150
    assert pe[clean_ring].mean() < -1.5 and np.median(pe[clean_ring]) <= -2.9
    assert abs(pe[erode(flat_patch, 7)].mean()) < 0.1  # the frames cannot tell on a flat area
    assert pe[erode(ma, 5)].mean() > 2.0


def test_photometric_evidence_object_moving_with_the_camera_gives_nothing():
    (a, b), (ma, _) = pan_scene(H, W, pos=OBJ_POS, size=OBJ_SIZE, obj_v=CAM_V, cam_v=CAM_V, noise=2.0)
    flow = np.zeros((H, W, 2), np.float32)
    flow[...] = CAM_V
    bgm = fit_background_motion(flow, ~dilate(ma, 9))
    pe = photometric_evidence(a, b, flow, bgm)
    assert np.abs(pe).max() < 0.05


def test_photometric_evidence_valid_and_clip():
    a, b, ma, mb, flow, bgm, bg_sel, flat = _evidence_scene()
    valid = np.ones((H, W), bool)
    valid[:, :48] = False  # the left part of the object is not scored
    pe = photometric_evidence(a, b, flow, bgm, valid=valid, clip=1.25)
    assert (pe[:, :48] == 0).all()
    assert np.abs(pe).max() <= 1.25 + 1e-6
    right = erode(ma, 5) & valid
    assert right.any() and pe[right].mean() > 1.2


def test_photometric_evidence_with_dis_flow():
    """End to end with real (DIS) flow on noisy frames: strong on the object, weak elsewhere."""
    a, b, ma, mb, _, _, _, flat = _evidence_scene(noise=2.0)
    flow = dis_flow(a, b, preset="medium")
    bg_sel = ~dilate(ma, 9)
    bgm = fit_background_motion(flow, bg_sel)
    assert bgm is not None and bgm[2] > 0.8
    ex, ey = np.abs(bgm[0] - GX - CAM_V[0]), np.abs(bgm[1] - GY - CAM_V[1])
    assert np.median(ex) < 0.1 and np.median(ey) < 0.1 and ex.max() < 1.0 and ey.max() < 1.0
    pe = photometric_evidence(a, b, flow, bgm, noise_sel=bg_sel)
    obj = pe[erode(ma, 5)].mean()
    far = pe[~dilate(ma, 31) & ~flat].mean()
    assert obj > 1.5 and far < 0.5 and obj - far > 1.5
    assert abs(pe[flat].mean()) < 0.3


# --------------------------------------------------------------------------------------------
# anchor.KeyframeAnchor.local_votes
# --------------------------------------------------------------------------------------------

AH, AW = 144, 192
IDENT = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _disc(cx, cy, r):
    yy, xx = np.mgrid[:AH, :AW]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def _render_discs(parts):
    """``parts``: list of (centre in the keyframe, centre now, radius, texture seed)."""
    img = smooth_noise(AH, AW, 1) * GREENISH + 0.15
    for (c0, c1, r, seed) in parts:
        tex = np.roll(red_texture(AH, AW, seed, lo=0.3, hi=1.0, cell=3), (c1[1] - c0[1], c1[0] - c0[0]), axis=(0, 1))
        m = _disc(c1[0], c1[1], r)
        img[m] = tex[m]
    return (img * 255 + 0.5).astype(np.uint8)


def _grey(rgb):
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _fit_anchor(parts):
    key = _render_discs([(c0, c0, r, s) for c0, _, r, s in parts])
    kmask = np.zeros((AH, AW), bool)
    for c0, _, r, _ in parts:
        kmask |= _disc(c0[0], c0[1], r)
    anchor = KeyframeAnchor()
    anchor.fit(_grey(key), kmask, lambda xy: np.asarray(xy, np.float64), kmask)
    assert anchor.points is not None and len(anchor.points) >= 8
    cur = _render_discs(parts)
    cmask = np.zeros((AH, AW), bool)
    for _, c1, r, _ in parts:
        cmask |= _disc(c1[0], c1[1], r)
    pts, desc = sift_points(_grey(cur))
    assert pts is not None
    return anchor, pts, desc, cmask


def _check_votes(fg, cnt, mask, k=5, clean=True):
    """The votes cover the moved object and say "object" there; discs reaching out of it say
    "background" (``clean``: no stray vote at all outside, as after the ``glob`` consistency check)."""
    assert fg.dtype == np.float32 and cnt.dtype == np.float32 and fg.shape == cnt.shape == mask.shape
    assert (fg >= 0).all() and (fg <= cnt + 1e-5).all()
    q = fg / np.maximum(cnt, 1e-6)
    inner, outer, has = erode(mask, k), ~dilate(mask, k), cnt > 0
    assert (inner & has).sum() > 0.8 * inner.sum()
    assert q[inner & has].mean() > 0.9
    assert (outer & has).sum() > 50
    assert q[outer & has].mean() < (0.02 if clean else 0.3)
    assert cnt[outer].sum() < 0.3 * cnt.sum()  # most votes sit on the moved object


def test_local_votes_follow_a_translated_object():
    shift = (18, 11)
    anchor, pts, desc, cmask = _fit_anchor([((70, 60), (70 + shift[0], 60 + shift[1]), 26, 5)])
    fg, cnt = anchor.local_votes(pts, desc, IDENT, (AH, AW), radius=0.4)
    _check_votes(fg, cnt, cmask, clean=False)  # a keyframe edge keypoint may match the static background
    # a consistent global similarity keeps the right matches only
    glob = np.array([[1.0, 0.0, shift[0]], [0.0, 1.0, shift[1]]])
    fg2, cnt2 = anchor.local_votes(pts, desc, IDENT, (AH, AW), glob=glob, radius=0.4)
    _check_votes(fg2, cnt2, cmask)
    assert (cnt2 <= cnt).all() and (fg2 <= fg).all()
    # a match moved far off is a stray vote without ``glob``, and dropped with it
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(anchor.desc, desc, k=2)
    j = next(pr[0].trainIdx for pr in pairs if pr[0].distance < 0.5 * pr[1].distance)
    stray = pts.copy()
    stray[j] += (60.0, 40.0)
    fg4, cnt4 = anchor.local_votes(stray, desc, IDENT, (AH, AW), radius=0.4)
    sx, sy = int(round(stray[j][0])), int(round(stray[j][1]))
    assert cnt4[sy, sx] > cnt[sy, sx]
    fg5, cnt5 = anchor.local_votes(stray, desc, IDENT, (AH, AW), glob=glob, radius=0.4)
    assert cnt5[sy, sx] == 0 and fg5[~dilate(cmask, 5)].sum() == 0
    wrong = np.array([[1.0, 0.0, 80.0], [0.0, 1.0, -40.0]])
    fg3, cnt3 = anchor.local_votes(pts, desc, IDENT, (AH, AW), glob=wrong, radius=0.4)
    assert not fg3.any() and not cnt3.any()


def test_local_votes_in_a_reduced_crop():
    anchor, pts, desc, cmask = _fit_anchor([((70, 60), (88, 71), 26, 5)])
    crop_from_full = np.array([[0.5, 0.0, -10.0], [0.0, 0.5, -5.0]])  # half size, window at (20, 10)
    shape = (AH // 2, AW // 2)
    glob = np.array([[1.0, 0.0, 18.0], [0.0, 1.0, 11.0]])
    fg, cnt = anchor.local_votes(pts, desc, crop_from_full, shape, glob=glob, radius=0.4)
    cm = cv2.warpAffine(cmask.astype(np.uint8), crop_from_full, shape[::-1], flags=cv2.INTER_NEAREST).astype(bool)
    _check_votes(fg, cnt, cm, k=3)


def test_local_votes_follow_parts_moving_apart():
    """Two parts of one keyframe object move differently: each part's votes follow it."""
    parts = [((60, 55), (75, 50), 20, 5), ((125, 90), (115, 105), 20, 8)]
    anchor, pts, desc, cmask = _fit_anchor(parts)
    fg, cnt = anchor.local_votes(pts, desc, IDENT, (AH, AW), radius=0.25)
    q = fg / np.maximum(cnt, 1e-6)
    for _, (cx, cy), r, _ in parts:
        inner = _disc(cx, cy, r - 4)
        has = inner & (cnt > 0)
        assert has.sum() > 0.6 * inner.sum() and q[has].mean() > 0.9
    outer = ~dilate(cmask, 5) & (cnt > 0)
    assert outer.any() and q[outer].mean() < 0.1
    # where the keyframe had the parts (now background) there is no support for the object
    for (cx, cy), _, r, _ in parts:
        old = _disc(cx, cy, r) & ~dilate(cmask, 5)
        assert fg[old].sum() < 0.05 * fg.sum()


def test_local_votes_without_descriptors_are_zero():
    anchor, pts, desc, _ = _fit_anchor([((70, 60), (88, 71), 26, 5)])
    for p, d in [(None, None), (pts, None), (None, desc), (pts[:1], desc[:1])]:
        fg, cnt = anchor.local_votes(p, d, IDENT, (50, 60))
        assert fg.shape == cnt.shape == (50, 60) and fg.dtype == cnt.dtype == np.float32
        assert not fg.any() and not cnt.any()
    # an anchor fitted on a textureless keyframe has no keypoints: no votes either
    flat = np.full((AH, AW), 128, np.uint8)
    m = _disc(70, 60, 26)
    empty = KeyframeAnchor()
    empty.fit(flat, m, lambda xy: np.asarray(xy, np.float64), m)
    assert empty.desc is None
    fg, cnt = empty.local_votes(pts, desc, IDENT, (AH, AW))
    assert not fg.any() and not cnt.any()


# --------------------------------------------------------------------------------------------
# prompt_segment.motion_residual / segment_prompt(motion_ref=[...])
# --------------------------------------------------------------------------------------------

PH, PW = 180, 240
P_POS, P_SIZE = (80, 60), 44
CLICK = [(P_POS[0] + 22, P_POS[1] + 22)]


@pytest.fixture(scope="module")
def moving_clip():
    """A red square moving left/down over a panning background, right next to a static red square of
    the same colours (so a colour-only segmentation takes both); 4 frames, light noise."""
    frames, masks = pan_scene(PH, PW, pos=P_POS, size=P_SIZE, obj_v=(-5, 3), cam_v=(2, 1), n=4,
                              statics=[(P_POS[0] + P_SIZE, P_POS[1], 9)], noise=2.0)
    return frames, masks


def test_motion_residual_one_and_several_references(moving_clip):
    frames, masks = moving_clip
    up = [cv2.resize(f, (2 * PW, 2 * PH), interpolation=cv2.INTER_LINEAR) for f in frames]
    r1, s1 = motion_residual(up[0], [up[1]], work_size=PW)  # worked at half size
    r3, s3 = motion_residual(up[0], up[1:], work_size=PW)
    for r, s in ((r1, s1), (r3, s3)):
        assert r.dtype == np.float32 and r.shape == (PH, PW)
        assert s == pytest.approx(0.5)
        obj, far = r[erode(masks[0], 5)], r[~dilate(masks[0], 15)]
        assert np.median(obj) > 3.0 and np.median(far) < 0.5
        assert (obj > 3.0).mean() > 0.6
    # full size: scale 1
    r, s = motion_residual(frames[0], frames[1:2])
    assert r.shape == (PH, PW) and s == 1.0


def test_motion_residual_median_drops_a_one_frame_ghost(moving_clip):
    frames, masks = moving_clip
    blob = np.zeros((PH, PW), bool)
    blob[120:160, 20:60] = True
    bad = frames[2].copy()  # something appears in this reference frame only
    bad[blob] = (np.clip(np.array([0.2, 0.3, 0.9]) * (0.6 + 0.7 * smooth_noise(PH, PW, 33, cell=4)), 0, 1)[blob]
                 * 255).astype(np.uint8)
    r1, _ = motion_residual(frames[0], [bad])
    r3, _ = motion_residual(frames[0], [frames[1], bad, frames[3]])
    assert np.median(r1[blob]) > 1.0
    assert np.median(r3[blob]) < 0.3
    assert np.median(r3[erode(masks[0], 5)]) > 3.0


@pytest.fixture(scope="module")
def static_result(moving_clip):
    frames, _ = moving_clip
    return segment_prompt(frames[0], points=CLICK)


def test_segment_prompt_with_motion_references(moving_clip, static_result):
    frames, masks = moving_clip
    m0 = masks[0]
    static, _ = static_result
    assert iou(static, m0) < 0.7  # colour alone takes the static neighbour too (measured 0.50)
    one, s1 = segment_prompt(frames[0], points=CLICK, motion_ref=frames[1])
    assert one.shape == (PH, PW) and one.dtype == bool and 0.0 <= s1 <= 1.0
    assert iou(one, m0) > 0.9  # measured 0.98
    several, s3 = segment_prompt(frames[0], points=CLICK, motion_ref=list(frames[1:]))
    assert several.shape == (PH, PW) and several.dtype == bool and 0.0 <= s3 <= 1.0
    assert iou(several, m0) > 0.75  # measured 0.87-0.92 over noise seeds
    assert (several & m0).sum() > 0.95 * several.sum()  # and does not spill onto the static square


def test_segment_prompt_empty_reference_list_is_static(moving_clip, static_result):
    frames, _ = moving_clip
    m, s = segment_prompt(frames[0], points=CLICK, motion_ref=[])
    np.testing.assert_array_equal(m, static_result[0])
    assert s == static_result[1]


@pytest.mark.parametrize("bad", [
    lambda f: f[:-8],  # wrong size
    lambda f: f.astype(np.float32) / 255.0,  # wrong dtype
    lambda f: f[:, :, 0],  # not RGB
])
def test_segment_prompt_rejects_bad_motion_references(moving_clip, bad):
    frames, _ = moving_clip
    with pytest.raises(PromptError):
        segment_prompt(frames[0], points=CLICK, motion_ref=bad(frames[1]))
    with pytest.raises(PromptError):  # one bad frame in a list is enough
        segment_prompt(frames[0], points=CLICK, motion_ref=[frames[1], bad(frames[2]), frames[3]])


# --- background lock (tracker) ---------------------------------------------------------------------


def _started_state(tracker, size=(96, 128)):
    h, w = size
    img = (255 * smooth_noise(h, w, 3)).astype(np.uint8)
    m = np.zeros((h, w), bool)
    m[30:60, 40:80] = True
    return tracker.start(img, m)


def test_background_lock_fires_after_the_object_stops_moving_unlike_the_background():
    from engine.backends.classical.tracker import ClassicalTracker, TrackerParams

    tr = ClassicalTracker(TrackerParams(lock_ratio=0.05, lock_history=4, lock_frames=3, lock_min_px=4.0))
    st = _started_state(tr)
    size = 40.0
    fired = [tr._locked_on_background(st, s, size) for s in (12.0, 11.0, 13.0, 12.0)]
    assert not any(fired)  # moving 12 px a frame against the background: a healthy track
    assert not tr._locked_on_background(st, 0.2, size)  # one still frame is not a lock
    assert not tr._locked_on_background(st, None, size)  # frames that cannot tell change nothing
    assert not tr._locked_on_background(st, 0.3, size)
    assert tr._locked_on_background(st, 0.1, size)  # the third still frame in a row


def test_background_lock_needs_an_object_that_moved_against_the_background():
    from engine.backends.classical.tracker import ClassicalTracker, TrackerParams

    tr = ClassicalTracker(TrackerParams(lock_ratio=0.05, lock_history=4, lock_frames=3, lock_min_px=4.0))
    st = _started_state(tr)
    # an object moving with the camera from the start (2 px < lock_min_px): never a lock
    seps = [2.0, 2.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert not any(tr._locked_on_background(st, s, 40.0) for s in seps)
    # a slow-down to a third of its motion is not a lock either
    st2 = _started_state(tr)
    seps = [12.0] * 4 + [4.0] * 6
    assert not any(tr._locked_on_background(st2, s, 40.0) for s in seps)


def test_reseed_moves_the_mask_from_before_the_slide_at_its_velocity_then_gives_up_on_a_second_lock():
    from engine.backends.classical.tracker import ClassicalTracker, TrackerParams

    tr = ClassicalTracker(TrackerParams(lock_ratio=0.05, lock_history=4, lock_frames=3))
    st = _started_state(tr)
    box = (40, 30, 80, 60)
    crop_ = np.full((30, 40), 255, np.uint8)
    # frames 1..5: the object moved by (+2, +1) a frame; the slide began after frame 2
    st.extra["trail"] = [(f, (box[0] + 2 * f, box[1] + f, box[2] + 2 * f, box[3] + f), crop_, (2.0, 1.0))
                         for f in range(1, 6)]
    st.frames = 6
    res = tr._reseed(st)
    assert res is not None and not res.occluded
    # the seed is frame 2's mask moved on by 4 frames at (2, 1) px a frame
    assert st.box == (40 + 4 + 8, 30 + 2 + 4, 80 + 4 + 8, 60 + 2 + 4)
    assert res.mask.sum() == 30 * 40 and res.mask[36, 52] and not res.mask[35, 52]
    assert st.extra["trail"] == [] and st.velocity == (2.0, 1.0)
    # a second lock soon after: no re-seed (the caller then reports the object lost and searches)
    st.extra["trail"] = [(f, box, crop_, (0.0, 0.0)) for f in range(7, 12)]
    st.frames = 9
    assert tr._reseed(st) is None
