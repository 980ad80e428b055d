"""The server's bearer token: made on first start, kept in a 0600 file the host client reads.

The file is ``engine.client.token_path()`` (``$ROTO_TOKEN_FILE`` or ``<config dir>/token``), so
the server and every host client agree on it without configuration. Standard library only.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
import sys
from pathlib import Path

from engine.errors import OutputError


def default_token_file() -> Path:
    from engine.client import token_path

    return Path(token_path())


def load_or_create_token(path: Path | None = None) -> str:
    """The token in ``path``; a new random one is written there (mode 0600) when there is none.

    A file readable by others is tightened to 0600 (a warning is printed): the token is the only
    thing between another local user and the engine.
    """
    path = Path(path) if path is not None else default_token_file()
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise OutputError(f"the token file cannot be read ({exc.strerror})", path=str(path)) from exc
    if text:
        if os.name != "nt":
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                os.chmod(path, 0o600)
                print(f"roto: warning: {path} was readable by others (mode {mode:o}); it is now 0600", file=sys.stderr)
        return text
    token = secrets.token_urlsafe(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(token + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"the token file cannot be written ({exc.strerror})", path=str(path),
                          hint="Set ROTO_TOKEN_FILE to a writable place") from exc
    return token


def check_header(header: str | None, token: str) -> str | None:
    """None when ``Authorization: Bearer <token>`` matches, else why not (a sentence)."""
    if not header:
        return ("the request has no token; send 'Authorization: Bearer <token>' with the token from the server's "
                "token file (engine.client reads it)")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return "the Authorization header must read 'Bearer <token>'"
    if not hmac.compare_digest(value.strip().encode("utf-8"), token.encode("utf-8")):
        return "the token does not match this server's; the host may be reading another user's or an old token file"
    return None
