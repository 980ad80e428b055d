"""Entry-point plugins: each is imported; a broken one is skipped and the others still load."""

from __future__ import annotations

import importlib.metadata

from engine.util.plugins import load_entry_points


class _EP:
    def __init__(self, fn):
        self.load = fn


def test_broken_plugins_are_skipped(monkeypatch):
    loaded = []

    def broken():
        raise ImportError("needs a package that is not installed")

    eps = {"ultimate_rotoscopy.test": [_EP(broken), _EP(lambda: loaded.append("good"))]}
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: eps.get(group, []))
    load_entry_points("ultimate_rotoscopy.test")
    assert loaded == ["good"]


def test_broken_metadata_does_not_raise(monkeypatch):
    def bad(group):
        raise RuntimeError("corrupt dist-info")

    monkeypatch.setattr(importlib.metadata, "entry_points", bad)
    load_entry_points("ultimate_rotoscopy.test")  # returns quietly: the engine's own backends still work
    from engine.backends.registry import resolve_segmenter

    assert resolve_segmenter("classical")[0] == "classical"
