"""Text → sentences → actor mentions → candidate pairs and framing items, the input of every engine.

Engines (lexicon rules, TF-IDF, the transformer) only ever see `PairItem`s and `MentionItem`s: a
sentence text with character spans relative to the sentence. That keeps the one-pass-per-sentence
encoding possible (all items of a sentence share its text) and lets a user who brings their own
entities (`/v1/stance`) reach the same classifier.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stancelens.model.registry import RawMention, Registry
from stancelens.model.sentences import split_sentences


@dataclass(frozen=True)
class MentionItem:
    """One mention to frame: spans are relative to the sentence text."""

    sentence: str
    span: tuple[int, int]
    actor: str
    kind: str = "name"
    # Spans of every actor mention in the sentence, sorted: the encoder marks them all, so the
    # pairs and mentions of one sentence share one encoder pass.
    all_spans: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class PairItem:
    """One ordered pair to classify: every mention span of source and target in the sentence."""

    sentence: str
    source_spans: tuple[tuple[int, int], ...]
    target_spans: tuple[tuple[int, int], ...]
    source: str
    target: str
    # Spans of every actor mention in the sentence, sorted (see MentionItem.all_spans).
    all_spans: tuple[tuple[int, int], ...] = ()
    # Whose stance definition the answer follows: "news" (our codebook: words and deeds) or "dse"
    # (DSE's annotators labelled opinions only). Only evaluation on DSE asks for "dse".
    convention: str = "news"


@dataclass
class SentenceCandidates:
    index: int
    start: int
    end: int
    text: str
    mentions: list[RawMention] = field(default_factory=list)
    _spans: tuple | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def actors(self) -> list[str]:
        seen: list[str] = []
        for m in self.mentions:
            if m.actor not in seen:
                seen.append(m.actor)
        return seen

    def ordered_pairs(self, actors: set[str] | None = None) -> list[tuple[str, str]]:
        names = [a for a in self.actors if actors is None or a in actors]
        return [(a, b) for a in names for b in names if a != b]

    @property
    def all_spans(self) -> tuple[tuple[int, int], ...]:
        """Every mention's span in sentence offsets, sorted (computed once per list of mentions)."""
        key = (id(self.mentions), len(self.mentions))
        if self._spans is None or self._spans[0] != key:
            self._spans = (key, tuple(sorted((m.start - self.start, m.end - self.start) for m in self.mentions)))
        return self._spans[1]

    def mention_item(self, mention: RawMention) -> MentionItem:
        span = (mention.start - self.start, mention.end - self.start)
        return MentionItem(self.text, span, mention.actor, mention.kind, self.all_spans)

    def pair_item(self, source: str, target: str) -> PairItem:
        def spans(actor: str) -> tuple[tuple[int, int], ...]:
            return tuple((m.start - self.start, m.end - self.start) for m in self.mentions if m.actor == actor)

        return PairItem(self.text, spans(source), spans(target), source, target, self.all_spans)


def prepare_document(text: str, registry: Registry) -> list[SentenceCandidates]:
    sentences = split_sentences(text)
    mentions = registry.find_mentions(text, [(s.start, s.end) for s in sentences])
    return [
        SentenceCandidates(i, s.start, s.end, s.text, list(ms)) for i, (s, ms) in enumerate(zip(sentences, mentions))
    ]
