"""DAVIS J/F measures on hand-made masks, and one benchmark run on real data (shared, slow)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.eval.davis import disk, evaluate_sequence, f_measure, jaccard, seg2bmap


def rect(shape, x0, y0, x1, y1):
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def test_identical_masks_score_one():
    m = rect((120, 200), 30, 20, 90, 80)
    assert jaccard(m, m) == 1.0
    assert f_measure(m, m) == 1.0


def test_disjoint_masks_score_zero():
    a = rect((120, 200), 0, 0, 40, 40)
    b = rect((120, 200), 120, 60, 180, 110)
    assert jaccard(a, b) == 0.0
    assert f_measure(a, b) == 0.0


def test_known_iou_of_two_rectangles():
    a = rect((100, 100), 10, 10, 50, 50)  # 1600 px
    b = rect((100, 100), 30, 10, 70, 50)  # 1600 px, overlap 20x40 = 800
    assert jaccard(a, b) == pytest.approx(800 / 2400)


def test_one_pixel_shift_is_within_tolerance():
    a = rect((480, 854), 100, 100, 300, 250)
    b = rect((480, 854), 101, 100, 301, 250)
    assert f_measure(b, a) == 1.0
    assert jaccard(a, b) < 1.0


def test_shift_beyond_tolerance_lowers_f():
    # bound_pix at 854x480 is ceil(0.008 * 979.6) = 8: a 20 px shift puts the vertical edges out of reach
    a = rect((480, 854), 100, 100, 300, 250)
    b = rect((480, 854), 120, 100, 320, 250)
    f = f_measure(b, a)
    assert 0.3 < f < 0.9


def test_empty_mask_conventions():
    e = np.zeros((50, 60), bool)
    m = rect((50, 60), 10, 10, 20, 20)
    assert jaccard(e, e) == 1.0
    assert f_measure(e, e) == 1.0
    assert jaccard(m, e) == 0.0
    assert f_measure(e, m) == 0.0  # nothing predicted: precision 1, recall 0
    assert f_measure(m, e) == 0.0  # something predicted, nothing true: precision 0, recall 1


def test_seg2bmap_matches_definition():
    m = rect((6, 6), 1, 1, 4, 4)
    b = seg2bmap(m)
    # boundaries offset half a pixel towards the origin: the pixel before the left/top edges, the last
    # pixels of the right/bottom edges
    assert b.dtype == bool
    assert b[0, 0] and b[0, 3]  # diagonal/above neighbours of the square
    assert not b[2, 2]  # interior
    assert b[3, 3]  # bottom-right corner of the square differs from its south/east neighbours
    assert not b[5, 5]


def test_disk_shape():
    d = disk(8.0)
    assert d.shape == (17, 17)
    assert d[8, 0] == 1 and d[0, 0] == 0 and d.sum() == 197


def test_evaluate_sequence_skips_first_and_last():
    g = [rect((40, 40), 5, 5, 20, 20)] * 5
    p = [np.zeros((40, 40), bool)] + [rect((40, 40), 5, 5, 20, 20)] * 3 + [np.zeros((40, 40), bool)]
    j, f = evaluate_sequence(g, p)
    assert j.tolist() == [1.0, 1.0, 1.0]
    assert f.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.shared
@pytest.mark.slow
def test_run_davis_on_real_sequences(evaldata):
    from engine.eval.davis import run_davis

    root = evaldata / "davis2016-val-subset"
    if not root.is_dir():
        pytest.skip(f"{root} is not here")
    rep = run_davis(root, ["blackswan", "car-roundabout"], prompt="mask")
    by = {s.name: s for s in rep.sequences}
    # measured 2026-11-25: blackswan J&F 0.93, car-roundabout 0.76 (mask prompt); floors leave room
    assert by["blackswan"].JF > 0.85
    assert by["car-roundabout"].JF > 0.65
    assert rep.seconds_per_frame < 2.0


def _mini_davis(root, seqs=("alpha", "beta"), frames=3):
    import cv2

    for seq in seqs:
        (root / "JPEGImages" / "480p" / seq).mkdir(parents=True)
        (root / "Annotations" / "480p" / seq).mkdir(parents=True)
        for i in range(frames):
            img = np.full((24, 32, 3), 40, np.uint8)
            img[8:16, 10 + i:20 + i] = 220
            cv2.imwrite(str(root / "JPEGImages" / "480p" / seq / f"{i:05d}.jpg"), img)
            cv2.imwrite(str(root / "Annotations" / "480p" / seq / f"{i:05d}.png"), (img[:, :, 0] > 128).astype(np.uint8) * 255)
    return root


def test_davis_folder_errors_name_what_is_missing(tmp_path, capsys):
    from engine.cli.main import main
    from engine.errors import MediaNotFound
    from engine.eval.davis import list_sequences, read_frames, run_davis

    root = _mini_davis(tmp_path / "davis")
    assert list_sequences(root) == ["alpha", "beta"]
    with pytest.raises(MediaNotFound, match="no sequence 'nosuch'.*Available: alpha, beta"):
        run_davis(root, ["alpha", "nosuch"])
    with pytest.raises(MediaNotFound, match="no sequence 'gamma'.*Available: alpha, beta"):
        read_frames(root, "gamma")
    with pytest.raises(MediaNotFound, match="not a DAVIS folder.*JPEGImages/480p/<sequence>"):
        list_sequences(tmp_path)
    (root / "Annotations" / "480p" / "beta" / "00001.png").unlink()
    with pytest.raises(MediaNotFound, match="no annotation for frame 00001.jpg"):
        read_frames(root, "beta")
    # the command line: one sentence, exit 2, no traceback
    assert main(["eval", "davis", str(root), "--sequences", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "nosuch" in err and "Available: alpha, beta" in err and "Traceback" not in err
    assert main(["eval", "davis", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["eval", "davis", str(tmp_path), "--json"]) == 2
    assert "Annotations/480p/<sequence>" in capsys.readouterr().err
    assert main(["eval", "davis", str(root), "--sequences", "alpha", "--json"]) == 0
    assert '"alpha"' in capsys.readouterr().out
