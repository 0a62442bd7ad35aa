"""The HTTP service against real predictors (the lexicon rules and the test-trained transformer)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from stancelens.model.lexicon import LexiconEngine
from stancelens.model.predictor import Predictor
from stancelens.serve.app import create_app
from stancelens.serve.settings import Settings
from tests.helpers import PARAGRAPH, check_paragraph, ready_client

EXAMPLE = {"documents": [{"id": "x", "text": "Moscow hosted a Hamas delegation. Netanyahu called Hamas terrorists."}]}


client_for = ready_client


@pytest.fixture(scope="module")
def lexicon_client():
    client = client_for(Predictor(LexiconEngine()))
    yield client
    client.__exit__(None, None, None)


def test_issue_example_returns_russia_hamas_and_both_framings(lexicon_client):
    body = lexicon_client.post("/v1/analyze", json=EXAMPLE).json()
    doc = body["documents"][0]
    pairs = {(p["source"], p["target"]) for s in doc["sentences"] for p in s["pairs"]}
    assert ("russia", "hamas") in pairs and ("hamas", "russia") in pairs
    hamas = [m for s in doc["sentences"] for m in s["mentions"] if m["actor"] == "hamas"]
    assert len(hamas) == 2
    assert hamas[0]["framing"]["label"] == "none"
    second = hamas[1]["framing"]
    assert (second["label"], second["voice"], second["speaker"], second["term"]["text"]) == (
        "terrorist", "reported", "israel", "terrorists")
    assert set(second["probs"]) == {"terrorist", "militant", "extremist", "resistance", "occupier", "regime",
                                    "political", "none"}
    assert {r["source"] for r in doc["rollup"]} >= {"russia", "hamas", "israel"}
    assert body["model"]["name"] == "lexicon"


def test_analyze_gives_the_paragraph_readings_of_issue_14(lexicon_client):
    body = lexicon_client.post("/v1/analyze", json={"text": PARAGRAPH}).json()
    check_paragraph(body["documents"][0])


def test_single_text_labels_actors_and_health(lexicon_client):
    r = lexicon_client.post("/v1/analyze", json={"text": "Putin praised Abbas.", "actors": ["russia", "palestinian_authority"]})
    assert r.status_code == 200, r.text
    assert lexicon_client.get("/v1/labels").json()["stance"] == ["support", "oppose", "neutral"]
    assert any(a["id"] == "hamas" for a in lexicon_client.get("/v1/actors").json()["actors"])
    assert lexicon_client.get("/health/live").status_code == 200
    assert "stancelens_requests_total" in lexicon_client.get("/metrics").text


def test_stance_with_own_spans_and_actor_ids(lexicon_client):
    r = lexicon_client.post("/v1/stance", json={"sentence": "Moscow condemned the Israeli strikes.",
                                                "source": {"actor": "russia"}, "target": {"actor": "israel"}})
    assert r.status_code == 200, r.text
    assert r.json()["stance"] == "oppose"
    r = lexicon_client.post("/v1/stance", json={"sentence": "Acme Corp praised Globex.",
                                                "source": {"span": {"start": 0, "end": 9}},
                                                "target": {"span": {"start": 18, "end": 24}}})
    assert r.status_code == 200, r.text
    assert r.json()["target_spans"] == [{"start": 18, "end": 24}]


@pytest.mark.parametrize(
    ("payload", "status", "code", "field"),
    [
        ({"text": "   "}, 422, "invalid_request", None),
        ({"text": 5}, 422, "invalid_request", "text"),
        ({}, 422, "invalid_request", None),
        ({"documents": [{"id": "a", "text": "x"}], "actors": ["atlantis"]}, 422, "unknown_actor", "actors[0]"),
        ({"documents": [{"id": "a", "text": "x"}], "tasks": ["poetry"]}, 422, "invalid_request", "tasks.0"),
        ({"documents": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]}, 422, "invalid_request", None),
    ],
)
def test_bad_requests_are_4xx_with_the_error_shape(lexicon_client, payload, status, code, field):
    r = lexicon_client.post("/v1/analyze", json=payload)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and error["field"] == field and error["message"]


def test_invalid_utf8_is_a_4xx(lexicon_client):
    r = lexicon_client.post("/v1/analyze", content=b'{"text": "Moscow \xff\xfe"}',
                            headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500
    assert "UTF-8" in r.json()["error"]["message"]


def test_limits_name_the_limit_and_the_size():
    client = client_for(Predictor(LexiconEngine()), max_body_bytes=500, max_documents=2, max_chars_per_document=100,
                        max_sentences_per_request=3)
    try:
        r = client.post("/v1/analyze", json={"text": "a" * 600})
        assert r.status_code == 413 and "at most 500 bytes" in r.json()["error"]["message"]
        r = client.post("/v1/analyze", json={"documents": [{"id": str(i), "text": "Hi."} for i in range(3)]})
        assert r.status_code == 422 and "at most 2 documents" in r.json()["error"]["message"]
        assert "found 3" in r.json()["error"]["message"]
        r = client.post("/v1/analyze", json={"text": "b" * 150})
        assert r.status_code == 422 and r.json()["error"]["code"] == "document_too_long"
        r = client.post("/v1/analyze", json={"text": "One. Two. Three. Four."})
        assert r.status_code == 422 and "found 4" in r.json()["error"]["message"]
    finally:
        client.__exit__(None, None, None)


def test_api_key_protects_v1_but_not_health():
    client = client_for(Predictor(LexiconEngine()), api_key="s3cret", rate_limit_per_minute=3)
    try:
        assert client.post("/v1/analyze", json=EXAMPLE).status_code == 401
        assert client.post("/v1/analyze", json=EXAMPLE, headers={"authorization": "Bearer nope"}).status_code == 401
        ok = {"authorization": "Bearer s3cret"}
        assert client.post("/v1/analyze", json=EXAMPLE, headers=ok).status_code == 200
        assert client.get("/health/ready").status_code == 200
        assert client.get("/metrics").status_code == 200
        client.get("/v1/labels", headers=ok)
        client.get("/v1/actors", headers=ok)
        r = client.get("/v1/labels", headers=ok)
        assert r.status_code == 429 and "Retry-After" in r.headers
    finally:
        client.__exit__(None, None, None)


def test_ready_is_503_until_the_model_is_loaded(tmp_path):
    app = create_app(Settings(model=str(tmp_path / "missing")))
    with TestClient(app) as client:
        for _ in range(100):
            r = client.get("/health/ready")
            if "failed" in r.text:
                break
            time.sleep(0.05)
        assert r.status_code == 503 and "no such directory" in r.json()["error"]["message"]
        assert client.post("/v1/analyze", json=EXAMPLE).status_code == 503


class _SlowEngine(LexiconEngine):
    def classify(self, pairs, mentions):
        time.sleep(0.3)
        return super().classify(pairs, mentions)


def _concurrently(app, path: str, body: dict, n: int) -> list:
    """n concurrent POSTs to an app whose lifespan is running; the responses."""

    async def run():
        async with app.router.lifespan_context(app):
            await asyncio.sleep(0.1)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await asyncio.gather(*[client.post(path, json=body) for _ in range(n)])

    return asyncio.run(run())


def test_full_queue_answers_503_with_retry_after():
    app = create_app(Settings(queue_size=1, max_batch_documents=1, max_wait_ms=0), predictor=Predictor(_SlowEngine()))
    responses = _concurrently(app, "/v1/analyze", EXAMPLE, 6)
    codes = sorted(r.status_code for r in responses)
    assert 200 in codes and 503 in codes
    refused = next(r for r in responses if r.status_code == 503)
    assert refused.headers["retry-after"] == "1" and refused.json()["error"]["code"] == "overloaded"


def test_micro_batched_concurrent_requests_equal_single_requests(tiny_predictor, root):
    texts = [p.read_text(encoding="utf-8")[:1500] for p in sorted((root / "seeds").glob("*.txt"))]
    texts += ["Moscow hosted a Hamas delegation. Netanyahu called Hamas terrorists.", "Iran armed Hezbollah."]
    app = create_app(Settings(max_batch_documents=32, max_wait_ms=50), predictor=tiny_predictor)

    async def run():
        async with app.router.lifespan_context(app):
            await asyncio.sleep(0.1)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=60) as client:
                single = [(await client.post("/v1/analyze", json={"text": t})).json() for t in texts]
                together = await asyncio.gather(*[client.post("/v1/analyze", json={"text": t}) for t in texts])
                metrics = (await client.get("/metrics")).text
                return single, [r.json() for r in together], metrics

    single, together, metrics = asyncio.run(run())
    for a, b in zip(single, together):
        da, db = a["documents"][0], b["documents"][0]
        for sa, sb in zip(da["sentences"], db["sentences"]):
            assert [p["stance"] for p in sa["pairs"]] == [p["stance"] for p in sb["pairs"]]
            assert [m["framing"]["label"] for m in sa["mentions"]] == [m["framing"]["label"] for m in sb["mentions"]]
            for pa, pb in zip(sa["pairs"], sb["pairs"]):
                assert pa["probs"] == pytest.approx(pb["probs"], abs=1e-4)
    # At least one model batch held more than one request's document.
    assert 'stancelens_batch_documents_bucket{le="1.0"}' in metrics
    count = float(metrics.split("stancelens_batch_documents_count ")[1].split()[0])
    assert count < 2 * len(texts)


STANCE = {"sentence": "Moscow condemned the Israeli strikes.", "source": {"actor": "russia"}, "target": {"actor": "israel"}}


def test_stance_and_evaluate_share_the_bounded_queue():
    """/v1/stance once went to an unbounded executor queue, past STANCELENS_QUEUE_SIZE and its 503."""
    app = create_app(Settings(queue_size=1, max_batch_documents=1, max_wait_ms=0), predictor=Predictor(_SlowEngine()))
    codes = sorted(r.status_code for r in _concurrently(app, "/v1/stance", STANCE, 6))
    assert 200 in codes and 503 in codes


def test_work_whose_caller_timed_out_is_dropped_before_it_runs():
    engine = _SlowEngine()
    app = create_app(Settings(request_timeout_s=0.2, max_batch_documents=1, max_wait_ms=0), predictor=Predictor(engine))

    async def run():
        async with app.router.lifespan_context(app):
            await asyncio.sleep(0.1)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                responses = await asyncio.gather(*[client.post("/v1/analyze", json=EXAMPLE) for _ in range(5)])
                await asyncio.sleep(0.8)
                return responses, app.state.service.batcher.dropped

    responses, dropped = asyncio.run(run())
    assert all(r.status_code in (200, 504) for r in responses)
    assert sum(r.status_code == 504 for r in responses) >= 3
    assert dropped >= 2  # queued jobs of callers that gave up never reached the model


def test_ready_says_503_when_the_model_worker_has_stopped():
    client = client_for(Predictor(LexiconEngine()))
    try:
        assert client.get("/health/ready").status_code == 200
        batcher = client.app.state.service.batcher
        client.portal.call(lambda: batcher._task.cancel())
        time.sleep(0.1)
        ready = client.get("/health/ready")
        assert ready.status_code == 503 and "worker has stopped" in ready.json()["error"]["message"]
        assert client.post("/v1/analyze", json=EXAMPLE).status_code == 503
    finally:
        client.__exit__(None, None, None)


@pytest.mark.parametrize("name,value,message", [
    ("QUEUE_SIZE", "0", "STANCELENS_QUEUE_SIZE: expected greater than or equal to 1, found '0'"),
    ("MAX_BODY_BYTES", "-1", "STANCELENS_MAX_BODY_BYTES: expected greater than or equal to 100"),
    ("REQUEST_TIMEOUT_S", "soon", "STANCELENS_REQUEST_TIMEOUT_S: expected a valid number, found 'soon'"),
    ("MAX_WAIT_MS", "-5", "STANCELENS_MAX_WAIT_MS: expected greater than or equal to 0"),
])
def test_settings_are_range_checked_by_variable(monkeypatch, name, value, message):
    monkeypatch.setenv(f"STANCELENS_{name}", value)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        Settings.from_env()


def test_serves_the_rules_while_the_model_trains_then_switches_to_it(tmp_path, tiny_model):
    """`make serve` on a slow CPU: answers at once from the rules, reports training progress, and switches
    to the trained model as soon as its directory appears (atomically), without a restart."""
    import shutil

    from stancelens.model.files import replace_directory

    pending = tmp_path / "models" / "default"
    log = tmp_path / "training.log"
    log.write_text("DSE: 100 train lines\nstep 50/200 loss 0.912 (1.10 steps/s overall)\n")
    client = client_for(Predictor(LexiconEngine()), pending_model=str(pending), training_log=str(log),
                        pending_poll_s=0.05)
    try:
        ready = client.get("/health/ready")
        assert ready.status_code == 200
        body = ready.json()
        assert body["engine"] == "lexicon" and body["training"]["step"] == 50 and body["training"]["total"] == 200
        first = client.post("/v1/analyze", json=EXAMPLE)
        assert first.headers["x-stancelens-engine"] == "lexicon" and first.json()["model"]["name"] == "lexicon"

        staged = tmp_path / "models" / ".default.new"
        shutil.copytree(tiny_model, staged)
        replace_directory(staged, pending)
        for _ in range(200):
            if client.get("/health/ready").json().get("engine") == "transformer":
                break
            time.sleep(0.05)
        after = client.get("/health/ready").json()
        assert after["engine"] == "transformer" and "training" not in after
        second = client.post("/v1/analyze", json=EXAMPLE)
        assert second.status_code == 200 and second.headers["x-stancelens-engine"] == "transformer"
        assert second.json()["model"]["name"] != "lexicon"
    finally:
        client.__exit__(None, None, None)


def test_a_training_process_that_dies_without_a_model_is_reported_failed(tmp_path):
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    dead.wait()
    app = create_app(Settings(pending_model=str(tmp_path / "never"), pending_poll_s=0.05), training=dead,
                     predictor=Predictor(LexiconEngine()))
    client = TestClient(app)
    with client:
        for _ in range(100):
            body = client.get("/health/ready").json()
            if body.get("training", {}).get("status") == "failed":
                break
            time.sleep(0.05)
        assert body["engine"] == "lexicon"
        assert body["training"]["status"] == "failed" and "code 3" in body["training"]["error"]
