"""A thread-safe least-recently-used cache bounded by bytes, not by item count.

Values report their size through ``nbytes`` (numpy arrays) or a ``sizeof`` callable.
Standard library only.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

V = TypeVar("V")


def default_sizeof(value: Any) -> int:
    """Bytes held by ``value``: ``nbytes`` for arrays, a sum for tuples, else ``sys.getsizeof``."""
    n = getattr(value, "nbytes", None)
    if isinstance(n, int):
        return n
    if isinstance(value, (tuple, list)):
        return sum(default_sizeof(v) for v in value)
    return sys.getsizeof(value)


class ByteLRU(Generic[V]):
    """LRU mapping whose total size stays within ``budget_bytes``.

    An item larger than the whole budget is not kept (``put`` returns False). ``on_evict``
    is called with ``(key, value)`` for every item pushed out, outside the lock, so a disk
    tier can spill it.
    """

    def __init__(
        self,
        budget_bytes: int,
        sizeof: Callable[[Any], int] = default_sizeof,
        on_evict: Callable[[Hashable, V], None] | None = None,
    ) -> None:
        if budget_bytes < 0:
            raise ValueError("budget_bytes must be >= 0")
        self.budget_bytes = int(budget_bytes)
        self._sizeof = sizeof
        self._on_evict = on_evict
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    @property
    def bytes_used(self) -> int:
        return self._bytes

    def get(self, key: Hashable, default: V | None = None) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return default
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: Hashable, value: V) -> bool:
        size = int(self._sizeof(value))
        evicted: list[tuple[Hashable, V]] = []
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if size > self.budget_bytes:
                return False
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.budget_bytes and self._items:
                k, (v, s) = self._items.popitem(last=False)
                self._bytes -= s
                evicted.append((k, v))
        if self._on_evict is not None:
            for k, v in evicted:
                self._on_evict(k, v)
        return True

    def pop(self, key: Hashable) -> V | None:
        with self._lock:
            item = self._items.pop(key, None)
            if item is None:
                return None
            self._bytes -= item[1]
            return item[0]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def stats(self) -> dict[str, int]:
        return {"items": len(self._items), "bytes": self._bytes, "budget": self.budget_bytes,
                "hits": self.hits, "misses": self.misses}
