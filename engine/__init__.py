"""Ultimate Rotoscopy engine.

Importing this package loads the standard library only, so a host's Python (Nuke, Flame,
Resolve) can import :mod:`engine.client` without numpy or torch. Heavy packages are
imported by the submodules that use them.

Public entry points::

    from engine.media import open_clip      # frames of any plate, by frame number
    from engine.errors import RotoError     # the one exception root
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
