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


# -- issue #14: its paragraph, checked alike through the predictor, the CLI, the service and batch ----
PARAGRAPH = (
    "Russian Foreign Minister Sergei Lavrov met a Hamas delegation in Moscow on Tuesday and called for an "
    "immediate ceasefire in Gaza. Israel's ambassador condemned the visit, saying Moscow was legitimizing a "
    "terrorist organization. \"We do not consider Hamas a terrorist group,\" Kremlin spokesman Dmitry Peskov "
    "told reporters. Palestinian President Mahmoud Abbas, whose Fatah movement rivals the militant group, "
    "welcomed Russia's mediation."
)


def _sentence(doc: dict, index: int) -> dict:
    return next(s for s in doc["sentences"] if s["index"] == index)


def check_paragraph(doc: dict) -> None:
    """The readings listed under *Measured* in issue #14 (an annotation as a plain dict)."""
    s1 = _sentence(doc, 1)["mentions"]
    moscow = next(m for m in s1 if m["text"] == "Moscow")
    assert moscow["framing"]["label"] == "none", moscow
    org = next(m for m in s1 if m["text"] == "a terrorist organization")
    assert (org["actor"], org["kind"], org["via"]) == ("hamas", "descriptor", "coreference")
    f = org["framing"]
    assert (f["label"], f["voice"], f["speaker"]) == ("terrorist", "reported", "israel"), f
    pairs = _sentence(doc, 1)["pairs"]
    assert any(p["source"] == "israel" and p["target"] == "hamas" and p["via"] == "coreference" for p in pairs)

    s2 = _sentence(doc, 2)["mentions"]
    hamas = next(m for m in s2 if m["text"] == "Hamas")["framing"]
    assert (hamas["label"], hamas["voice"], hamas["speaker"], hamas["negated"]) == ("terrorist", "quoted", "russia", True)

    s3 = _sentence(doc, 3)["mentions"]
    group = next(m for m in s3 if m["text"] == "the militant group")
    assert (group["actor"], group["framing"]["label"], group["framing"]["voice"]) == ("hamas", "militant", "author")
    fatah = next(m for m in s3 if m["text"] == "Fatah")
    assert (fatah["actor"], fatah["framing"]["label"]) == ("fatah", "political")
    assert any(p["source"] == "fatah" and p["target"] == "hamas" for p in _sentence(doc, 3)["pairs"])
