"""Settings: defaults < config file < environment < explicit arguments.

The config file is TOML, found at ``$ROTO_CONFIG`` or ``~/.config/roto/config.toml``
(``$XDG_CONFIG_HOME`` honoured). Environment variables override single values:

=====================  ===============================================  =================
variable               meaning                                          default
=====================  ===============================================  =================
ROTO_FRAME_CACHE_MB    memory budget of the decoded-frame cache (MiB)   1024
ROTO_CACHE_MB          memory budget of the result cache (MiB)          2048
ROTO_DISK_CACHE_MB     disk-spill budget of the result cache (MiB)      20480
ROTO_CACHE_DIR         disk cache folder                                platform cache dir
ROTO_MODELS            model weights folder                             <cache dir>/models
ROTO_OFFLINE           1 = never download                               0
OCIO                   OpenColorIO config (path or ocio:// URI)          ocio://studio-config-latest
ROTO_MEMORY_BUDGET_MB  memory the engine's caches may use in all (MiB)  15 % of RAM (budgets)
ROTO_CACHE_<KIND>_MB   one cache kind's memory budget (MiB); KIND is    share of the above
                       FRAMES, EMBEDDINGS, MASKS, MATTES or DEPTH
=====================  ===============================================  =================

Per-kind cache budgets and how they are derived from the machine's memory: see
:mod:`engine.cache.budgets` (file keys ``[cache] budget_mb`` and ``[cache.budgets] <kind>_mb``).

Standard library only (``tomllib`` on Python 3.11+, ``tomli`` if installed on 3.10).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from engine.errors import InputError

DEFAULT_OCIO_CONFIG = "ocio://studio-config-latest"
MIB = 1024 * 1024


def _cache_home() -> Path:
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "roto"
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "roto" / "cache"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "roto"


def _config_home() -> Path:
    if os.name == "nt":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "roto"
    return Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "roto"


@dataclass(frozen=True)
class Settings:
    """Engine settings. Sizes are bytes."""

    frame_cache_bytes: int = 1024 * MIB
    cache_bytes: int = 2048 * MIB
    disk_cache_bytes: int = 20480 * MIB
    cache_dir: Path = field(default_factory=_cache_home)
    models_dir: Path | None = None
    offline: bool = False
    ocio_config: str = DEFAULT_OCIO_CONFIG
    #: memory all cache kinds may use together; None = derived from the machine (engine.cache.budgets)
    memory_budget_bytes: int | None = None
    #: per-kind memory budgets set by the config file or environment: ((kind, bytes), ...)
    cache_budgets: tuple[tuple[str, int], ...] = ()
    #: names of the fields the config file or environment set (derived defaults leave those alone)
    explicit: frozenset[str] = frozenset()

    @property
    def weights_dir(self) -> Path:
        return self.models_dir if self.models_dir is not None else self.cache_dir / "models"

    def with_overrides(self, **values: Any) -> Settings:
        """A copy with the given fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})


_ENV: dict[str, tuple[str, Any]] = {
    "ROTO_FRAME_CACHE_MB": ("frame_cache_bytes", lambda v: int(float(v) * MIB)),
    "ROTO_CACHE_MB": ("cache_bytes", lambda v: int(float(v) * MIB)),
    "ROTO_DISK_CACHE_MB": ("disk_cache_bytes", lambda v: int(float(v) * MIB)),
    "ROTO_CACHE_DIR": ("cache_dir", Path),
    "ROTO_MODELS": ("models_dir", Path),
    "ROTO_OFFLINE": ("offline", lambda v: v.strip().lower() in ("1", "true", "yes", "on")),
    "OCIO": ("ocio_config", str),
    "ROTO_MEMORY_BUDGET_MB": ("memory_budget_bytes", lambda v: int(float(v) * MIB)),
}

#: cache kinds with their own memory budget (engine.cache.budgets.KINDS)
CACHE_KINDS: tuple[str, ...] = ("frames", "embeddings", "masks", "mattes", "depth")

# keys accepted in the TOML file: [cache] frame_mb/memory_mb/disk_mb/dir, [models] dir/offline, [colour] ocio
_FILE_KEYS: dict[tuple[str, str], tuple[str, Any]] = {
    ("cache", "frame_mb"): ("frame_cache_bytes", lambda v: int(float(v) * MIB)),
    ("cache", "memory_mb"): ("cache_bytes", lambda v: int(float(v) * MIB)),
    ("cache", "disk_mb"): ("disk_cache_bytes", lambda v: int(float(v) * MIB)),
    ("cache", "dir"): ("cache_dir", lambda v: Path(v).expanduser()),
    ("models", "dir"): ("models_dir", lambda v: Path(v).expanduser()),
    ("models", "offline"): ("offline", bool),
    ("colour", "ocio"): ("ocio_config", str),
    ("cache", "budget_mb"): ("memory_budget_bytes", lambda v: int(float(v) * MIB)),
}


def config_path() -> Path:
    """Where the config file is looked for."""
    env = os.environ.get("ROTO_CONFIG")
    return Path(env).expanduser() if env else _config_home() / "config.toml"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib  # type: ignore[import-not-found]
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise InputError(
                "reading the config file needs Python 3.11 or the 'tomli' package",
                path=str(path),
                hint="pip install tomli, or set the values with ROTO_* environment variables",
            ) from None
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except (OSError, ValueError) as exc:
        raise InputError(f"the config file cannot be read ({exc})", path=str(path),
                         hint="Fix the TOML syntax or remove the file") from exc


def load_settings(env: dict[str, str] | None = None, path: Path | None = None) -> Settings:
    """Settings from defaults, the config file (if any) and the environment."""
    env = dict(os.environ) if env is None else env
    values: dict[str, Any] = {}
    cfg = path if path is not None else config_path()
    if cfg.is_file():
        data = _read_toml(cfg)
        for (section, key), (name, conv) in _FILE_KEYS.items():
            if isinstance(data.get(section), dict) and key in data[section]:
                values[name] = _convert(conv, data[section][key], f"[{section}] {key}", str(cfg))
    budgets: dict[str, int] = {}
    if cfg.is_file():
        table = data.get("cache", {}).get("budgets") if isinstance(data.get("cache"), dict) else None
        for kind in CACHE_KINDS if isinstance(table, dict) else ():
            if f"{kind}_mb" in table:
                budgets[kind] = _convert(lambda v: int(float(v) * MIB), table[f"{kind}_mb"],
                                         f"[cache.budgets] {kind}_mb", str(cfg))
    for var, (name, conv) in _ENV.items():
        if env.get(var):
            values[name] = _convert(conv, env[var], var, None)
    for kind in CACHE_KINDS:
        var = f"ROTO_CACHE_{kind.upper()}_MB"
        if env.get(var):
            budgets[kind] = _convert(lambda v: int(float(v) * MIB), env[var], var, None)
    known = {f.name for f in fields(Settings)}
    kept = {k: v for k, v in values.items() if k in known}
    if budgets:
        kept["cache_budgets"] = tuple(sorted(budgets.items()))
    return Settings(**kept, explicit=frozenset(kept))


def _convert(conv: Any, raw: Any, label: str, path: str | None) -> Any:
    try:
        return conv(raw)
    except (TypeError, ValueError) as exc:
        raise InputError(f"the setting {label} has an invalid value {raw!r}", path=path,
                         hint="Use a number of MiB for sizes, a path for folders") from exc
