"""Movie reader over PyAV (FFmpeg): MP4, MOV, AVI, WebM, MKV, MXF and friends.

:class:`VideoReader` implements :class:`engine.media.types.FrameReader` for movie files.

Frame numbers
    A movie's frames are numbered ``0 .. N-1`` in **presentation order** by default; pass
    ``first_frame=1001`` to number them like a plate. The timecode is reported in
    :attr:`ClipInfo.timecode` but does not move the frame numbers (a timecode is a label,
    and 0-based numbers are what editors and ``ffmpeg -vf select`` use).

Frame accuracy
    When the reader is built it learns every frame's presentation timestamp (pts) and keeps
    them sorted: frame ``k`` is the ``k``-th of them. This is exact with B-frames, edit
    lists (discarded packets are not frames) and variable frame rate. The timestamps come
    from the container index when it lists every frame and is trustworthy (intra-only
    codecs such as ProRes/DNxHR; constant-rate MP4/MOV), so a 100 GB ProRes file opens
    instantly; otherwise from one demux pass over the file **without decoding** (a packet
    scan; Matroska/WebM, AVI, MPEG-TS/PS, variable-rate MP4). Index-derived timing is
    checked against the decoded pictures and replaced by a scan if it disagrees.
    ``read(k)`` seeks to the keyframe before ``k`` and decodes forward to the picture whose
    timestamp is ``pts[k]``; a request for the next frames (or a few frames ahead)
    continues the open decoder without seeking. Pictures decoded after a seek are checked
    against the known timestamps; demuxers whose timestamps change after a seek (MPEG-PS)
    fall back to decoding from the start (correct, slower: transcode such files).

Pixels
    float32 ``(H, W, 3)`` or ``(H, W, 4)`` (alpha codecs such as ProRes 4444) in ``0..1``,
    the display size (1920x1088 coded → 1920x1080). 8-bit streams decode through
    ``rgb24``/``rgba``, deeper ones through ``rgb48le``/``rgba64le``. The YUV→RGB matrix
    and range come from the stream (BT.709 assumed for untagged HD, BT.601 for untagged
    SD; limited range unless tagged full or a ``yuvj`` format). No transfer function is
    applied: the values stay in the movie's own encoding (e.g. Rec.709 video), and the
    colour tags are in :attr:`ClipInfo.metadata` (``color_primaries``, ``color_trc``,
    ``colorspace``, ``color_range`` with FFmpeg's names, e.g. ``"bt709"``, ``"tv"``).
"""

from __future__ import annotations

import bisect
import os
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import CorruptMedia, FrameOutOfRange, MediaNotFound, UnsupportedMedia
from engine.media.types import ClipInfo

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

TRANSCODE_HINT = "Transcode it to ProRes 4444/422 HQ, DNxHR or an image sequence (EXR/DPX) and open that"

# FFmpeg's names for the colour enums (av_color_*_name), by enum value.
_PRIMARIES = {1: "bt709", 2: "unknown", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
              8: "film", 9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213"}
_TRC = {1: "bt709", 2: "unknown", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m",
        8: "linear", 9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1",
        14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67"}
_MATRIX = {0: "gbr", 1: "bt709", 2: "unknown", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
           8: "ycgco", 9: "bt2020nc", 10: "bt2020c", 11: "smpte2085", 12: "chroma-derived-nc",
           13: "chroma-derived-c", 14: "ictcp"}
_RANGE = {0: "unknown", 1: "tv", 2: "pc"}

# AVColorSpace value -> name of av.video.reformatter.Colorspace (swscale matrix)
_SWS_MATRIX = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "SMPTE170M", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}

_STANDARD_RATES = tuple(Fraction(r) for r in (
    "24000/1001", "24", "25", "30000/1001", "30", "48000/1001", "48", "50", "60000/1001", "60",
    "96", "100", "120000/1001", "120", "12", "15", "12000/1001", "15000/1001"))


def _snap_rate(rate: Fraction) -> Fraction:
    """The standard rate within 0.01% of ``rate`` (container rounding), else ``rate``."""
    for std in _STANDARD_RATES:
        if abs(rate - std) <= std * Fraction(1, 10000):
            return std
    return rate


def _fraction(value: Any) -> Fraction | None:
    if value is None:
        return None
    try:
        f = Fraction(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return f if f > 0 else None


class VideoReader:
    """Frame-accurate random access to one movie's video stream (a :class:`FrameReader`).

    Parameters
    ----------
    path:
        The movie file.
    first_frame:
        Number of the first frame (default 0). Frames are numbered in presentation order.
    stream_index:
        Which video stream (index among the video streams, default the first).
    threads:
        Decoder threads (0 = FFmpeg's automatic choice).
    """

    #: how far ahead (frames) a request may be and still be reached by decoding forward
    FORWARD_DECODE_LIMIT = 6

    def __init__(self, path: str | os.PathLike[str], *, first_frame: int = 0, stream_index: int = 0,
                 threads: int = 0) -> None:
        self.path = Path(path)
        self._name = str(self.path)
        self._first = int(first_frame)
        self._stream_index = int(stream_index)
        self._threads = int(threads)
        self._lock = threading.Lock()
        self._container = None
        self._stream = None
        self._frames_iter: Iterator[Any] | None = None
        self._last_index: int | None = None  # index of the frame the decoder returned last
        self._convert: dict[str, Any] | None = None
        self._peek: tuple[int, Any] | None = None  # (index, picture) decoded while probing
        self._pts: list[int] | None = None  # presentation timestamps, sorted; frame k = _pts[k]
        self._key_pts: list[int] = []  # keyframe presentation timestamps, sorted
        self._count = 0
        self._vfr = False
        self._seek_ok = True  # False once seeking proved unreliable for this file
        self._pts_from_index = False  # timestamps assumed from the container index (checked)
        self._open()
        try:
            self.info = self._probe()
        except BaseException:
            self.close()
            raise

    # --- opening -------------------------------------------------------------------------

    def _open(self) -> None:
        import av

        if not self.path.exists():
            raise MediaNotFound("the movie file does not exist", path=self._name,
                                hint="Check the path (and that the drive is mounted)")
        if self.path.is_dir():
            raise UnsupportedMedia("this is a folder, not a movie file", path=self._name,
                                   hint="Give the movie file, or the sequence pattern for a folder of frames")
        try:
            size = self.path.stat().st_size
        except OSError as exc:
            raise MediaNotFound(f"the movie file cannot be opened ({exc.strerror})", path=self._name) from None
        if size == 0:
            raise CorruptMedia("the movie file is empty (0 bytes)", path=self._name,
                               hint="The copy or render was probably interrupted; copy it again")
        self._size = size
        try:
            container = av.open(self._name, "r")
        except av.error.FileNotFoundError:
            raise MediaNotFound("the movie file does not exist", path=self._name) from None
        except av.error.PermissionError:
            raise MediaNotFound("the movie file cannot be read (permission denied)", path=self._name,
                                hint="Check the file's permissions") from None
        except (av.error.InvalidDataError, av.error.EOFError) as exc:
            raise CorruptMedia(f"the file is not a readable movie ({_ffmpeg_reason(exc)})", path=self._name,
                               hint="It is damaged, truncated or not a video file; copy or export it again") from None
        except (av.error.FFmpegError, OSError) as exc:
            raise CorruptMedia(f"FFmpeg cannot open the file ({_ffmpeg_reason(exc)})", path=self._name,
                               hint="It may be damaged or in a format FFmpeg does not know; " + TRANSCODE_HINT) from None
        videos = list(container.streams.video)
        if not videos:
            kinds = sorted({s.type for s in container.streams}) or ["no streams"]
            container.close()
            if not any(k in ("audio", "subtitle") for k in kinds):
                # an MP4 whose index (moov) is missing shows only a "data" stream, or nothing
                raise CorruptMedia("the file holds no picture or sound streams", path=self._name,
                                   hint="It is damaged or truncated (e.g. an interrupted render); copy or export it again")
            raise UnsupportedMedia(f"the file has no video stream (it holds {', '.join(kinds)})", path=self._name,
                                   hint="Give a movie with pictures, or an image sequence")
        if not 0 <= self._stream_index < len(videos):
            container.close()
            raise UnsupportedMedia(f"the file has {len(videos)} video stream(s); stream {self._stream_index} "
                                   "does not exist", path=self._name, hint="Use stream 0")
        stream = videos[self._stream_index]
        cc = stream.codec_context
        if cc is None or getattr(cc, "codec", None) is None:
            container.close()
            raise UnsupportedMedia("FFmpeg has no decoder for this movie's video codec", path=self._name,
                                   hint=TRANSCODE_HINT)
        # demux only the picture stream: other streams' packets are skipped by the demuxer
        for other in container.streams:
            if other.index != stream.index:
                try:
                    other.discard = av.stream.Discard.all
                except (AttributeError, ValueError, TypeError):  # pragma: no cover - older PyAV
                    pass
        try:
            stream.thread_type = "AUTO"
            stream.thread_count = self._threads
        except (AttributeError, ValueError):  # pragma: no cover
            pass
        self._container = container
        self._stream = stream

    def _probe(self) -> ClipInfo:
        self._index_frames()
        if self._count == 0:
            self.close()
            raise CorruptMedia("the movie holds no video frames", path=self._name,
                               hint="The file is empty or truncated; export it again")
        # decode the first picture: proves the codec is decodable and gives the display size
        # (1920x1088 coded -> 1920x1080 shown) and the decoder's real pixel format
        first = self._decode_index(0)
        if self._pts_from_index and first.pts != self._pts[0]:
            self._rescan()
            first = self._decode_index(0)
        self._peek = (0, first)
        stream, container = self._stream, self._container  # (a rescan reopens the file)
        cc = stream.codec_context
        width, height = int(first.width), int(first.height)
        fmt = first.format
        pix_fmt = fmt.name
        bits = max((c.bits for c in fmt.components), default=8)
        has_alpha = any(getattr(c, "is_alpha", False) for c in fmt.components)
        self._bits, self._has_alpha = bits, has_alpha
        if has_alpha:
            self._out_format = "rgba64le" if bits > 8 else "rgba"
        else:
            self._out_format = "rgb48le" if bits > 8 else "rgb24"
        self._scale = 1.0 / (65535.0 if bits > 8 else 255.0)
        pixel_type = "uint8" if bits <= 8 else "uint10" if bits <= 10 else "uint12" if bits <= 12 else "uint16"

        rate, fps_source = self._frame_rate()

        sar = _fraction(stream.sample_aspect_ratio) or _fraction(getattr(cc, "sample_aspect_ratio", None))
        profile = stream.profile or getattr(cc, "profile", None)
        codec = cc.name or stream.codec.name
        codec_label = f"{codec} {profile}".lower() if profile else str(codec).lower()

        timecode = None
        for meta in [stream.metadata, *[s.metadata for s in container.streams if s is not stream], container.metadata]:
            tc = (meta or {}).get("timecode")
            if tc:
                timecode = str(tc)
                break

        metadata: dict[str, Any] = {}
        metadata.update({str(k): v for k, v in (container.metadata or {}).items()})
        metadata.update({str(k): v for k, v in (stream.metadata or {}).items()})
        metadata.update({
            "container_format": container.format.name,
            "codec_long_name": getattr(stream.codec, "long_name", codec),
            "pix_fmt": pix_fmt,
            "bit_depth": bits,
            "coded_width": int(getattr(cc, "coded_width", 0) or width),
            "coded_height": int(getattr(cc, "coded_height", 0) or height),
            "display_width": width,
            "display_height": height,
            "time_base": str(stream.time_base) if stream.time_base else None,
            "color_primaries": _PRIMARIES.get(_tag(cc, first, "color_primaries", 2), "unknown"),
            "color_trc": _TRC.get(_tag(cc, first, "color_trc", 2), "unknown"),
            "colorspace": _MATRIX.get(_tag(cc, first, "colorspace", 2), "unknown"),
            "color_range": _RANGE.get(_tag(cc, first, "color_range", 0), "unknown"),
        })
        if timecode:
            metadata["timecode"] = timecode
        self._width, self._height = width, height
        return ClipInfo(
            path=self._name,
            kind="video",
            format=self.path.suffix.lower().lstrip(".") or container.format.name.split(",")[0],
            first=self._first,
            last=self._first + self._count - 1,
            width=width,
            height=height,
            fps=rate,
            fps_source=fps_source,
            channels=("R", "G", "B", "A") if has_alpha else ("R", "G", "B"),
            pixel_type=pixel_type,
            pixel_aspect=float(sar) if sar else 1.0,
            timecode=timecode,
            vfr=self._vfr,
            codec=codec_label,
            metadata=metadata,
        )

    def _frame_rate(self) -> tuple[Fraction, str]:
        """Exact rate: the container's when it is a standard rate consistent with the
        timestamps, else the mean rate of the timestamps (VFR, odd containers)."""
        stream = self._stream
        declared = [_fraction(stream.average_rate), _fraction(stream.guessed_rate), _fraction(stream.base_rate)]
        measured = None
        pts = self._pts
        if pts and len(pts) > 1 and stream.time_base:
            span = (pts[-1] - pts[0]) * Fraction(stream.time_base)
            measured = Fraction(len(pts) - 1) / span if span > 0 else None
        for rate in declared:
            if rate is None:
                continue
            snapped = _snap_rate(rate)
            if snapped in _STANDARD_RATES and (measured is None or abs(snapped - measured) <= snapped / 200):
                return snapped, "file"
        if measured is not None:
            if not self._vfr:
                for rate in declared:  # an unusual but declared constant rate (e.g. 18 fps)
                    if rate is not None and abs(rate - measured) <= rate / 1000:
                        return rate.limit_denominator(1_000_000), "file"
            return _snap_rate(measured.limit_denominator(100_000)), "file"
        for rate in declared:
            if rate is not None:
                return _snap_rate(rate.limit_denominator(1_000_000)), "file"
        return Fraction(24), "default"

    # --- the frame index -----------------------------------------------------------------

    def _index_frames(self) -> None:
        """Fill ``_pts`` (sorted presentation timestamps), ``_key_pts``, ``_count``, ``_vfr``."""
        stream = self._stream
        declared = int(stream.frames or 0)
        if not self._index_from_container(declared):
            self._scan_packets(declared)
        self._index_frames_done()

    def _index_frames_done(self) -> None:
        pts = self._pts
        if pts and len(pts) > 2:
            deltas = [b - a for a, b in zip(pts, pts[1:])]
            nominal = sorted(deltas)[len(deltas) // 2]
            # one tick of rounding (1 ms Matroska timestamps) plus 1 % is still constant rate
            tolerance = 1 + 0.01 * nominal
            self._vfr = nominal <= 0 or any(abs(d - nominal) > tolerance for d in deltas)

    def _index_from_container(self, declared: int) -> bool:
        """Frame timestamps from the container's index, without reading the file.

        Used when the index lists every frame (``stream.frames`` is then trustworthy):
        intra-only codecs (ProRes, DNxHR: decode time = presentation time), and MP4/MOV of
        any codec whose decode timestamps are evenly spaced (constant rate), where the
        presentation times are the same grid starting at the stream's start time. The
        second case is checked against the first decoded picture and against every picture
        decoded after a seek; a mismatch falls back to the packet scan.
        """
        stream = self._stream
        try:
            intra = bool(stream.codec_context.codec.intra_only)
            entries = list(stream.index_entries)
        except (AttributeError, TypeError):  # pragma: no cover - older PyAV
            return False
        if declared <= 0 or len(entries) != declared or any(e.is_discard for e in entries):
            return False
        end = max(e.pos + e.size for e in entries)
        if end > self._size:
            raise CorruptMedia(
                f"the file is truncated: it should be at least {end} bytes but is {self._size}",
                path=self._name, hint="The copy or render was interrupted; copy or export it again")
        stamps = [e.timestamp for e in entries]
        if intra and all(e.is_keyframe for e in entries):
            pts = sorted(stamps)
            if len(set(pts)) != len(pts):
                return False
            self._pts, self._key_pts, self._count = pts, list(pts), len(pts)
            return True
        if "mov" not in self._container.format.name or stream.start_time is None or len(stamps) < 2:
            return False
        step = stamps[1] - stamps[0]
        if step <= 0 or any(b - a != step for a, b in zip(stamps, stamps[1:])):
            return False  # variable rate or odd timing: scan the packets
        start = int(stream.start_time)
        shift = start - stamps[0]
        self._pts = [start + k * step for k in range(len(stamps))]
        self._key_pts = sorted(e.timestamp + shift for e in entries if e.is_keyframe)
        self._count = len(stamps)
        self._pts_from_index = True
        return True

    def _rescan(self) -> None:
        """Replace an index-derived timing that did not match the pictures by a packet scan."""
        self._pts_from_index = False
        self._reopen()  # the scan demuxes from the start of the file
        self._scan_packets(int(self._stream.frames or 0))
        self._index_frames_done()

    def _scan_packets(self, declared: int) -> None:
        """Demux (no decoding) every packet of the stream to learn frame count and timing."""
        import av

        pts: list[int] = []
        dts_only: list[int] = []
        keys: list[int] = []
        count = 0
        discarded = 0
        missing_pts = False
        try:
            for packet in self._container.demux(self._stream):
                if packet.size == 0 and packet.pts is None and packet.dts is None:
                    continue  # the flush packet at the end
                if getattr(packet, "is_discard", False):
                    discarded += 1
                    continue
                count += 1
                if packet.pts is None:
                    missing_pts = True
                    if packet.dts is not None:
                        dts_only.append(packet.dts)
                    continue
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keys.append(packet.pts)
        except av.error.FFmpegError as exc:
            if count == 0:
                raise CorruptMedia(f"the video stream cannot be read ({_ffmpeg_reason(exc)})", path=self._name,
                                   hint="The file is damaged; copy or export it again") from None
            raise CorruptMedia(f"the file is damaged after frame {count - 1} ({_ffmpeg_reason(exc)})",
                               path=self._name, hint="Copy or export it again") from None
        if missing_pts:
            if len(dts_only) + len(pts) == count and not pts:
                pts = dts_only  # decode order = presentation order for such streams (no B-frames)
            else:
                pts = []
        self._count = count
        self._pts = sorted(pts) if pts else None
        self._key_pts = sorted(keys)
        if self._pts is not None and len(set(self._pts)) != len(self._pts):
            self._pts = None  # duplicate timestamps: fall back to counting frames
        if declared and count + discarded < declared and self.path.suffix.lower() in (
                ".mov", ".mp4", ".m4v", ".qt", ".mxf", ".avi"):
            raise CorruptMedia(
                f"the file is truncated: the header lists {declared} frames but only {count} are present",
                path=self._name, hint="The copy or render was interrupted; copy or export it again")
        self._check_duration(count)
        try:
            self._rewind()
        except Exception:  # noqa: BLE001 - the next read seeks anyway
            self._frames_iter = None

    def _check_duration(self, count: int) -> None:
        """Matroska/WebM: the stream's DURATION tag must be covered by the packets found."""
        stream = self._stream
        tag = (stream.metadata or {}).get("DURATION")
        pts = self._pts
        if not tag or not pts or len(pts) < 2 or not stream.time_base:
            return
        try:
            hh, mm, ss = str(tag).split(":")
            expected = int(hh) * 3600 + int(mm) * 60 + float(ss)
        except ValueError:
            return
        tb = float(stream.time_base)
        step = sorted(b - a for a, b in zip(pts, pts[1:]))[(len(pts) - 1) // 2] * tb
        found = (pts[-1] - min(pts[0], 0)) * tb + step
        if found < expected - 1.5 * step:
            missing = round((expected - found) / step) if step > 0 else 0
            raise CorruptMedia(
                f"the file is truncated: it should last {expected:.3f} s but its pictures stop at {found:.3f} s "
                f"(about {missing} frame(s) missing after frame {count - 1})",
                path=self._name, hint="The copy or render was interrupted; copy or export it again")

    # --- decoding ------------------------------------------------------------------------

    def _rewind(self) -> None:
        """Seek to the very start of the stream."""
        stream = self._stream
        lowest = self._pts[0] if self._pts else (stream.start_time or 0)
        if self._key_pts:
            lowest = min(lowest, self._key_pts[0])
        self._container.seek(int(lowest) - 1 if lowest > 0 else int(lowest), stream=stream, backward=True)
        self._frames_iter = None
        self._last_index = None

    def _reopen(self) -> None:
        """Last resort: a fresh demuxer at the start of the file."""
        old = self._container
        self._container = None
        self._frames_iter = None
        self._last_index = None
        try:
            if old is not None:
                old.close()
        finally:
            self._open()

    def _frame_generator(self) -> Iterator[Any]:
        for packet in self._container.demux(self._stream):
            if getattr(packet, "is_discard", False):
                continue
            yield from packet.decode()

    def _index_of(self, vframe: Any, previous: int | None) -> int:
        """Frame index of a decoded picture (by timestamp; counting when there is none)."""
        ts = vframe.pts if vframe.pts is not None else getattr(vframe, "dts", None)
        if ts is None or self._pts is None:
            return (previous + 1) if previous is not None else 0
        pts = self._pts
        i = bisect.bisect_left(pts, ts)
        if i < len(pts) and pts[i] == ts:
            return i
        if i == 0:
            return -1  # before the first frame (a picture the index does not list)
        if i == len(pts):
            return len(pts)
        # between two indexed timestamps (rounded container timestamps): the nearest
        return i - 1 if ts - pts[i - 1] <= pts[i] - ts else i

    def _next_decoded(self, validate: bool = False) -> tuple[int, Any] | None:
        """The next picture from the open decoder as ``(index, frame)``; None at the end.

        With ``validate``, a picture whose timestamp is not one the packet scan found raises
        :class:`_UnreliableTimestamps` (demuxers that re-packetise after a seek, e.g. MPEG-PS).
        """
        if self._frames_iter is None:
            self._frames_iter = self._frame_generator()
        try:
            vframe = next(self._frames_iter)
        except StopIteration:
            self._frames_iter = None
            return None
        if (validate or self._pts_from_index) and self._pts is not None:
            ts = vframe.pts if vframe.pts is not None else getattr(vframe, "dts", None)
            k = bisect.bisect_left(self._pts, ts) if ts is not None else -1
            if ts is None or k >= len(self._pts) or self._pts[k] != ts:
                raise _UnreliableTimestamps
        index = self._index_of(vframe, self._last_index)
        self._last_index = index
        return index, vframe

    def _decode_forward_to(self, index: int, validate: bool = False) -> Any | None:
        """Decode from the current position until frame ``index``; None if passed or at the end."""
        while True:
            got = self._next_decoded(validate)
            if got is None:
                return None
            i, vframe = got
            if i == index:
                return vframe
            if i > index:
                return None

    def _should_decode_forward(self, index: int) -> bool:
        last = self._last_index
        if last is None or self._frames_iter is None or index <= last:
            return False
        if index - last <= self.FORWARD_DECODE_LIMIT or self._pts is None:
            return True
        # a keyframe between here and the target makes seeking cheaper
        lo, hi = self._pts[last], self._pts[index]
        k = bisect.bisect_right(self._key_pts, lo)
        return not (k < len(self._key_pts) and self._key_pts[k] <= hi)

    def _decode_index(self, index: int) -> Any:
        """The decoded ``av.VideoFrame`` with 0-based presentation index ``index``."""
        import av

        peek, self._peek = self._peek, None
        if peek is not None and peek[0] == index:
            return peek[1]
        try:
            try:
                vframe = self._find(index)
            except _UnreliableTimestamps:
                self._frames_iter = None
                self._last_index = None
                if not self._pts_from_index:
                    raise
                # the timing derived from the container index was wrong: scan the packets
                self._rescan()
                vframe = self._find(index)
        except _UnreliableTimestamps:  # pragma: no cover - the scan's own timestamps disagree
            self._seek_ok = False
            self._reopen()
            vframe = self._decode_forward_to(index)
        except (av.error.DecoderNotFoundError, av.error.PatchWelcomeError) as exc:
            self._frames_iter = None
            raise UnsupportedMedia(f"FFmpeg cannot decode this video ({_ffmpeg_reason(exc)})", path=self._name,
                                   frame=self._first + index, hint=TRANSCODE_HINT) from None
        except av.error.FFmpegError as exc:
            self._frames_iter = None
            self._last_index = None
            raise CorruptMedia(f"the picture cannot be decoded ({_ffmpeg_reason(exc)})", path=self._name,
                               frame=self._first + index,
                               hint="The file is damaged here; copy or export it again") from None
        if vframe is not None:
            return vframe
        self._frames_iter = None
        self._last_index = None
        raise CorruptMedia("the picture cannot be decoded: the stream ends before it", path=self._name,
                           frame=self._first + index, hint="The file is damaged or truncated; copy or export it again")

    def _find(self, index: int) -> Any | None:
        """Decode forward, or seek to a keyframe and decode forward, or decode from the start."""
        if self._should_decode_forward(index):
            vframe = self._decode_forward_to(index)
            if vframe is not None:
                return vframe
        if self._pts is not None and self._seek_ok:
            target = self._pts[index]
            seek_points = [target]
            k = bisect.bisect_left(self._key_pts, target)
            # earlier keyframes in case the container index lands after the target (open GOPs)
            seek_points += [self._key_pts[j] for j in (k - 1, k - 2) if 0 <= j < len(self._key_pts)
                            and self._key_pts[j] < target]
            try:
                for ts in seek_points:
                    self._container.seek(int(ts), stream=self._stream, backward=True)
                    self._frames_iter = None
                    self._last_index = None
                    vframe = self._decode_forward_to(index, validate=True)
                    if vframe is not None:
                        return vframe
            except _UnreliableTimestamps:
                if self._pts_from_index:
                    raise
                # timestamps after a seek differ from the scan's: from now on reach frames
                # by decoding from the start (correct, slower; MPEG-PS does this)
                self._seek_ok = False
        # last resort: a fresh demuxer, decoding from the very start
        self._reopen()
        return self._decode_forward_to(index)

    # --- pixels --------------------------------------------------------------------------

    def _conversion(self, vframe: Any) -> dict[str, Any]:
        """Reformat arguments: output format, and the YUV matrix/range of the source."""
        if self._convert is None:
            fmt = vframe.format
            args: dict[str, Any] = {"format": self._out_format}
            if not fmt.is_rgb and not fmt.name.startswith(("gray", "ya", "pal", "bayer", "xyz")):
                cc = self._stream.codec_context
                matrix = vframe.colorspace if vframe.colorspace not in (None, 2) else cc.colorspace
                name = _SWS_MATRIX.get(int(matrix) if matrix is not None else 2)
                if name is None:
                    hd = vframe.width > 1024 or vframe.height > 576
                    name = "ITU709" if hd else "ITU601"
                rng = vframe.color_range if vframe.color_range else cc.color_range
                if not rng:
                    rng = 2 if fmt.name.startswith("yuvj") else 1
                args.update(src_colorspace=name, dst_colorspace=name,
                            src_color_range="JPEG" if int(rng) == 2 else "MPEG", dst_color_range="JPEG")
            self._convert = args
        return self._convert

    def _to_float(self, vframe: Any) -> np.ndarray:
        import numpy as np

        args = self._conversion(vframe)
        alpha_comp = self._planar_alpha(vframe)
        if alpha_comp is not None:
            # planar alpha (yuva*, gbrap*): colour through swscale, alpha straight from its
            # plane so that it is exact (swscale shifts 10/12-bit alpha: 4095 -> 65520)
            args = dict(args, format="rgb48le" if self._bits > 8 else "rgb24")
        arr = vframe.to_ndarray(channel_last=True, **args)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        h, w = arr.shape[:2]
        channels = arr.shape[2] + (1 if alpha_comp is not None else 0)
        if alpha_comp is None:
            out = arr.astype(np.float32)  # cast then scale in place: the fastest numpy path
            out *= np.float32(self._scale)
        else:
            out = np.empty((h, w, channels), np.float32)
            np.multiply(arr, np.float32(self._scale), out=out[:, :, : arr.shape[2]], casting="unsafe")
        if alpha_comp is not None:
            plane = vframe.planes[alpha_comp.plane]
            dtype = np.uint16 if alpha_comp.bits > 8 else np.uint8
            alpha = np.frombuffer(plane, dtype).reshape(plane.height, -1)[:h, :w]
            np.multiply(alpha, np.float32(1.0 / ((1 << alpha_comp.bits) - 1)), out=out[:, :, -1], casting="unsafe")
        if h != self._height or w != self._width:
            # a mid-stream size change: keep the clip's size (crop / pad with black)
            fixed = np.zeros((self._height, self._width, channels), np.float32)
            hh, ww = min(self._height, h), min(self._width, w)
            fixed[:hh, :ww] = out[:hh, :ww]
            out = fixed
        return out

    @staticmethod
    def _planar_alpha(vframe: Any) -> Any | None:
        fmt = vframe.format
        if not fmt.is_planar or fmt.is_big_endian:
            return None
        for comp in fmt.components:
            if comp.is_alpha:
                return comp
        return None

    def read(self, frame: int, layer: str | None = None) -> np.ndarray:
        """Frame ``frame`` as float32 ``(H, W, 3|4)`` in ``0..1`` (RGB, or RGBA with alpha)."""
        if layer not in (None, "", "rgba", "rgb"):
            raise UnsupportedMedia(f"a movie has no layer {layer!r}", path=self._name, frame=int(frame),
                                   hint="Movies have one RGB(A) layer; use an EXR sequence for named layers")
        f = int(frame)
        if not self.info.first <= f <= self.info.last:
            raise FrameOutOfRange(f"frame {f} is outside the movie's range {self.info.first}-{self.info.last}",
                                  path=self._name, frame=f,
                                  hint=f"Movie frames are numbered from {self.info.first} in presentation order")
        with self._lock:
            if self._container is None:
                self._open()
            vframe = self._decode_index(f - self._first)
            return self._to_float(vframe)

    def layer_channels(self, layer: str | None = None) -> tuple[str, ...]:
        if layer not in (None, "", "rgba", "rgb"):
            raise UnsupportedMedia(f"a movie has no layer {layer!r}", path=self._name,
                                   hint="Movies have one RGB(A) layer; use an EXR sequence for named layers")
        return self.info.channels

    def frame_pts(self, frame: int) -> int | None:
        """Presentation timestamp (stream time base) of ``frame``, when the stream has them."""
        if self._pts is None:
            return None
        return self._pts[int(frame) - self._first]

    def close(self) -> None:
        with self._lock:
            self._frames_iter = None
            self._last_index = None
            self._peek = None
            if self._container is not None:
                try:
                    self._container.close()
                finally:
                    self._container = None
                    self._stream = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            if self._container is not None:
                self._container.close()
        except Exception:  # noqa: BLE001
            pass

    def __repr__(self) -> str:
        return f"<VideoReader {self._name} {self._count} frames>"


class _UnreliableTimestamps(Exception):
    """Pictures decoded after a seek carry timestamps the packet scan never saw."""


def _tag(cc: Any, vframe: Any, name: str, unspecified: int) -> int:
    """A colour tag from the codec context, else from the decoded picture; ``unspecified`` if neither."""
    for source in (cc, vframe):
        value = getattr(source, name, None)
        if value is not None and int(value) != unspecified:
            return int(value)
    return unspecified


def _ffmpeg_reason(exc: BaseException) -> str:
    """FFmpeg's message without the errno and file name it repeats."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).strip().rstrip(".") or type(exc).__name__
