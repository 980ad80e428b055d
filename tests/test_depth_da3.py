"""Depth Anything 3 through the adapter: the real da3-small architecture with random weights at a
small size (shapes, dtypes, cameras), weights through the model manager from checkpoints saved
here, device/precision rules, and the registry's choices and sentences."""

from __future__ import annotations

import numpy as np
import pytest

from engine.depth.registry import get_depth_estimator, resolve_depth_estimator
from engine.errors import BackendUnavailable, ModelError

da3_pkg = pytest.importorskip("depth_anything_3", reason="depth-anything-3 is not installed (make setup)")
torch = pytest.importorskip("torch")

from engine.depth import da3  # noqa: E402

H, W, RES = 90, 120, 56  # plate size (not a multiple of 14) and network input (42 x 56)


def frames(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.random((H, W, 3)).astype(np.float32)
    return [np.clip(np.roll(base, 3 * i, axis=1) + 0.02 * i, 0, 1).astype(np.float32) for i in range(n)]


@pytest.fixture(scope="module")
def est():
    return da3.DA3Estimator("da3-small", weights="random", process_res=RES, device="cpu", precision="fp32")


def test_random_da3_small_through_the_adapter(est):
    imgs = frames(3)
    outs = est.estimate(imgs)
    assert len(outs) == 3 and est.info.multiview and est.info.camera and est.info.kind == "relative"
    for o in outs:
        assert o.depth.shape == (H, W) and o.depth.dtype == np.float32 and np.all(o.depth > 0)
        assert o.confidence.shape == (H, W) and o.confidence.dtype == np.float32
        assert 0.0 <= o.confidence.min() and o.confidence.max() < 1.0
        assert o.extrinsics.shape == (3, 4) and np.all(np.isfinite(o.extrinsics))
        assert o.intrinsics is None or (o.intrinsics.shape == (3, 3))
    assert np.allclose(outs[0].extrinsics, np.eye(4)[:3], atol=1e-5)  # the first frame is the world origin
    assert "RANDOM WEIGHTS" in est.reason and "CPU float32" in est.reason
    again = est.estimate(imgs)
    assert all(np.array_equal(a.depth, b.depth) for a, b in zip(outs, again))  # deterministic
    K = np.array([[100.0, 0, 59.5], [0, 100.0, 44.5], [0, 0, 1]])
    given = est.estimate(imgs[:1], K)[0]
    assert np.array_equal(given.intrinsics, K)  # the user's camera wins


def test_network_input_size_and_normalisation():
    assert da3.input_size(1080, 1920, 504) == (280, 504)
    assert da3.input_size(90, 120, 56) == (42, 56)
    assert all(v % 14 == 0 for v in da3.input_size(1001, 777, 333))
    x = da3.to_network_input([np.full((10, 20, 3), 0.485, np.float32)], (14, 28))
    assert tuple(x.shape) == (1, 1, 3, 14, 28) and abs(float(x[0, 0, 0].mean())) < 1e-5
    with pytest.raises(ModelError):
        da3.input_size(100, 100, 10)


def test_precision_on_cpu_is_never_float16():
    c = da3.choose_da3_device("cpu", "fp16")
    assert c.dtype == torch.bfloat16 and "float16 is not used on a CPU" in c.reason
    assert da3.choose_da3_device("cpu", None).dtype == torch.float32


def test_bf16_forward_runs(est):
    e16 = da3.DA3Estimator("da3-small", weights="random", process_res=RES, device="cpu", precision="bf16")
    a = est.estimate(frames(1))[0].depth
    b = e16.estimate(frames(1))[0].depth
    assert b.dtype == np.float32 and np.all(np.isfinite(b)) and "bf16" in e16.reason
    assert np.median(np.abs(a - b) / a) < 0.1


def test_weights_through_the_model_manager(tmp_path, monkeypatch):
    from safetensors.torch import save_model

    monkeypatch.setenv("ROTO_MODELS", str(tmp_path))
    with pytest.raises(ModelError, match="roto models fetch da3-small"):
        da3.DA3Estimator("da3-small", process_res=RES)
    ref = da3.DA3Estimator("da3-small", weights="random", process_res=RES, seed=7)
    wrapper = torch.nn.Module()  # saved like the authors' Hub mixin: `model.` keys, tied tensors stored once
    wrapper.model = ref.net
    target = tmp_path / "da3-small" / "model.safetensors"
    target.parent.mkdir()
    save_model(wrapper, str(target))
    name, why = resolve_depth_estimator("auto")
    assert name == "da3-small" and "Apache-2.0" in why
    loaded, why = get_depth_estimator("auto", process_res=RES, device="cpu")
    assert loaded.weights == target and "RANDOM" not in loaded.reason
    img = frames(2)
    for a, b in zip(ref.estimate(img), loaded.estimate(img)):
        assert np.array_equal(a.depth, b.depth)
    pt = tmp_path / "plain.pt"  # a bare torch state dict works too
    torch.save(ref.net.state_dict(), pt)
    assert np.array_equal(da3.DA3Estimator("da3-small", weights=pt, process_res=RES).estimate(img[:1])[0].depth,
                          ref.estimate(img[:1])[0].depth)


def test_damaged_and_mismatched_weights_say_what_is_wrong(tmp_path, est):
    sd = est.net.state_dict()
    bad = tmp_path / "truncated.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ModelError, match="damaged or not a weights file"):
        da3.DA3Estimator("da3-small", weights=bad, process_res=RES)
    k = next(k for k, v in sd.items() if v.ndim == 2)
    wrong = dict(sd)
    wrong[k] = torch.zeros(3, 3)
    torch.save(wrong, tmp_path / "shape.pt")
    with pytest.raises(ModelError, match="tensor shapes differ"):
        da3.DA3Estimator("da3-small", weights=tmp_path / "shape.pt", process_res=RES)
    missing = dict(sd)
    missing.pop(k)
    torch.save({"model": missing}, tmp_path / "missing.pt")
    with pytest.raises(ModelError, match="1 tensor\\(s\\) missing"):
        da3.DA3Estimator("da3-small", weights=tmp_path / "missing.pt", process_res=RES)


def test_metric_preset_scales_by_focal_over_300(est, monkeypatch):
    """da3metric-large's conversion (metres = raw * focal / 300), checked on the small network."""
    imgs = frames(1)
    raw = est.estimate(imgs)[0].depth
    K = np.array([[150.0, 0, 59.5], [0, 150.0, 44.5], [0, 0, 1]])
    monkeypatch.setattr(est, "preset", da3.PRESETS["da3metric-large"])
    metric = est.estimate(imgs, K)[0].depth
    f_in = 150.0 * 56 / 120  # the focal length in network-input pixels
    assert np.allclose(metric, raw * f_in / 300.0, rtol=1e-5)


def test_registry_choices_and_licences(tmp_path, monkeypatch):
    monkeypatch.setenv("ROTO_MODELS", str(tmp_path))
    with pytest.raises(BackendUnavailable) as info:
        resolve_depth_estimator("auto")
    text = info.value.sentence()
    assert "roto models fetch da3-small" in text and "--model prior" in text
    with pytest.raises(BackendUnavailable, match="roto models fetch da3-large"):
        resolve_depth_estimator("da3-large")
    name, why = resolve_depth_estimator("da3-large", weights_given=True)
    assert name == "da3-large" and "NON-COMMERCIAL" in why and "CC BY-NC 4.0" in why
    name, why = resolve_depth_estimator("prior")
    assert name == "prior" and "not a measurement" in why
    with pytest.raises(BackendUnavailable, match="no depth model named"):
        resolve_depth_estimator("midas")
    (tmp_path / "da3-large").mkdir()
    (tmp_path / "da3-large" / "model.safetensors").write_bytes(b"x")
    with pytest.raises(BackendUnavailable):  # large/giant are never picked by auto, even when present
        resolve_depth_estimator("auto")
