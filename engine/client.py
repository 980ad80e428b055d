"""A tiny client for the Ultimate Rotoscopy engine server, for host Pythons (Nuke, Flame, Resolve).

Standard library only, importable by Python 3.7 and later: a host adapter can use this file on
its own (``roto install-host`` copies it beside the adapter as ``roto_client.py``). It never
imports numpy, torch or the rest of the engine.

>>> c = RotoClient()                                            # doctest: +SKIP
>>> s = c.open_session("/shots/sh010/plate.####.exr", key="nuke:sh010.nk:RotoAI1")  # doctest: +SKIP
>>> c.set_prompts(s["id"], "hero", 1001, points=[(640, 360, 1)])                    # doctest: +SKIP
>>> job = c.submit(s["id"], "track", direction="both")                              # doctest: +SKIP
>>> job = c.wait(job["id"], on_progress=lambda j: print(j["progress"]))             # doctest: +SKIP

Where things are found (the server uses the same rules):

* the server's address: ``url=`` argument, else ``$ROTO_SERVER_URL``, else the ``server.json``
  the running server wrote in the config folder, else ``http://127.0.0.1:47810``;
* the token: ``token=`` argument, else ``$ROTO_TOKEN``, else the file ``$ROTO_TOKEN_FILE``, else
  ``token`` in the config folder (``$XDG_CONFIG_HOME/roto``, default ``~/.config/roto``;
  ``%APPDATA%\\roto`` on Windows). The server creates it (mode 0600) on its first start;
* the command that starts a server that is not running: ``start_command=`` argument, else
  ``$ROTO_SERVER_COMMAND``, else ``server_command`` in ``roto_host.json`` beside the adapter
  (written by ``roto install-host``), else ``roto serve`` when ``roto`` is on the PATH.

Errors are :class:`ServerError` with the server's ``code`` and a sentence (``text``) to show the
artist as it is; they never carry a traceback.
"""

import json
import os
import shlex
import socket
import subprocess
import sys
import time

try:  # Python 3
    import urllib.error as _urlerror
    import urllib.parse as _urlparse
    import urllib.request as _urlrequest
except ImportError:  # pragma: no cover - Python 2 hosts are not supported
    raise

API = "/v1"
DEFAULT_PORT = 47810
DEFAULT_URL = "http://127.0.0.1:%d" % DEFAULT_PORT
#: a job is ``queued``, then ``waiting`` while another job holds its session or the GPU (its
#: progress ``message`` says which), then ``running``; it ends in one of TERMINAL_STATES
ACTIVE_STATES = ("queued", "waiting", "running")
TERMINAL_STATES = ("succeeded", "failed", "cancelled", "interrupted")

__all__ = ["RotoClient", "ServerError", "ServerNotRunning", "config_dir", "token_path", "read_token",
           "server_url", "DEFAULT_URL", "DEFAULT_PORT", "ACTIVE_STATES", "TERMINAL_STATES"]


# --- where things are ---------------------------------------------------------------------


def config_dir():
    """The engine's config folder (token, server.json): ``$XDG_CONFIG_HOME/roto`` or ``~/.config/roto``
    (``%APPDATA%\\roto`` on Windows)."""
    if os.name == "nt":
        base = os.environ.get("APPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Roaming")
        return os.path.join(base, "roto")
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "roto")


def token_path():
    """Where the server keeps its token: ``$ROTO_TOKEN_FILE`` or ``<config dir>/token``."""
    env = os.environ.get("ROTO_TOKEN_FILE")
    return os.path.expanduser(env) if env else os.path.join(config_dir(), "token")


def discovery_path():
    """The ``server.json`` a running server writes (its URL and process id)."""
    return os.path.join(config_dir(), "server.json")


def read_token(path=None):
    """The token from ``$ROTO_TOKEN`` or the token file; None when there is none yet."""
    if path is None:
        env = os.environ.get("ROTO_TOKEN")
        if env:
            return env.strip()
        path = token_path()
    try:
        with open(path, "r") as fh:
            text = fh.read().strip()
    except (IOError, OSError):
        return None
    return text or None


def server_url():
    """The server's base URL (see the module doc)."""
    env = os.environ.get("ROTO_SERVER_URL")
    if env:
        return env.rstrip("/")
    try:
        with open(discovery_path(), "r") as fh:
            url = json.load(fh).get("url")
        if url:
            return str(url).rstrip("/")
    except (IOError, OSError, ValueError, AttributeError):
        pass
    return DEFAULT_URL


# --- errors --------------------------------------------------------------------------------


class ServerError(Exception):
    """An error reported by the server (or about reaching it), as data.

    ``code`` is the engine's stable error code (``bad_input``, ``path_refused``, ``cancelled``…),
    ``text`` the full sentence to show, ``status`` the HTTP status (0 when no answer came).
    """

    def __init__(self, code, text, status=0, data=None):
        self.code = str(code)
        self.text = str(text)
        self.status = int(status or 0)
        self.data = dict(data or {})
        Exception.__init__(self, self.text)

    @property
    def hint(self):
        return self.data.get("hint")

    @classmethod
    def from_data(cls, data, status=0):
        data = data if isinstance(data, dict) else {}
        text = data.get("text") or data.get("message") or "the engine server reported an error"
        return cls(data.get("code") or "roto_error", text, status, data)


class ServerNotRunning(ServerError):
    """No server answers at the URL, and none could be started."""


def _not_running_text(url, extra=""):
    text = ("The Ultimate Rotoscopy engine is not running at %s. Start it in a terminal with `roto serve` "
            "(from the engine's Python environment), or set ROTO_SERVER_COMMAND to the command that starts it, "
            "e.g. \"/opt/roto/.venv/bin/roto serve\"." % url)
    return text + (" " + extra if extra else "")


# --- the client ------------------------------------------------------------------------------


class RotoClient(object):
    """Talks JSON over HTTP to ``roto serve``.

    ``timeout`` (seconds) bounds each request; ``retries`` is how many times a request is tried
    again after a connection failure (GET requests also after a timeout or a 502/503/504), with
    ``backoff`` seconds doubling between tries. ``autostart`` starts the server when nothing
    answers, with ``start_command`` (see the module doc), waiting up to ``start_timeout``.
    """

    def __init__(self, url=None, token=None, timeout=30.0, retries=2, backoff=0.25, autostart=True,
                 start_command=None, start_timeout=60.0, adapter_dir=None):
        self.url = (url or server_url()).rstrip("/")
        self._token = token
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.autostart = bool(autostart)
        self.start_command = start_command
        self.start_timeout = float(start_timeout)
        self.adapter_dir = adapter_dir
        self._started = None  # the server process this client started, if any

    # --- plumbing ----------------------------------------------------------------------

    @property
    def token(self):
        if self._token is None:
            return read_token()
        return self._token

    def _open(self, method, path, body=None, query=None, timeout=None, accept="application/json", auth=True):
        url = self.url + path
        if query:
            url += "?" + _urlparse.urlencode(dict((k, v) for k, v in query.items() if v is not None))
        data = None
        headers = {"Accept": accept, "User-Agent": "roto-client/1"}
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if auth:
            token = self.token
            if token:
                headers["Authorization"] = "Bearer " + token
        req = _urlrequest.Request(url, data=data, headers=headers, method=method)
        return _urlrequest.urlopen(req, timeout=self.timeout if timeout is None else timeout)

    def request(self, method, path, body=None, query=None, timeout=None, raw=False, auth=True):
        """One API call; returns the decoded JSON (or bytes with ``raw``); raises :class:`ServerError`."""
        idempotent = method in ("GET", "HEAD")
        attempt = 0
        while True:
            try:
                resp = self._open(method, path, body, query, timeout, auth=auth,
                                  accept="*/*" if raw else "application/json")
                try:
                    payload = resp.read()
                finally:
                    resp.close()
                if raw:
                    return payload
                return json.loads(payload.decode("utf-8")) if payload else None
            except _urlerror.HTTPError as exc:
                status = exc.code
                try:
                    data = json.loads(exc.read().decode("utf-8"))
                except Exception:
                    data = {}
                finally:
                    exc.close()
                if idempotent and status in (502, 503, 504) and attempt < self.retries:
                    attempt += 1
                    time.sleep(self.backoff * (2 ** (attempt - 1)))
                    continue
                err = data.get("error") if isinstance(data, dict) else None
                if not isinstance(err, dict):
                    err = {"code": "http_%d" % status, "text": "the engine server answered HTTP %d to %s %s"
                           % (status, method, path)}
                raise ServerError.from_data(err, status)
            except (_urlerror.URLError, socket.timeout, ConnectionError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                refused = isinstance(reason, (ConnectionRefusedError, ConnectionResetError)) or (
                    isinstance(reason, OSError) and getattr(reason, "errno", None) in (61, 111, 10061))
                timed_out = isinstance(reason, socket.timeout) or "timed out" in str(reason)
                if attempt < self.retries and (refused or (idempotent and timed_out)):
                    attempt += 1
                    time.sleep(self.backoff * (2 ** (attempt - 1)))
                    continue
                if refused:
                    raise ServerNotRunning("server_not_running", _not_running_text(self.url))
                if timed_out:
                    raise ServerError("timeout", "The engine server at %s did not answer %s %s within %g s; it may "
                                      "be busy. Try again, or raise the client's timeout."
                                      % (self.url, method, path, self.timeout if timeout is None else timeout))
                raise ServerError("connection_error", "The engine server at %s cannot be reached (%s)."
                                  % (self.url, reason))

    # --- starting the server -----------------------------------------------------------

    def is_running(self):
        try:
            info = self.request("GET", API + "/health", auth=False, timeout=min(self.timeout, 3.0))
        except ServerError:
            return False
        return isinstance(info, dict) and info.get("service") == "ultimate-rotoscopy"

    def _command(self):
        cmd = self.start_command or os.environ.get("ROTO_SERVER_COMMAND")
        if not cmd and self.adapter_dir:
            try:
                with open(os.path.join(self.adapter_dir, "roto_host.json"), "r") as fh:
                    cmd = json.load(fh).get("server_command")
            except (IOError, OSError, ValueError, AttributeError):
                cmd = None
        if not cmd:
            from shutil import which

            exe = which("roto")
            cmd = [exe, "serve"] if exe else None
        if isinstance(cmd, str):
            cmd = shlex.split(cmd, posix=os.name != "nt")
        return list(cmd) if cmd else None

    def ensure_server(self):
        """Make sure a server answers: start it when it does not (see the module doc). Returns the URL."""
        if self.is_running():
            return self.url
        cmd = self._command() if self.autostart else None
        if not cmd:
            raise ServerNotRunning("server_not_running", _not_running_text(self.url))
        parsed = _urlparse.urlparse(self.url)
        if "--port" not in cmd and parsed.port:
            cmd = cmd + ["--port", str(parsed.port)]
        log = os.path.join(config_dir(), "server.log")
        try:
            if not os.path.isdir(config_dir()):
                os.makedirs(config_dir())
            out = open(log, "ab")
        except (IOError, OSError):
            out = open(os.devnull, "wb")
        kwargs = {"stdout": out, "stderr": subprocess.STDOUT, "stdin": subprocess.DEVNULL, "close_fds": True}
        if os.name == "nt":
            kwargs["creationflags"] = 0x00000008 | 0x00000200  # DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP
        else:
            kwargs["start_new_session"] = True
        try:
            self._started = subprocess.Popen(cmd, **kwargs)
        except (IOError, OSError) as exc:
            raise ServerNotRunning("server_not_running", _not_running_text(
                self.url, "Starting it with %r failed: %s." % (" ".join(cmd), exc)))
        finally:
            out.close()
        deadline = time.time() + self.start_timeout
        while time.time() < deadline:
            if self._started.poll() is not None:
                raise ServerNotRunning("server_not_running", _not_running_text(
                    self.url, "The command %r exited with status %s; see %s." % (" ".join(cmd), self._started.returncode, log)))
            if self.is_running():
                return self.url
            time.sleep(0.2)
        raise ServerNotRunning("server_not_running", _not_running_text(
            self.url, "It was started with %r but did not answer within %g s; see %s." % (" ".join(cmd), self.start_timeout, log)))

    # --- server ------------------------------------------------------------------------

    def health(self):
        return self.request("GET", API + "/health", auth=False)

    def capabilities(self):
        """Job kinds (with ``available`` and a ``reason``), backends, roots and limits."""
        return self.request("GET", API + "/capabilities")

    # --- sessions ----------------------------------------------------------------------

    def open_session(self, clip, project=None, key=None, backend=None, **options):
        """Open (or resume) a session on ``clip``. ``key`` is a stable host-side name (e.g. the Nuke
        script + node): the same key reopens the same session. ``options``: colourspace, missing,
        in_point, out_point, fps, ocio_config."""
        body = {"clip": clip}
        for name, value in (("project", project), ("key", key), ("backend", backend)):
            if value is not None:
                body[name] = value
        body.update(dict((k, v) for k, v in options.items() if v is not None))
        return self.request("POST", API + "/sessions", body)

    def sessions(self):
        return self.request("GET", API + "/sessions")

    def session(self, sid):
        return self.request("GET", API + "/sessions/%s" % sid)

    def close_session(self, sid):
        return self.request("DELETE", API + "/sessions/%s" % sid)

    def add_object(self, sid, name=None):
        return self.request("POST", API + "/sessions/%s/objects" % sid, {"name": name})

    def add_point(self, sid, obj, frame, x, y, label=1):
        return self.request("POST", API + "/sessions/%s/prompts" % sid,
                            {"kind": "point", "object": obj, "frame": frame, "x": x, "y": y, "label": label})

    def add_box(self, sid, obj, frame, x0, y0, x1, y1):
        return self.request("POST", API + "/sessions/%s/prompts" % sid,
                            {"kind": "box", "object": obj, "frame": frame, "x0": x0, "y0": y0, "x1": x1, "y1": y1})

    def add_text(self, sid, obj, frame, text):
        return self.request("POST", API + "/sessions/%s/prompts" % sid,
                            {"kind": "text", "object": obj, "frame": frame, "text": text})

    def add_mask(self, sid, obj, frame, path):
        """A mask image file (non-zero = object) as the object's keyframe on ``frame``."""
        return self.request("POST", API + "/sessions/%s/prompts" % sid,
                            {"kind": "mask", "object": obj, "frame": frame, "path": path})

    def set_prompts(self, sid, obj, frame, points=(), box=None, text=None, replace=True):
        """Set the prompts of object ``obj`` (name or id; a new name creates it) on ``frame`` in one
        undoable step: ``points`` as ``(x, y, label)`` pixels from the top-left (label 1 object,
        0 background), ``box`` as ``(x0, y0, x1, y1)``. ``replace`` drops the frame's previous prompts."""
        body = {"object": obj, "frame": frame, "points": [list(p) for p in points], "replace": bool(replace)}
        if box is not None:
            body["box"] = list(box)
        if text:
            body["text"] = text
        return self.request("POST", API + "/sessions/%s/prompt-set" % sid, body)

    def move_prompt(self, sid, uid, x, y):
        return self.request("PATCH", API + "/sessions/%s/prompts/%s" % (sid, uid), {"x": x, "y": y})

    def remove_prompt(self, sid, uid):
        return self.request("DELETE", API + "/sessions/%s/prompts/%s" % (sid, uid))

    def set_keyframe(self, sid, obj, frame):
        return self.request("POST", API + "/sessions/%s/keyframes" % sid, {"object": obj, "frame": frame})

    def clear_keyframe(self, sid, obj, frame):
        return self.request("DELETE", API + "/sessions/%s/keyframes/%s/%d" % (sid, _urlparse.quote(str(obj)), frame))

    def undo(self, sid):
        return self.request("POST", API + "/sessions/%s/undo" % sid, {})

    def redo(self, sid):
        return self.request("POST", API + "/sessions/%s/redo" % sid, {})

    def preview(self, sid, frame, overlay=True, max_size=1024):
        """A PNG (bytes) of the plate on ``frame``, display-referred, with the masks laid over it."""
        return self.request("GET", API + "/sessions/%s/preview" % sid,
                            query={"frame": frame, "overlay": int(bool(overlay)), "max_size": max_size}, raw=True)

    # --- jobs --------------------------------------------------------------------------

    def submit(self, sid, kind, **params):
        """Start a background job (``track``, ``export``, ``matte``, ``qc``, ``depth``, ``shapes``…)."""
        return self.request("POST", API + "/sessions/%s/jobs" % sid,
                            {"kind": kind, "params": dict((k, v) for k, v in params.items() if v is not None)})

    def track(self, sid, direction="both", **params):
        return self.submit(sid, "track", direction=direction, **params)

    def export(self, sid, out_dir, **params):
        return self.submit(sid, "export", out_dir=out_dir, **params)

    def job(self, jid, wait=0.0, after=None):
        """The job's state; with ``wait`` > 0 the server holds the answer up to ``wait`` seconds until
        the job changes past event number ``after``."""
        query = {"wait": wait or None, "after": after}
        return self.request("GET", API + "/jobs/%s" % jid, query=query,
                            timeout=self.timeout + (wait or 0.0))

    def jobs(self, sid=None):
        return self.request("GET", API + "/jobs", query={"session": sid})

    def cancel(self, jid):
        return self.request("POST", API + "/jobs/%s/cancel" % jid, {})

    def wait(self, jid, on_progress=None, should_cancel=None, poll=2.0, timeout=None, raise_on_error=False):
        """Follow a job until it ends; returns its final state.

        ``on_progress(job)`` is called on every change; when ``should_cancel()`` returns true the
        job is cancelled (and still followed to its end). With ``raise_on_error`` a failed or
        cancelled job raises :class:`ServerError` with its error.
        """
        deadline = None if timeout is None else time.time() + timeout
        seq = None
        cancelled = False
        while True:
            job = self.job(jid, wait=poll, after=seq)
            if job.get("seq") != seq:
                seq = job.get("seq")
                if on_progress is not None:
                    on_progress(job)
            if job.get("state") in TERMINAL_STATES:
                if raise_on_error and job.get("state") != "succeeded":
                    raise ServerError.from_data(job.get("error") or {"code": job.get("state"), "text": "the job "
                                                "ended as %s" % job.get("state")})
                return job
            if not cancelled and should_cancel is not None and should_cancel():
                cancelled = True
                self.cancel(jid)
            if deadline is not None and time.time() > deadline:
                raise ServerError("timeout", "the job %s did not finish within %g s; it goes on in the server"
                                  % (jid, timeout))

    def events(self, jid, after=None):
        """Server-sent events of a job as ``(event, data)`` pairs until it ends (a generator)."""
        query = {"after": after} if after is not None else None
        try:
            resp = self._open("GET", API + "/jobs/%s/events" % jid, query=query, timeout=max(self.timeout, 30.0),
                              accept="text/event-stream")
        except _urlerror.HTTPError as exc:
            try:
                err = json.loads(exc.read().decode("utf-8")).get("error")
            except Exception:
                err = None
            finally:
                exc.close()
            raise ServerError.from_data(err or {"code": "http_%d" % exc.code, "text": "the engine server answered "
                                                "HTTP %d to the job's events" % exc.code}, exc.code)
        except (_urlerror.URLError, OSError) as exc:
            raise ServerNotRunning("server_not_running", _not_running_text(self.url, "(%s)" % getattr(exc, "reason", exc)))
        try:
            event, data = "message", []
            for raw in resp:
                line = raw.decode("utf-8").rstrip("\r\n")
                if not line:
                    if data:
                        yield event, json.loads("\n".join(data))
                        if event == "end":
                            return
                    event, data = "message", []
                elif line.startswith(":"):
                    continue
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
        finally:
            resp.close()


def describe_error(exc):
    """A sentence for any exception raised while talking to the engine (for host messages)."""
    if isinstance(exc, ServerError):
        return exc.text
    return "Unexpected error talking to the engine: %s: %s" % (type(exc).__name__, exc)


if __name__ == "__main__":  # pragma: no cover - `python client.py` prints the server's health
    try:
        print(json.dumps(RotoClient(autostart=False).health(), indent=2))
    except ServerError as _exc:
        print(_exc.text, file=sys.stderr)
        sys.exit(2)
