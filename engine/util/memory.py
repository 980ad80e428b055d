"""Give freed frame-sized buffers back to the operating system at once (glibc's allocator).

A long job allocates and frees thousands of arrays of a few MB to a few hundred MB (frames, crops,
flows, sparse systems) from several threads. glibc serves blocks above its *mmap threshold* with
their own mappings, returned to the system on ``free``; but the threshold starts at 128 KiB and
*rises* (up to 32 MiB) each time such a block is freed, after which arrays below it come from the
threads' heaps, where freed memory stays resident until the heap's top is free. A 4K job then
holds hundreds of MB it no longer uses. :func:`return_freed_memory` pins the threshold (and the
heap trim threshold) so that every block of ``threshold`` bytes or more is a mapping of its own.

Linux with glibc only; elsewhere (macOS, Windows, musl) it does nothing and says so.
Equivalent to starting the process with ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``.
"""

from __future__ import annotations

import sys

__all__ = ["return_freed_memory"]

_M_TRIM_THRESHOLD = -1  # <malloc.h>
_M_MMAP_THRESHOLD = -3


def return_freed_memory(threshold: int = 1 << 20) -> bool:
    """Pin glibc's mmap and trim thresholds to ``threshold`` bytes; True when it took effect."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, int(threshold)) == 1
    return bool(ok and mallopt(_M_TRIM_THRESHOLD, int(threshold)) == 1)
