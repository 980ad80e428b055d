"""`roto bench io` at a tiny size: report structure only (no timing assertions)."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest

pytest.importorskip("av")
pytest.importorskip("OpenEXR")

if importlib.util.find_spec("engine.media.readers.sequence") is None:  # pragma: no cover
    pytest.skip("the image-sequence reader (engine.media.readers.sequence) is not here yet", allow_module_level=True)

from engine.bench import SUITES, BenchReport, get_suite, run_suite  # noqa: E402
from engine.errors import InputError  # noqa: E402


def _check_row(row: dict, name: str, frames: int) -> None:
    assert row["name"] == name
    assert row["frames"] == frames and (row["width"], row["height"]) == (64, 64)
    for key in ("ours_fps", "raw_fps", "ratio"):
        assert isinstance(row[key], float) and math.isfinite(row[key]) and row[key] > 0, (name, key, row[key])
    assert row["goal"] == 0.8 and isinstance(row["ok"], bool)
    assert row["ours"] and row["raw"] and row["extra"]["ours_open_s"] >= 0


def test_io_suite_tiny(tmp_path):
    report = run_suite("io", workdir=tmp_path, size=(64, 64), frames=4, exr_frames=3)
    assert isinstance(report, BenchReport) and report.suite == "io"
    data = report.to_dict()
    assert [r["name"] for r in data["rows"]] == ["video", "exr"]
    _check_row(data["rows"][0], "video", 4)
    _check_row(data["rows"][1], "exr", 3)
    assert data["params"]["size"] == "64x64"
    assert data["machine"]["cpus"] >= 1
    json.dumps(data)  # JSON-ready
    # the media stay in a given workdir and are reused by the next run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench_exr_64x64_3", "bench_h264_64x64_4.mp4"]
    assert len(list((tmp_path / "bench_exr_64x64_3").glob("plate.*.exr"))) == 3


def test_cli_bench_io_json(capsys, tmp_path):
    from engine.cli.main import main

    assert main(["bench", "io", "--size", "64x64", "--frames", "4", "--workdir", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    _check_row(data["rows"][0], "video", 4)
    _check_row(data["rows"][1], "exr", 2)  # default: half the movie's frames


def test_cli_bench_table_and_temp_media(capsys):
    from engine.cli.main import main

    assert main(["bench", "io", "--size", "32x32", "--frames", "2"]) == 0
    out = capsys.readouterr().out
    assert "fps ours" in out and "ratio" in out and "H.264" in out and "EXR" in out


def test_suite_registry_and_bad_options():
    assert "io" in SUITES and get_suite("io").DESCRIPTION
    with pytest.raises(InputError):
        get_suite("nope")
    with pytest.raises(InputError):
        run_suite("io", size=(63, 64), frames=2)
    from engine.cli.main import main

    assert main(["bench", "io", "--size", "big"]) == 2
