from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = sorted((ROOT / "seeds").glob("*.txt"))
GOLD = ROOT / "labels" / "gold" / "seeds.jsonl"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def registry():
    from stancelens.model.registry import default_registry

    return default_registry()


@pytest.fixture(scope="session")
def gold_docs():
    from stancelens.model.annotation import read_annotations

    return list(read_annotations(GOLD))


MINI_CORPUS = ROOT / "tests" / "fixtures" / "mini_corpus.jsonl"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A real fine-tune of a few steps on the small fixture corpus (no public datasets): the model the
    service and prediction tests run against."""
    from stancelens.training.config import TrainingConfig
    from stancelens.training.trainer import train

    out = tmp_path_factory.mktemp("models") / "tiny"
    config = TrainingConfig(authored_path=str(MINI_CORPUS), dse_path=None, seesaw_path=None, epochs=2,
                            batch_size=16, steps_limit=12, max_length=64, authored_valid_fraction=0.2,
                            learning_rate=1e-4, patience=5)
    train(config, out, progress=False, say=lambda m: None)
    return out


@pytest.fixture(scope="session")
def tiny_predictor(tiny_model):
    from stancelens.model.loading import load_predictor

    return load_predictor(tiny_model)


FEEDS = ROOT / "tests" / "fixtures" / "feeds"
FEED_INPUTS = [
    str(FEEDS / n)
    for n in ("moscow_wire.rss", "tlv_daily.atom", "broken_herald.xml", "articles.jsonl", "articles.csv", "docs")
]


def ready_client(predictor, **settings):
    """A TestClient with the app's lifespan entered and the model ready (the caller exits it)."""
    import time

    from fastapi.testclient import TestClient

    from stancelens.serve.app import create_app
    from stancelens.serve.settings import Settings

    client = TestClient(create_app(Settings(**settings), predictor=predictor))
    client.__enter__()
    for _ in range(100):
        if client.get("/health/ready").status_code == 200:
            break
        time.sleep(0.05)
    return client


# -- a real server ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(proc: subprocess.Popen, url: str, log) -> None:
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            log.seek(0)
            pytest.fail(f"the test server exited with code {proc.returncode} before it was ready:\n"
                        f"{log.read()}")
        try:
            if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            log.seek(0)
            pytest.fail(f"the test server was not ready on {url} after 60 s:\n{log.read()}")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def lexicon_server_url():
    """A real uvicorn server (tests/browser_server.py) on the lexicon rules, on a free loopback port."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tests.browser_server", "--port", str(port)], cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_ready(proc, url, log)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def assert_batch_equals_single(predictor, documents) -> None:
    """One call over all documents gives each document the labels (and, within 1e-4, the probabilities)
    that a call with that document alone gives it."""
    together = predictor.annotate(documents)
    for doc, batched in zip(documents, together):
        single = predictor.annotate([doc])[0]
        for s1, s2 in zip(single.sentences, batched.sentences):
            assert [p.stance for p in s1.pairs] == [p.stance for p in s2.pairs]
            assert [m.framing.label for m in s1.mentions] == [m.framing.label for m in s2.mentions]
            for p1, p2 in zip(s1.pairs, s2.pairs):
                assert p1.probs == pytest.approx(p2.probs, abs=1e-4)
            for m1, m2 in zip(s1.mentions, s2.mentions):
                assert m1.framing.probs == pytest.approx(m2.framing.probs, abs=1e-4)
