"""A bounded load test of a running service: N requests from C concurrent clients, then stop.

    .venv/bin/python -m stancelens.serve.loadtest --url http://127.0.0.1:8000 --clients 32 --requests 640

Every request is POST /v1/analyze with one sentence. The sentences are distinct news sentences with
actors of the registry (by default those of the seeds and the bench documents, `bench_sentences()`;
`--sentences FILE` reads one per line, `--text` repeats one), taken round-robin so that concurrent
requests never carry the same sentence: identical sentences in one micro-batch share one encoder pass,
which would flatter the service. Prints the throughput (requests/s over the whole run) and the latency
percentiles seen by the clients, which at high concurrency include the time a request waits for the
model. A few warm-up requests go first and are not counted. Start the server beforehand, e.g. `stancelens serve` (add `--no-micro-batching` to compare), or
`python -m tests.browser_server --port 8000` for the lexicon rules.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

SENTENCE = "Moscow hosted a Hamas delegation and condemned the Israeli strikes."


def bench_sentences() -> list[str]:
    """Distinct sentences naming at least one registry actor, from the seeds and the bench documents."""
    from stancelens.model.registry import load_registry
    from stancelens.model.sentences import split_sentences
    from stancelens.serve.bench import bench_documents

    registry = load_registry()
    seen: dict[str, None] = {}
    for document in bench_documents():
        spans = split_sentences(document.text)
        found = registry.find_mentions(document.text, [(s.start, s.end) for s in spans])
        for sentence, mentions in zip(spans, found):
            text = " ".join(sentence.text.split())
            if len(text) >= 20 and mentions:
                seen[text] = None
    return list(seen)


def read_sentences(path: Path) -> list[str]:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    sentences = list(dict.fromkeys(line for line in lines if line))
    if not sentences:
        raise SystemExit(f"--sentences {path}: expected one sentence per line, found no non-empty line")
    return sentences


@dataclass
class LoadResult:
    clients: int
    requests: int
    ok: int
    errors: dict[str, int]
    seconds: float
    throughput_rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


async def run_load(url: str, clients: int, requests: int, sentences: Sequence[str] = (SENTENCE,),
                   api_key: str | None = None, warmup: int = 5, timeout: float = 60.0,
                   transport: httpx.AsyncBaseTransport | None = None) -> LoadResult:
    if isinstance(sentences, str):
        sentences = (sentences,)
    if not sentences:
        raise ValueError("sentences: expected at least one sentence to send, found none")
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    client = httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, limits=limits, timeout=timeout,
                               transport=transport)
    async with client:
        for i in range(warmup):
            r = await client.post("/v1/analyze", json={"text": sentences[i % len(sentences)]})
            if r.status_code != 200:
                raise SystemExit(f"warm-up request to {url}/v1/analyze: expected 200, found {r.status_code}: "
                                 f"{r.text[:300]}; check the URL, the API key and /health/ready")
        sent = 0

        async def worker() -> None:
            nonlocal sent
            while sent < requests:
                body = {"text": sentences[sent % len(sentences)]}
                sent += 1  # one event loop: no lock needed between the check and the increment
                started = time.perf_counter()
                try:
                    r = await client.post("/v1/analyze", json=body)
                    outcome = "ok" if r.status_code == 200 else str(r.status_code)
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                if outcome == "ok":
                    latencies.append(time.perf_counter() - started)
                else:
                    errors[outcome] += 1

        started = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(clients)])
        seconds = time.perf_counter() - started
    ms = [x * 1000 for x in latencies] or [float("nan")]
    return LoadResult(clients=clients, requests=requests, ok=len(latencies), errors=dict(errors),
                      seconds=round(seconds, 3), throughput_rps=round(len(latencies) / seconds, 1),
                      p50_ms=round(percentile(ms, 50), 2), p90_ms=round(percentile(ms, 90), 2),
                      p99_ms=round(percentile(ms, 99), 2), max_ms=round(max(ms), 2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stancelens.serve.loadtest", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="base URL of a running service")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--requests", type=int, default=640, help="requests in all, then stop (default 640)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--sentences", type=Path, default=None, help="file of sentences, one per line, sent "
                        "round-robin (default: the seed and bench sentences that name an actor)")
    source.add_argument("--text", default=None, help="send this one text with every request instead")
    parser.add_argument("--api-key", default=None, help="sent as 'Authorization: Bearer KEY' when given")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.requests < args.clients:
        parser.error(f"expected --clients >= 1 and --requests >= --clients, found --clients {args.clients} "
                     f"--requests {args.requests}")
    if args.text is not None:
        sentences = [args.text]
    elif args.sentences is not None:
        sentences = read_sentences(args.sentences)
    else:
        sentences = bench_sentences()
    result = asyncio.run(run_load(args.url, args.clients, args.requests, sentences, args.api_key))
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        print(f"{result.ok}/{result.requests} requests ok from {result.clients} clients "
              f"in {result.seconds} s")
        print(f"throughput: {result.throughput_rps} requests/s")
        print(f"latency: p50 {result.p50_ms} ms, p90 {result.p90_ms} ms, p99 {result.p99_ms} ms, "
              f"max {result.max_ms} ms")
        if result.errors:
            print(f"errors: {result.errors}")
    return 0 if result.ok == result.requests else 1


if __name__ == "__main__":
    sys.exit(main())
