"""The viewer in a real browser (headless Chromium driven by Selenium) against a real ``roto serve``.

A generated clip is opened with ``roto open --no-browser``; the browser follows the one-time
sign-in link, clicks a point on the object, checks the overlay on the canvas, propagates, scrubs
to a later frame and sees the mask there, undoes, plays an in/out range and exports. A screenshot
of each step is kept in ``$ROTO_TEST_ARTEFACTS/viewer`` (else pytest's tmp folder; never in git).

Skips with a reason when Selenium, Chromium or chromedriver is missing. Debian/Ubuntu:
``apt-get install -y chromium chromium-driver``; Python: ``pip install selenium``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the viewer tests need the 'server' extra (fastapi, uvicorn)")
pytest.importorskip("uvicorn", reason="the viewer tests need the 'server' extra (fastapi, uvicorn)")
selenium = pytest.importorskip("selenium", reason="the browser test needs Selenium (pip install selenium)")

ROOT = Path(__file__).resolve().parents[1]
W, H, FRAMES = 320, 180, 12
FIRST, LAST = 1001, 1000 + FRAMES


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


BROWSER = _browser()
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    BROWSER is None or DRIVER is None,
    reason="no Chromium and chromedriver on PATH (Debian/Ubuntu: apt-get install -y chromium chromium-driver)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _artefacts(tmp: Path) -> Path:
    env = os.environ.get("ROTO_TEST_ARTEFACTS")
    out = Path(env) / "viewer" if env else tmp / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A plate, a real ``roto serve`` subprocess on a free loopback port, and its environment."""
    from engine.media.synthetic import generate, write_exr_sequence

    tmp = tmp_path_factory.mktemp("viewer")
    root = tmp / "root"
    sample = generate(width=W, height=H, frames=FRAMES, seed=11)
    pattern = write_exr_sequence(sample, root / "plate")
    port = _free_port()
    env = dict(os.environ)
    env.update({"XDG_CONFIG_HOME": str(tmp / "config"), "ROTO_TOKEN_FILE": str(tmp / "token"),
                "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")})
    for var in ("ROTO_TOKEN", "ROTO_SERVER_URL", "ROTO_SERVER_COMMAND", "ROTO_BACKEND", "ROTO_SERVER_ROOTS"):
        env.pop(var, None)
    log = open(tmp / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "serve", "--port", str(port), "--root", str(root),
                             "--state-dir", str(tmp / "state"), "--token-file", str(tmp / "token")],
                            cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/v1/health", timeout=2) as r:
                if json.loads(r.read())["service"] == "ultimate-rotoscopy":
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            log.close()
            pytest.fail("roto serve did not start:\n" + (tmp / "server.log").read_text()[-3000:])
        time.sleep(0.2)
    try:
        yield {"tmp": tmp, "root": root, "pattern": pattern, "sample": sample, "url": url, "env": env,
               "shots": _artefacts(tmp)}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def roto_open(world, *args: str) -> tuple[str, str]:
    """``roto open ... --no-browser``: the one-time sign-in link it prints, and the session id."""
    out = subprocess.run([sys.executable, "-m", "engine.cli.main", "open", *args, "--no-browser", "--url", world["url"]],
                         cwd=str(ROOT), env=world["env"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    link = out.stdout.strip().splitlines()[-1]
    assert link.startswith(world["url"] + "/viewer/login?code="), out.stdout
    sid = out.stderr.split("roto: session ", 1)[1].split()[0]
    return link, sid


def api(world, method: str, path: str, body: dict | None = None):
    """The engine API with the token, as a host would call it."""
    token = (world["tmp"] / "token").read_text().strip()
    req = urllib.request.Request(world["url"] + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def browser(world):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = BROWSER
    profile = tempfile.mkdtemp(prefix="roto-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,900",
                 "--force-device-scale-factor=1"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        with contextlib.suppress(Exception):
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# --- helpers ---------------------------------------------------------------------------------------


def js(d, script: str, *args):
    return d.execute_script(script, *args)


def wait_for(d, script: str, timeout: float = 30.0, what: str = "", *args):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if js(d, script, *args):
            return
        time.sleep(0.05)
    logs = "\n".join(str(e) for e in d.get_log("browser"))
    status = js(d, "return document.getElementById('status').textContent")
    raise AssertionError(f"timed out waiting for {what or script!r}; status: {status!r}\nbrowser log:\n{logs}")


def settled(d, frame: int, timeout: float = 30.0) -> None:
    wait_for(d, "return window.roto && roto.settled() && document.body.dataset.frame === arguments[0]", timeout,
             f"frame {frame} drawn and idle", str(frame))


def shot(d, world, name: str) -> None:
    d.save_screenshot(str(world["shots"] / f"{name}.png"))


def sample(d, x: float, y: float) -> list[int]:
    return js(d, "return roto.sample(arguments[0], arguments[1])", x, y)


def click_plate(d, x: float, y: float, button: str = "left") -> None:
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.mouse_button import MouseButton

    cx, cy = js(d, "return roto.plateToClient(arguments[0], arguments[1])", x, y)
    ab = ActionBuilder(d)
    ab.pointer_action.move_to_location(int(round(cx)), int(round(cy)))
    if button == "left":
        ab.pointer_action.click()
    else:
        ab.pointer_action.pointer_down(MouseButton.RIGHT).pointer_up(MouseButton.RIGHT)
    ab.perform()


def drag(d, x0: float, y0: float, x1: float, y1: float, steps: int = 8) -> None:
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    ab = ActionBuilder(d)
    ab.pointer_action.move_to_location(int(x0), int(y0)).pointer_down()
    for i in range(1, steps + 1):
        ab.pointer_action.move_to_location(int(x0 + (x1 - x0) * i / steps), int(y0 + (y1 - y0) * i / steps))
    ab.pointer_action.pointer_up()
    ab.perform()


def keys(d, *seq) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(d).send_keys(*seq).perform()


def chord(d, modifiers: list, key: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ac = ActionChains(d)
    for m in modifiers:
        ac.key_down(m)
    ac.send_keys(key)
    for m in reversed(modifiers):
        ac.key_up(m)
    ac.perform()


def differs(a: list[int], b: list[int], by: int = 25) -> bool:
    return max(abs(int(p) - int(q)) for p, q in zip(a[:3], b[:3])) >= by


def same(a: list[int], b: list[int], tol: int = 3) -> bool:
    return max(abs(int(p) - int(q)) for p, q in zip(a[:3], b[:3])) <= tol


def centre(world, frame: int) -> tuple[float, float]:
    f = world["sample"][frame - FIRST]
    return float(f.centre[0]), float(f.centre[1])


# --- the test --------------------------------------------------------------------------------------


def test_prompt_propagate_scrub_undo_export_in_a_real_browser(world, browser):
    d = browser
    from selenium.webdriver.common.keys import Keys

    # 1. roto open -> one-time link -> signed in by an HttpOnly cookie; the code leaves the address bar
    link, sid = roto_open(world, world["pattern"], "--backend", "classical")
    d.get(link)
    wait_for(d, "return document.body.dataset.loaded === '1'", 60, "the viewer to load")
    assert "code=" not in d.current_url and "session=" in d.current_url
    assert js(d, "return document.cookie") == ""  # HttpOnly: invisible to scripts
    settled(d, FIRST)
    shot(d, world, "01-loaded")
    d.get(link)  # a used link signs nobody in
    wait_for(d, "return !!document.body && document.body.textContent.includes('expired or was used')", 20,
             "the sign-in page refusing a used link")
    d.back()
    wait_for(d, "return document.body.dataset.loaded === '1'", 60, "the viewer to load again")
    settled(d, FIRST)
    d.get_log("browser")  # drop the expected 401 of the used link

    # the plate at the object's centre and far from it, before any mask
    cx, cy = centre(world, FIRST)
    far = (W - 12.0, 10.0)
    plate_c = sample(d, cx, cy)
    plate_far = sample(d, *far)
    lx, ly = centre(world, LAST)
    keys(d, Keys.END)
    settled(d, LAST)
    plate_last = sample(d, lx, ly)
    keys(d, Keys.HOME)
    settled(d, FIRST)

    # 2. click a point: the overlay appears where the object is, nowhere else
    click_plate(d, cx, cy)
    wait_for(d, "return document.getElementById('status').textContent.includes('point on frame 1001')", 60,
             "the point prompt to be applied")
    settled(d, FIRST)
    assert differs(sample(d, cx, cy), plate_c), "no overlay on the object after a click"
    assert same(sample(d, *far), plate_far), "the overlay spilled far from the object"
    info = js(d, "return roto.state.info")
    assert len(info["objects"]) == 1 and info["objects"][0]["keyframes"] == [FIRST]
    shot(d, world, "02-point")

    # 3. propagate both ways (progress, then done)
    d.find_element("css selector", "button.prop[data-dir=both]").click()
    wait_for(d, "return document.body.dataset.job === 'succeeded'", 120, "the propagation to finish")
    info = js(d, "return roto.state.info")
    assert info["objects"][0]["frames"] == [[FIRST, LAST]]
    assert js(d, "return performance.getEntriesByType('resource').some(e => e.name.includes('/events'))"), \
        "progress did not come by server-sent events"
    shot(d, world, "03-propagated")

    # 4. scrub the timeline to the last frame: the mask is there
    rect = js(d, "const r = document.getElementById('timeline').getBoundingClientRect();"
                 "return [r.left, r.top, r.width, r.height]")
    drag(d, rect[0] + 12, rect[1] + 60, rect[0] + rect[2] - 2, rect[1] + 60)
    settled(d, LAST)
    masked_last = sample(d, lx, ly)
    assert differs(masked_last, plate_last), "no mask on the last frame after propagating"
    shot(d, world, "04-scrubbed")
    # frame-accurate stepping with the arrow keys
    keys(d, Keys.ARROW_LEFT)
    settled(d, LAST - 1)
    keys(d, Keys.ARROW_RIGHT)
    settled(d, LAST)

    # 5. undo (Ctrl+Z) removes the propagation; redo (Ctrl+Shift+Z) brings it back
    chord(d, [Keys.CONTROL], "z")
    wait_for(d, "return roto.state.info.redo.length === 1 && roto.settled()", 60, "the undo")
    settled(d, LAST)
    assert same(sample(d, lx, ly), plate_last), "the mask is still there after undo"
    shot(d, world, "05-undone")
    chord(d, [Keys.CONTROL, Keys.SHIFT], "z")
    wait_for(d, "return roto.state.info.redo.length === 0 && roto.settled()", 60, "the redo")
    settled(d, LAST)
    assert same(sample(d, lx, ly), masked_last, tol=6), "redo did not bring the mask back"

    # 6. in/out and playback at the clip's rate within them (J/K/L, Space)
    js(d, "roto.setFrame(1003)")
    settled(d, 1003)
    keys(d, "i")
    js(d, "roto.setFrame(1008)")
    settled(d, 1008)
    keys(d, "o")
    assert js(d, "return document.body.dataset.inout") == "1003-1008"
    keys(d, Keys.SPACE)
    seen = set()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 2.0:
        seen.add(int(js(d, "return document.body.dataset.frame")))
        time.sleep(0.02)
    fps = js(d, "return document.getElementById('fps-label').textContent")
    keys(d, "k")
    assert js(d, "return document.body.dataset.playing") == "0"
    assert seen <= set(range(1003, 1009)), f"playback left the in/out range: {sorted(seen)}"
    assert len(seen) >= 5, f"playback did not advance through the range: {sorted(seen)}"
    assert fps.endswith("/24 fps") and float(fps.split("/")[0]) > 8, f"playback rate {fps!r}"
    shot(d, world, "06-played")
    chord(d, [Keys.ALT], "i")
    chord(d, [Keys.ALT], "o")
    assert js(d, "return document.body.dataset.inout") == "-"

    # 7. hide the object: its overlay goes; the matte view shows it white on black
    keys(d, Keys.END)
    settled(d, LAST)
    js(d, "document.querySelector('#object-list li button.eye').click()")
    wait_for(d, "return roto.state.hidden.size === 1", 10, "the object to hide")
    settled(d, LAST)
    assert same(sample(d, lx, ly), plate_last)
    js(d, "document.querySelector('#object-list li button.eye').click()")
    keys(d, "2")
    wait_for(d, "return roto.state.mode === 'matte' && document.body.dataset.shown === '1012'", 30, "the matte view")
    assert min(sample(d, lx, ly)[:3]) >= 250 and max(sample(d, *far)[:3]) <= 5
    shot(d, world, "07-matte")
    keys(d, "1")
    settled(d, LAST)

    # 8. export: PNG mattes for every frame, written by the engine
    out_dir = world["root"] / "delivery"
    sel = d.find_element("id", "export-kind")
    from selenium.webdriver.support.select import Select

    Select(sel).select_by_value("export")
    form = d.find_element("id", "export-form")
    Select(form.find_element("name", "format")).select_by_value("png")
    box = form.find_element("name", "out_dir")
    box.clear()
    box.send_keys(str(out_dir))
    d.find_element("id", "export-run").click()
    wait_for(d, "return document.body.dataset.exported === 'succeeded'", 120, "the export to finish")
    written = sorted(p for p in out_dir.rglob("*.png"))
    assert len(written) >= FRAMES, f"export wrote {len(written)} PNG files: {written[:5]}"
    assert any(f".{LAST}." in p.name or f"_{LAST}." in p.name for p in written)
    shot(d, world, "08-exported")
    errors = [e for e in d.get_log("browser") if e.get("level") == "SEVERE"]
    assert not errors, errors


@pytest.fixture(scope="module")
def other_site(world):
    """Another web server on this machine (another port: same site, other origin) serving a page."""
    import http.server
    import threading

    page = b"<!doctype html><title>another site</title><p>hello</p>"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_other_sites_cannot_use_the_signed_in_browser(world, browser, other_site):
    """A page of another origin on the same machine (the browser sends the cookie: same site) can
    neither read the API nor change a session through the signed-in browser."""
    d = browser
    link, sid = roto_open(world, world["pattern"], "--backend", "classical", "--key", "other-sites")
    d.get(link)
    wait_for(d, "return document.body.dataset.loaded === '1'", 60, "the viewer to load")
    before = api(world, "GET", f"/v1/sessions/{sid}")["objects"]
    d.get(other_site)
    url = world["url"]
    read = d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0] + '/v1/sessions', {credentials: 'include'})"
        ".then(r => r.text()).then(t => done('read ' + t.slice(0, 80))).catch(e => done('blocked ' + e.name));", url)
    assert read.startswith("blocked"), read
    sent = d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0] + '/v1/sessions/' + arguments[1] + '/objects', {method: 'POST', credentials: 'include',"
        " mode: 'no-cors', headers: {'Content-Type': 'text/plain'}, body: JSON.stringify({name: 'intruder'})})"
        ".then(() => done('sent')).catch(() => done('blocked'));", url, sid)
    # a form posted to the engine from that page
    d.execute_script(
        "const f = document.createElement('form'); f.method = 'POST'; f.action = arguments[0] + '/v1/sessions/' +"
        " arguments[1] + '/objects'; f.enctype = 'text/plain'; const i = document.createElement('input');"
        " i.name = '{\\\"name\\\": \\\"x'; i.value = '\\\"}'; f.append(i); document.body.append(f); f.submit();", url, sid)
    time.sleep(1.0)
    assert sent in ("sent", "blocked")
    assert api(world, "GET", f"/v1/sessions/{sid}")["objects"] == before
    d.get_log("browser")


def test_objects_boxes_negative_points_brush_rename_colour_delete(world, browser):
    d = browser
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    link, sid = roto_open(world, world["pattern"], "--backend", "classical", "--key", "tools")
    d.get(link)
    wait_for(d, "return document.body.dataset.loaded === '1'", 60, "the viewer to load")
    settled(d, FIRST)
    cx, cy = centre(world, FIRST)
    corner = (30.0, 30.0)
    plate_corner = sample(d, *corner)

    # a box around the object (drag) makes the first object
    x0, y0 = js(d, "return roto.plateToClient(arguments[0], arguments[1])", cx - 70, cy - 55)
    x1, y1 = js(d, "return roto.plateToClient(arguments[0], arguments[1])", cx + 70, cy + 55)
    drag(d, x0, y0, x1, y1)
    wait_for(d, "return roto.settled() && roto.state.info.prompts.length === 1", 60, "the box prompt")
    assert js(d, "return roto.state.info.prompts[0].kind") == "box"
    # a second object: a click on it, then a background click (right button) beside it
    js(d, "document.getElementById('add-object').click()")
    wait_for(d, "return roto.settled() && roto.state.info.objects.length === 2", 30, "the second object")
    click_plate(d, cx, cy)
    wait_for(d, "return roto.settled() && roto.state.info.prompts.length === 2", 60, "the positive point")
    click_plate(d, cx + 60, cy, button="right")
    wait_for(d, "return roto.settled() && roto.state.info.prompts.length === 3", 60, "the negative point")
    labels = js(d, "return roto.state.info.prompts.filter(p => p.kind === 'point').map(p => p.data.label)")
    assert sorted(labels) == [0, 1]

    # brush (B) paints a patch of the selected object far from it; eraser (E) takes it back
    keys(d, "b")
    a = js(d, "return roto.plateToClient(arguments[0], arguments[1])", corner[0] - 8, corner[1])
    b = js(d, "return roto.plateToClient(arguments[0], arguments[1])", corner[0] + 8, corner[1])
    drag(d, a[0], a[1], b[0], b[1], steps=4)
    wait_for(d, "return roto.settled() && document.getElementById('status').textContent.startsWith('painted')", 30,
             "the brush stroke")
    settled(d, FIRST)
    assert differs(sample(d, *corner), plate_corner)
    keys(d, "e")
    drag(d, a[0], a[1], b[0], b[1], steps=4)
    wait_for(d, "return roto.settled() && document.getElementById('status').textContent.startsWith('erased')", 30,
             "the eraser stroke")
    settled(d, FIRST)
    assert same(sample(d, *corner), plate_corner)
    keys(d, "q")
    shot(d, world, "09-tools")

    # rename (double-click), colour, delete and undo the delete
    name = d.find_element("css selector", "#object-list li[data-object='2'] .name")
    ActionChains(d).double_click(name).perform()
    box = d.find_element("css selector", "#object-list li input[type=text]")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("hero", Keys.ENTER)
    wait_for(d, "return roto.settled() && roto.state.info.objects[1].name === 'hero'", 30, "the rename")
    js(d, "const c = document.querySelector(\"#object-list li[data-object='2'] input[type=color]\");"
          "c.value = '#00ff00'; c.dispatchEvent(new Event('change'));")
    wait_for(d, "return roto.settled() && roto.state.info.objects[1].colour[1] === 1", 30, "the colour")
    settled(d, FIRST)
    px = sample(d, cx, cy)
    assert px[1] > px[0] and px[1] > px[2], f"the overlay is not green: {px}"
    js(d, "document.querySelector(\"#object-list li[data-object='2'] button.del\").click()")
    wait_for(d, "return roto.settled() && roto.state.info.objects.length === 1", 30, "the delete")
    chord(d, [Keys.CONTROL], "z")
    wait_for(d, "return roto.settled() && roto.state.info.objects.length === 2", 30, "the undo of the delete")
    assert js(d, "return roto.state.info.objects[1].name") == "hero"
    assert api(world, "GET", f"/v1/sessions/{sid}")["object_names"] == {"1": "object1", "2": "hero"}
    shot(d, world, "10-objects")
