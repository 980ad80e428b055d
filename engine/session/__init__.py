"""Roto sessions: objects, prompts, locked keyframes, results with provenance, undo/redo,
propagation planning, the project file. ``from engine.session import Session``."""

from __future__ import annotations

from typing import Any

__all__ = ["Session"]


def __getattr__(name: str) -> Any:
    if name == "Session":
        from engine.session.session import Session

        return Session
    raise AttributeError(f"module 'engine.session' has no attribute {name!r}")
