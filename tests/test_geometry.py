"""Depth geometry against ground truth: normals of exact planes and spheres, point clouds that
re-project to their pixels (Redwood RGB-D, fx = fy = 525), cameras across frames (the clip's
trajectory), the Nuke camera and .chan, PLY, conventions, alignment and depth mattes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.export.camera import CameraTrack, nuke_project, nuke_values, read_chan, write_chan, write_nuke_camera
from engine.export.ply import read_ply, write_ply
from engine.ops import camera_geometry as cg
from engine.ops.depth_align import apply, fit
from engine.ops.depth_convention import from_z, normalise_convention, ray_lengths, to_z
from engine.ops.depth_matte import combine, range_matte, split_planes
from engine.ops.normals import angular_error_deg, normals_from_depth, to_convention
from engine.ops.pointcloud import camera_points, point_cloud, project, transform_points, unproject
from tests.conftest import evaldata_path

K525 = cg.intrinsics(525.0, 525.0, 319.5, 239.5)
SHAPE = (480, 640)


def pixel_rays(shape, K):
    h, w = shape
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    Ki = np.linalg.inv(K)
    return np.stack([Ki[0, 0] * u + Ki[0, 2], Ki[1, 1] * v + Ki[1, 2], np.ones_like(u)], axis=-1)


def plane_depth(n, d, shape=SHAPE, K=K525):
    """Planar depth of the plane n·X = d (OpenCV camera space) seen through K."""
    r = pixel_rays(shape, K)
    return (d / (r @ np.asarray(n, np.float64))).astype(np.float32)


def sphere_depth(c, R, shape=SHAPE, K=K525):
    """Planar depth of a sphere (centre c, radius R), 0 off it; and its exact normals (OpenCV)."""
    r = pixel_rays(shape, K)
    c = np.asarray(c, np.float64)
    a = (r * r).sum(-1)
    b = -2 * (r @ c)
    cc = c @ c - R * R
    disc = b * b - 4 * a * cc
    hit = disc > 0
    t = np.where(hit, (-b - np.sqrt(np.where(hit, disc, 0))) / (2 * a), 0.0)
    P = r * t[..., None]
    n = (P - c) / R
    return np.where(hit, t, 0.0).astype(np.float32), np.where(hit[..., None], n, 0.0)


def redwood(frame: int):
    import cv2

    root = evaldata_path("depth-rgbd-open3d", "RGBD")
    z = cv2.imread(str(root / "depth" / f"{frame:05d}.png"), cv2.IMREAD_UNCHANGED).astype(np.float32) / 1000.0
    rgb = cv2.imread(str(root / "color" / f"{frame:05d}.jpg"))[:, :, ::-1].copy()
    return z, rgb


def redwood_c2w():
    """trajectory.log: per frame, a header line then the 4x4 camera-to-world matrix."""
    lines = evaldata_path("depth-rgbd-open3d", "RGBD", "trajectory.log").read_text().split("\n")
    out = []
    for i in range(0, len([x for x in lines if x.strip()]), 5):
        out.append(np.array([[float(v) for v in lines[i + 1 + r].split()] for r in range(4)]))
    return out


# --- normals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [(0, 0, 1), (0.3, -0.2, 0.93), (-0.5, 0.4, 0.77), (0.0, -0.8, 0.6)])
def test_normals_of_a_plane_are_exact(n):
    n = np.asarray(n) / np.linalg.norm(n)
    z = plane_depth(n, 2.0)
    assert (z > 0).all()
    got = normals_from_depth(z, K525, convention="opencv")
    want = np.broadcast_to(-n, got.shape)  # facing the camera: N · P < 0
    err = angular_error_deg(got, want)
    assert err.size == z.size and err.max() < 0.05, err.max()  # well under the 1° goal, at every pixel
    gl = normals_from_depth(z, K525)  # the EXR convention: +Y up, +Z to the viewer
    assert np.allclose(gl, to_convention(got, "gl"))
    assert (gl[..., 2] > 0).all()


def test_normals_of_a_sphere_within_a_degree():
    z, n_true = sphere_depth((0.1, -0.05, 3.0), 0.8)
    got = normals_from_depth(z, K525, convention="opencv")
    hit = z > 0
    # the silhouette (grazing rim, where a pixel spans a large depth range) is left out: 2 px
    import cv2

    inner = cv2.erode(hit.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    err = angular_error_deg(got, n_true, inner)
    assert inner.sum() > 20000
    assert err.mean() < 0.05 and np.percentile(err, 99) < 0.5 and err.max() < 1.0, (err.mean(), err.max())


def test_normals_stay_on_their_surface_at_depth_discontinuities():
    n_back = np.array([0.0, 0.0, 1.0])
    n_front = np.array([0.4, 0.1, 0.91])
    n_front /= np.linalg.norm(n_front)
    back = plane_depth(n_back, 4.0)
    front = plane_depth(n_front, 1.5)
    box = np.zeros(SHAPE, bool)
    box[150:330, 200:420] = True
    z = np.where(box, front, back)
    got = normals_from_depth(z, K525, convention="opencv")
    want = np.where(box[..., None], -n_front, -n_back)
    err = angular_error_deg(got, want)
    assert err.max() < 0.05  # right up to the edge on both sides: no pixel bridges the two planes
    naive = np.cross(np.gradient(camera_points(z, K525), axis=1), np.gradient(camera_points(z, K525), axis=0))
    naive /= np.linalg.norm(naive, axis=-1, keepdims=True)
    naive = np.where((naive[..., 2:] > 0), -naive, naive)
    assert angular_error_deg(naive, want).max() > 30  # what plain central differences do at the edge


def test_normals_undefined_without_depth():
    z = plane_depth((0, 0, 1), 2.0)
    z[100:110, 100:110] = 0
    z[0, 0] = np.nan
    n = normals_from_depth(z, K525)
    assert np.all(n[100:110, 100:110] == 0) and np.all(n[0, 0] == 0)
    assert np.allclose(np.linalg.norm(n[200:, 200:], axis=-1), 1.0)


# --- conventions -------------------------------------------------------------------------------


def test_depth_conventions_round_trip_and_mean_what_they_say():
    z = plane_depth((0.2, 0.1, 0.97), 3.0)
    P = camera_points(z, K525)
    dist = from_z(z, "distance", K525)
    assert np.allclose(dist, np.linalg.norm(P, axis=-1), rtol=1e-5)
    assert np.allclose(from_z(z, "z"), z)
    assert np.allclose(from_z(z, "nuke"), 1.0 / z, rtol=1e-6)
    for c in ("distance", "z", "inverse_z"):
        assert np.allclose(to_z(from_z(z, c, K525), c, K525), z, rtol=1e-5)
    z[0, :5] = [0, -1, np.nan, np.inf, 2]
    for c in ("distance", "z", "inverse_z"):
        out = from_z(z, c, K525)
        assert np.all(out[0, :4] == 0) and out[0, 4] > 0
    assert ray_lengths(SHAPE, K525)[239:241, 319:321].min() == pytest.approx(1.0, abs=1e-5)
    assert normalise_convention("1/Z") == "inverse_z" and normalise_convention(None) == "distance"
    with pytest.raises(ValueError, match="distance"):
        normalise_convention("disparity")


# --- point clouds against ground truth ---------------------------------------------------------


def test_point_cloud_from_gt_depth_reprojects_to_its_pixels():
    z, rgb = redwood(0)
    pts, idx = unproject(z, K525)
    assert len(pts) == (z > 0).sum() > 200000
    uv, zz = project(pts, K525)
    rows, cols = np.divmod(idx, z.shape[1])
    err = np.hypot(uv[:, 0] - cols, uv[:, 1] - rows)
    assert err.max() < 1e-6
    assert np.allclose(zz, z.reshape(-1)[idx], rtol=1e-6)
    cloud = point_cloud(z, K525, rgb=rgb, step=1)
    assert np.array_equal(cloud.colours, rgb.reshape(-1, 3)[cloud.pixels])


def test_world_point_clouds_agree_across_frames_with_the_clip_trajectory():
    """Frame 0's points, taken to the world by its pose and back into frame 4's camera, land on
    frame 4's own depth: the pose convention (OpenCV, w2c) is right end to end."""
    poses = redwood_c2w()
    z0, _ = redwood(0)
    z4, _ = redwood(4)
    w2c0 = cg.c2w_to_w2c(poses[0])
    w2c4 = cg.c2w_to_w2c(poses[4])
    cloud = point_cloud(z0, K525, w2c=w2c0, step=2)
    cam4 = transform_points(cloud.points, w2c4)
    uv, zc = project(cam4, K525)
    ok = (zc > 0) & (uv[:, 0] >= 0) & (uv[:, 0] <= 639) & (uv[:, 1] >= 0) & (uv[:, 1] <= 479)
    sampled = z4[np.rint(uv[ok, 1]).astype(int), np.rint(uv[ok, 0]).astype(int)]  # nearest pixel
    good = sampled > 0
    rel = np.abs(sampled[good] - zc[ok][good]) / sampled[good]
    assert ok.mean() > 0.8 and np.median(rel) < 0.01, (ok.mean(), np.median(rel))


def test_ply_round_trip_binary_with_colour_and_normals(tmp_path):
    rng = np.random.default_rng(0)
    P = rng.normal(size=(1000, 3)).astype(np.float32)
    C = rng.integers(0, 256, (1000, 3)).astype(np.uint8)
    N = rng.normal(size=(1000, 3)).astype(np.float32)
    path = write_ply(tmp_path / "a.ply", P, C, N, comments=["frame 1001", "Y up"])
    raw = path.read_bytes()
    assert raw.startswith(b"ply\nformat binary_little_endian 1.0\ncomment frame 1001\n")
    assert len(raw) - raw.index(b"end_header\n") - 11 == 1000 * (12 + 12 + 3)
    back = read_ply(path)
    assert np.array_equal(back["points"], P) and np.array_equal(back["colours"], C)
    assert np.array_equal(back["normals"], N) and back["comments"] == ["frame 1001", "Y up"]
    assert read_ply(write_ply(tmp_path / "b.ply", P))["colours"] is None


# --- cameras -----------------------------------------------------------------------------------


def test_euler_zxy_round_trip_and_nuke_axes():
    rng = np.random.default_rng(1)
    for _ in range(200):
        rx, ry, rz = rng.uniform(-89, 89), rng.uniform(-179, 179), rng.uniform(-179, 179)
        R = cg.matrix_zxy(rx, ry, rz)
        assert np.allclose(cg.euler_zxy(R), (rx, ry, rz), atol=1e-7)
    # a camera that turned 30° to its left (OpenCV yaw) is a positive Y rotation in Nuke's Y-up world
    c2w = np.eye(4)
    c2w[:3, :3] = cg._ry(math.radians(-30))  # OpenCV: +Y down, so a left turn is negative about +Y
    c2w[:3, 3] = [1.0, -2.0, 3.0]
    t, r = cg.nuke_camera_pose(c2w)
    assert np.allclose(t, [1.0, 2.0, -3.0]) and np.allclose(r, (0.0, 30.0, 0.0), atol=1e-9)
    assert np.allclose(cg.opencv_pose_from_nuke(t, r), c2w)
    assert np.allclose(cg.unwrap_degrees([170, -175, -160]), [170, 185, 200])
    K2 = cg.scale_intrinsics(K525, SHAPE, (240, 320))
    assert np.allclose(cg.scale_intrinsics(K2, (240, 320), SHAPE), K525)
    assert K2[0, 2] == pytest.approx(159.5) and K2[0, 0] == pytest.approx(262.5)
    assert cg.plausible_intrinsics(K525, SHAPE) and not cg.plausible_intrinsics(cg.intrinsics(736, 5.6e7, 77, 56),
                                                                                 (112, 154))


def test_nuke_camera_and_chan_reproject_world_points_to_their_pixels(tmp_path):
    """The exported camera (values read back from the .chan, with Nuke's projection) sees every
    world point of the exported cloud (same Nuke axes) exactly where it came from."""
    poses = redwood_c2w()
    frames = [1001 + i for i in range(5)]
    track = CameraTrack(frames, [K525] * 5, poses, 640, 480)
    chan = read_chan(write_chan(tmp_path / "cam.chan", track))
    assert chan.shape == (5, 8) and np.array_equal(chan[:, 0], frames)
    v = nuke_values(track)
    assert np.allclose(chan[:, 7], 2 * np.degrees(np.arctan(480 / (2 * 525.0))), atol=1e-6)  # vfov
    assert np.allclose(v["focal"], 525.0 * 24.576 / 640)
    gl = np.eye(4)
    gl[:3, :3] = cg.CV_TO_GL
    for i in (0, 3):
        z, _ = redwood(i)
        cloud = point_cloud(z, K525, w2c=cg.c2w_to_w2c(poses[i]), world_transform=gl, step=7)
        uv = nuke_project(cloud.points, chan[i, 1:4], chan[i, 4:7], v["focal"][i], 640, 480,
                          win_translate=v["win_translate"][i])
        rows, cols = np.divmod(cloud.pixels, 640)
        err = np.hypot(uv[:, 0] - cols, uv[:, 1] - rows)
        assert err.max() < 1e-3, err.max()
    nk = write_nuke_camera(tmp_path / "cam.nk", track, label='roto "depth"').read_text()
    assert nk.startswith("#! nuke -nx\nversion ") and "Root {" not in nk
    assert "Camera2 {" in nk and " rot_order ZXY" in nk and "{curve x1001 " in nk and "haperture 24.576" in nk
    nkparser = pytest.importorskip("nkparser")
    script = nkparser.Script.from_file(str(tmp_path / "cam.nk"))  # an independent parser reads it
    cams = [n for n in script.all_nodes() if n.class_name == "Camera2"]
    assert len(cams) == 1 and cams[0].get("name") == "DepthCamera" and cams[0].get("rot_order") == "ZXY"
    assert "curve x1001" in cams[0].get("translate")
    assert not [d for d in script.diagnostics if "ERROR" in str(d)], script.diagnostics


# --- alignment ---------------------------------------------------------------------------------


@pytest.mark.parametrize("space", ["depth", "inverse"])
def test_scale_shift_alignment_recovers_a_known_transform(space):
    rng = np.random.default_rng(3)
    gt = rng.uniform(1.0, 8.0, (120, 160)).astype(np.float32)
    s, t = 2.5, 0.7
    if space == "depth":
        pred = (gt - t) / s
    else:
        pred = 1.0 / ((1.0 / gt - t / 10) / s)
        t = t / 10
    pred = pred * (1 + rng.normal(0, 1e-4, pred.shape))
    bad = rng.random(pred.shape) < 0.1  # 10 % outliers (occlusions, moving objects)
    pred = np.where(bad, pred * rng.uniform(0.2, 3.0, pred.shape), pred).astype(np.float32)
    pred = np.where(pred > 0, pred, 1e-3).astype(np.float32)
    a = fit(pred, gt, mode="scale_shift", space=space)
    assert a.scale == pytest.approx(s, rel=2e-3) and a.shift == pytest.approx(t, abs=2e-3 * max(1, abs(t)))
    aligned = apply(pred, a)
    assert np.median(np.abs(aligned[~bad] - gt[~bad]) / gt[~bad]) < 1e-3
    sc = fit(pred / 3.0 * 0 + gt / 4.0, gt, mode="scale")
    assert sc.scale == pytest.approx(4.0, rel=1e-6) and sc.shift == 0.0
    assert fit(np.ones_like(gt), gt).scale == 0.0  # constant prediction: only a shift (the mean) is determined


# --- depth mattes ------------------------------------------------------------------------------


def test_depth_range_matte_split_and_object_intersection():
    d = np.linspace(0.0, 10.0, 101, dtype=np.float32)[None, :].repeat(3, 0)
    m = range_matte(d, 3.0, 5.0, 1.0, ramp="linear")
    x = d[0]
    assert np.all(m[0, (x >= 3) & (x <= 5)] == 1.0) and np.all(m[0, (x <= 2) | (x >= 6)] == 0.0)
    assert m[0, 25] == pytest.approx(0.5) and m[0, 55] == pytest.approx(0.5)
    assert m[0, 0] == 0.0  # no surface
    sp = split_planes(d, 3.0, 6.0, falloff=1.0)
    total = sp.foreground + sp.midground + sp.background
    assert np.allclose(total[:, 1:], 1.0) and np.all(total[:, 0] == 0)
    assert sp.foreground[0, 20] == 1.0 and sp.midground[0, 45] == 1.0 and sp.background[0, 80] == 1.0
    assert sp.foreground[0, 30] == pytest.approx(0.5) and sp.background[0, 60] == pytest.approx(0.5)
    auto = split_planes(d)
    assert 3.0 < auto.near_cut < auto.far_cut < 8.0
    obj = np.zeros_like(d)
    obj[:, :50] = 1.0
    both = combine(obj, m)
    assert np.all(both[:, 50:] == 0) and np.all(both[0, 30:50] == 1.0)
    assert np.allclose(combine(obj, m, "subtract") + both, obj)
    with pytest.raises(ValueError):
        range_matte(d, 5.0, 3.0)
