"""A bounded load test of a running service: N requests from C concurrent clients, then stop.

    .venv/bin/python -m stancelens.bench.load --url http://127.0.0.1:8000 --clients 32 --requests 640

Every request is POST /v1/analyze with one sentence. The sentences are distinct news sentences with
actors of the registry (by default those of the seeds and the bench documents, `bench_sentences()`;
`--sentences FILE` reads one per line, `--text` repeats one), taken round-robin so that concurrent
requests never carry the same sentence: identical sentences in one micro-batch share one encoder pass,
which would flatter the service. Prints the throughput (requests/s over the whole run) and the latency
percentiles seen by the clients, which at high concurrency include the time a request waits for the
model. A few warm-up requests go first and are not counted. Start the server beforehand, e.g.
`stancelens serve` (add `--no-micro-batching` to compare), or `python -m tests.browser_server --port 8000`
for the lexicon rules.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from stancelens.bench.corpus import bench_sentences

SENTENCE = "Moscow hosted a Hamas delegation and condemned the Israeli strikes."


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


class RawConnection:
    """One keep-alive HTTP/1.1 connection that speaks just enough of the protocol to POST JSON and read
    the reply. The load generator shares the CPU with the server on loopback: against the lexicon test
    server, 32 clients, 1,000 requests, this client spent 0.12 ms CPU per request and httpx 1.16 ms,
    CPU the measured server would lose."""

    def __init__(self, host: str, port: int, headers: dict[str, str], timeout: float):
        self.host, self.port, self.timeout = host, port, timeout
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        try:
            return await asyncio.wait_for(self._post(path, body), self.timeout)
        except BaseException:
            await self.close()  # a half-read reply must not be read as the next one
            raise

    async def _post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n{self.extra}\r\n")
        self.writer.write(head.encode("latin-1") + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split()[1])
        length, chunked, close = None, False, False
        while (line := await self.reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value
            elif name == "connection":
                close = value == "close"
        if chunked:
            parts = []
            while size := int((await self.reader.readline()).split(b";")[0], 16):
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            await self.reader.readline()
            data = b"".join(parts)
        elif length is not None:
            data = await self.reader.readexactly(length)
        else:
            data, close = await self.reader.read(), True
        if close:
            await self.close()
        return status, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None


async def run_load(url: str, clients: int, requests: int, sentences: Sequence[str] = (SENTENCE,),
                   api_key: str | None = None, warmup: int = 5, timeout: float = 60.0,
                   transport: httpx.AsyncBaseTransport | None = None) -> LoadResult:
    """Plain-HTTP URLs go through `RawConnection`s (one per client); https, or a given httpx `transport`
    (tests), through httpx."""
    if isinstance(sentences, str):
        sentences = (sentences,)
    if not sentences:
        raise ValueError("sentences: expected at least one sentence to send, found none")
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    parsed = urlsplit(url)
    raw = transport is None and parsed.scheme == "http"
    path = parsed.path.rstrip("/") + "/v1/analyze"
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    client = httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, limits=limits, timeout=timeout,
                               transport=transport)
    connections = [RawConnection(parsed.hostname or "127.0.0.1", parsed.port or 80, headers, timeout)
                   for _ in range(clients)] if raw else []

    async def post(worker: int, text: str) -> tuple[str, str]:
        """(outcome, reply text): outcome 'ok', an HTTP status or an exception's name."""
        body = json.dumps({"text": text}).encode()
        try:
            if raw:
                status, data = await connections[worker].post(path, body)
                reply = data.decode("utf-8", "replace")
            else:
                r = await client.post("/v1/analyze", content=body, headers={"content-type": "application/json"})
                status, reply = r.status_code, r.text
        except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError, httpx.HTTPError) as exc:
            return type(exc).__name__, str(exc)
        return ("ok" if status == 200 else str(status)), reply

    async with client:
        for i in range(warmup):
            outcome, reply = await post(0, sentences[i % len(sentences)])
            if outcome != "ok":
                raise SystemExit(f"warm-up request to {url.rstrip('/')}/v1/analyze: expected 200, found {outcome}: "
                                 f"{reply[:300]}; check the URL, the API key and /health/ready")
        sent = 0

        async def worker(index: int) -> None:
            nonlocal sent
            while sent < requests:
                text = sentences[sent % len(sentences)]
                sent += 1  # one event loop: no lock needed between the check and the increment
                started = time.perf_counter()
                outcome, _ = await post(index, text)
                if outcome == "ok":
                    latencies.append(time.perf_counter() - started)
                else:
                    errors[outcome] += 1

        started = time.perf_counter()
        await asyncio.gather(*[worker(i) for i in range(clients)])
        seconds = time.perf_counter() - started
        for connection in connections:
            await connection.close()
    ms = [x * 1000 for x in latencies] or [float("nan")]
    return LoadResult(clients=clients, requests=requests, ok=len(latencies), errors=dict(errors),
                      seconds=round(seconds, 3), throughput_rps=round(len(latencies) / seconds, 1),
                      p50_ms=round(percentile(ms, 50), 2), p90_ms=round(percentile(ms, 90), 2),
                      p99_ms=round(percentile(ms, 99), 2), max_ms=round(max(ms), 2))


def run_serve(url: str, clients: int, requests: int, model: Path | None, say: Callable[[str], None] = print,
              sentences: Sequence[str] | None = None) -> dict:
    """The bounded load test of this module on distinct sentences, and — with a model — the offline
    predictor's rate on the same sentences (one per document, in batches of `clients`), run with the
    variant the server reports (fp32, bf16 or int8), which the service should reach within 80 %."""
    sentences = list(sentences) if sentences else bench_sentences()
    cpu = time.process_time()
    result = asdict(asyncio.run(run_load(url, clients, requests, sentences)))
    # The load generator shares the machine with a loopback server: what it costs is CPU the server lacks.
    result["load_generator_cpu_ms_per_request"] = round(1000 * (time.process_time() - cpu) / max(1, requests), 3)
    say(f"service {url}: {result['ok']}/{requests} ok from {clients} clients on {len(sentences)} distinct sentences, "
        f"{result['throughput_rps']} req/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms")
    served = httpx.get(url.rstrip("/") + "/health/ready", timeout=10).json().get("model", {}).get("name", "")
    out: dict[str, Any] = {"url": url, "served_model": served, "sentences": len(sentences), "load": result,
                           "targets": {"p99_ms": 100, "service_vs_offline": 0.8}}
    if model is not None:
        from stancelens.model.loading import load_predictor
        from stancelens.model.predictor import DocumentInput

        variant = next((v for v in ("onnx-int8", "bf16", "int8") if served.endswith("-" + v)), "fp32")
        backend = {"onnx-int8": "onnx", "bf16": "bf16"}.get(variant, "torch")
        predictor = load_predictor(model, backend=None if variant == "fp32" else backend)
        docs = [DocumentInput(f"q{i}", text) for i, text in enumerate(sentences)]
        batches = [docs[i : i + clients] for i in range(0, len(docs), clients)]
        predictor.annotate(batches[0])
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < 5.0 or done < len(docs):
            batch = batches[(done // clients) % len(batches)]
            predictor.annotate(batch)
            done += len(batch)
        offline = done / (time.perf_counter() - started)
        out["offline_variant"] = variant
        out["offline_sentences_per_s"] = round(offline, 1)
        out["service_vs_offline"] = round(result["throughput_rps"] / offline, 3)
        say(f"offline predictor ({variant}, the same sentences in batches of {clients}): {offline:.1f} sentences/s; "
            f"service reaches {100 * out['service_vs_offline']:.0f} % of it (targets: ≥ 80 %, p99 ≤ 100 ms)")
    out["meets_targets"] = bool(result["p99_ms"] <= 100 and out.get("service_vs_offline", 0) >= 0.8)
    return out



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stancelens.bench.load", description=__doc__.splitlines()[0])
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
