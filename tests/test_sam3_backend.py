"""SAM 3 adapter: fast tests through a fake ``sam3`` package that honours its API, plus an opt-in
slow test on the real package (random weights, CPU) where it is installed."""

from __future__ import annotations

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="SAM 3 needs torch (make setup installs it)")

from engine.backends.base import Prompt  # noqa: E402
from engine.cache.store import Cache  # noqa: E402
from engine.errors import BackendUnavailable, DependencyMissing, ModelError  # noqa: E402
from tests.fakes import sam3_pkg  # noqa: E402
from tests.fakes.segmenter import ArrayClip, FakeSegmenter  # noqa: E402

H, W = 64, 96
RED, BLUE, GREY = (230, 20, 20), (20, 20, 230), (128, 128, 128)


def squares_clip(count: int = 4, step: int = 2) -> ArrayClip:
    """Two red squares and a blue one on grey, moving ``step`` px right per frame."""
    frames = {}
    for i in range(count):
        img = np.full((H, W, 3), GREY, np.uint8)
        dx = i * step
        img[10:22, 10 + dx:22 + dx] = RED
        img[10:20, 50 + dx:60 + dx] = RED  # smaller: lower score
        img[40:52, 30 + dx:42 + dx] = BLUE
        frames[1001 + i] = img
    return ArrayClip(frames, path="/mem/squares.####.exr")


@pytest.fixture
def fake_sam3(monkeypatch, tmp_path):
    sam3_pkg.install(monkeypatch)
    bpe = tmp_path / "bpe_simple_vocab_16e6.txt.gz"
    bpe.write_bytes(b"vocab")
    monkeypatch.setenv("ROTO_SAM3_BPE", str(bpe))
    monkeypatch.setenv("ROTO_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("ROTO_DEVICE", "cpu")
    return bpe


def make_backend(tmp_path, tracker=None):
    from engine.backends.sam3_backend import Sam3Segmenter

    ckpt = tmp_path / "sam3.pt"
    ckpt.write_bytes(b"weights")
    return Sam3Segmenter(checkpoint=ckpt, tracker=tracker or FakeSegmenter(step=2))


def test_text_finds_every_instance_with_stable_ids(fake_sam3, tmp_path):
    seg = make_backend(tmp_path)
    assert ("build", "cpu", str(tmp_path / "sam3.pt"), False, str(fake_sam3)) in sam3_pkg.CALLS  # CPU, our weights
    st = seg.init_state(squares_clip())
    reds = seg.detect(st, 1001, text="red square")
    assert [d.instance_id for d in reds] == [1, 2] and reds[0].score > reds[1].score  # best first
    assert reds[0].mask.shape == (H, W) and reds[0].mask.dtype == bool and reds[0].mask[15, 15]
    assert reds[0].box == (10.0, 10.0, 22.0, 22.0)
    again = seg.detect(st, 1001, text="  red   square ")
    assert [d.instance_id for d in again] == [1, 2]  # same instances, same ids
    blue = seg.detect(st, 1001, text="blue")
    assert [d.instance_id for d in blue] == [3] and blue[0].mask[45, 35]
    assert seg.detect(st, 1001, text="purple") == []
    assert seg.stats["images"] == 1  # one image encoding for all prompts on the frame
    with pytest.raises(Exception, match="empty"):
        seg.detect(st, 1001, text="   ")


def test_exemplar_on_the_same_and_on_another_frame(fake_sam3, tmp_path):
    seg = make_backend(tmp_path)
    st = seg.init_state(squares_clip())
    same = seg.detect(st, 1001, exemplar=(1001, (10, 10, 22, 22)))  # a box around one red square
    assert len(same) == 2 and all(d.mask[12:20].any() for d in same)  # both red squares, not the blue one
    # a box drawn on frame 1001 finds the red squares on frame 1003 (carried by the tracker)
    later = seg.detect(st, 1003, exemplar=(1001, (10, 10, 22, 22)))
    assert len(later) == 2 and later[0].box == (14.0, 10.0, 26.0, 22.0)
    assert ("grounding", None, 1, 2) in sam3_pkg.CALLS


def test_text_prompts_through_a_session(fake_sam3, tmp_path):
    from engine.backends.sam3_backend import add_text_objects
    from engine.session.session import Session

    seg = make_backend(tmp_path)
    clip = squares_clip()
    s = Session.create(clip.info.path, clip=clip, backend=seg, cache=Cache(64 << 20))
    made = add_text_objects(s, 1002, "red square")
    assert [(o.name, created) for o, _d, created in made] == [("red_square1", True), ("red_square2", True)]
    ids = [o.id for o, _d, _c in made]
    assert all(np.array_equal(s.mask(o, 1002), d.mask) for (o_, d, _c), o in zip(made, ids))
    # asking again on the same frame updates the same objects: no duplicates, ids kept
    again = add_text_objects(s, 1002, "red square")
    assert [o.id for o, _d, c in again] == ids and not any(c for _o, _d, c in again)
    s.propagate()
    assert all(s.mask(o, f) is not None for o in ids for f in range(1001, 1005))
    assert s.mask(ids[0], 1004)[15, 10 + 6 + 4]  # tracked (the fake tracker shifts 2 px a frame)
    # per-object text prompt: the next unbound instance goes to a new object
    blue = s.add_object("blue thing")
    mask = s.add_text(blue.id, 1001, "blue")
    assert np.asarray(mask).sum() == 144


def test_the_estimate_flag_matters_to_sam3_as_much_as_to_its_tracker(fake_sam3, tmp_path):
    # the run cache key carries the flag only when the tracker reads it (the classical one does)
    assert make_backend(tmp_path, FakeSegmenter(uses_estimate=True)).uses_estimate is True
    assert make_backend(tmp_path, FakeSegmenter(uses_estimate=False)).uses_estimate is False


def test_add_prompt_binds_one_instance_per_object(fake_sam3, tmp_path):
    seg = make_backend(tmp_path)
    st = seg.init_state(squares_clip())
    a = seg.add_prompt(st, 1001, 1, Prompt(text="red"))
    b = seg.add_prompt(st, 1001, 2, Prompt(text="red"))
    a2 = seg.add_prompt(st, 1001, 1, Prompt(text="red"))
    assert a.mask.sum() == 144 and b.mask.sum() == 100 and np.array_equal(a.mask, a2.mask)
    assert st.bound == {1: 1, 2: 2}
    none = seg.add_prompt(st, 1001, 3, Prompt(text="red"))  # every instance is taken
    assert not none.mask.any() and none.confidence == 0.0
    # clicks, masks and propagation go to the tracker
    box = seg.add_prompt(st, 1001, 4, Prompt(box=np.array([30, 40, 42, 52], np.float32)))
    assert box.mask.sum() == 144
    frames = list(seg.propagate(st, 1001, 1003, "forward", [1, 2]))
    assert [f.frame for f in frames] == [1002, 1003] and set(frames[0].objects) == {1, 2}
    assert seg.cache_token.startswith("sam3-") and "fake" in seg.cache_token


def test_cpu_redirect_runs_cuda_code_on_the_cpu():
    from engine.backends.sam3_backend import cpu_redirect

    if not torch.cuda.is_available():
        with pytest.raises((RuntimeError, AssertionError)):
            torch.zeros(1, device="cuda")
    with cpu_redirect():
        t = torch.zeros(2, device="cuda").cuda().pin_memory().to("cuda", non_blocking=True)
        u = torch.ones(2).to(torch.device("cuda"))
    assert t.device.type == "cpu" and u.device.type == "cpu"


def test_missing_pieces_are_sentences(fake_sam3, tmp_path, monkeypatch):
    from engine.backends.registry import resolve_segmenter
    from engine.backends.sam3_backend import Sam3Segmenter, find_bpe

    with pytest.raises(ModelError) as info:
        Sam3Segmenter(tracker=FakeSegmenter())
    assert "roto models fetch sam3" in str(info.value)
    with pytest.raises(BackendUnavailable, match="roto models fetch sam3"):
        resolve_segmenter("sam3")
    assert resolve_segmenter("auto")[0] != "sam3"  # opt-in: never chosen by auto
    monkeypatch.setenv("ROTO_SAM3_BPE", str(tmp_path / "nope.gz"))
    with pytest.raises(DependencyMissing, match="open_clip_torch"):
        find_bpe()
    # weights in the store: the registry offers sam3 by name and the builder gets that file
    store = tmp_path / "models" / "sam3"
    store.mkdir(parents=True)
    (store / "sam3.pt").write_bytes(b"w")
    monkeypatch.setenv("ROTO_SAM3_BPE", str(fake_sam3))
    assert resolve_segmenter("sam3")[0] == "sam3"
    seg = Sam3Segmenter(tracker=FakeSegmenter())
    assert seg.model.checkpoint_path == str(store / "sam3.pt")


def test_without_the_package_the_backend_says_how_to_install(monkeypatch):
    from engine.backends import sam3_backend

    monkeypatch.setattr(sam3_backend, "installed", lambda: False)
    assert "not installed" in sam3_backend._unavailable()
    with pytest.raises(BackendUnavailable, match="not installed"):
        sam3_backend.Sam3Segmenter()


def _real_sam3() -> bool:
    from engine.backends.torch_util import declare_torchvision_ops

    declare_torchvision_ops()  # sam3 imports torchvision, whose compiled ops cannot load with CPU torch
    try:
        import sam3  # noqa: F401
    except Exception:
        return False
    return getattr(sys.modules.get("sam3"), "__file__", None) is not None


@pytest.mark.slow
def test_real_sam3_random_weights_on_cpu(tmp_path):
    """The real package, 848M parameters with random weights on the CPU (about a minute and 4 GB)."""
    if not _real_sam3():
        pytest.skip("the sam3 package is not installed here (optional extra, installed in its own environment)")
    from engine.backends.sam3_backend import Sam3Segmenter, cpu_redirect, find_bpe
    from engine.backends.torch_util import declare_torchvision_ops

    declare_torchvision_ops()
    from sam3.model_builder import build_sam3_image_model

    torch.manual_seed(0)
    with cpu_redirect():
        model = build_sam3_image_model(bpe_path=str(find_bpe()), device="cpu", checkpoint_path=None, load_from_HF=False)
    seg = Sam3Segmenter(model=model, device="cpu", tracker=FakeSegmenter(), confidence=0.0)
    st = seg.init_state(squares_clip(count=2))
    dets = seg.detect(st, 1001, text="red square")
    assert all(d.mask.shape == (H, W) and d.mask.dtype == bool and 0 <= d.score <= 1 for d in dets)
    ex = seg.detect(st, 1001, exemplar=(1001, (10, 10, 22, 22)))
    assert all(d.mask.shape == (H, W) for d in ex)
