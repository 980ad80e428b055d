"""Media input: clips (movies and image sequences), readers, sequence naming, colour.

``import engine.media`` is light; :func:`open_clip` and :class:`Clip` load numpy and the
readers on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["open_clip", "Clip", "ClipInfo"]


def __getattr__(name: str) -> Any:
    if name in ("open_clip", "Clip"):
        from engine.media import clip

        return getattr(clip, name)
    if name == "ClipInfo":
        from engine.media.types import ClipInfo

        return ClipInfo
    raise AttributeError(f"module 'engine.media' has no attribute {name!r}")
