"""Sequence patterns: one file, #### / %04d / @@@@ templates, folders, gaps, padding."""

from __future__ import annotations

import pytest

from engine.errors import MediaNotFound, UnsupportedMedia
from engine.media.sequence import find_sequence, missing_ranges, path_for


def _touch(folder, names):
    for n in names:
        (folder / n).write_bytes(b"x")


def test_member_file_finds_its_siblings_and_gaps(tmp_path):
    _touch(tmp_path, [f"shot.{f}.exr" for f in (1001, 1002, 1004, 1005)] + ["shot.1001.dpx", "other.0001.exr"])
    seq = find_sequence(tmp_path / "shot.1002.exr")
    assert seq.frames == (1001, 1002, 1004, 1005)
    assert seq.missing == (1003,)
    assert seq.pattern.hashes.endswith("shot.####.exr")
    assert seq.pattern.printf.endswith("shot.%04d.exr")
    assert path_for(seq, 1003).name == "shot.1003.exr"


@pytest.mark.parametrize("template", ["shot_####.dpx", "shot_%04d.dpx", "shot_@@@@.dpx", "shot_#.dpx"])
def test_templates(tmp_path, template):
    _touch(tmp_path, [f"shot_{f:04d}.dpx" for f in range(1, 6)])
    seq = find_sequence(str(tmp_path / template))
    assert seq.frames == (1, 2, 3, 4, 5)
    assert seq.pattern.padding == 4
    assert path_for(seq, 7).name == "shot_0007.dpx"


def test_unpadded_and_strict_padding(tmp_path):
    _touch(tmp_path, ["a.8.png", "a.9.png", "a.10.png", "a.11.png"])
    seq = find_sequence(tmp_path / "a.9.png")
    assert seq.frames == (8, 9, 10, 11) and seq.pattern.padding == 0
    assert path_for(seq, 12).name == "a.12.png"
    _touch(tmp_path, ["b.0001.png", "b.01.png"])
    assert find_sequence(str(tmp_path / "b.####.png")).frames == (1,)


def test_folder_picks_longest_sequence(tmp_path):
    _touch(tmp_path, [f"plate.{f}.exr" for f in range(10, 20)] + ["thumb.1.jpg", "notes.txt", ".hidden.0001.exr"])
    seq = find_sequence(tmp_path)
    assert seq.pattern.prefix == "plate." and seq.first == 10 and seq.last == 19


def test_dash_is_a_separator_not_a_sign(tmp_path):
    _touch(tmp_path, ["shot-0001.tif", "shot-0002.tif"])
    seq = find_sequence(tmp_path / "shot-0001.tif")
    assert seq.frames == (1, 2)


def test_lone_image_is_one_frame(tmp_path):
    _touch(tmp_path, ["poster.png"])
    seq = find_sequence(tmp_path / "poster.png")
    assert seq.frames == (1,) and path_for(seq, 1).name == "poster.png"


def test_errors_name_the_path(tmp_path):
    with pytest.raises(MediaNotFound, match="does not exist"):
        find_sequence(tmp_path / "nope.1001.exr")
    with pytest.raises(MediaNotFound, match="no frames match"):
        find_sequence(str(tmp_path / "nope.####.exr"))
    (tmp_path / "doc.1.txt").write_text("x")
    with pytest.raises(UnsupportedMedia, match="'.txt'"):
        find_sequence(tmp_path / "doc.1.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MediaNotFound, match="no image sequence"):
        find_sequence(empty)


def test_missing_ranges_text():
    assert missing_ranges((3, 4, 5, 9, 11, 12)) == "3-5, 9, 11-12"
    assert missing_ranges(()) == ""


# --- the default {shot} name of deliverables -----------------------------------------------------


@pytest.mark.parametrize("plate, shot", [
    ("/shows/x/sh010/plate.####.exr", "plate"),
    ("/shows/x/sh010/sh010_bg.%04d.dpx", "sh010_bg"),
    ("/shows/x/sh010/sh010.1001.exr", "sh010"),
    ("/shows/x/sh010/sh010.mov", "sh010"),
    ("/davis/JPEGImages/480p/blackswan/%05d.jpg", "blackswan"),  # numbers only: the folder's name
    ("/shows/x/sh020/####.exr", "sh020"),
    ("/shows/x/sh020/00001.jpg", "sh020"),
    ("/shows/x/sh030/v2_@@@@.png", "v2"),
])
def test_shot_name_comes_from_the_plate_without_frame_tokens(plate, shot):
    from engine.export.naming import shot_name

    slug = plate.split("/")[-1].split(".")[0].strip("%#@") or "session"  # as the server names its files
    server_made = f"/var/tmp/roto/sessions/{slug}-39aa5398dd.roto.json"
    for project in (None, server_made, "/state/sessions/05d-0857abfef8.roto.json"):
        name = shot_name(project, plate)
        assert name == shot, (project, plate, name)
        assert "%" not in name and "05d" not in name and "#" not in name


def test_a_user_named_project_file_still_names_the_shot():
    from engine.export.naming import is_server_project, shot_name

    assert shot_name("/shows/x/sh010/sh010.roto.json", "/davis/blackswan/%05d.jpg") == "sh010"
    # a user's file that merely lives in a folder called sessions, or has a hash-like name elsewhere
    assert shot_name("/shows/sessions/comp_v2.roto.json", "/p/plate.####.exr") == "comp_v2"
    assert shot_name("/shows/x/hero-0123456789.roto.json", "/p/plate.####.exr") == "hero_0123456789"
    assert is_server_project("/var/tmp/roto/sessions/plate-39aa5398dd.roto.json")
    assert not is_server_project("/shows/x/sh010.roto.json")
    assert shot_name(None, "/1/2/0001.exr") == "shot"  # nothing names it: the fallback, never digits
