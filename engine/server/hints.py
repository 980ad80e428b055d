"""Host-neutral hints for errors a server job reports.

The engine's errors are written for the ``roto`` CLI: their hints name commands and options
(``roto track … --session FILE``, ``--model prior``) that an artist in Nuke, Flame or Resolve
cannot type. A job's error goes through :func:`job_error`, which keeps the message and rewrites
such a hint as the step the artist takes in the host ("Track an object first"); the CLI keeps
its own sentences. Standard library only.
"""

from __future__ import annotations

import re
from typing import Any

from engine.errors import RotoError

#: messages whose hint names a CLI step: the hint a host shows instead
BY_MESSAGE = {
    "the session has no objects": "Track an object first",
    "the session has no objects to matte": "Track an object first",
    "the session has nothing to export: no objects yet": "Track an object first",
    "the session has no depth yet": "Run Depth on this clip first",
}

_CLI_ASIDE = re.compile(r"\s*\((?:roto |[^)]*--)[^)]*\)")  # "(roto track)", "(roto track … --session FILE)"
_CLI_OPTION = re.compile(r"`?--[a-z][a-z-]*")  # a CLI option (--model prior, --session FILE, --layers rgba)


def host_hint(message: str, hint: str | None) -> str | None:
    """``hint`` without the CLI steps a host's artist cannot take (None when nothing is left)."""
    if not hint:
        return hint
    if message.rstrip(". ") in BY_MESSAGE and ("roto " in hint or "--" in hint):
        return BY_MESSAGE[message.rstrip(". ")]
    hint = _CLI_ASIDE.sub("", hint)
    sentences = re.split(r"(?<=[.!?])\s+", hint.strip())
    kept = [s for s in sentences if not _CLI_OPTION.search(s)]
    return " ".join(kept).strip() or None


def job_error(exc: RotoError) -> dict[str, Any]:
    """``exc.to_dict()`` for a job's record, with a host-neutral hint and sentence."""
    data = exc.to_dict()
    hint = host_hint(exc.message, exc.hint)
    if hint != exc.hint:
        saved = exc.hint
        try:
            exc.hint = hint
            data["hint"], data["text"] = hint, exc.sentence()
        finally:
            exc.hint = saved
    return data
