"""Rule-based framing: which lexicon term attaches to a mention, in whose voice, negated or not.

The lexicon tagger is both a baseline (its category is a prediction) and the source of the term
span, voice, speaker and negation that accompany a category predicted by the transformer: the
model says *which* framing, these rules say *where* the term is and *who* says it
(GUIDELINES.md §4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stancelens.model.labelset import LabelStandard
from stancelens.model.registry import RawMention

_TOKEN = re.compile(r"\w+(?:[-']\w+)*|[^\w\s]")
_ARTICLES = {"a", "an", "the", "as", "its", "their", "his", "her"}
_COPULA = {"is", "was", "are", "were", "be", "been", "being", "remains", "remained", "becomes", "became"}
_QUOTE_CHARS = "\"“”«»"


@dataclass(frozen=True)
class TermMatch:
    start: int
    end: int
    text: str
    category: str


@dataclass(frozen=True)
class FramingDecision:
    label: str
    term: TermMatch | None
    voice: str
    speaker: str | None
    negated: bool
    candidates: tuple[str, ...]  # categories of every term attached to the mention


class LexiconFramer:
    """Attach lexicon terms to mentions (premodifier, head, apposition, predicate, descriptor)."""

    def __init__(self, standard: LabelStandard):
        self.standard = standard
        self.term_category: dict[str, str] = {}
        for category in standard.framing_priority:
            for term in standard.framing_terms.get(category, ()):
                self.term_category.setdefault(term.lower(), category)
        ordered = sorted(self.term_category, key=len, reverse=True)
        self._term_re = re.compile(
            r"(?<!\w)(?:" + "|".join(re.escape(t) for t in ordered) + r")(?!\w)", re.IGNORECASE
        )
        self._naming = {v.lower() for v in standard.naming_verbs}
        self._speech = {v.lower() for v in standard.speech_verbs}
        self._negation = {v.lower() for v in standard.negation_cues}
        self._rank = {c: i for i, c in enumerate(standard.framing_priority)}
        self._last: tuple | None = None

    # -- public --------------------------------------------------------------------------------
    def terms(self, text: str, start: int, end: int) -> list[TermMatch]:
        return [
            TermMatch(m.start(), m.end(), m.group(), self.term_category[m.group().lower()])
            for m in self._term_re.finditer(text, start, end)
        ]

    def frame_sentence(
        self, text: str, sentence: tuple[int, int], mentions: list[RawMention]
    ) -> list[FramingDecision]:
        s0, s1 = sentence
        terms, tokens = self._prepared(text, s0, s1)
        decisions = []
        for mention in mentions:
            attached = self._attached_terms(text, mention, mentions, terms, tokens)
            if not attached:
                decisions.append(FramingDecision("none", None, "author", None, False, ()))
                continue
            best = min(attached, key=lambda t: (self._rank.get(t.category, 99), -len(t.text)))
            voice, speaker = self._voice(text, sentence, best, mention, mentions, tokens)
            negated = self._negated(best, mention, tokens)
            decisions.append(
                FramingDecision(best.category, best, voice, speaker, negated, tuple(t.category for t in attached))
            )
        return decisions

    def term_for(
        self, text: str, sentence: tuple[int, int], mention: RawMention, mentions: list[RawMention], category: str
    ) -> FramingDecision:
        """Term, voice and negation for a category chosen elsewhere (the transformer's prediction)."""
        if category == "none":
            return FramingDecision("none", None, "author", None, False, ())
        s0, s1 = sentence
        terms, tokens = self._prepared(text, s0, s1)
        attached = [t for t in self._attached_terms(text, mention, mentions, terms, tokens) if t.category == category]
        if not attached:
            return FramingDecision(category, None, "author", None, False, ())
        best = max(attached, key=lambda t: len(t.text))
        voice, speaker = self._voice(text, sentence, best, mention, mentions, tokens)
        return FramingDecision(category, best, voice, speaker, self._negated(best, mention, tokens), (category,))

    def _prepared(self, text: str, s0: int, s1: int) -> tuple[list[TermMatch], list[tuple[int, int, str]]]:
        """Terms and tokens of one sentence. The predictor asks once per mention of the same
        sentence in a row, so the last sentence's result is kept."""
        key = (s0, s1, text[s0:s1])
        if self._last is None or self._last[0] != key:
            tokens = [(s0 + m.start(), s0 + m.end(), m.group()) for m in _TOKEN.finditer(text[s0:s1])]
            self._last = (key, (self.terms(text, s0, s1), tokens))
        return self._last[1]

    # -- attachment ----------------------------------------------------------------------------
    @staticmethod
    def _token_index(tokens: list[tuple[int, int, str]], offset: int) -> int:
        for i, (a, b, _) in enumerate(tokens):
            if a <= offset < b:
                return i
            if a > offset:
                return i
        return len(tokens)

    def _attached_terms(self, text, mention, mentions, terms, tokens) -> list[TermMatch]:
        if mention.kind == "descriptor":
            return [t for t in terms if mention.start <= t.start and t.end <= mention.end]
        others = [m for m in mentions if m is not mention]
        m_first = self._token_index(tokens, mention.start)
        m_last = self._token_index(tokens, mention.end - 1)
        # A possessive counts like a premodifier: "Abbas' government", "Hamas's militants".
        after = m_last + 1
        if after < len(tokens) and tokens[after][2] in {"'s", "’s", "'", "’"}:
            after += 1
        # Coordinated demonyms share the head: "the Israeli and Palestinian authorities".
        if (
            after + 1 < len(tokens)
            and tokens[after][2] in {"and", "or"}
            and any(o.start == tokens[after + 1][0] and o.kind == "demonym" for o in others)
        ):
            partner = next(o for o in others if o.start == tokens[after + 1][0])
            after = self._token_index(tokens, partner.end - 1) + 1
        attached = []
        for term in terms:
            if any(o.start <= term.start < o.end for o in mentions):
                continue  # a term inside another mention (a descriptor) is that mention's
            t_first = self._token_index(tokens, term.start)
            t_last = self._token_index(tokens, term.end - 1)
            between_after = tokens[after:t_first]
            between_before = tokens[t_last + 1 : m_first]
            if t_first >= after and len(between_after) <= 1 and self._clean(between_after, [
                o for o in others if not (tokens[m_last + 1 : after] and o.start >= tokens[m_last + 1][0]
                                          and o.end <= tokens[after - 1][1])
            ]):
                # head/postmodifier: "Hamas radicals", "Hamas terrorist group", "Russian government";
                # unless a name follows the term, which then owns it ("Palestinian militant group Hamas").
                nxt = t_last + 1
                if nxt < len(tokens) and any(o.start == tokens[nxt][0] for o in others):
                    continue
                attached.append(term)
            elif t_last < m_first and not between_before:
                attached.append(term)  # premodifier: "the militant Hamas group", "militant group Hamas"
            elif t_first > after and self._apposition(tokens[after:t_first], others):
                attached.append(term)  # "Hamas, a terrorist organisation"
            elif t_first > after and self._predicate(tokens, m_first, after, t_first, others):
                attached.append(term)  # "called Hamas terrorists", "Hamas is a terrorist group"
        return attached

    @staticmethod
    def _clean(between: list[tuple[int, int, str]], others: list[RawMention]) -> bool:
        return all(tok[2].isalnum() and not any(o.start <= tok[0] < o.end for o in others) for tok in between)

    @staticmethod
    def _apposition(between: list[tuple[int, int, str]], others: list[RawMention]) -> bool:
        if not between or between[0][2] not in {",", "—", "–", "("}:
            return False
        rest = between[1:]
        if not rest or rest[0][2].lower() not in {"a", "an", "the"} or len(rest) > 4:
            return False
        return all(t[2].isalpha() and not any(o.start <= t[0] < o.end for o in others) for t in rest)

    def _predicate(self, tokens, m_first, after, t_first, others) -> bool:
        between = [t[2].lower() for t in tokens[after:t_first]]
        if len(between) > 5 or any(not w.isalpha() for w in between):
            return False
        if any(any(o.start <= t[0] < o.end for o in others) for t in tokens[after:t_first]):
            return False
        before = [t[2].lower() for t in tokens[max(0, m_first - 3) : m_first]]
        naming_before = bool(before) and (
            before[-1] in self._naming or " ".join(before[-2:]) in self._naming
        )
        copula_after = bool(between) and (between[0] in _COPULA or between[:2] in (["is", "not"], ["was", "not"]))
        filler = {"as", "a", "an", "the", "not", "no", "longer", "still", "merely", "just", "being", "of"}
        if naming_before:
            return all(w in filler or w.isalpha() for w in between) and len(between) <= 4
        if copula_after:
            return all(w in filler | _COPULA or w.isalpha() for w in between[1:]) and len(between) <= 5
        return False

    # -- voice and negation --------------------------------------------------------------------
    def _voice(self, text, sentence, term, mention, mentions, tokens) -> tuple[str, str | None]:
        s0, _ = sentence
        before = text[s0 : term.start]
        straight = before.count('"')
        curly = before.count("“") - before.count("”") + before.count("«") - before.count("»")
        quoted = straight % 2 == 1 or curly > 0
        m_first = self._token_index(tokens, min(mention.start, term.start))
        window = [t[2].lower() for t in tokens[max(0, m_first - 3) : m_first]]
        naming = any(w in self._naming for w in window) or " ".join(window[-2:]) in self._naming
        if not quoted and not naming:
            return "author", None
        return "quoted", self._speaker(mention, mentions, tokens, naming_at=m_first if naming else None)

    def _speaker(self, mention, mentions, tokens, naming_at) -> str | None:
        if naming_at is not None:
            # The subject before the naming verb: the nearest other mention to its left.
            candidates = [m for m in mentions if m.end <= tokens[naming_at][0] and m.actor != mention.actor]
            if candidates:
                return candidates[-1].actor
        speech_positions = [t[0] for t in tokens if t[2].lower() in self._speech]
        best, best_dist = None, None
        for pos in speech_positions:
            for m in mentions:
                if m.actor == mention.actor or m.kind == "descriptor":
                    continue
                dist = abs(m.start - pos)
                if best_dist is None or dist < best_dist:
                    best, best_dist = m.actor, dist
        return best

    def _negated(self, term: TermMatch, mention: RawMention, tokens) -> bool:
        t_first = self._token_index(tokens, term.start)
        m_first = self._token_index(tokens, mention.start)
        start = max(0, min(t_first, m_first) - 5)
        allowed = _ARTICLES | _COPULA | self._naming | {"to", "does", "do", "did", "consider", "as", "of",
                                                       "longer", "call", "label"}
        for i in range(t_first - 1, start - 1, -1):
            word = tokens[i][2].lower()
            if word in self._negation:
                return True
            inside_mention = mention.start <= tokens[i][0] < mention.end
            if not (word in allowed or inside_mention):
                return False
        return False
