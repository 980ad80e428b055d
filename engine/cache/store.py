"""The engine's result cache: a memory LRU with a byte budget that spills to disk.

One interface for masks, embeddings, flows and mattes: ``get(namespace, key)`` /
``put(namespace, key, value)``. Items pushed out of memory are written to
``<dir>/<namespace>/<key[:2]>/<key>.pkl`` (atomically); the disk tier keeps its own byte
budget by deleting the least recently used files. Values are anything picklable (numpy
arrays, dicts of arrays, results).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import threading
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from engine.cache.lru import ByteLRU, default_sizeof
from engine.util.atomic import atomic_path


def _sizeof(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_sizeof(v) for v in value.values()) + 64
    if hasattr(value, "__dataclass_fields__"):
        return sum(_sizeof(getattr(value, f)) for f in value.__dataclass_fields__) + 64
    return default_sizeof(value)


class Cache:
    """Memory LRU + disk spill. ``disk_dir=None`` keeps everything in memory only."""

    def __init__(self, memory_bytes: int, disk_dir: str | Path | None = None, disk_bytes: int = 0) -> None:
        self.disk_dir = Path(disk_dir) if disk_dir is not None else None
        self.disk_bytes = int(disk_bytes)
        self._disk_lock = threading.Lock()
        self._memory: ByteLRU[Any] = ByteLRU(memory_bytes, sizeof=_sizeof, on_evict=self._spill)
        self.disk_hits = 0
        self.disk_writes = 0

    # --- public --------------------------------------------------------------------------

    def get(self, namespace: str, key: str) -> Any | None:
        item = self._memory.get((namespace, key))
        if item is not None:
            return item
        path = self._path(namespace, key)
        if path is None or not path.is_file():
            return None
        try:
            with open(path, "rb") as fh:
                value = pickle.load(fh)
            os.utime(path)  # mark as recently used for the disk LRU
        except Exception:  # a damaged cache file is a miss, never an error
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        self.disk_hits += 1
        self._memory.put((namespace, key), value)
        return value

    def put(self, namespace: str, key: str, value: Any, *, persist: bool = False) -> None:
        """Store ``value``. ``persist=True`` also writes it to disk now (small, costly-to-recompute
        results that later processes should find); otherwise it reaches disk only when evicted."""
        kept = self._memory.put((namespace, key), value)
        if persist or not kept:
            self._spill((namespace, key), value)  # larger than the memory budget: straight to disk

    def __contains__(self, item: tuple[str, str]) -> bool:
        ns, key = item
        if item in self._memory:
            return True
        path = self._path(ns, key)
        return path is not None and path.is_file()

    def stats(self) -> dict[str, int]:
        s = self._memory.stats()
        s.update(disk_hits=self.disk_hits, disk_writes=self.disk_writes, disk_bytes=self._disk_usage()[0])
        return s

    def clear_memory(self) -> None:
        self._memory.clear()

    # --- disk tier -----------------------------------------------------------------------

    def _path(self, namespace: str, key: str) -> Path | None:
        if self.disk_dir is None or self.disk_bytes <= 0:
            return None
        return self.disk_dir / namespace / key[:2] / f"{key}.pkl"

    def _spill(self, item: Hashable, value: Any) -> None:
        namespace, key = item  # type: ignore[misc]
        path = self._path(namespace, key)
        if path is None or path.exists():
            return
        try:
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
            self.disk_writes += 1
        except Exception:
            return  # a cache that cannot spill just forgets; it never fails the work
        self._trim_disk()

    def _disk_usage(self) -> tuple[int, list[tuple[float, int, Path]]]:
        files: list[tuple[float, int, Path]] = []
        total = 0
        if self.disk_dir is None or not self.disk_dir.exists():
            return 0, files
        for root, _dirs, names in os.walk(self.disk_dir):
            for n in names:
                if not n.endswith(".pkl"):
                    continue
                p = Path(root) / n
                try:
                    st = p.stat()
                except OSError:
                    continue
                files.append((st.st_mtime, st.st_size, p))
                total += st.st_size
        return total, files

    def _trim_disk(self) -> None:
        with self._disk_lock:
            total, files = self._disk_usage()
            if total <= self.disk_bytes:
                return
            for _mtime, size, p in sorted(files):
                with contextlib.suppress(OSError):
                    p.unlink()
                    total -= size
                if total <= self.disk_bytes:
                    break


_default: Cache | None = None
_default_lock = threading.Lock()


def default_cache() -> Cache:
    """The process-wide cache sized by the settings (ROTO_CACHE_MB, ROTO_DISK_CACHE_MB, ROTO_CACHE_DIR)."""
    global _default
    with _default_lock:
        if _default is None:
            from engine.config import load_settings

            s = load_settings()
            _default = Cache(s.cache_bytes, s.cache_dir / "results", s.disk_cache_bytes)
        return _default


def set_default_cache(cache: Cache | None) -> None:
    """Replace the process-wide cache (tests, servers with their own budgets)."""
    global _default
    with _default_lock:
        _default = cache
