"""How a browser gets into the engine server: a one-time login link, then an HttpOnly cookie.

The bearer token never reaches the page or its JavaScript:

1. ``roto open`` (or a host) asks the server, with the token, for a login link:
   ``POST /v1/viewer/link`` → ``http://127.0.0.1:47810/viewer/login?code=<one-time code>``.
   A code is random (``secrets``), valid for :data:`CODE_SECONDS` and good for one use.
2. The browser opens the link. The server redeems the code and answers ``303 See Other`` to the
   viewer page with ``Set-Cookie: roto_viewer_<port>=<issued>.<HMAC>; HttpOnly; SameSite=Strict;
   Path=/; Max-Age=43200``. The cookie is an HMAC of its issue time keyed by the token: no state
   on the server, valid across restarts, revoked by changing the token, expired after
   :data:`COOKIE_SECONDS`.
3. Without a link, the sign-in page also takes the token pasted by hand (a same-origin form POST).

:class:`ViewerGate` is a pure ASGI middleware placed *in front of* the server's
:class:`~engine.server.app.Guard`. For a request carrying a valid viewer cookie and no
``Authorization`` header it checks that the request comes from the viewer's own origin
(``Sec-Fetch-Site`` same-origin/none, ``Origin`` equal to the server's own, and an ``Origin`` or
``Sec-Fetch-Site: same-origin`` on anything but GET/HEAD), then hands it to the Guard as an
authorised request: the ``Origin`` header removed, ``Authorization: Bearer <token>`` added. Every
other request reaches the Guard untouched, so cross-site pages, other local web servers
(same-site but cross-origin) and DNS-rebinding hosts stay refused exactly as before. See DR013.

Standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

if TYPE_CHECKING:  # pragma: no cover
    from engine.server.app import Engine

COOKIE_SECONDS = 12 * 3600
CODE_SECONDS = 120
MAX_CODES = 64
LOGIN_PATH = "/viewer/login"
LOGOUT_PATH = "/viewer/logout"
PAGE_PATHS = ("/", "/index.html", "/viewer", "/viewer/")
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SAFE_METHODS = ("GET", "HEAD")
FORM_LIMIT = 8192

#: headers on every HTML page the viewer serves (the sign-in page adds its style nonce)
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
                                "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                                "frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class ViewerAuth:
    """Login codes (in memory, one use) and stateless cookies signed with the server's token."""

    def __init__(self, token: str, port: int) -> None:
        self.token = token
        self.port = int(port)
        self._key = hmac.new(token.encode("utf-8"), b"roto-viewer-cookie-v1", hashlib.sha256).digest()
        self._codes: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    @property
    def cookie_name(self) -> str:
        return f"roto_viewer_{self.port}"

    # --- cookies ------------------------------------------------------------------------------

    def _sign(self, issued: int) -> str:
        mac = hmac.new(self._key, f"{self.port}|{issued}".encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")

    def new_cookie(self, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        return f"{issued}.{self._sign(issued)}"

    def cookie_valid(self, value: str | None, now: float | None = None) -> bool:
        if not value or "." not in value or len(value) > 200:
            return False
        issued_text, _, mac = value.partition(".")
        if not issued_text.isdigit():
            return False
        issued = int(issued_text)
        t = time.time() if now is None else now
        if issued > t + 60 or t - issued > COOKIE_SECONDS:
            return False
        return hmac.compare_digest(mac.encode("ascii", "replace"), self._sign(issued).encode("ascii"))

    def set_cookie_header(self, value: str, max_age: int = COOKIE_SECONDS) -> str:
        return f"{self.cookie_name}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Strict"

    # --- login codes --------------------------------------------------------------------------

    def new_code(self, session: str | None = None) -> str:
        now = time.monotonic()
        code = secrets.token_urlsafe(24)
        with self._lock:
            for k in [k for k, (exp, _) in self._codes.items() if exp < now]:
                del self._codes[k]
            while len(self._codes) >= MAX_CODES:  # oldest first
                del self._codes[min(self._codes, key=lambda k: self._codes[k][0])]
            self._codes[code] = (now + CODE_SECONDS, session)
        return code

    def redeem(self, code: str | None) -> tuple[bool, str | None]:
        """``(True, session)`` the first time a live code is presented, else ``(False, None)``."""
        if not code:
            return False, None
        with self._lock:
            item = self._codes.pop(code, None)
        if item is None or item[0] < time.monotonic():
            return False, None
        return True, item[1]

    def token_matches(self, text: str | None) -> bool:
        return bool(text) and hmac.compare_digest(text.strip().encode("utf-8"), self.token.encode("utf-8"))


# --- the gate ---------------------------------------------------------------------------------


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _cookies(header: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in out:
            out[name] = value.strip().strip('"')
    return out


def host_allowed(host: str, bound: str) -> bool:
    """The server's Host rule (same as the Guard's): loopback names or the bound address."""
    from engine.server.settings import LOOPBACK

    hostname = host[1:host.index("]")] if host.startswith("[") and "]" in host else host.rsplit(":", 1)[0]
    if bound in ("0.0.0.0", "::"):
        return True
    return hostname in set(LOOPBACK) | {bound}


def cross_origin_problem(method: str, headers: dict[str, str]) -> str | None:
    """None when a cookie-carrying request comes from the viewer's own origin, else why not."""
    site = headers.get("sec-fetch-site")
    origin = headers.get("origin")
    own = "http://" + headers.get("host", "")
    unsafe = method not in SAFE_METHODS
    if site is not None and not (site == "same-origin" or (site == "none" and not unsafe)):
        return f"a request from another web page ({site}) was refused"
    if origin is not None and origin != own:
        return f"a request from {origin[:100]} was refused; only the viewer served by this engine may use it"
    if unsafe and origin is None and site is None:
        return "a browser request that changes something must come from the viewer page"
    return None


async def _send(send, status: int, body: bytes, content_type: str, extra: list[tuple[str, str]] = ()) -> None:
    headers = [(b"content-type", content_type.encode("latin-1")), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send, status: int, code: str, text: str, hint: str | None = None) -> None:
    body = json.dumps({"error": {"code": code, "text": text + (f" {hint}" if hint else ""), "message": text,
                                 "hint": hint, "path": None, "frame": None}}).encode("utf-8")
    await _send(send, status, body, "application/json")


def signin_page(message: str = "", session: str | None = None) -> tuple[bytes, list[tuple[str, str]]]:
    """The sign-in page (HTML bytes, headers): how to open the viewer, and a token form."""
    nonce = secrets.token_urlsafe(12)
    msg = f'<p class="msg">{html.escape(message)}</p>' if message else ""
    sess = (f'<input type="hidden" name="session" value="{html.escape(session)}">'
            if session and SESSION_ID.match(session) else "")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ultimate Rotoscopy viewer: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style nonce="{nonce}">
body{{background:#1d1f22;color:#d8d8d8;font:14px system-ui,sans-serif;display:flex;justify-content:center;padding-top:12vh}}
main{{max-width:34em}} h1{{font-size:18px}} code{{background:#2b2e33;padding:1px 4px;border-radius:3px}}
.msg{{color:#f0a35e}} input{{background:#2b2e33;color:#eee;border:1px solid #444;padding:5px;width:24em}}
button{{background:#3a6ea5;color:#fff;border:0;padding:6px 12px;border-radius:3px}}
</style></head><body><main>
<h1>Ultimate Rotoscopy viewer</h1>{msg}
<p>Open the viewer with <code>roto open PLATE</code> (or <code>roto open SESSION.roto.json</code>), or from the
Roto menu of Nuke, Flame or Resolve: they open a one-time link that signs this browser in.</p>
<p>Or paste the engine's token (the file the server printed at start, e.g. <code>~/.config/roto/token</code>):</p>
<form method="post" action="{LOGIN_PATH}">{sess}<input type="password" name="token" autocomplete="off"
 aria-label="token" autofocus> <button type="submit">Sign in</button></form>
</main></body></html>"""
    headers = dict(SECURITY_HEADERS)
    headers["Content-Security-Policy"] = headers["Content-Security-Policy"].replace(
        "style-src 'self'", f"style-src 'self' 'nonce-{nonce}'")
    return page.encode("utf-8"), list(headers.items())


def _wants_html(headers: dict[str, str]) -> bool:
    return "text/html" in headers.get("accept", "")


class ViewerGate:
    """ASGI middleware in front of the server's Guard (see the module doc)."""

    def __init__(self, app, engine: Engine, auth: ViewerAuth) -> None:
        self.app = app
        self.engine = engine
        self.auth = auth

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        path = scope["path"]
        if path in (LOGIN_PATH, LOGOUT_PATH):
            await self._login(scope, receive, send, headers)
            return
        cookie = _cookies(headers.get("cookie")).get(self.auth.cookie_name)
        if "authorization" not in headers and cookie is not None:
            if not self.auth.cookie_valid(cookie):
                if scope["method"] in SAFE_METHODS and path in PAGE_PATHS and _wants_html(headers) \
                        and host_allowed(headers.get("host", ""), self.engine.config.host):
                    body, extra = signin_page("The sign-in has expired; open the viewer again.")
                    await _send(send, 401, body, "text/html; charset=utf-8", extra)
                    return
                await _send_error(send, 401, "unauthorized", "the viewer's sign-in has expired or is not valid",
                                  "Open the viewer again with `roto open` (or sign in with the token).")
                return
            why = cross_origin_problem(scope["method"], headers)
            if why is not None:
                await _send_error(send, 403, "unauthorized", why)
                return
            raw = [(k, v) for k, v in scope.get("headers", []) if k.lower() not in (b"origin", b"authorization")]
            raw.append((b"authorization", f"Bearer {self.auth.token}".encode("latin-1")))
            scope = dict(scope, headers=raw)
        elif ("authorization" not in headers and scope["method"] in SAFE_METHODS and path in PAGE_PATHS
              and _wants_html(headers) and host_allowed(headers.get("host", ""), self.engine.config.host)):
            body, extra = signin_page()
            await _send(send, 401, body, "text/html; charset=utf-8", extra)
            return
        await self.app(scope, receive, send)

    async def _login(self, scope, receive, send, headers: dict[str, str]) -> None:
        if not host_allowed(headers.get("host", ""), self.engine.config.host):
            await _send_error(send, 403, "unauthorized", "requests must address the engine by its own address")
            return
        method = scope["method"]
        if scope["path"] == LOGOUT_PATH or method not in SAFE_METHODS:
            if method != "POST":
                await _send_error(send, 405, "method_not_allowed", f"{method} is not allowed on {scope['path']}")
                return
            why = cross_origin_problem("POST", headers)
            if why is not None:
                await _send_error(send, 403, "unauthorized", why)
                return
        if scope["path"] == LOGOUT_PATH:
            await _send(send, 303, b"", "text/plain", [("Location", LOGIN_PATH),
                                                       ("Set-Cookie", self.auth.set_cookie_header("", 0)),
                                                       ("Cache-Control", "no-store")])
            return
        session: str | None
        if method in SAFE_METHODS:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            code = (query.get("code") or [None])[0]
            wanted = (query.get("session") or [None])[0]
            if code is None:
                body, extra = signin_page(session=wanted)
                await _send(send, 200, body, "text/html; charset=utf-8", extra)
                return
            ok, session = self.auth.redeem(code)
            session = session or wanted
            message = "This sign-in link has expired or was used already; open the viewer again."
        else:
            form = await _read_form(receive)
            if form is None:
                await _send_error(send, 413, "request_too_large", "the sign-in form is too large")
                return
            ok = self.auth.token_matches((form.get("token") or [None])[0])
            session = (form.get("session") or [None])[0]
            message = "That is not this engine's token."
        if not ok:
            body, extra = signin_page(message, session)
            await _send(send, 401, body, "text/html; charset=utf-8", extra)
            return
        target = "/" + (f"?session={session}" if session and SESSION_ID.match(session) else "")
        await _send(send, 303, b"", "text/plain", [("Location", target),
                                                   ("Set-Cookie", self.auth.set_cookie_header(self.auth.new_cookie())),
                                                   ("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer")])


async def _read_form(receive) -> dict[str, list[str]] | None:
    chunks, size = [], 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return {}
        body = msg.get("body", b"")
        size += len(body)
        if size > FORM_LIMIT:
            return None
        chunks.append(body)
        if not msg.get("more_body", False):
            break
    return parse_qs(b"".join(chunks).decode("utf-8", "replace"))

