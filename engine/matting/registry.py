"""Matters by name, mirroring the segmenter registry (:mod:`engine.backends.registry`).

A matter is registered with a factory and a cheap availability check (None when it can run,
else a sentence why not). ``auto`` picks the available matter with the highest priority among
those with priority >= 0: the weight-free ``classical`` matter. ``keyer`` (green/blue screen) and
``matanyone`` (non-commercial licence, needs its package and weights) are chosen by name.
Third-party packages can add matters through the entry-point group
``ultimate_rotoscopy.matters``. Standard library only at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.errors import BackendUnavailable

ENTRY_POINT_GROUP = "ultimate_rotoscopy.matters"


@dataclass(frozen=True)
class MatterRegistration:
    name: str
    factory: Callable[..., Any]  # (**options) -> Matter
    unavailable: Callable[[], str | None]
    priority: int  # higher wins for `auto`; below 0: by name only
    title: str = ""


_MATTERS: dict[str, MatterRegistration] = {}
_loaded = False


def register_matter(name: str, factory: Callable[..., Any], *, unavailable: Callable[[], str | None] = lambda: None,
                    priority: int = 0, title: str = "") -> None:
    """Add (or replace) a matter."""
    _MATTERS[name] = MatterRegistration(name, factory, unavailable, priority, title or name)


def _classical(**options: Any) -> Any:
    from engine.matting.classical import ClassicalMatter

    return ClassicalMatter(**options)


def _classical_unavailable() -> str | None:
    from engine.matting.classical import _unavailable

    return _unavailable()


def _keyer(**options: Any) -> Any:
    from engine.matting.keyer import KeyerMatter

    return KeyerMatter(**options)


def _matanyone(**options: Any) -> Any:
    from engine.matting.matanyone import MatAnyoneMatter

    return MatAnyoneMatter(**options)


def _matanyone_unavailable() -> str | None:
    from engine.matting.matanyone import unavailable

    return unavailable()


def _load_builtin() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    _MATTERS.setdefault("classical", MatterRegistration(
        "classical", _classical, _classical_unavailable, 0, "classical (weight-free, temporally stable closed-form)"))
    _MATTERS.setdefault("keyer", MatterRegistration(
        "keyer", _keyer, _classical_unavailable, -1, "colour-difference keyer (green/blue screen)"))
    _MATTERS.setdefault("matanyone", MatterRegistration(
        "matanyone", _matanyone, _matanyone_unavailable, -1, "MatAnyone (non-commercial licence)"))
    from engine.util.plugins import load_entry_points

    load_entry_points(ENTRY_POINT_GROUP)


def matters() -> list[MatterRegistration]:
    """Every registered matter, best first."""
    _load_builtin()
    return sorted(_MATTERS.values(), key=lambda r: -r.priority)


def describe() -> list[tuple[str, str, str | None]]:
    """``(name, title, reason unavailable or None)`` for each matter, best first."""
    return [(r.name, r.title, r.unavailable()) for r in matters()]


def resolve_matter(name: str = "auto") -> tuple[str, str]:
    """The matter to use for ``name`` and a sentence saying which and why."""
    regs = matters()
    if name == "auto":
        skipped: list[str] = []
        for r in regs:
            if r.priority < 0:
                continue
            reason = r.unavailable()
            if reason is None:
                why = f"matting with the {r.title} backend"
                return r.name, why + (": " + "; ".join(skipped) if skipped else "")
            skipped.append(reason)
        raise BackendUnavailable("no matting backend can run here: " + "; ".join(skipped))
    by_name = {r.name: r for r in regs}
    if name not in by_name:
        raise BackendUnavailable(f"there is no matting backend named {name!r}",
                                 hint="Choose one of: auto, " + ", ".join(sorted(by_name)))
    reason = by_name[name].unavailable()
    if reason is not None:
        raise BackendUnavailable(f"the {name} matting backend cannot run: {reason}")
    return name, f"matting with the {by_name[name].title} backend, asked for by name"


def get_matter(name: str = "auto", **options: Any) -> tuple[Any, str]:
    """Build the matter for ``name``; returns it and the reason text."""
    chosen, why = resolve_matter(name)
    return _MATTERS[chosen].factory(**options), why
