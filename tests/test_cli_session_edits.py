"""`roto track/matte --session` as an edit of a project file: all or nothing, idempotent, the
plate found from any folder, and files that are not sessions refused with a sentence."""

from __future__ import annotations

import pytest

from engine.cli.main import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv", [("qc", "{f}", "--no-plot"), ("session", "show", "{f}")])
def test_a_binary_file_given_as_session_is_one_sentence(capsys, tmp_path, argv):
    f = tmp_path / "shot.1001.jpg"
    f.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00")
    code, _, err = run(capsys, *[a.format(f=f) for a in argv])
    assert code == 2 and err.startswith("roto: error: ") and "Traceback" not in err
    assert "shot.1001.jpg" in err and "is not a roto session file" in err


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    """Six 64x48 PNG frames (1001-1006) of a bright square moving right on grey, and its mask on 1001."""
    import cv2
    import numpy as np

    folder = tmp_path_factory.mktemp("plate")
    for i, f in enumerate(range(1001, 1007)):
        img = np.full((48, 64, 3), 60, np.uint8)
        img[14:34, 10 + 2 * i:30 + 2 * i] = (40, 200, 230)
        cv2.imwrite(str(folder / f"shot.{f}.png"), img)
    mask = np.zeros((48, 64), np.uint8)
    mask[14:34, 10:30] = 255
    cv2.imwrite(str(folder / "mask.png"), mask)
    cv2.imwrite(str(folder / "empty.png"), np.zeros((48, 64), np.uint8))
    cv2.imwrite(str(folder / "small.png"), mask[::2, ::2])
    return folder


def _files(session):
    bak = session.with_name(session.name + ".bak")
    return {p.name: p.read_bytes() for p in (session, bak) if p.exists()}


def _prompts_file(tmp_path, plate, objects):
    import json

    pf = tmp_path / "prompts.json"
    pf.write_text(json.dumps({"objects": objects}))
    return str(pf)


def _tracked(capsys, tmp_path, plate):
    """A session file made by tracking the mask on 1001 (mattes in tmp_path/o): (session, first frame path)."""
    session = tmp_path / "s.roto.json"
    first = str(plate / "shot.1001.png")
    code, _, err = run(capsys, "track", first, "--mask", str(plate / "mask.png"), "--session", str(session),
                       "--out", str(tmp_path / "o"))
    assert code == 0, err
    return session, first


BAD_EDITS = {
    "point outside": lambda tmp, plate: ["--point", "900,10", "--object", "newobj"],
    "frame out of range": lambda tmp, plate: ["--point", "20,20", "--frame", "5000", "--object", "fresh"],
    "empty mask": lambda tmp, plate: ["--mask", str(plate / "empty.png"), "--object", "other"],
    "wrong mask size": lambda tmp, plate: ["--mask", str(plate / "small.png"), "--object", "other"],
    "prompts file, second object bad": lambda tmp, plate: ["--prompts", _prompts_file(tmp, plate, [
        {"name": "ok", "prompts": [{"frame": 1001, "points": [[20, 20]]}]},
        {"name": "bad", "prompts": [{"frame": 1001, "points": [[5000, 10]]}]}])],
    "prompts file, frame out of range": lambda tmp, plate: ["--prompts", _prompts_file(tmp, plate, [
        {"name": "matte", "prompts": [{"frame": 1001, "mask": str(plate / "mask.png")}]},
        {"name": "late", "prompts": [{"frame": 99, "box": [5, 5, 30, 30]}]}])],
    "prompts file, missing keyframe mask": lambda tmp, plate: ["--prompts", _prompts_file(tmp, plate, [
        {"name": "n1", "prompts": [{"frame": 1002, "points": [[20, 20]]}],
         "keyframes": [{"frame": 1003, "mask": "nope.png"}]}])],
}


@pytest.mark.parametrize("case", sorted(BAD_EDITS))
def test_a_failed_track_leaves_the_session_file_byte_identical(capsys, tmp_path, plate, case):
    session, first = _tracked(capsys, tmp_path, plate)
    run(capsys, "track", first, "--point", "20,20", "--frame", "1003", "--session", str(session),
        "--out", str(tmp_path / "o"))  # a second edit, so there is a .bak too
    before = _files(session)
    assert len(before) == 2
    code, _, err = run(capsys, "track", first, *BAD_EDITS[case](tmp_path, plate), "--session", str(session),
                       "--out", str(tmp_path / "o2"))
    assert code == 2 and err.count("roto: error: ") == 1 and "Traceback" not in err
    assert _files(session) == before
    code, out, _ = run(capsys, "session", "show", str(session))
    assert code == 0 and "[2]" not in out  # no phantom object


def test_a_failing_prompts_file_says_which_object_and_prompt(capsys, tmp_path, plate):
    args = BAD_EDITS["prompts file, second object bad"](tmp_path, plate)
    code, _, err = run(capsys, "track", str(plate / "shot.1001.png"), *args, "--out", str(tmp_path / "o"))
    assert code == 2 and "prompts.json" in err and "objects[1] ('bad'), prompts[0] (frame 1001)" in err
    assert "outside" in err


@pytest.mark.parametrize("cmd", ["track", "matte"])
def test_a_failed_command_on_a_new_session_creates_no_file(capsys, tmp_path, plate, cmd):
    session = tmp_path / "new.roto.json"
    code, _, err = run(capsys, cmd, str(plate / "shot.1001.png"), "--mask", str(plate / "small.png"),
                       "--session", str(session), "--out", str(tmp_path / "o"))
    assert code == 2 and "plate is 64x48" in err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("new")) == []


def test_a_matte_that_fails_after_tracking_leaves_the_session_as_it_was(capsys, tmp_path, plate):
    """The edit (a new tracked object) and the matte are one command: a failure undoes both on disk."""
    session, first = _tracked(capsys, tmp_path, plate)
    before = _files(session)
    code, _, err = run(capsys, "matte", first, "--mask", str(plate / "mask.png"), "--frame", "1004", "--object",
                       "other", "--session", str(session), "--backend", "nosuch", "--out", str(tmp_path / "m"))
    assert code == 2 and "nosuch" in err
    assert _files(session) == before


def _summary(session):
    from engine.session.session import Session

    s = Session.open(session, autosave=False)
    return len(s.data.prompts), [c.label for c in s.history.undo_stack]


def test_rerunning_the_same_track_command_adds_no_prompt_and_no_undo_step(capsys, tmp_path, plate):
    session = tmp_path / "s.roto.json"
    first = str(plate / "shot.1001.png")
    prompts = _prompts_file(tmp_path, plate, [
        {"name": "blob", "prompts": [{"frame": 1002, "points": [[22, 24], [5, 5, 0]], "box": [10, 12, 34, 36]}],
         "keyframes": [{"frame": 1006, "mask": str(plate / "mask.png")}]}])
    commands = [["--mask", str(plate / "mask.png")],
                ["--point", "20,20", "--point", "3,3,0", "--frame", "1004"],
                ["--prompts", prompts]]
    for argv in commands:
        code, _, err = run(capsys, "track", first, *argv, "--session", str(session), "--out", str(tmp_path / "o"))
        assert code == 0, err
    once = _summary(session)
    assert once[0] == 1 + 2 + 3
    for argv in commands:  # the same commands again: nothing new
        code, _, err = run(capsys, "track", first, *argv, "--session", str(session), "--out", str(tmp_path / "o"))
        assert code == 0, err
        assert _summary(session) == once
    code, _, err = run(capsys, "track", first, "--point", "21,20", "--frame", "1004", "--session", str(session),
                       "--out", str(tmp_path / "o"))  # a different click is added
    assert code == 0, err
    assert _summary(session)[0] == once[0] + 1
    assert "is idempotent" in " ".join(run_help(capsys).split())


def run_help(capsys):
    with pytest.raises(SystemExit):
        main(["track", "--help"])
    return capsys.readouterr().out


@pytest.fixture
def project(tmp_path, plate, monkeypatch):
    """A project folder with its plate in plate/ and a session made there with relative paths."""
    import shutil

    proj = tmp_path / "proj"
    shutil.copytree(plate, proj / "plate")
    monkeypatch.chdir(proj)
    code = main(["track", "plate/shot.1001.png", "--mask", "plate/mask.png", "--session", "s.roto.json",
                 "--out", "o"])
    assert code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return proj, elsewhere


def test_a_session_works_from_any_folder(capsys, project, monkeypatch):
    proj, elsewhere = project
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    code, out, err = run(capsys, "qc", str(proj / "s.roto.json"), "--no-plot")
    assert code == 0, err
    code, _, err = run(capsys, "track", str(proj / "plate" / "shot.1001.png"), "--point", "20,20", "--frame", "1003",
                       "--session", str(proj / "s.roto.json"), "--out", "o")
    assert code == 0, err


@pytest.mark.parametrize("name", ["plate/shot.####.png", "plate/shot.%04d.png", "plate", "plate/shot.1003.png",
                                  "./plate/../plate/shot.1001.png"])
def test_any_name_of_the_sessions_plate_is_the_same_plate(capsys, project, name):
    code, _, err = run(capsys, "track", name, "--session", "s.roto.json", "--out", "o")
    assert code == 0, err


def test_another_plate_is_refused(capsys, project):
    proj, _ = project
    (proj / "other").mkdir()
    import shutil

    for f in range(1001, 1007):
        shutil.copy(proj / "plate" / f"shot.{f}.png", proj / "other" / f"take.{f}.png")
    before = _files(proj / "s.roto.json")
    code, _, err = run(capsys, "track", "other/take.1001.png", "--session", "s.roto.json", "--out", "o")
    assert code == 2 and "the session was made on" in err and str(proj / "plate" / "shot.1001.png") in err
    assert _files(proj / "s.roto.json") == before


def test_a_moved_project_folder_finds_its_plate(capsys, project, monkeypatch):
    import json

    proj, elsewhere = project
    moved = proj.with_name("moved")
    proj.rename(moved)
    monkeypatch.chdir(elsewhere)
    code, _, err = run(capsys, "qc", str(moved / "s.roto.json"), "--no-plot")  # stores scores: saves the session
    assert code == 0, err
    clip = json.loads((moved / "s.roto.json").read_text())["clip"]
    assert clip["path"] == str(moved / "plate" / "shot.1001.png") and clip["relative_path"] == "plate/shot.1001.png"


def test_an_old_session_with_the_plate_path_as_typed_still_opens(capsys, project, monkeypatch):
    import json

    proj, elsewhere = project
    doc = json.loads((proj / "s.roto.json").read_text())
    doc["clip"]["path"] = "plate/shot.1001.png"  # as an older engine wrote it: relative, as typed
    del doc["clip"]["relative_path"]
    (proj / "s.roto.json").write_text(json.dumps(doc))
    monkeypatch.chdir(elsewhere)  # beside the project file
    code, _, err = run(capsys, "qc", str(proj / "s.roto.json"), "--no-plot")
    assert code == 0, err
    (elsewhere / "old.roto.json").write_text(json.dumps(doc))
    monkeypatch.chdir(proj)  # not beside this project file, but in the current folder
    code, _, err = run(capsys, "qc", str(elsewhere / "old.roto.json"), "--no-plot")
    assert code == 0, err


def test_a_mis_click_is_taken_back_with_session_undo_and_redo(capsys, tmp_path, plate):
    import cv2

    session, first = _tracked(capsys, tmp_path, plate)
    good = cv2.imread(str(tmp_path / "o" / "matte.1004.png"), cv2.IMREAD_UNCHANGED)
    # a click on the background of frame 1003 makes that frame a keyframe of the wrong thing
    code, _, err = run(capsys, "track", first, "--point", "55,40", "--frame", "1003", "--session", str(session),
                       "--out", str(tmp_path / "bad"))
    assert code == 0, err
    assert not (cv2.imread(str(tmp_path / "bad" / "matte.1004.png"), cv2.IMREAD_UNCHANGED) == good).all()
    code, out, _ = run(capsys, "session", "show", str(session))
    assert "keyframes 1001, 1003" in out
    code, out, err = run(capsys, "session", "undo", str(session), "--steps", "2")
    assert code == 0, err
    assert out.count("undid: ") == 2 and "point" in out  # the propagation and the click
    code, out, _ = run(capsys, "session", "show", str(session))
    assert "keyframes 1001, 1003" not in out and "keyframes 1001, 1 prompts" in out
    from engine.session.session import Session

    s = Session.open(session, autosave=False)
    assert ((s.mask(1, 1004) > 0) == (good > 0)).all()  # the masks from before the click, exactly
    code, out, _ = run(capsys, "session", "redo", str(session))
    assert code == 0 and out.startswith("redid: ")
    code, out, _ = run(capsys, "session", "undo", str(session), "--steps", "50")
    assert code == 0 and "only" in out
    code, out, _ = run(capsys, "session", "undo", str(session))
    assert code == 0 and "nothing to undo" in out
    code, _, err = run(capsys, "session", "undo", str(session), "--steps", "0")
    assert code == 2 and "--steps" in err
