"""Third-party backends registered through Python entry points. Standard library only."""

from __future__ import annotations


def load_entry_points(group: str) -> None:
    """Import every plugin of the entry-point ``group`` (each registers itself on import); a broken
    plugin, or broken package metadata, is skipped: it must never break the engine."""
    try:
        from importlib.metadata import entry_points

        found = entry_points(group=group)
    except Exception:
        return
    for ep in found:
        try:
            ep.load()
        except Exception:
            continue
