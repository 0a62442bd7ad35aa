"""The seed gold under codebook 1.1.0 (issue #14): two passes over the seeds' descriptors, pronouns and
voices, their agreement, and the committed file built from the 1.0.0 gold and the adjudicated overlay."""

from __future__ import annotations

import json

from stancelens.model.annotation import read_annotations
from stancelens.training.agreement import krippendorff_alpha
from stancelens.training.evaluate import as_codebook_1_0
from stancelens.training.overlay import apply_overlay, read_overlay
from tests.helpers import ROOT

FOLDER = ROOT / "labels" / "gold" / "coreference"


def test_the_committed_gold_is_the_overlay_applied_to_the_old_gold():
    overlay = read_overlay(FOLDER / "seeds.jsonl")
    built = [apply_overlay(d, overlay[d.doc_id]) for d in read_annotations(ROOT / "labels/gold/seeds.jsonl")]
    committed = list(read_annotations(ROOT / "labels/gold/seeds.v1_1.jsonl"))
    assert [d.model_dump() for d in built] == [d.model_dump() for d in committed]
    assert all(d.label_standard == "1.1.0" for d in committed)
    resolved = [m for d in committed for s in d.sentences for m in s.mentions if m.via == "coreference"]
    assert len(resolved) >= 45 and all(m.kind in ("descriptor", "pronoun") for m in resolved)
    # unresolvable lines stay evidence: never mentions
    unresolvable = {(d, e["sentence"], e["span"]) for d, o in overlay.items() for e in o["mentions"] if e["actor"] is None}
    spans = {(d.doc_id, s.index, m.text) for d in committed for s in d.sentences for m in s.mentions}
    assert unresolvable and not unresolvable & spans


def test_two_passes_agree():
    passes = [{json.loads(x)["doc_id"]: json.loads(x) for x in (FOLDER / f"seeds.pass{k}.jsonl").read_text("utf-8").splitlines()}
              for k in (1, 2)]
    units: dict = {}
    for k, p in enumerate(passes):
        for doc_id, doc in p.items():
            for m in doc["mentions"]:
                units.setdefault((doc_id, m["sentence"], m["span"], m["occurrence"]), [None, None])[k] = m["actor"] or "-"
    rows = [[v[k] or "∅" for v in units.values()] for k in range(2)]
    assert krippendorff_alpha(rows) >= 0.8
    voices: dict = {}
    for k, p in enumerate(passes):
        for doc_id, doc in p.items():
            for v in doc["voice"]:
                voices.setdefault((doc_id, v["mention"]), [None, None])[k] = v["voice"]
    assert krippendorff_alpha([[v[k] for v in voices.values()] for k in range(2)]) >= 0.8


def test_predictions_fold_into_codebook_1_0_for_old_gold():
    new = list(read_annotations(ROOT / "labels/gold/seeds.v1_1.jsonl"))
    folded = [as_codebook_1_0(d) for d in new]
    voices = {m.framing.voice for d in folded for s in d.sentences for m in s.mentions}
    assert "reported" not in voices
    kept = [m for d in folded for s in d.sentences for m in s.mentions if m.kind in ("descriptor", "pronoun")]
    assert all(m.kind == "descriptor" for m in kept)  # pronouns were no mentions under 1.0.0
    old = list(read_annotations(ROOT / "labels/gold/seeds.jsonl"))
    assert {(d.doc_id, m.start, m.end) for d in folded for s in d.sentences for m in s.mentions} == {
        (d.doc_id, m.start, m.end) for d in old for s in d.sentences for m in s.mentions}
