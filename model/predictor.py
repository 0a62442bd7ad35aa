"""The one prediction path: text in, `DocumentAnnotation` out.

The HTTP service, the CLI and batch scoring all hold a `Predictor` and call `annotate`. An engine
only classifies prepared items (`PairItem`, `MentionItem`); the predictor does everything around
it — sentences, mentions, pairs, framing terms/voice/negation, assembling the annotation — so that
every engine (lexicon rules, TF-IDF, the transformer in fp32 or int8) is compared on equal terms.
All items of a call are classified together, so a batch of documents gets exactly the answers
the same documents get one by one (a test checks it).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from stancelens.model.annotation import (
    DocumentAnnotation,
    Framing,
    Mention,
    ModelInfo,
    Pair,
    Sentence,
    Span,
    pair_via,
)
from stancelens.model.framing import STATEMENT_NOUNS, FramingDecision, LexiconFramer
from stancelens.model.labelset import LabelStandard, default_label_standard
from stancelens.model.pipeline import MentionItem, PairItem, SentenceCandidates, prepare_document
from stancelens.model.registry import RawMention, Registry, default_registry

TASKS = ("stance", "framing")


@dataclass(frozen=True)
class DocumentInput:
    doc_id: str
    text: str


class Engine(Protocol):
    """What a classifier must provide: probabilities per label name for each item."""

    info: ModelInfo

    def classify(
        self, pairs: Sequence[PairItem], mentions: Sequence[MentionItem]
    ) -> tuple[list[dict[str, float]], list[dict[str, float]]]: ...


def _argmax(probs: dict[str, float]) -> str:
    return max(probs, key=lambda k: probs[k])


def boost_attached_term(probs: dict[str, float], term_category: str, boost: float) -> dict[str, float]:
    """The codebook defines a mention's framing by the lexicon term attached to it (GUIDELINES §4.1).
    When the rules find one, its category's probability is multiplied by `boost` and the rest
    renormalised: the rules decide where the model is unsure, the model still overrules them where it
    is sure (a term the rules misattached). `boost` is chosen on validation data when training."""
    if boost == 1.0 or term_category == "none" or term_category not in probs:
        return probs
    raised = {k: v * boost if k == term_category else v for k, v in probs.items()}
    total = sum(raised.values())
    return {k: round(v / total, 6) for k, v in raised.items()}


class Predictor:
    def __init__(self, engine: Engine, registry: Registry | None = None, standard: LabelStandard | None = None):
        self.engine = engine
        self.registry = registry or default_registry()
        self.standard = standard or default_label_standard()
        self.framer = LexiconFramer(self.standard)

    @property
    def info(self) -> ModelInfo:
        return self.engine.info

    def with_registry(self, registry: Registry) -> Predictor:
        """The same engine with another actor registry (an actor set chosen at run time): the transformer
        and TF-IDF never see actor ids, the rules engine finds mentions with the new registry."""
        rebind = getattr(self.engine, "with_registry", None)
        engine = rebind(registry) if rebind is not None else self.engine
        return Predictor(engine, registry=registry, standard=registry.standard)

    def annotate(
        self,
        documents: Iterable[DocumentInput],
        tasks: Sequence[str] = TASKS,
        actors: set[str] | None = None,
    ) -> list[DocumentAnnotation]:
        """Annotate documents. `actors` limits pairs and mentions to those actor ids."""
        docs = list(documents)
        prepared = [prepare_document(d.text, self.registry) for d in docs]
        return self._classify_prepared(docs, prepared, tasks, actors)

    def annotate_given_mentions(
        self, annotations: Iterable[DocumentAnnotation], tasks: Sequence[str] = TASKS
    ) -> list[DocumentAnnotation]:
        """Keep the sentences and mentions of existing annotations (gold, or a user's own entities)
        and predict framing and stance for them: classification without mention detection."""
        docs, prepared = [], []
        for ann in annotations:
            docs.append(DocumentInput(ann.doc_id, ann.text))
            prepared.append([
                SentenceCandidates(
                    s.index, s.start, s.end, s.text,
                    [RawMention(m.start, m.end, m.text, m.actor, m.kind, s.index) for m in sorted(s.mentions, key=lambda x: x.start)],
                )
                for s in ann.sentences
            ])
        return self._classify_prepared(docs, prepared, tasks, None)

    def _classify_prepared(
        self,
        docs: list[DocumentInput],
        prepared: list[list[SentenceCandidates]],
        tasks: Sequence[str],
        actors: set[str] | None,
    ) -> list[DocumentAnnotation]:
        if actors is not None:
            for sentences in prepared:
                for s in sentences:
                    s.mentions = [m for m in s.mentions if m.actor in actors]
        pair_keys: list[tuple[int, int, str, str]] = []
        pair_items: list[PairItem] = []
        mention_keys: list[tuple[int, int, int]] = []
        mention_items: list[MentionItem] = []
        for di, sentences in enumerate(prepared):
            for s in sentences:
                if "stance" in tasks:
                    for a, b in s.ordered_pairs():
                        pair_keys.append((di, s.index, a, b))
                        pair_items.append(s.pair_item(a, b))
                if "framing" in tasks:
                    for mi, m in enumerate(s.mentions):
                        mention_keys.append((di, s.index, mi))
                        mention_items.append(s.mention_item(m))
        stance, framing = self.engine.classify(pair_items, mention_items)
        stance_by = {k: p for k, p in zip(pair_keys, stance)}
        framing_by = {k: p for k, p in zip(mention_keys, framing)}
        return [
            self._assemble(doc, sentences, di, stance_by, framing_by, tasks)
            for di, (doc, sentences) in enumerate(zip(docs, prepared))
        ]

    def _assemble(
        self,
        doc: DocumentInput,
        sentences: list[SentenceCandidates],
        di: int,
        stance_by: dict,
        framing_by: dict,
        tasks: Sequence[str],
    ) -> DocumentAnnotation:
        boost = float(getattr(self.engine, "framing_term_boost", 1.0))
        ids = {(m.start, m.end): f"s{s.index}m{mi}" for s in sentences for mi, m in enumerate(s.mentions)}
        labels: list[list[tuple[str, dict | None]]] = []
        decisions: list[list[FramingDecision]] = []
        for s in sentences:
            lexicon = (
                self.framer.frame_sentence(doc.text, (s.start, s.end), s.mentions)
                if boost != 1.0 and s.mentions and framing_by
                else None
            )
            row_labels, row_decisions = [], []
            for mi, m in enumerate(s.mentions):
                probs = framing_by.get((di, s.index, mi))
                if probs and lexicon is not None:
                    probs = boost_attached_term(probs, lexicon[mi].label, boost)
                label = _argmax(probs) if probs else "none"
                # The rules' decision already carries term, voice and negation when the label is theirs.
                if lexicon is not None and lexicon[mi].label == label:
                    decision = lexicon[mi]
                else:
                    decision = self.framer.term_for(doc.text, (s.start, s.end), m, s.mentions, label)
                row_labels.append((label, probs))
                row_decisions.append(decision)
            labels.append(row_labels)
            decisions.append(row_decisions)
        self._carry_speakers(doc.text, sentences, decisions)
        out: list[Sentence] = []
        for s, row_labels, row_decisions in zip(sentences, labels, decisions):
            mentions: list[Mention] = []
            for mi, (m, (label, probs), decision) in enumerate(zip(s.mentions, row_labels, row_decisions)):
                term = (
                    Span(start=decision.term.start, end=decision.term.end, text=decision.term.text)
                    if decision.term
                    else None
                )
                mentions.append(
                    Mention(
                        id=f"s{s.index}m{mi}",
                        start=m.start,
                        end=m.end,
                        text=m.text,
                        actor=m.actor,
                        kind=m.kind,
                        via=m.via,  # type: ignore[arg-type]
                        antecedent=ids.get(m.antecedent) if m.antecedent else None,
                        framing=Framing(
                            label=label,
                            term=term,
                            voice=decision.voice,  # type: ignore[arg-type]
                            speaker=decision.speaker,
                            speaker_text=decision.speaker_text,
                            negated=decision.negated,
                            probs=probs,
                        ),
                    )
                )
            pairs: list[Pair] = []
            if "stance" in tasks:
                for a, b in s.ordered_pairs():
                    probs = stance_by[(di, s.index, a, b)]
                    pairs.append(
                        Pair(
                            source=a,
                            target=b,
                            stance=_argmax(probs),
                            probs=probs,
                            source_mentions=[x.id for x in mentions if x.actor == a],
                            target_mentions=[x.id for x in mentions if x.actor == b],
                            via=pair_via(s.mentions, a, b),
                        )
                    )
            out.append(
                Sentence(index=s.index, start=s.start, end=s.end, text=s.text, mentions=mentions, pairs=pairs)
            )
        return DocumentAnnotation(
            doc_id=doc.doc_id,
            text=doc.text,
            model=self.engine.info,
            label_standard=self.standard.version,
            sentences=out,
        )

    def _carry_speakers(self, text: str, sentences: list[SentenceCandidates],
                        decisions: list[list[FramingDecision]]) -> None:
        """Speakers across sentence boundaries (§8.4): a quoted or reported term whose sentence names no
        speaker ("He added that …" with an unresolved "he", a quotation with its attribution in the next
        sentence) takes the attribution of the sentence before, else, for a quotation, of the one after."""
        missing = [(si, mi) for si, row in enumerate(decisions) for mi, d in enumerate(row)
                   if d.voice != "author" and d.speaker is None and d.speaker_text is None]
        if not missing and not any(d.speaker_text for row in decisions for d in row):
            return
        attribution = [self.framer.attribution(text, (s.start, s.end), s.mentions) for s in sentences]
        for si, row in enumerate(decisions):
            for mi, d in enumerate(row):
                if d.voice != "author" and d.speaker is None and d.speaker_text and si > 0 \
                        and d.speaker_text.lower() in _STATEMENT_WORDS and attribution[si - 1] != (None, None):
                    # "The statement also accused the occupation …": whoever issued it in the sentence before
                    row[mi] = d = dataclasses.replace(d, speaker=attribution[si - 1][0],
                                                      speaker_text=attribution[si - 1][1])
                if d.voice != "author" and d.speaker is None and d.speaker_text:
                    actor = _titled_speaker(text, sentences[max(0, si - 2):si + 1], d.speaker_text,
                                            self.framer.private_speakers)
                    if actor is not None:  # "the home secretary told Parliament" after "Britain's home secretary"
                        row[mi] = dataclasses.replace(d, speaker=actor, speaker_text=None)
        for si, mi in missing:
            d = decisions[si][mi]
            found = attribution[si - 1] if si > 0 else (None, None)
            if found == (None, None) and d.cue == "quote" and si + 1 < len(sentences):
                found = attribution[si + 1]
            if found != (None, None):
                decisions[si][mi] = dataclasses.replace(d, speaker=found[0], speaker_text=found[1])


# Words a sentence uses for what the previous sentence's speaker issued ("The statement also said …").
_STATEMENT_WORDS = frozenset("the " + noun for noun in STATEMENT_NOUNS)
# A title and the institution its holder heads: "the minister" after "the interior ministry said".
_HEADS = {"minister": "ministry"}


def _titled_speaker(text: str, sentences: Sequence[SentenceCandidates], speaker_text: str,
                    private: frozenset[str] = frozenset()) -> str | None:
    """The actor of an earlier "<mention>'s <title>", "<mention> <title>" or "<title> <official>" whose
    title is the last word of a speaker's own words ("the home secretary" after "Britain's home
    secretary", "the king" after "King Abdullah II"), if exactly one. A word for people who do not speak
    for an actor ("the expert" after "a UN human rights expert") refers back to no actor."""
    words = speaker_text.lower().split()
    if not words or words[0] not in {"the", "this"} or words[-1] in private:
        return None
    title = words[-1]
    found = set()
    for s in sentences:
        for m in s.mentions:
            after = text[m.end:m.end + 40].lower()
            following = re.match(r"(?:['’]s)?((?:\s+[a-z-]+){1,3})", after)
            before = text[max(0, m.start - 30):m.start].lower()
            run = text[max(0, m.start - 40):m.start]  # "Secretary of State Antony Blinken" -> "the secretary"
            if (following and title in following.group(1).split()) or (
                    m.kind == "official" and (re.search(r"\b" + re.escape(title) + r"\s+$", before)
                                              or re.search(r"(?i:\b" + re.escape(title) + r")(?:\s+(?:of|for|the|"
                                                           r"[A-Z][\w-]*))*\s+$", run)
                                              or text[m.start:m.end].lower().split()[0] == title)) or (
                    _HEADS.get(title) == text[m.start:m.end].lower().split()[-1]):  # "the minister": "the ministry"
                found.add(m.actor)  # "Britain's home secretary", "King Abdullah II" -> "the king"
    return found.pop() if len(found) == 1 else None


def rollup(doc: DocumentAnnotation) -> list[dict]:
    """Document-level summary per ordered pair: stance counts and mean probabilities."""
    table: dict[tuple[str, str], dict] = {}
    for s in doc.sentences:
        for p in s.pairs:
            row = table.setdefault(
                (p.source, p.target), {"source": p.source, "target": p.target, "sentences": 0, "counts": {}, "_sum": {}}
            )
            row["sentences"] += 1
            row["counts"][p.stance] = row["counts"].get(p.stance, 0) + 1
            for k, v in (p.probs or {}).items():
                row["_sum"][k] = row["_sum"].get(k, 0.0) + v
    result = []
    for row in table.values():
        sums = row.pop("_sum")
        row["mean_probs"] = {k: v / row["sentences"] for k, v in sums.items()}
        result.append(row)
    return result
