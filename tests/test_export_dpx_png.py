"""DPX (10/16-bit, log/ADX/linear/Rec.709) and PNG/TIFF sequences, read back with OpenImageIO and
the engine's own DPX parser; naming templates and timecode arithmetic."""

from __future__ import annotations

import errno
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from engine.errors import InputError, OutputError
from engine.export import dpx as dpx_mod
from engine.export.aovs import timecode_add
from engine.export.deliver import export_session
from engine.export.naming import NameTemplate
from engine.media.readers.image import probe_image, read_image
from tests.test_export_exr import make_session, oiio_spec


def oiio_pixels(path: Path) -> np.ndarray:
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(str(path))
    try:
        spec = inp.spec()
        return np.asarray(inp.read_image(oiio.FLOAT), np.float32).reshape(spec.height, spec.width, spec.nchannels)
    finally:
        inp.close()


# --- timecode --------------------------------------------------------------------------------------


def test_timecode_arithmetic_non_drop_and_drop_frame():
    assert timecode_add("01:00:00:00", 0, Fraction(24)) == "01:00:00:00"
    assert timecode_add("01:00:00:23", 1, Fraction(24)) == "01:00:01:00"
    assert timecode_add("00:59:59:23", 1, Fraction(24000, 1001)) == "01:00:00:00"  # 23.976 counts at 24
    assert timecode_add("23:59:59:24", 1, Fraction(25)) == "00:00:00:00"  # wraps at 24 h
    assert timecode_add("00:00:00:05", -5, Fraction(30)) == "00:00:00:00"
    df = Fraction(30000, 1001)
    assert timecode_add("00:00:59:29", 1, df, drop_frame=True) == "00:01:00:02"  # labels ;00 ;01 dropped
    assert timecode_add("00:09:59:29", 1, df, drop_frame=True) == "00:10:00:00"  # not every tenth minute
    assert timecode_add("00:00:00:00", 17982, df, drop_frame=True) == "00:10:00:00"  # 10 min of 29.97 frames
    for start in ("00:00:58:10", "00:01:00:02", "10:09:59:29", "03:17:42:15"):
        for n in (1, 2, 1800, 17983, 123457):
            assert timecode_add(timecode_add(start, n, df, True), -n, df, True) == start
    assert timecode_add("00:00:59:59", 1, Fraction(60000, 1001), drop_frame=True) == "00:01:00:04"


def test_smpte_packed_bcd():
    assert dpx_mod.pack_timecode("01:02:03:04") == 0x01020304
    assert dpx_mod.pack_timecode("23:59:59:29", drop_frame=True) == 0x23595929 | 0x40


# --- naming -----------------------------------------------------------------------------------------


def test_name_template_tokens():
    t = NameTemplate("{layer}/{shot}_####.{ext}")
    assert t.render(shot="sh010", layer="hero", frame=1001, ext="png") == "hero/sh010_1001.png"
    assert t.pattern(shot="sh010", layer="hero", ext="png") == "hero/sh010_####.png"
    t = NameTemplate("{shot}_{object}.{frame:06d}.{ext}")
    assert t.render(shot="a", layer="b", frame=7, ext="tif") == "a_b.000007.tif" and t.per_layer
    assert NameTemplate("{shot}.%05d.{ext}").render(shot="a", layer="x", frame=12, ext="dpx") == "a.00012.dpx"
    assert NameTemplate("{shot}.@@@@.{ext}").pattern(shot="a", layer="x", ext="exr") == "a.####.exr"
    for bad, message in (("{shot}.{ext}", "no frame"), ("{who}_####", "unknown token"), ("../{shot}.####", "outside"),
                         ("{shot.__class__}_####", "unknown token"), ("/abs/{shot}.####", "outside")):
        with pytest.raises(InputError, match=message):
            NameTemplate(bad).render(shot="s", layer="l", frame=1, ext="e")


# --- DPX -------------------------------------------------------------------------------------------------


def test_dpx_mattes_and_log_plate_with_correct_header(tmp_path):
    s = make_session(tmp_path)
    out = tmp_path / "dpx"
    rep = export_session(s, out, format="dpx", layers=["rgba", "objects", "matte"])
    assert rep.frames_written == 4 and rep.files_written == 16
    assert sorted(p.name for p in out.iterdir()) == ["hero", "matte", "rgba", "villain"]
    hero_path = out / "hero" / "shot010_1002.dpx"
    h = probe_image(hero_path)  # the engine's own parser
    a = h.attributes
    assert a["dpx:byte_order"] == "big" and a["dpx:version"] == "V2.0"
    assert a["dpx:descriptor"] == 50 and a["dpx:bit_depth"] == 10 and a["dpx:packing"] == 1
    assert a["dpx:transfer"] == 2 and a["dpx:colorimetric"] == 2  # mattes are linear data
    assert a["fps"] == "24000/1001" and a["timecode"] == "01:00:00:01"
    assert a["dpx:declared_file_size"] == hero_path.stat().st_size
    spec = oiio_spec(hero_path)  # and OpenImageIO's
    assert spec.getattribute("dpx:Transfer") == "Linear" and spec.getattribute("dpx:ImageDescriptor") == "RGB"
    assert spec.getattribute("dpx:FramePosition") == 1002 and spec.getattribute("dpx:SequenceLength") == 4
    assert spec.getattribute("dpx:TimeCode") == "01:00:00:01"
    assert abs(spec.getattribute("dpx:FrameRate") - 24000 / 1001) < 1e-4
    assert spec.getattribute("oiio:BitsPerSample") == 10
    m = s.mask(s.object_by_name("hero").id, 1002).astype(np.float32)
    assert np.array_equal(read_image(hero_path)[0], np.repeat(m[:, :, None], 3, axis=2))
    assert np.array_equal(oiio_pixels(hero_path), np.repeat(m[:, :, None], 3, axis=2))
    plate = out / "rgba" / "shot010_1002.dpx"
    pa = probe_image(plate).attributes
    assert pa["dpx:transfer"] == 1 and pa["dpx:colorimetric"] == 1  # printing density (Cineon log)
    assert oiio_spec(plate).getattribute("dpx:Transfer") == "Printing density"
    from engine.media.colour import ColourTransform

    want = ColourTransform("ACEScg", "Cineon Log").apply(s.clip.read(1002))
    got = read_image(plate)[0]
    assert np.abs(np.rint(got * 1023) - np.rint(np.clip(want, 0, 1) * 1023)).max() <= 1
    # the engine reads its own delivery back as Cineon log, with the plate's rate and timecode
    from engine.media.clip import open_clip

    clip = open_clip(str(out / "rgba" / "shot010_####.dpx"))
    assert clip.info.colourspace == "Cineon Log" and clip.info.fps == Fraction(24000, 1001)
    assert clip.info.timecode == "01:00:00:00" and clip.info.first == 1001


@pytest.mark.parametrize("transfer,bits,codes,oiio_name", [
    ("adx", 16, (13, 13), "ADX"), ("linear", 10, (2, 6), "Linear"), ("rec709", 16, (6, 6), "ITU-R 709-4")])
def test_dpx_plate_transfers(tmp_path, transfer, bits, codes, oiio_name):
    from engine.export.dpx import TRANSFERS
    from engine.media.colour import ColourTransform

    s = make_session(tmp_path, names=("hero",))
    out = tmp_path / "dpx"
    export_session(s, out, format="dpx", layers=["rgba"], transfer=transfer, bit_depth=bits, frames=(1001, 1001))
    path = out / "rgba" / "shot010_1001.dpx"
    a = probe_image(path).attributes
    assert (a["dpx:transfer"], a["dpx:colorimetric"], a["dpx:bit_depth"]) == (*codes, bits)
    assert a["dpx:packing"] == (1 if bits == 10 else 0)
    assert oiio_spec(path).getattribute("dpx:Transfer") == oiio_name
    space = TRANSFERS[transfer][1 if bits == 16 else 0]
    want = np.clip(ColourTransform("ACEScg", space).apply(s.clip.read(1001)), 0, 1)
    top = (1 << bits) - 1
    assert np.abs(np.rint(read_image(path)[0] * top) - np.rint(want * top)).max() <= 1
    assert np.allclose(oiio_pixels(path), read_image(path)[0], atol=1.5 / top)


def test_dpx_16_bit_and_options(tmp_path):
    s = make_session(tmp_path, names=("hero",))
    export_session(s, tmp_path / "d16", format="dpx", bit_depth=16)
    a = probe_image(tmp_path / "d16" / "hero" / "shot010_1001.dpx").attributes
    assert a["dpx:bit_depth"] == 16 and a["dpx:packing"] == 0
    for kw, message in (({"bit_depth": 12}, "10 \\(default\\), 16 or 8"), ({"transfer": "pq"}, "unknown DPX transfer"),
                        ({"compression": "zip"}, "not compressed"),
                        ({"layers": ["crypto"]}, "cannot be written to DPX"),
                        ({"multipart": True}, "only applies to EXR")):
        with pytest.raises(InputError, match=message):
            export_session(s, tmp_path / "bad", format="dpx", **kw)


def test_dpx_writer_round_trips_odd_widths_at_every_depth(tmp_path):
    rng = np.random.default_rng(3)
    for channels in (1, 3, 4):
        for bits in (8, 10, 16):
            for width in (5, 6, 7):
                px = rng.random((5, width, channels)).astype(np.float32)
                path = tmp_path / f"x{channels}{bits}{width}.dpx"
                dpx_mod.write_dpx(path, px, bits, dpx_mod.DpxInfo())
                top = (1 << bits) - 1
                want = np.rint(px * top)
                assert np.array_equal(np.rint(read_image(path)[0] * top), want), (channels, bits, width)
                if (width * channels) % 3 == 0 or bits != 10:  # OpenImageIO misreads a line's last partial word
                    assert np.array_equal(np.rint(oiio_pixels(path) * top), want), (channels, bits, width)


def test_dpx_frame_is_atomic_when_the_disk_fills(tmp_path, monkeypatch):
    s = make_session(tmp_path)
    out = tmp_path / "dpx"
    real = dpx_mod._write_bytes
    calls = {"n": 0}

    def flaky(path, chunks):
        calls["n"] += 1
        if calls["n"] == 6:  # frame 1002, its second file (hero, matte, villain, in that order)
            Path(path).write_bytes(b"SDPX" + b"\0" * 64)
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, chunks)

    monkeypatch.setattr(dpx_mod, "_write_bytes", flaky)
    with pytest.raises(OutputError, match="disk is full") as info:
        export_session(s, out, format="dpx")
    assert info.value.frame == 1002
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["hero/shot010_1001.dpx", "matte/shot010_1001.dpx", "villain/shot010_1001.dpx"]
    monkeypatch.setattr(dpx_mod, "_write_bytes", real)
    rep = export_session(s, out, format="dpx")
    assert rep.frames_skipped == 1 and rep.frames_written == 3


# --- PNG / TIFF --------------------------------------------------------------------------------------------


def test_png_mattes_8_and_16_bit_with_shot_naming(tmp_path):
    s = make_session(tmp_path)
    hero = s.object_by_name("hero")
    for bits, top in ((8, 255), (16, 65535)):
        out = tmp_path / f"png{bits}"
        rep = export_session(s, out, format="png", bit_depth=bits)
        assert rep.layers == ["objects", "matte"]
        assert sorted(p.name for p in (out / "hero").iterdir()) == [f"shot010_{f}.png" for f in range(1001, 1005)]
        spec = oiio_spec(out / "hero" / "shot010_1003.png")
        assert spec.nchannels == 1 and str(spec.format) == ("uint8" if bits == 8 else "uint16")
        px = oiio_pixels(out / "hero" / "shot010_1003.png")[:, :, 0]
        assert np.array_equal(np.rint(px * top), s.mask(hero.id, 1003) * float(top))
        assert export_session(s, out, format="png", bit_depth=bits).frames_skipped == 4  # resumable


def test_tiff_float_and_custom_template(tmp_path):
    s = make_session(tmp_path)
    s.depth = lambda frame: np.full(s.shape, 3.5, np.float32)
    out = tmp_path / "tif"
    rep = export_session(s, out, format="tiff", bit_depth=32, layers=["rgba", "objects", "depth", "id"],
                         template="{shot}_{object}/{shot}_{object}.{frame:05d}.{ext}", shot="sh 010")
    assert rep.patterns["hero"].endswith("sh_010_hero/sh_010_hero.#####.tif")
    depth = out / "sh_010_depth" / "sh_010_depth.01002.tif"
    assert str(oiio_spec(depth).format) == "float" and np.all(oiio_pixels(depth) == 3.5)
    plate = oiio_pixels(out / "sh_010_rgba" / "sh_010_rgba.01002.tif")
    assert np.allclose(plate, s.clip.read(1002), atol=1e-6)  # float TIFF keeps the plate's values
    ids = oiio_pixels(out / "sh_010_object_id" / "sh_010_object_id.01002.tif")[:, :, 0]
    assert np.array_equal(ids, s.id_matte(1002).astype(np.float32))
    assert oiio_spec(tmp_path / "tif" / "sh_010_hero" / "sh_010_hero.01001.tif").getattribute("compression") == "zip"


def test_object_ids_are_raw_integers_in_png(tmp_path):
    s = make_session(tmp_path)
    export_session(s, tmp_path / "ids", format="png", layers=["id"], bit_depth=16)
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(str(tmp_path / "ids" / "object_id" / "shot010_1002.png"))
    raw = np.asarray(inp.read_image(oiio.UINT16))[:, :, 0]
    inp.close()
    assert np.array_equal(raw, s.id_matte(1002))


def test_image_formats_refuse_what_they_cannot_hold(tmp_path):
    s = make_session(tmp_path)
    s.depth = lambda frame: np.ones(s.shape, np.float32)
    with pytest.raises(InputError, match="cannot be written to PNG"):
        export_session(s, tmp_path / "x", format="png", layers=["crypto"])
    with pytest.raises(InputError, match="16-bit TIFF cannot keep"):
        export_session(s, tmp_path / "x", format="tiff", bit_depth=16, layers=["depth"])
    with pytest.raises(InputError, match="PNG is written at 8 or 16 bits"):
        export_session(s, tmp_path / "x", format="png", bit_depth=32)
    with pytest.raises(InputError, match="to the same file"):
        export_session(s, tmp_path / "x", format="png", template="{shot}_####.{ext}")
    with pytest.raises(InputError, match="no layer 'sparkles'"):
        export_session(s, tmp_path / "x", format="png", layers=["sparkles"])
