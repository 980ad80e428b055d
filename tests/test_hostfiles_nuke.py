"""The Nuke writer, read back by independent readers: nkparser (script, nodes, wiring) and Tcl's own
list parser (the Roto ``curves`` knob), then rasterised and compared with the source matte."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from engine.export.hostfiles import write_host_script
from engine.export.hostfiles.nuke import write_nuke
from engine.shapes.metrics import iou
from engine.shapes.nk_reader import read_nk
from engine.shapes.raster import fill_polygons
from engine.shapes.synthetic import make_shapeset

nkparser = pytest.importorskip("nkparser", reason="nkparser (PyPI) is the independent .nk reader: pip install nkparser")


@pytest.fixture(scope="module")
def ring():
    return make_shapeset("ring", 240, 160, 6)


def tcl():
    tkinter = pytest.importorskip("tkinter", reason="Tcl (Python's tkinter) decodes the curves knob independently")
    try:
        return tkinter.Tcl()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no Tcl interpreter: {exc}")


def num(tok: str) -> float:
    if tok.startswith("x") and len(tok) == 9:
        return struct.unpack(">f", bytes.fromhex(tok[1:]))[0]
    return float(tok)


def decode_curves(value: str, interp) -> dict[str, dict]:
    """Shapes of a curves knob, decoded with Tcl's list parser: {name: {frames, points (K,N,3,2), attrs}}."""
    split = interp.splitlist
    items = split(value)
    while len(items) == 1:
        items = split(items[0])
    layers = [x for x in items if split(x)[0] == "n"]
    out = {}
    for layer in split(layers[0])[1:]:
        for el in split(layer)[2:]:
            parts = split(el)
            if parts[0] != "curvegroup":
                continue
            name = parts[1]
            cc = split(split(parts[4])[0])
            assert split(parts[4])[1] == "idem"
            px = [split(x) for x in cc[1:] if split(x)[0] in ("px", "p")][0]
            frames = [int(round(num(t))) for t in split(px[1])]
            k = len(frames)
            vals = np.zeros((k, len(px) - 2, 2))
            for e, entry in enumerate(px[2:]):
                for c, ch in enumerate(split(entry)):
                    v = [num(t) for t in split(ch)]
                    vals[:, e, c] = v if len(v) == k else v * k
            attrs = dict(zip(split(parts[6])[1::2], split(parts[6])[2::2]))
            out[name] = {"frames": frames, "vals": vals.reshape(k, -1, 3, 2), "attrs": attrs}
    return out


def polygon(vals: np.ndarray, height: int) -> np.ndarray:
    """The closed cubic spline of one key (N, 3, 2) in Nuke coordinates → dense polygon, top-left coordinates."""
    left, p, right = vals[:, 0], vals[:, 1], vals[:, 2]
    t = np.linspace(0, 1, 40, endpoint=False)[:, None]
    pts = []
    for i in range(len(p)):
        j = (i + 1) % len(p)
        c = [p[i], p[i] + right[i], p[j] + left[j], p[j]]
        pts.append((1 - t) ** 3 * c[0] + 3 * (1 - t) ** 2 * t * c[1] + 3 * (1 - t) * t ** 2 * c[2] + t ** 3 * c[3])
    poly = np.vstack(pts)
    return np.stack([poly[:, 0], height - poly[:, 1]], axis=1)


def test_script_parses_with_nkparser_and_wires_as_intended(ring, tmp_path):
    clip, ss = ring
    out = write_nuke(ss, tmp_path / "shot.nk", matte_pattern="/deliver/shot.####.exr")
    script = nkparser.Script.from_file(str(out))
    assert not script.has_errors, [str(d) for d in script.diagnostics]
    nodes = {n.name: n for n in script.all_nodes()}
    assert {"Plate", "hero", "hero_holes", "hero_cut", "ShapesAlpha", "Mattes", "MattesCryptomatte",
            "ShapesOrMatte", "Viewer1"} <= set(nodes)
    assert nodes["Plate"].class_name == "Read" and nodes["Plate"].get("file") == "/plates/shot.####.exr"
    assert nodes["Plate"].get("first") == "1001" and nodes["Plate"].get("last") == "1006"
    assert nodes["Plate"].get("format").strip('"').split()[:2] == ["240", "160"]
    assert nodes["Mattes"].get("raw") == "true"
    assert nodes["MattesCryptomatte"].get("matteList") == "hero"
    assert nodes["MattesCryptomatte"].get("cryptoLayer") == "CryptoObject"
    assert nodes["hero"].class_name == "Roto" and nodes["hero"].get("output") == "alpha"
    # nkparser lists inputs in stack order; Nuke's input 0 (B) is the top of the stack, i.e. the last one
    nuke_inputs = {n: [i.name for i in reversed(nodes[n].inputs)] for n in ("hero_cut", "ShapesAlpha", "ShapesOrMatte")}
    assert nuke_inputs["hero_cut"] == ["hero", "hero_holes"]  # B shapes stencilled by A holes
    assert nuke_inputs["ShapesAlpha"] == ["Plate", "hero_cut"]  # B plate gets A's alpha
    assert nuke_inputs["ShapesOrMatte"] == ["ShapesPremult", "MattesPremult"]  # opens on the shapes
    assert [i.name for i in nodes["Viewer1"].inputs] == ["ShapesOrMatte"]
    assert nodes["hero_cut"].get("operation") == "stencil"
    root = script.root()
    assert root.get("first_frame") == "1001" and root.get("last_frame") == "1006"


def test_curves_decoded_by_tcl_rasterise_to_the_source_matte(ring, tmp_path):
    clip, ss = ring
    interp = tcl()
    out = write_nuke(ss, tmp_path / "shot.nk")
    script = nkparser.Script.from_file(str(out))
    nodes = {n.name: n for n in script.all_nodes()}
    outer = decode_curves(nodes["hero"].get("curves"), interp)
    holes = decode_curves(nodes["hero_holes"].get("curves"), interp)
    assert list(outer) == ["hero"] and len(holes) == 1
    (o,), (h,) = outer.values(), holes.values()
    assert o["frames"] == clip.frames and o["vals"].shape[1] == ss.shapes[0].n_points
    for i, f in enumerate(clip.frames):
        m = fill_polygons([polygon(o["vals"][i], 160)], (160, 240))
        m &= ~fill_polygons([polygon(h["vals"][i], 160)], (160, 240))
        assert iou(m, clip.alphas[f] >= 0.5) >= 0.97


def test_single_key_lifetime_and_feather_attributes(tmp_path):
    clip, ss = make_shapeset("soft", 240, 160, 5)
    s = ss.shapes[0]
    s.keys = {1003: s.keys[1003]}
    s.first = s.last = 1003
    interp = tcl()
    out = write_nuke(ss, tmp_path / "soft.nk")
    script = nkparser.Script.from_file(str(out))
    curves = {n.name: n for n in script.all_nodes()}["hero"].get("curves")
    assert "{px x447ac000 {" in curves  # one key: {px FRAME {x y} ...}
    (d,) = decode_curves(curves, interp).values()
    a = d["attrs"]
    assert num(a["ltt"]) == 4 and num(a["ltn"]) == 1003 and num(a["ltm"]) == 1003
    assert num(a["fx"]) == pytest.approx(s.feather, abs=1e-3) and num(a["fy"]) == num(a["fx"])
    # the written shape is the core: the engine's 0.5 line moved in by half the feather
    core = fill_polygons([polygon(d["vals"][0], 160)], (160, 240)).sum()
    assert core < (clip.alphas[1003] >= 0.5).sum()
    back = read_nk(out).shapes[0].to_shape(160, 1001, 1005)
    from engine.shapes.raster import rasterize_frame

    assert iou(rasterize_frame([back], 1003, (160, 240)), clip.alphas[1003] >= 0.5) >= 0.97


@pytest.mark.parametrize("layout", ["object", "shape", "single"])
def test_layouts_and_round_trip_through_the_importer(ring, tmp_path, layout):
    clip, ss = ring
    out = write_nuke(ss, tmp_path / f"{layout}.nk", layout=layout)
    script = nkparser.Script.from_file(str(out))
    assert not script.has_errors
    rotos = [n for n in script.all_nodes() if n.class_name == "Roto"]
    assert len(rotos) == 2  # shapes and holes
    back = read_nk(out)
    assert len(back.shapes) == 2 and back.shapes[0].frames == clip.frames
    assert np.allclose(back.shapes[-1].points[0, :, 0], ss.shapes[0].keys[1001].points[:, 0], atol=1e-3) or \
        np.allclose(back.shapes[0].points[0, :, 0], ss.shapes[0].keys[1001].points[:, 0], atol=1e-3)


def test_host_entry_point_names_files_and_quotes_paths(ring, tmp_path):
    import copy

    clip, ss = ring
    ss = copy.deepcopy(ss)
    ss.plate = "/plates/my shot [v2]/plate.%04d.exr"
    res = write_host_script(ss, "nuke", tmp_path)
    assert res.path.suffix == ".nk" and res.path.parent == tmp_path
    text = res.path.read_text()
    assert 'file "/plates/my shot \\[v2\\]/plate.####.exr"' in text
    script = nkparser.Script.from_file(str(res.path))
    assert not script.has_errors
    from engine.errors import InputError

    with pytest.raises(InputError):
        write_host_script(ss, "houdini", tmp_path / "x")
    with pytest.raises(InputError):
        write_nuke(ss, tmp_path / "x.nk", layout="layers")
