"""Batch scoring at scale: lazy inputs, partitioned output, appends, and the report's intervals."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from stancelens.batch.feeds import InputReader
from stancelens.batch.report import build_report, document_interval, wilson
from stancelens.batch.scoring import ScoreRun
from stancelens.batch.tables import ScoringError, mentions_path, read_table
from stancelens.model.lexicon import LexiconEngine
from stancelens.model.predictor import Predictor
from tests.batch.test_scoring import DiesAfter, seed_corpus


@pytest.fixture(scope="module")
def lexicon():
    return Predictor(LexiconEngine())


class OneLineAtATime(io.RawIOBase):
    """A stdin that hands out one line per read and counts how far it was read."""

    def __init__(self, lines: list[bytes]):
        self.lines, self.taken = lines, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.taken >= len(self.lines):
            return 0
        line = self.lines[self.taken]
        self.taken += 1
        buffer[: len(line)] = line
        return len(line)


def test_jsonl_is_read_lazily_and_a_bad_line_costs_only_itself():
    lines = [json.dumps({"id": f"d{i}", "text": f"Russia met Hamas, round {i}."}).encode() + b"\n" for i in range(5000)]
    lines[3] = b'{"id": "bad", "text": "caf\xe9"}\n'
    stdin = OneLineAtATime(lines)
    items = InputReader(stdin=lambda: io.BufferedReader(stdin, buffer_size=256)).read(["-"])
    first = [next(items) for _ in range(3)]
    assert [a.doc_id for a in first] == ["d0", "d1", "d2"]
    assert stdin.taken < 100  # three articles did not read the whole input
    error = next(items)
    assert error.item == "line 4" and "expected UTF-8 text, found an undecodable byte 0xe9" in error.reason
    assert sum(1 for _ in items) == 4996


def test_partitioned_output_has_the_rows_of_one_file_and_takes_appends(tmp_path, lexicon):
    corpus = seed_corpus(tmp_path / "corpus.jsonl", 30)
    single = tmp_path / "single.parquet"
    ScoreRun([str(corpus)], single, lexicon, progress=False).run()
    dataset = tmp_path / "by_month.parquet"
    ScoreRun([str(corpus)], dataset, lexicon, progress=False, partition_by="month").run()
    assert dataset.is_dir() and any(p.name.startswith("month=") for p in dataset.iterdir())
    key = ["row_id"]
    by_pandas = pd.read_parquet(dataset).drop(columns=["month", "scored_at"]).sort_values(key).reset_index(drop=True)
    by_arrow = ds.dataset(dataset, format="parquet", partitioning="hive").to_table().to_pandas()
    expected = read_table(single).to_pandas().drop(columns=["scored_at"]).sort_values(key).reset_index(drop=True)
    assert len(by_arrow) == len(expected)
    import duckdb

    counted = duckdb.sql(f"SELECT month, count(*) AS n FROM read_parquet('{dataset}/*/*.parquet', "
                         "hive_partitioning=true) GROUP BY month").fetchall()
    assert sum(n for _, n in counted) == len(expected)
    assert dict(counted) == expected["published"].str[:7].value_counts().to_dict()
    pd.testing.assert_frame_equal(by_pandas[expected.columns].astype(object), expected.astype(object))
    months = {p.name for p in dataset.iterdir()}
    assert months == {f"month={m}" for m in expected["published"].str[:7]}
    # append: a bigger corpus adds only the new rows; the old files stay
    bigger = seed_corpus(tmp_path / "bigger.jsonl", 40)
    ScoreRun([str(bigger)], dataset, lexicon, progress=False, partition_by="month", output_mode="append").run()
    after = pd.read_parquet(dataset)
    assert after["row_id"].is_unique and len(after) > len(expected)
    with pytest.raises(ScoringError, match="expected a results file, found a partitioned dataset folder"):
        ScoreRun([str(corpus)], dataset, lexicon, progress=False, output_mode="overwrite").run()
    # a report reads the dataset as it reads a file
    index = build_report(dataset, tmp_path / "report")
    table = pd.read_csv(tmp_path / "report" / "stance_over_time.csv")
    assert index.exists() and table["n"].sum() == len(after)
    assert {"low_oppose", "high_oppose", "wilson_low_oppose", "doc_low_oppose", "documents", "note"} <= set(table.columns)


def test_killed_and_resumed_partitioned_run_gives_the_clean_rows(tmp_path, lexicon):
    corpus = seed_corpus(tmp_path / "corpus.jsonl", 25)
    clean = tmp_path / "clean.parquet"
    ScoreRun([str(corpus)], clean, lexicon, progress=False, partition_by="outlet").run()

    out = tmp_path / "resumed.parquet"
    with pytest.raises(KeyboardInterrupt):
        ScoreRun([str(corpus)], out, lexicon, DiesAfter(lexicon, 12, KeyboardInterrupt), checkpoint_docs=5,
                 progress=False,
                 partition_by="outlet").run()
    ScoreRun([str(corpus)], out, lexicon, checkpoint_docs=5, progress=False, partition_by="outlet").run()

    def rows(path):
        return sorted(json.dumps(r, sort_keys=True) for r in
                      pd.read_parquet(path).drop(columns=["scored_at"]).astype(str).to_dict("records"))

    assert rows(out) == rows(clean)
    assert rows(mentions_path(out)) == rows(mentions_path(clean))


def test_wilson_matches_the_textbook_values():
    low, high = wilson(np.array([0, 5, 10]), np.array([10, 10, 10]))
    assert low == pytest.approx([0.0, 0.2366, 0.7225], abs=1e-3)
    assert high == pytest.approx([0.2775, 0.7634, 1.0], abs=1e-3)


def test_the_document_bootstrap_widens_the_interval_when_rows_cluster_in_articles():
    rng = np.random.default_rng(0)
    # 40 articles of 10 rows each; an article's rows share one stance: 400 rows, but 40 independent pieces.
    labels = rng.random(40) < 0.3
    k = np.stack([labels * 10.0, (~labels) * 10.0], axis=1)
    n = k.sum(axis=1)
    low, high = document_interval(k, n, np.random.default_rng(1))
    w_low, w_high = wilson(k.sum(axis=0), np.full(2, n.sum()))
    share = k.sum(axis=0) / n.sum()
    assert (low <= share).all() and (share <= high).all()
    assert (high - low)[0] > 1.8 * (w_high - w_low)[0]
