"""Colour: config choice, names, inference, exact conversions (engine/media/colour.py)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from engine.errors import ColourError
from engine.media import colour
from engine.media.colour import (
    CINEON_LOG,
    LINEAR_REC709,
    WORKING_SPACE,
    ColourTransform,
    canonical_colourspace,
    from_working,
    get_config,
    infer_colourspace,
    to_working,
)


@pytest.fixture(autouse=True)
def _default_settings(monkeypatch, tmp_path):
    """No user config file, no $OCIO: the built-in studio config unless a test says otherwise."""
    monkeypatch.setenv("ROTO_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.delenv("OCIO", raising=False)


def _scene_linear_values() -> np.ndarray:
    """(N, 3) scene-linear RGB: 0..16, tiny and small negative values, coloured triplets."""
    grey = np.concatenate([np.linspace(0.0, 1.0, 101), np.geomspace(1e-4, 16.0, 60), -np.geomspace(1e-4, 0.05, 20)])
    rgb = np.stack([grey, grey[::-1], np.roll(grey, 37)], axis=1)
    return rgb.astype(np.float32)


def _rel_err(a: np.ndarray, b: np.ndarray, *, per_pixel: bool = False) -> float:
    """Max relative error, per channel (or relative to each pixel's largest channel: after a
    matrix, a channel's float32 error scales with the whole pixel, not with that channel)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    scale = np.abs(b64).max(axis=-1, keepdims=True) if per_pixel else np.abs(b64)
    return float(np.max(np.abs(a64 - b64) / np.maximum(scale, 1e-3)))


def _write_config(path, *, clamp_srgb: bool = False, lin_to_ref: bool = False,
                  name: str = "roto-test-config") -> str:
    """A tiny studio-style config file: 'linear' is the reference (or, with ``lin_to_ref``, defined
    by a to-reference matrix), 'sRGB' optionally clipped to 0..1."""
    import PyOpenColorIO as ocio

    cfg = ocio.Config.CreateRaw()
    cfg.setName(name)
    linear = ocio.ColorSpace(name="linear", encoding="scene-linear")
    if lin_to_ref:
        linear.setTransform(ocio.MatrixTransform(matrix=[2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1]),
                            ocio.COLORSPACE_DIR_TO_REFERENCE)
    cfg.addColorSpace(linear)
    group = ocio.GroupTransform()
    if clamp_srgb:
        group.appendTransform(ocio.RangeTransform(minInValue=0.0, maxInValue=1.0, minOutValue=0.0, maxOutValue=1.0))
    group.appendTransform(colour.srgb_curve())
    srgb = ocio.ColorSpace(name="sRGB", encoding="sdr-video")
    if lin_to_ref:
        group.prependTransform(ocio.MatrixTransform(matrix=[0.5, 0, 0, 0, 0, 0.5, 0, 0, 0, 0, 0.5, 0, 0, 0, 0, 1]))
    srgb.setTransform(group, ocio.COLORSPACE_DIR_FROM_REFERENCE)
    cfg.addColorSpace(srgb)
    cfg.setRole("scene_linear", "linear")
    path.write_text(cfg.serialize())
    return str(path)


# --- config ------------------------------------------------------------------------------------


def test_default_config_is_the_builtin_studio_config():
    cfg = get_config()
    assert cfg.getName().startswith("studio-config")
    assert cfg is get_config("ocio://studio-config-latest")  # cached, same instance
    assert cfg.getColorSpace(WORKING_SPACE) is not None
    assert CINEON_LOG in colour.engine_added_colourspaces()


def test_ocio_environment_variable_is_honoured(monkeypatch, tmp_path):
    path = _write_config(tmp_path / "show.ocio", name="show-config")
    monkeypatch.setenv("OCIO", path)
    assert get_config().getName() == "show-config"
    assert canonical_colourspace("linear") == "linear"  # the show config's own name wins
    monkeypatch.delenv("OCIO")
    assert get_config().getName().startswith("studio-config")


def test_settings_file_selects_the_config(monkeypatch, tmp_path):
    path = _write_config(tmp_path / "file.ocio", name="file-config")
    toml = tmp_path / "roto.toml"
    toml.write_text(f'[colour]\nocio = "{path}"\n')
    monkeypatch.setenv("ROTO_CONFIG", str(toml))
    assert get_config().getName() == "file-config"


def test_bad_config_path_raises_colour_error(tmp_path):
    missing = tmp_path / "nope" / "config.ocio"
    with pytest.raises(ColourError) as err:
        get_config(str(missing))
    assert str(missing) in str(err.value)
    assert err.value.hint
    with pytest.raises(ColourError, match="folder"):
        get_config(str(tmp_path))
    broken = tmp_path / "broken.ocio"
    broken.write_text("this is: [not an ocio config\n")
    with pytest.raises(ColourError, match="cannot be read"):
        get_config(str(broken))


def test_bad_builtin_uri_and_bad_env_name_the_culprit(monkeypatch):
    with pytest.raises(ColourError, match="ocio://no-such-config"):
        get_config("ocio://no-such-config")
    monkeypatch.setenv("OCIO", "/definitely/missing/config.ocio")
    with pytest.raises(ColourError) as err:
        ColourTransform("linear", WORKING_SPACE)
    assert "/definitely/missing/config.ocio" in str(err.value)
    assert "$OCIO" in err.value.hint


def test_cg_config_also_gets_the_engine_spaces():
    assert canonical_colourspace("log", "ocio://cg-config-latest") == CINEON_LOG
    assert canonical_colourspace("working", "ocio://cg-config-latest") == WORKING_SPACE


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("scene_linear", "ACEScg"),
    ("SCENE-LINEAR", "ACEScg"),
    ("ACEScg", "ACEScg"),
    ("acescg", "ACEScg"),
    ("lin_ap1", "ACEScg"),
    ("ACES", "ACES2065-1"),
    ("srgb_tx", WORKING_SPACE),
    ("sRGB", WORKING_SPACE),
    ("sRGB - Texture", WORKING_SPACE),
    ("srgb_rec709_scene", WORKING_SPACE),  # what OpenImageIO writes
    ("working", WORKING_SPACE),
    ("lin_rec709", LINEAR_REC709),
    ("linear", LINEAR_REC709),
    ("Linear Rec.709 (sRGB)", LINEAR_REC709),
    ("linear rec 709", LINEAR_REC709),
    ("rec709", "Gamma 2.4 Encoded Rec.709"),
    ("Rec.709", "Gamma 2.4 Encoded Rec.709"),
    ("log", CINEON_LOG),
    ("cineon", CINEON_LOG),
    ("KodakLog", CINEON_LOG),  # what OpenImageIO writes for log DPX
    ("raw", "Raw"),
    ("data", "Raw"),
    ("compositing_log", "ACEScct"),
    ("logc4", "ARRI LogC4"),
])
def test_names_aliases_roles_and_shorthands(name, expected):
    assert canonical_colourspace(name) == expected


def test_unknown_name_lists_the_closest_names():
    with pytest.raises(ColourError) as err:
        canonical_colourspace("ACEScgg")
    text = str(err.value)
    assert "'ACEScgg'" in text
    assert "ACEScg" in err.value.hint
    assert "roto colourspaces" in err.value.hint
    with pytest.raises(ColourError):
        canonical_colourspace("")


# --- conversions -------------------------------------------------------------------------------


def test_srgb_working_value_of_mid_grey():
    px = np.array([[[0.18, 0.18, 0.18], [1.0, 0.0, 0.0031308]]], np.float32)
    w = to_working(px, "linear")
    assert w[0, 0] == pytest.approx([0.4613561] * 3, abs=2e-6)
    assert w[0, 1] == pytest.approx([1.0, 0.0, 0.04045], abs=2e-5)


def test_linear_round_trip_is_exact_and_unclipped():
    x = _scene_linear_values()
    w = to_working(x, LINEAR_REC709)
    assert w.max() > 3.0 and w.min() < 0.0  # 16.0 → ~3.29, negatives stay negative: nothing clipped
    back = from_working(w, LINEAR_REC709)
    assert _rel_err(back, x) < 1e-4


def test_acescg_round_trip():
    x = _scene_linear_values()
    t = ColourTransform("ACEScg", WORKING_SPACE)
    back = t.inverse().apply(t.apply(x))
    assert _rel_err(back, x, per_pixel=True) < 1e-4
    grey = np.repeat(x[:, :1], 3, axis=1)  # neutral values: per channel
    assert _rel_err(t.inverse().apply(t.apply(grey)), grey) < 1e-4
    assert t.inverse().inverse() is t


def test_cineon_log_codes_and_round_trip():
    codes = (np.arange(0, 1024, dtype=np.float32) / 1023.0)
    px = np.repeat(codes[:, None], 3, axis=1).reshape(32, 32, 3)
    to_lin = ColourTransform("cineon", "linear")
    lin = to_lin.apply(px)
    assert lin[95 // 32, 95 % 32, 0] == pytest.approx(0.0, abs=1e-6)
    assert lin[685 // 32, 685 % 32, 0] == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(lin[..., 0].ravel(), colour.cineon_to_linear(codes), rtol=1e-5, atol=1e-6)
    assert lin.max() > 13.0  # code 1023: no soft clip of the highlights
    np.testing.assert_allclose(to_lin.inverse().apply(lin), px, atol=2e-6)
    # and through the models' working space
    w = to_working(px, "Cineon Log")
    np.testing.assert_allclose(from_working(w, "Cineon Log"), px, atol=2e-6)


def test_data_space_is_identity():
    t = ColourTransform("raw", WORKING_SPACE)
    assert t.is_identity
    x = np.random.default_rng(0).normal(size=(4, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(t.apply(x), x)


def test_alpha_untouched_and_input_not_mutated():
    rng = np.random.default_rng(1)
    x = (rng.random((6, 7, 4)) * 4.0 - 0.5).astype(np.float32)
    x.flags.writeable = False  # clip frames come out of the cache read-only
    keep = x.copy()
    out = ColourTransform("ACEScg", WORKING_SPACE).apply(x)
    np.testing.assert_array_equal(x, keep)
    np.testing.assert_array_equal(out[..., 3], keep[..., 3])
    assert out.dtype == np.float32 and out.shape == x.shape and out.flags.writeable
    assert not np.allclose(out[..., :3], keep[..., :3])
    rgb_only = ColourTransform("ACEScg", WORKING_SPACE).apply(keep[..., :3])
    np.testing.assert_allclose(out[..., :3], rgb_only, rtol=1e-6)


def test_non_contiguous_and_float64_input():
    x = np.linspace(0, 2, 2 * 8 * 3).reshape(2, 8, 3)[:, ::2]  # float64, strided
    out = to_working(x, "linear")
    assert out.dtype == np.float32 and out.shape == (2, 4, 3)
    np.testing.assert_allclose(from_working(out, "linear"), x, rtol=1e-5, atol=1e-7)


def test_bad_shape_is_refused():
    with pytest.raises(ValueError):
        ColourTransform("linear", WORKING_SPACE).apply(np.zeros((4, 4, 2), np.float32))


def test_processors_are_cached():
    a = ColourTransform("ACEScg", "working")
    b = ColourTransform("lin_ap1", WORKING_SPACE)
    assert a._cpu is b._cpu


def test_clipping_config_gets_an_unclamped_working_space(tmp_path):
    path = _write_config(tmp_path / "clamps.ocio", clamp_srgb=True)
    working = canonical_colourspace(WORKING_SPACE, path)
    assert working != "sRGB" and working in colour.engine_added_colourspaces(path)
    x = _scene_linear_values()
    back = from_working(to_working(x, "linear", path), "linear", path)
    assert _rel_err(back, x) < 1e-4
    # a config whose own sRGB inverts is used as is
    ok = _write_config(tmp_path / "fine.ocio")
    assert canonical_colourspace(WORKING_SPACE, ok) == "sRGB"
    assert colour.engine_added_colourspaces(ok) == (CINEON_LOG,)


def test_cineon_on_a_linear_space_defined_towards_the_reference(tmp_path):
    path = _write_config(tmp_path / "to_ref.ocio", lin_to_ref=True, clamp_srgb=True)
    lin = ColourTransform("cineon", "linear", path).apply(np.array([[95 / 1023, 685 / 1023, 1.0]], np.float32))
    np.testing.assert_allclose(lin[0], colour.cineon_to_linear([95 / 1023, 685 / 1023, 1.0]), rtol=1e-5, atol=1e-6)
    x = _scene_linear_values()
    assert _rel_err(from_working(to_working(x, "linear", path), "linear", path), x) < 1e-4
    assert to_working(np.full((1, 3), 0.18, np.float32), "linear", path)[0, 0] == pytest.approx(0.4613561, abs=2e-6)


def test_transform_pickles():
    import pickle

    t = ColourTransform("ACEScg", WORKING_SPACE)
    u = pickle.loads(pickle.dumps(t))
    x = _scene_linear_values()
    np.testing.assert_array_equal(u.apply(x), t.apply(x))
    assert (u.src, u.dst) == (t.src, t.dst)


# --- inference ---------------------------------------------------------------------------------

AP0 = (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767)
AP1 = ((0.713, 0.293), (0.165, 0.830), (0.128, 0.044), (0.32168, 0.33767))


@pytest.mark.parametrize(("fmt", "meta", "ptype", "expected"), [
    ("exr", {}, "half", (LINEAR_REC709, "format")),
    ("exr", {"oiio:ColorSpace": "ACEScg"}, "half", ("ACEScg", "file")),
    ("exr", {"colourspace": "lin_ap0"}, "float", ("ACES2065-1", "file")),
    ("exr", {"colorspace": "not-a-space"}, "half", (LINEAR_REC709, "format")),
    ("exr", {"chromaticities": AP0}, "half", ("ACES2065-1", "file")),
    ("exr", {"chromaticities": AP1}, "half", ("ACEScg", "file")),
    ("exr", {"chromaticities": {"red": (0.64, 0.33), "green": (0.3, 0.6), "blue": (0.15, 0.06),
                                "white": (0.3127, 0.329)}}, "half", (LINEAR_REC709, "file")),
    ("exr", {"acesImageContainerFlag": 1}, "half", ("ACES2065-1", "file")),
    ("dpx", {"dpx:transfer": 1}, "uint10", (CINEON_LOG, "file")),
    ("dpx", {"dpx:Transfer": "Printing density"}, "uint10", (CINEON_LOG, "file")),
    ("dpx", {"dpx:Transfer": "Logarithmic", "oiio:ColorSpace": "KodakLog"}, "uint10", (CINEON_LOG, "file")),
    ("dpx", {"dpx:transfer": 13}, "uint10", ("ADX10", "file")),
    ("dpx", {"dpx:Transfer": "ADX"}, "uint16", ("ADX16", "file")),
    ("dpx", {"dpx:transfer": 2}, "uint16", (LINEAR_REC709, "file")),
    ("dpx", {"dpx:transfer": 6, "oiio:ColorSpace": "srgb_rec709_scene"}, "uint10",
     ("Gamma 2.4 Encoded Rec.709", "file")),
    ("dpx", {"dpx:Transfer": "SMPTE 274M"}, "uint10", ("Gamma 2.4 Encoded Rec.709", "file")),
    ("dpx", {"dpx:transfer": 11}, "uint16", ("Raw", "file")),
    ("dpx", {"dpx:Transfer": "Undefined"}, "uint10", (CINEON_LOG, "format")),
    ("dpx", {}, "uint16", (CINEON_LOG, "format")),
    ("dpx", {}, "uint8", (WORKING_SPACE, "format")),
    ("cin", {}, "uint10", (CINEON_LOG, "format")),
    ("mov", {"color_trc": "bt709", "color_primaries": "bt709"}, "uint8", ("Gamma 2.4 Encoded Rec.709", "file")),
    ("mp4", {"color_trc": 1}, "uint8", ("Gamma 2.4 Encoded Rec.709", "file")),
    ("mp4", {"color_trc": "iec61966-2-1"}, "uint8", (WORKING_SPACE, "file")),
    ("mov", {"color_trc": "smpte2084", "color_primaries": "bt2020"}, "uint16", ("Rec.2100-PQ - Display", "file")),
    ("mov", {"color_trc": "arib-std-b67"}, "uint16", ("Rec.2100-HLG - Display", "file")),
    ("mp4", {"color_trc": "unknown"}, "uint8", (WORKING_SPACE, "format")),
    ("webm", {}, "uint8", (WORKING_SPACE, "format")),
    ("png", {}, "uint8", (WORKING_SPACE, "format")),
    ("jpg", {}, "uint8", (WORKING_SPACE, "format")),
    ("png", {"oiio:ColorSpace": "Gamma2.2"}, "uint16", ("Gamma 2.2 Encoded Rec.709", "file")),
    ("tif", {}, "uint16", (WORKING_SPACE, "format")),
    ("tiff", {}, "float", (LINEAR_REC709, "format")),
])
def test_inference_rules(fmt, meta, ptype, expected):
    assert infer_colourspace(fmt, meta, ptype) == expected


def test_inferred_names_are_canonical_and_convertible():
    name, _ = infer_colourspace("dpx", {"dpx:transfer": 1}, "uint10")
    px = np.full((2, 2, 3), 685 / 1023, np.float32)
    assert to_working(px, name) == pytest.approx(1.0, abs=1e-5)


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_lists_and_resolves(capsys):
    from engine.cli import cmd_colour

    parser = argparse.ArgumentParser()
    cmd_colour.register(parser.add_subparsers())
    args = parser.parse_args(["colourspaces"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "* sRGB Encoded Rec.709 (sRGB)" in out and "+ Cineon Log" in out
    args = parser.parse_args(["colorspaces", "--json", "rec709"])
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)["colourspace"] == "Gamma 2.4 Encoded Rec.709"
