"""Model downloads against a real HTTP server on 127.0.0.1: resume, checksums, offline, lock, manager, CLI."""

from __future__ import annotations

import hashlib
import json
import os
import threading

import pytest

from engine.errors import ModelError
from engine.models import catalogue
from engine.models.download import _auth_headers, download, part_path
from engine.models.manager import ModelManager
from tests.fakes.http_server import FileServer

PAYLOAD = os.urandom(300_000)
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()
FAST = {"chunk_size": 16_384, "retry_delay": 0.0, "timeout": 10.0}


@pytest.fixture
def server():
    with FileServer({"/w/model.pt": PAYLOAD, "/sam2.1-tiny/sam2.1_hiera_tiny.pt": PAYLOAD}) as s:
        yield s


@pytest.fixture(autouse=True)
def payload_sized_catalogue(monkeypatch):
    """The catalogue with every size equal to the test payload (fetch/verify refuse implausible sizes)."""
    from dataclasses import replace

    from engine.models import manager

    entries = tuple(replace(e, size=len(PAYLOAD)) for e in catalogue.CATALOGUE)
    monkeypatch.setattr(catalogue, "CATALOGUE", entries)
    monkeypatch.setattr(manager, "CATALOGUE", entries)
    monkeypatch.setattr(catalogue, "_BY_NAME", {e.name: e for e in entries})


def leftovers(dest):
    return sorted(p.name for p in dest.parent.iterdir() if p.name != dest.name and not p.name.endswith(".lock"))


def test_fresh_download_is_checked_and_atomic(server, tmp_path):
    dest = tmp_path / "m" / "model.pt"
    seen = []
    res = download(server.url + "/w/model.pt", dest, sha256=DIGEST, progress=lambda d, t: seen.append((d, t)), **FAST)
    assert dest.read_bytes() == PAYLOAD and res.sha256 == DIGEST and res.size == len(PAYLOAD)
    assert res.downloaded == len(PAYLOAD) and res.resumed_from == 0 and not res.already_present
    assert leftovers(dest) == []  # no .part, no .part.json
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD)) and len(seen) > 3
    assert server.requests == [("/w/model.pt", None)]


def test_dropped_connection_resumes_in_the_same_call(server, tmp_path):
    dest = tmp_path / "model.pt"
    server.drop_after["/w/model.pt"] = 100_000
    res = download(server.url + "/w/model.pt", dest, sha256=DIGEST, **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests[0] == ("/w/model.pt", None)
    assert server.requests[1][1].startswith("bytes=") and int(server.requests[1][1][6:-1]) >= 90_000
    assert res.downloaded == len(PAYLOAD)


def test_interrupted_fetch_keeps_the_part_and_the_next_call_resumes(server, tmp_path):
    dest = tmp_path / "model.pt"
    server.drop_after["/w/model.pt"] = 120_000
    server.after_drop_status["/w/model.pt"] = 503  # and then the server is down for this call
    with pytest.raises(ModelError, match="resumes"):
        download(server.url + "/w/model.pt", dest, sha256=DIGEST, retries=0, **FAST)
    del server.status["/w/model.pt"]
    kept = part_path(dest).stat().st_size
    assert 0 < kept <= 120_000 and not dest.exists()
    res = download(server.url + "/w/model.pt", dest, sha256=DIGEST, **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert res.resumed_from == kept and res.downloaded == len(PAYLOAD) - kept
    assert server.requests[-1] == ("/w/model.pt", f"bytes={kept}-")
    assert leftovers(dest) == []


def test_checksum_mismatch_raises_and_leaves_nothing(server, tmp_path):
    dest = tmp_path / "model.pt"
    with pytest.raises(ModelError, match="SHA-256") as info:
        download(server.url + "/w/model.pt", dest, sha256="0" * 64, **FAST)
    assert "deleted" in str(info.value)
    assert not dest.exists() and leftovers(dest) == []


def test_checksum_mismatch_after_a_resume_also_cleans_up(server, tmp_path):
    dest = tmp_path / "model.pt"
    server.drop_after["/w/model.pt"] = 50_000
    with pytest.raises(ModelError):
        download(server.url + "/w/model.pt", dest, sha256="f" * 64, **FAST)
    assert not dest.exists() and leftovers(dest) == []


def test_offline_mode_never_touches_the_network(server, tmp_path):
    dest = tmp_path / "model.pt"
    with pytest.raises(ModelError, match="offline") as info:
        download(server.url + "/w/model.pt", dest, offline=True, **FAST)
    assert "ROTO_OFFLINE" in str(info.value) and str(dest) in str(info.value)
    dest.write_bytes(PAYLOAD)
    res = download(server.url + "/w/model.pt", dest, sha256=DIGEST, offline=True, **FAST)
    assert res.already_present and res.sha256 == DIGEST
    assert server.requests == []


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    dest = tmp_path / "model.pt"
    server.drop_after["/w/model.pt"] = 70_000
    server.ignore_range = True
    res = download(server.url + "/w/model.pt", dest, sha256=DIGEST, **FAST)
    assert dest.read_bytes() == PAYLOAD and res.size == len(PAYLOAD)


def test_changed_remote_file_is_not_spliced_onto_an_old_part(server, tmp_path):
    dest = tmp_path / "model.pt"
    server.drop_after["/w/model.pt"] = 60_000
    server.after_drop_status["/w/model.pt"] = 503
    with pytest.raises(ModelError):
        download(server.url + "/w/model.pt", dest, retries=0, **FAST)
    del server.status["/w/model.pt"]
    assert part_path(dest).exists()
    new = os.urandom(200_000)
    server.files["/w/model.pt"] = new  # new ETag: If-Range fails, the server sends the whole file
    res = download(server.url + "/w/model.pt", dest, sha256=hashlib.sha256(new).hexdigest(), **FAST)
    assert dest.read_bytes() == new and res.resumed_from == 0


def test_http_errors_are_sentences(server, tmp_path):
    with pytest.raises(ModelError, match="HTTP 404") as info:
        download(server.url + "/nope.pt", tmp_path / "x.pt", **FAST)
    assert "--url" in info.value.hint
    server.status["/w/model.pt"] = 403
    with pytest.raises(ModelError, match="refused"):
        download(server.url + "/w/model.pt", tmp_path / "y.pt", **FAST)
    assert not (tmp_path / "y.pt").exists()


def test_unreachable_server_is_a_model_error(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(ModelError, match="failed"):
        download(f"http://127.0.0.1:{port}/m.pt", tmp_path / "m.pt", retries=1, **FAST)


def test_concurrent_fetches_download_once(server, tmp_path):
    dest = tmp_path / "model.pt"
    results, errors = [], []

    def fetch():
        try:
            results.append(download(server.url + "/w/model.pt", dest, sha256=DIGEST, **FAST))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(results) == 3
    assert sum(not r.already_present for r in results) == 1
    assert [r for r in server.requests if r[1] is None] == [("/w/model.pt", None)]
    assert dest.read_bytes() == PAYLOAD


def test_hugging_face_token_only_for_hugging_face(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "abc")
    assert _auth_headers("https://huggingface.co/facebook/sam3/resolve/main/sam3.pt") == {"Authorization": "Bearer abc"}
    assert _auth_headers("https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_tiny.pt") == {}
    assert _auth_headers("https://huggingface.co.evil.example/x") == {}


# --- catalogue and manager ---------------------------------------------------------------------


def test_catalogue_has_official_locations_and_licences():
    tiny = catalogue.get("sam2.1-tiny")
    assert tiny.url == "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_tiny.pt"
    assert tiny.extra["config"] == "configs/sam2.1/sam2.1_hiera_t.yaml"
    for n in ("sam2.1-small", "sam2.1-base_plus", "sam2.1-large"):
        assert catalogue.get(n).url.startswith("https://dl.fbaipublicfiles.com/segment_anything_2/092824/")
    assert catalogue.get("sam2-large").name == "sam2.1-large"  # alias
    assert catalogue.get("da3-small").commercial and catalogue.get("da3-base").licence == "Apache-2.0"
    assert not catalogue.get("da3-large").commercial and not catalogue.get("da3-giant").commercial
    assert not catalogue.get("matanyone").commercial and "S-Lab" in catalogue.get("matanyone").licence
    assert catalogue.get("sam3").gated
    with pytest.raises(ModelError, match="no model named"):
        catalogue.get("sam9")


def test_manager_fetch_records_then_verifies(server, tmp_path):
    mgr = ModelManager(tmp_path / "models", offline=False, mirror=server.url)
    with pytest.raises(ModelError) as info:
        mgr.require("sam2.1-tiny", "The sam2 backend")
    assert "roto models fetch sam2.1-tiny" in str(info.value)
    res = mgr.fetch("sam2.1-tiny", **FAST)
    path = tmp_path / "models" / "sam2.1-tiny" / "sam2.1_hiera_tiny.pt"
    assert res.path == path and path.read_bytes() == PAYLOAD
    rec = json.loads((tmp_path / "models" / "checksums.json").read_text())
    assert rec["sam2.1-tiny"]["sha256"] == DIGEST and rec["sam2.1-tiny"]["size"] == len(PAYLOAD)
    assert mgr.require("sam2.1-tiny", "x") == path
    assert mgr.verify("sam2.1-tiny").status == "ok"
    assert mgr.fetch("sam2.1-tiny").already_present  # present: kept, no new request
    # a damaged copy: same size fails verify, a truncated one fails the cheap require check
    path.write_bytes(b"x" + PAYLOAD[1:])
    v = mgr.verify("sam2.1-tiny")
    assert v.status == "mismatch" and v.source == "recorded"
    path.write_bytes(PAYLOAD[:1000])
    with pytest.raises(ModelError, match="truncated"):
        mgr.require("sam2.1-tiny", "x")


def test_re_fetch_is_checked_against_the_recorded_digest(server, tmp_path):
    mgr = ModelManager(tmp_path, offline=False, mirror=server.url)
    mgr.fetch("sam2.1-tiny", **FAST)
    server.files["/sam2.1-tiny/sam2.1_hiera_tiny.pt"] = os.urandom(len(PAYLOAD))  # tampered mirror
    with pytest.raises(ModelError, match="not the published file.*the old weights were kept"):
        mgr.fetch("sam2.1-tiny", force=True, **FAST)
    # the checked copy already there is untouched; the wrong download left nothing behind
    assert mgr.path("sam2.1-tiny").read_bytes() == PAYLOAD and not part_path(mgr.path("sam2.1-tiny")).exists()
    assert mgr.forget("sam2.1-tiny")  # the publisher replaced it on purpose
    mgr.fetch("sam2.1-tiny", force=True, **FAST)
    assert mgr.path("sam2.1-tiny").read_bytes() != PAYLOAD
    assert mgr.verify("sam2.1-tiny").status == "ok"


def test_manager_offline_and_copied_in_files(tmp_path, server):
    mgr = ModelManager(tmp_path, offline=True, mirror=server.url)
    with pytest.raises(ModelError, match="offline"):
        mgr.fetch("da3-small")
    with pytest.raises(ModelError, match="offline mode is on"):
        mgr.require("da3-small", "Depth")
    p = mgr.path("da3-small")
    p.parent.mkdir(parents=True)
    p.write_bytes(PAYLOAD)
    assert mgr.verify("da3-small").status == "recorded"  # first check records the digest
    assert mgr.verify("da3-small").status == "ok"
    assert server.requests == []


def test_settings_choose_the_store(monkeypatch, tmp_path):
    monkeypatch.setenv("ROTO_MODELS", str(tmp_path / "store"))
    monkeypatch.setenv("ROTO_OFFLINE", "1")
    mgr = ModelManager()
    assert mgr.root == tmp_path / "store" and mgr.offline


# --- CLI -----------------------------------------------------------------------------------------


def test_cli_models_list_fetch_verify_path(server, tmp_path, monkeypatch, capsys):
    from engine.cli.main import main

    monkeypatch.setenv("ROTO_MODELS", str(tmp_path))
    monkeypatch.setenv("ROTO_MODEL_MIRROR", server.url)
    monkeypatch.delenv("ROTO_OFFLINE", raising=False)
    assert main(["models", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["models"]}
    assert rows["sam2.1-tiny"]["status"] == "missing" and rows["da3-giant"]["commercial"] is False
    assert main(["models", "fetch", "sam2.1-tiny", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["status"] == "downloaded" and out[0]["sha256"] == DIGEST
    assert main(["models", "verify"]) == 0
    assert "sam2.1-tiny: ok" in capsys.readouterr().out
    assert main(["models", "path", "sam2.1-tiny"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "sam2.1-tiny" / "sam2.1_hiera_tiny.pt")
    assert main(["models", "list"]) == 0
    assert "present" in capsys.readouterr().out
    monkeypatch.setenv("ROTO_OFFLINE", "1")
    assert main(["models", "fetch", "sam2.1-small"]) == 2
    assert "offline" in capsys.readouterr().err
    assert main(["models", "fetch", "nope"]) == 2


# --- audit D#3: --force keeps the old weights until the new file is complete and checked ----------


def test_force_refetch_that_fails_keeps_the_old_weights(tmp_path, monkeypatch):
    from engine.models import download as dl

    mgr = ModelManager(tmp_path, offline=False, mirror="http://127.0.0.1:9")  # nothing listens there
    path = mgr.path("sam2.1-tiny")
    path.parent.mkdir(parents=True)
    path.write_bytes(PAYLOAD)
    with pytest.raises(ModelError, match="the old weights were kept") as info:
        mgr.fetch("sam2.1-tiny", force=True, retries=0, **FAST)
    assert "Traceback" not in str(info.value)
    assert path.read_bytes() == PAYLOAD

    # a download that dies mid-way (monkeypatched) also leaves the present file as it was
    def broken(*_a, **_k):
        raise dl._Transient("the connection dropped")

    monkeypatch.setattr(dl, "_transfer", broken)
    src = tmp_path / "new.pt"
    src.write_bytes(os.urandom(len(PAYLOAD)))
    with pytest.raises(ModelError, match="the old weights were kept"):
        mgr.fetch("sam2.1-tiny", url=src.as_uri(), force=True, retries=0, **FAST)
    assert path.read_bytes() == PAYLOAD


def test_force_refetch_replaces_the_file_atomically_on_success(tmp_path):
    mgr = ModelManager(tmp_path, offline=False, mirror=None)
    path = mgr.path("sam2.1-tiny")
    path.parent.mkdir(parents=True)
    path.write_bytes(PAYLOAD)
    new = tmp_path / "new.pt"
    new.write_bytes(PAYLOAD[::-1])
    res = mgr.fetch("sam2.1-tiny", url=str(new), force=True, **FAST)
    assert path.read_bytes() == PAYLOAD[::-1] and not res.already_present
    assert leftovers(path) == []


# --- audit D#9: plain paths and file:// for --url and the mirror, also offline --------------------


def test_plain_path_and_file_url_sources_work_offline(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    (mirror / "sam2.1-small").mkdir(parents=True)
    (mirror / "sam2.1-small" / "sam2.1_hiera_small.pt").write_bytes(PAYLOAD)
    copy = tmp_path / "copy.pt"
    copy.write_bytes(PAYLOAD)
    for offline in (False, True):
        store = tmp_path / f"store{offline}"
        # a plain folder path as the mirror (DR007's offline studio install)
        mgr = ModelManager(store, offline=offline, mirror=str(mirror))
        assert mgr.fetch("sam2.1-small", **FAST).path.read_bytes() == PAYLOAD
        # the same mirror as a file:// URL
        mgr2 = ModelManager(store / "b", offline=offline, mirror=mirror.as_uri())
        assert mgr2.fetch("sam2.1-small", **FAST).path.read_bytes() == PAYLOAD
        # --url as a plain path and as file://, with --force over a present file
        assert mgr.fetch("sam2.1-tiny", url=str(copy), **FAST).path.read_bytes() == PAYLOAD
        assert mgr.fetch("sam2.1-tiny", url=copy.as_uri(), force=True, **FAST).path.read_bytes() == PAYLOAD
    # the environment variable, through the CLI, offline
    from engine.cli.main import main

    monkeypatch.setenv("ROTO_MODELS", str(tmp_path / "cli"))
    monkeypatch.setenv("ROTO_MODEL_MIRROR", str(mirror))
    monkeypatch.setenv("ROTO_OFFLINE", "1")
    assert main(["models", "fetch", "sam2.1-small"]) == 0
    assert (tmp_path / "cli" / "sam2.1-small" / "sam2.1_hiera_small.pt").read_bytes() == PAYLOAD


def test_bad_sources_are_one_sentence(tmp_path, monkeypatch, capsys):
    mgr = ModelManager(tmp_path, offline=False, mirror=None)
    with pytest.raises(ModelError, match="--url '/no/such/file.pt' is not an http"):
        mgr.fetch("sam2.1-tiny", url="/no/such/file.pt")
    with pytest.raises(ModelError, match="not an http"):
        mgr.fetch("sam2.1-tiny", url="ftp://example.com/x.pt")
    with pytest.raises(ModelError, match="there is no file at file://"):
        mgr.fetch("sam2.1-tiny", url=(tmp_path / "gone.pt").as_uri(), **FAST)
    bad_mirror = ModelManager(tmp_path, offline=True, mirror=str(tmp_path / "no-mirror"))
    with pytest.raises(ModelError, match="ROTO_MODEL_MIRROR .* no such folder"):
        bad_mirror.fetch("sam2.1-tiny")
    from engine.cli.main import main

    monkeypatch.setenv("ROTO_MODELS", str(tmp_path))
    monkeypatch.delenv("ROTO_MODEL_MIRROR", raising=False)
    assert main(["models", "fetch", "sam2.1-tiny", "--force", "--url", str(tmp_path / "nope.pt")]) == 2
    err = capsys.readouterr().err
    assert "roto: error:" in err and "Traceback" not in err and "unknown url type" not in err


# --- audit D#8: implausible sizes are refused, never trusted; hints name the model -----------------


def test_file_far_from_the_catalogue_size_is_refused_and_not_recorded(tmp_path, monkeypatch, capsys):
    from dataclasses import replace

    big = replace(catalogue.get("sam2.1-large"), size=10 * len(PAYLOAD))  # PAYLOAD is a tenth of it
    monkeypatch.setitem(catalogue._BY_NAME, "sam2.1-large", big)
    mgr = ModelManager(tmp_path, offline=False, mirror=None)
    p = mgr.path("sam2.1-large")
    p.parent.mkdir(parents=True)
    p.write_bytes(PAYLOAD)
    v = mgr.verify("sam2.1-large")
    assert v.status == "wrong-size" and not v.ok
    assert "300,000 bytes" in v.problem and "3,000,000 bytes" in v.problem
    assert "sam2.1-large" not in mgr.recorded()
    # fetch --url of the wrong file: refused, deleted, digest not recorded
    p.unlink()
    wrong = tmp_path / "wrong.pt"
    wrong.write_bytes(PAYLOAD)
    with pytest.raises(ModelError, match=r"300,000 bytes .* about 3,000,000 bytes") as info:
        mgr.fetch("sam2.1-large", url=str(wrong), **FAST)
    assert "sam2.1-large" in str(info.value)
    assert not p.exists() and not part_path(p).exists() and "sam2.1-large" not in mgr.recorded()
    # within 10 %: accepted and recorded
    ok = tmp_path / "ok.pt"
    ok.write_bytes(os.urandom(9 * len(PAYLOAD) + len(PAYLOAD) // 2))
    assert mgr.fetch("sam2.1-large", url=str(ok), **FAST).path == p
    assert "sam2.1-large" in mgr.recorded()
    # the CLI: verify fails with both sizes and a hint naming the model
    p.write_bytes(PAYLOAD)
    from engine.cli.main import main

    monkeypatch.setenv("ROTO_MODELS", str(tmp_path))
    assert main(["models", "verify", "sam2.1-large"]) == 2
    out = capsys.readouterr()
    assert "300,000 bytes" in out.out and "roto models fetch sam2.1-large --force" in out.err
    assert "NAME" not in out.err


def test_published_digest_must_match(tmp_path, monkeypatch):
    from dataclasses import replace

    entry = replace(catalogue.get("sam2.1-tiny"), sha256=hashlib.sha256(b"other").hexdigest())
    monkeypatch.setitem(catalogue._BY_NAME, "sam2.1-tiny", entry)
    src = tmp_path / "src.pt"
    src.write_bytes(PAYLOAD)
    mgr = ModelManager(tmp_path / "s", offline=False, mirror=None)
    with pytest.raises(ModelError, match="SHA-256"):
        mgr.fetch("sam2.1-tiny", url=str(src), **FAST)
    assert not mgr.path("sam2.1-tiny").exists()


def test_hints_name_the_model_not_a_placeholder(tmp_path):
    from engine.models.download import refetch_hint

    p = tmp_path / "sam2.1-large" / "sam2.1_hiera_large.pt"
    assert refetch_hint(None, p) == "roto models fetch sam2.1-large --force"
    assert refetch_hint("da3-small") == "roto models fetch da3-small --force"
    p.parent.mkdir()
    p.write_bytes(b"not a checkpoint")
    torch = pytest.importorskip("torch")
    from engine.backends.sam2_model import load_checkpoint

    with pytest.raises(ModelError) as info:
        load_checkpoint(torch.nn.Linear(1, 1), p)
    assert "roto models fetch sam2.1-large --force" in str(info.value) and "NAME" not in str(info.value)
    da3_file = tmp_path / "da3-small" / "model.safetensors"
    da3_file.parent.mkdir()
    da3_file.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    try:
        from engine.depth import da3
    except ImportError as exc:  # pragma: no cover - depth extras absent
        pytest.skip(f"engine.depth.da3 needs its extras: {exc}")
    with pytest.raises(ModelError) as info:
        da3._read_state_dict(da3_file, "DA3")
    assert "roto models fetch da3-small --force" in str(info.value)
