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
