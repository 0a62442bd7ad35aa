"""Who is meant, scored: descriptor and pronoun resolution, three-valued voice and speakers (issue #14).

Reads the frozen resolution test set (labels/resolution/*.jsonl, format in its TASK.md: sentences as
strings, mentions located by span text and occurrence) and compares a predictor's annotation of each
document with it:

- resolution accuracy over every gold descriptor and pronoun line: a resolved line is right when a
  predicted mention over its span names the gold actor; an unresolvable line is right when no
  descriptor or pronoun is predicted over it (never guessed);
- voice accuracy over gold framed mentions that the prediction frames too (three values);
- speaker accuracy over those in quoted or reported voice: the actor id, or, where the gold speaker is
  no registry actor, a `speaker_text` that shares a word with the gold one.

The baseline is the nearest-antecedent rule (a descriptor or pronoun refers to the nearest earlier
name of a compatible actor, given the gold spans) with version 1.0.0's voice (quotation marks or a
naming verb make a term quoted) and speaker rule (the mention nearest to a speech verb).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from stancelens.model.annotation import DocumentAnnotation
from stancelens.model.predictor import DocumentInput, Predictor
from stancelens.model.resolution import ResolutionRules

RESOLVED_KINDS = ("descriptor", "pronoun")


class ResolutionSetError(ValueError):
    """A resolution test file that cannot be read: file, line and what is wrong."""


@dataclass(frozen=True)
class GoldMention:
    start: int
    end: int
    text: str
    sentence: int
    actor: str | None
    kind: str
    framing: str
    voice: str
    speaker: str | None
    speaker_text: str | None
    term: str | None
    occurrence: int = 1


@dataclass(frozen=True)
class GoldDocument:
    doc_id: str
    text: str
    sentence_starts: tuple[int, ...]
    mentions: tuple[GoldMention, ...]


def read_resolution_set(path: str | Path) -> list[GoldDocument]:
    """Documents of a resolution test file, every span located in the text (errors name file and line)."""
    path = Path(path)
    if not path.exists():
        raise ResolutionSetError(f"{path}: no such file; expected a resolution test set such as "
                                 "labels/resolution/descriptors.jsonl")
    documents = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path}, line {number}"
        try:
            doc = json.loads(raw)
            documents.append(_document(doc, where))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ResolutionSetError(f"{where}: expected a document with doc_id, text, sentences and mentions "
                                     f"(labels/resolution/TASK.md), found {type(exc).__name__}: {exc}") from exc
    return documents


def _document(doc: dict, where: str) -> GoldDocument:
    text, starts, at = doc["text"], [], 0
    for k, sentence in enumerate(doc["sentences"]):
        found = text.find(sentence, at)
        if found < 0:
            raise ResolutionSetError(f"{where}: sentence {k} is not in the text after offset {at}; the sentences "
                                     "must appear in order in the text")
        starts.append(found)
        at = found + len(sentence)
    mentions = []
    for m in doc["mentions"]:
        start = _locate(doc["sentences"][m["sentence"]], m["span"], int(m.get("occurrence", 1)), where)
        start += starts[m["sentence"]]
        mentions.append(GoldMention(start, start + len(m["span"]), m["span"], m["sentence"], m.get("actor"),
                                    m.get("kind", "name"), m.get("framing") or "none", m.get("voice") or "author",
                                    m.get("speaker"), m.get("speaker_text"), m.get("term"), int(m.get("occurrence", 1))))
    return GoldDocument(doc["doc_id"], text, tuple(starts), tuple(mentions))


def _locate(sentence: str, span: str, occurrence: int, where: str) -> int:
    hits = [m.start() for m in re.finditer(r"(?<!\w)" + re.escape(span) + r"(?!\w)", sentence)]
    if len(hits) < occurrence:
        raise ResolutionSetError(f"{where}: expected occurrence {occurrence} of {span!r} in its sentence, found "
                                 f"{len(hits)}; fix span or occurrence")
    return hits[occurrence - 1]


# -- scoring ------------------------------------------------------------------------------------
Speech = tuple[str, str | None, str | None]  # voice, speaker, speaker_text


@dataclass(frozen=True)
class ItemReading:
    """One scored item of a resolution set with the system's reading, so that another annotation of the same
    item (training/second_pass.py) can be compared with both. `question` is "refers_to" (a descriptor or
    pronoun line: `gold`/`system` are actor ids or None) or "voice" (a framed mention: `gold`/`system` are
    (voice, speaker, speaker_text); `system` None when the prediction leaves the mention unframed)."""

    doc_id: str
    sentence: int
    span: str
    occurrence: int
    question: str
    group: str
    gold: str | Speech | None
    system: str | Speech | None
    right: bool

    @property
    def key(self) -> tuple[str, int, str, int, str]:
        return self.doc_id, self.sentence, self.span, self.occurrence, self.question


def _reading(doc: GoldDocument, g: GoldMention, question: str, gold, system, right: bool) -> ItemReading:
    group = f"{g.kind}.{'resolved' if g.actor else 'unresolvable'}" if question == "refers_to" else "voice"
    return ItemReading(doc.doc_id, g.sentence, g.text, g.occurrence, question, group, gold, system, right)


def score_resolution(predictor: Predictor, documents: Sequence[GoldDocument],
                     readings: list[ItemReading] | None = None) -> dict:
    """Resolution, voice and speaker accuracy of the predictor, beside the nearest-antecedent baseline.
    A `readings` list, when given, receives every scored item with the system's reading."""
    predicted = predictor.annotate([DocumentInput(d.doc_id, _lines(d)) for d in documents], tasks=("framing",))
    rules = ResolutionRules.from_standard(predictor.standard)
    system, baseline = _Tally(), _Tally()
    for gold, pred in zip(documents, predicted):
        mentions = [m for s in pred.sentences for m in s.mentions]
        names = [m for m in mentions if m.via is None]
        for g in gold.mentions:
            if g.kind in RESOLVED_KINDS:
                over = [m for m in mentions if m.start < g.end and g.start < m.end]
                reading = _system_reading(g, over)
                system.resolution(g, reading)
                if readings is not None:
                    readings.append(_reading(gold, g, "refers_to", g.actor, reading, reading == g.actor))
                baseline.resolution(g, _nearest_antecedent(g, names, predictor, rules, gold))
            if g.framing == "none" or g.actor is None:
                continue
            match = next((m for m in mentions if m.start < g.end and g.start < m.end and m.actor == g.actor), None)
            if match is None or match.framing.label == "none":
                system.unframed += 1
                if readings is not None:
                    readings.append(_reading(gold, g, "voice", (g.voice, g.speaker, g.speaker_text), None, False))
                continue
            system.voice(g, match.framing.voice, match.framing.speaker, match.framing.speaker_text)
            if readings is not None:
                said = (match.framing.voice, match.framing.speaker, match.framing.speaker_text)
                right = said[0] == g.voice and (g.voice == "author" or _same_speaker(g, said[1], said[2]))
                readings.append(_reading(gold, g, "voice", (g.voice, g.speaker, g.speaker_text), said, right))
            base_voice, base_speaker = _old_voice(g, gold, pred, predictor)
            baseline.voice(g, base_voice, base_speaker, None)
        system.spurious += sum(
            1 for m in mentions if m.via == "coreference"
            and not any(g.kind in RESOLVED_KINDS and m.start < g.end and g.start < m.end for g in gold.mentions))
    return {"documents": len(documents), "system": system.report(), "baseline": baseline.report(),
            "baseline_rule": "nearest earlier name of a compatible actor (gold spans given); voice and speaker "
                             "by codebook 1.0.0's rules"}


def _lines(doc: GoldDocument) -> str:
    """The text with a line break (same offsets) after each gold sentence that has no final punctuation:
    a headline stands on its own line in a feed, which the file's single spaces do not show."""
    text = list(doc.text)
    for start in doc.sentence_starts[1:]:
        before = doc.text[:start].rstrip()
        if start > 0 and text[start - 1] == " " and before and before[-1] not in ".!?\"”'’»)":
            text[start - 1] = "\n"
    return "".join(text)


def _system_reading(gold: GoldMention, over) -> str | None:
    resolved = [m for m in over if m.kind in RESOLVED_KINDS or m.via == "coreference"]
    if gold.actor is None:
        return resolved[0].actor if resolved else None
    hit = next((m for m in over if m.actor == gold.actor), None)
    return hit.actor if hit is not None else (over[0].actor if over else None)


def _nearest_antecedent(gold: GoldMention, names, predictor: Predictor, rules: ResolutionRules,
                        doc: GoldDocument) -> str | None:
    """The nearest earlier name of an actor whose kind fits the phrase's head noun or pronoun."""
    word = gold.text.lower().split()[-1]
    kinds: set[str] = set()
    mention_kinds: set[str] = set()
    for head in rules.heads:
        if word in head.nouns:
            kinds |= head.kinds
    if word in rules.pronouns:
        kinds |= rules.pronouns[word]["kinds"]
        mention_kinds |= rules.pronouns[word]["mention_kinds"]
    registry = predictor.registry
    fixed = [m for m in names if m.start < gold.end and gold.start < m.end and m.kind == "descriptor"]
    if fixed:
        return fixed[0].actor
    for m in reversed([m for m in names if m.end <= gold.start]):
        actor = registry.actors.get(m.actor)
        if m.kind in mention_kinds or (actor is not None and actor.kind in kinds and m.kind != "official"):
            return m.actor
    return None


def _old_voice(gold: GoldMention, doc: GoldDocument, pred: DocumentAnnotation, predictor: Predictor):
    """Codebook 1.0.0's voice and speaker: quoted inside quotation marks or after a naming verb, the
    speaker the nearest mention of another actor to a speech verb of the sentence."""
    sentence = next(s for s in pred.sentences if s.start <= gold.start < s.end)
    before = doc.text[sentence.start:gold.start]
    inside = before.count('"') % 2 == 1 or before.count("“") > before.count("”")
    words = re.findall(r"\w+", before.lower())[-3:]
    naming = {v.lower() for v in predictor.standard.naming_verbs}
    if not inside and not any(w in naming for w in words):
        return "author", None
    speech = [m.start() + sentence.start for m in _speech_pattern(tuple(predictor.standard.speech_verbs)).finditer(
        sentence.text)]
    best = None
    for m in sentence.mentions:
        if m.actor == gold.actor or m.via == "coreference" or not speech:
            continue
        distance = min(abs(m.start - p) for p in speech)
        if best is None or distance < best[0]:
            best = (distance, m.actor)
    return "quoted", best[1] if best else None


@lru_cache(maxsize=4)
def _speech_pattern(verbs: tuple[str, ...]) -> re.Pattern:
    return re.compile(r"\b(?:" + "|".join(re.escape(v) for v in verbs) + r")\b")


class _Tally:
    def __init__(self) -> None:
        self.lines: Counter = Counter()
        self.right: Counter = Counter()
        self.voices: list[tuple[str, str]] = []
        self.speakers: list[bool] = []
        self.unframed = 0
        self.spurious = 0

    def resolution(self, gold: GoldMention, actor: str | None) -> None:
        group = f"{gold.kind}.{'resolved' if gold.actor else 'unresolvable'}"
        self.lines[group] += 1
        self.right[group] += actor == gold.actor

    def voice(self, gold: GoldMention, voice: str, speaker: str | None, speaker_text: str | None) -> None:
        self.voices.append((gold.voice, voice))
        if gold.voice in ("quoted", "reported"):
            self.speakers.append(_same_speaker(gold, speaker, speaker_text))

    def report(self) -> dict:
        total = sum(self.lines.values())
        voice_right = sum(g == p for g, p in self.voices)
        confusion: Counter = Counter(f"{g}->{p}" for g, p in self.voices)
        return {
            "resolution_accuracy": round(sum(self.right.values()) / total, 4) if total else None,
            "resolution_lines": total,
            "resolution_by_group": {k: {"lines": n, "accuracy": round(self.right[k] / n, 4)}
                                    for k, n in sorted(self.lines.items())},
            "unlisted_resolved_mentions": self.spurious,
            "voice_accuracy": round(voice_right / len(self.voices), 4) if self.voices else None,
            "voice_mentions": len(self.voices),
            "voice_confusion": dict(sorted(confusion.items())),
            "framed_mentions_not_framed": self.unframed,
            "speaker_accuracy": round(sum(self.speakers) / len(self.speakers), 4) if self.speakers else None,
            "speaker_mentions": len(self.speakers),
        }


def _same_speaker(gold: GoldMention, speaker: str | None, speaker_text: str | None) -> bool:
    return same_speaker((gold.speaker, gold.speaker_text), (speaker, speaker_text))


def same_speaker(reference: tuple[str | None, str | None], other: tuple[str | None, str | None]) -> bool:
    """Two readings of who speaks agree: the same actor id, or, where the reference speaker is no registry
    actor, a `speaker_text` sharing a word with the reference's (none on both sides also agrees)."""
    (speaker, text), (other_speaker, other_text) = reference, other
    if speaker is not None:
        return other_speaker == speaker
    if other_speaker is not None:
        return False
    if text is None:
        return other_text is None
    words = {w for w in re.findall(r"\w+", text.lower()) if w not in {"a", "an", "the", "of"}}
    if not other_text:
        return False
    return bool(words & set(re.findall(r"\w+", other_text.lower())))
