"""Per-kind cache budgets (derived from memory, config file < environment < arguments), per-kind LRUs,
integrity checks on the disk tier."""

from __future__ import annotations

import numpy as np
import pytest

from engine.cache.budgets import (GIB, KINDS, MIB, default_total, kind_of, machine_memory_bytes, parse_budget_spec,
                                  parse_size, resolve_budgets, seal, unseal)
from engine.cache.store import Cache
from engine.config import load_settings
from engine.errors import InputError


def test_derived_budgets_follow_the_machine():
    assert default_total(16 * GIB) == int(0.15 * 16 * GIB)
    assert default_total(1 * GIB) == 512 * MIB and default_total(1024 * GIB) == 16 * GIB
    assert machine_memory_bytes() > 256 * MIB
    b = resolve_budgets(load_settings(env={}, path=None), machine_bytes=16 * GIB)
    assert set(b.memory) == set(KINDS) and b.total == pytest.approx(0.15 * 16 * GIB, rel=1e-6)
    assert b.memory["frames"] > b.memory["embeddings"] > b.memory["mattes"] > b.memory["depth"] > b.memory["masks"]
    assert set(b.source.values()) == {"derived"} and "frames" not in b.result_kinds


def test_batch_cap_lowers_only_a_derived_total(tmp_path):
    from engine.cache.budgets import BATCH_TOTAL

    derived = resolve_budgets(load_settings(env={}, path=None), machine_bytes=64 * GIB, derived_cap=BATCH_TOTAL)
    assert derived.total == pytest.approx(BATCH_TOTAL, rel=1e-6) and BATCH_TOTAL < default_total(64 * GIB)
    small = resolve_budgets(load_settings(env={}, path=None), machine_bytes=2 * GIB, derived_cap=BATCH_TOTAL)
    assert small.total == pytest.approx(default_total(2 * GIB), rel=1e-6)  # below the cap: unchanged
    chosen = resolve_budgets(load_settings(env={"ROTO_MEMORY_BUDGET_MB": "3000"}, path=None), derived_cap=BATCH_TOTAL)
    assert chosen.total == pytest.approx(3000 * MIB, rel=1e-6)  # the user's budget is never lowered
    arg = resolve_budgets(load_settings(env={}, path=None), memory_budget=2 * GIB, derived_cap=BATCH_TOTAL)
    assert arg.total == pytest.approx(2 * GIB, rel=1e-6)


def test_file_then_environment_then_arguments(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text("[cache]\nbudget_mb = 1000\n[cache.budgets]\nmasks_mb = 10\nframes_mb = 300\n")
    s = load_settings(env={"ROTO_CACHE_FRAMES_MB": "200"}, path=cfg)
    b = resolve_budgets(s)
    assert b.memory["masks"] == 10 * MIB  # file
    assert b.memory["frames"] == 200 * MIB  # environment beats file
    assert b.memory["mattes"] == int(1000 * MIB * 0.15)  # share of the file's total
    assert b.source["frames"] == "settings" and b.source["mattes"] == "settings"
    b2 = resolve_budgets(s, overrides={"frames": 64 * MIB}, memory_budget=2000 * MIB)
    assert b2.memory["frames"] == 64 * MIB and b2.source["frames"] == "argument"
    assert b2.memory["depth"] == 10 * MIB or b2.memory["depth"] == int(2000 * MIB * 0.10)
    env = load_settings(env={"ROTO_MEMORY_BUDGET_MB": "4096", "ROTO_FRAME_CACHE_MB": "128"}, path=tmp_path / "none")
    b3 = resolve_budgets(env)
    assert b3.memory["frames"] == 128 * MIB  # the legacy single value still counts
    assert b3.memory["embeddings"] == int(4096 * MIB * 0.30)
    legacy = resolve_budgets(load_settings(env={"ROTO_CACHE_MB": "100"}, path=tmp_path / "none"))
    assert sum(legacy.result_kinds.values()) == pytest.approx(100 * MIB, rel=1e-3)
    with pytest.raises(InputError):
        load_settings(env={"ROTO_CACHE_MASKS_MB": "lots"}, path=tmp_path / "none")


def test_sizes_and_specs():
    assert parse_size("512M") == 512 * MIB and parse_size("2G") == 2 * GIB and parse_size("1.5GiB") == int(1.5 * GIB)
    assert parse_size("300") == 300 * MIB and parse_size(64) == 64 * MIB
    assert parse_budget_spec("frames=512M, masks=64m") == {"frames": 512 * MIB, "masks": 64 * MIB}
    for bad in ("frames", "wobble=1G", "frames=lots"):
        with pytest.raises(InputError):
            parse_budget_spec(bad)
    assert kind_of("runs") == "masks" and kind_of("sam2-features") == "embeddings" and kind_of("other") is None


def test_each_kind_has_its_own_lru():
    c = Cache(10_000, budgets={"masks": 2_000, "embeddings": 5_000})
    runs = {k: np.full(100, i, np.float64) for i, k in enumerate("abc")}  # 800 bytes each
    for k, v in runs.items():
        c.put("runs", k, v)
    feats = [np.zeros(600, np.float64) for _ in range(5)]  # 4800 bytes each: a flood of encoder features
    for i, f in enumerate(feats):
        c.put("sam2-features", str(i), f)
    assert c.get("runs", "b") is not None and c.get("runs", "c") is not None  # not pushed out by the features
    assert c.get("runs", "a") is None  # only by its own kind's budget (3 x 800 > 2000)
    st = c.stats()
    assert st["kinds"]["masks"]["bytes"] <= 2_000 and st["kinds"]["embeddings"]["bytes"] <= 5_000
    c.put("other", "x", np.zeros(10))
    assert c.get("other", "x") is not None and st["budget"] == 17_000
    c.clear_memory()
    assert c.get("runs", "b") is None


def test_disk_files_are_sealed_and_checked(tmp_path):
    assert unseal(seal(b"payload")) == b"payload"
    assert unseal(b"junk") is None
    blob = bytearray(seal(b"payload"))
    blob[-1] ^= 1
    assert unseal(bytes(blob)) is None
    c = Cache(0, tmp_path, 1 << 20)  # nothing fits in memory: straight to disk
    c.put("runs", "k1", {"x": [1, 2, 3]})
    c.put("runs", "k2", {"x": [4]})
    f1, f2 = sorted(tmp_path.rglob("*.pkl"))
    assert f1.read_bytes().startswith(b"ROTOCACHE1")
    data = bytearray(f1.read_bytes())
    data[-2] ^= 0x55  # a flipped bit
    f1.write_bytes(bytes(data))
    key1 = f1.stem
    assert c.get("runs", key1) is None and not f1.exists() and c.integrity_failures == 1
    assert c.get("runs", f2.stem) is not None and c.disk_hits == 1


def test_disk_budget_is_kept_without_rescanning_every_write(tmp_path, monkeypatch):
    c = Cache(0, tmp_path, 20_000)
    scans = [0]
    real = c._disk_usage

    def counting():
        scans[0] += 1
        return real()

    monkeypatch.setattr(c, "_disk_usage", counting)
    for i in range(60):
        c.put("runs", f"k{i:02d}", np.zeros(60, np.float64))  # ~650 bytes sealed
    total = sum(p.stat().st_size for p in tmp_path.rglob("*.pkl"))
    assert total <= 20_000 and scans[0] <= 20  # trimmed to 90 %: a scan every few writes, not every write


def test_a_value_that_grows_under_one_key_replaces_its_disk_copy(tmp_path):
    # an interrupted run stores the frames it finished under the run's key; interrupted again later,
    # the longer list must replace the first on disk, or the next process resumes from the first
    c = Cache(1 << 20, tmp_path, 1 << 20)
    c.put("runs-partial", "run1", [1, 2], persist=True)
    c.put("runs-partial", "run1", [1, 2, 3, 4], persist=True)  # a content key: the disk copy stays
    assert Cache(1 << 20, tmp_path, 1 << 20).get("runs-partial", "run1") == [1, 2]
    c.put("runs-partial", "run1", [1, 2, 3, 4], persist=True, replace=True)
    assert Cache(1 << 20, tmp_path, 1 << 20).get("runs-partial", "run1") == [1, 2, 3, 4]
    assert len(list(tmp_path.rglob("*.pkl"))) == 1


_CONTENT_ID_SCRIPT = """
import sys
from pathlib import Path
from engine.cache.keys import clip_content_id, make_key
files = sorted(Path(sys.argv[1]).glob("s.*.png"))
print(clip_content_id(sys.argv[1], files), make_key({"b", "a", "c", "d"}, frozenset({"x", "y", "z"})))
"""


def test_clip_content_id_is_the_same_in_every_process(tmp_path):
    """The id keys every cache and export resume check: it must not depend on the hash seed."""
    import os
    import subprocess
    import sys

    for f in range(1001, 1010):
        (tmp_path / f"s.{f}.png").write_bytes(bytes([f % 256]) * (100 + f))
    results = set()
    for seed in ("0", "1", "2", "3", "4", "5", "6", "7"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run([sys.executable, "-c", _CONTENT_ID_SCRIPT, str(tmp_path)], env=env,
                             capture_output=True, text=True, check=True)
        results.add(out.stdout.strip())
    assert len(results) == 1, results


@pytest.mark.parametrize("env, frames_mb", [
    ({"ROTO_CACHE_FRAMES_MB": "50"}, 50),
    ({"ROTO_MEMORY_BUDGET_MB": "256"}, 256 * 0.40),
    ({"ROTO_FRAME_CACHE_MB": "30"}, 30),  # the legacy name still counts
    ({"ROTO_CACHE_FRAMES_MB": "50", "ROTO_FRAME_CACHE_MB": "30"}, 50),  # the documented name wins
])
def test_clip_frame_cache_takes_the_resolved_frames_budget(tmp_path, monkeypatch, env, frames_mb):
    """Audit D#4: outside `roto batch` (roto track) the clip's frame cache ignored these settings."""
    import cv2

    from engine.media.clip import open_clip

    for name in ("ROTO_CACHE_FRAMES_MB", "ROTO_MEMORY_BUDGET_MB", "ROTO_FRAME_CACHE_MB", "ROTO_CACHE_MB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROTO_CONFIG", str(tmp_path / "absent.toml"))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    rng = np.random.default_rng(0)
    for f in range(1, 5):
        cv2.imwrite(str(tmp_path / f"p.{f:04d}.png"), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    clip = open_clip(tmp_path / "p.0001.png")
    budget = clip._cache.budget_bytes
    assert budget == int(frames_mb * MIB)
    # eviction follows it: a budget of about one and a half decoded frames keeps one frame
    one = clip.read(1).nbytes
    monkeypatch.setenv("ROTO_CACHE_FRAMES_MB", repr(1.5 * one / MIB))
    small = open_clip(tmp_path / "p.0001.png")
    for f in range(1, 5):
        small.read(f)
    assert len(small._cache) == 1 and abs(small._cache.budget_bytes - 1.5 * one) < 2
