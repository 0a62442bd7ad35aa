"""`stancelens bench --batch`: how batch scoring and the report scale — peak memory and throughput.

Scoring: synthetic corpora of N documents (distinct texts naming registry actors, JSONL with outlet and
date) scored with the lexicon engine by `stancelens score` in a fresh process each (the model's own cost
is measured by the other benchmark rows); the row says documents/s and the process's peak RSS, so the
growth from the smallest to the largest corpus is what streaming, disk-backed de-duplication and the
streamed merge leave. Report: a synthetic partitioned results dataset of R pair rows (and R/2 mention
rows) in the schema `score` writes, reported by `stancelens report` in a fresh process.
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ACTORS = ["Russia", "Hamas", "Israel", "Fatah", "Iran", "Egypt", "Qatar", "the United States", "Hezbollah", "Turkey"]
VERBS = ["condemned", "praised", "met", "criticised", "welcomed", "accused", "backed", "warned", "hosted", "thanked"]
OUTLETS = ["Moscow Wire", "Levant Post", "Tel Aviv Daily", "Cairo Herald", "Gulf Times", "Ankara Review"]


def synthetic_corpus(path: Path, documents: int, seed: int = 13) -> Path:
    """Distinct two-sentence articles, each naming three or four actors, spread over 24 months and 6 outlets."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for i in range(documents):
            a, b, c, d = rng.sample(ACTORS, 4)
            text = (f"{a} {rng.choice(VERBS)} {b} on day {i}. {c} {rng.choice(VERBS)} {d} after talks in "
                    f"round {i % 997}.")
            month = 1 + i % 24
            record = {"id": f"doc-{i}", "text": text, "outlet": OUTLETS[(i // 24) % len(OUTLETS)],
                      "date": f"{2022 + (month - 1) // 12}-{(month - 1) % 12 + 1:02d}-{1 + i % 28:02d}",
                      "url": f"https://example.org/{i}"}
            handle.write(json.dumps(record) + "\n")
    return path


def _child(command: list[str]) -> tuple[float, float, str]:
    """(seconds, peak RSS of the child in MiB, last line of its output); the child is the only one running."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed: {done.stderr.strip()[-500:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest of any child so far: measure the sizes in increasing order.
    return seconds, max(peak, before) / 1024, (done.stdout.strip().splitlines() or [""])[-1]


def scoring_rows(sizes: list[int], say: Callable[[str], None]) -> list[dict]:
    exe = str(Path(sys.executable).parent / "stancelens")
    rows = []
    with tempfile.TemporaryDirectory(prefix="stancelens-bench-") as tmp:
        for n in sorted(sizes):
            corpus = synthetic_corpus(Path(tmp) / f"c{n}.jsonl", n)
            out = Path(tmp) / f"s{n}.parquet"
            seconds, peak, _ = _child([exe, "score", str(corpus), "--out", str(out), "--model", "lexicon",
                                       "--batch-size", "64", "--partition-by", "month"])
            rows.append({"documents": n, "seconds": round(seconds, 1), "documents_per_s": round(n / seconds, 1),
                         "peak_rss_mib": round(peak, 1)})
            say(f"score {n:>7} documents: {seconds:7.1f} s, {n / seconds:7.1f} documents/s, peak RSS {peak:7.1f} MiB")
            corpus.unlink()
    if len(rows) > 1:
        say(f"peak RSS growth {rows[0]['documents']} -> {rows[-1]['documents']} documents: "
            f"{rows[-1]['peak_rss_mib'] - rows[0]['peak_rss_mib']:.1f} MiB")
    return rows


def synthetic_results(folder: Path, pair_rows: int, seed: int = 13) -> Path:
    """A results dataset in `score`'s schema, partitioned by month: R pair rows, R/2 mention rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from stancelens.batch.tables import mention_schema, pair_schema, row_id
    from stancelens.model.labelset import default_label_standard

    std = default_label_standard()
    rng = np.random.default_rng(seed)
    pairs_dir, mentions_dir = folder / "s.parquet", folder / "s.mentions.parquet"
    ids = [a.lower().replace("the ", "").replace(" ", "_") for a in ACTORS]
    chunk = 250_000
    for kind, total, schema, target in (("pairs", pair_rows, pair_schema(std.stance), pairs_dir),
                                        ("mentions", pair_rows // 2, mention_schema(std.framing), mentions_dir)):
        for start in range(0, total, chunk):
            n = min(chunk, total - start)
            doc = (np.arange(start, start + n) // 6).astype(np.int64)  # six rows per document
            month = doc % 24
            columns: dict = {name: pa.nulls(n, schema.field(name).type) for name in schema.names}
            columns.update({
                "row_id": pa.array([row_id(kind, i) for i in range(start, start + n)]),
                "doc_index": pa.array(doc), "doc_id": pa.array([f"doc-{d}" for d in doc]),
                "doc_hash": pa.array([f"{d:064x}" for d in doc]),
                "outlet": pa.array([OUTLETS[(d // 24) % len(OUTLETS)] for d in doc]),  # not tied to the month
                "published": pa.array([f"{2022 + m // 12}-{m % 12 + 1:02d}-15T12:00:00+00:00" for m in month]),
                "sentence_index": pa.array(np.zeros(n, dtype=np.int64)),
                "sentence_text": pa.array([f"Sentence {i} of a synthetic article." for i in range(start, start + n)]),
                "model_name": pa.array(["synthetic"] * n), "model_version": pa.array(["0"] * n),
            })
            if kind == "pairs":
                pick = rng.integers(0, len(ids), size=(n, 2))
                pick[:, 1] = (pick[:, 0] + 1 + pick[:, 1] % (len(ids) - 1)) % len(ids)
                stance = rng.choice(std.stance, size=n, p=[0.15, 0.3, 0.55])
                columns.update({"source": pa.array([ids[i] for i in pick[:, 0]]),
                                "target": pa.array([ids[i] for i in pick[:, 1]]), "stance": pa.array(stance)})
                for label in std.stance:
                    columns[f"prob_{label}"] = pa.array((stance == label).astype(float))
            else:
                framing = rng.choice(std.framing, size=n)
                columns.update({"actor": pa.array([ids[i] for i in rng.integers(0, len(ids), n)]),
                                "framing": pa.array(framing), "voice": pa.array(rng.choice(["author", "quoted"], n))})
                for label in std.framing:
                    columns[f"prob_{label}"] = pa.array((framing == label).astype(float))
            table = pa.table(columns, schema=schema)
            months = pa.array([f"{2022 + m // 12}-{m % 12 + 1:02d}" for m in month])
            for value in sorted(set(months.to_pylist())):
                part = table.filter(pa.compute.equal(months, value))
                (target / f"month={value}").mkdir(parents=True, exist_ok=True)
                pq.write_table(part, target / f"month={value}" / f"part-{start:09d}.parquet")
    return pairs_dir


def report_rows(pair_rows: int, say: Callable[[str], None]) -> list[dict]:
    exe = str(Path(sys.executable).parent / "stancelens")
    with tempfile.TemporaryDirectory(prefix="stancelens-bench-report-") as tmp:
        results = synthetic_results(Path(tmp), pair_rows)
        seconds, peak, _ = _child([exe, "report", str(results), "--out", str(Path(tmp) / "report")])
    say(f"report over {pair_rows} pair rows (partitioned by month) and {pair_rows // 2} mention rows: "
        f"{seconds:.1f} s, peak RSS {peak:.1f} MiB")
    return [{"pair_rows": pair_rows, "mention_rows": pair_rows // 2, "seconds": round(seconds, 1),
             "peak_rss_mib": round(peak, 1)}]
