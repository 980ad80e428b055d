"""The real ``shapes`` and ``depth`` job kinds through a running server (what the hosts ask for)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.serverkit import (centre, client, fake_backends, isolated_config, plate, root,  # noqa: F401
                             server)

pytest.importorskip("cv2")


def _tracked(c, plate, obj="hero"):
    pattern, sample = plate
    s = c.open_session(pattern, key="k", backend="fake")
    x, y = centre(sample)
    c.set_prompts(s["session"], obj, 1001, points=[(x, y, 1)])
    job = c.wait(c.submit(s["session"], "track", direction="both")["id"])
    assert job["state"] == "succeeded", job
    return s["session"]


def test_both_kinds_are_offered(client):
    caps = {k["name"]: k for k in client.capabilities()["job_kinds"]}
    assert caps["shapes"]["available"] and caps["depth"]["available"], caps


def test_shapes_job_writes_every_host_file_from_the_tracked_masks(client, plate, root):
    sid = _tracked(client, plate)
    out = root / "shapes"
    job = client.wait(client.submit(sid, "shapes", out_dir=str(out))["id"])
    assert job["state"] == "succeeded", job
    res = job["result"]
    files = res["files"]
    assert set(files) == {"nuke", "fusion", "ae", "flame", "flame_gmask_raw"}
    assert res["shapes"] >= 1 and res["objects"] == ["hero"]
    nk = Path(files["nuke"]).read_text()
    assert "Roto {" in nk and "hero" in nk
    assert Path(files["fusion"]).read_text().lstrip().startswith("{")
    manifest = json.loads(Path(files["flame"]).read_text())
    assert manifest["format"] == "roto-flame-gmask"
    raws = files["flame_gmask_raw"]
    assert raws and [Path(r).name for r in raws] == [e["raw"] for e in manifest["shapes"]]
    first = Path(raws[0]).read_text().split("\n")
    lo, hi = res["frames"]
    assert int(first[0]) == hi - lo + 1  # one key a frame over the tracked range
    assert not list(out.glob("*.tmp*")), "temporary files were left behind"


def test_shapes_job_honours_hosts_and_frames(client, plate, root):
    sid = _tracked(client, plate)
    job = client.wait(client.submit(sid, "shapes", out_dir=str(root / "nk"), hosts=["nuke"],
                                    frames=[1002, 1003])["id"])
    assert job["state"] == "succeeded", job
    assert set(job["result"]["files"]) == {"nuke"} and job["result"]["frames"] == [1002, 1003]


def test_shapes_job_rejects_bad_requests_as_data(client, plate, root, tmp_path):
    from engine.client import ServerError

    sid = _tracked(client, plate)
    with pytest.raises(ServerError) as e:  # pydantic: unknown host
        client.submit(sid, "shapes", out_dir=str(root / "x"), hosts=["maya"])
    assert e.value.status == 422
    with pytest.raises(ServerError) as e:  # the roots policy covers the module's out_dir
        client.submit(sid, "shapes", out_dir=str(tmp_path / "elsewhere"))
    assert "outside the folders" in str(e.value)


def test_depth_job_stores_depth_that_the_export_delivers(client, plate, root):
    oiio = pytest.importorskip("OpenImageIO")
    sid = _tracked(client, plate)
    job = client.wait(client.submit(sid, "depth", model="prior", frames=[1001, 1002])["id"])
    assert job["state"] == "succeeded", job
    res = job["result"]
    assert res["model"] == "prior" and res["frames"] == [1001, 1002]
    assert any("not a depth estimate" in n for n in res["notes"])
    out = root / "exr"
    exp = client.wait(client.export(sid, str(out), format="exr", frames=[1001, 1002])["id"])
    assert exp["state"] == "succeeded", exp
    first = sorted(out.glob("*.exr"))[0]
    inp = oiio.ImageInput.open(str(first))
    try:
        names = list(inp.spec().channelnames)
    finally:
        inp.close()
    assert "depth.Z" in names, names


@pytest.mark.parametrize("kind", ["depth", "shapes"])
@pytest.mark.parametrize("frames,says", [([1001, 5000], "outside"), ([1003, 1001], "runs backwards")])
def test_jobs_reject_a_bad_frame_range(client, plate, root, kind, frames, says):
    sid = _tracked(client, plate)
    params = {"model": "prior"} if kind == "depth" else {"out_dir": str(root / "shapes")}
    job = client.wait(client.submit(sid, kind, frames=frames, **params)["id"])
    assert job["state"] == "failed" and says in job["error"]["text"], job
