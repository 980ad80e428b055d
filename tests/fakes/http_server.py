"""A local HTTP file server on 127.0.0.1 for download tests: Range requests, ETags and faults.

``FileServer(files)`` serves ``{"/path": bytes}``. Faults, set per test:

* ``drop_after[path] = n`` — the next response for ``path`` sends ``n`` body bytes, then closes
  the connection (once; the following request is served normally);
* ``ignore_range = True`` — answer 200 with the whole file even when a Range is asked;
* ``status[path] = code`` — answer with that HTTP status;
* ``after_drop_status[path] = code`` — after a dropped response, answer ``code`` until cleared
  (a server that went away mid-transfer).

Every request is logged in ``requests`` as ``(path, range header or None)``.
"""

from __future__ import annotations

import hashlib
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FileServer:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = dict(files)
        self.drop_after: dict[str, int] = {}
        self.status: dict[str, int] = {}
        self.after_drop_status: dict[str, int] = {}
        self.ignore_range = False
        self.requests: list[tuple[str, str | None]] = []
        self.auth: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                path = self.path.split("?")[0]
                rng = self.headers.get("Range")
                server.requests.append((path, rng))
                server.auth.append(self.headers.get("Authorization"))
                if path in server.status:
                    self.send_response(server.status[path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = server.files.get(path)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                etag = '"' + hashlib.md5(data).hexdigest() + '"'  # noqa: S324 - an ETag, not security
                start = 0
                m = re.match(r"bytes=(\d+)-$", rng or "")
                if_range = self.headers.get("If-Range")
                if m and not server.ignore_range and (if_range is None or if_range == etag):
                    start = int(m.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                drop = server.drop_after.pop(path, None)
                if drop is not None:
                    if path in server.after_drop_status:
                        server.status[path] = server.after_drop_status.pop(path)
                    self.wfile.write(body[:drop])
                    self.wfile.flush()
                    self.close_connection = True
                    try:
                        import socket

                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
