"""Agreement statistics on textbook data, cross-checked against the `krippendorff` package."""

from __future__ import annotations

import json
import random

import krippendorff
import numpy as np
import pytest
from typer.testing import CliRunner

from stancelens.cli import app
from stancelens.training.agreement import agreement_report, cohen_kappa, fleiss_kappa, krippendorff_alpha

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 coders, 12 units, missing values.
RELIABILITY = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


def _package_alpha(data) -> float:
    matrix = np.array([[np.nan if v is None else v for v in row] for row in data], dtype=float)
    return krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")


def test_textbook_reliability_data_gives_alpha_0743():
    alpha = krippendorff_alpha(RELIABILITY)
    assert alpha == pytest.approx(0.743, abs=5e-4)
    assert alpha == pytest.approx(_package_alpha(RELIABILITY), abs=1e-9)


def test_random_data_with_missing_values_matches_the_package():
    rng = random.Random(7)
    for _ in range(20):
        coders, units = rng.randint(2, 5), rng.randint(5, 30)
        data = [[rng.choice([None, 1, 2, 3, 3, 3]) for _ in range(units)] for _ in range(coders)]
        ours = krippendorff_alpha(data)
        try:
            theirs = _package_alpha(data)
        except ValueError:  # the package refuses data with a single value; ours must not crash
            continue
        if ours is None or np.isnan(theirs):
            continue
        assert ours == pytest.approx(theirs, abs=1e-9)


def test_perfect_agreement_gives_one():
    data = [["support", "oppose", "neutral", "oppose"]] * 3
    assert krippendorff_alpha(data) == 1.0
    assert fleiss_kappa(data) == 1.0
    assert cohen_kappa(data[0], data[1]) == 1.0


def test_cohen_kappa_matches_sklearn():
    from sklearn.metrics import cohen_kappa_score

    a = ["s", "o", "n", "o", "o", "s", "n", "n", "o", "s"]
    b = ["s", "o", "o", "o", "n", "s", "n", "s", "o", "s"]
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))


def test_all_one_label_does_not_divide_by_zero():
    same = [["neutral"] * 6, ["neutral"] * 6]
    assert krippendorff_alpha(same) == 1.0
    assert fleiss_kappa(same) == 1.0
    assert cohen_kappa(same[0], same[1]) == 1.0
    # One label each, different: agreement is undefined or zero, never an exception.
    assert cohen_kappa(["a"] * 4, ["b"] * 4) in (None, 0.0)
    assert krippendorff_alpha([["a"], [None]]) is None
    assert krippendorff_alpha([[None, None], [None, None]]) is None
    assert fleiss_kappa([[None], [None]]) is None


def test_agreement_lists_sentences_one_annotator_lacks(gold_docs):
    doc = gold_docs[0]
    partial = doc.model_copy(update={"sentences": doc.sentences[1:]})
    report = agreement_report([gold_docs, [partial, *gold_docs[1:]]], ["a", "b"])
    missing = f"{doc.doc_id}:{doc.sentences[0].start}-{doc.sentences[0].end}"
    assert report["unmatched"]["sentences"] == {missing: ["a"]}
    # The missing sentence is "no answer" for b, not "not a mention": perfect agreement elsewhere.
    assert report["tasks"]["mentions"]["krippendorff_alpha"] == 1.0


def test_cli_agreement_between_two_gold_passes(root, tmp_path):
    out = tmp_path / "agree"
    result = CliRunner().invoke(app, ["evaluate", "--gold", str(root / "labels/gold/seeds.jsonl"), "--gold",
                                      str(root / "labels/gold/seeds.pass2.jsonl"), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert set(report["tasks"]) == {"mentions", "framing", "voice", "negation", "stance"}
    for task in report["tasks"].values():
        assert {"krippendorff_alpha", "fleiss_kappa", "cohen_kappa", "per_label_alpha", "per_document_alpha"} <= set(task)
    assert report["mention_span_f1"][0]["f1"] == pytest.approx(1.0)
    assert report["skipped_items"] == [] and report["unmatched"] == {"documents": {}, "sentences": {}}
    assert "Krippendorff α" in (out / "report.md").read_text()
