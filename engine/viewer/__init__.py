"""The browser viewer: one place to prompt, review and deliver, the same from every host or none.

``roto serve`` serves it at ``http://127.0.0.1:PORT/``; ``roto open PLATE|SESSION`` starts the
server when needed and opens the page through a one-time sign-in link. The page is plain
HTML/CSS/JavaScript shipped in ``engine/viewer/static`` (no build step, nothing fetched from the
internet). See docs/viewer.md and docs/decisions/DR013-viewer.md.

* :mod:`engine.viewer.auth` — login link → HttpOnly SameSite=Strict cookie; the same-origin gate.
* :mod:`engine.viewer.media` — plate proxies, overlays, mattes, depth, thumbnails (cached).
* :mod:`engine.viewer.routes` — the page, its files and the viewer endpoints; ``mount_viewer``.

Importing this package loads nothing heavy.
"""

from __future__ import annotations
