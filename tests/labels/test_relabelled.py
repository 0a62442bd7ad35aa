"""The relabelled DSE references: well-formed, free of DSE text, reliable, and rebuilt from DSE by hash."""

import json
from pathlib import Path

import pytest

from stancelens.model.labelset import default_label_standard
from stancelens.training.config import TrainingConfig
from stancelens.training.relabelled import (
    Reference,
    RelabelledError,
    dev_or_test,
    pass_agreement,
    read_labels,
    read_references,
    relabelled_rows,
)
from tests.helpers import ROOT

FOLDER = ROOT / "labels" / "relabelled"
FIELDS = {"file", "line", "sha256", "p_to_q", "q_to_p", "skip", "split", "adjudicated"}
DSE = TrainingConfig.resolve_path("${STANCELENS_DATA}/dse")
needs_dse = pytest.mark.skipif(DSE is None or not (DSE / "valid.txt").exists(), reason="DSE data not present")


def test_references_hold_labels_and_hashes_only():
    stance = set(default_label_standard().stance)
    lines = (FOLDER / "dse.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 1461 + 3000
    for raw in lines:
        record = json.loads(raw)
        assert set(record) == FIELDS  # no sentence text, no notes
        assert len(record["sha256"]) == 64
        if record["skip"]:
            assert record["skip"] in {"broken marks", "not an actor"} and record["p_to_q"] is None
        else:
            assert {record["p_to_q"], record["q_to_p"]} <= stance
    refs = read_references()
    assert sum(r.file == "valid.txt" for r in refs) == 1461
    assert sum(r.file == "train.txt" for r in refs) >= 3000
    assert {r.split for r in refs if r.file == "train.txt"} == {"train"}


def test_two_passes_agree_at_alpha_0_8_or_more():
    result = pass_agreement(read_labels(FOLDER / "dse.pass1-overlap.jsonl"), read_labels(FOLDER / "dse.pass2.jsonl"))
    assert result["lines"] >= 400
    assert result["stance_alpha"] >= 0.8, result


def test_adjudication_is_what_the_references_carry():
    final = read_labels(FOLDER / "dse.jsonl")
    for raw in (FOLDER / "dse.adjudication.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(raw)
        f = record["final"]
        assert final[(record["file"], record["line"])] == (("skip", "skip") if f["skip"] else (f["p_to_q"], f["q_to_p"]))
        assert record["first"] != record["second"] and record["ruling"]


@needs_dse
def test_rows_rebuild_from_dse_and_train_never_holds_a_valid_sentence():
    standard = default_label_standard()
    dev = relabelled_rows(DSE, "dev", standard)
    test = relabelled_rows(DSE, "test", standard)
    train = relabelled_rows(DSE, "train", standard)
    assert len(dev) > 500 and len(test) > 500 and len(train) > 2500
    assert not {r["text"] for r in train} & {r["text"] for r in dev + test}
    valid_lines = (DSE / "valid.txt").read_text(encoding="utf-8").splitlines()
    for ref in read_references():
        if ref.file == "valid.txt":
            assert ref.split == dev_or_test(valid_lines[ref.line - 1])


@needs_dse
def test_a_different_copy_of_dse_is_refused(tmp_path):
    (tmp_path / "valid.txt").write_text((DSE / "valid.txt").read_text(encoding="utf-8").replace("[", "(", 1))
    first = next(r for r in read_references() if r.file == "valid.txt" and r.line == 1)
    with pytest.raises(RelabelledError, match="expected sha256 .* use the DSE release"):
        relabelled_rows(tmp_path, first.split, default_label_standard(), [first])
    with pytest.raises(RelabelledError, match="expected one of"):
        relabelled_rows(tmp_path, "holdout", default_label_standard(), [first])
    bad = Reference("valid.txt", 10**6, "0" * 64, "neutral", "neutral", None, "dev")
    with pytest.raises(RelabelledError, match="expected a line 1000000"):
        relabelled_rows(tmp_path, "dev", default_label_standard(), [bad])


def test_missing_dse_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="set STANCELENS_DATA"):
        relabelled_rows(Path(tmp_path), "dev", default_label_standard())


def test_second_round_is_new_train_lines_only():
    first = {(r.file, r.line) for r in read_references()}
    second = read_references(FOLDER / "dse.round2.jsonl")
    assert len(second) == 3000 and not first & {(r.file, r.line) for r in second}
    assert {(r.file, r.split) for r in second} == {("train.txt", "train")}


@needs_dse
def test_second_round_rebuilds_from_dse_without_a_valid_sentence():
    standard = default_label_standard()
    rows = relabelled_rows(DSE, "train", standard, read_references(FOLDER / "dse.round2.jsonl"))
    valid = {line.split("\t")[0] for line in (DSE / "valid.txt").read_text(encoding="utf-8").splitlines()}
    assert len(rows) > 2500 and not {r["text"] for r in rows} & valid


@needs_dse
def test_training_reads_every_round_listed_in_relabelled_path():
    from stancelens.training.trainer import TrainingError, load_relabelled

    standard = default_label_standard()
    both = TrainingConfig(relabelled_path=["labels/relabelled/dse.jsonl", "labels/relabelled/dse.round2.jsonl"],
                          dse_path=str(DSE))
    train: dict = {}
    valid: dict = {}
    hashes: dict = {}
    load_relabelled(both, standard, lambda *_: None, train, valid, hashes)
    one: dict = {}
    load_relabelled(TrainingConfig(relabelled_path="labels/relabelled/dse.jsonl", dse_path=str(DSE)), standard,
                    lambda *_: None, one, {}, {})
    (key,) = train
    assert len(train[key]) > len(one[key]) + 2500 and len(hashes) == 2
    missing = TrainingConfig(relabelled_path=["labels/relabelled/dse.jsonl", "nowhere.jsonl"], dse_path=str(DSE))
    with pytest.raises(TrainingError, match="relabelled_path nowhere.jsonl: no such file"):
        load_relabelled(missing, standard, lambda *_: None, {}, {}, {})
