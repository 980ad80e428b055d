"""The MatAnyone adapter, driven through a fake honouring MatAnyone's inference API."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import BackendUnavailable
from engine.matting.base import MatteFrame, run_matter
from tests.fakes import matanyone_pkg

pytest.importorskip("torch")


def _frames(n=6, h=40, w=64, start=1001):
    rng = np.random.default_rng(0)
    mask = np.zeros((h, w), bool)
    mask[10:30, 10:30] = True
    for i in range(n):
        img = rng.random((h, w, 3), dtype=np.float32)
        yield MatteFrame(start + i, img, {1: mask if i == 0 else None})


def test_unavailable_without_the_package(monkeypatch):
    import importlib.util

    from engine.matting import matanyone
    from engine.matting.registry import resolve_matter

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matanyone" else real(name, *a))
    reason = matanyone.unavailable()
    assert reason and "pip install git+https://github.com/pq-yang/MatAnyone" in reason and "non-commercial" in reason
    with pytest.raises(BackendUnavailable, match="matanyone"):
        resolve_matter("matanyone")


def test_first_frame_protocol_and_propagation(monkeypatch):
    log = matanyone_pkg.install(monkeypatch)
    from engine.matting.matanyone import MatAnyoneMatter

    m = MatAnyoneMatter(warmup=3, erode=0, dilate=0, chunk=0)
    outs = list(run_matter(m, _frames(), (40, 64)))
    assert [f for f, _ in outs] == list(range(1001, 1007))
    steps = [c for c in log.calls if c[0] == "step"]
    # frame 1: encode the mask, then 1 + warmup first-frame predictions; later frames one plain step each
    assert steps[0][2] == "mask" and not steps[0][3]
    assert [s[3] for s in steps[1:5]] == [True] * 4
    assert all(s[2] == "" and not s[3] for s in steps[5:]) and len(steps) == 5 + 5
    assert ("from_pretrained", "PeiqingYang/MatAnyone") in log.calls
    a0 = outs[0][1][1].alpha
    assert a0.dtype == np.float32 and a0.shape == (40, 64)
    assert a0[20, 20] == pytest.approx(1.0) and a0[0, 0] == 0.0
    # the fake propagates by shifting 2 px per frame
    a3 = outs[3][1][1].alpha
    np.testing.assert_allclose(a3, np.roll(a0, 6, axis=1), atol=1e-6)


def test_mask_is_prepared_like_the_reference_script(monkeypatch):
    matanyone_pkg.install(monkeypatch)
    from engine.matting.matanyone import MatAnyoneMatter

    m = MatAnyoneMatter(erode=5, dilate=5, warmup=0)
    mask = np.zeros((40, 64), bool)
    mask[10:30, 10:30] = True
    mask[20, 40] = True  # a speck: dilate then erode keeps it (closing), a hole would close
    prep = m._prepare_mask(mask)
    assert prep.dtype == np.float32 and set(np.unique(prep)) <= {0.0, 255.0}
    assert prep[20, 20] == 255.0 and prep[0, 0] == 0.0


def test_chunks_reseed_a_fresh_processor(monkeypatch):
    log = matanyone_pkg.install(monkeypatch)
    from engine.matting.matanyone import MatAnyoneMatter

    m = MatAnyoneMatter(warmup=1, erode=0, dilate=0, chunk=3)
    outs = list(run_matter(m, _frames(n=8), (40, 64)))
    assert log.processors == 3  # frames 1-3, 4-6, 7-8
    assert any(o[1][1].stats.get("rechunked") for o in outs)
    # the re-seeded processor continues from the last alpha: still shifting 2 px per frame
    a = [o[1][1].alpha for o in outs]
    np.testing.assert_allclose(a[4], np.roll(a[3], 2, axis=1), atol=1e-6)
    assert [c[1] for c in log.calls if c[0] == "from_pretrained"] == ["PeiqingYang/MatAnyone"]  # loaded once


def test_local_weights_and_internal_size(monkeypatch):
    log = matanyone_pkg.install(monkeypatch)
    from engine.matting.matanyone import MatAnyoneMatter

    m = MatAnyoneMatter(weights="/models/matanyone.pth", max_size=20, warmup=0, erode=0, dilate=0)
    outs = list(run_matter(m, _frames(n=2), (40, 64)))
    assert ("get_matanyone_model", "/models/matanyone.pth") in log.calls
    assert all(c[4] == (40, 64) for c in log.calls if c[0] == "step")  # full-size in, the core resizes inside
    assert outs[0][1][1].alpha.shape == (40, 64)


def test_objects_waiting_for_a_mask_and_registry(monkeypatch):
    matanyone_pkg.install(monkeypatch)
    from engine.matting.matanyone import LICENCE, MatAnyoneMatter
    from engine.matting.registry import resolve_matter

    m = MatAnyoneMatter(warmup=0, erode=0, dilate=0)
    st = m.init_state((40, 64))
    out = m.process(st, MatteFrame(1001, np.zeros((40, 64, 3), np.float32), {2: None}))
    assert out[2].alpha.max() == 0 and out[2].stats.get("waiting")
    assert "non-commercial" in LICENCE and m.info.licence == LICENCE
    assert resolve_matter("auto")[0] == "classical"  # never chosen automatically
    assert resolve_matter("matanyone")[0] == "matanyone"
