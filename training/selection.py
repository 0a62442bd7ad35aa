"""What to annotate next: the sentences the model is least certain about, spread out, as Label Studio tasks.

Uncertainty of a sentence = 1 − the smallest top probability among its decisions (stance of each
ordered pair, framing of each mention); ties are broken by the mean normalised entropy. Sentences are
taken most uncertain first, skipping one when its least certain ordered pair (or, with no pairs, its
least certain mention's actor) already has `per_pair` sentences, when its source (the outlet when the
results name one, else the document) already has `per_source`, or when it nearly duplicates a chosen
sentence (same normalised text, or word 8-gram Jaccard ≥ `jaccard`).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from stancelens.model.annotation import DocumentAnnotation, Framing, Mention, Pair, Sentence, Span
from stancelens.training.labelstudio import document_task


@dataclass
class Candidate:
    doc: DocumentAnnotation  # the document (or, from parquet, one sentence with offsets from 0)
    sentence: Sentence
    source: str
    offset: int = 0  # where doc.text starts in the real document (parquet rows carry no full text)
    uncertainty: float = 0.0
    entropy: float = 0.0
    key: str = ""
    why: dict = field(default_factory=dict)


def _entropy(probs: dict[str, float]) -> float:
    values = [p for p in probs.values() if p > 0]
    if len(probs) < 2:
        return 0.0
    return -sum(p * math.log(p) for p in values) / math.log(len(probs))


def score(c: Candidate) -> Candidate:
    items = [(max(p.probs.values()), _entropy(p.probs), f"{p.source}->{p.target}", p.stance)
             for p in c.sentence.pairs if p.probs]
    items += [(max(m.framing.probs.values()), _entropy(m.framing.probs), f"framing:{m.actor}", m.framing.label)
              for m in c.sentence.mentions if m.framing.probs]
    if not items:
        c.uncertainty, c.entropy, c.key = 0.0, 0.0, "(no probabilities)"
        return c
    top, _, key, label = min(items, key=lambda x: x[0])
    c.uncertainty = 1.0 - top
    c.entropy = sum(x[1] for x in items) / len(items)
    c.key = key
    c.why = {"least_certain": key, "label": label, "probability": round(top, 4)}
    return c


def _normalised(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", re.sub(r"\d", "0", text.lower()))).strip()


def _grams(text: str, n: int = 8) -> set[tuple[str, ...]]:
    words = _normalised(text).split()
    if len(words) < n:
        return {tuple(words)}
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def select(candidates: Iterable[Candidate], n: int, per_pair: int = 5, per_source: int = 3,
           jaccard: float = 0.6) -> tuple[list[Candidate], dict]:
    """The chosen candidates and counts of why others were passed over."""
    ranked = sorted((score(c) for c in candidates if c.sentence.mentions),
                    key=lambda c: (-c.uncertainty, -c.entropy, c.doc.doc_id, c.sentence.start))
    chosen: list[Candidate] = []
    hashes: set[str] = set()
    grams: list[set] = []
    by_key: Counter = Counter()
    by_source: Counter = Counter()
    skipped: Counter = Counter()
    for c in ranked:
        if len(chosen) >= n:
            break
        digest = hashlib.sha1(_normalised(c.sentence.text).encode()).hexdigest()
        if digest in hashes:
            skipped["duplicate_text"] += 1
            continue
        g = _grams(c.sentence.text)
        if any(len(g & h) / len(g | h) >= jaccard for h in grams):
            skipped["near_duplicate"] += 1
            continue
        if by_key[c.key] >= per_pair:
            skipped["pair_quota"] += 1
            continue
        if by_source[c.source] >= per_source:
            skipped["source_quota"] += 1
            continue
        chosen.append(c)
        hashes.add(digest)
        grams.append(g)
        by_key[c.key] += 1
        by_source[c.source] += 1
    stats = {"candidates": len(ranked), "selected": len(chosen), "skipped": dict(skipped),
             "pairs": len(by_key), "sources": len(by_source)}
    return chosen, stats


def candidates_from_annotations(docs: Iterable[DocumentAnnotation]) -> list[Candidate]:
    return [Candidate(doc=d, sentence=s, source=d.doc_id) for d in docs for s in d.sentences]


def candidates_from_parquet(path: Path, mpath: Path) -> list[Candidate]:
    """Rows of `stancelens score` (the pairs file `path` and its mentions file `mpath`) regrouped into
    sentences."""
    import pandas as pd


    pairs = pd.read_parquet(path)
    mentions = pd.read_parquet(mpath) if mpath.exists() else pairs.iloc[0:0]
    key = ["doc_id", "sentence_start", "sentence_end"]
    out = []
    groups = {k: g for k, g in mentions.groupby(key)} if len(mentions) else {}
    for k, g in pairs.groupby(key):
        doc_id, s0, s1 = k
        text = str(g["sentence_text"].iloc[0])
        ms = []
        for _, r in groups.get(k, pairs.iloc[0:0]).iterrows():
            probs = {c[5:]: float(r[c]) for c in r.index if c.startswith("prob_") and r[c] == r[c]}
            term = (Span(start=int(r.term_start) - s0, end=int(r.term_end) - s0, text=str(r.term_text))
                    if r.term_start == r.term_start and r.term_start is not None else None)
            ms.append(Mention(id=str(r.mention_id), start=int(r.mention_start) - s0, end=int(r.mention_end) - s0,
                              text=str(r.mention_text), actor=str(r.actor), kind=str(r.kind),
                              framing=Framing(label=str(r.framing), term=term, voice=str(r.voice),
                                              speaker=None if r.speaker != r.speaker or r.speaker is None
                                              else str(r.speaker), negated=bool(r.negated), probs=probs or None)))
        ps = [Pair(source=str(r.source), target=str(r.target), stance=str(r.stance),
                   probs={c[5:]: float(r[c]) for c in r.index if c.startswith("prob_")},
                   source_mentions=[x for x in str(r.source_mentions).split(",") if x],
                   target_mentions=[x for x in str(r.target_mentions).split(",") if x])
              for _, r in g.iterrows()]
        sentence = Sentence(index=int(g["sentence_index"].iloc[0]), start=0, end=len(text), text=text,
                            mentions=sorted(ms, key=lambda m: m.start), pairs=ps)
        doc = DocumentAnnotation(doc_id=str(doc_id), text=text, sentences=[sentence])
        outlet = g["outlet"].iloc[0] if "outlet" in g else None
        named = isinstance(outlet, str) and outlet.strip()
        out.append(Candidate(doc=doc, sentence=sentence, source=str(outlet) if named else str(doc_id),
                             offset=int(s0)))
    return out


def tasks_for(chosen: Iterable[Candidate]) -> list[dict]:
    """Label Studio tasks: one per sentence, the model's decisions as pre-annotations."""

    tasks = []
    for c in chosen:
        task = document_task(c.doc, [c.sentence])
        if c.offset:
            # From parquet: offsets were relative to the sentence; make them document offsets.
            data = task["data"]
            data["offset"] = c.offset
            data["sentences"] = [{"index": c.sentence.index, "start": c.offset, "end": c.offset + len(c.sentence.text)}]
            data.pop("document", None)
        task["data"]["selection"] = {"uncertainty": round(c.uncertainty, 4), "source": c.source, **c.why}
        tasks.append(task)
    return tasks
