"""Every file of ``evaldata/openexr-images`` and ``evaldata/dpx-samples`` through the image
reader: readable files open with the right size, channels and pixels (checked against
OpenImageIO's own decode, the lossless ``*_piz`` references, OpenEXR's published checksums
and the DPX twin files); damaged and invalid files are refused with a sentence naming them.

The folders ship with the team's workspace (``../shared/evaldata``), not with the repository:
the tests skip with a reason where they are absent. Their ``SOURCE.md`` files describe each
sample.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

oiio = pytest.importorskip("OpenImageIO")
OpenEXR = pytest.importorskip("OpenEXR")

from engine.errors import CorruptMedia, MediaError, UnsupportedMedia  # noqa: E402
from engine.media.readers.image import probe_image, read_image  # noqa: E402
from tests.conftest import SHARED, evaldata_path  # noqa: E402

EXR = "openexr-images"
DPX = "dpx-samples"
RGB, RGBA, Y = ("R", "G", "B"), ("R", "G", "B", "A"), ("Y",)


def _walk(folder: str) -> list[str]:
    if SHARED is None:
        return []
    root = SHARED / "evaldata" / folder
    return sorted(p.relative_to(SHARED / "evaldata").as_posix() for p in root.rglob("*") if p.is_file())


ALL_FILES = _walk(EXR) + _walk(DPX) or ["(evaldata absent)"]

#: Readable samples: display size (width, height) and the default channels read_image returns.
READABLE: dict[str, tuple[int, int, tuple[str, ...]]] = {
    f"{EXR}/oiio-images/grid-overscan.exr": (1000, 1000, RGBA),
    f"{EXR}/openexr-images/Beachball/multipart.0007.exr": (2048, 1556, RGBA),
    f"{EXR}/openexr-images/Beachball/singlepart.0007.exr": (2048, 1556, RGBA),
    f"{EXR}/openexr-images/LuminanceChroma/Flowers.exr": (784, 734, RGB),
    f"{EXR}/openexr-images/LuminanceChroma/Garden.exr": (874, 493, RGB),
    f"{EXR}/openexr-images/MultiResolution/ColorCodedLevels.exr": (512, 512, RGBA),
    f"{EXR}/openexr-images/MultiView/Fog.exr": (1000, 672, RGB),
    f"{EXR}/openexr-images/ScanLines/CandleGlass.exr": (1000, 810, RGBA),
    f"{EXR}/openexr-images/ScanLines/Carrots.exr": (600, 400, RGBA),
    f"{EXR}/openexr-images/TestImages/AllHalfValues.exr": (256, 256, RGB),
    f"{EXR}/openexr-images/TestImages/BrightRingsNanInf.exr": (800, 800, RGB),
    f"{EXR}/openexr-images/TestImages/GrayRampsHorizontal.exr": (800, 800, RGB),
    f"{EXR}/openexr-images/TestImages/WideFloatRange.exr": (500, 500, RGB),
    f"{EXR}/openexr-images/TestImages/stripes.exr": (100, 50, RGBA),
    f"{EXR}/openexr/comp_b44.exr": (586, 674, RGB),
    f"{EXR}/openexr/comp_b44_piz.exr": (586, 674, RGB),
    f"{EXR}/openexr/comp_dwaa_piz.exr": (587, 675, RGBA),
    f"{EXR}/openexr/comp_dwaa_v1.exr": (587, 675, RGBA),
    f"{EXR}/openexr/comp_dwaa_v2.exr": (587, 675, RGBA),
    f"{EXR}/openexr/comp_dwab_piz.exr": (587, 675, RGBA),
    f"{EXR}/openexr/comp_dwab_v1.exr": (587, 675, RGBA),
    f"{EXR}/openexr/comp_dwab_v2.exr": (587, 675, RGBA),
    f"{EXR}/openexr/comp_rle.exr": (587, 675, RGBA),
    f"{EXR}/openexr/lineOrder_decreasing.exr": (237, 119, RGBA),
    f"{EXR}/openexr/manifest_id.exr": (100, 100, RGBA),
    f"{EXR}/openexr/v1.7.test.1.exr": (217, 197, RGB),
    f"{EXR}/openexr/v1.7.test.tiled.exr": (217, 197, RGB),
    f"{DPX}/oiio-images/dpx_nuke_10bits_rgb.dpx": (512, 512, RGB),
    f"{DPX}/oiio-images/dpx_nuke_16bits_rgba.dpx": (512, 512, RGBA),
    f"{DPX}/rawcooked/Conformance/0004_OffsetToImageData/0004_OffsetToImageData_000000.dpx": (8, 8, RGB),
    f"{DPX}/rawcooked/Conformance/0016_TotalImageFileSize/0016_TotalImageFileSize_000000.dpx": (8, 8, RGB),
    f"{DPX}/rawcooked/Features/PaddingBitsNotZero/RGBA_10_FilledA_LE/"
    "checkerboard_1080p_nuke_littleendian_10bit_alpha.dpx": (1920, 4, RGBA),
    f"{DPX}/rawcooked/Features/PaddingBitsNotZero/RGB_10_FilledA_LE/image090003.dpx": (1920, 4, RGB),
    f"{DPX}/rawcooked/Features/PaddingBitsNotZero/RGB_12_FilledA_BE/"
    "checkerboard_1080p_nuke_bigendian_12bit_noalpha.dpx": (1920, 4, RGB),
    f"{DPX}/rawcooked/Features/PaddingBitsNotZero/RGB_12_FilledA_LE/"
    "checkerboard_1080p_nuke_littleendian_12bit_noalpha.dpx": (1920, 4, RGB),
    f"{DPX}/rawcooked/Features/Version/V1.0i/V1.0i.dpx": (16, 16, RGB),
    f"{DPX}/rawcooked/Flavors/RGB_12_Packed_BE/086449_modified_08x4.dpx": (8, 4, RGB),
    f"{DPX}/rawcooked/Flavors/RGB_12_Packed_BE/086449_modified_08x4_orientation0.dpx": (8, 4, RGB),
    f"{DPX}/rawcooked/Flavors/RGB_16_Packed_BE/16bit.dpx": (600, 402, RGB),
    f"{DPX}/rawcooked/Flavors/RGB_8_Packed_BE/8bit.dpx": (600, 402, RGB),
    f"{DPX}/rawcooked/Flavors/Y_10_FilledA_BE/Y_10_FilledA_BE_Modified_8x4.dpx": (8, 4, Y),
    f"{DPX}/rawcooked/Flavors/Y_10_FilledB_BE/Y_10_FilledB_BE_Modified_8x4.dpx": (8, 4, Y),
    f"{DPX}/rawcooked/Flavors/Y_16_Packed_BE/FFmpeg_gray16be.dpx": (80, 60, Y),
    f"{DPX}/rawcooked/Flavors/Y_16_Packed_LE/FFmpeg_gray16le.dpx": (80, 60, Y),
    f"{DPX}/rawcooked/Flavors/Y_8_Packed_LE/FFmpeg_gray.dpx": (80, 60, Y),
}
for _t, _size in {"01": (400, 300), "02": (400, 300), "03": (370, 280), "04": (370, 280), "05": (340, 260),
                  "06": (402, 302), "07": (481, 371), "08": (501, 401), "09": (200, 300), "10": (100, 300),
                  "11": (400, 200), "12": (400, 100), "13": (101, 101), "14": (101, 101), "15": (481, 371),
                  "16": (481, 371)}.items():
    READABLE[f"{EXR}/openexr-images/DisplayWindow/t{_t}.exr"] = (*_size, RGB)

#: Files that must be refused (besides everything in Damaged/ and the text files).
REFUSED: dict[str, type[MediaError]] = {
    f"{EXR}/openexr/11.deep.exr": UnsupportedMedia,  # deep scanline
    f"{EXR}/openexr/comp_bad_pos_bounds_piz.exr": CorruptMedia,
    f"{EXR}/openexr/comp_early_eof_piz.exr": CorruptMedia,
    f"{EXR}/openexr/invalid_shared_attrs_multipart.exr": CorruptMedia,
    f"{EXR}/openexr/unfinished_multipart.exr": CorruptMedia,
    # SOURCE.md lists it as a "tiny tiled 20x20 ZIP" image, but the file is cut short: its header
    # declares a 60x57 image in nine 20x20 tiles whose chunk offsets reach byte 2314 of a 480-byte
    # file. OpenEXR and OpenImageIO fail on it too.
    f"{EXR}/openexr/tiled.exr": CorruptMedia,
}


def _is_text(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return name.endswith((".md", ".rst")) or name.startswith("LICENSE")


def _path(rel: str) -> Path:
    if rel == "(evaldata absent)":
        evaldata_path("openexr-images")  # skips with the reason
    return evaldata_path(*rel.split("/"))


# --------------------------------------------------------------------------------------------
# references
# --------------------------------------------------------------------------------------------


def _oiio_display(path: Path) -> tuple[np.ndarray, tuple[str, ...]] | None:
    """OpenImageIO's decode of the first subimage, placed in its display window (None if it
    cannot read the file)."""
    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        oiio.geterror()
        return None
    try:
        s = inp.spec()
        data = inp.read_image(0, 0, 0, s.nchannels, "float")
        if data is None:
            inp.geterror()
            return None
        out = np.zeros((s.full_height, s.full_width, s.nchannels), np.float32)
        x0, y0 = s.x - s.full_x, s.y - s.full_y
        ys = slice(max(0, y0), min(s.full_height, y0 + s.height))
        xs = slice(max(0, x0), min(s.full_width, x0 + s.width))
        if ys.stop > ys.start and xs.stop > xs.start:
            out[ys, xs] = data[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
        return out, tuple(s.channelnames)
    finally:
        inp.close()


def _oiio_codes(path: Path, bits: int) -> np.ndarray | None:
    """OpenImageIO's integer codes for a DPX (it widens n-bit codes to 16 bits)."""
    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        oiio.geterror()
        return None
    try:
        if bits == 8:
            return inp.read_image("uint8").astype(np.int64)
        return inp.read_image("uint16").astype(np.int64) >> (16 - bits)
    finally:
        inp.close()


def _codes(px: np.ndarray, bits: int) -> np.ndarray:
    return np.round(px.astype(np.float64) * ((1 << bits) - 1)).astype(np.int64)


def _compare_exr_with_oiio(path: Path, px: np.ndarray, names: tuple[str, ...]) -> None:
    ref = _oiio_display(path)
    if ref is None:  # OpenImageIO refuses subsampled (Y/RY/BY) files: checked separately below
        assert "LuminanceChroma/Flowers" in str(path) or "comp_b44.exr" in str(path)
        return
    img, ref_names = ref
    assert img.shape[:2] == px.shape[:2]
    for k, name in enumerate(names):
        if name in ref_names:
            expected = img[:, :, ref_names.index(name)]
        elif "Y" in ref_names and name in RGB:
            expected = img[:, :, ref_names.index("Y")]  # luminance-only file read as grey RGB
        else:
            expected = np.zeros(px.shape[:2], np.float32)  # colour channel the file lacks
        np.testing.assert_array_equal(px[:, :, k], expected, err_msg=f"{path.name} channel {name}")


def _compare_dpx_with_oiio(path: Path, px: np.ndarray) -> None:
    hdr = probe_image(path)
    bits = hdr.attributes["dpx:bit_depth"]
    ref = _oiio_codes(path, bits)
    if ref is None:  # OpenImageIO cannot read the zero-offset / zero-size conformance files
        assert "Conformance" in str(path)
        return
    mine = _codes(px, bits)
    if hdr.attributes["dpx:orientation"] == 2:
        ref = ref[::-1]  # OpenImageIO reports the orientation but does not apply it
    if mine.shape[2] == 1 and bits == 10:
        # single-channel 10-bit: OpenImageIO reads the last, partly filled word of each line
        # differently; the full words (3 samples each) must agree
        full = (mine.shape[1] // 3) * 3
        mine, ref = mine[:, :full], ref[:, :full]
    np.testing.assert_array_equal(mine, ref, err_msg=path.name)


# --------------------------------------------------------------------------------------------
# the walk
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", ALL_FILES)
def test_every_sample(rel):
    path = _path(rel)
    if _is_text(rel):
        with pytest.raises(UnsupportedMedia) as err:
            read_image(path)
        assert str(path) in str(err.value)
        return
    if "/Damaged/" in rel or rel in REFUSED:
        expected = REFUSED.get(rel, (CorruptMedia, UnsupportedMedia))
        try:
            probe_image(path)
        except MediaError as exc:
            assert isinstance(exc, expected) and str(path) in str(exc)
        with pytest.raises(expected) as err:
            read_image(path)
        assert str(path) in str(err.value) and err.value.path == str(path)
        return
    assert rel in READABLE, f"{rel} is not classified in this test (new sample?)"
    width, height, channels = READABLE[rel]
    hdr = probe_image(path)
    assert (hdr.width, hdr.height) == (width, height)
    px, names = read_image(path)
    assert px.dtype == np.float32 and px.shape == (height, width, len(channels))
    assert names == channels
    if hdr.format == "exr":
        _compare_exr_with_oiio(path, px, names)
    else:
        assert hdr.format == "dpx"
        _compare_dpx_with_oiio(path, px)
        assert np.nanmin(px) >= 0.0 and np.nanmax(px) <= 1.0


# --------------------------------------------------------------------------------------------
# EXR specifics
# --------------------------------------------------------------------------------------------


def _exr(rel: str) -> Path:
    return evaldata_path(EXR, *rel.split("/"))


@pytest.mark.parametrize("name, checksum", [("comp_rle.exr", 24988), ("lineOrder_decreasing.exr", 46515)])
def test_openexr_published_checksums(name, checksum):
    """OpenEXR's test suite: XOR of the HALF bit patterns of all R,G,B,A samples."""
    px, names = read_image(_exr(f"openexr/{name}"))
    assert names == RGBA
    bits = px.astype(np.float16).view(np.uint16)
    assert int(np.bitwise_xor.reduce(bits.ravel())) == checksum


@pytest.mark.parametrize("lossy, reference", [
    ("comp_dwaa_v1.exr", "comp_dwaa_piz.exr"), ("comp_dwaa_v2.exr", "comp_dwaa_piz.exr"),
    ("comp_dwab_v1.exr", "comp_dwab_piz.exr"), ("comp_dwab_v2.exr", "comp_dwab_piz.exr"),
])
def test_dwa_matches_its_lossless_reference(lossy, reference):
    a, _ = read_image(_exr(f"openexr/{lossy}"))
    b, _ = read_image(_exr(f"openexr/{reference}"))
    ratio = (a + 0.01) / (b + 0.01)
    assert ratio.min() >= 0.9 and ratio.max() <= 1.1  # OpenEXR's own acceptance rule


def test_b44_luminance_chroma_matches_its_reference():
    """Y/RY/BY with 2x2 chroma, converted to RGB, against the lossless RGB decode."""
    path = _exr("openexr/comp_b44.exr")
    hdr = probe_image(path)
    assert set(hdr.channels) == {"Y", "RY", "BY"}
    assert hdr.attributes["exr:subsampled"] == {"RY": [2, 2], "BY": [2, 2]}
    a, names = read_image(path)
    b, _ = read_image(_exr("openexr/comp_b44_piz.exr"))
    assert names == RGB
    ratio = (a + 0.01) / (b + 0.01)
    outside = (ratio < 0.9) | (ratio > 1.1)
    # a handful of very saturated edge samples differ by more: the chroma filter is ours
    assert outside.mean() < 1e-5 and ratio.min() > 0.5 and ratio.max() < 1.5
    assert np.abs(a - b).mean() < 0.005


def test_flowers_luminance_is_preserved_by_the_rgb_conversion():
    path = _exr("openexr-images/LuminanceChroma/Flowers.exr")
    px, names = read_image(path)
    assert names == RGB and np.isfinite(px).all()
    raw = OpenEXR.File(str(path), separate_channels=True).parts[0].channels["Y"].pixels.astype(np.float64)
    yw = np.array([0.2126729, 0.7151522, 0.0721750])  # Rec.709 (the file has no chromaticities)
    np.testing.assert_allclose(px.astype(np.float64) @ yw, raw, rtol=2e-3, atol=1e-4)
    assert np.abs(px[:, :, 0] - px[:, :, 2]).mean() > 0.01  # colour came back, not grey


def test_luminance_only_files_are_grey_rgb():
    for rel in ("openexr-images/LuminanceChroma/Garden.exr", "openexr-images/TestImages/GrayRampsHorizontal.exr"):
        px, names = read_image(_exr(rel))
        assert names == RGB
        np.testing.assert_array_equal(px[:, :, 0], px[:, :, 1])
        np.testing.assert_array_equal(px[:, :, 1], px[:, :, 2])
    fog = _exr("openexr-images/MultiView/Fog.exr")
    hdr = probe_image(fog)
    assert hdr.attributes["exr:views"] == ["left", "right"] and hdr.layers == ("", "right")
    right, names = read_image(fog, "right")
    assert names == ("right.Y",) and right.shape == (672, 1000, 1)


def test_beachball_single_and_multi_part_agree():
    single = _exr("openexr-images/Beachball/singlepart.0007.exr")
    multi = _exr("openexr-images/Beachball/multipart.0007.exr")
    hs, hm = probe_image(single), probe_image(multi)
    assert hs.channels == hm.channels and hs.layers == hm.layers
    assert hm.parts == 10 and hs.parts == 1
    assert hs.attributes["exr:default_view"] == hm.attributes["exr:default_view"] == "right"
    assert {"", "left", "forward", "disparityL", "whitebarmask"} <= set(hs.layers)
    assert hm.data_window.box == (1280, 227, 2202, 1090)  # union of the parts, past the display window
    for layer in (None, "left", "forward", "forward.left", "disparityR", "whitebarmask", "Z"):
        a, na = read_image(single, layer)
        b, nb = read_image(multi, layer)
        assert na == nb
        np.testing.assert_array_equal(a, b, err_msg=str(layer))
    left, _ = read_image(multi, "rgba_left")  # a part name works too
    a, _ = read_image(multi, "left")
    np.testing.assert_array_equal(left, a[:, :, :4])


def test_display_window_matrix():
    for t in range(1, 17):
        path = _exr(f"openexr-images/DisplayWindow/t{t:02d}.exr")
        hdr = probe_image(path)
        inp = oiio.ImageInput.open(str(path))
        s = inp.spec()
        inp.close()
        assert hdr.data_window.box == (s.x, s.y, s.x + s.width - 1, s.y + s.height - 1)
        assert hdr.display_window.box == (s.full_x, s.full_y, s.full_x + s.full_width - 1,
                                          s.full_y + s.full_height - 1)
        px, _ = read_image(path)
        if t in (9, 10, 11, 12):  # no overlap: all background
            assert px.max() == 0
        else:
            assert px.max() > 0
    t13, _ = read_image(_exr("openexr-images/DisplayWindow/t13.exr"))
    t01, _ = read_image(_exr("openexr-images/DisplayWindow/t01.exr"))
    np.testing.assert_array_equal(t13[0, 0], t01[-1, -1])  # data's lower-right at display's top-left
    assert t13[1:].max() == 0 and t13[:, 1:].max() == 0
    t14, _ = read_image(_exr("openexr-images/DisplayWindow/t14.exr"))
    np.testing.assert_array_equal(t14[-1, -1], t01[0, 0])
    assert probe_image(_exr("openexr-images/DisplayWindow/t15.exr")).pixel_aspect == pytest.approx(1.5)
    assert probe_image(_exr("openexr-images/DisplayWindow/t16.exr")).pixel_aspect == pytest.approx(0.6667, abs=1e-4)


def test_overscan_and_windows_inside_display():
    hdr = probe_image(_exr("oiio-images/grid-overscan.exr"))
    assert hdr.data_window.box == (-250, -250, 1249, 1249) and hdr.display_window.box == (0, 0, 999, 999)
    hdr = probe_image(_exr("openexr/v1.7.test.1.exr"))
    assert hdr.data_window.box == (20, 20, 197, 174) and hdr.display_window.box == (0, 0, 216, 196)
    assert hdr.attributes["exr:channel_types"]["Z"] == "float"
    z, names = read_image(_exr("openexr/v1.7.test.1.exr"), "Z")
    assert names == ("Z",) and z[:20].max() == 0 and z[:, :20].max() == 0


def test_all_half_values_nan_and_inf_survive():
    px, _ = read_image(_exr("openexr-images/TestImages/AllHalfValues.exr"))
    halves = px.astype(np.float16)
    assert np.array_equal(halves.astype(np.float32), px, equal_nan=True)  # exact
    finite_or_inf = halves[~np.isnan(halves)].view(np.uint16)
    assert len(np.unique(finite_or_inf)) == 65536 - 2046  # every non-NaN bit pattern is present
    assert np.isposinf(px).any() and np.isneginf(px).any()
    path = _exr("openexr-images/TestImages/BrightRingsNanInf.exr")
    px, _ = read_image(path)
    raw = OpenEXR.File(str(path)).parts[0].channels["RGB"].pixels.astype(np.float32)
    assert np.isnan(px).sum() == np.isnan(raw).sum() > 0
    assert np.isinf(px).sum() == np.isinf(raw).sum() > 0
    assert np.nanmax(px[np.isfinite(px)]) > 1000


def test_float_range_mipmap_uint_and_attributes():
    px, _ = read_image(_exr("openexr-images/TestImages/WideFloatRange.exr"))
    assert np.abs(px[:, :, 1]).max() > 1e37 and px[:, :, 0].max() == 0
    hdr = probe_image(_exr("openexr-images/MultiResolution/ColorCodedLevels.exr"))
    assert hdr.attributes["exr:level_mode"] == "mipmap" and hdr.attributes["exr:levels"] == 10
    assert hdr.attributes["exr:compression"] == "pxr24"
    path = _exr("openexr/manifest_id.exr")
    hdr = probe_image(path)
    assert hdr.channels == ("R", "G", "B", "A", "id") and hdr.attributes["exr:channel_types"]["id"] == "uint32"
    assert "idManifest" in hdr.attributes
    ids, names = read_image(path, "id")
    raw = OpenEXR.File(str(path), separate_channels=True).parts[0].channels["id"].pixels
    np.testing.assert_array_equal(ids[:, :, 0], raw.astype(np.float32))
    carrots = probe_image(_exr("openexr-images/ScanLines/Carrots.exr")).attributes
    assert carrots["chromaticities"] == pytest.approx([0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767])
    candle, _ = read_image(_exr("openexr-images/ScanLines/CandleGlass.exr"))
    emissive = (candle[:, :, 3] == 0) & (candle[:, :, :3].max(axis=2) > 0)
    assert emissive.any()  # premultiplied A == 0 with RGB != 0 is kept as stored


def test_deep_file_is_refused_with_a_hint():
    with pytest.raises(UnsupportedMedia, match="deep") as err:
        read_image(_exr("openexr/11.deep.exr"))
    assert "flatten" in err.value.hint.lower()


# --------------------------------------------------------------------------------------------
# DPX specifics
# --------------------------------------------------------------------------------------------


def _dpx(rel: str) -> Path:
    return evaldata_path(DPX, *rel.split("/"))


@pytest.mark.parametrize("a, b, channels, tol", [
    # the same picture in two byte orders
    ("rawcooked/Flavors/Y_16_Packed_LE/FFmpeg_gray16le.dpx", "rawcooked/Flavors/Y_16_Packed_BE/FFmpeg_gray16be.dpx",
     1, 0.0),
    ("rawcooked/Features/PaddingBitsNotZero/RGB_12_FilledA_BE/checkerboard_1080p_nuke_bigendian_12bit_noalpha.dpx",
     "rawcooked/Features/PaddingBitsNotZero/RGB_12_FilledA_LE/checkerboard_1080p_nuke_littleendian_12bit_noalpha.dpx",
     3, 0.0),
    # RGB vs RGBA (4 samples per pixel across 32-bit words), and a wrong file-size field
    ("oiio-images/dpx_nuke_10bits_rgb.dpx", "oiio-images/dpx_nuke_16bits_rgba.dpx", 3, 0.0),
    # zero image offset in the file header vs zero total file size
    ("rawcooked/Conformance/0004_OffsetToImageData/0004_OffsetToImageData_000000.dpx",
     "rawcooked/Conformance/0016_TotalImageFileSize/0016_TotalImageFileSize_000000.dpx", 3, 0.0),
    # the same picture at other bit depths: equal within the coarser quantisation
    ("rawcooked/Features/PaddingBitsNotZero/RGBA_10_FilledA_LE/checkerboard_1080p_nuke_littleendian_10bit_alpha.dpx",
     "rawcooked/Features/PaddingBitsNotZero/RGB_12_FilledA_LE/checkerboard_1080p_nuke_littleendian_12bit_noalpha.dpx",
     3, 1 / 1023 + 1 / 4095),
    ("rawcooked/Flavors/RGB_8_Packed_BE/8bit.dpx", "rawcooked/Flavors/RGB_16_Packed_BE/16bit.dpx", 3, 1 / 255),
    ("rawcooked/Flavors/Y_8_Packed_LE/FFmpeg_gray.dpx", "rawcooked/Flavors/Y_16_Packed_LE/FFmpeg_gray16le.dpx",
     1, 2 / 255),
])
def test_dpx_twins_decode_to_the_same_pixels(a, b, channels, tol):
    pa, _ = read_image(_dpx(a))
    pb, _ = read_image(_dpx(b))
    assert pa.shape[:2] == pb.shape[:2]
    diff = np.abs(pa[:, :, :channels] - pb[:, :, :channels]).max()
    assert diff <= tol + 1e-7, diff


def test_dpx_orientation_twins():
    """Byte-identical pixel data; only the orientation field differs (2 = bottom-to-top), so the
    pictures read back as vertical mirrors of each other."""
    flipped, _ = read_image(_dpx("rawcooked/Flavors/RGB_12_Packed_BE/086449_modified_08x4.dpx"))
    upright, _ = read_image(_dpx("rawcooked/Flavors/RGB_12_Packed_BE/086449_modified_08x4_orientation0.dpx"))
    np.testing.assert_array_equal(flipped, upright[::-1])
    assert not np.array_equal(flipped, upright)


def test_dpx_header_fields_from_samples():
    a = probe_image(_dpx("oiio-images/dpx_nuke_16bits_rgba.dpx")).attributes
    assert a["dpx:bit_depth"] == 10 and a["dpx:descriptor"] == 51 and a["dpx:packing"] == 1
    assert a["dpx:declared_file_size"] == 1050624  # wrong in the file; ignored for decoding
    a = probe_image(_dpx("rawcooked/Features/PaddingBitsNotZero/RGB_10_FilledA_LE/image090003.dpx")).attributes
    assert a["dpx:byte_order"] == "little" and a["dpx:colorimetric"] == 1
    assert a["dpx:colorimetric_name"] == "printing density" and a["dpx:creator"] == "TCS Scan V1.0"
    a = probe_image(_dpx("rawcooked/Flavors/RGB_12_Packed_BE/086449_modified_08x4.dpx")).attributes
    assert a["dpx:orientation"] == 2 and a["dpx:transfer"] == 3 and a["dpx:transfer_name"] == "logarithmic"
    assert a["dpx:timecode"] == a["timecode"] == "01:00:02:01"
    assert a["dpx:frame_rate"] == 24.0 and a["fps"] == "24/1"
    a = probe_image(_dpx("rawcooked/Flavors/Y_10_FilledB_BE/Y_10_FilledB_BE_Modified_8x4.dpx")).attributes
    assert a["dpx:packing"] == 2 and a["dpx:packing_name"] == "filled method B" and a["dpx:descriptor"] == 6
    assert probe_image(_dpx("rawcooked/Features/Version/V1.0i/V1.0i.dpx")).attributes["dpx:version"] == "V1.0i"
    a = probe_image(_dpx("rawcooked/Flavors/RGB_8_Packed_BE/8bit.dpx")).attributes
    assert a["dpx:frame_rate"] == 1.0 and "fps" not in a  # After Effects' placeholder rate is not trusted
    hdr = probe_image(_dpx("rawcooked/Conformance/0004_OffsetToImageData/0004_OffsetToImageData_000000.dpx"))
    assert hdr.attributes["dpx:data_offset"] == 1664 and hdr.pixel_type == "uint8"
