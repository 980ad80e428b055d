"""The viewer's server side: sign-in (link → cookie), the same-origin gate, the page and its files,
the picture endpoints (plate proxies, overlays, mattes, thumbnails), object edits, painting, and
reads that never wait for a running job. Real uvicorn on loopback (``tests.serverkit``); no browser.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.serverkit import (HEIGHT, WIDTH, centre, client, fake_backends, isolated_config, plate, root,  # noqa: F401
                             server, wait_until)

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "engine" / "viewer" / "static"


def request(srv, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            token: bool = False) -> tuple[int, dict, bytes]:
    host, port = srv.url.split("//")[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {srv.token}"
    conn.request(method, path, body=body, headers=h)
    resp = conn.getresponse()
    data = resp.read()
    out = {k.lower(): v for k, v in resp.getheaders()}
    out["set-cookie-all"] = resp.msg.get_all("set-cookie") or []
    conn.close()
    return resp.status, out, data


def as_json(data: bytes) -> dict:
    return json.loads(data.decode("utf-8"))


def own_origin(srv) -> str:
    return srv.url


def sign_in(srv, session: str | None = None) -> str:
    """Follow a login link as a browser would; returns the ``name=value`` cookie."""
    status, _, data = request(srv, "POST", "/v1/viewer/link", json.dumps({"session": session} if session else {}).encode(),
                              {"Content-Type": "application/json"}, token=True)
    assert status == 200, data
    url = as_json(data)["url"]
    path = url.split(srv.url, 1)[1]
    status, headers, _ = request(srv, "GET", path, headers={"Accept": "text/html", "Sec-Fetch-Site": "none"})
    assert status == 303
    cookie = headers["set-cookie"]
    return cookie.split(";", 1)[0]


def open_session(client, plate, backend="fake", key="viewer"):
    pattern, sample = plate
    return client.open_session(pattern, key=key, backend=backend)["session"]


def prompt(client, sid, plate, frame=1001, obj="hero"):
    x, y = centre(plate[1], frame)
    client.set_prompts(sid, obj, frame, points=[(x, y, 1)])
    return x, y


# --- sign-in and the gate -----------------------------------------------------------------------------


def test_the_page_needs_a_sign_in_and_says_how(server):
    status, headers, data = request(server, "GET", "/", headers={"Accept": "text/html"})
    assert status == 401 and headers["content-type"].startswith("text/html")
    page = data.decode()
    assert "roto open" in page and 'name="token"' in page
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "nonce-" in headers["content-security-policy"]
    # without an HTML Accept (a script, curl) the answer is the API's JSON error
    status, _, data = request(server, "GET", "/")
    assert status == 401 and as_json(data)["error"]["code"] == "unauthorized"
    # static files are protected too
    assert request(server, "GET", "/viewer/static/js/app.js")[0] == 401
    # the token still works (hosts, tools)
    status, headers, data = request(server, "GET", "/", token=True)
    assert status == 200 and b'src="/viewer/static/js/app.js"' in data
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer"


def test_a_login_link_signs_in_once_with_an_httponly_strict_cookie(server, client, plate):
    sid = open_session(client, plate)
    status, _, data = request(server, "POST", "/v1/viewer/link", json.dumps({"session": sid}).encode(),
                              {"Content-Type": "application/json"}, token=True)
    link = as_json(data)
    assert status == 200 and link["expires_in"] == 120 and link["page"].endswith(f"/?session={sid}")
    path = link["url"].split(server.url, 1)[1]
    assert re.fullmatch(r"/viewer/login\?code=[A-Za-z0-9_-]{32}", path)
    assert server.token not in link["url"]
    status, headers, _ = request(server, "GET", path, headers={"Accept": "text/html"})
    assert status == 303 and headers["location"] == f"/?session={sid}"
    cookie = headers["set-cookie"]
    assert cookie.startswith(f"roto_viewer_{server.config.port}=")
    for attr in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"):
        assert attr in cookie
    assert server.token not in cookie
    assert headers["cache-control"] == "no-store" and headers["referrer-policy"] == "no-referrer"
    # the same link again: refused, with the sign-in page
    status, _, data = request(server, "GET", path, headers={"Accept": "text/html"})
    assert status == 401 and b"expired or was used" in data
    # the cookie opens the page and the API, from the page's own origin
    c = cookie.split(";", 1)[0]
    status, _, data = request(server, "GET", "/", headers={"Cookie": c, "Accept": "text/html"})
    assert status == 200 and b"Ultimate Rotoscopy" in data
    status, _, data = request(server, "GET", "/v1/sessions", headers={"Cookie": c, "Sec-Fetch-Site": "same-origin"})
    assert status == 200 and sid in {s["session"] for s in as_json(data)["sessions"]}
    status, _, data = request(server, "POST", f"/v1/sessions/{sid}/objects", b"{}",
                              {"Cookie": c, "Origin": own_origin(server), "Content-Type": "application/json"})
    assert status == 200 and as_json(data)["object"]["name"] == "object1"
    # a link for a session that does not exist
    status, _, data = request(server, "POST", "/v1/viewer/link", b'{"session": "nope"}',
                              {"Content-Type": "application/json"}, token=True)
    assert status == 404


def test_other_origins_cannot_ride_the_cookie(server, client, plate):
    sid = open_session(client, plate)
    c = sign_in(server, sid)
    base = {"Cookie": c, "Content-Type": "application/json"}
    cases = [
        ("GET", "/v1/sessions", {"Origin": "http://evil.example"}),
        ("GET", "/v1/sessions", {"Sec-Fetch-Site": "cross-site"}),
        ("GET", "/v1/sessions", {"Sec-Fetch-Site": "same-site"}),  # another local web server (other port)
        ("GET", "/v1/sessions", {"Origin": "http://127.0.0.1:1"}),
        ("GET", "/v1/sessions", {"Origin": "null"}),
        ("POST", f"/v1/sessions/{sid}/objects", {}),  # no Origin, no Sec-Fetch-Site: not from the page
        ("POST", f"/v1/sessions/{sid}/objects", {"Sec-Fetch-Site": "none"}),
        ("POST", f"/v1/sessions/{sid}/objects", {"Origin": "http://localhost:1"}),
    ]
    for method, path, extra in cases:
        status, _, data = request(server, method, path, b"{}" if method == "POST" else None, dict(base, **extra))
        assert status == 403, (method, path, extra, data)
        assert as_json(data)["error"]["code"] == "unauthorized"
    assert client.session(sid)["objects"] == []
    # the Guard's rule is unchanged for everything else: a web page with the token is still refused
    status, _, _ = request(server, "GET", "/v1/sessions", headers={"Origin": own_origin(server)}, token=True)
    assert status == 403
    # a forged or expired cookie is not a sign-in
    name = c.split("=", 1)[0]
    issued, mac = c.split("=", 1)[1].split(".")
    for bad in (f"{name}={issued}.{mac[:-2]}xx", f"{name}={int(issued) - 13 * 3600}.{mac}", f"{name}=garbage"):
        status, _, data = request(server, "GET", "/v1/sessions", headers={"Cookie": bad})
        assert status == 401 and "expired or is not valid" in as_json(data)["error"]["text"]
    status, _, data = request(server, "GET", "/", headers={"Cookie": f"{name}=garbage", "Accept": "text/html"})
    assert status == 401 and b"expired" in data
    # another server's cookie (other port) is ignored: no sign-in
    other = c.replace(f"roto_viewer_{server.config.port}", "roto_viewer_1")
    assert request(server, "GET", "/v1/sessions", headers={"Cookie": other})[0] == 401
    # the login routes check the Host header like the API (DNS rebinding)
    status, _, _ = request(server, "GET", "/viewer/login?code=x", headers={"Host": "evil.example"})
    assert status == 403


def test_the_token_form_and_sign_out(server):
    form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": own_origin(server)}
    status, _, data = request(server, "POST", "/viewer/login", b"token=wrong", form)
    assert status == 401 and b"not this engine" in data
    status, headers, _ = request(server, "POST", "/viewer/login", f"token={server.token}&session=abc123".encode(), form)
    assert status == 303 and headers["location"] == "/?session=abc123" and "HttpOnly" in headers["set-cookie"]
    c = headers["set-cookie"].split(";", 1)[0]
    # cross-site form posts are refused (login CSRF)
    status, _, _ = request(server, "POST", "/viewer/login", f"token={server.token}".encode(),
                           dict(form, Origin="http://evil.example"))
    assert status == 403
    status, _, _ = request(server, "POST", "/viewer/login", b"token=" + b"x" * 9000, form)
    assert status == 413
    # GET /viewer/login without a code shows the form
    status, _, data = request(server, "GET", "/viewer/login", headers={"Accept": "text/html"})
    assert status == 200 and b'name="token"' in data
    # sign out: POST from the page only; the cookie is cleared
    assert request(server, "GET", "/viewer/logout", headers={"Cookie": c})[0] == 405
    status, headers, _ = request(server, "POST", "/viewer/logout", b"", {"Cookie": c, "Origin": own_origin(server)})
    assert status == 303 and "Max-Age=0" in headers["set-cookie"]


def test_login_codes_expire_and_are_bounded(monkeypatch):
    from engine.viewer import auth as A

    va = A.ViewerAuth("t" * 43, 47810)
    clock = [1000.0]
    monkeypatch.setattr(A.time, "monotonic", lambda: clock[0])
    code = va.new_code("s1")
    clock[0] += A.CODE_SECONDS + 1
    assert va.redeem(code) == (False, None)
    code = va.new_code("s1")
    assert va.redeem(code) == (True, "s1") and va.redeem(code) == (False, None)
    codes = [va.new_code() for _ in range(A.MAX_CODES + 10)]
    assert len(va._codes) == A.MAX_CODES and va.redeem(codes[0])[0] is False and va.redeem(codes[-1])[0] is True
    # cookies: valid for COOKIE_SECONDS, bound to the token and the port
    now = 2_000_000_000.0
    value = va.new_cookie(now)
    assert va.cookie_valid(value, now + 10) and not va.cookie_valid(value, now + A.COOKIE_SECONDS + 1)
    assert not A.ViewerAuth("u" * 43, 47810).cookie_valid(value, now)
    assert not A.ViewerAuth("t" * 43, 47811).cookie_valid(value, now)
    assert not va.cookie_valid(value, now - 3600)  # issued in the future


# --- the page's files ---------------------------------------------------------------------------------


def test_static_files_ship_in_the_package_and_are_served_safely(server):
    page = (STATIC / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="(/viewer/static/[^"]+)"', page)
    assert refs and all((STATIC / r.split("/viewer/static/", 1)[1]).is_file() for r in refs)
    js = sorted(STATIC.glob("js/*.js"))
    for f in js:
        for imp in re.findall(r"from '\./([^']+)'", f.read_text()):
            assert (f.parent / imp).is_file(), (f.name, imp)
        text = f.read_text()
        assert "http://" not in text and "https://" not in text, f"{f.name} must not reach the internet"
    for text in (page, (STATIC / "viewer.css").read_text()):
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text
    status, headers, data = request(server, "GET", "/viewer/static/js/app.js", token=True)
    assert status == 200 and headers["content-type"].startswith("text/javascript") and b"window.roto" in data
    status, _, _ = request(server, "GET", "/viewer/static/js/app.js", headers={"If-None-Match": headers["etag"]}, token=True)
    assert status == 304
    assert request(server, "GET", "/viewer/static/viewer.css", token=True)[1]["content-type"].startswith("text/css")
    for bad in ("/viewer/static/../auth.py", "/viewer/static/%2e%2e/auth.py", "/viewer/static/..%2fauth.py",
                "/viewer/static/nothing.js", "/viewer/static/js"):
        assert request(server, "GET", bad, token=True)[0] == 404, bad


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (only used to syntax-check the JS)")
def test_the_javascript_parses(tmp_path):
    for f in sorted(STATIC.glob("js/*.js")):
        copy = tmp_path / (f.stem + ".mjs")
        copy.write_text(f.read_text())
        out = subprocess.run(["node", "--check", str(copy)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"{f.name}: {out.stderr}"


# --- pictures ---------------------------------------------------------------------------------------


def decode(data: bytes, flags=None):
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED if flags is None else flags)
    assert img is not None
    return img


def test_info_describes_the_clip_objects_and_history(server, client, plate):
    sid = open_session(client, plate)
    status, _, data = request(server, "GET", f"/v1/viewer/sessions/{sid}/info", token=True)
    info = as_json(data)
    assert status == 200 and info["range"] == [1001, 1008] and info["clip"]["width"] == WIDTH
    assert info["clip"]["fps"] == [24, 1] and info["objects"] == [] and info["undo"] == []
    assert info["suggested_out_dir"] and info["depth"] is False and info["qc"] is None
    x, y = prompt(client, sid, plate)
    job = client.submit(sid, "track", direction="forward")
    assert client.wait(job["id"], poll=0.1, timeout=20)["state"] == "succeeded"
    info = as_json(request(server, "GET", f"/v1/viewer/sessions/{sid}/info", token=True)[2])
    hero = info["objects"][0]
    assert hero["name"] == "hero" and hero["keyframes"] == [1001] and hero["frames"] == [[1001, 1008]]
    assert info["prompts"][0]["kind"] == "point" and info["prompts"][0]["data"]["x"] == pytest.approx(x)
    assert info["prompt_kinds"] == ["points", "box", "mask"] and info["undo"][-1] == "propagate forward 1001-1008"
    rev = info["rev"]
    client.undo(sid)
    assert as_json(request(server, "GET", f"/v1/viewer/sessions/{sid}/info", token=True)[2])["rev"] != rev


def test_plate_proxies_overlays_and_mattes(server, client, plate):
    sid = open_session(client, plate)
    base = f"/v1/viewer/sessions/{sid}"
    status, headers, data = request(server, "GET", f"{base}/frames/1003.jpg?size=32", token=True)
    assert status == 200 and headers["content-type"] == "image/jpeg" and "max-age" in headers["cache-control"]
    assert decode(data).shape == (24, 32, 3)
    full = decode(request(server, "GET", f"{base}/frames/1003.jpg?size=0&quality=98", token=True)[2])
    assert full.shape == (HEIGHT, WIDTH, 3)
    from engine.media.clip import open_clip

    truth = open_clip(plate[0]).read_uint8(1003)  # display-referred, as the models see it
    assert np.abs(full[:, :, ::-1].astype(int) - truth.astype(int)).mean() < 2.0
    assert request(server, "GET", f"{base}/frames/999.jpg", token=True)[0] == 400  # outside the plate
    # no mask yet: 204
    assert request(server, "GET", f"{base}/overlay/1001.png?size=0", token=True)[0] == 204
    x, y = prompt(client, sid, plate)
    status, headers, data = request(server, "GET", f"{base}/overlay/1001.png?size=0", token=True)
    assert status == 200 and headers["content-type"] == "image/png"
    ids = decode(data, __import__("cv2").IMREAD_COLOR)[:, :, ::-1]  # RGB
    idmap = ids[:, :, 0].astype(int) | (ids[:, :, 1].astype(int) << 8)
    assert idmap.shape == (HEIGHT, WIDTH) and idmap[int(y), int(x)] == 1 and idmap[0, 0] == 0
    truth = np.zeros((HEIGHT, WIDTH), bool)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    truth[(xx - x) ** 2 + (yy - y) ** 2 <= 100] = True  # the fake segmenter's disk
    assert np.array_equal(idmap == 1, truth)
    # ETag: unchanged masks answer 304; an edit changes the tag
    etag = headers["etag"]
    assert request(server, "GET", f"{base}/overlay/1001.png?size=0", headers={"If-None-Match": etag}, token=True)[0] == 304
    client.set_prompts(sid, "hero", 1001, points=[(x + 5, y, 1)])
    status, headers2, _ = request(server, "GET", f"{base}/overlay/1001.png?size=0", headers={"If-None-Match": etag}, token=True)
    assert status == 200 and headers2["etag"] != etag
    small = decode(request(server, "GET", f"{base}/overlay/1001.png?size=32", token=True)[2])
    assert small.shape[:2] == (24, 32)
    # matte: the object white on black; hidden objects are left out by the page (objects=)
    m = decode(request(server, "GET", f"{base}/matte/1001.png?size=0", token=True)[2])
    assert m.ndim == 2 and m[int(y), int(x + 5)] == 255 and m[0, 0] == 0
    m = decode(request(server, "GET", f"{base}/matte/1001.png?size=0&objects=2", token=True)[2])
    assert m.max() == 0
    assert request(server, "GET", f"{base}/matte/1001.png?objects=a,b", token=True)[0] == 400
    # depth: none in this session
    status, _, data = request(server, "GET", f"{base}/depth/1001.png", token=True)
    assert status == 501 and "depth" in as_json(data)["error"]["text"]


def test_thumbnail_strip_names_its_frames(server, client, plate):
    sid = open_session(client, plate)
    status, headers, data = request(server, "GET", f"/v1/viewer/sessions/{sid}/thumbs.jpg?count=4&height=24", token=True)
    frames = [int(f) for f in headers["x-roto-frames"].split(",")]
    tile = int(headers["x-roto-tile-width"])
    assert status == 200 and frames[0] == 1001 and frames[-1] == 1008 and len(frames) == 4
    assert decode(data).shape == (24, tile * 4, 3) and tile == 32


# --- edits --------------------------------------------------------------------------------------------


def test_objects_rename_colour_delete_each_one_undo_step(server, client, plate):
    sid = open_session(client, plate)
    prompt(client, sid, plate)
    base = f"/v1/viewer/sessions/{sid}/objects/1"
    js = {"Content-Type": "application/json"}
    status, _, data = request(server, "PATCH", base, json.dumps({"name": "car", "colour": [0, 1, 0.5]}).encode(), js, True)
    out = as_json(data)
    assert status == 200 and out["result"] == {"id": 1, "name": "car", "colour": [0.0, 1.0, 0.5]}
    assert out["summary"]["undo"][-1] == "rename and colour hero to car"
    client.add_object(sid, "tree")
    status, _, data = request(server, "PATCH", base, b'{"name": "tree"}', js, True)
    assert status == 400 and "exists already" in as_json(data)["error"]["text"]
    assert request(server, "PATCH", base, b"{}", js, True)[0] == 400
    assert request(server, "PATCH", base, b'{"colour": [2, 0, 0]}', js, True)[0] == 422
    client.undo(sid)  # the 'tree' object
    client.undo(sid)  # rename + colour, one step
    assert client.session(sid)["object_names"] == {"1": "hero"}
    status, _, data = request(server, "DELETE", base, None, None, True)
    assert status == 200 and as_json(data)["summary"]["objects"] == []
    client.undo(sid)
    s = client.session(sid)
    assert s["object_names"] == {"1": "hero"} and s["objects"][0]["keyframes"] == [1001]


def test_brush_and_eraser_edit_the_mask_as_a_keyframe(server, client, plate):
    sid = open_session(client, plate)
    x, y = prompt(client, sid, plate)
    before = int((decode(request(server, "GET", f"/v1/viewer/sessions/{sid}/matte/1001.png?size=0", token=True)[2]) > 0).sum())
    js = {"Content-Type": "application/json"}
    stroke = {"object": "hero", "frame": 1001, "mode": "add", "radius": 3, "points": [[5, 5], [20, 5]]}
    status, _, data = request(server, "POST", f"/v1/viewer/sessions/{sid}/paint", json.dumps(stroke).encode(), js, True)
    added = as_json(data)["result"]["mask_pixels"]
    assert status == 200 and added > before + 40
    stroke.update(mode="erase", points=[[x, y]], radius=4)
    status, _, data = request(server, "POST", f"/v1/viewer/sessions/{sid}/paint", json.dumps(stroke).encode(), js, True)
    assert status == 200 and as_json(data)["result"]["mask_pixels"] < added
    m = decode(request(server, "GET", f"/v1/viewer/sessions/{sid}/matte/1001.png?size=0", token=True)[2])
    assert m[int(y), int(x)] == 0 and m[5, 12] == 255
    assert as_json(data)["summary"]["undo"][-1].startswith("erase hero frame 1001")
    # nothing left after erasing everything is refused, the mask stays
    stroke.update(points=[[0, 0], [WIDTH - 1, HEIGHT - 1]], radius=200)
    status, _, data = request(server, "POST", f"/v1/viewer/sessions/{sid}/paint", json.dumps(stroke).encode(), js, True)
    assert status == 400 and "empty" in as_json(data)["error"]["text"]


def test_job_kinds_come_with_their_parameter_schema(server):
    status, _, data = request(server, "GET", "/v1/viewer/kinds", token=True)
    kinds = {k["name"]: k for k in as_json(data)["kinds"]}
    assert status == 200 and {"track", "export", "qc", "depth", "shapes"} <= set(kinds)
    props = kinds["export"]["schema"]["properties"]
    fmt = props["format"]
    assert set(fmt.get("enum") or []) >= {"exr", "dpx", "png", "tiff"} and "out_dir" in kinds["export"]["schema"]["required"]
    for k in kinds.values():
        assert k["available"] or (k["reason"] and k["schema"] is None)
    shapes = kinds["shapes"]["schema"]  # a module-provided kind brings its own form
    assert "out_dir" in shapes["required"] and "hosts" in shapes["properties"]
    assert "model" in kinds["depth"]["schema"]["properties"]


def test_reads_do_not_wait_for_a_running_job(server, client, plate):
    sid = open_session(client, plate, backend="slowfake", key="busy")
    prompt(client, sid, plate)
    job = client.submit(sid, "track", direction="forward")
    assert wait_until(lambda: client.job(job["id"])["state"] == "running", 10)
    t0 = time.monotonic()
    info = as_json(request(server, "GET", f"/v1/viewer/sessions/{sid}/info", token=True)[2])
    assert info["busy_job"] == job["id"] and info["busy"]
    for path in ("frames/1005.jpg?size=32", "overlay/1001.png?size=32", "matte/1001.png?size=32", "thumbs.jpg?count=3"):
        assert request(server, "GET", f"/v1/viewer/sessions/{sid}/{path}", token=True)[0] == 200, path
    assert time.monotonic() - t0 < server.config.lock_timeout + 2.0
    # masks appear while the job writes them
    assert wait_until(lambda: request(server, "GET", f"/v1/viewer/sessions/{sid}/overlay/1003.png?size=32",
                                      token=True)[0] == 200, 20)
    client.cancel(job["id"])
    assert wait_until(lambda: client.job(job["id"])["state"] in ("cancelled", "succeeded"), 20)


def test_viewer_readers_close_with_the_server(tmp_path, root, isolated_config, fake_backends, plate):
    from tests.serverkit import running_server

    with running_server(tmp_path, [root]) as srv:
        from engine.client import RotoClient

        c = RotoClient(url=srv.url, token=srv.token, autostart=False)
        sid = c.open_session(plate[0], backend="fake")["session"]
        assert request(srv, "GET", f"/v1/viewer/sessions/{sid}/frames/1001.jpg", token=True)[0] == 200
        media = _find_media(srv.app)
        assert media._clips
    assert not media._clips and media.cache.bytes_used == 0


def _find_media(app):
    obj = app
    for _ in range(5):
        state = getattr(obj, "state", None)
        if state is not None and hasattr(state, "viewer_media"):
            return state.viewer_media
        obj = getattr(obj, "app", None)
    raise AssertionError("viewer media not found")


def test_depth_view_and_qc_flags_once_the_session_has_them(server, client, plate):
    sid = open_session(client, plate, key="depth-qc")
    prompt(client, sid, plate)
    job = client.submit(sid, "track", direction="forward")
    assert client.wait(job["id"], poll=0.1, timeout=20)["state"] == "succeeded"
    # depth stored with the session (the weight-free 'prior' estimator), as the depth job would
    from engine.depth.pipeline import run_depth

    h = server.engine.sessions.get(sid)
    with h.lock.hold("test depth"):
        run_depth(h.session.clip, None, model="prior", session=h.session, temporal=0.0)
    status, headers, data = request(server, "GET", f"/v1/viewer/sessions/{sid}/depth/1002.png?size=32", token=True)
    img = decode(data)
    assert status == 200 and img.shape == (24, 32) and img.max() > img.min()
    info = as_json(request(server, "GET", f"/v1/viewer/sessions/{sid}/info", token=True)[2])
    assert info["depth"] is True
    # QC: flags (frame, object, reasons) reach the page
    job = client.submit(sid, "qc")
    done = client.wait(job["id"], poll=0.1, timeout=60)
    assert done["state"] == "succeeded", done
    info = as_json(request(server, "GET", f"/v1/viewer/sessions/{sid}/info", token=True)[2])
    assert isinstance(info["qc"], list)
    expected = [(r["frame"], r["object_id"]) for r in done["result"]["review"]]
    assert [(q["frame"], q["object"]) for q in info["qc"]] == expected
    assert all(q["reasons"] for q in info["qc"])
