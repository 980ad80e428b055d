"""Where weights live, fetching them, and checking them.

Layout: ``<models dir>/<name>/<filename>`` (``$ROTO_MODELS``, else ``<cache dir>/models``, see
:mod:`engine.config`), plus ``<models dir>/checksums.json``: the SHA-256 and size of every file
whose publisher prints no digest, recorded at its first complete download (or first
``verify`` of a copied-in file) and checked by every later ``verify``.

Sources, first match wins: an explicit URL (``roto models fetch NAME --url URL``), then
``$ROTO_MODEL_MIRROR`` (a studio mirror with the same ``<name>/<filename>`` layout; ``http(s)://``
or ``file://``), then the official location from :mod:`engine.models.catalogue`.

Backends call :func:`require` for their weights: it is a cheap ``stat`` (size against the
recorded size), and its error names the fetch command. Full hashing is ``roto models verify``.

Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import ModelError
from engine.models.catalogue import CATALOGUE, get
from engine.models.download import (DownloadResult, ProgressFn, download, file_lock, is_local, part_path, sha256_file,
                                     size_problem, source_url)

CHECKSUMS = "checksums.json"


@dataclass(frozen=True)
class VerifyResult:
    name: str
    path: Path
    status: str  # ok | recorded | missing | mismatch | wrong-size
    sha256: str | None = None
    expected: str | None = None
    source: str | None = None  # published | recorded
    problem: str | None = None  # wrong-size: the sentence naming both sizes

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "recorded")


class ModelManager:
    """Model files under one folder. ``offline``/``root``/``mirror`` default to the settings."""

    def __init__(self, root: str | os.PathLike[str] | None = None, *, offline: bool | None = None,
                 mirror: str | None = None) -> None:
        if root is None or offline is None:
            from engine.config import load_settings

            s = load_settings()
            root = s.weights_dir if root is None else root
            offline = s.offline if offline is None else offline
        self.root = Path(root).expanduser()
        self.offline = bool(offline)
        self.mirror = mirror if mirror is not None else (os.environ.get("ROTO_MODEL_MIRROR") or None)

    # --- paths -----------------------------------------------------------------------------

    def path(self, name: str) -> Path:
        e = get(name)
        return self.root / e.name / e.filename

    def find(self, name: str) -> Path | None:
        p = self.path(name)
        return p if p.is_file() else None

    def partial_bytes(self, name: str) -> int:
        p = part_path(self.path(name))
        return p.stat().st_size if p.exists() else 0

    def url_for(self, name: str, url: str | None = None) -> str:
        """Where ``name`` comes from: ``url``, else the mirror, else the official location.

        Plain paths are accepted for both (turned into ``file://`` URLs: a local copy)."""
        e = get(name)
        if url:
            return source_url(url, what="--url")
        if self.mirror:
            base = source_url(self.mirror, what="ROTO_MODEL_MIRROR", folder=True)
            return base.rstrip("/") + f"/{e.name}/{e.filename}"
        return e.url

    # --- recorded checksums --------------------------------------------------------------------

    def recorded(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads((self.root / CHECKSUMS).read_text("utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _record(self, name: str, digest: str, size: int, url: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with file_lock(self.root / ".checksums.lock"):
            data = self.recorded()
            data[name] = {"sha256": digest, "size": size, "url": url,
                          "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            tmp = self.root / (CHECKSUMS + ".tmp")
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True), "utf-8")
            os.replace(tmp, self.root / CHECKSUMS)

    def expected(self, name: str) -> tuple[str | None, str | None]:
        """``(sha256, source)``: the published digest, else the recorded one, else ``(None, None)``."""
        e = get(name)
        if e.sha256:
            return e.sha256.lower(), "published"
        rec = self.recorded().get(e.name)
        if rec and rec.get("sha256"):
            return str(rec["sha256"]).lower(), "recorded"
        return None, None

    # --- fetch / verify ------------------------------------------------------------------------

    def fetch(self, name: str, *, url: str | None = None, force: bool = False, progress: ProgressFn | None = None,
              on_wait: Callable[[], None] | None = None, **kwargs: Any) -> DownloadResult:
        """Download ``name`` (resuming a kept part); a present file is kept unless ``force``.

        With ``force`` the new file is downloaded beside the present one and replaces it only when
        complete and checked: on any failure the present file is untouched. A file far from the
        catalogue's size is refused and its digest is not recorded.
        """
        e = get(name)
        dest = self.path(e.name)
        if dest.is_file() and not force:
            digest, _src = self.expected(e.name)
            return DownloadResult(dest, digest or "", dest.stat().st_size, 0, 0, True)
        source = self.url_for(e.name, url)
        replacing = dest.is_file()
        if replacing and self.offline and not is_local(source):
            raise ModelError("offline mode is on: not replacing the present file", path=str(dest),
                             hint="Unset ROTO_OFFLINE, or fetch from a local copy with --url PATH or ROTO_MODEL_MIRROR")
        digest, src = self.expected(e.name)
        exact_size = e.size if (e.size and not e.approx) else None
        if src == "recorded":
            exact_size = self.recorded()[e.name].get("size") or exact_size
        approx = e.size if (e.size and e.approx) else None
        try:
            result = download(source, dest, sha256=digest, size=exact_size, offline=self.offline, progress=progress,
                              on_wait=on_wait, replace=force, approx_size=approx, name=e.name, **kwargs)
        except ModelError as exc:
            if replacing and dest.is_file():
                raise ModelError(f"{exc.message.rstrip('.')}; the old weights were kept", path=exc.path or str(dest),
                                 hint=exc.hint) from exc
            raise
        if digest is None:
            self._record(e.name, result.sha256, result.size, source)
        return result

    def forget(self, name: str) -> bool:
        """Drop the recorded digest of ``name`` (the publisher replaced the file on purpose)."""
        e = get(name)
        with file_lock(self.root / ".checksums.lock"):
            data = self.recorded()
            if data.pop(e.name, None) is None:
                return False
            tmp = self.root / (CHECKSUMS + ".tmp")
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True), "utf-8")
            os.replace(tmp, self.root / CHECKSUMS)
        return True

    def verify(self, name: str, progress: ProgressFn | None = None) -> VerifyResult:
        """Hash the file and compare it with the published or recorded digest (recording it if neither)."""
        e = get(name)
        p = self.path(e.name)
        if not p.is_file():
            return VerifyResult(e.name, p, "missing")
        problem = size_problem(p.stat().st_size, e.size if e.approx else None)
        if problem is not None:  # not these weights: never record its digest as trusted
            return VerifyResult(e.name, p, "wrong-size", problem=problem)
        digest = sha256_file(p, progress)
        expected, src = self.expected(e.name)
        if expected is None:
            self._record(e.name, digest, p.stat().st_size, "local copy")
            return VerifyResult(e.name, p, "recorded", digest, None, None)
        status = "ok" if digest == expected else "mismatch"
        return VerifyResult(e.name, p, status, digest, expected, src)

    def require(self, name: str, purpose: str) -> Path:
        """The weights file for ``name``, or a ModelError naming the fetch command (cheap: no hashing)."""
        e = get(name)
        p = self.path(e.name)
        if not p.is_file():
            offline = " (offline mode is on: copy the file there instead)" if self.offline else ""
            raise ModelError(f"{purpose} needs the {e.title} weights, which are not in {p.parent}{offline}",
                             hint=f"Run `roto models fetch {e.name}` ({e.size_text}, {e.licence})")
        rec = self.recorded().get(e.name)
        size = p.stat().st_size
        if rec and rec.get("size") and int(rec["size"]) != size:
            raise ModelError(f"the {e.title} weights are {size} bytes, {rec['size']} were downloaded: the file "
                             "was changed or truncated", path=str(p),
                             hint=f"Run `roto models fetch {e.name} --force` (or `roto models verify {e.name}`)")
        return p

    def rows(self) -> list[dict[str, Any]]:
        """One row per catalogue entry for ``roto models list``."""
        out = []
        rec = self.recorded()
        for e in CATALOGUE:
            p = self.root / e.name / e.filename
            if p.is_file():
                status = "present"
            elif self.partial_bytes(e.name):
                pct = f" {100 * self.partial_bytes(e.name) / e.size:.0f}%" if e.size else ""
                status = f"partial{pct} (fetch resumes)"
            else:
                status = "missing"
            checksum = "published" if e.sha256 else ("recorded" if e.name in rec else "recorded at first fetch")
            out.append({"name": e.name, "family": e.family, "title": e.title, "size": e.size_text,
                        "size_bytes": e.size, "licence": e.licence, "commercial": e.commercial, "gated": e.gated,
                        "status": status, "checksum": checksum, "url": e.url, "path": str(p), "notes": e.notes})
        return out


def default_manager() -> ModelManager:
    return ModelManager()


def find_weights(name: str) -> Path | None:
    """The weights file for ``name`` if it is present (no hashing, no network)."""
    with contextlib.suppress(ModelError):
        return default_manager().find(name)
    return None


def require(name: str, purpose: str) -> Path:
    """See :meth:`ModelManager.require`."""
    return default_manager().require(name, purpose)
