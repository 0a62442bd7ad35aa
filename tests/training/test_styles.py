"""Style augmentation (training/styles.py): restyled copies keep every mention and label."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from stancelens.model.labelset import load_label_standard
from stancelens.training import data as D
from stancelens.training.config import TrainingConfig
from stancelens.training.styles import restyle
from stancelens.training.trainer import repeated

CORPUS = Path(__file__).resolve().parents[2] / "labels" / "train" / "corpus.jsonl"


@pytest.fixture(scope="module")
def rows():
    return list(D.authored_examples(CORPUS, load_label_standard()))[:300]


def test_restyled_copies_keep_mentions_and_labels(rows):
    styles = Counter()
    for row in rows:
        for copy in (1, 2):
            new = restyle(row, copy, seed=13)
            styles[new["style"]] += 1
            assert [row["text"][s:e].lower() for s, e in row["spans"]] == \
                   [new["text"][s:e].lower() for s, e in new["spans"]]
            for key in ("framing", "pair_src", "pair_tgt", "pair_label", "dse_label", "origin"):
                assert new[key] == row[key]
            assert new == restyle(row, copy, seed=13)  # seeded: the same copy on every machine
    assert set(styles) == {"headline", "social", "wire"} and min(styles.values()) > 100
    assert sum(restyle(r, 1, 13)["text"] != r["text"] for r in rows) > 0.9 * len(rows)


def test_repeats_hold_one_clean_copy(rows):
    out = repeated(rows[:10], 3, 2, seed=13)
    assert len(out) == 30 and out[:10] == rows[:10]
    assert all("style" in r for r in out[10:])
    assert repeated(rows[:10], 3, 0, seed=13) == rows[:10] * 3


def test_styles_must_leave_one_clean_repeat():
    with pytest.raises(ValueError, match="authored_styles: expected 0..authored_repeat-1"):
        TrainingConfig(authored_repeat=2, authored_styles=2)
