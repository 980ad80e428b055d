"""The engine's result cache: a memory LRU with a byte budget that spills to disk.

One interface for masks, embeddings, flows and mattes: ``get(namespace, key)`` /
``put(namespace, key, value)``. Items pushed out of memory are written to
``<dir>/<namespace>/<key[:2]>/<key>.pkl`` (atomically); the disk tier keeps its own byte
budget by deleting the least recently used files. Values are anything picklable (numpy
arrays, dicts of arrays, results).

**Per-kind budgets**: namespaces of a kind with a budget (``budgets={"masks": ..., "embeddings":
...}``, see :mod:`engine.cache.budgets`) get their own memory LRU, so a flood of one kind (encoder
features) never evicts another (propagation runs). **Integrity**: disk files are sealed with a
digest of their payload (:func:`engine.cache.budgets.seal`); a file that does not verify is a miss
and is deleted.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import threading
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

from engine.cache.budgets import kind_of, seal, unseal
from engine.cache.lru import ByteLRU, default_sizeof
from engine.util.atomic import atomic_path


def _sizeof(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_sizeof(v) for v in value.values()) + 64
    if hasattr(value, "__dataclass_fields__"):
        return sum(_sizeof(getattr(value, f)) for f in value.__dataclass_fields__) + 64
    return default_sizeof(value)


class Cache:
    """Memory LRU + disk spill. ``disk_dir=None`` keeps everything in memory only.

    ``memory_bytes`` bounds the general LRU; ``budgets`` (kind -> bytes) gives the namespaces of
    those kinds their own LRU (:data:`engine.cache.budgets.NAMESPACE_KINDS`).
    """

    def __init__(self, memory_bytes: int, disk_dir: str | Path | None = None, disk_bytes: int = 0, *,
                 budgets: Mapping[str, int] | None = None) -> None:
        self.disk_dir = Path(disk_dir) if disk_dir is not None else None
        self.disk_bytes = int(disk_bytes)
        self._disk_lock = threading.Lock()
        self._disk_total: int | None = None  # running estimate of the disk tier's size (scanned once)
        self._memory: ByteLRU[Any] = ByteLRU(memory_bytes, sizeof=_sizeof, on_evict=self._spill)
        self._kinds: dict[str, ByteLRU[Any]] = {
            k: ByteLRU(int(v), sizeof=_sizeof, on_evict=self._spill) for k, v in (budgets or {}).items()}
        self.disk_hits = 0
        self.disk_writes = 0
        self.integrity_failures = 0

    def _lru(self, namespace: str) -> ByteLRU[Any]:
        kind = kind_of(namespace)
        return self._kinds.get(kind, self._memory) if kind is not None else self._memory

    # --- public --------------------------------------------------------------------------

    def get(self, namespace: str, key: str) -> Any | None:
        lru = self._lru(namespace)
        item = lru.get((namespace, key))
        if item is not None:
            return item
        path = self._path(namespace, key)
        if path is None or not path.is_file():
            return None
        try:
            with open(path, "rb") as fh:
                payload = unseal(fh.read())
            if payload is None:
                self.integrity_failures += 1
                raise ValueError("the cache file does not verify")
            value = pickle.loads(payload)
            os.utime(path)  # mark as recently used for the disk LRU
        except Exception:  # a damaged cache file is a miss, never an error
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        self.disk_hits += 1
        lru.put((namespace, key), value)
        return value

    def put(self, namespace: str, key: str, value: Any, *, persist: bool = False, replace: bool = False) -> None:
        """Store ``value``. ``persist=True`` also writes it to disk now (small, costly-to-recompute
        results that later processes should find); otherwise it reaches disk only when evicted.
        Keys are content keys, so a file already on disk is kept as it is, unless ``replace=True``
        (a value that grows under one key, such as the frames an interrupted run finished)."""
        kept = self._lru(namespace).put((namespace, key), value)
        if persist or not kept:
            self._spill((namespace, key), value, replace)  # larger than the memory budget: straight to disk

    def __contains__(self, item: tuple[str, str]) -> bool:
        ns, key = item
        if item in self._lru(ns):
            return True
        path = self._path(ns, key)
        return path is not None and path.is_file()

    def stats(self) -> dict[str, Any]:
        s: dict[str, Any] = self._memory.stats()
        for lru in self._kinds.values():
            k = lru.stats()
            for name in ("items", "bytes", "budget", "hits", "misses"):
                s[name] += k[name]
        s["kinds"] = {kind: lru.stats() for kind, lru in self._kinds.items()}
        s.update(disk_hits=self.disk_hits, disk_writes=self.disk_writes, disk_bytes=self._disk_usage()[0],
                 integrity_failures=self.integrity_failures)
        return s

    def clear_memory(self) -> None:
        self._memory.clear()
        for lru in self._kinds.values():
            lru.clear()

    # --- disk tier -----------------------------------------------------------------------

    def _path(self, namespace: str, key: str) -> Path | None:
        if self.disk_dir is None or self.disk_bytes <= 0:
            return None
        return self.disk_dir / namespace / key[:2] / f"{key}.pkl"

    def _spill(self, item: Hashable, value: Any, replace: bool = False) -> None:
        namespace, key = item  # type: ignore[misc]
        path = self._path(namespace, key)
        if path is None or (path.exists() and not replace):
            return
        old = 0
        if replace:
            with contextlib.suppress(OSError):
                old = path.stat().st_size
        try:
            blob = seal(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                fh.write(blob)
            self.disk_writes += 1
        except Exception:
            return  # a cache that cannot spill just forgets; it never fails the work
        with self._disk_lock:
            if self._disk_total is not None:
                self._disk_total += len(blob) - old
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
        """Delete the least recently used files while the disk tier is over its budget (down to 90 %
        of it, so the next writes fit). The folder is scanned once, then again only when the
        running total says the budget is exceeded."""
        with self._disk_lock:
            if self._disk_total is not None and self._disk_total <= self.disk_bytes:
                return
            total, files = self._disk_usage()
            if total > self.disk_bytes:
                target = int(self.disk_bytes * 0.9)
                for _mtime, size, p in sorted(files):
                    with contextlib.suppress(OSError):
                        p.unlink()
                        total -= size
                    if total <= target:
                        break
            self._disk_total = total


_default: Cache | None = None
_default_lock = threading.Lock()


def default_cache() -> Cache:
    """The process-wide cache sized by the settings (ROTO_CACHE_MB, ROTO_DISK_CACHE_MB, ROTO_CACHE_DIR), with
    per-kind budgets from :func:`engine.cache.budgets.resolve_budgets`."""
    global _default
    with _default_lock:
        if _default is None:
            from engine.config import load_settings

            from engine.cache.budgets import resolve_budgets

            s = load_settings()
            budgets = resolve_budgets(s)
            _default = Cache(s.cache_bytes, s.cache_dir / "results", s.disk_cache_bytes,
                             budgets=budgets.result_kinds)
        return _default


def set_default_cache(cache: Cache | None) -> None:
    """Replace the process-wide cache (tests, servers with their own budgets)."""
    global _default
    with _default_lock:
        _default = cache
