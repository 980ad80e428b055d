"""The engine as a local service: ``roto serve`` (see docs/decisions/DR009-server-and-hosts.md).

Host Pythons (Nuke, Flame, Resolve) cannot load torch, so the engine runs as a local HTTP
service and hosts talk to it through :mod:`engine.client` (standard library only).

* :mod:`engine.server.app` — the FastAPI application: routes, token check, request limits,
  errors as data (``{"error": {"code", "text", ...}}``, never a traceback);
* :mod:`engine.server.settings` — host, port, roots, state folder, limits;
* :mod:`engine.server.auth` — the bearer token (created on first start, mode 0600);
* :mod:`engine.server.roots` — every path a request names must lie under a configured root;
* :mod:`engine.server.schemas` — pydantic models validating every request;
* :mod:`engine.server.sessions` — open sessions, one lock each; interactive edits;
* :mod:`engine.server.jobs` — the registry of job kinds and the background runner (progress,
  cancel, one GPU lock, persistence in SQLite so a restarted server resumes or reports jobs);
* :mod:`engine.server.kinds` — the built-in job kinds: track, export, matte, qc, depth, shapes.

Importing this package loads the standard library only; FastAPI/uvicorn are imported by
:mod:`engine.server.app` (extra ``server``).
"""

from __future__ import annotations
