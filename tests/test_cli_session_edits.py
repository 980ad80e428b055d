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
