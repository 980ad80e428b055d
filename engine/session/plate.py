"""Where a session's plate is, and whether two ways of naming a plate name the same one.

A session stores its plate as an absolute path (so it reopens from any folder) and, in the
project file, also relative to the project file (so a project folder moved or mounted elsewhere
still finds its plate). Old project files hold the path as it was typed: it is looked up beside
the project file first, then in the current folder.

Two INPUT forms name the same plate when they resolve to the same sequence (folder, prefix,
suffix: ``shot.1001.jpg``, ``shot.1003.jpg``, ``shot.####.jpg``, ``shot.%04d.jpg`` and the
folder ``.`` holding it) or the same movie file, whatever the current folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _is_url(path: str) -> bool:
    return "://" in path


def absolute_plate_path(path: str | os.PathLike[str]) -> str:
    """``path`` made absolute against the current folder (``~`` expanded, links kept as typed)."""
    text = os.fspath(path)
    if _is_url(text):
        return text
    return os.path.abspath(os.path.expanduser(text))


def relative_plate_path(plate: str, project: str | os.PathLike[str]) -> str | None:
    """The absolute ``plate`` relative to the folder of the project file (None when there is no
    such path, e.g. another drive)."""
    if _is_url(plate) or not os.path.isabs(plate):
        return None
    try:
        return os.path.relpath(plate, os.path.dirname(os.path.abspath(os.fspath(project))))
    except ValueError:
        return None


def plate_candidates(path: str, relative: str | None, project: str | os.PathLike[str] | None) -> list[str]:
    """Where to look for a stored plate, best first."""
    if _is_url(path):
        return [path]
    here = None if project is None else os.path.dirname(os.path.abspath(os.fspath(project)))
    out: list[str] = []
    if os.path.isabs(os.path.expanduser(path)):
        out.append(os.path.expanduser(path))
        if relative and here is not None:
            out.append(os.path.normpath(os.path.join(here, relative)))
    else:  # an old project file: the path as typed, beside the project first, then the current folder
        if here is not None:
            out.append(os.path.normpath(os.path.join(here, os.path.expanduser(path))))
        out.append(os.path.abspath(os.path.expanduser(path)))
    return list(dict.fromkeys(out))


def plate_exists(path: str) -> bool:
    """True when ``path`` names a movie or at least one frame of a sequence that is there."""
    from engine.errors import RotoError
    from engine.media.sequence import VIDEO_EXTENSIONS, extension_of, find_sequence, is_pattern

    if _is_url(path) or os.path.isfile(os.path.expanduser(path)):
        return True
    if extension_of(path) in VIDEO_EXTENSIONS and not is_pattern(path):
        return False  # a movie file that is not there (checked just above)
    try:
        find_sequence(path)
    except (RotoError, OSError):
        return False
    return True


def resolve_plate(path: str, relative: str | None, project: str | os.PathLike[str] | None) -> str:
    """The first of :func:`plate_candidates` that exists (the first one when none does, so the
    error names the stored path)."""
    cands = plate_candidates(path, relative, project)
    for c in cands:
        if plate_exists(c):
            return c
    return cands[0]


def plate_identity(path: str | os.PathLike[str]) -> tuple[Any, ...]:
    """What ``path`` resolves to: ``("movie", real path)``, ``("file", real path)`` for a lone
    image, or ``("sequence", real folder, prefix, suffix)``. Raises the media errors of
    :func:`engine.media.sequence.find_sequence` when nothing is there."""
    from engine.media.sequence import VIDEO_EXTENSIONS, extension_of, find_sequence, is_pattern, single_file_path

    text = os.fspath(path)
    if _is_url(text):
        return ("url", text)
    full = os.path.expanduser(text)
    if extension_of(full) in VIDEO_EXTENSIONS and not is_pattern(full):
        return ("movie", os.path.normcase(os.path.realpath(full)))
    seq = find_sequence(full)
    lone = single_file_path(seq)
    if lone is not None:
        return ("file", os.path.normcase(os.path.realpath(lone)))
    folder = os.path.normcase(os.path.realpath(Path(seq.pattern.directory)))
    return ("sequence", folder, seq.pattern.prefix, seq.pattern.suffix)
