"""Still-image and image-sequence reading: EXR (layers, parts, windows, attributes), DPX
(bit depths, packings, byte orders, orientation, header fields), PNG/TIFF/JPEG, sequences
through ``open_clip``, and every kind of bad input.

Every test writes its own tiny media in ``tmp_path`` (OpenEXR / OpenImageIO writers, and a
small hand-written DPX writer that packs samples independently of the reader).
"""

from __future__ import annotations

import shutil
import struct
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

OpenEXR = pytest.importorskip("OpenEXR")
oiio = pytest.importorskip("OpenImageIO")

from engine.errors import (  # noqa: E402
    CorruptMedia,
    FrameOutOfRange,
    InconsistentSequence,
    MediaNotFound,
    MissingFrames,
    UnsupportedMedia,
)
from engine.media.readers.image import layer_channels, probe_image, read_image  # noqa: E402
from engine.media.readers.sequence import SequenceReader  # noqa: E402
from engine.media.types import Rect  # noqa: E402

# --------------------------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------------------------


def write_exr(path: Path, channels: dict, header: dict | None = None) -> Path:
    hdr = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    hdr.update(header or {})
    # the OpenEXR module ignores numpy strides: hand it contiguous planes
    planes = {k: np.ascontiguousarray(v) for k, v in channels.items()}
    OpenEXR.File(hdr, planes).write(str(path))
    return path


def write_oiio(path: Path, pixels: np.ndarray, fmt: str, **attrs) -> Path:
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    h, w, c = pixels.shape
    spec = oiio.ImageSpec(w, h, c, fmt)
    for key, value in attrs.items():
        spec.attribute(key.replace("__", ":"), value)
    out = oiio.ImageOutput.create(str(path))
    assert out is not None and out.open(str(path), spec), oiio.geterror()
    assert out.write_image(np.ascontiguousarray(pixels))
    out.close()
    return path


def _pack_line(samples: list[int], bits: int, packing: int, one_channel: bool, e: str) -> bytes:
    if bits == 8:
        raw = bytes(samples)
    elif bits == 16 or (bits == 12 and packing in (1, 2)):
        vals = [s << 4 for s in samples] if (bits == 12 and packing == 1) else samples
        raw = struct.pack(f"{e}{len(vals)}H", *vals)
    elif bits == 10 and packing in (1, 2):
        words = []
        for i in range(0, len(samples), 3):
            trio = (samples[i:i + 3] + [0, 0])[:3]
            if one_channel:
                trio = trio[::-1]  # single-channel data: first sample in the low bits
            s0, s1, s2 = trio
            word = (s0 << 20) | (s1 << 10) | s2
            words.append(word << 2 if packing == 1 else word)
        raw = struct.pack(f"{e}{len(words)}I", *words)
    else:  # packed 10/12-bit: a bit stream, first sample in the lowest bits of each 32-bit word
        acc, nbits, words = 0, 0, []
        for s in samples:
            acc |= s << nbits
            nbits += bits
            while nbits >= 32:
                words.append(acc & 0xFFFFFFFF)
                acc >>= 32
                nbits -= 32
        if nbits:
            words.append(acc)
        raw = struct.pack(f"{e}{len(words)}I", *words)
    return raw + b"\0" * (-len(raw) % 4)


def write_dpx(path: Path, codes: np.ndarray, bits: int, *, packing: int = 1, big: bool = True,
              orientation: int = 0, transfer: int = 2, colorimetric: int = 2, fps: float | None = None,
              timecode: int | None = None, creator: str = "roto-test", zero_image_offset: bool = False,
              bogus_file_size: bool = False, version: bytes = b"V2.0", truncate: int = 0,
              continuous: bool = False) -> Path:
    """A DPX written field by field (SMPTE 268M layout) from integer ``codes`` (H, W, C)."""
    e = ">" if big else "<"
    codes = np.asarray(codes)
    if codes.ndim == 2:
        codes = codes[:, :, None]
    stored = codes
    if orientation % 4 in (1, 3):
        stored = stored[:, ::-1]
    if orientation % 4 in (2, 3):
        stored = stored[::-1]
    if orientation >= 4:  # lines run down the columns
        stored = stored.transpose(1, 0, 2)
    h, w, c = stored.shape
    if continuous:  # no padding at line ends: the whole image is one run of samples
        data = _pack_line([int(v) for v in stored.ravel()], bits, packing, c == 1, e)
    else:
        data = b"".join(_pack_line([int(v) for v in row.ravel()], bits, packing, c == 1, e) for row in stored)
    offset = 2048
    head = bytearray(b"\xff" * offset)
    struct.pack_into(e + "I", head, 0, 0x53445058)  # "SDPX" in the file's byte order
    struct.pack_into(e + "I", head, 4, 0 if zero_image_offset else offset)
    head[8:16] = version.ljust(8, b"\0")
    struct.pack_into(e + "I", head, 16, 123 if bogus_file_size else offset + len(data))
    struct.pack_into(e + "III", head, 20, 1, 1664, 384)  # ditto, generic size, industry size
    struct.pack_into(e + "I", head, 32, 0)  # user data size
    head[36:136] = b"\0" * 100
    head[160:260] = creator.encode().ljust(100, b"\0")
    struct.pack_into(e + "I", head, 660, 0xFFFFFFFF)
    struct.pack_into(e + "HHII", head, 768, orientation, 1, w, h)
    base = 780
    descriptor = {1: 6, 3: 50, 4: 51}[c]
    struct.pack_into(e + "IIfIf", head, base, 0, 0, 0.0, (1 << bits) - 1, 2.047)
    struct.pack_into(e + "BBBBHHIII", head, base + 20, descriptor, transfer, colorimetric, bits, packing, 0,
                     offset, 0, 0)  # data offset, end-of-line and end-of-image padding
    struct.pack_into(e + "f", head, 1724, fps if fps is not None else float("nan"))
    struct.pack_into(e + "I", head, 1920, timecode if timecode is not None else 0xFFFFFFFF)
    struct.pack_into(e + "f", head, 1940, fps if fps is not None else float("nan"))
    blob = bytes(head) + data
    path.write_bytes(blob[: len(blob) - truncate] if truncate else blob)
    return path


RNG = np.random.default_rng(1234)

# --------------------------------------------------------------------------------------------
# EXR
# --------------------------------------------------------------------------------------------


def _ramp(h: int, w: int, scale: float = 1.0) -> np.ndarray:
    return (np.arange(h * w, dtype=np.float32).reshape(h, w) * scale)


def test_exr_multilayer_single_part_windows_and_attributes(tmp_path):
    h, w = 6, 8
    r = _ramp(h, w)
    tc = OpenEXR.TimeCode()
    tc.hours, tc.minutes, tc.seconds, tc.frame = 1, 2, 3, 4
    path = write_exr(tmp_path / "ml.exr", {
        "R": r, "G": r * 2, "B": (r / 4).astype(np.float16), "A": np.ones((h, w), np.float16),
        "depth.Z": r * 10, "matte_hero.A": np.full((h, w), 0.5, np.float16),
    }, {
        "dataWindow": ((2, 1), (2 + w - 1, 1 + h - 1)), "displayWindow": ((0, 0), (9, 9)),
        "framesPerSecond": Fraction(24000, 1001), "timeCode": tc, "colorspace": "ACEScg",
        "chromaticities": (0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767),
    })
    hdr = probe_image(path)
    assert hdr.format == "exr" and (hdr.width, hdr.height) == (10, 10)
    assert hdr.channels == ("R", "G", "B", "A", "depth.Z", "matte_hero.A")
    assert hdr.layers == ("", "depth", "matte_hero")
    assert hdr.data_window == Rect(2, 1, 8, 6) and hdr.display_window == Rect(0, 0, 10, 10)
    assert hdr.pixel_type == "float" and hdr.parts == 1
    a = hdr.attributes
    assert a["fps"] == "24000/1001" and Fraction(a["fps"]) == Fraction(24000, 1001)
    assert a["timecode"] == "01:02:03:04"
    assert a["colorspace"] == "ACEScg"
    assert a["chromaticities"] == pytest.approx([0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767])
    assert a["exr:channel_types"]["B"] == "half" and a["exr:channel_types"]["depth.Z"] == "float"

    px, names = read_image(path)
    assert names == ("R", "G", "B", "A") and px.shape == (10, 10, 4) and px.dtype == np.float32
    # data pixel (x, y) sits at display (x + 2, y + 1); outside the data window is 0
    np.testing.assert_array_equal(px[1:7, 2:10, 0], r)
    np.testing.assert_array_equal(px[1:7, 2:10, 1], r * 2)
    np.testing.assert_array_equal(px[1:7, 2:10, 2], (r / 4).astype(np.float16).astype(np.float32))
    assert px[0].max() == 0 and px[7:].max() == 0 and px[:, :2].max() == 0
    assert px[1:7, 2:10, 3].min() == 1.0

    depth, names = read_image(path, "depth")
    assert names == ("depth.Z",) and depth.shape == (10, 10, 1)
    np.testing.assert_array_equal(depth[1:7, 2:10, 0], r * 10)
    matte, names = read_image(path, "matte_hero")
    assert names == ("matte_hero.A",) and float(matte[3, 4, 0]) == 0.5 and float(matte[0, 0, 0]) == 0.0
    assert layer_channels(hdr, "depth") == ("depth.Z",)
    assert layer_channels(hdr, None) == layer_channels(hdr, "rgba") == ("R", "G", "B", "A")
    single, names = read_image(path, "depth.Z")  # a single channel by its full name
    assert names == ("depth.Z",)
    with pytest.raises(UnsupportedMedia, match="no layer or channel named 'nope'") as err:
        read_image(path, "nope")
    assert "depth" in err.value.hint and str(path) in str(err.value)


def test_exr_overscan_is_cropped_and_negative_origin(tmp_path):
    r = _ramp(8, 8)  # data window (-2,-2)-(5,5) over a 4x4 display window
    path = write_exr(tmp_path / "over.exr", {"R": r, "G": r, "B": r},
                     {"dataWindow": ((-2, -2), (5, 5)), "displayWindow": ((0, 0), (3, 3))})
    hdr = probe_image(path)
    assert hdr.data_window == Rect(-2, -2, 8, 8) and (hdr.width, hdr.height) == (4, 4)
    px, _ = read_image(path)
    assert px.shape == (4, 4, 3)
    np.testing.assert_array_equal(px[:, :, 0], r[2:6, 2:6])


def test_exr_half_float_nan_inf_and_uint(tmp_path):
    h, w = 2, 4
    half = np.array([[np.nan, np.inf, -np.inf, 65504], [0.5, -0.0, 6e-8, 1.0]], np.float16)
    flt = np.array([[np.nan, np.inf, 1e38, -1e-38], [3.25, -7.5, 0, 1]], np.float32)
    ids = np.array([[0, 1, 123456, 16777215], [7, 8, 9, 10]], np.uint32)
    path = write_exr(tmp_path / "vals.exr", {"R": half, "G": flt, "B": half, "id": ids})
    px, names = read_image(path)
    assert names == ("R", "G", "B")
    np.testing.assert_array_equal(px[:, :, 0], half.astype(np.float32))  # equal_nan by default
    np.testing.assert_array_equal(px[:, :, 1], flt)
    assert np.isnan(px[0, 0, 0]) and px[0, 1, 1] == np.inf
    idp, names = read_image(path, "id")
    assert names == ("id",)
    np.testing.assert_array_equal(idp[:, :, 0], ids.astype(np.float32))  # integer values, not 0..1
    hdr = probe_image(path)
    assert hdr.attributes["exr:channel_types"]["id"] == "uint32"
    assert hdr.pixel_type == "float"  # widest type among the default R G B


def test_exr_multipart_layers_and_part_names(tmp_path):
    r = _ramp(4, 6)
    parts = [
        OpenEXR.Part({"compression": OpenEXR.PIZ_COMPRESSION}, {"R": r, "G": r + 1, "B": r + 2}, "beauty"),
        OpenEXR.Part({"compression": OpenEXR.ZIP_COMPRESSION}, {"Z": r * 3}, "depth"),
        OpenEXR.Part({"compression": OpenEXR.ZIP_COMPRESSION}, {"R": r * 5, "G": r, "B": r, "A": r}, "diffuse"),
        OpenEXR.Part({"compression": OpenEXR.ZIP_COMPRESSION}, {"matte_hero.A": r / 100}, "mattes"),
    ]
    path = tmp_path / "mp.exr"
    OpenEXR.File(parts).write(str(path))
    hdr = probe_image(path)
    assert hdr.parts == 4
    assert hdr.channels == ("R", "G", "B", "Z", "diffuse.R", "diffuse.G", "diffuse.B", "diffuse.A", "matte_hero.A")
    assert hdr.layers == ("", "diffuse", "matte_hero")
    assert [p["name"] for p in hdr.attributes["exr:parts"]] == ["beauty", "depth", "diffuse", "mattes"]
    px, names = read_image(path)
    assert names == ("R", "G", "B")
    np.testing.assert_array_equal(px[:, :, 2], r + 2)
    d, names = read_image(path, "diffuse")  # the later part reusing R G B A became a layer
    assert names == ("diffuse.R", "diffuse.G", "diffuse.B", "diffuse.A")
    np.testing.assert_array_equal(d[:, :, 0], r * 5)
    z, names = read_image(path, "depth")  # a part name selects that part's channels
    assert names == ("Z",)
    np.testing.assert_array_equal(z[:, :, 0], r * 3)
    m, names = read_image(path, "matte_hero")
    np.testing.assert_allclose(m[:, :, 0], r / 100)


def test_exr_luminance_only_comes_back_as_rgb(tmp_path):
    y = _ramp(3, 5, 0.1)
    path = write_exr(tmp_path / "y.exr", {"Y": y.astype(np.float16)})
    px, names = read_image(path)
    assert names == ("R", "G", "B") and px.shape == (3, 5, 3)
    for k in range(3):
        np.testing.assert_array_equal(px[:, :, k], y.astype(np.float16).astype(np.float32))
    path = write_exr(tmp_path / "ya.exr", {"Y": y, "A": np.full((3, 5), 0.25, np.float32)})
    px, names = read_image(path)
    assert names == ("R", "G", "B", "A") and float(px[1, 1, 3]) == 0.25
    assert layer_channels(probe_image(path)) == ("R", "G", "B", "A")


def test_exr_missing_colour_channels_read_as_zero(tmp_path):
    g = _ramp(2, 3)
    px, names = read_image(write_exr(tmp_path / "g.exr", {"G": g}))
    assert names == ("R", "G", "B")
    np.testing.assert_array_equal(px[:, :, 1], g)
    assert px[:, :, 0].max() == 0 and px[:, :, 2].max() == 0


def test_exr_tiled_and_every_common_compression(tmp_path):
    img = RNG.random((20, 24, 3)).astype(np.float32)
    tiled = tmp_path / "tiled.exr"
    spec = oiio.ImageSpec(24, 20, 3, "float")
    spec.tile_width = spec.tile_height = 8
    out = oiio.ImageOutput.create(str(tiled))
    assert out.open(str(tiled), spec)
    assert out.write_image(img)
    out.close()
    px, _ = read_image(tiled)
    np.testing.assert_array_equal(px, img)
    assert probe_image(tiled).attributes["exr:tiled"] is True
    lossless = ("NO_COMPRESSION", "RLE_COMPRESSION", "ZIPS_COMPRESSION", "ZIP_COMPRESSION", "PIZ_COMPRESSION")
    lossless += tuple(n for n in ("ZSTD_COMPRESSION", "HTJ2K256_COMPRESSION", "HTJ2K32_COMPRESSION")
                      if hasattr(OpenEXR, n))  # OpenEXR 3.4+
    for name in lossless + ("PXR24_COMPRESSION", "B44_COMPRESSION", "DWAA_COMPRESSION", "DWAB_COMPRESSION"):
        path = write_exr(tmp_path / f"{name}.exr", {"R": img[:, :, 0].astype(np.float16),
                                                     "G": img[:, :, 1].astype(np.float16),
                                                     "B": img[:, :, 2].astype(np.float16)},
                         {"compression": getattr(OpenEXR, name)})
        px, _ = read_image(path)
        ref = img.astype(np.float16).astype(np.float32)
        if name not in lossless:  # lossy codecs: compare a smooth picture, loosely
            yy, xx = np.mgrid[0:20, 0:24].astype(np.float32)
            smooth = np.stack([xx / 24, yy / 20, (xx + yy) / 44], axis=2).astype(np.float16)
            path = write_exr(tmp_path / f"{name}_smooth.exr", {"R": smooth[:, :, 0], "G": smooth[:, :, 1],
                                                                "B": smooth[:, :, 2]},
                             {"compression": getattr(OpenEXR, name)})
            px, ref = read_image(path)[0], smooth.astype(np.float32)
        if name in lossless:
            np.testing.assert_array_equal(px, ref, err_msg=name)
        else:
            np.testing.assert_allclose(px, ref, atol=0.02, err_msg=name)


# --------------------------------------------------------------------------------------------
# DPX
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits, packing", [(8, 0), (10, 1), (10, 2), (10, 0), (12, 1), (12, 2), (12, 0), (16, 0)])
@pytest.mark.parametrize("big", [True, False])
@pytest.mark.parametrize("channels", [3, 1])
def test_dpx_bit_depths_packings_byte_orders(tmp_path, bits, packing, big, channels):
    h, w = 3, 5  # odd width: packed lines do not end on a word boundary
    codes = RNG.integers(0, 1 << bits, size=(h, w, channels))
    path = write_dpx(tmp_path / "x.dpx", codes, bits, packing=packing, big=big)
    px, names = read_image(path)
    assert names == (("R", "G", "B") if channels == 3 else ("Y",))
    assert px.shape == (h, w, channels) and px.dtype == np.float32
    np.testing.assert_array_equal(np.round(px * ((1 << bits) - 1)).astype(int), codes)
    hdr = probe_image(path)
    assert hdr.attributes["dpx:bit_depth"] == bits and hdr.attributes["dpx:packing"] == packing
    assert hdr.pixel_type == {8: "uint8", 10: "uint10", 12: "uint12", 16: "uint16"}[bits]
    assert hdr.attributes["dpx:byte_order"] == ("big" if big else "little")


@pytest.mark.parametrize("orientation", range(8))
def test_dpx_orientation(tmp_path, orientation):
    codes = RNG.integers(0, 1024, size=(4, 6, 3))
    path = write_dpx(tmp_path / "o.dpx", codes, 10, orientation=orientation)
    px, _ = read_image(path)
    np.testing.assert_array_equal(np.round(px * 1023).astype(int), codes)
    hdr = probe_image(path)
    assert (hdr.width, hdr.height) == (6, 4) and hdr.attributes["dpx:orientation"] == orientation


def test_dpx_10bit_luma_without_line_padding(tmp_path):
    """Some scanners run single-channel 10-bit samples on across line ends (no padding)."""
    codes = RNG.integers(0, 1024, size=(5, 8, 1))  # 8 samples per line: not a multiple of 3
    px, names = read_image(write_dpx(tmp_path / "c.dpx", codes, 10, continuous=True))
    assert names == ("Y",)
    np.testing.assert_array_equal(np.round(px * 1023).astype(int), codes)


def test_dpx_header_fields(tmp_path):
    codes = RNG.integers(0, 1024, size=(2, 3, 3))
    tc = 0x01020304  # BCD 01:02:03:04
    path = write_dpx(tmp_path / "h.dpx", codes, 10, transfer=1, colorimetric=1, fps=23.976, timecode=tc)
    a = probe_image(path).attributes
    assert a["dpx:transfer"] == 1 and a["dpx:transfer_name"] == "printing density"
    assert a["dpx:colorimetric"] == 1 and a["dpx:descriptor"] == 50 and a["dpx:descriptor_name"] == "RGB"
    assert a["dpx:timecode"] == a["timecode"] == "01:02:03:04"
    assert a["dpx:frame_rate"] == pytest.approx(23.976) and a["fps"] == "24000/1001"
    assert a["dpx:creator"] == "roto-test" and a["dpx:version"] == "V2.0"
    a = probe_image(write_dpx(tmp_path / "v.dpx", codes, 10, transfer=6, fps=25.0)).attributes
    assert a["dpx:transfer_name"] == "ITU-R BT.709-4" and a["fps"] == "25/1" and "timecode" not in a


def test_dpx_header_quirks_are_tolerated(tmp_path):
    codes = RNG.integers(0, 256, size=(4, 4, 3))
    for kw in ({"bogus_file_size": True}, {"zero_image_offset": True}, {"version": b"V1.0i"}):
        px, _ = read_image(write_dpx(tmp_path / "q.dpx", codes, 8, **kw))
        np.testing.assert_array_equal(np.round(px * 255).astype(int), codes, err_msg=str(kw))


def test_dpx_written_by_openimageio(tmp_path):
    img = RNG.random((5, 7, 3)).astype(np.float32)
    for bits in (10, 12, 16):
        kw = {} if bits == 16 else {"oiio__BitsPerSample": bits}
        path = write_oiio(tmp_path / f"o{bits}.dpx", img, "uint16", **kw)
        px, _ = read_image(path)
        inp = oiio.ImageInput.open(str(path))
        ref16 = inp.read_image("uint16")
        inp.close()
        # OpenImageIO widens n-bit codes to 16 bits: the top n bits are the code
        np.testing.assert_array_equal(np.round(px * ((1 << bits) - 1)).astype(int), ref16 >> (16 - bits))
        assert probe_image(path).attributes["dpx:bit_depth"] == bits


def test_dpx_truncated_and_bad_headers(tmp_path):
    codes = RNG.integers(0, 1024, size=(8, 8, 3))
    path = write_dpx(tmp_path / "t.dpx", codes, 10, truncate=40)
    with pytest.raises(CorruptMedia, match="truncated") as err:
        read_image(path)
    assert str(path) in str(err.value)
    with pytest.raises(CorruptMedia):
        probe_image(path)  # the header promises more data than the file holds
    head = bytearray(write_dpx(tmp_path / "big.dpx", codes, 10).read_bytes())
    struct.pack_into(">II", head, 772, 0x7FFFFFFF, 0x7FFFFFFF)  # absurd width x height
    (tmp_path / "big.dpx").write_bytes(bytes(head))
    with pytest.raises(CorruptMedia, match="invalid image size"):
        read_image(tmp_path / "big.dpx")


# --------------------------------------------------------------------------------------------
# PNG / TIFF / JPEG
# --------------------------------------------------------------------------------------------


def test_png_16_and_8_bit_grey_and_alpha(tmp_path):
    img = RNG.integers(0, 65536, size=(4, 5, 3)).astype(np.uint16)
    px, names = read_image(write_oiio(tmp_path / "c.png", img, "uint16"))
    assert names == ("R", "G", "B") and px.dtype == np.float32
    np.testing.assert_allclose(px, img / 65535.0, rtol=0, atol=1e-7)
    hdr = probe_image(tmp_path / "c.png")
    assert hdr.format == "png" and hdr.pixel_type == "uint16"
    grey = RNG.integers(0, 256, size=(4, 5)).astype(np.uint8)
    px, names = read_image(write_oiio(tmp_path / "g.png", grey, "uint8"))
    assert names == ("Y",) and px.shape == (4, 5, 1)
    np.testing.assert_allclose(px[:, :, 0], grey / 255.0, atol=1e-7)
    ga = RNG.integers(0, 256, size=(4, 5, 2)).astype(np.uint8)
    px, names = read_image(write_oiio(tmp_path / "ga.png", ga, "uint8"))
    assert names == ("Y", "A")


def test_tiff_float_and_16_bit(tmp_path):
    img = (RNG.random((4, 5, 4)) * 8 - 2).astype(np.float32)  # scene values beyond 0..1
    px, names = read_image(write_oiio(tmp_path / "f.tif", img, "float"))
    assert names == ("R", "G", "B", "A")
    np.testing.assert_array_equal(px, img)
    assert probe_image(tmp_path / "f.tif").pixel_type == "float"
    img16 = RNG.integers(0, 65536, size=(3, 3, 3)).astype(np.uint16)
    px, _ = read_image(write_oiio(tmp_path / "s.tiff", img16, "uint16"))
    np.testing.assert_allclose(px, img16 / 65535.0, atol=1e-7)


def test_jpeg(tmp_path):
    img = np.zeros((16, 16, 3), np.uint8)
    img[:, :, 0], img[:, :, 1], img[:, :, 2] = 200, 100, 50
    px, names = read_image(write_oiio(tmp_path / "j.jpg", img, "uint8"))
    assert names == ("R", "G", "B") and px.shape == (16, 16, 3)
    np.testing.assert_allclose(px, img / 255.0, atol=3 / 255)  # lossy codec
    assert probe_image(tmp_path / "j.jpg").format == "jpeg"


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------


def test_bad_inputs_raise_sentences_naming_the_file(tmp_path):
    with pytest.raises(MediaNotFound):
        read_image(tmp_path / "nope.exr")
    empty = tmp_path / "empty.exr"
    empty.write_bytes(b"")
    with pytest.raises(CorruptMedia, match="empty") as err:
        probe_image(empty)
    assert str(empty) in str(err.value)
    garbage = tmp_path / "garbage.exr"
    garbage.write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(CorruptMedia, match="does not start like"):
        read_image(garbage)
    text_png = tmp_path / "notes.png"
    text_png.write_text("hello")
    with pytest.raises(CorruptMedia):
        read_image(text_png)
    with pytest.raises(UnsupportedMedia):
        read_image(tmp_path)  # a folder


def test_truncated_exr_is_corrupt(tmp_path):
    img = RNG.random((64, 64)).astype(np.float32)
    full = write_exr(tmp_path / "full.exr", {"R": img, "G": img, "B": img}).read_bytes()
    for cut in (len(full) // 2, len(full) - 10, 40):
        bad = tmp_path / f"cut{cut}.exr"
        bad.write_bytes(full[:cut])
        with pytest.raises(CorruptMedia) as err:
            read_image(bad)
        assert str(bad) in str(err.value)


def test_exr_absurd_data_window_is_refused_before_allocating(tmp_path):
    data = bytearray(write_exr(tmp_path / "ok.exr", {"R": np.zeros((2, 2), np.float32)}).read_bytes())
    at = data.index(b"dataWindow\0box2i\0") + len(b"dataWindow\0box2i\0") + 4
    struct.pack_into("<4i", data, at, 0, 0, 1_000_000, 1_000_000)
    (tmp_path / "huge.exr").write_bytes(bytes(data))
    with pytest.raises(CorruptMedia):
        probe_image(tmp_path / "huge.exr")
    struct.pack_into("<4i", data, at, 0, 0, 40_000, 1)  # plausible size, but no data to match it
    (tmp_path / "wide.exr").write_bytes(bytes(data))
    with pytest.raises(CorruptMedia):
        read_image(tmp_path / "wide.exr")


def test_corrupt_jpeg_is_corrupt(tmp_path):
    img = RNG.integers(0, 256, size=(32, 32, 3)).astype(np.uint8)
    data = write_oiio(tmp_path / "ok.jpg", img, "uint8").read_bytes()
    (tmp_path / "half.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptMedia) as err:
        read_image(tmp_path / "half.jpg")
    assert "half.jpg" in str(err.value)


# --------------------------------------------------------------------------------------------
# sequences
# --------------------------------------------------------------------------------------------


def _exr_seq(folder: Path, frames, name="shot.{:04d}.exr", size=(6, 8), fps=None) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in frames:
        v = np.full(size, f, np.float32)
        header = {"framesPerSecond": fps} if fps else {}
        paths.append(write_exr(folder / name.format(f), {"R": v, "G": v, "B": v}, header))
    return paths


def open_clip(*args, **kwargs):
    from engine.media.clip import open_clip as _open

    return _open(*args, **kwargs)


def test_sequence_reader_info_and_reads(tmp_path):
    _exr_seq(tmp_path / "seq", range(1001, 1004), fps=Fraction(25))
    r = SequenceReader(str(tmp_path / "seq" / "shot.1001.exr"))
    i = r.info
    assert (i.kind, i.format, i.first, i.last, i.width, i.height) == ("sequence", "exr", 1001, 1003, 8, 6)
    assert i.fps == 25 and i.fps_source == "file" and i.colourspace == ""
    assert i.channels == ("R", "G", "B") and i.missing == () and i.path.endswith("shot.####.exr")
    assert i.metadata["fps"] == "25/1"
    assert r.layer_channels() == ("R", "G", "B")
    px = r.read(1002)
    assert px.shape == (6, 8, 3) and float(px[0, 0, 0]) == 1002.0
    with pytest.raises(FrameOutOfRange):
        r.read(999)
    r.close()


def test_sequence_default_fps(tmp_path):
    _exr_seq(tmp_path / "s", [1, 2])
    r = SequenceReader(str(tmp_path / "s" / "shot.####.exr"))
    assert r.info.fps == 24 and r.info.fps_source == "default"
    r = SequenceReader(str(tmp_path / "s" / "shot.####.exr"), fps=Fraction(30000, 1001))
    assert r.info.fps == Fraction(30000, 1001) and r.info.fps_source == "default"


def test_lone_image_is_a_one_frame_clip(tmp_path):
    write_oiio(tmp_path / "plate.png", np.full((3, 4, 3), 128, np.uint8), "uint8")
    r = SequenceReader(str(tmp_path / "plate.png"))
    assert r.info.kind == "image" and (r.info.first, r.info.last) == (1, 1)
    assert r.read(1).shape == (3, 4, 3)


@pytest.mark.parametrize("how", ["frame", "hashes", "printf", "folder"])
def test_open_clip_recognises_sequences(tmp_path, how):
    folder = tmp_path / "plates"
    if how in ("frame", "folder"):
        _exr_seq(folder, [1001, 1002, 1003])
        target = folder / "shot.1001.exr" if how == "frame" else folder
        fmt, channels = "exr", 3
    elif how == "hashes":
        folder.mkdir()
        for f in (7, 8, 9):
            write_dpx(folder / f"shot_{f:04d}.dpx", np.full((4, 6, 3), f * 10, int), 10, transfer=1)
        target, fmt, channels = folder / "shot_####.dpx", "dpx", 3
    else:
        folder.mkdir()
        for f in (1, 2, 3):
            write_oiio(folder / f"shot.{f:04d}.png", np.full((4, 6, 3), f * 1000, np.uint16), "uint16")
        target, fmt, channels = folder / "shot.%04d.png", "png", 3
    clip = open_clip(str(target))
    try:
        assert clip.info.format == fmt and clip.info.kind == "sequence"
        assert len(clip) == 3 and clip.info.colourspace  # inferred by open_clip
        first = clip.info.first
        px = clip.read(first + 1)
        assert px.shape == (clip.info.height, clip.info.width, channels)
        if fmt == "exr":
            assert first == 1001 and float(px[0, 0, 0]) == 1002.0
        elif fmt == "dpx":
            assert first == 7 and round(float(px[0, 0, 0]) * 1023) == 80
            assert clip.info.metadata["dpx:transfer"] == 1
        else:
            assert first == 1 and float(px[0, 0, 0]) == pytest.approx(2000 / 65535)
    finally:
        clip.close()


def test_missing_frames_policies(tmp_path):
    _exr_seq(tmp_path / "gap", [1, 2, 5, 6])
    pattern = str(tmp_path / "gap" / "shot.####.exr")
    with pytest.raises(MissingFrames) as err:
        open_clip(pattern, missing="error")
    assert err.value.missing == (3, 4) and "3-4" in str(err.value)
    hold = open_clip(pattern, missing="hold")
    assert float(hold.read(4)[0, 0, 0]) == 2.0 and float(hold.read(5)[0, 0, 0]) == 5.0
    black = open_clip(pattern, missing="black")
    px = black.read(3)
    assert px.shape == (6, 8, 3) and px.max() == 0.0
    r = SequenceReader(pattern)
    assert r.info.missing == (3, 4)
    with pytest.raises(MissingFrames) as err:
        r.read(3)
    assert err.value.frame == 3


def test_missing_frames_outside_the_in_out_range_are_fine(tmp_path):
    """Frames outside the working range are never read: a gap there must not stop the command."""
    _exr_seq(tmp_path / "gap", [1, 2, 3, 4, 7, 8, 10])
    pattern = str(tmp_path / "gap" / "shot.####.exr")
    clip = open_clip(pattern, missing="error", in_point=1, out_point=4)
    try:
        assert list(clip.frames) == [1, 2, 3, 4] and float(clip.read(4)[0, 0, 0]) == 4.0
        assert clip.info.missing == (5, 6, 9)  # still listed, as `roto info` does
    finally:
        clip.close()
    clip = open_clip(pattern, in_point=7, out_point=8)
    assert float(clip.read(8)[0, 0, 0]) == 8.0
    clip.close()
    # a gap inside the range is still refused, naming only the frames in the range
    with pytest.raises(MissingFrames) as err:
        open_clip(pattern, in_point=3, out_point=8)
    assert err.value.missing == (5, 6) and "5-6" in str(err.value) and "9" not in err.value.message
    with pytest.raises(MissingFrames) as err:
        open_clip(pattern, out_point=9)
    assert err.value.missing == (5, 6, 9)
    with pytest.raises(FrameOutOfRange):
        open_clip(pattern, in_point=1, out_point=12)


def test_corrupt_frame_mid_sequence_names_file_and_frame(tmp_path):
    folder = tmp_path / "jpg"
    folder.mkdir()
    img = RNG.integers(0, 256, size=(16, 16, 3)).astype(np.uint8)
    for f in (1, 2, 3):
        write_oiio(folder / f"shot.{f:04d}.jpg", img, "uint8")
    bad = folder / "shot.0002.jpg"
    bad.write_bytes(bad.read_bytes()[:200])
    clip = open_clip(str(folder / "shot.0001.jpg"))
    assert clip.read(1).shape == (16, 16, 3)
    with pytest.raises(CorruptMedia) as err:
        clip.read(2)
    assert err.value.frame == 2 and err.value.path == str(bad)
    assert "shot.0002.jpg" in str(err.value) and "frame 2" in str(err.value)
    (folder / "shot.0003.jpg").write_bytes(b"")
    with pytest.raises(CorruptMedia, match="empty") as err:
        clip.read(3)
    assert err.value.frame == 3


def _damaged_seq(folder: Path, ext: str, frames=(1, 2, 3, 4, 5), damaged=(3,)) -> None:
    """A small sequence, each frame a flat grey of its own level, with ``damaged`` frames cut short."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for f in frames:
        img = np.full((32, 32, 3), 40 * f, np.uint8)
        img[::2, ::2] = rng.integers(0, 256, size=(16, 16, 3))  # so the file is long enough to cut
        write_oiio(folder / f"s.{f:04d}.{ext}", img, "uint8")
    for f in damaged:
        path = folder / f"s.{f:04d}.{ext}"
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3])


@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_damaged_frame_follows_the_missing_policy(tmp_path, caplog, ext):
    """The error for a damaged frame says to use --missing hold|black: that advice must work."""
    folder = tmp_path / ext
    _damaged_seq(folder, ext)
    pattern = str(folder / f"s.####.{ext}")
    with open_clip(pattern) as clip:  # default policy: the error, naming the frame, with true advice
        with pytest.raises(CorruptMedia) as err:
            clip.read(3)
        assert err.value.frame == 3 and f"s.0003.{ext}" in str(err.value)
        assert "--missing hold" in str(err.value) and "--missing black" in str(err.value)
    with open_clip(pattern, missing="hold") as clip, caplog.at_level("WARNING"):
        frames = [clip.read(f) for f in clip.frames]  # sequential: the read-ahead path too
        assert np.array_equal(frames[2], frames[1])
        assert not np.array_equal(frames[3], frames[1])
        assert np.array_equal(clip.read(3), clip.read(2))
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and f"s.0003.{ext}" in warned[0] and "frame 3" in warned[0]
    assert "--missing hold" in warned[0]
    caplog.clear()
    with open_clip(pattern, missing="black") as clip, caplog.at_level("WARNING"):
        assert clip.read(3).max() == 0.0 and clip.read(3).shape == (32, 32, 3)
        assert clip.read(4).max() > 0.0
    assert any("frame 3" in r.getMessage() and "black" in r.getMessage() for r in caplog.records)


def test_hold_skips_damaged_frames_and_gaps(tmp_path):
    folder = tmp_path / "seq"
    _damaged_seq(folder, "png", frames=(1, 2, 3, 5, 6), damaged=(1, 3))
    pattern = str(folder / "s.####.png")
    with open_clip(pattern, missing="hold") as hold:
        two = hold.read(2)
        assert np.array_equal(hold.read(1), two)  # nothing readable before: the next readable frame
        assert np.array_equal(hold.read(3), two)
        assert np.array_equal(hold.read(4), two)  # missing, and the frame it would hold is damaged
        assert not np.array_equal(hold.read(5), two)
        assert sorted(hold.damaged) == [1, 3]
    # a lone damaged image has nothing to stand in for it: still the error
    lone = tmp_path / "lone.png"
    shutil.copy(folder / "s.0003.png", lone)
    with open_clip(str(lone), missing="hold") as clip, pytest.raises(CorruptMedia) as err:
        clip.read(clip.first)
    assert "--missing" not in str(err.value)


def test_damaged_first_frame_is_reported_with_its_frame(tmp_path):
    paths = _exr_seq(tmp_path / "d", [10, 11])
    paths[0].write_bytes(paths[0].read_bytes()[:30])
    with pytest.raises(CorruptMedia) as err:
        SequenceReader(str(paths[1]))
    assert err.value.frame == 10 and "shot.0010.exr" in str(err.value)


def test_inconsistent_sequences(tmp_path):
    folder = tmp_path / "mixed"
    _exr_seq(folder, [1, 2])
    _exr_seq(folder, [3], size=(12, 16))
    r = SequenceReader(str(folder / "shot.0001.exr"))
    assert r.read(2).shape == (6, 8, 3)
    with pytest.raises(InconsistentSequence) as err:
        r.read(3)
    assert err.value.frame == 3 and "shot.0003.exr" in str(err.value) and "16x12" in str(err.value)
    v = np.zeros((6, 8), np.float32)
    write_exr(folder / "shot.0002.exr", {"R": v, "G": v, "B": v, "A": v})  # now RGBA
    with pytest.raises(InconsistentSequence, match="channel") as err:
        r.read(2)
    assert err.value.frame == 2


def test_named_layers_through_the_clip(tmp_path):
    folder = tmp_path / "layers"
    folder.mkdir()
    for f in (1, 2):
        v = np.full((4, 4), float(f), np.float32)
        write_exr(folder / f"beauty.{f}.exr", {"R": v, "G": v, "B": v, "depth.Z": v * 100})
    clip = open_clip(str(folder / "beauty.1.exr"))
    assert clip.info.layers == ("", "depth")
    z = clip.read(2, "depth")
    assert z.shape == (4, 4, 1) and float(z[0, 0, 0]) == 200.0
    assert clip.read(2).shape == (4, 4, 3)
    shutil.rmtree(folder)


def test_exr_without_unnamed_layer_defaults_to_the_colour_layer(tmp_path):
    v = _ramp(2, 2)
    path = write_exr(tmp_path / "named.exr", {"albedo.R": v, "albedo.G": v, "albedo.B": v, "beauty.R": v + 1,
                                              "beauty.G": v + 2, "beauty.B": v + 3, "depth.Z": v})
    px, names = read_image(path)
    assert names == ("beauty.R", "beauty.G", "beauty.B")
    assert float(px[0, 0, 2]) == 3.0


def test_absurd_png_header_is_refused_before_decoding(tmp_path):
    import zlib

    data = bytearray(write_oiio(tmp_path / "small.png", np.zeros((2, 2, 3), np.uint8), "uint8").read_bytes())
    assert data[12:16] == b"IHDR"
    struct.pack_into(">II", data, 16, 30000, 30000)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))  # keep the chunk CRC valid
    (tmp_path / "huge.png").write_bytes(bytes(data))
    with pytest.raises(CorruptMedia) as err:
        read_image(tmp_path / "huge.png")
    assert "huge.png" in str(err.value)


def test_images_larger_than_memory_are_refused(tmp_path, monkeypatch):
    import engine.media.readers.image as image

    path = write_exr(tmp_path / "m.exr", {"R": _ramp(64, 64), "G": _ramp(64, 64), "B": _ramp(64, 64)})
    monkeypatch.setattr(image, "_memory_budget", lambda: 1000)
    with pytest.raises(UnsupportedMedia, match="more than this machine can hold"):
        read_image(path)
    png = write_oiio(tmp_path / "m.png", np.zeros((64, 64, 3), np.uint8), "uint8")
    with pytest.raises(UnsupportedMedia):
        read_image(png)
