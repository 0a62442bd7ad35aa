"""The load generator behind `stancelens bench --serve`: distinct sentences, counted outcomes."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from stancelens.bench import load as loadtest


def _recording_transport(seen: list[str], fail_every: int = 0) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content)["text"])
        if fail_every and len(seen) % fail_every == 0:
            return httpx.Response(503, json={"error": {"code": "overloaded"}})
        return httpx.Response(200, json={"documents": []})

    return httpx.MockTransport(handler)


def test_concurrent_requests_carry_distinct_sentences():
    sentences = [f"Russia met Hamas envoy number {i} in Moscow." for i in range(50)]
    seen: list[str] = []
    result = asyncio.run(loadtest.run_load("http://test", clients=8, requests=40, sentences=sentences, warmup=2,
                                           transport=_recording_transport(seen)))
    timed = seen[2:]  # after the warm-up requests
    assert result.ok == 40 and result.errors == {}
    assert timed == sentences[:40]  # round-robin: no two requests of the run share a sentence
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms


def test_failed_requests_are_counted_not_timed():
    seen: list[str] = []
    result = asyncio.run(loadtest.run_load("http://test", clients=4, requests=20, sentences=["Iran armed Hezbollah."],
                                           warmup=0, transport=_recording_transport(seen, fail_every=5)))
    assert result.ok == 16 and result.errors == {"503": 4}


def test_default_sentences_are_distinct_and_name_actors():
    sentences = loadtest.bench_sentences()
    assert len(sentences) >= 64 and len(set(sentences)) == len(sentences)
    assert any("Hamas" in s for s in sentences)


def test_sentence_file_errors_name_the_fix(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="expected one sentence per line"):
        loadtest.read_sentences(empty)
    with pytest.raises(ValueError, match="expected at least one sentence"):
        asyncio.run(loadtest.run_load("http://test", 1, 1, sentences=[]))


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert loadtest.percentile(values, 50) == 50.0
    assert loadtest.percentile(values, 99) == 99.0
    assert loadtest.percentile([7.0], 99) == 7.0


def test_raw_http_client_against_a_real_server(lexicon_server_url):
    """The plain-HTTP path (RawConnection, keep-alive) against uvicorn: every request answered, replies
    parsed, and a wrong path is reported as the server's status, not as a crash."""
    sentences = loadtest.bench_sentences()[:40]
    result = asyncio.run(loadtest.run_load(lexicon_server_url, clients=4, requests=40, sentences=sentences))
    assert result.ok == 40 and result.errors == {}

    async def one_reply() -> tuple[int, dict]:
        host, port = lexicon_server_url.removeprefix("http://").split(":")
        connection = loadtest.RawConnection(host, int(port), {}, timeout=30)
        try:
            status, body = await connection.post("/v1/analyze", json.dumps({"text": sentences[0]}).encode())
            missing, _ = await connection.post("/v1/nowhere", b"{}")  # same connection, kept alive
        finally:
            await connection.close()
        assert missing == 404
        return status, json.loads(body)

    status, reply = asyncio.run(one_reply())
    assert status == 200 and reply["documents"][0]["sentences"][0]["mentions"]
