"""The batch job file: the minimal form, YAML, defaults, relative paths and validation messages."""

from __future__ import annotations

import json

import pytest

from engine.batch.jobfile import load_job, parse_range, validate_job
from engine.errors import InputError

MINIMAL = {"shots": [{"name": "sh010", "input": "/plates/sh010/sh010.####.exr", "mask": "/prompts/sh010.png",
                      "stages": ["track", "matte", "export"], "out": "/out/sh010"}]}


def test_the_issue_minimal_form_validates(tmp_path):
    p = tmp_path / "job.json"
    p.write_text(json.dumps(MINIMAL))
    job = load_job(p)
    s = job.shots[0]
    assert (s.name, s.input, s.mask, s.out) == ("sh010", "/plates/sh010/sh010.####.exr", "/prompts/sh010.png", "/out/sh010")
    assert s.stages == ["track", "matte", "export"] and s.object == "matte" and s.direction == "both"
    assert s.session_path.as_posix() == "/out/sh010/sh010.roto.json"
    assert (s.matte.chunk, s.matte.warmup, s.export.format) == (50, 4, "exr")


def test_yaml_defaults_and_relative_paths(tmp_path):
    (tmp_path / "job.yaml").write_text(
        "defaults:\n  stages: [export, track]\n  matte: {chunk: 20}\n  export: {format: png}\n"
        "shots:\n  - {name: a, input: plates/a.####.exr, mask: a.png, out: out/a}\n"
        "  - {name: b, input: /abs/b.mov, points: [[10, 20], [30, 40, 0]], out: out/b, export: {chunk: 5},"
        " stages: [track, matte, export]}\n")
    job = load_job(tmp_path / "job.yaml")
    a, b = job.shots
    assert a.stages == ["track", "export"]  # run order, whatever the file's order
    assert a.input == str(tmp_path / "plates/a.####.exr") and a.mask == str(tmp_path / "a.png")
    assert a.out == str(tmp_path / "out/a") and b.input == "/abs/b.mov"
    assert b.export.format == "png" and b.export.chunk == 5 and b.matte.chunk == 20  # tables merged key by key


@pytest.mark.parametrize("shot, words", [
    ({"name": "x", "input": "p", "out": "o"}, "needs a prompt"),
    ({"name": "x", "input": "p", "out": "o", "mask": "m", "stages": ["track", "wobble"]}, "shots[0].stages[1]"),
    ({"name": "x", "input": "p", "out": "o", "mask": "m", "stages": ["track", "track"]}, "listed twice"),
    ({"name": "bad name", "input": "p", "out": "o", "mask": "m"}, "shot name"),
    ({"name": "x", "input": "p", "out": "o", "mask": "m", "prompts": "f.json"}, "cannot be combined"),
    ({"name": "x", "input": "p", "out": "o", "stages": ["export"]}, "existing 'session'"),
    ({"name": "x", "input": "p", "out": "o", "mask": "m", "points": [[1, 2, 5]]}, "label"),
    ({"name": "x", "input": "p", "out": "o", "mask": "m", "frames": "1100-1001"}, "ends before"),
    ({"name": "x", "input": "p", "out": "o", "mask": "m", "matte": {"controls": {"wiggle": 1}}}, "unknown edge control"),
    ({"name": "x", "input": "p", "out": "o", "mask": "m", "colour": "srgb"}, "shots[0].colour"),
])
def test_invalid_shots_are_reported_with_their_location(shot, words):
    with pytest.raises(InputError) as err:
        validate_job({"shots": [shot]}, source="job.json")
    assert words in err.value.message and err.value.path == "job.json"


def test_job_level_problems(tmp_path):
    with pytest.raises(InputError, match="unique"):
        validate_job({"shots": [MINIMAL["shots"][0], MINIMAL["shots"][0]]})
    twin = dict(MINIMAL["shots"][0], name="sh020")
    with pytest.raises(InputError, match="own 'out' folder"):
        validate_job({"shots": [MINIMAL["shots"][0], twin]})
    with pytest.raises(InputError, match="shots"):
        validate_job({"shots": []})
    with pytest.raises(InputError, match="an object"):
        validate_job([1, 2])
    bad = tmp_path / "bad.json"
    bad.write_text('{"shots": [}')
    with pytest.raises(InputError, match="line 1"):
        load_job(bad)
    with pytest.raises(InputError, match="does not exist"):
        load_job(tmp_path / "absent.json")
    y = tmp_path / "bad.yaml"
    y.write_text("shots: [a: b: c]\n")
    with pytest.raises(InputError, match="YAML"):
        load_job(y)


def test_frame_ranges():
    assert parse_range("1001-1100") == (1001, 1100) and parse_range("1010") == (1010, 1010)
    assert parse_range("-5--1") == (-5, -1)
    job = validate_job({"shots": [dict(MINIMAL["shots"][0], frames=[1001, 1010])]})
    assert job.shots[0].frame_range == (1001, 1010)
    with pytest.raises(ValueError):
        parse_range("one-two")
