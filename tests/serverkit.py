"""Test kit for the engine server: a small plate, deterministic backends, a real server on loopback.

Fixtures are defined here and imported by the server, client and host test modules (importing a
fixture function into a test module registers it with pytest). Every server is real uvicorn on a
free 127.0.0.1 port, in a thread of the test process, so tests can register test backends and
job kinds in the same registries the server uses.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the server tests need the 'server' extra (fastapi, uvicorn)")
pytest.importorskip("uvicorn", reason="the server tests need the 'server' extra (fastapi, uvicorn)")

from engine.backends import registry  # noqa: E402
from engine.client import RotoClient  # noqa: E402
from engine.server.app import ServerThread  # noqa: E402
from engine.server.settings import ServerConfig  # noqa: E402
from tests.fakes.segmenter import FakeSegmenter  # noqa: E402

FRAMES = 8
WIDTH, HEIGHT = 64, 48


class SlowSegmenter(FakeSegmenter):
    """The fake segmenter, ``delay`` seconds per propagated frame (for cancel / busy / restart tests)."""

    delay = 0.25

    def __init__(self, **kw):
        super().__init__(**kw)
        self.cache_token = f"slow-{time.monotonic_ns()}"  # never served from the result cache

    def propagate(self, state, start, end, direction, obj_ids=None):
        for item in super().propagate(state, start, end, direction, obj_ids):
            time.sleep(self.delay)
            yield item


@pytest.fixture
def fake_backends():
    """Register ``fake`` and ``slowfake`` segmenters (opt-in only: never picked by ``auto``)."""
    registry.segmenters()  # load the built-in ones first
    registry.register_segmenter("fake", lambda **kw: FakeSegmenter(), priority=-10, title="fake test")
    registry.register_segmenter("slowfake", lambda **kw: SlowSegmenter(), priority=-10, title="slow fake test")
    yield
    registry._SEGMENTERS.pop("fake", None)
    registry._SEGMENTERS.pop("slowfake", None)


def write_plate(folder: Path, frames: int = FRAMES, name: str = "plate", seed: int = 7) -> tuple[str, list]:
    from engine.media.synthetic import generate, write_exr_sequence

    sample = generate(width=WIDTH, height=HEIGHT, frames=frames, seed=seed)
    return write_exr_sequence(sample, folder, name=name), sample


@pytest.fixture
def isolated_config(tmp_path, monkeypatch):
    """No test touches ~/.config: the config folder (token, server.json) is under tmp_path."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for var in ("ROTO_TOKEN", "ROTO_TOKEN_FILE", "ROTO_SERVER_URL", "ROTO_SERVER_COMMAND", "ROTO_BACKEND"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "config" / "roto"


@pytest.fixture
def root(tmp_path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    return r


@pytest.fixture
def plate(root) -> tuple[str, list]:
    return write_plate(root / "plate")


def make_config(tmp_path: Path, roots: list[Path], **kw) -> ServerConfig:
    kw.setdefault("lock_timeout", 0.5)
    kw.setdefault("write_discovery", False)
    return ServerConfig(host="127.0.0.1", port=0, roots=roots, state_dir=tmp_path / "state",
                        token_file=tmp_path / "config" / "roto" / "token", **kw)


@contextlib.contextmanager
def running_server(tmp_path: Path, roots: list[Path], **kw):
    srv = ServerThread(make_config(tmp_path, roots, **kw)).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def server(tmp_path, root, isolated_config, fake_backends):
    with running_server(tmp_path, [root]) as srv:
        yield srv


def client_for(srv, **kw) -> RotoClient:
    kw.setdefault("timeout", 20.0)
    kw.setdefault("retries", 1)
    kw.setdefault("backoff", 0.05)
    return RotoClient(url=srv.url, token=srv.token, autostart=False, **kw)


@pytest.fixture
def client(server) -> RotoClient:
    return client_for(server)


def centre(sample, frame: int = 1001) -> tuple[float, float]:
    f = next(s for s in sample if s.frame == frame)
    return float(f.centre[0]), float(f.centre[1])


def wait_until(predicate, timeout: float = 10.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def absent_features(monkeypatch):
    """depth and shapes as an engine without their modules answers (an older engine on the server)."""
    from engine.server import jobs
    from engine.server.schemas import OpenParams

    jobs.job_kinds()  # the built-in kinds first: patched after, restored after
    for name, title in (("depth", "Depth"), ("shapes", "Shapes")):
        monkeypatch.setitem(jobs._KINDS, name, jobs.JobKind(name, title, OpenParams, module=f"engine._absent_{name}.job"))


def env_without(*names: str) -> dict:
    return {k: v for k, v in os.environ.items() if k not in names}
