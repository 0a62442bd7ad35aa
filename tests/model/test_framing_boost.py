"""The attached-term boost: the rules decide where the model is unsure, the model where it is sure."""

from __future__ import annotations

import pytest

from stancelens.model.predictor import boost_attached_term

UNSURE = {"terrorist": 0.05, "militant": 0.05, "political": 0.35, "none": 0.55}
SURE = {"terrorist": 0.01, "militant": 0.01, "political": 0.03, "none": 0.95}


def _top(p: dict) -> str:
    return max(p, key=lambda k: p[k])


def test_no_term_or_no_boost_leaves_the_model_answer():
    assert boost_attached_term(UNSURE, "none", 5.0) is UNSURE
    assert boost_attached_term(UNSURE, "political", 1.0) is UNSURE


def test_an_attached_term_decides_where_the_model_is_unsure():
    fused = boost_attached_term(UNSURE, "political", 3.0)
    assert _top(fused) == "political"
    assert sum(fused.values()) == pytest.approx(1.0, abs=1e-5)
    assert fused["political"] == pytest.approx(0.35 * 3 / (1 + 0.35 * 2), abs=1e-5)


def test_a_sure_model_overrules_a_term_the_rules_attached():
    assert _top(boost_attached_term(SURE, "political", 3.0)) == "none"
    assert _top(boost_attached_term(SURE, "political", 50.0)) == "political"


def test_predictor_applies_the_boost_of_the_engine(tiny_predictor):
    """Same text, same model: with a boost the rules' term wins a close call, and the reported
    probabilities are the boosted ones (the label is always their argmax)."""
    from stancelens.model.predictor import DocumentInput

    text = "Moscow received a delegation of the Hamas movement."
    engine = tiny_predictor.engine
    saved = engine.framing_term_boost
    try:
        engine.framing_term_boost = 1.0
        plain = tiny_predictor.annotate([DocumentInput("d", text)])[0]
        engine.framing_term_boost = 1e6
        boosted = tiny_predictor.annotate([DocumentInput("d", text)])[0]
    finally:
        engine.framing_term_boost = saved
    hamas = [m for m in boosted.sentences[0].mentions if m.actor == "hamas"][0]
    assert hamas.framing.label == "political"
    assert hamas.framing.label == _top(hamas.framing.probs)
    before = [m for m in plain.sentences[0].mentions if m.actor == "hamas"][0]
    assert before.framing.probs != hamas.framing.probs or before.framing.label == "political"
