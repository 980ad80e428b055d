"""Undo/redo: every edit is a :class:`Command` holding an exact patch of the session tables.

A patch records, for each touched entry, its value *before* and *after* the edit (``None`` =
absent). Undo writes the befores back, redo writes the afters: no model is re-run, so undoing
a propagation restores the previous masks bit for bit. Commands serialise to JSON with the
project file, so the history survives a reopen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from engine.session.model import FrameResult, PromptRecord, RotoObject, SessionData

TABLES = ("objects", "prompts", "keyframes", "results", "scalars")
_MISSING = object()


@dataclass
class Change:
    table: str
    key: Any
    before: Any
    after: Any


@dataclass
class Command:
    """One undoable edit: a label for menus (``"propagate forward 1001-1100"``) and its changes."""

    label: str
    changes: list[Change] = field(default_factory=list)
    time: float = field(default_factory=time.time)

    @property
    def empty(self) -> bool:
        return not self.changes


class Recorder:
    """Collects changes while a session method edits its data (keeps the first 'before')."""

    def __init__(self, data: SessionData, label: str) -> None:
        self.data = data
        self.command = Command(label)
        self._index: dict[tuple[str, Any], Change] = {}

    def set(self, table: str, key: Any, value: Any) -> None:
        """Set ``table[key] = value`` (``None`` deletes) and record it."""
        before = _get(self.data, table, key)
        ident = (table, key)
        if ident in self._index:
            self._index[ident].after = value
        else:
            ch = Change(table, key, before, value)
            self._index[ident] = ch
            self.command.changes.append(ch)
        _put(self.data, table, key, value)

    def finish(self) -> Command:
        self.command.changes = [c for c in self.command.changes if c.before != c.after]
        return self.command


def _get(data: SessionData, table: str, key: Any) -> Any:
    if table == "scalars":
        return getattr(data, key)
    return getattr(data, table).get(key)


def _put(data: SessionData, table: str, key: Any, value: Any) -> None:
    if table == "scalars":
        setattr(data, key, value)
        return
    tab = getattr(data, table)
    if value is None:
        tab.pop(key, None)
    else:
        tab[key] = value


def apply(data: SessionData, command: Command, *, undo: bool) -> None:
    """Write the command's befores (undo) or afters (redo) into ``data``."""
    changes = reversed(command.changes) if undo else command.changes
    for ch in changes:
        _put(data, ch.table, ch.key, ch.before if undo else ch.after)


class History:
    """Undo and redo stacks with a length limit (oldest commands are forgotten first)."""

    def __init__(self, limit: int = 100) -> None:
        self.limit = limit
        self.undo_stack: list[Command] = []
        self.redo_stack: list[Command] = []

    def push(self, command: Command) -> None:
        if command.empty:
            return
        self.undo_stack.append(command)
        del self.undo_stack[: max(0, len(self.undo_stack) - self.limit)]
        self.redo_stack.clear()

    def undo(self, data: SessionData) -> Command | None:
        if not self.undo_stack:
            return None
        cmd = self.undo_stack.pop()
        apply(data, cmd, undo=True)
        self.redo_stack.append(cmd)
        return cmd

    def redo(self, data: SessionData) -> Command | None:
        if not self.redo_stack:
            return None
        cmd = self.redo_stack.pop()
        apply(data, cmd, undo=False)
        self.undo_stack.append(cmd)
        return cmd


# --- serialisation --------------------------------------------------------------------------


def encode_key(table: str, key: Any) -> Any:
    if table in ("keyframes", "results"):
        return f"{key[0]}:{key[1]}"
    return key


def decode_key(table: str, key: Any) -> Any:
    if table in ("keyframes", "results"):
        o, f = str(key).split(":")
        return (int(o), int(f))
    if table == "objects":
        return int(key)
    return key


def encode_value(table: str, value: Any) -> Any:
    if value is None or table in ("keyframes", "scalars"):
        return value
    return value.to_dict()


def decode_value(table: str, value: Any) -> Any:
    if value is None or table in ("keyframes", "scalars"):
        return value
    return {"objects": RotoObject, "prompts": PromptRecord, "results": FrameResult}[table].from_dict(value)


def command_to_dict(cmd: Command) -> dict[str, Any]:
    return {
        "label": cmd.label,
        "time": cmd.time,
        "changes": [
            {"table": c.table, "key": encode_key(c.table, c.key),
             "before": encode_value(c.table, c.before), "after": encode_value(c.table, c.after)}
            for c in cmd.changes
        ],
    }


def command_from_dict(d: dict[str, Any]) -> Command:
    changes = []
    for c in d.get("changes", []):
        t = c["table"]
        if t not in TABLES:
            raise ValueError(f"unknown table {t!r} in history")
        changes.append(Change(t, decode_key(t, c["key"]), decode_value(t, c.get("before")), decode_value(t, c.get("after"))))
    return Command(str(d.get("label", "")), changes, float(d.get("time", 0.0)))
