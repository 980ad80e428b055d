"""Shared fixtures. Tests that need ../shared/evaldata skip with a reason when it is absent."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Tests never touch the user's cache or config: a private cache folder, no config file.
os.environ.setdefault("ROTO_CACHE_DIR", tempfile.mkdtemp(prefix="roto-test-cache-"))
os.environ.setdefault("ROTO_CONFIG", os.path.join(os.environ["ROTO_CACHE_DIR"], "no-config.toml"))


def _shared_root() -> Path | None:
    env = os.environ.get("ROTO_SHARED")
    cand = Path(env) if env else ROOT.parent / "shared"
    return cand if (cand / "evaldata").is_dir() else None


SHARED = _shared_root()


@pytest.fixture(scope="session")
def evaldata() -> Path:
    """``../shared/evaldata`` (or ``$ROTO_SHARED/evaldata``); skips when absent."""
    if SHARED is None:
        pytest.skip("../shared/evaldata is not here (it ships with the team's workspace, not with the repo); "
                    "set ROTO_SHARED to its parent folder to run this test")
    return SHARED / "evaldata"


def evaldata_path(*parts: str) -> Path:
    """A path under evaldata, skipping the calling test when it is absent."""
    if SHARED is None:
        pytest.skip("../shared/evaldata is not here; set ROTO_SHARED to run this test")
    p = SHARED.joinpath("evaldata", *parts)
    if not p.exists():
        pytest.skip(f"{p} is not here")
    return p
