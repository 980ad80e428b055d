"""Cryptomatte: our MurmurHash3, float conversion, manifest, rank encoding and decoder — checked
against the renderers' sample files (V-Ray, Arnold, Nuke sidecar, UTF-8 names) and against
``cryptomatte-api`` as an independent decoder."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from engine.export import cryptomatte as cm
from tests.conftest import evaldata_path

SAMPLES = ("cryptomatte-samples", "sample_images")
FILES = ("cornellBox_CryptoWildcard.0001.exr", "debug_images/multichannel.exr",
         "debug_images/sidecar_manifest.exr", "debug_images/special_chars.exr")


# --- hashing --------------------------------------------------------------------------------


def test_murmurhash3_reference_vectors():
    # published MurmurHash3_x86_32 vectors (seed 0 unless given)
    assert cm.murmurhash3_32_py(b"") == 0
    assert cm.murmurhash3_32_py(b"", 1) == 0x514E28B7
    assert cm.murmurhash3_32_py(b"", 0xFFFFFFFF) == 0x81F16F39
    assert cm.murmurhash3_32_py(b"\xff\xff\xff\xff") == 0x76293B50
    assert cm.murmurhash3_32_py(b"\x21\x43\x65\x87") == 0xF55B516B
    assert cm.murmurhash3_32_py(b"\x21\x43\x65\x87", 0x5082EDEE) == 0x2362F9DE
    assert cm.murmurhash3_32_py(b"\x21\x43\x65") == 0x7E4A8634
    assert cm.murmurhash3_32_py(b"\x21\x43") == 0xA0F7B07A
    assert cm.murmurhash3_32_py(b"\x21") == 0x72661CF4
    assert cm.murmurhash3_32_py(b"Hello, world!", 1234) == 0xFAF6CDB3


def test_pure_python_and_accelerated_hash_agree():
    names = ["", "a", "ab", "abc", "abcd", "hero", "Villain guy", "равнина", "rect_[_top", "x" * 257]
    for n in names:
        assert cm.murmurhash3_32(n) == cm.murmurhash3_32_py(n.encode("utf-8"))


def test_values_stated_by_the_samples_readme():
    # ../shared/evaldata/cryptomatte-samples/SOURCE.md (checked there with a throw-away implementation)
    assert cm.hash_hex(cm.name_hash("default")) == "42c9679f"
    assert cm.hash_hex(cm.name_hash("ball_asset")) == "79b62f5e"
    assert cm.hash_hex(cm.name_hash("равнина")) == "9623511e"
    raw = cm.murmurhash3_32("flowerA.flowerA_petal1.:1065")
    assert cm.hash_hex(raw) == "7f8e5296" and cm.hash_hex(cm.adjust_hash(raw)) == "7f0e5296"


def test_float_conversion_never_makes_denormals_nan_or_inf():
    for h in (0, 1, 0x007FFFFF, 0x7F800000, 0x7FFFFFFF, 0xFF800001, 0x80000001, 0x12345678):
        f = cm.hash_to_float(cm.adjust_hash(h))
        assert np.isfinite(f) and abs(f) >= np.finfo(np.float32).tiny  # finite and normal
        exponent = (cm.adjust_hash(h) >> 23) & 0xFF
        assert exponent not in (0, 255)
        assert cm.float_to_hash(f) == cm.adjust_hash(h)  # the bits survive the float round trip


def test_metadata_key_and_manifest_format():
    assert cm.metadata_key("uCryptoWildcard") == "2ae4678"  # as in the V-Ray sample
    assert cm.metadata_key("crypto_object") == "f834d0a"  # as in the Arnold sample
    attrs = cm.header_attributes("CryptoObject", ["hero", "равнина"])
    key = cm.metadata_key("CryptoObject")
    assert attrs[f"cryptomatte/{key}/name"] == "CryptoObject"
    assert attrs[f"cryptomatte/{key}/hash"] == "MurmurHash3_32"
    assert attrs[f"cryptomatte/{key}/conversion"] == "uint32_to_float32"
    manifest = json.loads(attrs[f"cryptomatte/{key}/manifest"])
    assert manifest == {"hero": cm.hash_hex(cm.name_hash("hero")), "равнина": "9623511e"}
    assert "равнина" in attrs[f"cryptomatte/{key}/manifest"]  # UTF-8, not \\u escapes, like renderers


# --- rank encoding --------------------------------------------------------------------------


def test_rank_encoding_orders_by_coverage_and_keeps_soft_values():
    h, w = 4, 5
    a = np.zeros((h, w), np.float32)
    b = np.zeros((h, w), np.float32)
    a[1, 1], b[1, 1] = 0.25, 0.75  # b ranks first
    a[2, 2] = 1.0  # a alone
    b[3, 4] = 0.5
    ha, hb = cm.name_hash("a"), cm.name_hash("b")
    ranks = cm.encode_ranks([(ha, a), (hb, b)], (h, w))
    assert ranks.shape == (h, w, 12) and ranks.dtype == np.float32
    ids = ranks[:, :, 0::2].view(np.uint32)
    cov = ranks[:, :, 1::2]
    assert ids[1, 1, 0] == hb and cov[1, 1, 0] == 0.75 and ids[1, 1, 1] == ha and cov[1, 1, 1] == 0.25
    assert ids[2, 2, 0] == ha and cov[2, 2, 0] == 1.0 and cov[2, 2, 1] == 0
    assert ids[0, 0].tolist() == [0] * 6 and cov[0, 0].tolist() == [0] * 6
    for channel in range(12):  # planar storage: every channel is a contiguous plane
        assert ranks[:, :, channel].flags.c_contiguous


def test_rank_encoding_keeps_the_six_largest_and_bool_masks():
    shape = (2, 2)
    items = [(cm.name_hash(f"o{i}"), np.full(shape, (i + 1) / 10, np.float32)) for i in range(8)]
    ranks = cm.encode_ranks(items, shape, ranks=6)
    cov = ranks[0, 0, 1::2]
    assert np.allclose(cov, [0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    binary = cm.encode_ranks([(cm.name_hash("m"), np.eye(2, dtype=bool))], shape)
    assert binary[0, 0, 1] == 1.0 and binary[0, 1, 1] == 0.0


def test_overlapping_objects_keep_their_own_coverage():
    a = np.zeros((3, 3), bool)
    b = np.zeros((3, 3), bool)
    a[:, :2] = True
    b[:, 1:] = True  # column 1 is in both
    layer = cm.CryptomatteLayer("mem", "CryptoObject", "x", {"a": cm.name_hash("a"), "b": cm.name_hash("b")})
    layer.ranks = cm.encode_ranks([(cm.name_hash("a"), a), (cm.name_hash("b"), b)], (3, 3))
    layer.data_window = layer.display_window = (0, 0, 3, 3)
    assert np.array_equal(layer.matte("a"), a.astype(np.float32))
    assert np.array_equal(layer.matte("b"), b.astype(np.float32))


def test_manifest_refuses_colliding_names(monkeypatch):
    monkeypatch.setattr(cm, "name_hash", lambda name: 0x3F800000)
    from engine.errors import InputError

    with pytest.raises(InputError, match="same Cryptomatte id"):
        cm.manifest(["one", "two"])


# --- real files from renderers -------------------------------------------------------------------


def test_our_hash_matches_every_manifest_entry_of_the_bunny_manifest():
    path = evaldata_path(*SAMPLES, "sidecar_manifest", "bunny_CryptoObject_manifest.json")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    assert len(manifest) == 32166
    wrong = [n for n, v in manifest.items() if cm.hash_hex(cm.name_hash(n)) != v]
    assert wrong == []
    adjusted = [n for n in manifest if cm.adjust_hash(cm.murmurhash3_32(n)) != cm.murmurhash3_32(n)]
    assert len(adjusted) == 249  # the exponent fix-up cases are stored adjusted


@pytest.mark.parametrize("name", FILES)
def test_our_hash_matches_the_manifests_in_sample_exrs(name):
    layers = cm.read_cryptomattes(evaldata_path(*SAMPLES, name), pixels=False)
    assert layers
    for layer in layers.values():
        assert layer.manifest, layer.name
        assert {n: cm.hash_hex(cm.name_hash(n)) for n in layer.manifest} == \
               {n: cm.hash_hex(h) for n, h in layer.manifest.items()}
        assert layer.key == cm.metadata_key(layer.name)


def _raw_mattes(path, layer):
    """Mattes computed straight from the rank channels with the OpenEXR module (no code of ours)."""
    import OpenEXR

    f = OpenEXR.File(str(path), separate_channels=True)
    out = {}
    for part in f.parts:
        channels = part.channels
        for name, h in layer.manifest.items():
            target = struct.unpack("<f", struct.pack("<I", h))[0]
            acc = out.get(name)
            for rank_layer in range(3):
                for id_c, cov_c in (("R", "G"), ("B", "A"), ("red", "green"), ("blue", "alpha")):
                    idn, covn = f"{layer.name}{rank_layer:02d}.{id_c}", f"{layer.name}{rank_layer:02d}.{cov_c}"
                    if idn in channels and covn in channels:
                        ids = channels[idn].pixels.astype(np.float32)
                        cov = channels[covn].pixels.astype(np.float32)
                        part_matte = np.where(ids == np.float32(target), cov, 0).astype(np.float32)
                        acc = part_matte if acc is None else acc + part_matte
            if acc is not None:
                out[name] = acc
    return out


@pytest.mark.parametrize("name", FILES)
def test_our_decoder_extracts_each_named_matte(name):
    path = evaldata_path(*SAMPLES, name)
    api = pytest.importorskip("cryptomatte_api", reason="cryptomatte-api (dev extra) is the independent decoder")
    theirs = {m.metadata().name(): m for m in api.Cryptomatte.load(str(path))}
    ours = cm.read_cryptomattes(path)
    assert set(ours) == set(theirs)
    for type_name, layer in ours.items():
        assert layer.rank_count == 6
        raw = _raw_mattes(path, layer)
        present = layer.id_coverage()
        for entry, h in layer.manifest.items():
            matte = layer.matte(entry, window="data")
            assert np.array_equal(matte, theirs[type_name].mask(entry)), (type_name, entry)
            assert np.allclose(matte, raw[entry], atol=1e-6), (type_name, entry)
            assert abs(float(matte.sum(dtype=np.float64)) - present.get(h, 0.0)) < 1e-3
        # display window: the data window's pixels at their offset
        dx, dy, dw, dh = layer.data_window
        disp = layer.matte(next(iter(layer.manifest)))
        assert disp.shape == (layer.display_window[3], layer.display_window[2])
        assert np.array_equal(disp[dy - layer.display_window[1]:dy - layer.display_window[1] + dh,
                                   dx - layer.display_window[0]:dx - layer.display_window[0] + dw],
                              layer.matte(next(iter(layer.manifest)), window="data"))


def test_wildcard_and_utf8_names_extract_exactly():
    vray = cm.read_cryptomattes(evaldata_path(*SAMPLES, "cornellBox_CryptoWildcard.0001.exr"))["uCryptoWildcard"]
    names = [n for n in vray.manifest if any(c in n for c in "[]*?")]
    assert len(names) >= 4
    for n in names:  # names are literal: no glob or regex meaning
        assert vray.matte(n).sum() > 0
    both = vray.matte(names[:2])
    assert np.allclose(both, vray.matte(names[0]) + vray.matte(names[1]))
    special = cm.read_cryptomattes(evaldata_path(*SAMPLES, "debug_images", "special_chars.exr"))["special_chars"]
    assert special.matte("равнина").sum() > 0
    assert special.matte('name containing a "quote"  ').sum() > 0  # trailing spaces kept


def test_sidecar_manifest_is_found_next_to_the_file():
    layer = cm.read_cryptomattes(evaldata_path(*SAMPLES, "debug_images", "sidecar_manifest.exr"))["crypto_asset"]
    assert layer.manifest["leftAsset"] == 0xCE406A47 and layer.manifest["default"] == 0x42C9679F
    assert any(c.endswith(".red") for c in layer.channels)
