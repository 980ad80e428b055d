"""The After Effects writer: the .jsx is checked by node (syntax), then run in node against a small
stand-in of AE's scripting objects; the mask paths it creates are rasterised and compared."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess

import numpy as np
import pytest

from engine.export.hostfiles.ae import write_ae
from engine.shapes.metrics import iou
from engine.shapes.raster import fill_polygons
from engine.shapes.synthetic import make_shapeset

W, H = 240, 160
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node (Node.js) checks the .jsx: apt-get install nodejs")

# A stand-in for the parts of AE's DOM the script uses; records what the script does.
HARNESS = r"""
const fs = require('fs'); const vm = require('vm');
const code = fs.readFileSync(process.argv[2], 'utf8');
const cfg = JSON.parse(process.argv[3]);
function Prop(){ this.keys = []; this.value = null; this.interp = []; }
Prop.prototype.setValue = function(v){ this.value = v; };
Prop.prototype.setValuesAtTimes = function(t, v){ for (let i = 0; i < t.length; i++) this.keys.push([t[i], v[i]]); };
Prop.prototype.setValueAtTime = function(t, v){ this.keys.push([t, v]); };
Object.defineProperty(Prop.prototype, 'numKeys', {get(){ return this.keys.length; }});
Prop.prototype.setInterpolationTypeAtKey = function(k, a, b){ this.interp.push([k, a, b]); };
function Mask(){
  this.p = {'ADBE Mask Shape': new Prop(), 'ADBE Mask Feather': new Prop(), 'ADBE Mask Opacity': new Prop()};
}
Mask.prototype.property = function(n){ if (!(n in this.p)) throw new Error('no property ' + n); return this.p[n]; };
const masks = [];
const layer = {width: cfg.lw, height: cfg.lh, startTime: cfg.start, source: {frameRate: cfg.rate},
  property(n){ if (n !== 'ADBE Mask Parade') throw new Error('no property ' + n);
    return {addProperty(m){
      if (m !== 'ADBE Mask Atom') throw new Error(m);
      const k = new Mask(); masks.push(k); return k; }}; }};
class CompItem {}
const comp = new CompItem(); comp.width = cfg.lw; comp.height = cfg.lh; comp.frameRate = cfg.comp_rate;
comp.selectedLayers = cfg.select ? [layer] : [];
const undo = [];
const alerts = [];
const imported = [];
function File(p){ this.fsName = p; this.exists = cfg.files ? cfg.files.includes(p) : false; }
function ImportOptions(f){ this.file = f; this.sequence = false; }
const project = {activeItem: cfg.no_comp ? null : comp,
  importFile(io){ const item = {name: 'plate', mainSource: {}, io};
    imported.push({file: io.file.fsName, sequence: io.sequence, item}); return item; },
  items: {addComp(name, w, h, par, dur, rate){
    const c = new CompItem(); Object.assign(c, {name, width: w, height: h, duration: dur, frameRate: rate});
    c.layers = {add(item){ layer.source = {frameRate: item.mainSource.conformFrameRate}; layer.containingComp = c;
      layer.startTime = 0; return layer; }};
    c.openInViewer = function(){}; imported.push({comp: [w, h, dur, rate]}); return c; }}};
Object.assign(globalThis, {CompItem, File, ImportOptions,
  app: {project, beginUndoGroup(n){ undo.push(n); }, endUndoGroup(){ undo.push('end'); }},
  Shape: function(){}, MaskMode: {ADD: 'add', SUBTRACT: 'subtract'}, KeyframeInterpolationType: {HOLD: 'hold'},
  alert(m){ alerts.push(m); }});
vm.runInThisContext(code);
const sh = (s) => ({v: s.vertices, i: s.inTangents, o: s.outTangents, c: s.closed});
console.log(JSON.stringify({undo, alerts, layer_start: layer.startTime,
  imported: imported.map(x => x.item ? {file: x.file, sequence: x.sequence, rate: x.item.mainSource.conformFrameRate} : x),
  masks: masks.map(m => ({name: m.name, mode: m.maskMode,
  keys: m.p['ADBE Mask Shape'].keys.map(k => [k[0], sh(k[1])]),
  value: m.p['ADBE Mask Shape'].value ? sh(m.p['ADBE Mask Shape'].value) : null,
  feather: m.p['ADBE Mask Feather'].value, opacity: m.p['ADBE Mask Opacity'].keys,
  interp: m.p['ADBE Mask Opacity'].interp}))}));
"""


def run_jsx(path, tmp_path, **cfg):
    base = {"lw": W, "lh": H, "start": 0.0, "rate": 24.0, "comp_rate": 24.0, "select": True}
    base.update(cfg)
    harness = tmp_path / "harness.js"
    harness.write_text(HARNESS)
    out = subprocess.run([NODE, str(harness), str(path), json.dumps(base)], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return json.loads(out)


def polygon(shape, scale=(1.0, 1.0)):
    p = np.asarray(shape["v"], float) / scale
    left = np.asarray(shape["i"], float) / scale
    right = np.asarray(shape["o"], float) / scale
    t = np.linspace(0, 1, 40, endpoint=False)[:, None]
    out = []
    for i in range(len(p)):
        j = (i + 1) % len(p)
        c = [p[i], p[i] + right[i], p[j] + left[j], p[j]]
        out.append((1 - t) ** 3 * c[0] + 3 * (1 - t) ** 2 * t * c[1] + 3 * (1 - t) * t ** 2 * c[2] + t ** 3 * c[3])
    return np.vstack(out)


@pytest.fixture(scope="module")
def ring():
    return make_shapeset("ring", W, H, 6)


def test_jsx_is_valid_javascript(ring, tmp_path):
    _, ss = ring
    out = write_ae(ss, tmp_path / "shot.jsx")
    subprocess.run([NODE, "--check", "-"], input=out.read_text(), text=True, check=True, timeout=60)
    text = out.read_text()
    assert text.startswith("//@target aftereffects") and "let " not in text and "=>" not in text  # ES3


def test_jsx_builds_masks_that_match_the_matte(ring, tmp_path):
    clip, ss = ring
    ss = copy.deepcopy(ss)
    ss.shapes[1].first = 1003
    out = write_ae(ss, tmp_path / "shot.jsx")
    res = run_jsx(out, tmp_path, start=10.0, rate=24.0)
    assert res["undo"] == ["Ultimate Rotoscopy masks", "end"] and not res["alerts"]
    outer, hole = res["masks"]
    assert (outer["name"], outer["mode"], hole["mode"]) == ("hero", "add", "subtract")
    times = [k[0] for k in outer["keys"]]
    assert times == pytest.approx([10.0 + (f - 1001) / 24.0 for f in clip.frames])  # plate frames on the layer
    for (t, shape), f in zip(outer["keys"], clip.frames):
        assert shape["c"] is True
        m = fill_polygons([polygon(shape)], (H, W))
        hk = [s for tt, s in hole["keys"] if abs(tt - t) < 1e-6]
        if f >= 1003:
            m &= ~fill_polygons([polygon(hk[0])], (H, W))
            assert iou(m, clip.alphas[f] >= 0.5) >= 0.97
    # the hole lives from 1003: opacity held at 0 before, 100 from then
    assert hole["opacity"] == [[pytest.approx(10 + 1 / 24), 0], [pytest.approx(10 + 2 / 24), 100]]
    assert {x[1] for x in hole["interp"]} == {"hold"}
    assert outer["opacity"] == []


def test_jsx_scales_to_the_layer_and_follows_the_footage_rate(ring, tmp_path):
    clip, ss = ring
    out = write_ae(ss, tmp_path / "shot.jsx")
    res = run_jsx(out, tmp_path, lw=2 * W, lh=2 * H, rate=12.0, comp_rate=30.0)
    outer = res["masks"][0]
    assert outer["keys"][1][0] == pytest.approx(1 / 12.0)
    m = fill_polygons([polygon(outer["keys"][0][1], scale=(2.0, 2.0))], (H, W))
    from scipy.ndimage import binary_fill_holes

    assert iou(m, binary_fill_holes(clip.alphas[1001] >= 0.5)) >= 0.97
    none = run_jsx(out, tmp_path, select=False)
    assert none["masks"] == [] and "select" in none["alerts"][0]


def test_single_key_and_feather(tmp_path):
    clip, ss = make_shapeset("soft", W, H, 3)
    s = ss.shapes[0]
    s.keys = {1002: s.keys[1002]}
    out = write_ae(ss, tmp_path / "soft.jsx")
    res = run_jsx(out, tmp_path)
    (m,) = res["masks"]
    assert m["keys"] == [] and m["value"] is not None
    assert m["feather"] == pytest.approx([s.feather, s.feather], abs=1e-3)


def test_with_no_comp_open_the_plate_sequence_is_imported_from_its_first_file(ring, tmp_path):
    """AE: the plate is imported from the sequence's first file with sequence import on, into a comp
    whose time 0 is the range's first frame; the keys land on the plate's frames."""
    from PIL import Image

    clip, ss = ring
    ss = copy.deepcopy(ss)
    (tmp_path / "p").mkdir()
    for f in range(999, 1008):  # the sequence on disk starts before the shapes' range (1001-1006)
        Image.new("RGB", (W, H)).save(tmp_path / "p" / f"plate.{f:04d}.png")
    ss.plate = f"{tmp_path}/p/plate.%04d.png"
    out = write_ae(ss, tmp_path / "shot.jsx")
    first_file = f"{tmp_path}/p/plate.0999.png"
    res = run_jsx(out, tmp_path, no_comp=True, files=[first_file], rate=None)
    assert not res["alerts"]
    assert res["imported"][0] == {"file": first_file, "sequence": True, "rate": 24}
    assert res["imported"][1] == {"comp": [W, H, 6 / 24, 24]}
    assert res["layer_start"] == pytest.approx(-2 / 24)  # footage frame 999 two frames before comp time 0
    times = [k[0] for k in res["masks"][0]["keys"]]
    assert times == pytest.approx([(f - 1001) / 24.0 for f in clip.frames])
    missing = run_jsx(out, tmp_path, no_comp=True, files=[])
    assert missing["masks"] == [] and first_file in missing["alerts"][0]
