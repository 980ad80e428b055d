"""The Flame writer: GMask RAW setups parsed back as plain numbers, rasterised and compared."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.errors import InputError
from engine.export.hostfiles import write_host_script
from engine.export.hostfiles.flame import write_flame
from engine.shapes.metrics import iou
from engine.shapes.raster import fill_polygons
from engine.shapes.synthetic import make_shapeset

W, H = 240, 160


def parse_raw(text: str) -> np.ndarray:
    """An independent reading of the RAW layout: counts, then one 'x y z' line per vertex per keyframe."""
    lines = text.strip().splitlines()
    nk, nv = int(lines[0]), int(lines[1])
    rows = [tuple(float(v) for v in ln.split()) for ln in lines[2:]]
    assert len(rows) == nk * nv and all(len(r) == 3 for r in rows)
    return np.asarray(rows).reshape(nk, nv, 3)


@pytest.fixture(scope="module")
def ring():
    return make_shapeset("ring", W, H, 6)


def test_raw_setups_match_the_matte(ring, tmp_path):
    clip, ss = ring
    manifest = write_flame(ss, tmp_path / "shot_flame.json", matte_pattern="/d/shot.%04d.exr")
    data = json.loads(manifest.read_text())
    assert data["format"] == "roto-flame-gmask" and data["origin"] == "centre"
    # Flame's own sequence spelling (what flame.import_clips reads), and the #### patterns beside it
    assert data["mattes"] == "/d/shot.[1001-1006].exr" and data["plate"] == "/plates/shot.[1001-1006].exr"
    assert data["mattes_pattern"] == "/d/shot.####.exr" and data["plate_pattern"] == "/plates/shot.####.exr"
    outer, hole = data["shapes"]
    assert (outer["hole"], hole["hole"], hole["parent"]) == (False, True, "hero")
    raws = {e["name"]: parse_raw((tmp_path / e["raw"]).read_text()) for e in data["shapes"]}
    assert raws["hero"].shape[0] == len(clip.frames) and raws["hero"].shape[1] == outer["vertices"]
    assert np.all(raws["hero"][..., 2] == 0)
    for i, f in enumerate(clip.frames):
        def to_img(v):  # centre origin, y up -> engine pixels
            return np.stack([v[:, 0] + W / 2, H / 2 - v[:, 1]], axis=1)
        m = fill_polygons([to_img(raws["hero"][i])], (H, W)) & ~fill_polygons([to_img(raws["hero_hole1"][i])], (H, W))
        assert iou(m, clip.alphas[f] >= 0.5) >= 0.97


def test_bottom_left_origin_and_lifetime(ring, tmp_path):
    import copy

    clip, ss = ring
    ss = copy.deepcopy(ss)
    ss.shapes[1].first, ss.shapes[1].last = 1002, 1004
    res = write_host_script(ss, "flame", tmp_path / "b.json", origin="bottom-left")
    assert len(res.files) == 3
    data = json.loads(res.path.read_text())
    hole = data["shapes"][1]
    assert (hole["first"], hole["last"]) == (1002, 1004)
    raw = parse_raw((tmp_path / hole["raw"]).read_text())
    assert raw.shape[0] == 3  # one keyframe per living frame
    assert raw[..., 1].min() > 0 and raw[..., 1].max() < H  # y measured up from the bottom
    with pytest.raises(InputError):
        write_flame(ss, tmp_path / "c.json", origin="top")
