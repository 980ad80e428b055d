"""VideoReader (PyAV): probing, frame-accurate random access, colour, errors.

Every clip is generated here with PyAV (tiny sizes, a few dozen frames). Frames carry their
own index as 8 white/grey blocks (bit k of the index → block k bright) so a decoded frame's
identity is checked despite lossy compression.
"""

from __future__ import annotations

import random
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from engine.errors import CorruptMedia, FrameOutOfRange, MediaNotFound, UnsupportedMedia  # noqa: E402
from engine.media.readers.video import VideoReader  # noqa: E402

NTSC = Fraction(24000, 1001)
W, H = 64, 48


# --- clip generation -----------------------------------------------------------------------


def pattern(i: int, w: int = W, h: int = H) -> np.ndarray:
    """uint8 RGB frame: the index's 8 bits as blocks in the top half, a red ramp below."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = (40, 80, 120)
    bw = w // 8
    for b in range(8):
        if (i >> b) & 1:
            img[: h // 2, b * bw:(b + 1) * bw] = (230, 230, 230)
    img[h // 2:, :, 0] = (np.arange(w) * 255 // w)[None, :]
    return img


def identity(px: np.ndarray, w: int = W, h: int = H) -> int:
    """The frame index read back from the blocks (robust to compression)."""
    bw = w // 8
    value = 0
    for b in range(8):
        if px[2: h // 2 - 2, b * bw + 2:(b + 1) * bw - 2, :3].mean() > 0.6:
            value |= 1 << b
    return value


def write_clip(path: Path, codec: str, n: int = 24, *, w: int = W, h: int = H, rate=NTSC, pix_fmt: str = "yuv420p",
               options: dict | None = None, container_options: dict | None = None, metadata: dict | None = None,
               bit_rate: int | None = None, frames: list[np.ndarray] | None = None) -> Path:
    with av.open(str(path), "w", options=container_options or {}) as c:
        if metadata:
            c.metadata.update(metadata)
        s = c.add_stream(codec, rate=rate)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        if options:
            s.options = options
        if bit_rate:
            s.bit_rate = bit_rate
        for i in range(n):
            img = frames[i] if frames is not None else pattern(i, w, h)
            fmt = "rgba" if img.shape[2] == 4 else "rgb24"
            for p in s.encode(av.VideoFrame.from_ndarray(img, format=fmt)):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def write_vfr(path: Path, codec: str = "ffv1", pix_fmt: str = "bgr0") -> list[int]:
    """12 frames with irregular timestamps (ms): 100 ms, then 40 ms, 40 ms, repeating."""
    stamps = []
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = W, H, pix_fmt
        s.codec_context.time_base = Fraction(1, 1000)
        t = 0
        for i in range(12):
            f = av.VideoFrame.from_ndarray(pattern(i), format="rgb24")
            f.pts, f.time_base = t, Fraction(1, 1000)
            stamps.append(t)
            t += 100 if i % 3 == 0 else 40
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return stamps


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("video")
    return {
        "h264": write_clip(d / "bframes.mp4", "libx264", 24, options={"bf": "2", "g": "8"},
                           metadata={"timecode": "01:00:00:00"}),
        "vp9": write_clip(d / "vp9.webm", "libvpx-vp9", 24, options={"g": "10"}),
        "avi": write_clip(d / "mpeg4.avi", "mpeg4", 30, options={"bf": "2", "g": "8"}, bit_rate=2_000_000),
        "ffv1": write_clip(d / "lossless.mkv", "ffv1", 24, pix_fmt="bgr0"),
        "opengop": write_clip(d / "opengop.mkv", "libx264", 40,
                              options={"x264-params": "open-gop=1:keyint=10:bframes=3:log-level=none"}),
        "mpegps": write_clip(d / "mpeg2.mpg", "mpeg2video", 40, rate=25, options={"bf": "2", "g": "9"},
                             bit_rate=2_000_000),
    }


# --- probing and pixels ----------------------------------------------------------------------


def test_h264_mp4_with_bframes(clips):
    path = clips["h264"]
    with av.open(str(path)) as c:  # the file really has B-frames: decode order != presentation order
        pts = [p.pts for p in c.demux(video=0) if p.size]
    assert pts != sorted(pts)
    with VideoReader(path) as r:
        i = r.info
        assert (i.kind, i.format, i.first, i.last, i.width, i.height) == ("video", "mp4", 0, 23, W, H)
        assert i.fps == NTSC and isinstance(i.fps, Fraction) and i.fps_source == "file"
        assert i.channels == ("R", "G", "B") and i.pixel_type == "uint8"
        assert i.codec.startswith("h264") and not i.vfr
        assert i.timecode == "01:00:00:00"
        for k in range(24):
            px = r.read(k)
            assert px.dtype == np.float32 and px.shape == (H, W, 3)
            assert 0.0 <= px.min() and px.max() <= 1.0
            assert identity(px) == k
            assert np.abs(px * 255.0 - pattern(k)).mean() < 4.0


def test_prores_4444_alpha(tmp_path):
    frames = []
    for k in range(8):
        rgba = np.dstack([pattern(k), np.full((H, W, 1), 255, np.uint8)])
        rgba[:, W // 2:, 3] = 0  # binary alpha: right half transparent
        frames.append(rgba)
    path = write_clip(tmp_path / "alpha.mov", "prores_ks", 8, pix_fmt="yuva444p10le", options={"profile": "4"},
                      frames=frames)
    with VideoReader(path) as r:
        i = r.info
        assert i.channels == ("R", "G", "B", "A")
        assert i.codec == "prores 4444" and i.pixel_type in ("uint10", "uint12")
        assert i.fps == NTSC and i.last == 7
        for k in (5, 0, 7, 3):
            px = r.read(k)
            assert px.shape == (H, W, 4)
            assert np.array_equal(px[..., 3], frames[k][..., 3] / 255.0)  # binary alpha is exact
            assert np.abs(px[..., :3] * 255.0 - frames[k][..., :3]).max() <= 3.0
            assert identity(px) == k


def test_vp9_webm(clips):
    with VideoReader(clips["vp9"]) as r:
        assert r.info.fps == NTSC and r.info.last == 23 and r.info.format == "webm"
        assert r.info.codec.startswith("vp9") and not r.info.vfr
        assert [identity(r.read(k)) for k in range(24)] == list(range(24))


def test_avi_mpeg4(clips):
    with VideoReader(clips["avi"]) as r:
        assert (r.info.format, r.info.last, r.info.fps) == ("avi", 29, NTSC)
        assert [identity(r.read(k)) for k in range(30)] == list(range(30))


def test_ffv1_mkv_is_lossless(clips):
    with VideoReader(clips["ffv1"]) as r:
        assert r.info.fps == NTSC and r.info.last == 23 and r.info.codec == "ffv1"
        for k in (0, 13, 23):
            assert np.array_equal(np.round(r.read(k) * 255.0).astype(np.uint8), pattern(k))


def test_first_frame_override(clips):
    with VideoReader(clips["ffv1"], first_frame=1001) as r:
        assert (r.info.first, r.info.last) == (1001, 1024)
        assert np.array_equal(np.round(r.read(1005) * 255).astype(np.uint8), pattern(4))
        with pytest.raises(FrameOutOfRange):
            r.read(1000)


def test_dnxhr(tmp_path):
    path = write_clip(tmp_path / "dnx.mov", "dnxhd", 4, w=256, h=144, rate=24, pix_fmt="yuv422p",
                      options={"profile": "dnxhr_lb"})
    with VideoReader(path) as r:
        assert "dnxhr" in r.info.codec and r.info.fps == 24 and r.info.last == 3
        px = r.read(2)
        assert px.shape == (144, 256, 3) and identity(px, 256, 144) == 2


# --- frame-accurate random access ------------------------------------------------------------


@pytest.mark.parametrize("name", ["h264", "vp9", "avi", "ffv1", "opengop", "mpegps"])
def test_random_access_equals_sequential(clips, name):
    with VideoReader(clips[name]) as r:
        n = r.info.last + 1
        sequential = [r.read(k) for k in range(n)]
        assert [identity(px) for px in sequential] == list(range(n))
        order = list(range(n)) * 2 + [n - 1, 0, n - 1]
        random.Random(name).shuffle(order)
        for k in order:
            assert np.array_equal(r.read(k), sequential[k]), f"{name}: frame {k} by random access differs"


def test_constant_rate_mp4_timing_comes_from_the_index(clips):
    with VideoReader(clips["h264"]) as r:
        assert r._pts_from_index  # no packet scan was needed
        good = list(r._pts)
        # simulate an index whose timing does not match the pictures: the reader notices
        # on the next decoded picture, scans the packets and still returns the right frame
        r._pts = [p + 7 for p in good]
        r._frames_iter, r._last_index = None, None
        assert identity(r.read(13)) == 13
        assert r._pts == good and not r._pts_from_index
        assert [identity(r.read(k)) for k in (3, 23, 4)] == [3, 23, 4]


class _SeekCounter:
    def __init__(self, container):
        self._c, self.seeks = container, 0

    def seek(self, *a, **kw):
        self.seeks += 1
        return self._c.seek(*a, **kw)

    def __getattr__(self, name):
        return getattr(self._c, name)


def test_sequential_playback_does_not_seek(clips):
    with VideoReader(clips["h264"]) as r:
        r.read(0)
        spy = _SeekCounter(r._container)
        r._container = spy
        for k in range(1, 24):
            assert identity(r.read(k)) == k
        assert spy.seeks == 0
        r.read(2)  # backwards needs a seek
        assert spy.seeks >= 1


def test_concurrent_reads_are_safe(clips):
    with VideoReader(clips["h264"]) as r:
        errors: list[str] = []

        def worker(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(15):
                k = rng.randrange(24)
                if identity(r.read(k)) != k:
                    errors.append(f"frame {k}")

        threads = [threading.Thread(target=worker, args=(s,)) for s in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors


# --- timing, timecode, geometry, colour ------------------------------------------------------


def test_vfr_detected(tmp_path, clips):
    stamps = write_vfr(tmp_path / "vfr.mkv")
    with VideoReader(tmp_path / "vfr.mkv") as r:
        assert r.info.vfr is True and r.info.last == 11
        assert [r.frame_pts(k) for k in range(12)] == stamps
        assert [identity(r.read(k)) for k in (7, 2, 11, 0)] == [7, 2, 11, 0]
    write_vfr(tmp_path / "vfr.mp4", "libx264", "yuv420p")
    with VideoReader(tmp_path / "vfr.mp4") as r:
        assert r.info.vfr is True and r.info.last == 11
        assert [identity(r.read(k)) for k in (5, 11, 1)] == [5, 11, 1]
    for name in ("h264", "vp9", "ffv1", "avi"):  # 1 ms Matroska rounding is still constant rate
        with VideoReader(clips[name]) as r:
            assert r.info.vfr is False, name


def test_timecode_in_mov(tmp_path):
    path = write_clip(tmp_path / "tc.mov", "mpeg4", 3, rate=24, metadata={"timecode": "01:02:03:04"})
    with VideoReader(path) as r:
        assert r.info.timecode == "01:02:03:04" and r.info.first == 0


def test_coded_size_is_cropped_to_display_size(tmp_path):
    # H.264 codes 16-pixel macroblocks: 40 lines are coded as 48 and cropped (like 1088 -> 1080)
    path = write_clip(tmp_path / "crop.mp4", "libx264", 3, w=64, h=40)
    with VideoReader(path) as r:
        assert (r.info.width, r.info.height) == (64, 40)
        assert r.info.metadata["coded_height"] == 48
        assert r.read(1).shape == (40, 64, 3)


def _flat_colours(w: int, h: int) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    q = w // 4
    img[:, :q] = (220, 30, 30)
    img[:, q:2 * q] = (30, 220, 30)
    img[:, 2 * q:3 * q] = (30, 30, 220)
    img[:, 3 * q:] = (200, 200, 40)
    return img


def _write_yuv(path: Path, img: np.ndarray, matrix: str, full: bool, tag: int | None) -> None:
    """ffv1 yuv444p (lossless), converted with ``matrix``; ``tag`` = AVColorSpace written, None = untagged."""
    h, w = img.shape[:2]
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=24)
        s.width, s.height, s.pix_fmt = w, h, "yuv444p"
        if tag is not None:
            s.codec_context.colorspace = tag
            s.codec_context.color_range = 2 if full else 1
        for _ in range(2):
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(
                format="yuv444p", src_colorspace=matrix, dst_colorspace=matrix,
                dst_color_range="JPEG" if full else "MPEG")
            f.colorspace = 2 if tag is None else tag
            f.color_range = 0 if tag is None else (2 if full else 1)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


@pytest.mark.parametrize("matrix,full,tag,size,meta", [
    ("ITU709", False, 1, (64, 48), ("bt709", "tv")),
    ("ITU709", True, 1, (64, 48), ("bt709", "pc")),
    ("ITU601", False, 6, (64, 48), ("smpte170m", "tv")),
    ("ITU601", False, None, (64, 48), ("unknown", "unknown")),  # untagged SD -> BT.601
    ("ITU709", False, None, (1280, 720), ("unknown", "unknown")),  # untagged HD -> BT.709
])
def test_yuv_matrix_and_range_are_honoured(tmp_path, matrix, full, tag, size, meta):
    img = _flat_colours(*size)
    _write_yuv(tmp_path / "m.mkv", img, matrix, full, tag)
    with VideoReader(tmp_path / "m.mkv") as r:
        assert (r.info.metadata["colorspace"], r.info.metadata["color_range"]) == meta
        assert {"color_primaries", "color_trc"} <= set(r.info.metadata)
        err = np.abs(r.read(1) * 255.0 - img).max()
        assert err <= 1.5, f"{matrix} full={full} tag={tag}: max error {err:.1f}/255"


# --- errors ----------------------------------------------------------------------------------


def test_nonexistent(tmp_path):
    with pytest.raises(MediaNotFound) as exc:
        VideoReader(tmp_path / "nope.mp4")
    assert "nope.mp4" in str(exc.value)


def test_empty_file(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(CorruptMedia, match="empty"):
        VideoReader(tmp_path / "empty.mp4")


def test_text_file_named_mp4(tmp_path):
    (tmp_path / "notes.mp4").write_text("these are not pictures\n" * 20)
    with pytest.raises(CorruptMedia) as exc:
        VideoReader(tmp_path / "notes.mp4")
    assert "notes.mp4" in str(exc.value)


def _truncate(src: Path, dst: Path, fraction: float = 2 / 3) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def test_truncated_files(tmp_path, clips):
    # MP4 with its index (moov) at the end: the index is lost
    with pytest.raises(CorruptMedia):
        VideoReader(_truncate(clips["h264"], tmp_path / "cut.mp4"))
    # MOV with the index first: the index lists frames that are not there
    fast = write_clip(tmp_path / "fast.mov", "mpeg4", 24, rate=24, container_options={"movflags": "faststart"})
    with pytest.raises(CorruptMedia, match="truncated"):
        VideoReader(_truncate(fast, tmp_path / "cut.mov"))
    # Matroska: the stream's DURATION tag outlasts the packets
    with pytest.raises(CorruptMedia, match="truncated"):
        VideoReader(_truncate(clips["opengop"], tmp_path / "cut.mkv"))


def test_audio_only_is_unsupported(tmp_path):
    path = tmp_path / "sound.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=48000)
        for i in range(4):
            fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            fr.sample_rate, fr.pts = 48000, i * 1024
            for p in s.encode(fr):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    with pytest.raises(UnsupportedMedia, match="no video stream") as exc:
        VideoReader(path)
    assert exc.value.hint


def test_frame_out_of_range_and_layers(clips):
    with VideoReader(clips["ffv1"]) as r:
        for bad in (-1, 24, 10_000):
            with pytest.raises(FrameOutOfRange):
                r.read(bad)
        with pytest.raises(UnsupportedMedia):
            r.read(0, layer="depth")
        assert r.layer_channels(None) == ("R", "G", "B")


def test_damaged_frame_names_the_frame(tmp_path):
    path = write_clip(tmp_path / "pr.mov", "prores_ks", 12, rate=24, pix_fmt="yuv422p10le", options={"profile": "2"})
    with av.open(str(path)) as c:
        packets = [(p.pos, p.size) for p in c.demux(video=0) if p.size]
    data = bytearray(path.read_bytes())
    pos, size = packets[6]
    data[pos:pos + size] = bytes(size)  # zero one picture
    bad = tmp_path / "bad.mov"
    bad.write_bytes(bytes(data))
    with VideoReader(bad) as r:
        assert identity(r.read(5)) == 5
        with pytest.raises(CorruptMedia) as exc:
            r.read(6)
        assert exc.value.frame == 6 and "bad.mov" in str(exc.value)
        assert identity(r.read(7)) == 7  # the reader recovers
        assert identity(r.read(2)) == 2


# --- through open_clip -----------------------------------------------------------------------


def test_open_clip_movie(clips):
    from engine.media.clip import open_clip

    with open_clip(clips["h264"], cache_bytes=0) as clip:
        assert clip.info.kind == "video" and clip.info.first == 0 and clip.info.last == 23
        assert clip.info.fps == NTSC and clip.info.colourspace
        assert identity(clip.read(17)) == 17
        assert clip.read_rgb(3).shape == (H, W, 3)
        assert clip.info.to_dict()["fps"] == {"num": 24000, "den": 1001, "value": 23.976024}
    with open_clip(clips["ffv1"], in_point=5, out_point=9) as clip:
        assert list(clip.frames) == [5, 6, 7, 8, 9]
        assert identity(clip.read(9)) == 9
