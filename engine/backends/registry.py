"""Backends by name. ``auto`` picks the best one available here and says why.

A backend is registered with a factory and an availability check that returns ``None`` when it
can run, or a sentence saying why not (missing package, missing weights). Availability checks
must be cheap and must not import torch when a lighter test exists. Third-party packages can
add backends through the entry-point group ``ultimate_rotoscopy.segmenters``.

Standard library only at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.errors import BackendUnavailable

ENTRY_POINT_GROUP = "ultimate_rotoscopy.segmenters"


@dataclass(frozen=True)
class Registration:
    name: str
    factory: Callable[..., Any]  # (**options) -> Segmenter
    unavailable: Callable[[], str | None]  # None when usable, else the reason
    priority: int  # higher wins for `auto`; below 0: only by name, never picked by `auto`
    title: str = ""
    detail: Callable[[], str] | None = None  # what exactly will run, e.g. "sam2.1-tiny weights"


_SEGMENTERS: dict[str, Registration] = {}
_entry_points_loaded = False


def register_segmenter(name: str, factory: Callable[..., Any], *, unavailable: Callable[[], str | None] = lambda: None,
                       priority: int = 0, title: str = "", detail: Callable[[], str] | None = None) -> None:
    """Add (or replace) a segmenter backend. ``detail()`` (optional, cheap) names what will run."""
    _SEGMENTERS[name] = Registration(name, factory, unavailable, priority, title or name, detail)


def _using(r: Registration) -> str:
    text = f"using the {r.title} backend"
    if r.detail is not None:
        try:
            extra = r.detail()
        except Exception:  # a description must never break backend selection
            extra = ""
        if extra:
            text += f" ({extra})"
    return text


def _load_builtin() -> None:
    if "classical" not in _SEGMENTERS:
        from engine.backends.classical import segmenter as _classical  # noqa: F401  (registers itself)
    for module in ("engine.backends.sam2_backend", "engine.backends.sam3_backend"):
        try:
            __import__(module)
        except ImportError:
            pass  # a backend module that cannot even be imported is simply not offered
    global _entry_points_loaded
    if not _entry_points_loaded:
        _entry_points_loaded = True
        from engine.util.plugins import load_entry_points

        load_entry_points(ENTRY_POINT_GROUP)


def segmenters() -> list[Registration]:
    """Every registered segmenter, best first."""
    _load_builtin()
    return sorted(_SEGMENTERS.values(), key=lambda r: -r.priority)


def describe() -> list[tuple[str, str, str | None]]:
    """``(name, title, reason unavailable or None)`` for each backend, best first."""
    return [(r.name, r.title, r.unavailable()) for r in segmenters()]


def resolve_segmenter(name: str = "auto") -> tuple[str, str]:
    """The backend name to use for ``name`` and a sentence saying which and why."""
    regs = segmenters()
    if name == "auto":
        skipped: list[str] = []
        for r in regs:
            if r.priority < 0:
                continue  # opt-in backends are chosen by name only
            reason = r.unavailable()
            if reason is None:
                why = _using(r)
                if skipped:
                    why += ": " + "; ".join(skipped)
                return r.name, why
            skipped.append(reason)
        raise BackendUnavailable("no segmentation backend can run here: " + "; ".join(skipped))
    by_name = {r.name: r for r in regs}
    if name not in by_name:
        raise BackendUnavailable(f"there is no backend named {name!r}",
                                 hint="Choose one of: auto, " + ", ".join(sorted(by_name)))
    reason = by_name[name].unavailable()
    if reason is not None:
        raise BackendUnavailable(f"the {name} backend cannot run: {reason}")
    return name, _using(by_name[name]) + ", asked for by name"


def get_segmenter(name: str = "auto", **options: Any) -> tuple[Any, str]:
    """Build the backend for ``name`` (``auto`` = best available); returns it and the reason text."""
    chosen, why = resolve_segmenter(name)
    return _SEGMENTERS[chosen].factory(**options), why
