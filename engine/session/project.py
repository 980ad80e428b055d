"""The session project file (``*.roto.json``): JSON, written atomically, versioned.

Layout (version 1)::

    {"format": "ultimate-rotoscopy.session", "version": 1, "engine": "0.1.0",
     "id": "...", "saved": 1764000000.0, "backend": "auto",
     "clip": {"path": ..., "relative_path": ..., "first": ..., "last": ..., "width": ..., "height": ...,
              "content_id": ...},
     "objects": [{"id": 1, "name": "hero", "colour": [r, g, b]}],
     "prompts": [{"uid", "object_id", "frame", "kind", "data"}],
     "keyframes": [{"object": 1, "frame": 1001, "mask": {"size": [H, W], "rle": "..."}}],
     "results": [{"object": 1, "frame": 1002, "mask": {...}, "backend", "direction", "source",
                  "confidence", "occluded"}],
     "next_object_id": 2, "meta": {...},
     "history": {"undo": [command...], "redo": [command...]}}

Masks are RLE (:mod:`engine.ops.rle`). Unknown newer versions are refused with a sentence.
The plate's ``path`` is absolute and ``relative_path`` is relative to the project file (older files
hold the path as typed); see :mod:`engine.session.plate` for how the plate is found again.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine import __version__
from engine.errors import Cancelled, RotoError, SessionError
from engine.session.history import History, command_from_dict, command_to_dict
from engine.session.model import ClipRef, FrameResult, PromptRecord, RotoObject, SessionData
from engine.util.atomic import write_bytes, write_text

FORMAT = "ultimate-rotoscopy.session"
VERSION = 1


def to_document(data: SessionData, history: History | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "engine": __version__,
        "id": data.id,
        "saved": time.time(),
        "backend": data.backend,
        "clip": data.clip.to_dict(),
        "objects": [o.to_dict() for o in sorted(data.objects.values(), key=lambda o: o.id)],
        "prompts": [p.to_dict() for p in sorted(data.prompts.values(), key=lambda p: (p.object_id, p.frame, p.uid))],
        "keyframes": [{"object": o, "frame": f, "mask": m} for (o, f), m in sorted(data.keyframes.items())],
        "results": [{"object": o, "frame": f, **r.to_dict()} for (o, f), r in sorted(data.results.items())],
        "next_object_id": data.next_object_id,
        "meta": data.meta,
    }
    if history is not None:
        doc["history"] = {"undo": [command_to_dict(c) for c in history.undo_stack],
                          "redo": [command_to_dict(c) for c in history.redo_stack]}
    return doc


def from_document(doc: dict[str, Any], source: str = "") -> tuple[SessionData, History]:
    if doc.get("format") != FORMAT:
        raise SessionError("this is not a roto session file (not an Ultimate Rotoscopy session)", path=source,
                           hint="Open a .roto.json file written by `roto track --session`")
    version = int(doc.get("version", 0))
    if version > VERSION:
        raise SessionError(f"the session was written by a newer engine (format {version}, this engine reads {VERSION})",
                           path=source, hint="Update Ultimate Rotoscopy to open it")
    try:
        data = SessionData(
            clip=ClipRef.from_dict(doc["clip"]),
            backend=str(doc.get("backend", "auto")),
            objects={o.id: o for o in (RotoObject.from_dict(d) for d in doc.get("objects", []))},
            prompts={p.uid: p for p in (PromptRecord.from_dict(d) for d in doc.get("prompts", []))},
            keyframes={(int(k["object"]), int(k["frame"])): dict(k["mask"]) for k in doc.get("keyframes", [])},
            results={(int(r["object"]), int(r["frame"])): FrameResult.from_dict(r) for r in doc.get("results", [])},
            next_object_id=int(doc.get("next_object_id", 1)),
            id=str(doc.get("id") or ""),
            meta=dict(doc.get("meta") or {}),
        )
        history = History()
        hist = doc.get("history") or {}
        history.undo_stack = [command_from_dict(c) for c in hist.get("undo", [])]
        history.redo_stack = [command_from_dict(c) for c in hist.get("redo", [])]
    except (KeyError, TypeError, ValueError) as exc:
        raise SessionError(f"the session file is damaged ({type(exc).__name__}: {exc})", path=source,
                           hint="Restore it from the autosave (.bak) or a backup") from exc
    return data, history


def save(path: str | Path, data: SessionData, history: History | None = None) -> None:
    """Write the project file atomically; the previous version is kept as ``<file>.bak``."""
    from engine.session.plate import relative_plate_path

    p = Path(path)
    rel = relative_plate_path(data.clip.path, p)
    if rel != data.clip.relative_path:  # relative to where the project is saved now
        data.clip = replace(data.clip, relative_path=rel)
    text = json.dumps(to_document(data, history), separators=(",", ":"))
    if p.exists():
        bak = p.with_name(p.name + ".bak")
        try:  # keep the previous version under a second name; the main name is replaced atomically
            bak.unlink(missing_ok=True)
            os.link(p, bak)
        except OSError:
            pass
    write_text(p, text)


def load(path: str | Path) -> tuple[SessionData, History]:
    p = Path(path)
    not_session = "Give the .roto.json file written by `roto track --session`"
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SessionError("the session file does not exist", path=str(p)) from None
    except IsADirectoryError:
        raise SessionError("this is a folder, not a roto session file", path=str(p), hint=not_session) from None
    except UnicodeDecodeError:
        raise SessionError("this is not a roto session file (it is not JSON text)", path=str(p),
                           hint=not_session) from None
    except OSError as exc:
        raise SessionError(f"the session file cannot be read ({exc.strerror})", path=str(p)) from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SessionError(f"the session file is not valid JSON (line {exc.lineno}): it is not a roto session "
                           "file, or it is damaged", path=str(p),
                           hint=not_session + "; a damaged one can be restored from the .bak beside it") from exc
    if not isinstance(doc, dict):
        raise SessionError("this is not a roto session file (it is JSON, but not a session)", path=str(p),
                           hint=not_session)
    return from_document(doc, str(p))


#: folders kept beside a project file (see engine.session.sidecar): a new session's are removed
#: with it when the command that made it fails
SIDECAR_KINDS = ("alpha", "depth")


@contextlib.contextmanager
def preserved(path: str | Path | None) -> Iterator[None]:
    """All or nothing on disk: when the block fails, the project file ``path`` and its ``.bak``
    are put back byte for byte as they were before it (or removed, with a new session's sidecar
    folders, when the block created them). A cancel (:class:`Cancelled`) keeps what was saved:
    the session is consistent and holds the work finished so far.
    """
    if path is None:
        yield
        return
    p = Path(path)
    bak = p.with_name(p.name + ".bak")
    before: dict[Path, bytes | None] = {}
    for f in (p, bak):
        try:
            before[f] = _read_or_none(f)
        except OSError:  # a folder, unreadable: not ours to restore (opening it explains the problem)
            pass
    sidecars = [] if before.get(p, b"") is not None else [
        d for d in (p.with_name(f"{p.name}.{kind}") for kind in SIDECAR_KINDS) if not os.path.lexists(d)]
    try:
        yield
    except Cancelled:
        raise
    except Exception:
        for f, data in before.items():
            try:
                if data is None:
                    f.unlink(missing_ok=True)
                elif _read_or_none(f) != data:
                    write_bytes(f, data)
            except (OSError, RotoError):  # the original error is the one to report
                pass
        for d in sidecars:
            shutil.rmtree(d, ignore_errors=True)
        raise


def _read_or_none(f: Path) -> bytes | None:
    """The file's bytes; None when it does not exist (an unreadable one is an error)."""
    try:
        return f.read_bytes()
    except FileNotFoundError:
        return None
