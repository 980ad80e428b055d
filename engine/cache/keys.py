"""Cache keys: stable hashes of clip content, frames, backend names and parameters.

Standard library only (numpy arrays are hashed through their bytes when given).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def _canon(value: Any) -> Any:
    nbytes = getattr(value, "tobytes", None)
    if callable(nbytes) and hasattr(value, "shape") and hasattr(value, "dtype"):
        digest = hashlib.sha256(value.tobytes()).hexdigest()
        return {"__array__": [list(value.shape), str(value.dtype), digest]}
    if isinstance(value, dict):
        return {str(k): _canon(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    if isinstance(value, (set, frozenset)):
        # Iteration order of a set depends on the per-process hash seed: sort the canonical items
        # so the same set gives the same key in every process.
        items = [_canon(v) for v in value]
        return {"__set__": sorted(items, key=lambda v: json.dumps(v, sort_keys=True, separators=(",", ":")))}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return _canon(asdict(value))
    return repr(value)


def make_key(*parts: Any) -> str:
    """A hex digest of ``parts`` (JSON-canonicalised; arrays by content)."""
    text = json.dumps(_canon(list(parts)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _head_digest(path: Path, nbytes: int = 65536) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            h.update(fh.read(nbytes))
    except OSError:
        h.update(b"unreadable")
    return h.hexdigest()


def clip_content_id(path: str, files: list[Path] | None = None) -> str:
    """Identity of a clip's content: names, sizes and modification times of its files, plus the
    first 64 KiB of the first, middle and last file. Changes when any frame is re-rendered.
    """
    paths = files if files is not None else [Path(path)]
    h = hashlib.sha256()
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{p.name}|{st.st_size}|{st.st_mtime_ns};".encode())
        except OSError:
            h.update(f"{p.name}|missing;".encode())
    if paths:
        # First, middle and last file, in that order and without repeats. Not a set: a set of
        # paths iterates in an order that changes with the per-process hash seed, which made the
        # id (and every cache or resume check keyed on it) differ from one run to the next.
        for p in dict.fromkeys((paths[0], paths[len(paths) // 2], paths[-1])):
            h.update(_head_digest(p).encode())
    return h.hexdigest()[:32]
