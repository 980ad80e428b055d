"""Per-kind cache budgets derived from the machine's memory, and integrity checks for cache files.

The engine caches five kinds of things, each with its own memory budget and LRU:

=============  ===========================================================  ==========================
kind           what                                                         cache namespaces
=============  ===========================================================  ==========================
``frames``     decoded plate frames (the :class:`~engine.media.clip.Clip`   (the clip's own LRU)
               frame cache)
``embeddings`` image-encoder features (SAM 2)                               ``sam2-features``
``masks``      propagation runs (RLE masks per frame)                       ``runs``
``mattes``     soft alpha                                                   ``mattes``
``depth``      depth / normals                                              ``depth``
=============  ===========================================================  ==========================

**Where budgets come from** (later wins): derived defaults < the config file
(``[cache] budget_mb``, ``[cache.budgets] frames_mb`` …) < the environment
(``ROTO_MEMORY_BUDGET_MB``, ``ROTO_CACHE_FRAMES_MB`` …) < explicit arguments (``roto batch
--memory-budget 3G --cache masks=64M``). The legacy single values still count: an explicit
``ROTO_FRAME_CACHE_MB`` sets ``frames``; an explicit ``ROTO_CACHE_MB`` is shared among the result
kinds.

**Derived defaults**: the total is 15 % of the machine's memory (the smaller of physical memory
and the cgroup limit), at least 512 MiB and at most 16 GiB, split by :data:`SHARES`. A 16 GiB
workstation gets 2.4 GiB of caches; a 64 GiB one 9.6 GiB.

**Integrity** (:func:`seal` / :func:`unseal`): every file the disk tier writes starts with a magic
line and a BLAKE2b digest of its payload; a file whose digest does not match (a torn write, a
flipped bit, another program's file) reads as a miss and is deleted — never as wrong data.

Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Any

from engine.errors import InputError

MIB = 1024 * 1024
GIB = 1024 * MIB

KINDS: tuple[str, ...] = ("frames", "embeddings", "masks", "mattes", "depth")
#: fraction of the total memory budget each kind gets by default
SHARES: dict[str, float] = {"frames": 0.40, "embeddings": 0.30, "masks": 0.05, "mattes": 0.15, "depth": 0.10}
#: cache namespace -> kind (namespaces not listed share the cache's general budget)
NAMESPACE_KINDS: dict[str, str] = {"frames": "frames", "sam2-features": "embeddings", "runs": "masks",
                                   "masks": "masks", "mattes": "mattes", "depth": "depth"}
DEFAULT_FRACTION = 0.15
MIN_TOTAL = 512 * MIB
MAX_TOTAL = 16 * GIB
#: derived total of a batch run (``roto batch``): 100 frames of 1080p (track, matte, export, 2 cores)
#: took 111 s with 1 GiB of caches and 139 s with the 3.6 GiB derived on a 24 GiB machine, at
#: 2.1 GB against 3.2 GB peak resident memory (DR012)
BATCH_TOTAL = 1 * GIB


def kind_of(namespace: str) -> str | None:
    """The budget kind of a cache namespace, or None (general budget)."""
    return NAMESPACE_KINDS.get(namespace)


# --- the machine -------------------------------------------------------------------------------


def machine_memory_bytes() -> int:
    """Usable memory: physical memory, or the cgroup (container) limit when that is lower."""
    total = 0
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as fh:
                text = fh.read().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < (total or 1 << 62):
            total = int(text)
    return total or 8 * GIB


def default_total(machine_bytes: int | None = None) -> int:
    """The derived memory budget of all caches together (see the module doc)."""
    mem = machine_memory_bytes() if machine_bytes is None else int(machine_bytes)
    return int(min(MAX_TOTAL, max(MIN_TOTAL, DEFAULT_FRACTION * mem)))


# --- parsing -----------------------------------------------------------------------------------

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": MIB, "k": 1024, "m": MIB, "g": GIB, "t": 1024 * GIB}


def parse_size(text: str | int | float, what: str = "size") -> int:
    """``"512M"``, ``"2G"``, ``"1.5GiB"``, ``"300"`` (MiB) → bytes."""
    if isinstance(text, (int, float)):
        return int(float(text) * MIB)
    m = _SIZE.match(str(text))
    if not m:
        raise InputError(f"the {what} {text!r} is not a size", hint="Write it like 512M, 2G or 300 (MiB)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_budget_spec(text: str) -> dict[str, int]:
    """``"frames=512M,masks=64M"`` → ``{"frames": ..., "masks": ...}`` (bytes)."""
    out: dict[str, int] = {}
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        if "=" not in part:
            raise InputError(f"the cache budget {part!r} is not KIND=SIZE", hint=f"Kinds: {', '.join(KINDS)}")
        kind, size = (s.strip().lower() for s in part.split("=", 1))
        if kind not in KINDS:
            raise InputError(f"there is no cache kind {kind!r}", hint=f"Kinds: {', '.join(KINDS)}")
        out[kind] = parse_size(size, f"{kind} budget")
    return out


# --- resolution --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheBudgets:
    """Memory budget per kind (bytes), the disk-spill budget and where each number came from."""

    memory: dict[str, int]
    disk_bytes: int
    total: int
    source: dict[str, str] = field(default_factory=dict)  # kind -> derived | settings | argument

    @property
    def result_kinds(self) -> dict[str, int]:
        """The budgets of the result cache's kinds (everything but decoded frames)."""
        return {k: v for k, v in self.memory.items() if k != "frames"}

    def to_dict(self) -> dict[str, Any]:
        return {"memory_mb": {k: round(v / MIB, 1) for k, v in self.memory.items()},
                "disk_mb": round(self.disk_bytes / MIB, 1), "total_mb": round(self.total / MIB, 1),
                "source": dict(self.source)}


def resolve_budgets(settings: Any = None, *, overrides: dict[str, int] | None = None,
                    memory_budget: int | None = None, machine_bytes: int | None = None,
                    derived_cap: int | None = None) -> CacheBudgets:
    """Budgets from derived defaults < settings (file, environment) < ``overrides``/``memory_budget``.

    ``derived_cap`` caps the *derived* total only (a budget the user set is never lowered): batch
    jobs stream every frame through once, so caches larger than :data:`BATCH_TOTAL` do not make
    them faster and only raise their resident memory.
    """
    if settings is None:
        from engine.config import load_settings

        settings = load_settings()
    explicit = getattr(settings, "explicit", frozenset())
    if memory_budget is not None:
        total, total_source = int(memory_budget), "argument"
    elif getattr(settings, "memory_budget_bytes", None):
        total, total_source = int(settings.memory_budget_bytes), "settings"
    else:
        total, total_source = default_total(machine_bytes), "derived"
        if derived_cap is not None:
            total = min(total, int(derived_cap))
    memory = {k: int(total * SHARES[k]) for k in KINDS}
    source = {k: total_source for k in KINDS}
    if "frame_cache_bytes" in explicit:
        memory["frames"], source["frames"] = int(settings.frame_cache_bytes), "settings"
    if "cache_bytes" in explicit and memory_budget is None:
        share = sum(SHARES[k] for k in KINDS if k != "frames")
        for k in KINDS:
            if k != "frames":
                memory[k], source[k] = int(settings.cache_bytes * SHARES[k] / share), "settings"
    for k, v in dict(getattr(settings, "cache_budgets", ()) or ()).items():
        if k in memory:
            memory[k], source[k] = int(v), "settings"
    for k, v in (overrides or {}).items():
        if k not in memory:
            raise InputError(f"there is no cache kind {k!r}", hint=f"Kinds: {', '.join(KINDS)}")
        memory[k], source[k] = int(v), "argument"
    disk = int(getattr(settings, "disk_cache_bytes", 0) or 0)
    return CacheBudgets(memory=memory, disk_bytes=disk, total=sum(memory.values()), source=source)


# --- integrity ---------------------------------------------------------------------------------

MAGIC = b"ROTOCACHE1\n"
_DIGEST = 32


def seal(payload: bytes) -> bytes:
    """``payload`` with a magic line and its BLAKE2b-256 digest in front."""
    return MAGIC + hashlib.blake2b(payload, digest_size=_DIGEST).digest() + payload


def unseal(data: bytes) -> bytes | None:
    """The payload of a sealed blob, or None when it is not one or its digest does not match."""
    head = len(MAGIC) + _DIGEST
    if len(data) < head or not data.startswith(MAGIC):
        return None
    digest, payload = data[len(MAGIC):head], data[head:]
    if hashlib.blake2b(payload, digest_size=_DIGEST).digest() != digest:
        return None
    return payload
