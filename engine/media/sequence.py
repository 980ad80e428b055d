"""Image-sequence naming: recognise ``shot.1001.exr``, ``shot_####.dpx``, ``shot.%04d.png``,
``shot.@@@@.tif``, a folder, or one file of a sequence, and list the frames on disk.

Frame numbers are the files' own (1001…), never list indices. Standard library only.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InputError, MediaNotFound, UnsupportedMedia

#: Extensions of still-image formats we read, lower case, without the dot.
IMAGE_EXTENSIONS = frozenset({"exr", "sxr", "dpx", "cin", "png", "tif", "tiff", "jpg", "jpeg", "jpe"})
#: Extensions of movie containers we read through PyAV.
VIDEO_EXTENSIONS = frozenset({"mp4", "m4v", "mov", "qt", "avi", "webm", "mkv", "mxf", "mpg", "mpeg", "ts", "mts"})

_FRAME_IN_NAME = re.compile(r"^(?P<prefix>.*?)(?P<sign>-?)(?P<digits>\d+)(?P<suffix>\.[A-Za-z0-9]+)$")
_PRINTF = re.compile(r"%(?P<pad>0?\d*)d")
_HASHES = re.compile(r"#+|@+")


def extension_of(path: str | os.PathLike[str]) -> str:
    """Lower-case extension without the dot (``"exr"``), or ``""``."""
    return Path(path).suffix.lower().lstrip(".")


@dataclass(frozen=True)
class SequencePattern:
    """Where the frames of a sequence live: ``<directory>/<prefix><frame padded><suffix>``.

    ``padding`` is the minimum number of digits (0 = unpadded, ``shot.7.exr``).
    """

    directory: Path
    prefix: str
    padding: int
    suffix: str

    def path_for(self, frame: int) -> Path:
        """The file of ``frame`` (whether or not it exists)."""
        sign = "-" if frame < 0 else ""
        return self.directory / f"{self.prefix}{sign}{abs(frame):0{self.padding}d}{self.suffix}"

    @property
    def hashes(self) -> str:
        """Nuke/Flame-style pattern: ``/dir/shot.####.exr``."""
        return str(self.directory / f"{self.prefix}{'#' * max(self.padding, 1)}{self.suffix}")

    @property
    def printf(self) -> str:
        """printf-style pattern: ``/dir/shot.%04d.exr`` (``%d`` when unpadded)."""
        pad = f"%0{self.padding}d" if self.padding > 1 else "%d"
        return str(self.directory / f"{self.prefix}{pad}{self.suffix}")

    @property
    def extension(self) -> str:
        return self.suffix.lower().lstrip(".")


@dataclass(frozen=True)
class Sequence:
    """A pattern plus the frame numbers found on disk (sorted)."""

    pattern: SequencePattern
    frames: tuple[int, ...]

    @property
    def first(self) -> int:
        return self.frames[0]

    @property
    def last(self) -> int:
        return self.frames[-1]

    @property
    def missing(self) -> tuple[int, ...]:
        """Frame numbers between first and last with no file."""
        present = set(self.frames)
        return tuple(f for f in range(self.first, self.last + 1) if f not in present)


def missing_ranges(missing: tuple[int, ...] | list[int]) -> str:
    """``(3, 4, 5, 9)`` → ``"3-5, 9"``: compact text for messages."""
    parts: list[str] = []
    run: list[int] = []
    for f in sorted(missing):
        if run and f == run[-1] + 1:
            run.append(f)
            continue
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [f]
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ", ".join(parts)


def is_pattern(path: str) -> bool:
    """True when ``path``'s file name holds ``#``, ``@`` or ``%0Nd``."""
    name = os.path.basename(path)
    return bool(_PRINTF.search(name) or _HASHES.search(name))


def _pattern_from_template(path: str) -> tuple[SequencePattern, bool]:
    """Parse a ``#``/``@``/``%0Nd`` template; the flag says whether padding is strict."""
    p = Path(path)
    name = p.name
    m = _PRINTF.search(name)
    if m:
        pad_text = m.group("pad")
        padding = int(pad_text) if pad_text else 0
        return SequencePattern(p.parent, name[: m.start()], padding, name[m.end():]), bool(pad_text)
    m = _HASHES.search(name)
    assert m is not None
    token = m.group(0)
    # Nuke: '#' per digit. Houdini/Shake: '@' per digit. A single '#' means "any padding".
    padding = len(token) if len(token) > 1 else 0
    return SequencePattern(p.parent, name[: m.start()], padding, name[m.end():]), len(token) > 1


def _scan(directory: Path, prefix: str, suffix: str, padding: int = 0) -> dict[int, str]:
    """frame -> digit string for every file ``prefix<digits>suffix`` in ``directory``.

    With ``padding`` > 0 only names padded exactly that way are kept (``0001`` for 4, and
    unpadded numbers longer than 4 digits such as ``10000``).
    """
    found: dict[int, str] = {}
    try:
        entries = os.listdir(directory)
    except FileNotFoundError:
        raise MediaNotFound("the folder does not exist", path=str(directory)) from None
    except NotADirectoryError:
        raise MediaNotFound("the parent is not a folder", path=str(directory)) from None
    except PermissionError:
        raise InputError("the folder cannot be read (permission denied)", path=str(directory)) from None
    rx = re.compile(re.escape(prefix) + r"(-?)(\d+)" + re.escape(suffix) + r"$", re.IGNORECASE if os.name == "nt" else 0)
    for entry in sorted(entries):
        m = rx.match(entry)
        if m:
            digits = m.group(2)
            if padding and not (len(digits) == padding or (len(digits) > padding and digits[0] != "0")):
                continue
            frame = int(digits) * (-1 if m.group(1) else 1)
            found.setdefault(frame, digits)
    return found


def _padding_of(digit_strings: list[str]) -> int:
    lengths = {len(d) for d in digit_strings}
    if len(lengths) == 1:
        (n,) = lengths
        # all the same length: padded to n, unless no frame needs it (e.g. 1001-1100: still 4)
        return n
    # mixed lengths: padded to the shortest if any has a leading zero, else unpadded
    if any(d.startswith("0") and len(d) > 1 for d in digit_strings):
        return min(lengths)
    return 0


def find_sequence(path: str | os.PathLike[str]) -> Sequence:
    """Resolve a user path (template, one member file, or folder) to a :class:`Sequence`.

    Raises :class:`MediaNotFound` when nothing matches and :class:`UnsupportedMedia` for an
    extension we do not read. A folder holding several sequences resolves to the longest one.
    """
    text = os.fspath(path)
    p = Path(text).expanduser()
    if is_pattern(text):
        pattern, strict = _pattern_from_template(str(p))
        _check_ext(pattern.extension, text)
        found = _scan(pattern.directory, pattern.prefix, pattern.suffix, pattern.padding if strict else 0)
        if not found:
            raise MediaNotFound("no frames match this pattern", path=text,
                                hint="Check the folder and the number of # (one per digit)")
        if not (strict and pattern.padding):
            pattern = SequencePattern(pattern.directory, pattern.prefix, _padding_of(list(found.values())), pattern.suffix)
        return Sequence(pattern, tuple(sorted(found)))
    if p.is_dir():
        return _longest_in_folder(p)
    if not p.exists():
        raise MediaNotFound("the file does not exist", path=text,
                            hint="Check the path; for a sequence give one frame, a folder or a pattern like shot.####.exr")
    _check_ext(extension_of(p), text)
    m = _FRAME_IN_NAME.match(p.name)
    if not m:
        # a lone image with no frame number: a one-frame clip numbered 1
        return Sequence(SequencePattern(p.parent, p.name, -1, ""), (1,))
    prefix, suffix = m.group("prefix"), m.group("suffix")
    if m.group("sign") and prefix and prefix[-1].isalnum():
        # "shot-0001.exr": the dash is a separator, not a sign
        prefix = prefix + "-"
    found = _scan(p.parent, prefix, suffix)
    pattern = SequencePattern(p.parent, prefix, _padding_of(list(found.values())), suffix)
    return Sequence(pattern, tuple(sorted(found)))


def single_file_path(seq: Sequence) -> Path | None:
    """For a lone image without frame number, its path; else None."""
    if seq.pattern.padding == -1:
        return seq.pattern.directory / seq.pattern.prefix
    return None


def path_for(seq: Sequence, frame: int) -> Path:
    """The file of ``frame`` in ``seq`` (handles lone images)."""
    lone = single_file_path(seq)
    return lone if lone is not None else seq.pattern.path_for(frame)


def _check_ext(ext: str, text: str) -> None:
    if ext in VIDEO_EXTENSIONS:
        return
    if ext not in IMAGE_EXTENSIONS:
        raise UnsupportedMedia(
            f"'.{ext}' is not a format the engine reads" if ext else "the file has no extension",
            path=text,
            hint="Use EXR, DPX, PNG, TIFF or JPEG sequences, or MP4/MOV/AVI/WebM movies",
        )


def _longest_in_folder(folder: Path) -> Sequence:
    groups: dict[tuple[str, str], dict[int, str]] = {}
    try:
        entries = sorted(os.listdir(folder))
    except PermissionError:
        raise InputError("the folder cannot be read (permission denied)", path=str(folder)) from None
    for entry in entries:
        if entry.startswith("."):
            continue
        m = _FRAME_IN_NAME.match(entry)
        if not m or extension_of(entry) not in IMAGE_EXTENSIONS:
            continue
        prefix = m.group("prefix") + ("-" if m.group("sign") and m.group("prefix")[-1:].isalnum() else "")
        digits = m.group("digits")
        frame = int(digits) * (-1 if m.group("sign") and not prefix.endswith("-") else 1)
        groups.setdefault((prefix, m.group("suffix")), {})[frame] = digits
    if not groups:
        raise MediaNotFound("the folder holds no image sequence", path=str(folder),
                            hint="Point at a frame, a pattern like shot.####.exr, or a movie file")
    (prefix, suffix), found = max(groups.items(), key=lambda kv: (len(kv[1]), kv[0]))
    pattern = SequencePattern(folder, prefix, _padding_of(list(found.values())), suffix)
    return Sequence(pattern, tuple(sorted(found)))
