"""The authored training corpus: size, coverage, and no overlap with the seed gold (the test set)."""

from __future__ import annotations

from collections import Counter

import pytest

from stancelens.model.annotation import read_annotations
from tests.helpers import GOLD, ROOT

CORPUS = ROOT / "labels" / "train" / "corpus.jsonl"
# Part D, wire-style sentences kept out of the default training data (labels/train/README.md).
WIRE = ROOT / "labels" / "train" / "wire.jsonl"
# Character 8-gram Jaccard similarity above which a training sentence counts as a near-duplicate of a seed
# sentence. Paraphrases of the same event score about 0.2 here; a copy with a few words changed scores > 0.5.
MAX_JACCARD = 0.35


def _grams(text: str, n: int = 8) -> set[str]:
    t = " ".join(text.lower().split())
    return {t[i : i + n] for i in range(max(1, len(t) - n + 1))}


@pytest.fixture(scope="module")
def corpus():
    return list(read_annotations(CORPUS))


def test_corpus_size_and_label_coverage(corpus):
    pairs = Counter(p.stance for d in corpus for s in d.sentences for p in s.pairs)
    framed = Counter(m.framing.label for d in corpus for s in d.sentences for m in s.mentions if m.framing.label != "none")
    assert sum(pairs.values()) >= 2000, pairs
    assert sum(framed.values()) >= 1000, framed
    assert set(pairs) == {"support", "oppose", "neutral"}
    assert set(framed) == {"terrorist", "militant", "extremist", "resistance", "occupier", "regime", "political"}
    voices = Counter(m.framing.voice for d in corpus for s in d.sentences for m in s.mentions if m.framing.label != "none")
    assert voices["quoted"] >= 200 and voices["author"] >= 200
    assert sum(m.framing.negated for d in corpus for s in d.sentences for m in s.mentions) >= 50


@pytest.mark.parametrize("path", [CORPUS, WIRE], ids=["corpus", "wire"])
def test_no_seed_sentence_or_near_duplicate_in_the_corpus(path):
    corpus = list(read_annotations(path))
    seeds = [(s.text, _grams(s.text)) for d in read_annotations(GOLD) for s in d.sentences if len(s.text) >= 30]
    worst = (0.0, "", "")
    for d in corpus:
        for s in d.sentences:
            g = _grams(s.text)
            for text, sg in seeds:
                j = len(g & sg) / len(g | sg)
                if j > worst[0]:
                    worst = (j, s.text, text)
    assert worst[0] <= MAX_JACCARD, f"near-duplicate of a seed sentence (Jaccard {worst[0]:.2f}): {worst[1]!r} ~ {worst[2]!r}"


def test_overlap_check_can_fail():
    seed = "Moscow has so far carefully denounced violence from both sides in the conflict between Israel and Hamas."
    near = "Moscow has so far carefully condemned violence from both sides in the conflict between Israel and Hamas."
    g1, g2 = _grams(seed), _grams(near)
    assert len(g1 & g2) / len(g1 | g2) > MAX_JACCARD
