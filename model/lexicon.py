"""The lexicon rules engine: transparent cue words decide stance, the framing lexicon decides framing.

A baseline and a fallback that needs no trained model (`--model lexicon`); it classifies the same
prepared items as every other engine, through the same `Predictor`."""

from __future__ import annotations

import re
from collections.abc import Sequence

from stancelens.model.annotation import ModelInfo
from stancelens.model.framing import LexiconFramer
from stancelens.model.labelset import LabelStandard, default_label_standard
from stancelens.model.pipeline import MentionItem, PairItem
from stancelens.model.registry import RawMention, Registry, default_registry

# -- the lexicon baseline engine ---------------------------------------------------------------
_SUPPORT = re.compile(
    r"\b(support(?:s|ed|ing)?|back(?:s|ed|ing)|praise[sd]?|prais(?:ing)|hail(?:s|ed)?|welcome[sd]?|"
    r"endorse[sd]?|aid|assist(?:s|ed|ance)?|help(?:s|ed)?|solidarity|thank(?:s|ed)?|gratitude|ally|allies|"
    r"alliance|in favou?r of|recogni[sz]e[sd]?|arm(?:s|ed)|deliver(?:s|ed|y)?|legitimate)\b",
    re.IGNORECASE,
)
_OPPOSE = re.compile(
    r"\b(condemn(?:s|ed|ation)?|critici[sz](?:e|es|ed|ing|m)|blame[sd]?|denounce[sd]?|sanction(?:s|ed)?|"
    r"attack(?:s|ed|ing)?|strike[sd]?|kill(?:s|ed|ing)?|downgrad(?:e|es|ed|ing)|shun(?:s|ned)?|accuse[sd]?|"
    r"refus(?:e|es|ed|al)|reject(?:s|ed)?|pressure[sd]?|dissatisfaction|discontent|anti|against|threat(?:en|ens|ened)?|"
    r"siege|withh[oe]ld|ban(?:s|ned)?|terrorists?|hostile|invade[sd]?|bomb(?:s|ed|ing)?)\b",
    re.IGNORECASE,
)
_NEGATION = re.compile(r"\b(not|no|never|n't|without)\b", re.IGNORECASE)


class LexiconEngine:
    """Transparent rules: cue words between source and target decide stance; the lexicon decides framing."""

    def __init__(self, standard: LabelStandard | None = None, registry: Registry | None = None):
        self.standard = standard or default_label_standard()
        self.registry = registry or default_registry()
        self.framer = LexiconFramer(self.standard)
        self.info = ModelInfo(name="lexicon", version=self.standard.version, hash=None)
        self._cues: dict[str, str | None] = {}

    def with_registry(self, registry: Registry) -> LexiconEngine:
        """These rules over another actor registry (and its framing terms): an actor set chosen at run time."""
        return LexiconEngine(registry.standard, registry)

    def _probs(self, labels: Sequence[str], chosen: str, confidence: float = 0.8) -> dict[str, float]:
        rest = (1.0 - confidence) / (len(labels) - 1)
        return {label: (confidence if label == chosen else rest) for label in labels}

    def stance_label(self, item: PairItem) -> str:
        text = item.sentence
        best: tuple[int, str] | None = None
        for s0, s1 in item.source_spans:
            for t0, t1 in item.target_spans:
                # Only spans within 160 characters of each other are read (checked before slicing, so a
                # sentence with hundreds of mentions costs what its nearby pairs cost).
                if s1 <= t0:  # source ... cue ... target (active voice)
                    if t0 - s1 > 160:
                        continue
                    window = text[s1:t0]
                    passive = False
                elif t1 <= s0:  # target ... cue ... by source (passive voice)
                    if s0 - t1 > 160:
                        continue
                    window = text[t1:s0]
                    if not re.search(r"\bby\b", window):
                        continue
                    passive = True
                else:
                    continue
                found = self._window_cue(window)
                if found is None:
                    continue
                label = found
                distance = len(window) + (20 if passive else 0)
                if best is None or distance < best[0]:
                    best = (distance, label)
        return best[1] if best else "neutral"

    def _window_cue(self, window: str) -> str | None:
        """The label of the first cue in the text between two mentions (oppose on a tie; neutral when a
        negation just precedes it), None without a cue. Repeated windows are read once."""
        if window in self._cues:
            return self._cues[window]
        cues = [(m.start(), label) for m, label in ((_OPPOSE.search(window), "oppose"),
                                                  (_SUPPORT.search(window), "support")) if m]
        found = None
        if cues:
            pos, found = min(cues)
            if _NEGATION.search(window[max(0, pos - 12) : pos]):
                found = "neutral"
        if len(self._cues) > 100_000:
            self._cues.clear()
        self._cues[window] = found
        return found

    def classify(
        self, pairs: Sequence[PairItem], mentions: Sequence[MentionItem]
    ) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
        return self.stance_probs(pairs), self.framing_probs(mentions)

    def stance_probs(self, items: Sequence[PairItem]) -> list[dict[str, float]]:
        return [self._probs(self.standard.stance, self.stance_label(i)) for i in items]

    def framing_probs(self, items: Sequence[MentionItem]) -> list[dict[str, float]]:
        out = []
        # Per sentence: its mentions, and the rules' decisions for all of them (computed once).
        cache: dict[tuple, tuple[list[RawMention], dict[tuple[int, int], str]]] = {}
        for item in items:
            key = (item.sentence, item.all_spans)
            if key not in cache:
                found = self.registry.find_mentions(item.sentence, [(0, len(item.sentence))])[0]
                # Mentions the document found and this sentence alone does not (a descriptor resolved
                # through an earlier sentence) still own the terms inside them.
                known = {(m.start, m.end) for m in found}
                found = sorted([*found, *(RawMention(a, b, item.sentence[a:b], "", "other", 0)
                                          for a, b in item.all_spans if (a, b) not in known)],
                               key=lambda m: m.start)
                decisions = self.framer.frame_sentence(item.sentence, (0, len(item.sentence)), found)
                cache[key] = (found, {(m.start, m.end): d.label for m, d in zip(found, decisions)
                                      if m.kind != "other"})
            found, labels = cache[key]
            label = labels.get(item.span)
            if label is None:  # a mention the registry does not find (given by the caller)
                mention = RawMention(item.span[0], item.span[1], item.sentence[item.span[0] : item.span[1]],
                                     item.actor, item.kind, 0)
                mentions = sorted([*(m for m in found if (m.start, m.end) != item.span), mention],
                                  key=lambda m: m.start)
                label = self.framer.frame_sentence(item.sentence, (0, len(item.sentence)), mentions)[
                    mentions.index(mention)].label
            out.append(self._probs(self.standard.framing, label))
        return out
