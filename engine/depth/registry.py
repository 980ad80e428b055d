"""Depth estimators by name; ``auto`` picks the best one whose weights are here and says why.

Mirrors :mod:`engine.backends.registry`. Built-in names: every Depth Anything 3 preset
(``da3-small``, ``da3-base``, ``da3-large``, ``da3-giant``, ``da3metric-large``,
``da3mono-large``, ``da3nested-giant-large``) and ``prior`` (weight-free, a fixed layout).

``auto`` considers **only the Apache-2.0 any-view models** — ``da3-base``, then ``da3-small`` —
when their weights are present. Large and giant (CC BY-NC 4.0, non-commercial) run only when
named, and their licence is printed. ``prior`` is never chosen by ``auto``: with no weights,
``auto`` fails with the exact command to run (``roto models fetch da3-small``), so nobody gets
a fixed layout while believing it is depth.

Third-party estimators register through the entry-point group ``ultimate_rotoscopy.depth``.
Standard library only at import time; availability checks do not import torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.errors import BackendUnavailable

ENTRY_POINT_GROUP = "ultimate_rotoscopy.depth"
DEFAULT_FETCH = "da3-small"


@dataclass(frozen=True)
class DepthRegistration:
    name: str
    factory: Callable[..., Any]  # (**options) -> DepthEstimator
    unavailable: Callable[..., str | None]  # (weights_given=False) -> None when usable, else the reason
    priority: int  # higher wins for `auto`; below 0: by name only
    title: str = ""
    licence: str = ""
    commercial: bool = True


_ESTIMATORS: dict[str, DepthRegistration] = {}
_loaded = False


def register_depth_estimator(name: str, factory: Callable[..., Any], *,
                             unavailable: Callable[..., str | None] = lambda weights_given=False: None,
                             priority: int = 0, title: str = "", licence: str = "", commercial: bool = True) -> None:
    """Add (or replace) a depth estimator."""
    _ESTIMATORS[name] = DepthRegistration(name, factory, unavailable, priority, title or name, licence, commercial)


def _da3_factory(name: str) -> Callable[..., Any]:
    def make(**options: Any) -> Any:
        from engine.depth.da3 import DA3Estimator

        return DA3Estimator(name, **options)

    return make


def _prior_factory(**options: Any) -> Any:
    from engine.depth.prior import PriorEstimator

    options = {k: v for k, v in options.items() if k in ("horizon", "camera_height", "far")}
    return PriorEstimator(**options)


def _load_builtin() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    from engine.depth.da3_info import PRESETS, unavailable

    auto_rank = {"da3-base": 20, "da3-small": 10}
    for name, p in PRESETS.items():
        if name not in _ESTIMATORS:
            register_depth_estimator(
                name, _da3_factory(name),
                unavailable=lambda weights_given=False, _n=name: unavailable(_n, weights_given=weights_given),
                priority=auto_rank.get(name, -1), title=p.title, licence=p.licence, commercial=p.commercial)
    if "prior" not in _ESTIMATORS:
        from engine.depth.prior import TITLE

        register_depth_estimator("prior", _prior_factory, priority=-1, title=TITLE)
    from engine.util.plugins import load_entry_points

    load_entry_points(ENTRY_POINT_GROUP)


def estimators() -> list[DepthRegistration]:
    """Every registered estimator, best first."""
    _load_builtin()
    return sorted(_ESTIMATORS.values(), key=lambda r: -r.priority)


def describe() -> list[tuple[str, str, str | None]]:
    """``(name, title, reason unavailable or None)`` for each estimator, best first."""
    return [(r.name, r.title, r.unavailable()) for r in estimators()]


def _licence_note(r: DepthRegistration) -> str:
    if r.commercial:
        return f"{r.licence}" if r.licence else ""
    return f"{r.licence}: NON-COMMERCIAL use only"


def no_weights_error(skipped: list[str]) -> BackendUnavailable:
    from engine.depth.da3_info import INSTALL, installed

    if not installed():
        return BackendUnavailable(
            "depth needs Depth Anything 3, which is not installed",
            hint=f"Install it with `{INSTALL}` (or `make setup`), then run `roto models fetch {DEFAULT_FETCH}` "
                 f"(~138 MB, Apache-2.0). `--model prior` runs the pipeline on a fixed ground-plane layout, "
                 f"which is not a depth estimate")
    return BackendUnavailable(
        "depth needs Depth Anything 3 weights, and none are here (" + "; ".join(skipped) + ")",
        hint=f"Run `roto models fetch {DEFAULT_FETCH}` (~138 MB, Apache-2.0; or da3-base, ~540 MB) and try again. "
             f"`--model prior` runs the pipeline on a fixed ground-plane layout, which is not a depth estimate")


def resolve_depth_estimator(name: str = "auto", *, weights_given: bool = False) -> tuple[str, str]:
    """The estimator name for ``name`` and a sentence saying which and why."""
    regs = estimators()
    if name in ("auto", "", None):
        skipped: list[str] = []
        for r in regs:
            if r.priority < 0:
                continue
            reason = r.unavailable()
            if reason is None:
                note = _licence_note(r)
                return r.name, f"using {r.title}" + (f" ({note})" if note else "") + (
                    ": " + "; ".join(skipped) if skipped else "")
            skipped.append(reason)
        raise no_weights_error(skipped)
    by_name = {r.name: r for r in regs}
    key = name.strip().lower()
    if key not in by_name:
        raise BackendUnavailable(f"there is no depth model named {name!r}",
                                 hint="Choose one of: auto, " + ", ".join(sorted(by_name)))
    r = by_name[key]
    reason = r.unavailable(weights_given=weights_given)
    if reason is not None:
        raise BackendUnavailable(f"the {key} depth model cannot run: {reason}")
    note = _licence_note(r)
    return key, f"using {r.title}" + (f" ({note})" if note else "") + ", asked for by name"


def get_depth_estimator(name: str = "auto", **options: Any) -> tuple[Any, str]:
    """Build the estimator for ``name`` (``auto`` = best available); returns it and the reason text.

    ``options`` go to the factory (``weights``, ``device``, ``precision``, ``process_res``,
    ``chunk`` for Depth Anything 3; ``weights="random"`` builds random weights).
    """
    weights = options.get("weights")
    chosen, why = resolve_depth_estimator(name, weights_given=weights is not None)
    return _ESTIMATORS[chosen].factory(**{k: v for k, v in options.items() if v is not None}), why
