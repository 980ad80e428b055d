"""Persistence of sessions and jobs in one SQLite file (``<state dir>/server.sqlite3``).

What a restarted server needs: which project file each session id names (sessions reopen
lazily), and every job with its parameters, state, last progress, result or error. Writes are
serialised by a lock; WAL mode keeps readers from blocking. Standard library only.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL UNIQUE,
    key TEXT,
    clip TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_key ON sessions(key);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    kind TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    progress TEXT,
    result TEXT,
    error TEXT,
    attempt INTEGER NOT NULL DEFAULT 1,
    created REAL NOT NULL,
    started REAL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
"""


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class Store:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=10)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _exec(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # --- sessions ---------------------------------------------------------------------------

    def add_session(self, sid: str, project: str, key: str | None, clip: str, options: dict) -> None:
        self._exec("INSERT OR REPLACE INTO sessions (id, project, key, clip, options, created, closed) "
                   "VALUES (?, ?, ?, ?, ?, ?, 0)", (sid, project, key, clip, json.dumps(options), time.time()))

    def session_row(self, sid: str) -> dict | None:
        rows = self._exec("SELECT * FROM sessions WHERE id = ?", (sid,))
        return self._session(rows[0]) if rows else None

    def session_by(self, *, project: str | None = None, key: str | None = None) -> dict | None:
        if project is not None:
            rows = self._exec("SELECT * FROM sessions WHERE project = ?", (project,))
        else:
            rows = self._exec("SELECT * FROM sessions WHERE key = ? ORDER BY created DESC", (key,))
        return self._session(rows[0]) if rows else None

    def sessions(self) -> list[dict]:
        """Every session this state folder knows, oldest first."""
        return [self._session(r) for r in self._exec("SELECT * FROM sessions ORDER BY created")]

    def set_session_closed(self, sid: str, closed: bool) -> None:
        self._exec("UPDATE sessions SET closed = ? WHERE id = ?", (int(closed), sid))

    @staticmethod
    def _session(row: sqlite3.Row) -> dict:
        d = dict(row)
        d["options"] = json.loads(d.get("options") or "{}")
        return d

    # --- jobs -------------------------------------------------------------------------------

    def save_job(self, job: dict) -> None:
        self._exec("INSERT OR REPLACE INTO jobs (id, session, kind, params, state, progress, result, error, attempt, "
                   "created, started, finished) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (job["id"], job["session"], job["kind"], _dump(job["params"]), job["state"], _dump(job.get("progress")),
                    _dump(job.get("result")), _dump(job.get("error")), job.get("attempt", 1), job["created"],
                    job.get("started"), job.get("finished")))

    def jobs(self, states: tuple[str, ...] | None = None) -> list[dict]:
        if states:
            marks = ",".join("?" * len(states))
            rows = self._exec(f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY created", tuple(states))
        else:
            rows = self._exec("SELECT * FROM jobs ORDER BY created")
        return [self._job(r) for r in rows]

    def job(self, jid: str) -> dict | None:
        rows = self._exec("SELECT * FROM jobs WHERE id = ?", (jid,))
        return self._job(rows[0]) if rows else None

    @staticmethod
    def _job(row: sqlite3.Row) -> dict:
        d = dict(row)
        for k in ("params", "progress", "result", "error"):
            d[k] = _load(d[k])
        return d
