"""The batch on a Ray cluster: a head plus one extra worker node on 127.0.0.1, byte-identical to the
single-process run; dead workers retried; failures isolated per shot."""

from __future__ import annotations

import os

import pytest

# Ray maps 127.0.0.1 to the machine's routable address unless told this is a single-machine cluster;
# read when ray is first imported, so set before it is
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
ray = pytest.importorskip("ray", reason="the cluster extra (ray) is not installed")

from engine.batch.jobfile import validate_job  # noqa: E402
from engine.batch.ray_exec import DIE_ONCE_ENV  # noqa: E402
from engine.batch.runner import run_batch  # noqa: E402
from tests.test_batch_kit import fingerprint, make_plate, results, shot  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True,
                head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False})
    try:
        c.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()


@pytest.fixture(scope="module")
def plates(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ray-plates")
    a = make_plate(folder, name="a", seed=7)
    b = make_plate(folder, name="b", seed=11)
    return folder, a, b


def _shots(plates, out):
    _folder, (pa, ma), (pb, mb) = plates
    return [shot("sh010", pa, ma, out / "sh010"),
            shot("sh020", pb, mb, out / "sh020", stages=["track", "matte", "depth", "export"],
                 depth={"model": "prior"}, matte={"chunk": 3, "warmup": 1})]


def test_cluster_run_is_byte_identical_to_the_single_process_run(cluster, plates, tmp_path):
    local = run_batch(validate_job({"shots": _shots(plates, tmp_path / "local")}))
    assert local.ok, [s.error for s in local.shots]
    ray.init(address=cluster.address)
    nodes = {n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]}
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2 and nodes <= {"127.0.0.1"}
    ray.shutdown()
    events = []
    dist = run_batch(validate_job({"shots": _shots(plates, tmp_path / "ray")}), ray=cluster.address,
                     progress=events.append)
    assert dist.ok, [s.error for s in dist.shots]
    assert dist.executor.startswith("ray")
    for name in ("sh010", "sh020"):
        a, b = fingerprint(tmp_path / "local" / name), fingerprint(tmp_path / "ray" / name)
        assert len(a) >= 24 and a == b  # alpha PNGs, EXRs (and sh020's depth) byte for byte
        assert results(tmp_path / "ray" / name / f"{name}.roto.json")["results"] == \
            results(tmp_path / "local" / name / f"{name}.roto.json")["results"]
    assert events[-1].overall_fraction == pytest.approx(1.0)
    # the cluster run's re-run skips everything
    again = run_batch(validate_job({"shots": _shots(plates, tmp_path / "ray")}), ray=cluster.address)
    assert again.ok and again.shots[0].stages["matte"].note == "already matted"
    assert again.shots[1].stages["export"].skipped == 12


def test_a_dead_worker_is_retried_and_an_engine_error_fails_only_its_shot(cluster, plates, tmp_path, monkeypatch):
    marker = tmp_path / "died"
    monkeypatch.setenv(DIE_ONCE_ENV, str(marker))  # the first task kills its worker process
    shots = _shots(plates, tmp_path / "r")
    shots[1]["export"] = {"format": "wobble"}  # raised inside the export tasks: not retried, reported
    rep = run_batch(validate_job({"shots": shots}), ray=cluster.address)
    assert marker.exists()
    good, bad = rep.shots
    assert good.status == "done" and bad.status == "failed"
    assert "wobble" in bad.error["message"] and bad.error["code"] == "bad_input"
    ref = run_batch(validate_job({"shots": _shots(plates, tmp_path / "ref")[:1]}))
    assert ref.ok and fingerprint(tmp_path / "r/sh010") == fingerprint(tmp_path / "ref/sh010")
