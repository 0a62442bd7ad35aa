"""A real two-node Ray cluster on loopback (a head and a second node, separate processes with their own temp
dirs and one CPU each): `score --runner ray` gives the local runner's rows, and the model travels through
the object store — the workers never see the driver's model directory, which is gone before they start."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from stancelens.batch.runners import RayRunner, pack_model
from stancelens.batch.scoring import ScoreRun
from stancelens.batch.tables import ScoringError, mentions_path
from stancelens.model.loading import load_predictor
from tests.batch.test_scoring import rows_without_time, seed_corpus

pytestmark = pytest.mark.slow
RAY = str(Path(sys.executable).parent / "ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """`ray start --head` and `ray start --address` as two blocking processes; both stopped at the end."""
    pytest.importorskip("ray")
    # A loopback test cluster: Ray's token authentication off for its nodes and this driver alike.
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    port = _free_port()
    address = f"127.0.0.1:{port}"
    temps = [tempfile.mkdtemp(prefix="slr", dir="/tmp") for _ in range(2)]  # short: Ray's sockets live there
    common = ["--num-cpus=1", "--disable-usage-stats", "--block", "--node-ip-address=127.0.0.1",
              "--object-store-memory=300000000"]
    head = subprocess.Popen([RAY, "start", "--head", f"--port={port}", "--include-dashboard=false",
                             f"--temp-dir={temps[0]}", *common], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    nodes = [head]
    try:
        import ray

        deadline = time.monotonic() + 120
        second = None
        while time.monotonic() < deadline:
            if second is None:
                probe = subprocess.run([RAY, "status", f"--address={address}"], capture_output=True, text=True)
                if probe.returncode == 0:
                    second = subprocess.Popen([RAY, "start", f"--address={address}", f"--temp-dir={temps[1]}", *common],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
                    nodes.append(second)
            else:
                ray.init(address=address, log_to_driver=False)
                alive = [n for n in ray.nodes() if n["Alive"]]
                ray.shutdown()
                if len(alive) == 2:
                    break
            time.sleep(1)
        else:
            pytest.fail("the two-node Ray cluster did not come up within 120 s")
        yield address
    finally:
        for node in reversed(nodes):
            node.terminate()
        for node in reversed(nodes):
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                node.kill()
        for temp in temps:
            shutil.rmtree(temp, ignore_errors=True)
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved


def test_two_nodes_give_the_local_rows_with_a_model_the_workers_cannot_read(cluster, tiny_model, tmp_path):
    import ray

    corpus = seed_corpus(tmp_path / "corpus.jsonl", 24)
    predictor = load_predictor(tiny_model)
    local = tmp_path / "local.parquet"
    ScoreRun([str(corpus)], local, predictor, batch_size=4, progress=False).run()
    copy = Path(tempfile.mkdtemp(prefix="model-copy-")) / "m"
    shutil.copytree(tiny_model, copy)
    runner = RayRunner(str(copy), workers=2, address=cluster)  # reads the model into memory now
    shutil.rmtree(copy.parent)  # gone: the workers can only get it through the object store
    remote = tmp_path / "ray.parquet"
    try:
        summary = ScoreRun([str(corpus)], remote, predictor, runner, batch_size=4, progress=False).run()
        nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    finally:
        ray.shutdown()
    assert len(nodes) == 2 and summary.scored_now == 24
    assert rows_without_time(remote) == rows_without_time(local)
    assert rows_without_time(mentions_path(remote)) == rows_without_time(mentions_path(local))


def test_the_cli_scores_on_the_cluster(cluster, tmp_path):
    corpus = seed_corpus(tmp_path / "corpus.jsonl", 12)
    exe = str(Path(sys.executable).parent / "stancelens")
    base = [exe, "score", str(corpus), "--model", "lexicon", "--batch-size", "4"]
    subprocess.run([*base, "--out", str(tmp_path / "local.parquet")], check=True, capture_output=True)
    done = subprocess.run([*base, "--out", str(tmp_path / "ray.parquet"), "--runner", "ray", "--ray-address", cluster,
                           "--workers", "2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert rows_without_time(tmp_path / "ray.parquet") == rows_without_time(tmp_path / "local.parquet")


def test_a_worker_that_cannot_load_the_model_fails_the_job_with_its_reason(cluster, tiny_model, tmp_path):
    import ray

    runner = RayRunner(str(tiny_model), workers=1, address=cluster)
    data, _ = pack_model(tiny_model)
    runner.package = (data, "0" * 64)  # what a corrupted transfer looks like to the worker
    try:
        with pytest.raises(ScoringError, match="a worker could not load the model .*expected sha256 0000"):
            ScoreRun([str(seed_corpus(tmp_path / "c.jsonl", 4))], tmp_path / "o.parquet", load_predictor(tiny_model),
                     runner, progress=False).run()
    finally:
        ray.shutdown()
