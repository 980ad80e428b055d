"""Depth kept with a session: the ``Session.depth`` / ``Session.normals`` seam, conventions, and
``roto export`` delivering ``depth.Z`` and ``N.X/Y/Z`` without any exporter change."""

from __future__ import annotations

import numpy as np
import pytest

from engine.depth.pipeline import run_depth
from engine.depth.prior import PriorEstimator
from engine.depth.store import set_convention, store_for
from engine.export.deliver import export_session
from engine.ops.camera_geometry import default_intrinsics
from engine.ops.depth_convention import from_z
from engine.ops.normals import normals_from_depth
from engine.session.session import Session
from tests.test_export_exr import make_session, oiio_read


def test_session_without_depth_exports_no_depth_layers(tmp_path):
    s = make_session(tmp_path)
    assert s.depth is None and s.normals is None  # the exporter's providers are unavailable
    rep = export_session(s, tmp_path / "out")
    assert "depth" not in rep.layers and "normals" not in rep.layers


def test_depth_stored_with_the_session_flows_into_the_export(tmp_path):
    s = make_session(tmp_path)
    rep = run_depth(s.clip, None, model="prior", session=s, temporal=0.0)
    assert rep.run.frames == 4 and rep.session_path == str(s.path)
    assert callable(s.depth) and callable(s.normals)
    z = PriorEstimator().layout(s.shape)
    K = default_intrinsics(s.shape)
    d = s.depth(1002)
    assert d.dtype == np.float32 and d.shape == s.shape
    assert np.allclose(d, from_z(z, "distance", K))  # camera distance by default
    n = s.normals(1002)
    assert n.shape == (*s.shape, 3) and np.allclose(n, normals_from_depth(z, K))
    assert (store_for(s).folder / "1002.exr").is_file()
    out = tmp_path / "out"
    rep = export_session(s, out)
    assert "depth" in rep.layers and "normals" in rep.layers
    px, chans = oiio_read(out / "shot010.1002.exr")
    assert np.allclose(px[:, :, chans.index("depth.Z")], d)
    got_n = np.stack([px[:, :, chans.index(f"N.{c}")] for c in "XYZ"], axis=-1)
    assert np.allclose(got_n, n, atol=1e-6)
    # the delivery convention is a setting of the session: Nuke 1/Z re-exports the frames
    set_convention(s, "inverse_z")
    s.save()
    rep = export_session(s, out, layers=["depth"])
    assert rep.frames_written == 4
    px, chans = oiio_read(out / "shot010.1003.exr")
    zz = px[:, :, chans.index("depth.Z")]
    assert np.allclose(zz[z > 0], 1.0 / z[z > 0], rtol=1e-6)


def test_depth_persists_with_the_project_file_and_stale_files_are_ignored(tmp_path):
    s = make_session(tmp_path)
    run_depth(s.clip, None, model="prior", session=s, temporal=0.0)
    again = Session.open(s.path)
    assert callable(again.depth) and np.allclose(again.depth(1001), s.depth(1001))
    rec = again.data.meta["depth"]
    assert rec["model"] == "prior" and rec["convention"] == "distance" and rec["camera"] == "assumed"
    rec["token"] = "something-else"  # files from another run never pass as this run's
    again.__dict__.pop("_depth_cache", None)
    assert again.depth(1001) is None


def test_depth_for_a_frame_without_a_file_is_none(tmp_path):
    s = make_session(tmp_path)
    run_depth(s.clip, None, model="prior", session=s, temporal=0.0, frames=[1001, 1002])
    assert s.depth(1001) is not None and s.depth(1004) is None


def test_a_session_on_another_plate_is_refused(tmp_path):
    s = make_session(tmp_path)
    other = make_session(tmp_path / "b", frames={1001: np.zeros((30, 40, 3), np.float32)})
    from engine.errors import InputError

    with pytest.raises(InputError, match="session's plate"):
        run_depth(other.clip, None, model="prior", session=s)


def test_normals_the_model_predicts_are_kept_and_delivered(tmp_path):
    from engine.depth.base import DepthInfo, DepthOut

    class WithNormals:
        info = DepthInfo("fake-n", "fake with normals", False, kind="metric", normals=True, chunk=2)
        token = "fake-n"
        reason = "fake"

        def estimate(self, images, intrinsics=None):
            h, w = images[0].shape[:2]
            n = np.zeros((h, w, 3), np.float32)
            n[..., 1] = 1.0  # everything faces up: not what the depth would say
            return [DepthOut(np.full((h, w), 2.0, np.float32), None, None, None, n) for _ in images]

    s = make_session(tmp_path)
    run_depth(s.clip, tmp_path / "d", estimator=WithNormals(), session=s, normals=True, temporal=0.0)
    assert np.all(s.normals(1001)[..., 1] == 1.0)
    px, chans = oiio_read(tmp_path / "d" / "depth.1001.exr")
    assert np.all(px[:, :, chans.index("N.Y")] == 1.0) and np.all(px[:, :, chans.index("N.Z")] == 0.0)
