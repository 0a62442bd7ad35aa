"""The resolution test set (labels/resolution/, issue #14) is frozen and well formed."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from stancelens.model.registry import default_registry
from tests.helpers import ROOT

FOLDER = ROOT / "labels" / "resolution"
FROZEN = {
    "descriptors.jsonl": "b091d70b830e91883641d761bf9490dbb80f2c0c4b255c19287044a06932b61a",
    "voice.jsonl": "14c11f14242296ed699159c49701d7f972fe94e886ee1c3dc985ff389434306b",
}


@pytest.mark.parametrize("name", sorted(FROZEN))
def test_the_set_is_frozen(name):
    assert hashlib.sha256((FOLDER / name).read_bytes()).hexdigest() == FROZEN[name]


def _whole_word(sentence: str, span: str, occurrence: int) -> bool:
    pattern = rf"(?<!\w){re.escape(span)}(?!\w)"
    return len(re.findall(pattern, sentence)) >= occurrence


@pytest.mark.parametrize("name", sorted(FROZEN))
def test_documents_are_well_formed_and_large_enough(name):
    actors = set(default_registry().actors)
    docs = [json.loads(line) for line in (FOLDER / name).read_text(encoding="utf-8").splitlines()]
    linked = speakers = 0
    for doc in docs:
        assert " ".join(doc["sentences"]) == doc["text"], doc["doc_id"]
        for m in doc["mentions"]:
            assert _whole_word(doc["sentences"][m["sentence"]], m["span"], m["occurrence"]), (doc["doc_id"], m)
            assert m["actor"] is None or m["actor"] in actors, (doc["doc_id"], m["actor"])
            assert m["voice"] in ("author", "quoted", "reported")
            if m["kind"] in ("descriptor", "pronoun") and m["actor"] is not None:
                linked += 1
            if m["voice"] in ("quoted", "reported"):
                speakers += 1
    if name == "descriptors.jsonl":
        assert linked >= 200
    else:
        assert speakers >= 150


DEV = ("dev.jsonl", "dev2.jsonl", "dev3.jsonl", "dev4.jsonl", "dev5.jsonl", "dev6.draft.jsonl", "dev7.jsonl", "dev8.jsonl",
       "dev9.jsonl", "dev10.jsonl", "dev11.jsonl", "dev12.jsonl", "dev13.jsonl")


@pytest.mark.parametrize("name", DEV)
def test_development_sets_are_readable_and_apart_from_the_test_set(name):
    """The rules were tuned on the development sets only: none of their texts is a test document."""
    from stancelens.training.resolution_score import read_resolution_set

    dev = read_resolution_set(FOLDER / name)
    test = [d for frozen in FROZEN for d in read_resolution_set(FOLDER / frozen)]
    assert len(dev) >= 30  # dev12 and dev13, written around attribution structures, have 35 and 30; the others 40-60
    assert not {d.text for d in dev} & {d.text for d in test}
    assert not {d.doc_id for d in dev} & {d.doc_id for d in test}


def test_the_scorer_counts_a_guess_as_an_error_and_locates_bad_lines(tmp_path):
    from stancelens.model.lexicon import LexiconEngine
    from stancelens.model.predictor import Predictor
    from stancelens.training.resolution_score import ResolutionSetError, read_resolution_set, score_resolution

    def line(doc_id, sentences, mentions):
        return json.dumps({"doc_id": doc_id, "text": " ".join(sentences), "sentences": sentences, "mentions": mentions})

    def m(sentence, span, actor, kind="name", **extra):
        return {"sentence": sentence, "span": span, "occurrence": 1, "actor": actor, "kind": kind, **extra}

    path = tmp_path / "set.jsonl"
    path.write_text("\n".join([
        line("a", ["Hamas fired rockets at Sderot.", "The militant group said it was revenge."],
             [m(0, "Hamas", "hamas"), m(1, "The militant group", "hamas", "descriptor")]),
        line("b", ["Hamas and Palestinian Islamic Jihad claimed the attack.", "The group said more would follow."],
             [m(0, "Hamas", "hamas"), m(1, "The group", None, "descriptor", unresolvable="two groups")]),
    ]) + "\n", encoding="utf-8")
    report = score_resolution(Predictor(LexiconEngine()), read_resolution_set(path))
    # the rules resolve the first and leave the second unlinked; the nearest-antecedent rule guesses it
    assert report["system"]["resolution_accuracy"] == 1.0
    assert report["baseline"]["resolution_accuracy"] == 0.5
    path.write_text(line("c", ["Hamas fired."], [m(0, "Fatah", "fatah")]) + "\n", encoding="utf-8")
    with pytest.raises(ResolutionSetError, match=r"set.jsonl, line 1: expected occurrence 1 of 'Fatah'"):
        read_resolution_set(path)


def _frozen_items() -> dict:
    """Every scored item of the frozen files (a descriptor or pronoun line, a framed mention), keyed like a
    second-pass answer, with its mention."""
    items = {}
    for name in sorted(FROZEN):
        for line in (FOLDER / name).read_text(encoding="utf-8").splitlines():
            doc = json.loads(line)
            for m in doc["mentions"]:
                key = (doc["doc_id"], m["sentence"], m["span"], m["occurrence"])
                if m["kind"] in ("descriptor", "pronoun"):
                    items[(*key, "refers_to")] = m
                if m["framing"] != "none" and m["actor"] is not None:
                    items[(*key, "voice")] = m
    return items


def test_the_second_pass_answers_every_item_of_the_frozen_set_once():
    """labels/resolution/second_pass.jsonl (a blind second annotation) covers the frozen set item for item, with
    registry actors only, so its agreement figures are over the whole set."""
    from stancelens.training.second_pass import read_second_pass

    answers = read_second_pass([FOLDER / "second_pass.jsonl"])
    actors = set(default_registry().actors)
    assert set(answers) == set(_frozen_items())
    assert all(a.actor is None or a.actor in actors for a in answers.values())
    assert all(a.speaker is None or a.speaker in actors for a in answers.values())


def _labels(answer, question):
    if question == "refers_to":
        return answer["actor"]
    return answer["voice"], answer.get("speaker"), answer.get("speaker_text")


def test_the_adjudication_settles_exactly_the_items_the_passes_disputed():
    """labels/resolution/adjudication.jsonl: one decision for every item where the frozen set and the second pass
    differ (and no other), recording both labels as they are in those files and a choice the final label fits."""
    from stancelens.training.second_pass import read_second_pass

    second = {}
    for line in (FOLDER / "second_pass.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        second[(item["doc_id"], item["sentence"], item["span"], item["occurrence"], item["question"])] = item
    first = _frozen_items()
    disputed = {k for k, a in second.items() if _labels(a, k[4]) != _labels(first[k], k[4])
                and not (k[4] == "voice" and a["voice"] == first[k]["voice"] == "author")}
    decisions = [json.loads(line) for line in (FOLDER / "adjudication.jsonl").read_text(encoding="utf-8").splitlines()]
    keys = [(d["doc_id"], d["sentence"], d["span"], d["occurrence"], d["question"]) for d in decisions]
    assert len(keys) == len(set(keys)) and set(keys) == disputed
    actors = set(default_registry().actors)
    for key, d in zip(keys, decisions):
        question = key[4]
        assert _labels(d["first"], question) == _labels(first[key], question), key
        assert _labels(d["second"], question) == _labels(second[key], question), key
        final = _labels(d, question)
        assert d["choice"] in ("first", "second", "neither") and d["ruling"].strip()
        assert (final == _labels(d[d["choice"]], question)) if d["choice"] != "neither" else final not in (
            _labels(d["first"], question), _labels(d["second"], question)), key
        assert all(a is None or a in actors for a in (d.get("actor"), d.get("speaker")))
    assert len(read_second_pass([FOLDER / "adjudication.jsonl"])) == len(decisions)
