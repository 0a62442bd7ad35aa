"""Hostile and careless input: every crafted request is answered with a clear 4xx or a result — never a
5xx, never a hang — and the service stays live and ready meanwhile (in-process and on a real server)."""

from __future__ import annotations

import asyncio
import io
import json
import time

import httpx
import pytest

from stancelens.model.lexicon import LexiconEngine
from stancelens.model.predictor import Predictor
from tests.helpers import ready_client

SENTENCE = "Moscow condemned the Israeli strikes and praised Hamas."
DEEP = "[" * 100_000 + "]" * 100_000


def _doc(text: str, i: int = 0) -> dict:
    return {"id": f"d{i}", "text": text}


# (name, route, JSON body or raw bytes): the crafted inputs. Every one must get a status < 500.
ANALYZE_CASES: list[tuple[str, object]] = [
    ("no spaces, one full stop per two characters", {"text": "a." * 15_000}),
    ("no spaces at all, 100,000 characters", {"text": "x" * 100_000}),
    ("one endless sentence of framing terms", {"text": "Hamas terrorists " * 5_800}),
    ("10,000 mentions in one document", {"text": "Hamas " * 10_000}),
    ("10,000 mentions of two actors", {"text": "Israel and Hamas, " * 5_000}),
    ("quotes that never close", {"text": '"' + "Moscow. Hamas said. " * 4_900}),
    ("quotes that open and close all the time", {"text": '"Hamas." ' * 10_000}),
    ("only line breaks", {"text": "\r\n" * 40_000 + "Hamas"}),
    ("Unicode line separators", {"text": "Israel\u2028" * 10_000}),
    ("zero-width characters inside names", {"text": "Ha\u200bmas met Is\u200drael. " * 500}),
    ("right-to-left overrides and marks", {"text": "\u202eHamas\u202c \u200fIsrael\u200e condemned Russia. " * 400}),
    ("combining marks by the thousand", {"text": "H" + "\u0301" * 20_000 + " Israel"}),
    ("NUL bytes in the text", {"text": "Hamas\x00 praised\x00 Russia. " * 100}),
    ("control characters", {"text": "".join(chr(c) for c in range(1, 32)) * 100 + " Israel"}),
    ("emoji and hashtags", {"text": "🇮🇱🔥 #Hamas #Israel 💣 Urgent | Russia: 🙏 " * 200}),
    ("Arabic and Hebrew script", {"text": "حماس وإسرائيل. ישראל וחמאס. Hamas and Israel. " * 300}),
    ("only punctuation", {"text": "!?." * 20_000}),
    ("one long word", {"text": "Hamas" * 20_000}),
    ("64 documents at once", {"documents": [_doc(SENTENCE * 10, i) for i in range(64)]}),
    ("65 documents", {"documents": [_doc(SENTENCE, i) for i in range(65)]}),
    ("a document over the character limit", {"text": "a " * 60_000}),
    ("too many sentences", {"documents": [_doc("Hamas spoke. " * 1_000, i) for i in range(3)]}),
    ("empty text", {"text": ""}),
    ("whitespace only", {"text": " \n\t "}),
    ("text and documents", {"text": SENTENCE, "documents": [_doc(SENTENCE)]}),
    ("neither text nor documents", {}),
    ("text is a number", {"text": 12345}),
    ("text is a list", {"text": [SENTENCE]}),
    ("duplicate document ids", {"documents": [_doc(SENTENCE), _doc(SENTENCE)]}),
    ("an id of 10,000 characters", {"documents": [{"id": "x" * 10_000, "text": SENTENCE}]}),
    ("an unknown field", {"text": SENTENCE, "debug": True}),
    ("an unknown task", {"text": SENTENCE, "tasks": ["sentiment"]}),
    ("an unknown actor filter", {"text": SENTENCE, "actors": ["atlantis"]}),
    ("100,000 actor filters", {"text": SENTENCE, "actors": ["hamas"] * 100_000}),
    ("an actor id of 1 MB", {"text": SENTENCE, "actors": ["h" * 1_000_000]}),
    ("documents is an object", {"documents": {"id": "x", "text": SENTENCE}}),
]

RAW_CASES: list[tuple[str, bytes, dict]] = [
    ("invalid UTF-8", b'{"text": "Hamas \xff\xfe praised Russia"}', {"content-type": "application/json"}),
    ("JSON nested 100,000 deep", b'{"text": "Hamas", "x": ' + DEEP.encode() + b"}", {"content-type": "application/json"}),
    ("truncated JSON", b'{"text": "Hamas', {"content-type": "application/json"}),
    ("a JSON array", b'["Hamas"]', {"content-type": "application/json"}),
    ("an empty body", b"", {"content-type": "application/json"}),
    ("form-encoded body", b"text=Hamas", {"content-type": "application/x-www-form-urlencoded"}),
    ("a number with 100,000 digits", b'{"text": ' + b"9" * 100_000 + b"}", {"content-type": "application/json"}),
    ("NaN and Infinity", b'{"text": NaN, "documents": Infinity}', {"content-type": "application/json"}),
    ("an unpaired surrogate", b'{"text": "Hamas \\ud800 Israel"}', {"content-type": "application/json"}),
    ("a surrogate in an id", b'{"documents": [{"id": "\\udfff", "text": "Hamas"}]}', {"content-type": "application/json"}),
    ("a surrogate pair split", b'{"text": "Hamas \\udc00\\ud800"}', {"content-type": "application/json"}),
]

STANCE_CASES: list[tuple[str, object]] = [
    ("a sentence over the limit", {"sentence": "Hamas " * 2_000, "source": {"actor": "hamas"},
                                   "target": {"actor": "israel"}}),
    ("huge numbers in spans", {"sentence": SENTENCE, "source": {"span": {"start": 10**30, "end": 10**31}},
                               "target": {"actor": "israel"}}),
    ("negative spans", {"sentence": SENTENCE, "source": {"span": {"start": -5, "end": 3}}, "target": {"actor": "israel"}}),
    ("booleans as offsets", {"sentence": SENTENCE, "source": {"span": {"start": False, "end": True}},
                             "target": {"actor": "israel"}}),
    ("floats as offsets", {"sentence": SENTENCE, "source": {"span": {"start": 0.5, "end": 6.5}},
                           "target": {"actor": "israel"}}),
    ("a span past the end", {"sentence": SENTENCE, "source": {"span": {"start": 0, "end": 9_999}},
                             "target": {"actor": "israel"}}),
    ("the same entity twice", {"sentence": SENTENCE, "source": {"actor": "israel"}, "target": {"actor": "israel"}}),
    ("an actor not in the sentence", {"sentence": SENTENCE, "source": {"actor": "fatah"}, "target": {"actor": "israel"}}),
    ("an unknown actor", {"sentence": SENTENCE, "source": {"actor": "atlantis"}, "target": {"actor": "israel"}}),
    ("neither span nor actor", {"sentence": SENTENCE, "source": {}, "target": {"actor": "israel"}}),
    ("10,000 mentions in one stance sentence", {"sentence": ("Hamas " * 160)[:999],
                                                "source": {"actor": "hamas"}, "target": {"span": {"start": 0, "end": 5}}}),
]


@pytest.fixture(scope="module")
def client():
    c = ready_client(Predictor(LexiconEngine()))
    yield c
    c.__exit__(None, None, None)


def _answered(client, response, started: float, name: str) -> None:
    assert response.status_code < 500, f"{name}: {response.status_code} {response.text[:300]}"
    assert time.perf_counter() - started < 20, f"{name}: took {time.perf_counter() - started:.1f} s"
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"] and error["message"], name
    assert client.get("/health/ready").status_code == 200, f"{name}: the service is no longer ready"


@pytest.mark.parametrize("name,body", ANALYZE_CASES, ids=[c[0] for c in ANALYZE_CASES])
def test_crafted_analyze_requests_get_a_result_or_a_clear_4xx(client, name, body):
    started = time.perf_counter()
    _answered(client, client.post("/v1/analyze", json=body), started, name)


@pytest.mark.parametrize("name,raw,headers", RAW_CASES, ids=[c[0] for c in RAW_CASES])
def test_malformed_bodies_get_a_clear_4xx(client, name, raw, headers):
    started = time.perf_counter()
    response = client.post("/v1/analyze", content=raw, headers=headers)
    _answered(client, response, started, name)
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize("name,body", STANCE_CASES, ids=[c[0] for c in STANCE_CASES])
def test_crafted_stance_requests_get_a_result_or_a_clear_4xx(client, name, body):
    started = time.perf_counter()
    _answered(client, client.post("/v1/stance", json=body), started, name)


def test_unpaired_surrogates_are_refused_by_name(client):
    response = client.post("/v1/analyze", content=b'{"text": "Hamas \\ud800"}',
                           headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "unpaired surrogate" in response.json()["error"]["message"]


def _gold_line() -> bytes:
    text = "Moscow praised Hamas."
    doc = {"doc_id": "g", "text": text, "sentences": [{"index": 0, "start": 0, "end": len(text), "text": text,
                                                        "mentions": [], "pairs": []}]}
    return (json.dumps(doc) + "\n").encode()


EVALUATE_CASES: list[tuple[str, list]] = [
    ("no file", []),
    ("binary garbage", [("gold", ("g.jsonl", bytes(range(256)) * 100, "application/octet-stream"))]),
    ("JSON that is not a list of tasks", [("gold", ("g.json", b'{"a": 1}', "application/json"))]),
    ("a CSV without a header", [("gold", ("g.csv", b"", "text/csv"))]),
    ("JSONL nested 100,000 deep", [("gold", ("g.jsonl", DEEP.encode(), "application/jsonl"))]),
    ("nine files", [("gold", (f"g{i}.jsonl", _gold_line(), "application/jsonl")) for i in range(9)]),
    ("a file over the upload limit", [("gold", ("g.jsonl", _gold_line() * 20_000, "application/jsonl"))]),
    ("a file with invalid UTF-8", [("gold", ("g.jsonl", b'{"doc_id": "\xff"}\n', "application/jsonl"))]),
]


@pytest.mark.parametrize("name,files", EVALUATE_CASES, ids=[c[0] for c in EVALUATE_CASES])
def test_crafted_uploads_get_a_clear_4xx(client, name, files):
    started = time.perf_counter()
    response = client.post("/v1/evaluate", files=files)
    _answered(client, response, started, name)
    assert 400 <= response.status_code < 500, name


def test_too_many_files_and_form_values_are_invalid_requests(client):
    nine = [("gold", (f"g{i}.jsonl", _gold_line(), "application/jsonl")) for i in range(9)]
    response = client.post("/v1/evaluate", files=nine)
    assert response.status_code == 422 and response.json()["error"]["code"] == "too_many_files"
    response = client.post("/v1/evaluate", data={"gold": "null"}, files=[("pred", ("p.jsonl", _gold_line(), "a/b"))])
    assert response.status_code == 422, response.text


def test_a_csv_with_a_200_kb_field_gets_a_result_or_a_clear_4xx(client):
    """A document's text may fill a CSV cell (within the upload cap): answered, never a 500."""
    files = [("gold", ("g.csv", b"doc_id,start,end,actor,text\nd,0,5,hamas,Hamas " + b"x" * 200_000 + b"\n",
                       "text/csv"))]
    started = time.perf_counter()
    _answered(client, client.post("/v1/evaluate", files=files), started, "a CSV field of 200 KB")


def test_malformed_multipart_is_a_4xx(client):
    started = time.perf_counter()
    response = client.post("/v1/evaluate", content=b"--x\r\nContent-Disposition: form-data; name=gold\r\n\r\nabc",
                           headers={"content-type": "multipart/form-data; boundary=x"})
    _answered(client, response, started, "malformed multipart")
    assert 400 <= response.status_code < 500


def _send_chunked(url: str, chunk: bytes, chunks: int, headers: str = "") -> tuple[bytes, int]:
    """POST a chunked body to a real server, a chunk at a time, until it answers: (response, bytes sent)."""
    import select
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    sent = 0
    try:
        sock.sendall(f"POST /v1/analyze HTTP/1.1\r\nHost: {parts.hostname}\r\nContent-Type: application/json\r\n"
                     f"Transfer-Encoding: chunked\r\n{headers}\r\n".encode())
        for _ in range(chunks):
            if select.select([sock], [], [], 0)[0]:
                break  # the server has answered
            try:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
            time.sleep(0.02)  # a client paced like a network, not one loopback burst into kernel buffers
        sock.settimeout(30)
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        return answer, sent
    finally:
        sock.close()


@pytest.mark.slow
def test_chunked_body_over_the_limit_is_413_after_at_most_the_limit(lexicon_server_url):
    """5.4 MB offered in chunks: refused with 413 once 2 MB (the default limit) have been read."""
    answer, sent = _send_chunked(lexicon_server_url, b'{"text": "' + b"Hamas " * 10_000, 90)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    # What was sent before the answer came: the limit plus what the socket buffers held in flight.
    assert sent <= 2_000_000 + 1_500_000, sent


def test_a_key_set_answers_401_before_reading_the_body():
    c = ready_client(Predictor(LexiconEngine()), api_key="k")
    read = 0

    def chunks():
        nonlocal read
        for _ in range(100):
            read += 60_000
            yield b"x" * 60_000

    try:
        response = c.post("/v1/analyze", content=chunks(), headers={"content-type": "application/json"})
        assert response.status_code == 401
        assert read <= 60_000
        assert c.get("/health/live").status_code == 200
    finally:
        c.__exit__(None, None, None)


def test_unmatched_paths_do_not_become_metric_series(client):
    for i in range(30):
        assert client.post(f"/v1/scan-{i}", json={}).status_code == 404
    metrics = client.get("/metrics").text
    assert "scan-" not in metrics
    assert 'route="unmatched"' in metrics


@pytest.mark.slow
def test_live_answers_fast_while_worst_cases_run_and_20_concurrent_ones_leave_it_ready(lexicon_server_url):
    """On a real server: /health/live stays under 100 ms while the heaviest accepted inputs are processed,
    and 20 concurrent worst-case requests leave the service ready."""
    worst = [{"text": "a." * 15_000}, {"text": "Hamas terrorists " * 5_800}, {"text": "Israel and Hamas, " * 5_000},
             {"documents": [_doc("Hamas praised Russia. " * 70, i) for i in range(64)]}]

    async def main() -> tuple[list[float], list[int], int]:
        async with httpx.AsyncClient(base_url=lexicon_server_url, timeout=120) as http:
            done = False
            live: list[float] = []

            async def probe() -> None:
                while not done:
                    t = time.perf_counter()
                    assert (await http.get("/health/live")).status_code == 200
                    live.append(time.perf_counter() - t)
                    await asyncio.sleep(0.02)

            prober = asyncio.create_task(probe())
            statuses = [r.status_code for r in
                        await asyncio.gather(*[http.post("/v1/analyze", json=worst[i % len(worst)]) for i in range(20)])]
            done = True
            await prober
            ready = (await http.get("/health/ready")).status_code
            return live, statuses, ready

    live, statuses, ready = asyncio.run(main())
    # Backpressure (503 queue full, 504 past the request timeout) is an answer; a crash or a hang is not.
    assert all(s < 500 or s in (503, 504) for s in statuses), statuses
    assert any(s == 200 for s in statuses), statuses
    assert ready == 200
    live.sort()
    assert len(live) >= 5
    # The median and the 90th percentile: a single sample may meet a garbage collection.
    assert live[len(live) // 2] < 0.1 and live[int(len(live) * 0.9)] < 0.1, live


def test_the_crafted_inputs_number_at_least_fifty():
    assert len(ANALYZE_CASES) + len(RAW_CASES) + len(STANCE_CASES) + len(EVALUATE_CASES) + 4 >= 50


def test_cli_refuses_bad_files_with_clear_errors(tmp_path):
    from typer.testing import CliRunner

    from stancelens.cli import app

    cases = {"latin1.txt": "Caf\xe9 Hamas".encode("latin-1"), "empty.txt": b"", "nul.txt": b"\x00" * 10}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        result = CliRunner().invoke(app, ["analyze", str(tmp_path / name), "--out", str(tmp_path / "o.jsonl")])
        assert result.exit_code in (0, 2), (name, result.output)
        if result.exit_code:
            assert "expected" in result.output, (name, result.output)
    assert io is not None


def test_a_feed_with_an_entity_bomb_is_reported_and_scored_quickly(tmp_path):
    """Billion laughs: nine levels of entities, each ten times the last (10^9 'lol's if expanded)."""
    from stancelens.batch.scoring import ScoreRun

    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol;" if i == 1 else f"&lol{i - 1};") * 10}">' for i in range(1, 10))
    feed = (f'<?xml version="1.0"?><!DOCTYPE rss [{entities}]><rss version="2.0"><channel><title>&lol9;</title>'
            "<item><title>Moscow</title><link>https://x.example/1</link><description>Moscow hosted a Hamas "
            "delegation. &lol9;</description></item></channel></rss>")
    path = tmp_path / "bomb.rss"
    path.write_text(feed, encoding="utf-8")
    started = time.perf_counter()
    summary = ScoreRun([str(path)], tmp_path / "s.parquet", Predictor(LexiconEngine()), progress=False).run()
    assert time.perf_counter() - started < 20
    assert summary.errors >= 1 or summary.totals.documents == 1
    assert all(len(line) < 10_000 for line in (tmp_path / "s.parquet.errors.jsonl").read_text().splitlines())
