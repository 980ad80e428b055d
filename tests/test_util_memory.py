"""``engine.util.memory.return_freed_memory``: freed frame-sized buffers leave the process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from engine.util.memory import return_freed_memory

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from engine.util.memory import return_freed_memory

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    pinned = sys.argv[1] == "1"
    if pinned:
        assert return_freed_memory()
    big = np.ones(8 << 20, np.uint8)  # freeing a large mapping raises glibc's dynamic threshold
    del big
    base = rss()
    keep, arrays = [], []
    for i in range(150):  # 2 MiB buffers with long-lived 64 KiB ones between them (fragmentation)
        arrays.append(np.ones(2 << 20, np.uint8))
        keep.append(np.ones(64 << 10, np.uint8))
    del arrays
    print(rss() - base)
""")


def _held_after_free(pinned: bool) -> int:
    out = subprocess.run([sys.executable, "-c", SCRIPT, "1" if pinned else "0"], capture_output=True, text=True,
                         check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator (Linux) only")
def test_pinned_threshold_gives_freed_buffers_back():
    if not return_freed_memory():
        pytest.skip("not glibc: mallopt is unavailable")
    # without the pin glibc keeps ~300 MiB of the freed buffers resident here (the holes between
    # the 64 KiB ones); with it, next to nothing
    assert _held_after_free(pinned=True) < 32 << 20


def test_return_freed_memory_is_a_no_op_elsewhere(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert return_freed_memory() is False
