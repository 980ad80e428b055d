"""Resumable, verified downloads of model weights (standard library only).

:func:`download` fetches ``url`` into ``<dest>.part`` and renames it to ``dest`` only when it is
complete and its SHA-256 matches, so ``dest`` is either absent or a whole, checked file:

* **resume**: an interrupted transfer keeps ``<dest>.part`` (plus ``<dest>.part.json`` with the
  URL and the server's ETag / Last-Modified); the next call asks for ``Range: bytes=N-`` with
  ``If-Range``, appends what the server sends (206) and starts again when the server answers
  with the whole file (200, e.g. the file changed). Dropped connections are retried in the same
  call, each retry resuming where the previous one stopped;
* **checksum**: the digest is computed while the bytes arrive (the kept part is hashed first on a
  resume). A mismatch deletes the part and raises :class:`~engine.errors.ModelError`: no
  partial or wrong file is left behind;
* **offline**: ``offline=True`` never touches the network; a missing file is an error that says
  where to put a copy;
* **lock**: ``<dest>.lock`` is held (``flock``/``msvcrt``) for the whole transfer, so two
  processes fetching the same file do not interleave; the second waits and then finds the file;
* **progress**: ``progress(done_bytes, total_bytes_or_None)`` after every chunk.

Hugging Face URLs get ``Authorization: Bearer $HF_TOKEN`` (gated models such as SAM 3); the header
is not forwarded on redirects to the CDN.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

from engine.errors import ModelError

ProgressFn = Callable[[int, "int | None"], None]
CHUNK = 1 << 20


@dataclass(frozen=True)
class DownloadResult:
    """What :func:`download` did."""

    path: Path
    sha256: str
    size: int
    downloaded: int  # bytes fetched over the network by this call
    resumed_from: int  # bytes already in the part file when this call started
    already_present: bool  # dest existed (e.g. another process fetched it while we waited)


def sha256_file(path: str | os.PathLike[str], progress: ProgressFn | None = None) -> str:
    """The hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    done = 0
    total = os.path.getsize(path)
    with open(path, "rb") as fh:
        while True:
            block = fh.read(CHUNK)
            if not block:
                break
            h.update(block)
            done += len(block)
            if progress:
                progress(done, total)
    return h.hexdigest()


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _meta_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part.json")


def _lock_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".lock")


def is_local(url: str) -> bool:
    """Whether ``url`` is a ``file://`` URL (a local copy: allowed offline, no network)."""
    return urllib.parse.urlparse(url).scheme.lower() == "file"


def source_url(value: str, *, what: str = "--url", folder: bool = False) -> str:
    """``value`` as a URL: ``http(s)://`` and ``file://`` URLs as given, a plain path as ``file://``.

    ``folder``: the path must be a directory (a mirror), else a file. Anything else is a
    ModelError sentence.
    """
    text = str(value).strip()
    scheme = urllib.parse.urlparse(text).scheme.lower()
    if scheme in ("http", "https", "file"):
        return text
    if scheme and len(scheme) > 1:  # ftp://, s3://… (a one-letter scheme is a Windows drive)
        raise ModelError(f"{what} {text!r} is not an http(s):// or file:// URL nor a local path",
                         hint="Give an http(s):// or file:// URL, or the path of a local copy")
    path = Path(text).expanduser().absolute()
    if not (path.is_dir() if folder else path.is_file()):
        kind = "folder" if folder else "file"
        raise ModelError(f"{what} {text!r} is not an http(s):// or file:// URL, and no such {kind} exists",
                         hint=f"Give an http(s):// or file:// URL, or the path of an existing {kind}")
    return path.as_uri()


# --- lock ----------------------------------------------------------------------------------


@contextlib.contextmanager
def file_lock(path: Path, *, timeout: float | None = None, on_wait: Callable[[], None] | None = None,
              poll: float = 0.2) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) while the block runs.

    Waits for another holder; ``timeout`` seconds (None = forever) then raises ModelError.
    ``on_wait`` is called once when the lock is busy (to tell the user).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+b")
    waited = False
    start = time.monotonic()
    try:
        while True:
            if _try_lock(fh):
                break
            if not waited and on_wait is not None:
                on_wait()
            waited = True
            if timeout is not None and time.monotonic() - start > timeout:
                raise ModelError("another process is downloading this file and did not finish in time",
                                 path=str(path), hint="Wait for it, or remove the .lock file if no fetch is running")
            time.sleep(poll)
        yield
    finally:
        _unlock(fh)
        fh.close()


def _try_lock(fh) -> bool:
    try:
        import fcntl

        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False
    except ImportError:  # Windows
        import msvcrt

        try:
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            return True
        except OSError:
            return False


def _unlock(fh) -> None:
    try:
        import fcntl

        with contextlib.suppress(OSError):
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    except ImportError:  # Windows
        import msvcrt

        with contextlib.suppress(OSError):
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]


# --- HTTP ------------------------------------------------------------------------------------


class _Restart(Exception):
    """The server sent the whole file: drop the part and start from byte 0."""


class _Transient(Exception):
    """A network problem worth retrying (the part file is kept)."""


def _auth_headers(url: str) -> dict[str, str]:
    host = (urllib.parse.urlparse(url).hostname or "").lower()
    if host == "huggingface.co" or host.endswith(".huggingface.co"):
        token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
        if token:
            return {"Authorization": f"Bearer {token.strip()}"}
    return {}


def _read_meta(dest: Path) -> dict:
    try:
        return json.loads(_meta_path(dest).read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def _write_meta(dest: Path, meta: dict) -> None:
    tmp = _meta_path(dest).with_suffix(".tmp")
    tmp.write_text(json.dumps(meta), "utf-8")
    os.replace(tmp, _meta_path(dest))


def _discard_part(dest: Path) -> None:
    for p in (part_path(dest), _meta_path(dest)):
        with contextlib.suppress(OSError):
            p.unlink()


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _http_error(exc: urllib.error.HTTPError, url: str) -> ModelError:
    if exc.code in (401, 403):
        hint = ("This model is gated: accept its terms on the model page, then set HF_TOKEN to a token of that "
                "account and fetch again") if _auth_headers(url) == {} and "huggingface.co" in url else \
            "Check that your account may download this file"
        return ModelError(f"the server refused the download (HTTP {exc.code}) of {url}", hint=hint)
    if exc.code == 404:
        return ModelError(f"the file is not at {url} (HTTP 404)",
                          hint="The publisher may have moved it: pass --url with the new address, or set ROTO_MODEL_MIRROR")
    return ModelError(f"the server answered HTTP {exc.code} for {url}", hint="Try again later; a fetch resumes")


def _open(url: str, have: int, meta: dict, headers: dict[str, str], timeout: float):
    req = urllib.request.Request(url, headers={"User-Agent": _user_agent(), "Accept-Encoding": "identity",
                                               **headers})
    for k, v in _auth_headers(url).items():
        req.add_unredirected_header(k, v)  # never forwarded to a redirect target
    if have > 0:
        req.add_header("Range", f"bytes={have}-")
        validator = meta.get("etag") or meta.get("last_modified")
        if validator:
            req.add_header("If-Range", validator)
    return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 - http(s)/file URLs from the catalogue or the user


def _user_agent() -> str:
    try:
        from engine import __version__
    except Exception:  # pragma: no cover
        __version__ = "?"
    return f"ultimate-rotoscopy/{__version__} (+roto models fetch)"


def _transfer(url: str, dest: Path, hasher, have: int, meta: dict, headers: dict[str, str], timeout: float,
              chunk_size: int, progress: ProgressFn | None) -> tuple[int, int | None, int]:
    """One HTTP exchange. Returns (bytes now in the part, total or None, bytes received)."""
    part = part_path(dest)
    try:
        resp = _open(url, have, meta, headers, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have > 0:  # range not satisfiable: the part may already be complete
            m = re.search(r"\*/(\d+)", exc.headers.get("Content-Range", "") or "")
            if m and int(m.group(1)) == have:
                return have, have, 0
            raise _Restart() from exc
        if exc.code in (408, 425, 429, 500, 502, 503, 504):
            raise _Transient(f"HTTP {exc.code}") from exc
        raise _http_error(exc, url) from exc
    except (urllib.error.URLError, socket.timeout, ConnectionError, HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Transient(str(reason)) from exc
    with resp:
        status = getattr(resp, "status", None) or 200
        total: int | None = None
        length = resp.headers.get("Content-Length")
        if status == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", "") or "")
            if not m or int(m.group(1)) != have:
                raise _Restart()
            total = int(m.group(3)) if m.group(3) != "*" else None
        else:
            if have > 0:
                raise _Restart()  # the server ignored the range (or the file changed): start over
            total = int(length) if length and length.isdigit() else None
            new_meta = {"url": url, "etag": resp.headers.get("ETag"), "last_modified": resp.headers.get("Last-Modified"),
                        "total": total}
            meta.clear()
            meta.update(new_meta)
            _write_meta(dest, meta)
        received = 0
        with open(part, "ab" if have else "wb") as out:
            try:
                while True:
                    block = resp.read(chunk_size)
                    if not block:
                        break
                    out.write(block)
                    hasher.update(block)
                    have += len(block)
                    received += len(block)
                    if progress:
                        progress(have, total)
            except (socket.timeout, ConnectionError, HTTPException, OSError) as exc:
                out.flush()
                raise _Transient(f"the connection dropped after {have} bytes ({exc})") from exc
            finally:
                out.flush()
                with contextlib.suppress(OSError):
                    os.fsync(out.fileno())
        return have, total, received


def download(url: str, dest: str | os.PathLike[str], *, sha256: str | None = None, size: int | None = None,
             offline: bool = False, progress: ProgressFn | None = None, headers: dict[str, str] | None = None,
             timeout: float = 60.0, retries: int = 5, chunk_size: int = CHUNK, lock_timeout: float | None = None,
             on_wait: Callable[[], None] | None = None, retry_delay: float = 1.0, replace: bool = False,
             approx_size: int | None = None, name: str | None = None) -> DownloadResult:
    """Fetch ``url`` to ``dest`` (resumable, checked, atomic); see the module docstring.

    ``sha256``: expected hex digest (mismatch → ModelError, nothing left behind). ``size``: exact
    expected byte count (same). ``retries``: reconnections after a dropped transfer that made no
    progress; a retry that receives bytes resets the count.

    ``replace``: download even though ``dest`` exists; the new file replaces it atomically only
    once it is complete and checked, so a failure leaves the old one untouched. ``approx_size``:
    the catalogue's approximate size; a file more than 10 % away from it is refused (no digest
    is worth recording for it). ``name``: the model name, for the hints. A ``file://`` URL is a
    local copy: it is allowed with ``offline`` (the studio mirror of an offline install).
    """
    dest = Path(dest)
    expected = sha256.lower() if sha256 else None
    local = is_local(url)
    if local:
        src = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
        if not src.is_file():
            raise ModelError(f"there is no file at {url}", path=str(src),
                             hint="Check the --url or ROTO_MODEL_MIRROR path (a mirror holds <name>/<file>)")
    if offline and not local:
        if dest.is_file() and not replace:
            digest = sha256_file(dest)
            _check(dest, digest, dest.stat().st_size, expected, size, delete=False, approx=approx_size, name=name)
            return DownloadResult(dest, digest, dest.stat().st_size, 0, 0, True)
        raise ModelError(f"offline mode is on, so {dest.name} cannot be downloaded", path=str(dest),
                         hint=f"Copy the file to {dest} (it comes from {url}), set ROTO_MODEL_MIRROR to a local "
                              "folder, or unset ROTO_OFFLINE and fetch again")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(_lock_path(dest), timeout=lock_timeout, on_wait=on_wait):
        if dest.is_file() and not replace:  # another process finished it while we waited
            digest = sha256_file(dest)
            _check(dest, digest, dest.stat().st_size, expected, size, delete=False, approx=approx_size, name=name)
            return DownloadResult(dest, digest, dest.stat().st_size, 0, 0, True)
        meta = _read_meta(dest)
        part = part_path(dest)
        if part.exists() and meta.get("url") != url:
            _discard_part(dest)  # a part of some other URL: not ours to continue
            meta = {}
        have = part.stat().st_size if part.exists() else 0
        resumed_from = have
        hasher = _hash_part(part)
        received_total = 0
        failures = 0
        total: int | None = meta.get("total")
        while True:
            try:
                have, total, received = _transfer(url, dest, hasher, have, meta, dict(headers or {}), timeout,
                                                  chunk_size, progress)
                received_total += received
            except _Restart:
                _discard_part(dest)
                have, hasher, meta = 0, hashlib.sha256(), {}
                resumed_from = 0
                failures += 1
                if failures > retries:
                    raise ModelError(f"the server at {url} keeps restarting the transfer",
                                     hint="Try again later") from None
                continue
            except _Transient as exc:
                grew = part.exists() and part.stat().st_size > have
                have = part.stat().st_size if part.exists() else 0
                hasher = _hash_part(part)  # what is on disk, whatever the failed write left
                failures = 0 if grew else failures + 1
                if failures > retries:
                    raise ModelError(f"the download of {url} failed ({exc}); {have} bytes are kept in {part.name}",
                                     path=str(dest), hint="Run the same fetch again: it resumes where it stopped") from None
                time.sleep(retry_delay * min(failures, 5))
                continue
            if total is not None and have < total:  # the stream ended early without an error
                failures += 1
                if failures > retries:
                    raise ModelError(f"the download of {url} stopped at {have} of {total} bytes",
                                     path=str(dest), hint="Run the same fetch again: it resumes where it stopped")
                time.sleep(retry_delay * min(failures, 5))
                continue
            break
        digest = hasher.hexdigest()
        _check(part, digest, have, expected, size, delete=True, dest=dest, url=url, approx=approx_size, name=name)
        os.replace(part, dest)
        with contextlib.suppress(OSError):
            _meta_path(dest).unlink()
        return DownloadResult(dest, digest, have, received_total, resumed_from, False)


def _hash_part(part: Path):
    hasher = hashlib.sha256()
    if part.exists():
        with open(part, "rb") as fh:
            for block in iter(lambda: fh.read(CHUNK), b""):
                hasher.update(block)
    return hasher


def size_problem(nbytes: int, approx: int | None) -> str | None:
    """A sentence when ``nbytes`` is more than 10 % away from the catalogue's approximate size."""
    if not approx or abs(nbytes - approx) <= approx // 10:
        return None
    return (f"it has {nbytes:,} bytes ({nbytes / 1e6:.1f} MB) but the catalogue says about {approx:,} bytes "
            f"({approx / 1e6:.0f} MB), so it cannot be these weights")


def refetch_hint(name: str | None, dest: Path | None = None) -> str:
    """``roto models fetch <name> --force``, the name taken from the store layout when not given."""
    if not name and dest is not None:
        from engine.models.catalogue import CATALOGUE

        name = next((e.name for e in CATALOGUE if e.filename == dest.name and e.name == dest.parent.name),
                    None) or next((e.name for e in CATALOGUE if e.filename == dest.name), None)
    return f"roto models fetch {name} --force" if name else "roto models fetch <name from `roto models list`> --force"


def _check(path: Path, digest: str, nbytes: int, expected: str | None, size: int | None, *, delete: bool,
           dest: Path | None = None, url: str | None = None, approx: int | None = None,
           name: str | None = None) -> None:
    wrong_size = size_problem(nbytes, approx)
    if wrong_size is not None:
        problem = wrong_size
    elif expected and digest != expected:
        problem = f"its SHA-256 is {digest}, expected {expected}"
    elif size is not None and nbytes != size:
        problem = f"it has {nbytes} bytes, expected {size}"
    else:
        return
    target = dest or path
    if delete:
        _discard_part(target)
        hint = (f"Check that {url} is the {name or target.name} weights file" if wrong_size else
                f"Fetch it again; if this repeats, the file at {url} has changed or a proxy alters it")
        raise ModelError(f"the downloaded {target.name} is not the published file: {problem}; it was deleted",
                         path=str(target), hint=hint)
    raise ModelError(f"{target.name} does not match: {problem}", path=str(target),
                     hint=f"Delete it and fetch it again ({refetch_hint(name, target)})")
