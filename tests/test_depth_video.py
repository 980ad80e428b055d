"""Video depth: chunk planning, scale alignment at chunk seams (a known per-chunk scale is undone
exactly), cameras joined across chunks into one world, temporal smoothing, and the real DA3-small
architecture (random weights) through the chunked runner."""

from __future__ import annotations

import numpy as np
import pytest

from engine.depth.base import DepthInfo, DepthOut
from engine.depth.video import DepthRun, estimate_sequence, plan_chunks
from engine.errors import Cancelled
from engine.ops import camera_geometry as cg
from engine.util.progress import CancelToken

H, W = 60, 80
K = cg.intrinsics(70.0, 70.0, 39.5, 29.5)


class Source:
    """A FrameSource whose pictures carry their frame number in pixel (0, 0) (the fakes read it)."""

    def __init__(self, frames, texture_shift=0):
        self.frames = range(frames[0], frames[-1] + 1)
        self.shape = (H, W)
        rng = np.random.default_rng(0)
        self.tex = rng.random((H, W + 64, 3)).astype(np.float32)
        self.shift = texture_shift

    def read_working(self, f):
        img = self.tex[:, self.shift * (f - self.frames[0]) % 64:][:, :W].copy()
        img[0, 0, 0] = f / 10000.0
        return img

    def read_uint8(self, f):
        return (np.clip(self.read_working(f), 0, 1) * 255).astype(np.uint8)


def frame_of(img):
    return int(round(float(img[0, 0, 0]) * 10000))


def true_depth(f):
    x = np.linspace(-1, 1, W)[None, :]
    y = np.linspace(-1, 1, H)[:, None]
    return (3.0 + 0.5 * x + 0.3 * y + 0.02 * f + 0.2 * np.sin(3 * x + 0.1 * f)).astype(np.float32)


def true_c2w(f):
    c2w = np.eye(4)
    c2w[:3, :3] = cg._ry(0.02 * f) @ cg._rx(0.01 * f)
    c2w[:3, 3] = [0.05 * f, -0.01 * f, 0.02 * f]
    return c2w


class FakeMultiView:
    """Exact depth and cameras, but every call in its own scale and its own world (its first frame)."""

    def __init__(self, scales, chunk=4):
        self.scales = list(scales)
        self.calls = 0
        self.info = DepthInfo("fake-mv", "fake multi-view", False, kind="relative", multiview=True, camera=True,
                              chunk=chunk)
        self.token = "fake"
        self.reason = "fake"

    def estimate(self, images, intrinsics=None):
        s = self.scales[self.calls % len(self.scales)]
        self.calls += 1
        fs = [frame_of(i) for i in images]
        c2w0 = true_c2w(fs[0])
        out = []
        for f in fs:
            E = cg.c2w_to_w2c(true_c2w(f)) @ c2w0
            E[:3, 3] *= s
            conf = np.full((H, W), 0.9, np.float32)
            out.append(DepthOut(true_depth(f) * s, conf, K.copy(), E[:3]))
        return out


def test_plan_chunks_share_frames_and_cover_everything():
    assert plan_chunks(10, 4, 1) == [(0, 4), (3, 7), (6, 10)]
    assert plan_chunks(9, 4, 1) == [(0, 4), (3, 7), (5, 9)]  # last chunk full: shares 2
    assert plan_chunks(3, 8, 2) == [(0, 3)]
    assert plan_chunks(5, 1, 0) == [(i, i + 1) for i in range(5)]
    for n in range(1, 40):
        for c in (2, 3, 5, 8):
            for o in range(0, c):
                p = plan_chunks(n, c, o)
                covered = sorted({i for s, e in p for i in range(s, e)})
                assert covered == list(range(n)) and all(e - s <= c for s, e in p)
                assert all(b[0] > a[0] and a[1] - b[0] >= min(o, c - 1) for a, b in zip(p, p[1:]))


def test_chunk_seams_are_aligned_and_cameras_joined():
    frames = list(range(1001, 1011))
    est = FakeMultiView([1.0, 1.5, 0.7])
    run = DepthRun()
    outs = list(estimate_sequence(est, Source(frames), frames, chunk=4, overlap=1, run=run))
    assert [o.frame for o in outs] == frames and run.chunks == 3 and len(run.seams) == 2
    ratios = [float(np.median(o.depth / true_depth(o.frame))) for o in outs]
    assert np.allclose(ratios, 1.0, rtol=1e-5)  # one scale for the whole shot (the first chunk's)
    for o in outs:
        assert np.allclose(o.depth, true_depth(o.frame), rtol=1e-5)
    for s in run.seams:
        assert s.jump_before > 0.3 and s.jump_after < 1e-5
    assert [round(s.scale, 6) for s in run.seams] == [round(1 / 1.5, 6), round(1.5 / 0.7 / 1.5, 6)]
    c2w_first = true_c2w(1001)
    for o in outs:  # poses in the run's world: the first frame's camera is the origin
        want = cg.c2w_to_w2c(true_c2w(o.frame)) @ c2w_first
        assert np.allclose(cg.as_4x4(o.extrinsics), want, atol=1e-6), o.frame


def test_without_alignment_the_seams_jump():
    frames = list(range(1, 11))
    outs = list(estimate_sequence(FakeMultiView([1.0, 1.5, 0.7]), Source(frames), frames, chunk=4, overlap=1,
                                  align="none"))
    ratios = np.array([float(np.median(o.depth / true_depth(o.frame))) for o in outs])
    assert ratios.max() / ratios.min() > 2.0


class FlickerySingleView:
    """A static scene estimated frame by frame with a random global scale and shift and pixel noise."""

    def __init__(self):
        self.rng = np.random.default_rng(5)
        self.info = DepthInfo("flicker", "flickery single view", False, kind="affine", multiview=False, chunk=3)
        self.token = "f"
        self.reason = "f"

    def estimate(self, images, intrinsics=None):
        out = []
        for _ in images:
            s, t = self.rng.uniform(0.8, 1.25), self.rng.uniform(-0.2, 0.2)
            d = true_depth(0) * s + t + self.rng.normal(0, 0.01, (H, W))
            out.append(DepthOut(d.astype(np.float32)))
        return out


def flicker(outs):
    return float(np.mean([np.median(np.abs(b.depth - a.depth) / a.depth) for a, b in zip(outs, outs[1:])]))


def test_stabilisation_and_temporal_smoothing_remove_flicker():
    frames = list(range(1, 13))
    src = Source(frames, texture_shift=0)
    raw = list(estimate_sequence(FlickerySingleView(), src, frames, align="none"))
    stab = list(estimate_sequence(FlickerySingleView(), src, frames))  # auto: per-frame scale/shift stabilisation
    smooth = list(estimate_sequence(FlickerySingleView(), src, frames, temporal=0.6))
    f_raw, f_stab, f_smooth = flicker(raw), flicker(stab), flicker(smooth)
    assert f_raw > 0.05
    assert f_stab < f_raw / 5 and f_smooth < f_stab * 0.8, (f_raw, f_stab, f_smooth)


def test_cancel_between_frames():
    token = CancelToken()
    frames = list(range(1, 9))
    got = []
    with pytest.raises(Cancelled):
        for o in estimate_sequence(FakeMultiView([1.0], chunk=2), Source(frames), frames, overlap=1, cancel=token):
            got.append(o.frame)
            if len(got) == 2:
                token.cancel()
    assert got == [1, 2]


def test_random_da3_small_through_the_chunked_runner():
    pytest.importorskip("depth_anything_3", reason="depth-anything-3 is not installed (make setup)")
    from engine.depth.da3 import DA3Estimator

    est = DA3Estimator("da3-small", weights="random", process_res=56, device="cpu")
    frames = list(range(1001, 1008))
    run = DepthRun()
    outs = list(estimate_sequence(est, Source(frames, texture_shift=2), frames, chunk=3, overlap=1, run=run,
                                  temporal=0.3))
    assert [o.frame for o in outs] == frames and run.chunks == 3 and len(run.seams) == 2
    for o in outs:
        assert o.depth.shape == (H, W) and o.depth.dtype == np.float32 and np.all(o.depth > 0)
        assert o.extrinsics is not None and o.extrinsics.shape == (3, 4)
    assert np.allclose(outs[0].extrinsics, np.eye(4)[:3], atol=1e-5)
    for s in run.seams:
        assert s.jump_after <= s.jump_before + 1e-6
    assert run.model_seconds > 0 and run.to_dict()["frames"] == 7
