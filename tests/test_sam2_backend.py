"""SAM 2.1 tiny, real architecture with random weights at a small input size, through our adapter.

Random weights make the masks meaningless, so these tests check the plumbing a user with real
weights relies on: shapes, dtypes, ids, directions, locked keyframes, the embedding cache, the
bounded memory window, and that a checkpoint file in the model store loads through the same
path a downloaded one takes.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.backends.sam2_backend import installed

if not installed():
    pytest.skip("the sam2 package is not installed (make setup installs it: "
                "SAM2_BUILD_CUDA=0 pip install --no-build-isolation sam2==1.1.0)", allow_module_level=True)

import torch  # noqa: E402

from engine.backends import sam2_model  # noqa: E402
from engine.backends.base import Prompt  # noqa: E402
from engine.backends.sam2_backend import Sam2Segmenter  # noqa: E402
from engine.backends.torch_util import choose_device  # noqa: E402
from engine.cache.store import Cache  # noqa: E402
from engine.errors import BackendUnavailable, InputError, ModelError  # noqa: E402
from tests.fakes.segmenter import array_clip  # noqa: E402

IMG = 256  # model input size: small for CPU tests (real use: 1024)
TINY = "configs/sam2.1/sam2.1_hiera_t.yaml"
H, W = 64, 96


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    return sam2_model.build_predictor(TINY, None, torch.device("cpu"), image_size=IMG)


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    """A 4-frame scene-linear EXR sequence (1001-1004) opened through the media layer."""
    from engine.media.clip import open_clip
    from engine.media.synthetic import generate, write_exr_sequence

    frames = generate(width=W, height=H, frames=4, start=1001)
    pattern = write_exr_sequence(frames, tmp_path_factory.mktemp("plate"))
    clip = open_clip(pattern)
    yield clip, frames
    clip.close()


def seg_for(predictor, **kw):
    kw.setdefault("cache", Cache(256 << 20))
    return Sam2Segmenter("sam2.1-tiny", predictor=predictor, **kw)


def blob(frame_truth) -> np.ndarray:
    return frame_truth.alpha > 0.5


def test_frames_come_from_the_media_layer_in_the_working_space(predictor, plate):
    clip, _ = plate
    seg = seg_for(predictor)
    state = seg.init_state(clip)
    vs = seg._video_state(state)
    frames = vs["images"]
    assert isinstance(frames, sam2_model.LazyFrames) and len(frames) == 4 and frames.reads == 0  # nothing read yet
    x = frames[2]
    assert x.shape == (3, IMG, IMG) and x.dtype == torch.float32
    assert torch.equal(x, sam2_model.to_model_input(clip.read_working(1003), IMG))
    assert (vs["video_height"], vs["video_width"]) == (H, W) and vs["cached_features"] == {}


def test_clicks_decode_from_the_cached_embedding(predictor, plate):
    clip, _ = plate
    cache = Cache(256 << 20)
    seg = seg_for(predictor, cache=cache)
    calls = []
    original = predictor.forward_image
    predictor.forward_image = lambda x: (calls.append(x.shape), original(x))[1]
    try:
        st = seg.init_state(clip)
        a = seg.add_prompt(st, 1002, 1, Prompt(points=np.array([[40.5, 30.5]], np.float32), labels=np.array([1])))
        assert a.mask.shape == (H, W) and a.mask.dtype == bool and 0.0 <= a.confidence <= 1.0
        assert len(calls) == 1
        b = seg.add_prompt(st, 1002, 1, Prompt(points=np.array([[40.5, 30.5], [5.5, 5.5]], np.float32),
                                               labels=np.array([1, 0])))
        c = seg.add_prompt(st, 1002, 2, Prompt(box=np.array([10, 8, 60, 50], np.float32)))
        assert b.mask.shape == c.mask.shape == (H, W) and len(calls) == 1  # decoder only
        assert st.clicks[(1, 1002)][3].shape == (1, IMG // 4, IMG // 4)  # logits kept for refinement
        # a new state (another session on the same plate) finds the embedding in the engine cache
        seg2 = seg_for(predictor, cache=cache)
        seg2.add_prompt(seg2.init_state(clip), 1002, 1, Prompt(points=np.array([[20.5, 20.5]], np.float32),
                                                               labels=np.array([1])))
        assert len(calls) == 1 and seg2.stats["encoded"] == 0 and seg2.stats["feature_hits"] == 1
        # another frame is encoded once
        seg.add_prompt(st, 1003, 1, Prompt(points=np.array([[40.5, 30.5]], np.float32), labels=np.array([1])))
        assert len(calls) == 2 and calls[-1] == (1, 3, IMG, IMG)
    finally:
        del predictor.forward_image
    with pytest.raises(BackendUnavailable, match="text"):
        seg.add_prompt(st, 1002, 1, Prompt(text="person"))


def test_mask_prompts_propagate_both_directions_per_object(predictor, plate):
    clip, truth = plate
    seg = seg_for(predictor)
    st = seg.init_state(clip)
    m1 = blob(truth[1])
    m2 = ~m1
    assert seg.add_prompt(st, 1002, 1, Prompt(mask=m1)).mask is m1 or True
    seg.add_prompt(st, 1002, 7, Prompt(mask=m2))
    fwd = list(seg.propagate(st, 1002, 1004, "forward", [1, 7]))
    bwd = list(seg.propagate(st, 1002, 1001, "backward", [1, 7]))
    assert [f.frame for f in fwd] == [1003, 1004] and [f.frame for f in bwd] == [1001]
    for pf in fwd + bwd:
        assert set(pf.objects) == {1, 7}  # stable ids, as given
        for out in pf.objects.values():
            assert out.mask.shape == (H, W) and out.mask.dtype == bool
            assert 0.0 <= out.confidence <= 1.0 and isinstance(out.occluded, bool)
    # only objects conditioned on the start frame are tracked; an empty run yields nothing
    assert [list(f.objects) for f in seg.propagate(st, 1002, 1003, "forward", [1, 99])] == [[1]]
    assert list(seg.propagate(st, 1003, 1004, "forward", [1])) == []
    # a run depends only on its own conditioning: re-running gives the same masks
    again = list(seg.propagate(st, 1002, 1004, "forward", [1, 7]))
    assert all(np.array_equal(a.objects[o].mask, b.objects[o].mask) for a, b in zip(fwd, again) for o in (1, 7))


def test_session_propagates_both_ways_and_keeps_keyframes_locked(predictor, plate):
    from engine.session.session import Session

    clip, truth = plate
    seg = seg_for(predictor)
    s = Session.create(clip.info.path, clip=clip, backend=seg, cache=Cache(64 << 20))
    hero, other = s.add_object("hero"), s.add_object("other")
    key_hero, key_other = blob(truth[1]), np.zeros((H, W), bool)
    key_other[5:20, 5:30] = True
    s.set_keyframe(hero.id, 1002, key_hero)
    s.set_keyframe(other.id, 1002, key_other)
    report = s.propagate()  # one backward run (1002 → 1001) and one forward run (1002 → 1004), both objects
    assert report.runs == 2 and report.frames_written == 6 and not report.cancelled and report.backend == "sam2"
    for o in (hero.id, other.id):
        for f in range(1001, 1005):
            m = s.mask(o, f)
            assert m is not None and m.shape == (H, W) and m.dtype == bool
    assert np.array_equal(s.mask(hero.id, 1002), key_hero) and np.array_equal(s.mask(other.id, 1002), key_other)
    assert s.result(hero.id, 1002).direction == "keyframe" and s.result(other.id, 1002).direction == "keyframe"
    for o in (hero.id, other.id):
        assert s.result(o, 1001).direction == "backward" and s.result(o, 1004).direction == "forward"
        assert s.result(o, 1003).backend == "sam2" and 0.0 <= s.result(o, 1003).confidence <= 1.0
    again = s.propagate()  # unchanged keyframes: every run is served from the run cache
    assert again.runs_from_cache == again.runs


def test_long_shots_release_old_memory_without_changing_results(predictor, monkeypatch):
    # a smaller memory window so that an 8-frame clip crosses it
    monkeypatch.setattr(predictor, "num_maskmem", 3)
    monkeypatch.setattr(predictor, "max_obj_ptrs_in_encoder", 4)
    clip = array_clip(count=8, h=32, w=48)
    mask = np.zeros((32, 48), bool)
    mask[8:24, 12:36] = True
    bounded = seg_for(predictor)
    assert bounded.keep_frames == 5  # max((3 + 1) * 1, 4) + 1
    keep_all = seg_for(predictor, keep_frames=0)
    results, sizes = {}, []
    for name, seg in (("bounded", bounded), ("all", keep_all)):
        st = seg.init_state(clip)
        seg.add_prompt(st, 1001, 1, Prompt(mask=mask))
        frames = []
        for pf in seg.propagate(st, 1001, 1008, "forward", [1]):
            frames.append(pf.objects[1].mask)
            if name == "bounded":
                sizes.append(len(st.video["output_dict_per_obj"][0]["non_cond_frame_outputs"]))
        results[name] = frames
        assert st.video["images"].reads <= 8 + 1  # frames streamed, each read about once
    assert all(np.array_equal(a, b) for a, b in zip(results["bounded"], results["all"]))
    # measured as each frame is yielded, before its release step: at most keep_frames + 2 outputs
    assert max(sizes) <= bounded.keep_frames + 2 < 7 + 1 and len(results["all"]) == 7


def test_checkpoint_in_the_model_store_loads_through_the_real_path(predictor, tmp_path, monkeypatch):
    from engine.backends.registry import get_segmenter, resolve_segmenter

    monkeypatch.setenv("ROTO_MODELS", str(tmp_path))
    monkeypatch.delenv("ROTO_SAM2_MODEL", raising=False)
    name, why = resolve_segmenter("auto")
    assert name == "classical" and "roto models fetch sam2.1-tiny" in why
    ckpt = tmp_path / "sam2.1-tiny" / "sam2.1_hiera_tiny.pt"
    ckpt.parent.mkdir()
    torch.save({"model": predictor.state_dict()}, ckpt)
    name, why = resolve_segmenter("auto")
    assert name == "sam2" and "sam2.1-tiny" in why and "CPU float32" in why
    seg, _ = get_segmenter("auto", image_size=IMG, cache=Cache(64 << 20))
    assert isinstance(seg, Sam2Segmenter) and seg.checkpoint == ckpt and seg.image_size == IMG
    loaded, saved = seg.predictor.state_dict(), predictor.state_dict()
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k], saved[k]) for k in saved)
    assert seg.cache_token.startswith("sam2-") and seg.description.startswith("SAM 2.1 tiny at 256px")


def test_bad_checkpoints_are_model_errors(predictor, tmp_path):
    from engine.backends.sam2_model import load_checkpoint

    good = tmp_path / "good.pt"
    torch.save({"model": predictor.state_dict()}, good)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:100_000])
    with pytest.raises(ModelError, match="damaged"):
        load_checkpoint(predictor, cut)
    sd = dict(predictor.state_dict())
    sd.pop(next(iter(sd)))
    torch.save({"model": sd}, tmp_path / "missing.pt")
    with pytest.raises(ModelError, match="1 tensor\\(s\\) missing"):
        load_checkpoint(predictor, tmp_path / "missing.pt")
    sd = dict(predictor.state_dict())
    k = next(k for k, v in sd.items() if v.ndim == 2)
    sd[k] = torch.zeros(3, 3)
    torch.save({"model": sd}, tmp_path / "shape.pt")
    with pytest.raises(ModelError, match="shapes differ"):
        load_checkpoint(predictor, tmp_path / "shape.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="not a SAM 2"):
        load_checkpoint(predictor, tmp_path / "other.pt")


def test_missing_weights_name_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("ROTO_MODELS", str(tmp_path))
    with pytest.raises(ModelError) as info:
        Sam2Segmenter("sam2.1-small")
    assert "roto models fetch sam2.1-small" in str(info.value)


def test_device_and_precision_choice(monkeypatch):
    monkeypatch.delenv("ROTO_DEVICE", raising=False)
    monkeypatch.delenv("ROTO_PRECISION", raising=False)
    auto = choose_device()
    if not torch.cuda.is_available():
        assert auto.device.type in ("cpu", "mps") and auto.dtype == torch.float32 and not auto.autocast
        with pytest.raises(BackendUnavailable, match="CUDA"):
            choose_device("cuda")
    else:  # pragma: no cover - GPU machines
        assert auto.device.type == "cuda" and auto.dtype in (torch.bfloat16, torch.float16)
    monkeypatch.setenv("ROTO_DEVICE", "cpu")
    monkeypatch.setenv("ROTO_PRECISION", "bf16")
    c = choose_device()
    assert c.device.type == "cpu" and c.dtype == torch.bfloat16 and c.autocast and c.label == "CPU bf16"
    assert choose_device(precision="fp32").dtype == torch.float32  # an argument beats the environment
    with pytest.raises(InputError):
        choose_device("cpu", "fp8")
    with pytest.raises(InputError):
        choose_device("tpu")


def test_bench_track_times_sam2_against_classical(tmp_path):
    from engine.bench import track

    report = track.run(size=(64, 48), frames=3, backend="sam2", random_weights=True, image_size=IMG, warmup=False,
                       workdir=tmp_path)
    (row,) = report.rows
    e = row.extra
    assert row.name == "sam2@64x48" and row.frames == 2 and row.ok  # no target off CUDA
    assert e["ours_s_per_frame"] > 0 and e["raw_s_per_frame"] > 0 and e["time_ratio"] > 0
    assert e["random_weights"] and "RANDOM weights" in e["backend"] and e["raw_iou"] is not None
    assert report.params["device"] == "cpu" and report.to_dict()["rows"][0]["extra"]["ours_click_s"] > 0


def test_cli_bench_track_classical_json(capsys):
    import json

    from engine.cli.main import main

    assert main(["bench", "track", "--backend", "classical", "--size", "64x48", "--frames", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (row,) = data["rows"]
    assert data["suite"] == "track" and row["extra"]["time_ratio"] == 1.0 and row["ok"]
    assert main(["bench", "track", "--backend", "classical", "--point", "nope"]) == 2
