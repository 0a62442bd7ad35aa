"""Rule-based framing: which lexicon term attaches to a mention, in whose voice, negated or not.

The lexicon tagger is both a baseline (its category is a prediction) and the source of the term
span, voice, speaker and negation that accompany a category predicted by the transformer: the
model says *which* framing, these rules say *where* the term is and *who* says it
(GUIDELINES.md §4).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
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
        # How far from a mention a term may start and still attach: five tokens past it (apposition,
        # predicate), or the longest term's length before it (premodifier), plus one of slack.
        longest = max((len(_TOKEN.findall(t)) for t in self.term_category), default=1)
        self._reach = max(6, longest + 1)
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
        view = self._view(text, sentence, mentions)
        decisions = []
        for index, mention in enumerate(mentions):
            attached = self._attached_terms(view, index, mention)
            if not attached:
                decisions.append(FramingDecision("none", None, "author", None, False, ()))
                continue
            best = min(attached, key=lambda t: (self._rank.get(t.category, 99), -len(t.text)))
            voice, speaker = self._voice(view, best, index, mention)
            negated = self._negated(view, best, mention)
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
        view = self._view(text, sentence, mentions)
        index = next(i for i, m in enumerate(mentions) if m is mention)
        attached = [t for t in self._attached_terms(view, index, mention) if t.category == category]
        if not attached:
            return FramingDecision(category, None, "author", None, False, ())
        best = max(attached, key=lambda t: len(t.text))
        voice, speaker = self._voice(view, best, index, mention)
        return FramingDecision(category, best, voice, speaker, self._negated(view, best, mention), (category,))

    def _view(self, text: str, sentence: tuple[int, int], mentions: list[RawMention]) -> _SentenceView:
        """The sentence's tokens and terms (kept while the predictor asks about the same sentence) and
        which mentions cover each token (kept while it asks about the same mentions)."""
        s0, s1 = sentence
        key = (s0, s1, text[s0:s1])
        if self._last is None or self._last[0] != key:
            tokens = [(s0 + m.start(), s0 + m.end(), m.group()) for m in _TOKEN.finditer(text[s0:s1])]
            self._last = (key, _Sentence(text, sentence, tokens, self.terms(text, s0, s1)), None)
        key_, base, view = self._last
        if view is None or view.mentions is not mentions or len(view.mentions) != len(mentions):
            view = _SentenceView(base, mentions)
            self._last = (key_, base, view)
        return view

    # -- attachment ----------------------------------------------------------------------------
    def _attached_terms(self, view: _SentenceView, index: int, mention: RawMention) -> list[TermMatch]:
        if mention.kind == "descriptor":
            return [t for t in view.base.terms if mention.start <= t.start and t.end <= mention.end]
        tokens = view.base.tokens
        mentions = view.mentions
        m_first = view.base.token_index(mention.start)
        m_last = view.base.token_index(mention.end - 1)
        # A possessive counts like a premodifier: "Abbas' government", "Hamas's militants".
        after = m_last + 1
        if after < len(tokens) and tokens[after][2] in {"'s", "’s", "'", "’"}:
            after += 1
        # Coordinated demonyms share the head: "the Israeli and Palestinian authorities".
        if after + 1 < len(tokens) and tokens[after][2] in {"and", "or"}:
            there = [i for i in view.starting_at(tokens[after + 1][0]) if i != index]
            if any(mentions[i].kind == "demonym" for i in there):
                after = view.base.token_index(mentions[there[0]].end - 1) + 1
        # Mentions lying in the possessive / coordination gap do not block the head that follows it.
        gap = set()
        if tokens[m_last + 1 : after]:
            g0, g1 = tokens[m_last + 1][0], tokens[after - 1][1]
            gap = {i for i, o in enumerate(mentions) if i != index and o.start >= g0 and o.end <= g1}
        attached = []
        # Every way a term attaches puts it within a few tokens of the mention (premodifier: right before
        # it; head: at most one token after; apposition and predicate: at most five): only those are tried.
        for term in view.base.terms_between(max(0, m_first - self._reach), after + self._reach):
            if view.covered(term.start, ()):
                continue  # a term inside another mention (a descriptor) is that mention's
            t_first = view.base.token_index(term.start)
            t_last = view.base.token_index(term.end - 1)
            between_after = tokens[after:t_first]
            between_before = tokens[t_last + 1 : m_first]
            if t_first >= after and len(between_after) <= 1 and self._clean(view, between_after, {index} | gap):
                # head/postmodifier: "Hamas radicals", "Hamas terrorist group", "Russian government";
                # unless a name follows the term, which then owns it ("Palestinian militant group Hamas").
                nxt = t_last + 1
                if nxt < len(tokens) and any(i != index for i in view.starting_at(tokens[nxt][0])):
                    continue
                attached.append(term)
            elif t_last < m_first and not between_before:
                attached.append(term)  # premodifier: "the militant Hamas group", "militant group Hamas"
            elif t_first > after and self._apposition(view, tokens[after:t_first], {index}):
                attached.append(term)  # "Hamas, a terrorist organisation"
            elif t_first > after and self._predicate(view, m_first, after, t_first, {index}):
                attached.append(term)  # "called Hamas terrorists", "Hamas is a terrorist group"
        return attached

    @staticmethod
    def _clean(view: _SentenceView, between: list[tuple[int, int, str]], excluded: set[int]) -> bool:
        return all(tok[2].isalnum() and not view.covered(tok[0], excluded) for tok in between)

    @staticmethod
    def _apposition(view: _SentenceView, between: list[tuple[int, int, str]], excluded: set[int]) -> bool:
        if not between or between[0][2] not in {",", "—", "–", "("}:
            return False
        rest = between[1:]
        if not rest or rest[0][2].lower() not in {"a", "an", "the"} or len(rest) > 4:
            return False
        return all(t[2].isalpha() and not view.covered(t[0], excluded) for t in rest)

    def _predicate(self, view: _SentenceView, m_first: int, after: int, t_first: int, excluded: set[int]) -> bool:
        tokens = view.base.tokens
        between = [t[2].lower() for t in tokens[after:t_first]]
        if len(between) > 5 or any(not w.isalpha() for w in between):
            return False
        if any(view.covered(t[0], excluded) for t in tokens[after:t_first]):
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
    def _voice(self, view: _SentenceView, term: TermMatch, index: int, mention: RawMention) -> tuple[str, str | None]:
        quoted = view.base.inside_quote(term.start)
        tokens = view.base.tokens
        m_first = view.base.token_index(min(mention.start, term.start))
        window = [t[2].lower() for t in tokens[max(0, m_first - 3) : m_first]]
        naming = any(w in self._naming for w in window) or " ".join(window[-2:]) in self._naming
        if not quoted and not naming:
            return "author", None
        return "quoted", self._speaker(view, mention, naming_at=m_first if naming else None)

    def _speaker(self, view: _SentenceView, mention: RawMention, naming_at: int | None) -> str | None:
        mentions, tokens = view.mentions, view.base.tokens
        if naming_at is not None:
            # The subject before the naming verb: the nearest other mention to its left.
            candidates = [m for m in mentions if m.end <= tokens[naming_at][0] and m.actor != mention.actor]
            if candidates:
                return candidates[-1].actor
        # The mention nearest to a speech verb (ties: the earlier verb, then the earlier mention).
        best: tuple[int, int, int] | None = None
        for k, m in enumerate(mentions):
            if m.actor == mention.actor or m.kind == "descriptor":
                continue
            near = view.nearest_speech(m.start, self._speech)
            if near is not None and (best is None or (near[0], near[1], k) < best):
                best = (near[0], near[1], k)
        return mentions[best[2]].actor if best is not None else None

    def _negated(self, view: _SentenceView, term: TermMatch, mention: RawMention) -> bool:
        tokens = view.base.tokens
        t_first = view.base.token_index(term.start)
        m_first = view.base.token_index(mention.start)
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


class _Sentence:
    """One sentence's tokens and lexicon terms, indexed for lookups in O(log n)."""

    def __init__(self, text: str, sentence: tuple[int, int], tokens: list[tuple[int, int, str]],
                 terms: list[TermMatch]):
        self.text, self.sentence, self.tokens, self.terms = text, sentence, tokens, terms
        self.starts = [t[0] for t in tokens]
        self.ends = [t[1] for t in tokens]
        self.term_starts = [t.start for t in terms]
        self._quotes: tuple[list[int], list[int]] | None = None
        self._speech: tuple[frozenset, list[int]] | None = None

    def token_index(self, offset: int) -> int:
        """The token holding `offset`, else the first token after it, else len(tokens)."""
        i = bisect_right(self.starts, offset) - 1
        if i >= 0 and offset < self.ends[i]:
            return i
        return i + 1

    def terms_between(self, first_token: int, last_token: int) -> list[TermMatch]:
        """Terms that start within tokens first_token..last_token, in order."""
        if not self.tokens or first_token >= len(self.tokens):
            return []
        lo = self.starts[first_token]
        hi = self.ends[min(last_token, len(self.tokens) - 1)]
        return self.terms[bisect_left(self.term_starts, lo) : bisect_left(self.term_starts, hi)]

    def inside_quote(self, offset: int) -> bool:
        """Whether `offset` lies after an unclosed quotation mark of the sentence."""
        if self._quotes is None:
            s0, s1 = self.sentence
            straight, curly = [0], [0]
            for ch in self.text[s0:s1]:
                straight.append(straight[-1] + (ch == '"'))
                curly.append(curly[-1] + (ch in "“«") - (ch in "”»"))
            self._quotes = (straight, curly)
        straight, curly = self._quotes
        k = offset - self.sentence[0]
        return straight[k] % 2 == 1 or curly[k] > 0

    def speech_positions(self, verbs: set[str]) -> list[int]:
        key = frozenset(verbs)
        if self._speech is None or self._speech[0] != key:
            self._speech = (key, [t[0] for t in self.tokens if t[2].lower() in verbs])
        return self._speech[1]


class _SentenceView:
    """A sentence with one list of mentions: which mentions cover each token, and distances to speech verbs."""

    def __init__(self, base: _Sentence, mentions: list[RawMention]):
        self.base, self.mentions = base, mentions
        self._owners: dict[int, list[int]] = {}
        self._starting: dict[int, list[int]] = {}
        for i, m in enumerate(mentions):
            self._starting.setdefault(m.start, []).append(i)
            lo = bisect_left(base.starts, m.start)
            hi = bisect_left(base.starts, m.end)
            for k in range(lo, hi):
                self._owners.setdefault(base.starts[k], []).append(i)

    def starting_at(self, offset: int) -> list[int]:
        return self._starting.get(offset, [])

    def covered(self, offset: int, excluded) -> bool:
        """Whether a mention other than the excluded ones covers `offset` (a token or term start)."""
        owners = self._owners.get(offset)
        if owners is None:
            owners = [i for i, m in enumerate(self.mentions) if m.start <= offset < m.end]
            self._owners[offset] = owners
        return any(i not in excluded for i in owners)

    def nearest_speech(self, offset: int, verbs: set[str]) -> tuple[int, int] | None:
        """(distance, index) of the speech verb nearest to `offset`, the earlier one on a tie."""
        positions = self.base.speech_positions(verbs)
        if not positions:
            return None
        k = bisect_left(positions, offset)
        candidates = [(abs(offset - positions[j]), j) for j in (k - 1, k) if 0 <= j < len(positions)]
        return min(candidates)
