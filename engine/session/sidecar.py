"""Stores that live beside a session's project file (``<project>.alpha/``, ``<project>.depth/``)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def sidecar_store(session: Any, kind: str, factory: Callable[[Path], T]) -> T:
    """The session's ``kind`` store, made once per project path by ``factory(folder)``: the folder is
    ``<project>.<kind>/`` beside the session's file, or a temporary folder for an unsaved session."""
    path = getattr(session, "path", None)
    slot = f"_{kind}_store"
    cached = session.__dict__.get(slot)
    if cached is not None and cached[0] == path:
        return cached[1]
    if path is not None:
        folder = Path(path).with_name(Path(path).name + "." + kind)
    else:
        folder = Path(tempfile.mkdtemp(prefix=f"roto-{kind}-"))
    store = factory(folder)
    session.__dict__[slot] = (path, store)
    return store
