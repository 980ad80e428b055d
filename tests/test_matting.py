"""Matting: the closed-form solver, the classical matter, the registry, the session's alpha store
and its export seam, and the matting measures."""

from __future__ import annotations

import numpy as np
import pytest

from engine.cache.store import Cache
from engine.errors import BackendUnavailable, InputError
from engine.eval import matting as em
from engine.matting.base import MatteFrame, Matter, run_matter
from engine.matting.classical import ClassicalMatter
from engine.matting.controls import EdgeControls, apply_controls
from engine.matting.pipeline import matte_session
from engine.matting.registry import describe, get_matter, resolve_matter
from engine.media.synthetic_matte import generate_matte_clip
from engine.ops.cf_matting import solve_alpha, trimap_split
from engine.ops.trimap import trimap_from_mask
from engine.session.session import Session
from tests.fakes.segmenter import FakeSegmenter


@pytest.fixture(scope="module")
def hair():
    return generate_matte_clip("hair", width=192, height=108, frames=5)


def _composite(h=48, w=64, seed=0):
    """Two smooth colours mixed by a known soft ramp: the closed-form model holds exactly."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    alpha = np.clip((xx - 24) / 12.0, 0, 1)
    F = np.stack([0.8 + 0.1 * yy / h, 0.3 + 0 * yy, 0.2 + 0.05 * xx / w], axis=2)
    B = np.stack([0.1 + 0 * yy, 0.5 + 0.1 * yy / h, 0.3 + 0 * xx], axis=2)
    img = alpha[:, :, None] * F + (1 - alpha[:, :, None]) * B + rng.normal(0, 1e-4, (h, w, 3))
    return img.astype(np.float32), alpha.astype(np.float32)


# --- the solver ---------------------------------------------------------------------------------


def test_closed_form_recovers_a_known_matte():
    img, alpha = _composite()
    tri = np.full(alpha.shape, 0.5, np.float32)
    tri[:, :20] = 0
    tri[:, 40:] = 1
    known, values = trimap_split(tri)
    for method in ("direct", "cg"):
        a, info = solve_alpha(img, known, values, epsilon=1e-7, method=method, rtol=1e-7)
        assert info["unknown"] == int((~known).sum()) and info["method"] == method
        assert np.abs(a - alpha).max() < 0.03
    # a prior with a large weight wins over the Laplacian
    a, _ = solve_alpha(img, known, values, prior=np.full(alpha.shape, 0.3, np.float32), weight=1e3)
    assert np.abs(a[~known] - 0.3).max() < 0.01


def test_trimap_split_accepts_uint8():
    t = np.array([[0, 128, 255]], np.uint8)
    known, values = trimap_split(t)
    assert known.tolist() == [[True, False, True]] and values.tolist() == [[0.0, 0.0, 1.0]]


def test_system_is_the_same_for_any_assembly_chunk():
    from engine.ops.cf_matting import build_system

    rng = np.random.default_rng(3)
    img, _ = _composite(37, 45)
    tri = np.zeros(img.shape[:2], np.float32)
    tri[6:30, 8:38] = 1.0
    tri[10:26, 12:34] = 0.5  # an unknown band inside the foreground
    tri[0:2, :] = 0.5  # and unknown pixels on the frame border
    known, values = trimap_split(tri)
    prior, weight = rng.random(tri.shape), 0.1 * rng.random(tri.shape)
    whole = build_system(img, known, values, prior=prior, weight=weight, chunk=10**9)
    assert whole.n == int((~known).sum()) and whole.A.shape == (whole.n, whole.n)
    for chunk in (1, 97, 4096):
        part = build_system(img, known, values, prior=prior, weight=weight, chunk=chunk)
        assert part.A.nnz == whole.A.nnz and np.array_equal(part.index, whole.index)
        assert abs(part.A - whole.A).max() < 1e-12 and np.abs(part.b - whole.b).max() < 1e-12


@pytest.mark.slow
def test_laplacian_matches_pymatting():
    pm = pytest.importorskip("pymatting")
    img, alpha = _composite(32, 40)
    tri = np.full(alpha.shape, 0.5)
    tri[:, :18] = 0
    tri[:, 34:] = 1
    known, values = trimap_split(tri)
    ours, _ = solve_alpha(img, known, values, epsilon=1e-6, method="direct")
    ref = pm.estimate_alpha_cf(img.astype(np.float64), tri, laplacian_kwargs={"epsilon": 1e-6})
    assert np.abs(ours - ref).max() < 1e-4


# --- the classical matter -------------------------------------------------------------------------


def test_classical_matter_beats_the_mask_and_streams(hair):
    m = ClassicalMatter()
    assert isinstance(m, Matter) and m.info.name == "classical" and not m.info.needs_weights
    consumed = []

    def frames():
        for f in hair.frames:
            consumed.append(f)
            yield MatteFrame(f, hair.read_working(f), {1: hair.mask(f)})

    sad_m, sad_a = 0.0, 0.0
    for i, (f, out) in enumerate(run_matter(m, frames(), hair.shape)):
        assert consumed[-1] == f  # lazily: one frame in, one frame out
        a = out[1].alpha
        assert a.dtype == np.float32 and a.shape == hair.shape and 0 <= a.min() and a.max() <= 1
        y0, y1, x0, x1 = out[1].roi
        assert a[:y0].max(initial=0) == 0 and a[y1:].max(initial=0) == 0
        assert out[1].stats["unknown"] > 0
        if i > 0:
            assert "motion" in out[1].stats
        sad_m += em.sad(hair.mask(f), hair.alpha(f))
        sad_a += em.sad(a, hair.alpha(f))
    assert sad_a < 0.8 * sad_m


def test_classical_matter_takes_trimaps_and_empty_masks(hair):
    m = ClassicalMatter()
    st = m.init_state(hair.shape)
    f = hair.frames[0]
    tri = trimap_from_mask(hair.mask(f), 3.0)
    out = m.process(st, MatteFrame(f, hair.read_working(f), {1: None, 2: np.zeros(hair.shape, bool)}, trimaps={3: tri}))
    assert out[1].alpha.max() == 0 and out[2].alpha.max() == 0 and out[1].stats.get("empty")
    assert out[3].alpha[tri == 1].min() == 1 and out[3].alpha[tri == 0].max() == 0
    with pytest.raises(InputError, match="plate"):
        m.process(st, MatteFrame(f, hair.read_working(f), {1: np.zeros((5, 5), bool)}))


def test_cache_token_follows_parameters():
    assert ClassicalMatter().cache_token == ClassicalMatter().cache_token
    assert ClassicalMatter(epsilon=1e-5).cache_token != ClassicalMatter().cache_token


def test_registry():
    names = [n for n, _t, _r in describe()]
    assert names[0] == "classical" and {"keyer", "matanyone"} <= set(names)
    assert resolve_matter("auto")[0] == "classical"
    m, why = get_matter("keyer", screen="blue")
    assert m.params.screen == "blue" and "by name" in why
    with pytest.raises(BackendUnavailable, match="no matting backend named"):
        resolve_matter("nope")


def test_controls_identity_and_order():
    a = np.zeros((20, 20), np.float32)
    a[5:15, 5:15] = 1
    assert EdgeControls().is_identity()
    np.testing.assert_array_equal(apply_controls(a, EdgeControls()), a)
    g = apply_controls(a, EdgeControls(grow=2.0, blur=1.0))
    assert g.sum() > a.sum()
    c = EdgeControls(temporal=0.5, motion_blur=0.5)
    assert c.needs_flow and not c.is_identity()
    np.testing.assert_array_equal(apply_controls(a, c), a)  # inputs missing: skipped


# --- sessions: store, invalidation, undo, persistence, export seam -----------------------------------


def _session(tmp_path, clip):
    s = Session.create(clip.info.path, clip=clip, path=tmp_path / "shot.roto.json", backend=FakeSegmenter(step=1),
                       cache=Cache(32 << 20))
    o = s.add_object("hero")
    s.add_mask(o.id, clip.frames[0], clip.mask(clip.frames[0]))
    s.propagate(direction="forward")
    return s, o.id


def test_session_alpha_store_invalidation_undo_and_reopen(tmp_path, hair):
    s, oid = _session(tmp_path, hair)
    f1 = hair.frames[1]
    assert s.alpha(oid, f1) is None
    sig_mask = s.alpha_signature(oid, f1)
    seen = []
    rep = matte_session(s, backend="classical", sink=lambda f, a: seen.append(f))
    assert rep.frames == len(hair.frames) and seen == list(hair.frames) and rep.backend == "classical"
    a = s.alpha(oid, f1)
    assert a is not None and a.dtype == np.float32 and ((a > 0.01) & (a < 0.99)).any()
    assert s.alpha_signature(oid, f1) != sig_mask and s.alpha_signature(oid, f1)[0] == "alpha"
    folder = tmp_path / "shot.roto.json.alpha" / str(oid)
    assert any(p.suffix == ".png" for p in folder.iterdir())
    assert "rle" not in str(s.data.meta["matte"])  # no pixels in the JSON
    # editing the mask hides the stale alpha; undo brings it back
    s.edit_mask(oid, f1, lambda m: np.roll(m, 3, axis=1))
    assert s.alpha(oid, f1) is None and s.alpha_signature(oid, f1)[0] == "mask"
    s.undo()
    np.testing.assert_array_equal(s.alpha(oid, f1), a)
    # it persists with the project
    s2 = Session.open(tmp_path / "shot.roto.json", clip=hair)
    np.testing.assert_array_equal(s2.alpha(oid, f1), a)
    assert s2.data.meta["matte"][str(oid)]["backend"] == "classical"


def test_export_context_uses_soft_alpha(tmp_path, hair):
    from engine.export.aovs import ExportContext

    s, oid = _session(tmp_path, hair)
    matte_session(s, controls=EdgeControls(blur=0.5))
    ctx = ExportContext(s)
    cov = ctx.coverage(oid, hair.frames[2])
    np.testing.assert_allclose(cov, s.alpha(oid, hair.frames[2]))
    assert ((cov > 0.01) & (cov < 0.99)).sum() > ((s.mask(oid, hair.frames[2]) ^ (cov > 0.5)).sum())


def test_matte_session_needs_masks(tmp_path, hair):
    s = Session.create(hair.info.path, clip=hair, path=None, backend=FakeSegmenter(), cache=Cache(8 << 20))
    from engine.errors import PromptError

    with pytest.raises(PromptError):
        matte_session(s)
    s.add_object("x")
    with pytest.raises(PromptError, match="no masks"):
        matte_session(s)


# --- measures ---------------------------------------------------------------------------------------


def test_measures_on_known_values():
    g = np.zeros((10, 10), np.float32)
    g[2:8, 2:8] = 1
    assert em.sad(g, g) == 0 and em.mse(g, g) == 0 and em.gradient_error(g, g) == 0
    assert em.connectivity_error(g, g) == 0
    a = g.copy()
    a[0, 0] = 0.5
    assert em.sad(a, g) == pytest.approx(0.5 / 1000)
    assert em.mse(a, g) == pytest.approx(0.25 / 100 * 1000)
    assert em.gradient_error(a, g) > 0
    assert em.connectivity_error(np.zeros_like(g), g) > 0
    assert em.dtssd(g, g, g, g) == 0
    assert em.dtssd(a, g, g, g) == pytest.approx(np.sqrt(0.25 / 100) * 100)


def test_eval_runs_small():
    rep = em.run_matting_eval(["hair"], width=128, height=72, frames=4, connectivity=False)
    c = rep.clips[0]
    assert [m.name for m in c.methods] == ["mask", "cf-fixed", "classical"]
    assert c.method("classical").SAD < c.method("mask").SAD
    goals = c.goals()
    assert {"SAD vs mask", "dtSSD vs cf-fixed", "flicker %", "pass"} <= set(goals)
    assert "classical" in rep.table() and rep.to_dict()["clips"][0]["kind"] == "hair"
