"""Roots policy: every path a request names must resolve inside one of the configured folders.

Paths are made absolute and resolved (symbolic links, ``..``) before the check, so neither
``/shots/../etc/passwd`` nor a link inside a root pointing outside it gets through. Sequence
patterns (``plate.####.exr``, ``plate.%04d.exr``) are checked through their folder. Standard
library only.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.server.errors import PathRefused


class RootsPolicy:
    def __init__(self, roots: list[Path]) -> None:
        self.roots = [Path(os.path.realpath(os.path.expanduser(str(r)))) for r in roots]

    def describe(self) -> list[str]:
        return [str(r) for r in self.roots]

    def check(self, path: str | os.PathLike[str], what: str = "path") -> Path:
        """The resolved ``path`` when it lies under a root; else :class:`PathRefused`."""
        text = os.fspath(path)
        if not text or "\x00" in text:
            raise PathRefused(f"the {what} is empty or not a valid path")
        p = Path(os.path.expanduser(text))
        if not p.is_absolute():
            raise PathRefused(f"the {what} {text!r} is not an absolute path",
                              hint="Hosts send full paths; relative ones mean nothing to the server")
        resolved = Path(os.path.realpath(p.parent)) / p.name if p.name else Path(os.path.realpath(p))
        if p.name and (os.path.islink(p) or p.name in ("..", ".")):
            resolved = Path(os.path.realpath(p))
        for root in self.roots:
            if _within(resolved, root):
                return resolved
        raise PathRefused(f"the {what} is outside the folders this server may use", path=text,
                          hint="Start the server with --root covering it (roots: " + ", ".join(self.describe()) + ")")


def _within(path: Path, root: Path) -> bool:
    a, b = os.path.normcase(str(path)), os.path.normcase(str(root))
    try:
        return os.path.commonpath([a, b]) == b
    except ValueError:  # different drives on Windows
        return False
