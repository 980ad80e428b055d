"""The Fusion/Resolve writer, read back by Lua itself (lupa, or the lua5.4 interpreter), the points
rasterised and compared with the source matte."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from engine.export.hostfiles.fusion import fusion_to_pixels, write_fusion
from engine.shapes.metrics import iou
from engine.shapes.raster import fill_polygons
from engine.shapes.synthetic import make_shapeset

W, H = 240, 160

# Any capitalised global used as `Name { ... }` (PolylineMask, Input, Polyline, FuID…) tags its table with
# the tool class; `ordered()` returns a pass-through. Nothing else of Fusion is assumed.
LUA_ENV = """
local env = setmetatable({}, {__index = function(_, k)
  if k == "ordered" then return function() return function(t) return t end end end
  return function(t) if type(t) == "table" then t.__class = k end return t end
end})
"""

# Prints every polyline key: spline frame X Y LX LY RX RY (one point a line) and every tool's class.
LUA_DUMP = LUA_ENV + """
local f = assert(io.open(arg[1], "r")); local text = f:read("a"); f:close()
local chunk = assert(load("return " .. text, "setting", "t", env))
local t = chunk()
for name, tool in pairs(t.Tools) do
  print("tool", name, tool.__class)
  if tool.__class == "BezierSpline" then
    for frame, key in pairs(tool.KeyFrames) do
      if type(key.Value) == "table" and key.Value.Points then
        for i, p in ipairs(key.Value.Points) do
          print("pt", name, frame, i, p.X, p.Y, p.LX or 0, p.LY or 0, p.RX or 0, p.RY or 0)
        end
      else
        print("lv", name, frame, key[1])
      end
    end
  end
end
"""


def read_with_lupa(path):
    lupa = pytest.importorskip("lupa")
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.execute(LUA_ENV + "\n_G.__env = env")
    load = lua.eval("function(text) return assert(load('return ' .. text, 'setting', 't', __env))() end")
    t = load(open(path).read())
    tools, points, levels = {}, {}, {}
    for name, tool in t.Tools.items():
        tools[name] = tool["__class"]
        if tool["__class"] == "BezierSpline":
            for frame, key in tool.KeyFrames.items():
                if key.Value is not None:
                    points[(name, int(frame))] = [(p.X, p.Y, p.LX, p.LY, p.RX, p.RY) for p in key.Value.Points.values()]
                else:
                    levels[(name, int(frame))] = key[1]
    return tools, points, levels


def read_with_lua54(path, tmp_path):
    exe = shutil.which("lua5.4") or shutil.which("lua")
    if not exe:
        pytest.skip("no Lua interpreter (apt-get install lua5.4, or pip install lupa)")
    script = tmp_path / "dump.lua"
    script.write_text(LUA_DUMP)
    out = subprocess.run([exe, str(script), str(path)], capture_output=True, text=True, timeout=60, check=True).stdout
    tools, points, levels = {}, {}, {}
    for line in out.splitlines():
        parts = line.split("\t")
        if parts[0] == "tool":
            tools[parts[1]] = parts[2]
        elif parts[0] == "pt":
            points.setdefault((parts[1], int(parts[2])), []).append(tuple(float(v) for v in parts[4:10]))
        elif parts[0] == "lv":
            levels[(parts[1], int(parts[2]))] = float(parts[3])
    return tools, points, levels


def polygon(pts):
    arr = np.asarray(pts, np.float64)
    p = np.stack(fusion_to_pixels(arr[:, 0], arr[:, 1], W, H), axis=1)
    left = np.stack([arr[:, 2] * W, -arr[:, 3] * H], axis=1)
    right = np.stack([arr[:, 4] * W, -arr[:, 5] * H], axis=1)
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


@pytest.mark.parametrize("reader", ["lupa", "lua5.4"])
def test_setting_reads_back_in_lua_and_matches_the_matte(ring, tmp_path, reader):
    import copy

    clip, ss = ring
    ss = copy.deepcopy(ss)
    ss.shapes[1].first = 1003  # a hole appearing later: its Level steps from 0 to 1
    out = write_fusion(ss, tmp_path / "shot.setting", matte_pattern="/deliver/shot.####.exr")
    tools, points, levels = read_with_lupa(out) if reader == "lupa" else read_with_lua54(out, tmp_path)
    assert tools["hero_Mask"] == "PolylineMask" and tools["hero_MaskPolyline"] == "BezierSpline"
    assert tools["hero_hole1_Mask"] == "PolylineMask" and tools["hero_Matte"] == "Background"
    assert tools["hero_MatteEXR"] == "Loader"
    assert sorted(f for (n, f) in points if n == "hero_MaskPolyline") == clip.frames
    for f in clip.frames:
        m = fill_polygons([polygon(points[("hero_MaskPolyline", f)])], (H, W))
        if ("hero_hole1_MaskPolyline", f) in points and f >= 1003:
            m &= ~fill_polygons([polygon(points[("hero_hole1_MaskPolyline", f)])], (H, W))
        truth = clip.alphas[f] >= 0.5
        if f < 1003:  # the hole is not alive yet: the written matte is the filled outline
            from scipy.ndimage import binary_fill_holes

            truth = binary_fill_holes(truth)
        assert iou(m, truth) >= 0.97
    assert levels[("hero_hole1_MaskLevel", 1002)] == 0 and levels[("hero_hole1_MaskLevel", 1003)] == 1


def test_setting_text_details(ring, tmp_path):
    clip, ss = ring
    text = write_fusion(ss, tmp_path / "s.setting", matte_pattern="/d/shot.####.exr", time_offset=-1001).read_text()
    assert text.startswith("{") and "[0] = { 0, Flags = { Linear = true, LockedY = true }" in text
    assert 'Filename = "/d/shot.1001.exr"' in text and "GlobalStart = 0" in text
    assert '["Clip1.OpenEXRFormat.AlphaName"] = Input { Value = FuID { "hero.A" }, }' in text
    assert 'PaintMode = Input { Value = FuID { "Subtract" }, }' in text
    assert 'EffectMask = Input { SourceOp = "hero_Mask", Source = "Mask", }' in text
    luac = shutil.which("luac5.4") or shutil.which("luac")
    if luac:  # the file, as a Lua expression, compiles
        chunk = tmp_path / "chunk.lua"
        chunk.write_text("return " + text)
        subprocess.run([luac, "-p", str(chunk)], check=True, timeout=60)
