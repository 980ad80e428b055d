"""Server settings: where it listens, what it may touch, where it keeps its state.

Defaults < environment < ``roto serve`` arguments:

=======================  ==================================================  ==========================
variable                 meaning                                             default
=======================  ==================================================  ==========================
ROTO_SERVER_HOST         address to bind                                     127.0.0.1
ROTO_SERVER_PORT         port                                                47810
ROTO_SERVER_ROOTS        folders requests may name, ``os.pathsep``-separated  the home folder
ROTO_SERVER_STATE        jobs database and server-made session files         <cache dir>/server
ROTO_SERVER_MAX_BODY_MB  largest request body accepted (MiB)                 8
ROTO_TOKEN_FILE          the token file                                      <config dir>/token
=======================  ==================================================  ==========================

Standard library only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import InputError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _default_roots() -> list[Path]:
    return [Path.home()]


def _default_state() -> Path:
    from engine.config import load_settings

    return Path(load_settings().cache_dir) / "server"


@dataclass
class ServerConfig:
    """Everything ``roto serve`` needs; tests build one directly."""

    host: str = "127.0.0.1"
    port: int = 47810
    roots: list[Path] = field(default_factory=_default_roots)
    state_dir: Path | None = None  # None: <cache dir>/server
    token_file: Path | None = None  # None: engine.client.token_path()
    max_body_bytes: int = 8 * 1024 * 1024
    workers: int = 2  # background job threads (GPU jobs still run one at a time)
    lock_timeout: float = 10.0  # seconds an interactive request waits for a busy session or the GPU
    max_attempts: int = 3  # a job interrupted by a server stop is resumed at most this often
    write_discovery: bool = True  # write <config dir>/server.json (URL, pid) for clients

    def __post_init__(self) -> None:
        self.roots = [Path(r).expanduser() for r in self.roots]
        if self.state_dir is None:
            self.state_dir = _default_state()
        self.state_dir = Path(self.state_dir).expanduser()
        if not self.roots:
            raise InputError("the server needs at least one root folder", hint="Pass --root DIR")
        for r in self.roots:
            if not r.is_absolute():
                raise InputError(f"the root {r} is not an absolute path", hint="Give full paths to --root")

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> ServerConfig:
        """Defaults, then ``ROTO_SERVER_*`` variables, then ``overrides`` (``None`` values ignored)."""
        env = dict(os.environ) if env is None else env
        values: dict = {}
        try:
            if env.get("ROTO_SERVER_HOST"):
                values["host"] = env["ROTO_SERVER_HOST"]
            if env.get("ROTO_SERVER_PORT"):
                values["port"] = int(env["ROTO_SERVER_PORT"])
            if env.get("ROTO_SERVER_ROOTS"):
                values["roots"] = [Path(p) for p in env["ROTO_SERVER_ROOTS"].split(os.pathsep) if p.strip()]
            if env.get("ROTO_SERVER_STATE"):
                values["state_dir"] = Path(env["ROTO_SERVER_STATE"])
            if env.get("ROTO_SERVER_MAX_BODY_MB"):
                values["max_body_bytes"] = int(float(env["ROTO_SERVER_MAX_BODY_MB"]) * 1024 * 1024)
        except ValueError as exc:
            raise InputError(f"a ROTO_SERVER_* variable has a bad value ({exc})") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
