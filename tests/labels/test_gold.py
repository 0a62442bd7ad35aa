"""The seed gold: schema-valid, complete, tiling, and the lexicon finder's mention P/R on it."""

import json

import jsonschema

from stancelens.model.validation import check_labels, tiling_problems
from tests.helpers import GOLD, ROOT, SEEDS


def test_seeds_are_the_five_documents(root):
    assert len(SEEDS) == 5


def test_gold_validates_against_the_committed_schema(gold_docs):
    schema = json.loads((ROOT / "labels" / "schema" / "annotation.schema.json").read_text())
    for line in GOLD.read_text(encoding="utf-8").splitlines():
        jsonschema.validate(json.loads(line), schema)
    check_labels(gold_docs, str(GOLD))


def test_committed_schema_is_the_generated_one():
    from stancelens.model.annotation import json_schema

    committed = json.loads((ROOT / "labels" / "schema" / "annotation.schema.json").read_text())
    assert committed == json_schema(), "regenerate with: stancelens schema --out labels/schema/annotation.schema.json"


def test_gold_covers_every_sentence_of_every_seed(gold_docs):
    by_id = {d.doc_id: d for d in gold_docs}
    assert sorted(by_id) == [p.stem for p in SEEDS]
    for path in SEEDS:
        doc = by_id[path.stem]
        assert doc.text == path.read_text(encoding="utf-8")
        assert tiling_problems(doc) == []


def test_every_ordered_pair_of_mentioned_actors_has_a_stance(gold_docs):
    for doc in gold_docs:
        for s in doc.sentences:
            actors = {m.actor for m in s.mentions}
            expected = {(a, b) for a in actors for b in actors if a != b}
            assert {(p.source, p.target) for p in s.pairs} == expected, (doc.doc_id, s.index)


def test_second_pass_exists_and_covers_the_same_sentences(gold_docs):
    from stancelens.model.annotation import read_annotations

    second = {d.doc_id: d for d in read_annotations(ROOT / "labels" / "gold" / "seeds.pass2.jsonl")}
    for doc in gold_docs:
        assert [(s.start, s.end) for s in second[doc.doc_id].sentences] == [(s.start, s.end) for s in doc.sentences]


def test_lexicon_mention_detection_precision_and_recall_on_gold(gold_docs):
    from stancelens.model.lexicon import LexiconEngine
    from stancelens.model.predictor import DocumentInput, Predictor
    from stancelens.training.evaluate import as_codebook_1_0
    from stancelens.training.metrics import span_prf

    # The seed gold follows codebook 1.0.0: predictions are compared on that mention set.
    predicted = Predictor(LexiconEngine()).annotate([DocumentInput(d.doc_id, d.text) for d in gold_docs])
    predicted = [as_codebook_1_0(d) for d in predicted]
    gold = {(d.doc_id, m.start, m.end, m.actor) for d in gold_docs for s in d.sentences for m in s.mentions}
    pred = {(d.doc_id, m.start, m.end, m.actor) for d in predicted for s in d.sentences for m in s.mentions}
    prf = span_prf(gold, pred)
    assert prf["precision"] >= 0.95, prf
    assert prf["recall"] >= 0.95, prf


def test_resolved_mentions_against_the_extended_seed_gold():
    """Codebook 1.1.0's descriptor and pronoun mentions of the seeds (labels/gold/seeds.v1_1.jsonl, two
    passes) against the rules: scored on their own."""
    from stancelens.model.annotation import read_annotations
    from stancelens.model.lexicon import LexiconEngine
    from stancelens.model.predictor import DocumentInput, Predictor
    from stancelens.training.metrics import span_prf

    gold_docs = list(read_annotations(ROOT / "labels/gold/seeds.v1_1.jsonl"))
    predicted = Predictor(LexiconEngine()).annotate([DocumentInput(d.doc_id, d.text) for d in gold_docs])
    gold = {(d.doc_id, m.start, m.end, m.actor) for d in gold_docs for s in d.sentences for m in s.mentions
            if m.via == "coreference"}
    pred = {(d.doc_id, m.start, m.end, m.actor) for d in predicted for s in d.sentences for m in s.mentions
            if m.via == "coreference"}
    prf = span_prf(gold, pred)
    assert len(gold) >= 45
    assert prf["precision"] >= 0.6 and prf["recall"] >= 0.5, prf


def test_splitter_reproduces_the_gold_sentences(gold_docs):
    from stancelens.model.sentences import split_sentences

    for doc in gold_docs:
        assert [(s.start, s.end) for s in split_sentences(doc.text)] == [(s.start, s.end) for s in doc.sentences]
