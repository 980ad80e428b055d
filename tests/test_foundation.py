"""Package-level promises: light import, errors as data, settings precedence, LRU budget."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from engine import errors
from engine.cache.lru import ByteLRU
from engine.config import MIB, load_settings
from engine.deps import require
from engine.util.progress import CancelToken, Progress, check_cancel

HEAVY = ("numpy", "torch", "cv2", "av", "OpenImageIO", "OpenEXR", "PyOpenColorIO", "sam2", "sam3", "ray", "scipy", "PIL")


def test_import_engine_is_standard_library_only():
    code = textwrap.dedent(
        f"""
        import sys, json
        import engine, engine.errors, engine.config, engine.deps, engine.media, engine.cache.lru
        import engine.util.atomic, engine.util.progress, engine.media.sequence, engine.media.types
        print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip()) == []


def test_cli_help_does_not_import_heavy_packages():
    code = "import sys, json\nfrom engine.cli.main import build_parser\nbuild_parser()\n" \
           f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip()) == []


def test_error_sentence_names_file_frame_and_hint():
    e = errors.MissingFrames("frame 1003 is missing", path="/plates/a.####.exr", frame=1003,
                             missing=(1003,), hint="Pass --missing hold")
    assert e.sentence() == "/plates/a.####.exr, frame 1003: frame 1003 is missing. Pass --missing hold."
    assert isinstance(e, errors.MediaError) and isinstance(e, errors.RotoError)


def test_errors_cross_the_wire_as_data():
    e = errors.MissingFrames("gap", path="p", frame=3, missing=(3, 4), hint="h")
    data = json.loads(json.dumps(e.to_dict()))
    back = errors.error_from_dict(data)
    assert type(back) is errors.MissingFrames
    assert back.missing == (3, 4) and back.frame == 3 and back.sentence() == e.sentence()
    unknown = errors.error_from_dict({"code": "from_the_future", "message": "odd"})
    assert type(unknown) is errors.RotoError and "odd" in str(unknown)


def test_require_names_the_package_to_install():
    with pytest.raises(errors.DependencyMissing) as info:
        require("sam2_definitely_not_installed", "testing")
    assert "pip install" in info.value.sentence()
    assert "testing needs" in info.value.sentence()


def test_settings_precedence(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[cache]\nframe_mb = 64\nmemory_mb = 10\n[colour]\nocio = "/studio/config.ocio"\n')
    s = load_settings(env={"ROTO_CACHE_MB": "5"}, path=cfg)
    assert s.frame_cache_bytes == 64 * MIB      # from the file
    assert s.cache_bytes == 5 * MIB             # env beats file
    assert s.ocio_config == "/studio/config.ocio"
    assert load_settings(env={}, path=tmp_path / "absent.toml").frame_cache_bytes == 1024 * MIB


def test_settings_bad_values_are_clear(tmp_path):
    with pytest.raises(errors.InputError, match="ROTO_CACHE_MB"):
        load_settings(env={"ROTO_CACHE_MB": "lots"}, path=tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[cache\n")
    with pytest.raises(errors.InputError, match="config file"):
        load_settings(env={}, path=bad)


class _Blob:
    def __init__(self, n):
        self.nbytes = n


def test_byte_lru_respects_budget_and_recency():
    evicted = []
    lru = ByteLRU(100, on_evict=lambda k, v: evicted.append(k))
    for k in "abc":
        lru.put(k, _Blob(40))
    assert lru.bytes_used <= 100 and "a" not in lru and evicted == ["a"]
    assert lru.get("b") is not None           # b becomes most recent
    lru.put("d", _Blob(40))
    assert "c" not in lru and "b" in lru and "d" in lru
    assert lru.put("huge", _Blob(101)) is False and "huge" not in lru
    assert lru.stats()["bytes"] == 80


def test_progress_eta_and_cancel():
    import time

    p = Progress("track", 5, 10, started=time.monotonic() - 5.0)
    assert p.fraction == 0.5 and 4.0 < p.eta_seconds < 6.5
    tok = CancelToken()
    check_cancel(tok)
    tok.cancel()
    with pytest.raises(errors.Cancelled):
        check_cancel(tok)
