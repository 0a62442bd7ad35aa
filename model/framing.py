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
# Speech verbs whose object is the author's wording ("urged the militant group to …").
_DIRECTIVES = {"urged", "urges", "urge", "urging"}
# Speech verbs whose object is the addressee, not a word of the speaker's ("He told the movement's envoys
# that …", "warned the group that …"): a term in that object is the author's (§8.5, like directives).
_ADDRESSED = {"told", "tells", "tell", "telling", "warned", "warns", "warn", "warning", "assured", "assures",
              "informed", "informs", "reminded", "reminds"}
# Words that open a clause of their own before a speech verb (no closing attribution then).
_CONJUNCTIONS = {"while", "whereas", "and", "but", "although", "though", "as", "because", "when", "after", "since"}
# Speech verbs that take an object and so never close an attribution ("X, which won, denounced the raids").
_NOT_CLOSING = {"accused", "accuses", "accusing", "blamed", "blames", "blaming", "denounced", "denounces",
                "denouncing", "denied", "denies", "denying", "urged", "urges", "charged"}
# What may follow the verb of a closing attribution ('…, the ministry said in a statement.').
_AFTER_ATTRIBUTION = {".", ",", "!", "?", "in", "on", "at", "after", "during", "to", "from", "late", "earlier",
                      "later", "yesterday", "today", "tonight", "last", "this", "reporters", "journalists",
                      "the", "a", "an", "without", "when", "before", "while", "via"}
# Speech verbs that may come before their speaker ('…," said Peskov').
_INVERTIBLE = {"said", "says", "added", "wrote", "asked", "replied", "stated", "declared", "noted", "insisted",
               "continued", "explained", "according"}
# Words that open a clause: a mention right after one is that clause's subject.
_OPENERS = {",", ";", ":", "and", "but", "that", "while", "whereas", "as", "when", "after", "before", "because",
            "a", "an", "the", '"', "“", "(", "—"}
# Words that end a speaker's own words without being part of them ("The king also accused …").
_TRAILING = {"also", "later", "again", "then", "has", "had", "have", "was", "were", "is", "are", "on", "in",
             "at", "earlier", "separately", "further", "meanwhile", "however", "too", "would", "will"}
# Tokens that end the clause of an evaluation verb's "as" phrase.
_CLAUSE_ENDS = {";", ":", ".", "while", "whereas", "but", "although", "though", "—", "–", "(", ")"}
_AUXILIARIES = {"is", "are", "was", "were", "be", "been", "am", "'s", "’s"}
_ADVERBS = {"already", "now", "also", "still", "again", "not", "increasingly", "openly", "even"}
# Words between a demonym and a word for people who speak for no actor ("Syrian state media").
_STATE_OUTLET = {"state", "local", "public", "official"}
# A noun in apposition to what a speaker said, opening the author's relative clause ("…, a charge the group
# rejected").
_CLAIMS = {"claim", "charge", "accusation", "allegation", "assertion", "version", "account", "characterisation",
           "characterization", "description", "demand", "call"}
# What a speaker issues: "The statement also said …" refers back to its issuer (model/predictor.py), and "a
# statement from Hamas's political bureau" is Hamas speaking.
STATEMENT_NOUNS = frozenset({"statement", "communique", "communiqué", "letter", "post"})
_STATEMENTS = STATEMENT_NOUNS | {"statements", "video", "message"}
# Words that make a following speech verb a noun ("no say", "the claims", "his warning").
_NOUN_MARKERS = {"no", "a", "an", "the", "any", "little", "final", "his", "her", "its", "their", "our", "these",
                "those", "such"}
_PREPOSITIONS = {"to", "of", "by", "from", "with", "in", "on", "at", "for", "against", "over", "about"}
_FINITE = {"had", "has", "have", "would", "will", "could", "should", "must", "can", "may", "might", "did", "does"}
# Possessive determiners: "his mandate" opens a clause, but its subject is the mandate, not the owner.
_POSSESSIVE_PRONOUNS = {"his", "its", "their", "her"}
# A word after a private-speaker word that makes the pair the actor's own office ("media office").
_OWN_OFFICE = {"office", "offices", "department", "service", "bureau", "arm", "wing", "unit", "centre", "center",
               "adviser", "advisor", "officer", "spokesman", "spokeswoman", "spokesperson"}
# Tokens that end a speaker's noun phrase.
_BREAKS = {",", ";", ":", "\"", "“", "”", "«", "»", "(", ")", "—", "–", "that", "and", "but", "who", "which"}


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
    voice: str  # author | quoted | reported (GUIDELINES.md §8.4)
    speaker: str | None
    negated: bool
    candidates: tuple[str, ...]  # categories of every term attached to the mention
    speaker_text: str | None = None  # the speaker's words when no registry actor speaks ("an analyst")
    # What made the voice: "quote", "headline", "naming" (a naming verb), "speech" (a speech verb or
    # attribution), None for the author's voice. `legacy_voice` folds it into version 1.0.0's two values.
    cue: str | None = None

    @property
    def legacy_voice(self) -> str:
        """The voice under codebook 1.0.0 (§4.3): naming verbs were quoted, indirect speech the author's."""
        return "quoted" if self.cue in ("quote", "headline", "naming") else "author"


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
        self._titles = {str(t).lower() for t in (standard.resolution or {}).get("person_titles", [])}
        self._private = {str(t).lower() for t in (standard.resolution or {}).get("private_speakers", [])}
        self.private_speakers = frozenset(self._private)  # words for people who speak for no actor
        self._speech = {v.lower() for v in standard.speech_verbs}
        self._evaluation = {v.lower() for v in standard.evaluation_verbs}
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
            voice, speaker, speaker_text, cue = self._voice(view, best, index, mention)
            negated = self._negated(view, best, mention)
            decisions.append(FramingDecision(best.category, best, voice, speaker, negated,
                                             tuple(t.category for t in attached), speaker_text, cue))
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
        voice, speaker, speaker_text, cue = self._voice(view, best, index, mention)
        return FramingDecision(category, best, voice, speaker, self._negated(view, best, mention), (category,),
                               speaker_text, cue)

    def attribution(self, text: str, sentence: tuple[int, int],
                    mentions: list[RawMention]) -> tuple[str | None, str | None]:
        """(speaker, speaker_text) of the sentence's first speech verb outside quotation marks: who
        speaks in it, for a term in a neighbouring sentence that names no speaker."""
        view = self._view(text, sentence, mentions)
        verbs = self._speech_tokens(view.base)
        if not verbs:
            return None, None
        return self._verb_speaker(view, verbs[0], _NO_MENTION)

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
        own: list[TermMatch] = []
        if mention.kind == "descriptor":
            # its own words, and terms predicated of it ("regarded the group as a terrorist body")
            own = [t for t in view.base.terms if mention.start <= t.start and t.end <= mention.end]
        if mention.kind == "pronoun":
            return []  # "it", "their": a pronoun carries no framing term
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
        if mention.kind == "descriptor":
            return own + [t for t in attached if not (mention.start <= t.start < mention.end)
                          and (self._apposition_or_predicate(view, index, mention, t))]
        return attached

    def _apposition_or_predicate(self, view: _SentenceView, index: int, mention: RawMention, term: TermMatch) -> bool:
        """A descriptor takes outside terms only from apposition or a predicate, never as a premodifier
        or head of a neighbouring word."""
        base = view.base
        after = base.token_index(mention.end - 1) + 1
        t_first = base.token_index(term.start)
        m_first = base.token_index(mention.start)
        return t_first > after and (self._apposition(view, base.tokens[after:t_first], {index})
                                    or self._predicate(view, m_first, after, t_first, {index}))

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
            # "is a terrorist group", "was widely seen as a militant movement"; not "was legitimizing a
            # terrorist organization" (a verb's object is not predicated of the subject)
            verbs = [w for w in between[1:] if (w.endswith("ing") or w.endswith("ed")) and w not in self._naming
                     and w not in filler]
            return not verbs and len(between) <= 5
        return False

    # -- voice and negation --------------------------------------------------------------------
    def _voice(self, view: _SentenceView, term: TermMatch, index: int, mention: RawMention):
        """(voice, speaker, speaker_text, cue) of a term (§8.4): direct speech, a headline form, a
        naming verb, indirect speech or an attribution, else the author's."""
        base, tokens = view.base, view.base.tokens
        t_first = base.token_index(term.start)
        if base.inside_quote(term.start):
            speaker, text = self._quote_speaker(view, mention)
            return "quoted", speaker, text, "quote"
        colon = self._headline_colon(base)
        if colon is not None and t_first > colon:
            speaker, text = self._noun_phrase(view, 0, colon, mention)
            return "quoted", speaker, text, "headline"
        m_first = base.token_index(min(mention.start, term.start))
        window = [t[2].lower() for t in tokens[max(0, m_first - 3) : m_first]]
        window = [w if w not in self._naming or k + 1 >= len(window) or window[k + 1] not in {"to", "for", "on"}
                  else "" for k, w in enumerate(window)]  # "repeated calls to expel the movement": no naming
        if any(w in self._naming for w in window) or " ".join(window[-2:]) in self._naming:
            verb = max(i for i in range(max(0, m_first - 3), m_first)
                       if tokens[i][2].lower() in self._naming or i == m_first - 1)
            speaker, text = self._subject_before(view, verb, mention)
            return "reported", speaker, text, "naming"
        evaluation = self._evaluation_as(base, t_first)
        if evaluation is not None:  # "Hamas condemned the decision as a gift to the occupation"
            speaker, text = self._subject_before(view, evaluation, mention)
            return "reported", speaker, text, "evaluation"
        governing = self._naming_in_clause(view, t_first)
        if governing is not None:  # "Hamas called the decision a blatant bias toward the Zionist occupation"
            speaker, text = self._subject_before(view, governing, mention)
            return "reported", speaker, text, "naming"
        for verb in reversed(self._speech_tokens(base)):
            reach = self._reach_of(base, verb, t_first, m_first)
            if reach == "stop":
                break
            if reach == "skip":
                continue
            if verb < t_first and not any(t[2].lower() in _DIRECTIVES for t in base.tokens[verb:t_first]):
                # "X said (that) …", "saying …", "according to X, …"; a naming verb nearer the term governs
                # it ("They vowed …, and Islamic Jihad's spokesman called the raid a crime of …")
                naming = [k for k in range(verb + 1, t_first) if tokens[k][2].lower() in self._naming
                          and not base.inside_quote(tokens[k][0])
                          and (k + 1 >= len(tokens) or tokens[k + 1][2].lower() not in {"for", "on", "off"})
                          and self._own_subject(view, verb, k)]
                if naming:
                    speaker, text = self._subject_before(view, naming[-1], mention)
                    return "reported", speaker, text, "naming"
                speaker, text = self._verb_speaker(view, verb, mention)
                return "reported", speaker, text, "speech"
        for verb in self._speech_tokens(base):
            if verb > t_first and base.tokens[verb][2].lower() not in _NOT_CLOSING \
                    and self._closing_attribution(base, verb, t_first):  # "…, the ministry said."
                speaker, text = self._verb_speaker(view, verb, mention)
                return "reported", speaker, text, "speech"
        return "author", None, None, None

    @staticmethod
    def _reach_of(base: _Sentence, verb: int, t_first: int, m_first: int) -> str | None:
        """Whether a speech verb before a term cannot govern it: "skip" (look at an earlier verb) or "stop"
        (no earlier verb governs it either: the term is the author's), else None."""
        tokens = base.tokens
        relative = base.relative_span(t_first)
        span = base.relative_span(verb)
        if span is not None and span != relative and verb < t_first:
            return "skip"  # "Hezbollah, which the government says has pulled back, …": says governs its clause
        if relative is not None and verb < relative[0]:
            return "stop"  # "…, but Khalil al-Hayya, who heads the group's team, told …": the author's description
        if verb < m_first and any(tokens[i][2] == "," and tokens[i + 1][2].lower() in {"a", "an"}
                                  and tokens[i + 2][2].lower() in _CLAIMS for i in range(verb, m_first - 2)):
            return "stop"  # "Israel said …, an accusation the movement denied": the author's relative clause
        if verb < m_first and tokens[verb][2].lower() in _ADDRESSED and all(
                t[2].lower() in _ARTICLES for t in tokens[verb + 1:m_first]):
            return "skip"  # the addressee of "told", "warned": the author's words for them
        if verb < t_first and tokens[verb][2].lower() == "according" and not any(
                t[2] in _BREAKS for t in tokens[verb + 1:t_first]):
            return "skip"  # "According to the group, …": the attribution's own subject is the author's wording
        return None

    def _naming_in_clause(self, view: _SentenceView, t_first: int) -> int | None:
        """A naming verb that governs a term further into its second object, in the same clause and outside
        quotation marks ("X called the decision a blatant bias toward the occupation"): its token index."""
        tokens = view.base.tokens
        for k in range(t_first - 1, max(-1, t_first - 12), -1):
            word = tokens[k][2].lower()
            if word in _BREAKS or word in {".", "?", "!", "for", "to"} or view.base.inside_quote(tokens[k][0]):
                return None
            if word in self._naming and " " not in word:
                after = tokens[k + 1][2].lower() if k + 1 < len(tokens) else ""
                if after in {"for", "on", "off", "up", "in"}:
                    return None  # "called for", "called on": no naming
                return k
        return None

    def _own_subject(self, view: _SentenceView, verb: int, naming: int) -> bool:
        """Whether a naming verb after a speech verb has a subject of its own: a mention that opens a clause
        between the two verbs ("They vowed …, and Islamic Jihad's spokesman called …")."""
        lo, hi = view.base.tokens[verb][1], view.base.tokens[naming][0]
        return any(lo <= m.start and m.end <= hi and self._opens_clause(view, m) for m in view.mentions)

    def _evaluation_as(self, base: _Sentence, term: int) -> int | None:
        """The evaluation verb whose "as" phrase holds the term ("condemned X as …", "described Y as …"):
        the nearest "as" before the term within its clause, with the verb at most twelve tokens before it."""
        tokens = base.tokens
        for k in range(term - 1, -1, -1):
            word = tokens[k][2].lower()
            if word in _CLAUSE_ENDS or base.inside_quote(tokens[k][0]) != base.inside_quote(tokens[term][0]):
                return None
            if word in self._speech or word in _DIRECTIVES or (word in {"and", "but"} and k > 0
                                                                  and tokens[k - 1][2] == ","):
                return None  # "… as illegitimate, and a spokesman for Fatah replied that …": a new clause
            if word == "as":
                for v in range(k - 1, max(-1, k - 13), -1):  # twelve tokens: "condemned the EU's new sanctions on … as"
                    if tokens[v][2].lower() in _CLAUSE_ENDS:
                        return None
                    if tokens[v][2].lower() in self._evaluation:
                        return v
                return None
        return None

    def _speech_tokens(self, base: _Sentence) -> list[int]:
        """Token indices of speech verbs outside quotation marks ("according to" counts at "according")."""
        out = []
        for k, tok in enumerate(base.tokens):
            word = tok[2].lower()
            two = word + " " + base.tokens[k + 1][2].lower() if k + 1 < len(base.tokens) else ""
            if (word in self._speech or two in self._speech) and not base.inside_quote(tok[0]) \
                    and not (k > 0 and base.tokens[k - 1][2].lower() in _NOUN_MARKERS):
                out.append(k)  # not a noun: "had no say over", "rejected the claims"
        return out

    @staticmethod
    def _headline_colon(base: _Sentence) -> int | None:
        """A headline attribution "X spokesman: …": a colon within the first eight tokens."""
        for k, tok in enumerate(base.tokens[:8]):
            if tok[2] == ":" and not (0 < k < len(base.tokens) - 1 and base.tokens[k - 1][2].isdigit()
                                      and base.tokens[k + 1][2].isdigit()):  # "14:05 — Hezbollah: …"
                return k if k > 0 else None
            if tok[2] in {",", ".", '"', "“"}:
                return None
        return None

    @staticmethod
    def _closing_attribution(base: _Sentence, verb: int, term: int) -> bool:
        """Whether the speech verb sits in a closing attribution of the term: after a comma or a closing
        quote that follows the term, at most six tokens from it, with nothing but its subject between
        (the attribution's own subject, "…, the movement said", is the author's wording)."""
        tokens = base.tokens
        rest = [t[2] for t in tokens[verb + 1:]]
        if rest[:1] == [","] and verb > 0 and tokens[verb - 1][2] != ",":
            rest = []  # a parenthetical attribution: "The Shiite group, analysts say, now faces …"
        if len(rest) > 9 or "that" in rest:
            return False  # '…, X said any pullback would …' opens a clause: no closing attribution
        if rest and rest[0].lower() not in _AFTER_ATTRIBUTION and not rest[0][:1].isupper() \
                and tokens[verb][2].lower() not in {"told", "tells"}:
            return False  # '…, UNRWA said inspectors had found …': the verb opens a clause
        for k in range(verb - 1, max(-1, verb - 8), -1):
            if tokens[k][2] in {",", '"', "”", "—"}:
                span = base.relative_span(k - 1) if tokens[k][2] == "," else None
                if span is not None and span[1] == k and (term > span[0] or span[0] - term <= 4):
                    # "The group, which rules Gaza, said …", "Qatar, which has hosted the group's bureau,
                    # said …": the comma closes a relative clause on the subject, not a quotation
                    return False
                return term < k
            if tokens[k][2].lower() in _CONJUNCTIONS:
                return False  # "…, while an Israeli official said …": a clause of its own
            if not tokens[k][2][:1].isalnum():
                return False
        return False

    def _quote_speaker(self, view: _SentenceView, mention: RawMention):
        """Who speaks a quotation: the attribution outside the quotation marks of the sentence."""
        verbs = self._speech_tokens(view.base)
        if verbs:
            return self._verb_speaker(view, verbs[0], mention)
        colon = self._headline_colon(view.base)
        if colon is not None:
            return self._noun_phrase(view, 0, colon, mention)
        base = view.base
        naming = [k for k, t in enumerate(base.tokens) if t[2].lower() in self._naming and not base.inside_quote(t[0])]
        if naming:  # 'Katz called Erdogan "a dictator who serves the Hamas terror organization"'
            return self._subject_before(view, naming[0], mention)
        end = 0  # 'Arab League ministers condemned "the Zionist occupation's …"': the sentence's subject
        while end < len(base.tokens) and not base.inside_quote(base.tokens[end][0]) and (
                base.tokens[end][2][:1].isupper() or view.covered(base.tokens[end][0], ())):
            end += 1
        return self._noun_phrase(view, 0, end, mention)

    def _verb_speaker(self, view: _SentenceView, verb: int, mention: RawMention):
        """The speaker of a speech verb: the noun phrase before it ("the ministry said"), else the one
        after it ("said Peskov", "according to X"), else the sentence's subject ("…, saying …")."""
        tokens = view.base.tokens
        start = verb
        while start > 0 and verb - start < 10 and tokens[start - 1][2] not in _BREAKS \
                and not view.base.inside_quote(tokens[start - 1][0]):
            start -= 1
        if start == verb and verb > 0 and tokens[verb - 1][2].lower() == "and":
            earlier = [v for v in self._speech_tokens(view.base) if v < verb - 1]
            if earlier:  # "Qassem responded that Abbas had no mandate and accused Fatah of …": Qassem
                return self._verb_speaker(view, earlier[-1], mention)
        if 1 < start < verb and tokens[start - 1][2].lower() in {"which", "who"} and tokens[start - 2][2] == "," \
                and all(t[2].lower() in _FINITE | _COPULA | _ADVERBS or t[2].lower().endswith("ly")
                        for t in tokens[start:verb]):
            owner = [m for m in view.mentions if m.end <= tokens[start - 2][0] and m is not mention]
            if owner and owner[-1].end >= tokens[max(0, start - 5)][0]:  # "Israel's army, which has vowed to …"
                return owner[-1].actor, None
        speaker, text = self._noun_phrase(view, start, verb, mention)
        # '…," said Peskov' (not "…, saying Moscow was …": a participle's subject is the sentence's)
        inverted = (start == verb and verb > 0 and tokens[verb - 1][2] in {",", '"', "”", "»", "—"}
                    and tokens[verb][2].lower() in _INVERTIBLE
                    and mention.start < tokens[verb][0])  # the words come first: after the verb is content
        # ("An Israeli official, speaking on condition of anonymity, said Hezbollah terrorists …")
        if inverted and verb + 1 < len(tokens) and tokens[verb + 1][2].islower() \
                and tokens[verb + 1][2] not in {"the", "a", "an"} and not view.covered(tokens[verb + 1][0], ()):
            inverted = False  # "Its leader, Naim Qassem, said in a speech …": no speaker follows the verb
        according = tokens[verb][2].lower() == "according"
        if speaker is None and text is None and (inverted or according):
            after = verb + 1
            if tokens[verb][2].lower() == "according" and after < len(tokens) and tokens[after][2].lower() == "to":
                after += 1
            end = after
            while end < len(tokens) and end - after < 8 and tokens[end][2] not in _BREAKS | {"."}:
                end += 1
            speaker, text = self._noun_phrase(view, after, end, mention)
        if speaker is None and text is None:
            speaker, text = self._subject_before(view, verb, mention)
        return speaker, text

    def _subject_before(self, view: _SentenceView, verb: int, mention: RawMention):
        """The subject of a verb: for a participle ("…, saying …") the sentence's opening noun phrase,
        else the nearest other mention left of the verb."""
        tokens = view.base.tokens
        if verb <= 0:
            return None, None
        if tokens[verb][2].lower().endswith("ing") and not self._progressive(view.base, verb):
            finite = [v for v in self._speech_tokens(view.base) if v < verb and not tokens[v][2].lower().endswith("ing")]
            if tokens[0][2] in _QUOTE_CHARS and finite:
                return self._verb_speaker(view, finite[0], mention)  # '"…," the mission said, calling Washington …'
            end = 0
            while end < verb and (tokens[end][2][:1].isupper() or view.covered(tokens[end][0], ())
                                  or tokens[end][2].lower() in {"the", "'s", "’s", "of", "-"}):
                end += 1
            if end == 1 and tokens[0][2].lower() in {"a", "an", "the"}:
                # "A senior Iranian official went further, branding …": the phrase runs on to its noun
                while end < verb and (tokens[end][2].isalpha() and tokens[end][2].islower()
                                      and tokens[end][2] not in _FINITE | _COPULA and end < 6
                                      or view.covered(tokens[end][0], ())):
                    end += 1
                while end < verb and tokens[end][2].lower() in self._titles | self._private:
                    end += 1
            return self._noun_phrase(view, 0, end, mention)
        if verb > 1 and tokens[verb - 1][2].lower() in {"that", "which", "who"}:
            start = verb - 1  # "… an Israeli military statement that called the group …": the relative's antecedent
            while start > 0 and verb - 1 - start < 6 and tokens[start - 1][2] not in _BREAKS \
                    and tokens[start - 1][2].lower() not in _PREPOSITIONS:
                start -= 1
            speaker, text = self._noun_phrase(view, start, verb - 1, mention)
            if speaker is not None:
                return speaker, None
        candidates = [m for m in view.mentions if m.end <= tokens[verb][0] and m is not mention
                      and not (m.start <= mention.start < m.end)
                      and view.base.relative_span(view.base.token_index(m.start)) is None]
        if candidates and self._private_speaker(view, candidates[-1]) and self._opens_clause(view, candidates[-1]):
            k = view.base.token_index(candidates[-1].start)
            return self._noun_phrase(view, k, k + 2, mention)  # "Israeli commentators described …"
        if candidates:
            # The nearest mention that opens a clause (its subject), not the object of an earlier verb:
            # "Erdogan accused Israel of genocide and described Hamas as …" -> Erdogan.
            subject = next((m for m in reversed(candidates) if self._opens_clause(view, m)
                            and m.text.lower() not in _POSSESSIVE_PRONOUNS and not self._coordinated(view, m)),
                           candidates[-1])
            k = view.base.token_index(subject.start)
            if k > 0 and tokens[k - 1][2].lower() == "former":  # "a former Israeli adviser described …"
                return self._noun_phrase(view, max(0, k - 2), verb, mention)
            return subject.actor, None
        start = verb  # no mention: the speaker's own words ("An international law professor described …")
        while start > 0 and verb - start < 10 and tokens[start - 1][2] not in _BREAKS:
            start -= 1
        return self._noun_phrase(view, start, verb, mention)

    @staticmethod
    def _coordinated(view: _SentenceView, m: RawMention) -> bool:
        """Whether "and" joins the mention to a mention right before it ("praised Hezbollah and Hamas"): a
        second object, not the subject of a new clause."""
        k = view.base.token_index(m.start)
        tokens = view.base.tokens
        return k >= 2 and tokens[k - 1][2].lower() in {"and", "or"} and any(
            o.end == tokens[k - 2][1] for o in view.mentions)

    @staticmethod
    def _progressive(base: _Sentence, verb: int) -> bool:
        """Whether an -ing verb is finite after an auxiliary ("its allies are already calling …"), not a
        participle whose subject is the sentence's ("…, saying …")."""
        k = verb - 1
        while k >= 0 and (base.tokens[k][2].lower() in _ADVERBS or base.tokens[k][2].lower().endswith("ly")):
            k -= 1
        return k >= 0 and base.tokens[k][2].lower() in _AUXILIARIES

    @staticmethod
    def _opens_clause(view: _SentenceView, m: RawMention) -> bool:
        """Whether only capitalised words (titles, names) stand between a clause opener and the mention."""
        tokens = view.base.tokens
        k = view.base.token_index(m.start) - 1
        while k >= 0 and tokens[k][2][:1].isupper() and tokens[k][2].lower() not in {"the", "a", "an"}:
            k -= 1
        if k > 0 and tokens[k][2].lower() in {"the", "a", "an"} and tokens[k - 1][2].isalpha() \
                and tokens[k - 1][2].islower() and tokens[k - 1][2].lower() not in _OPENERS:
            return False  # "praised the Palestinian cause": an article after a verb or preposition opens no clause
        return k < 0 or tokens[k][2].lower() in _OPENERS

    def _private_speaker(self, view: _SentenceView, m: RawMention) -> bool:
        """A demonym before a word for people who do not speak for the actor ("Israeli commentators"), or
        an actor's possessive before one ("Tehran's allies in Yemen")."""
        tokens = view.base.tokens
        i = view.base.token_index(m.end - 1)
        k = i + 1
        if m.kind != "demonym" and m.text.lower() not in _POSSESSIVE_PRONOUNS:  # "its allies online"
            rest = view.base.text[m.end:tokens[i][1]] if i < len(tokens) else ""
            if not rest and k < len(tokens) and tokens[k][2].lower() in self._private:
                return True  # "UN expert", "Hezbollah supporters"
            if rest not in {"'s", "'"}:  # "Tehran's" is one token; "Tehran’s" three
                if rest or k >= len(tokens) or tokens[k][2] != "’":
                    return False
                k += 2 if k + 1 < len(tokens) and tokens[k + 1][2] == "s" else 1
        if k < len(tokens) and tokens[k][2].lower() in _STATE_OUTLET and k + 1 < len(tokens) \
                and tokens[k + 1][2].lower() in self._private:
            k += 1  # "Syrian state media", "Iranian local media"
        if k + 1 < len(tokens) and tokens[k + 1][2].lower() in _OWN_OFFICE:
            return False  # "the group's media office", "Israel's press service": the actor's own office
        return k < len(tokens) and tokens[k][2].lower() in self._private

    @staticmethod
    def _in_compound(view: _SentenceView, m: RawMention) -> bool:
        """Whether the mention is only part of a hyphenated word ("Amman-based", "Iran-backed")."""
        text = view.base.text
        return (m.end < len(text) and text[m.end] == "-" and text[m.end + 1:m.end + 2].isalpha()) or (
            m.start > 0 and text[m.start - 1] == "-" and text[m.start - 2:m.start - 1].isalpha())

    def _noun_phrase(self, view: _SentenceView, first: int, last: int, mention: RawMention):
        """(actor, None) when the tokens first..last-1 hold a mention other than `mention`, else (None,
        their text) when they look like a speaker ("an analyst"), else (None, None)."""
        tokens = view.base.tokens
        if first >= last:
            return None, None
        s, e = tokens[first][0], tokens[last - 1][1]
        inside = [m for m in view.mentions if s <= m.start and m.end <= e and m is not mention]
        # "Amman-based analyst …", "a pro-Iranian channel": a name inside a hyphenated modifier says where
        # or what the speaker is, not who
        inside = [m for m in inside if not self._in_compound(view, m)]
        lead = [t[2].lower() for t in tokens[first:last] if t[1] <= (inside[0].start if inside else e)]
        if inside and any(w in {"at", "from", "with", "in"} for w in lead) and not any(
                w in self._titles or w.removesuffix("s") in self._titles or w in _STATEMENTS
                for w in lead):  # "officials in London", "a statement from Hamas's political bureau"
            inside = []  # "An analyst at a Doha think tank": a person near the actor, not speaking for it
        if inside and all(self._private_speaker(view, m) for m in inside):
            inside = []  # "Israeli commentators": people the demonym describes, not the state speaking
        if inside and "former" in lead:
            inside = []  # "a former Israeli finance official": no longer speaks for the actor (§2.5)
        if inside:
            # the speaker's own name, else the actor that opens the phrase ("Israel's ambassador in Moscow")
            officials = [m for m in inside if m.kind == "official"]
            return (officials[-1] if officials else inside[0]).actor, None
        words = [t[2] for t in tokens[first:last]]
        if not any(w[:1].isalpha() for w in words) or words[0].lower() in {"it", "he", "she", "they", "we", "i"}:
            return None, None
        while len(words) > 1 and words[-1].lower() in _TRAILING:
            words.pop()
            last -= 1
        text = view.base.text[s:tokens[last - 1][1]].strip()
        return None, text[:100] or None

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


_NO_MENTION = RawMention(-1, -1, "", "", "none", -1)


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
        self._relatives: list[tuple[int, int]] | None = None

    def relative_span(self, k: int) -> tuple[int, int] | None:
        """The non-restrictive relative clause holding token k (", which … ," / ", who … ,"): the token
        indices of its opening and closing commas, or None."""
        if self._relatives is None:
            self._relatives = []
            toks = self.tokens
            for i in range(len(toks) - 1):
                if toks[i][2] == "," and toks[i + 1][2].lower() in {"which", "who", "whose", "whom"}:
                    close = next((j for j in range(i + 2, len(toks)) if toks[j][2] in {",", ";", ":", "—"}), None)
                    if close is not None:
                        self._relatives.append((i, close))
        return next(((a, b) for a, b in self._relatives if a < k < b), None)

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
            # A quotation opened earlier in the paragraph and not yet closed runs on into this sentence.
            paragraph = self.text.rfind("\n", 0, s0) + 1
            opened = self.text.count('"', paragraph, s0) % 2
            curly_open = self.text.count("“", paragraph, s0) + self.text.count("«", paragraph, s0)
            curly_shut = self.text.count("”", paragraph, s0) + self.text.count("»", paragraph, s0)
            straight, curly = [opened], [max(0, curly_open - curly_shut)]
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
