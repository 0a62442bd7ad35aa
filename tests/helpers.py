"""Shared test helpers: paths of the checkout and its fixtures, a ready in-process service client, a
real server's readiness wait, and the batch-equals-single check. Fixtures live in conftest.py."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = sorted((ROOT / "seeds").glob("*.txt"))
GOLD = ROOT / "labels" / "gold" / "seeds.jsonl"
FIXTURES = ROOT / "tests" / "fixtures"
MINI_CORPUS = FIXTURES / "mini_corpus.jsonl"
FEEDS = FIXTURES / "feeds"
FEED_INPUTS = [
    str(FEEDS / n)
    for n in ("moscow_wire.rss", "tlv_daily.atom", "broken_herald.xml", "articles.jsonl", "articles.csv", "docs")
]


def ready_client(predictor, **settings):
    """A TestClient with the app's lifespan entered and the model ready (the caller exits it)."""
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
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(proc: subprocess.Popen, url: str, log) -> None:
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
