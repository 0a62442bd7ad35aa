"""Who is meant: descriptors and pronouns resolved to registry actors (GUIDELINES.md §8).

The registry finds what names an actor (aliases, officials, institutions, fixed descriptors such as
"the Zionist regime"). This step adds the phrases that refer to an actor without naming it —
descriptors ("the militant group", "a terrorist organization", "the ministry") and pronouns ("it",
"their", "he") — when the codebook's cues make the referent clear, and leaves them out otherwise:

- a descriptor in apposition to a name, predicated of it or named by a naming verb ("Hamas, the
  militant group", "Hamas is a terrorist organization") is that name's framing term, not a mention;
- contrast removes the subject of the descriptor's own clause ("Fatah rivals the militant group");
- a same head noun ("the ministry" after "Russia's Foreign Ministry", "the party" after "the Communist
  Party of Palestine", a capitalised "the Authority" after "the Palestinian Authority") decides first,
  kind agreement ("group" needs an armed group or organisation, "government" a state) next; either way a
  modifier the registry lists among actors' traits admits only actors that have it ("the Lebanese group");
- candidates are read sentence by sentence, nearest first (a descriptor: its own sentence and the
  two before; a pronoun: its own and the one before); the first sentence with a compatible candidate
  decides, and it must hold exactly one actor — recency never breaks a tie (§8.5), except that a
  subject pronoun continues the subject of the sentence before.

Every added mention records its antecedent (the mention it corefers with) and `via="coreference"`.
The rules are plain token rules over the project's own sentences and tokens: no parser, no model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from stancelens.model.labelset import LabelStandard
from stancelens.model.registry import RawMention

# Words, possessive endings as tokens of their own ("the group's" -> "the", "group", "'s"), punctuation.
_TOKEN = re.compile(r"\w+(?:-\w+)*|['’]s(?!\w)|[^\w\s]")
# ("that" is left out: far more often a complementizer, "said that masked fighters", than a determiner)
_DETERMINERS = {"the": "definite", "this": "definite", "a": "indefinite", "an": "indefinite"}
_OPENING_DETERMINERS = {"That": "definite", "These": "definite", "Those": "definite"}  # "That regime is …"
# Words that end a modifier run: a descriptor's modifiers are adjectives and nouns, not these.
_NOT_MODIFIER = {
    "of", "and", "or", "to", "in", "on", "at", "for", "with", "by", "from", "that", "which", "who", "is", "was",
    "are", "were", "its", "their", "his", "her", "the", "a", "an", "this", "said", "says", "not", "has", "had",
    "have", "will", "would", "be", "been", "as", "than", "but", "new", "same", "other", "whole", "entire",
}
_COPULA = {"is", "was", "are", "were", "be", "been", "being", "remains", "remained", "becomes", "became"}
_LINKS = {"not", "no", "longer", "still", "also", "now", "already", "merely", "just", "widely", "seen", "as"}
_PLEONASTIC_AFTER_IT = {
    "likely", "unlikely", "unclear", "clear", "possible", "impossible", "important", "time", "expected",
    "believed", "reported", "feared", "thought", "understood", "hard", "difficult", "necessary", "true",
    "too", "worth", "estimated", "known", "uncertain", "obvious", "said", "raining", "seems", "appears",
}
# "the Iran-backed militia" is not Iran; "the Hamas-led government" is Hamas's (its head frames Hamas).
_OTHER_THAN = {"backed", "allied", "aligned", "sponsored", "funded", "linked", "affiliated", "supported", "armed",
               "financed", "trained", "inspired", "friendly", "leaning", "based"}  # "the Beirut-based group"
# Framing categories no actor uses for itself (§8.5: a speaker is not the referent of its own such term).
# Verbs whose "of" phrase after their object is the charge, not the object's owner.
_CHARGING = {"accused", "accuses", "accuse", "accusing", "suspected", "suspects", "suspect", "convicted",
             "warned", "warns", "cleared", "acquitted"}
# Words before a plural head that make it no bare plural: determiners, quantifiers, possessives.
_NOT_BARE = {"of", "the", "a", "an", "this", "that", "these", "those", "its", "their", "his", "her", "our", "your",
             "my", "some", "many", "several", "other", "such", "all", "both", "few", "more", "most", "no",
             "any", "each", "every", "own"}
# Plural heads that are framing words of their own (not "fighters", "gunmen": people, not a label).
_BARE_HEADS = {"terrorists", "militants", "extremists", "jihadists", "radicals"}
_HOSTILE = ("terrorist", "militant", "extremist", "regime", "occupier")
_ORDINALS = {"first", "second", "third", "fourth", "fifth", "sixth", "latest", "last", "only", "same", "next"}
_CLAUSE_OPENERS = {",", ";", ":", "and", "but", "that", "whose", "which", "who", "while", "as", '"', "“", "the",
                   "(", "—", "–", "when", "after", "before", "because", "if", "since", "although", "though"}
_CLAUSE_BREAKS = {",", ";", ":", "—", "–", "(", ")", '"', "“", "”", "that", "which", "who", "whom", "said",
                  "says", "saying", "told", "after", "before", "while", "when", "because", "but", "as", "if"}


@dataclass(frozen=True)
class HeadClass:
    """Descriptor head nouns and the actor kinds they can refer to (kind agreement, §8.1)."""

    nouns: frozenset[str]
    kinds: frozenset[str]
    plural: bool = False


@dataclass
class ResolutionRules:
    """The data the resolver reads from labels/framing.yaml `resolution:`."""

    heads: tuple[HeadClass, ...] = ()
    pronouns: dict[str, dict] = field(default_factory=dict)  # pronoun -> {kinds, mention_kinds, plural}
    head_of: dict[str, HeadClass] = field(default_factory=dict)  # head noun -> its class

    @classmethod
    def from_standard(cls, standard: LabelStandard) -> ResolutionRules:
        data = standard.resolution or {}
        heads = tuple(
            HeadClass(frozenset(str(n).lower() for n in h["nouns"]), frozenset(h["kinds"]), bool(h.get("plural")))
            for h in data.get("descriptor_heads", [])
        )
        # A word listed twice (an actor set's group beside the model's) refers to the kinds of both.
        head_of: dict[str, HeadClass] = {}
        for h in heads:
            for n in h.nouns:
                known = head_of.get(n)
                head_of[n] = h if known is None else HeadClass(known.nouns | h.nouns, known.kinds | h.kinds,
                                                               known.plural or h.plural)
        pronouns: dict[str, dict] = {}
        for group in data.get("pronouns", []):
            for word in group["words"]:
                listed = pronouns.get(str(word).lower(), {"kinds": frozenset(), "mention_kinds": frozenset()})
                pronouns[str(word).lower()] = {
                    "kinds": listed["kinds"] | frozenset(group.get("kinds", [])),
                    "mention_kinds": listed["mention_kinds"] | frozenset(group.get("mention_kinds", [])),
                    "plural": bool(group.get("plural")) or bool(listed.get("plural")),
                }
        return cls(heads, pronouns, head_of)


@dataclass(frozen=True)
class _Phrase:
    """A descriptor phrase of a sentence, before it is resolved."""

    start: int
    end: int
    head: HeadClass  # the kinds its head noun can refer to (_ANY_KIND for a capitalised head)
    noun: str  # the head noun, for the same-head cue
    named_head: bool = False  # a capitalised head ("the Authority"): only the same-head cue decides
    traits: frozenset[str] = frozenset()  # registry traits among its modifiers ("islamist", "lebanese")
    related: frozenset[str] = frozenset()  # actors of a relation compound ("Russian-backed"): never its referent


@dataclass(frozen=True)
class _Token:
    start: int
    end: int
    text: str

    @property
    def lower(self) -> str:
        return self.text.lower()


class Resolver:
    """Adds resolved descriptor and pronoun mentions to the mentions a registry found."""

    def __init__(self, standard: LabelStandard, actor_kind, actor_traits=None, traits: frozenset[str] = frozenset()):
        self.rules = ResolutionRules.from_standard(standard)
        self.actor_kind = actor_kind  # actor id -> kind (or None for an unknown id)
        # actor id -> its traits; `traits` is every trait of the registry (a modifier outside it restricts nothing)
        self.actor_traits: Callable[[str], frozenset[str]] = actor_traits or (lambda actor: frozenset())
        self._trait_words = traits
        self._head_of = self.rules.head_of
        self._naming = {v.lower() for v in standard.naming_verbs}
        self._terms = {t.lower() for terms in standard.framing_terms.values() for t in terms}
        self._demonym_kinds = {"demonym"}
        self._titles = {str(t).lower() for t in (standard.resolution or {}).get("person_titles", [])}
        # Officials "she"/"her" may refer to; "he"/"his" refer to the other officials (§8.2). Labels saved
        # with a model before the list existed have no key: no gender check, as then.
        listed = (standard.resolution or {}).get("female_officials")
        self._female = None if listed is None else {str(t) for t in listed}
        self._speech = {v.lower() for v in standard.speech_verbs if " " not in v}
        # Terms a speaker does not use for itself: a descriptor carrying one is never the speaker's actor.
        self._hostile = {t.lower() for category in _HOSTILE for t in standard.framing_terms.get(category, ())}
        # Descriptor patterns of framing.yaml or an actor set that refer through an antecedent: extra
        # descriptor phrases, resolved by the same rules with the pattern's kinds.
        self._patterns = [
            (re.compile(r"(?<!\w)(?:" + _cap_the(d["pattern"]) + r")(?!\w)"),
             HeadClass(frozenset(), frozenset(d.get("kinds", ()))))
            for d in standard.descriptors if d.get("refers_to") == "antecedent"
        ]

    # -- public ------------------------------------------------------------------------------
    def resolve(self, text: str, sentences: list[tuple[int, int]],
                per_sentence: list[list[RawMention]]) -> list[list[RawMention]]:
        """`per_sentence` with descriptor and pronoun mentions added (and demonyms a descriptor covers
        removed), each list sorted by position."""
        if not self.rules.heads and not self.rules.pronouns and not self._patterns:
            return per_sentence
        tokens = [[_Token(s0 + m.start(), s0 + m.end(), m.group()) for m in _TOKEN.finditer(text[s0:s1])]
                  for s0, s1 in sentences]
        out: list[list[RawMention]] = []
        described: dict[tuple[int, int], set[str]] = {}  # mention span -> head nouns predicated of it
        for si, found in enumerate(per_sentence):
            found = list(found)
            phrases = self._descriptors(text, tokens[si], found, si, described)
            pronouns = [(t.start, k) for k, t in enumerate(tokens[si]) if t.lower in self.rules.pronouns]
            # Descriptors and pronouns in text order: a pronoun resolved first can be a descriptor's
            # contrast subject ("The Kremlin said it valued the Central Asian country").
            items: list[tuple[int, int, _Phrase | int]] = sorted(
                [(p.start, 0, p) for p in phrases] + [(start, 1, k) for start, k in pronouns], key=lambda x: x[:2])
            for _, _, item in items:
                if isinstance(item, _Phrase):
                    actor, antecedent = self._resolve_descriptor(item, tokens, out, found, si, described)
                    if actor is None:
                        continue
                    found = [m for m in found if not (m.kind in self._demonym_kinds and item.start <= m.start
                                                         and m.end <= item.end)]
                    found.append(RawMention(item.start, item.end, text[item.start:item.end], actor, "descriptor", si,
                                            via="coreference", antecedent=antecedent))
                else:
                    k = item
                    token = tokens[si][k]
                    if self._covered(found, token.start, token.end):
                        continue
                    if token.lower == "it" and self._pleonastic(tokens[si], k):
                        continue
                    actor, antecedent = self._resolve_pronoun(token, k, self.rules.pronouns[token.lower], tokens,
                                                              out, found, si, text)
                    if actor is None:
                        continue
                    found.append(RawMention(token.start, token.end, token.text, actor, "pronoun", si,
                                            via="coreference", antecedent=antecedent))
                found.sort(key=lambda m: m.start)
            out.append(found)
        return out

    # -- descriptors -------------------------------------------------------------------------
    def _descriptors(self, text: str, tokens: list[_Token], found: list[RawMention], si: int,
                     described: dict) -> list[_Phrase]:
        """Every descriptor phrase in the sentence that is not part of a name, an apposition, a predicate or
        a naming verb."""
        result = []
        for k, token in enumerate(tokens):
            kind = _DETERMINERS.get(token.lower) or _OPENING_DETERMINERS.get(token.text)
            if kind is None:
                continue
            j, named_head = None, False
            for i in range(k + 1, min(k + 5, len(tokens))):
                word = tokens[i]
                if word.lower in self._head_of and word.text.islower() and (
                        i + 1 >= len(tokens) or tokens[i + 1].lower not in self._head_of):
                    j = i
                    break
                if not word.text[0].isalpha() or word.lower in _NOT_MODIFIER:
                    break
            if j is None and k + 1 < len(tokens) and self._named_head(tokens, k + 1, found):
                # "the Authority" after "the Palestinian Authority", "the Guards" after "Revolutionary
                # Guards": a capitalised head refers only by repeating a name's head noun (§8.5 same
                # head), never by kind agreement alone.
                j, named_head = k + 1, True
            if j is None:
                continue
            start, end = token.start, tokens[j].end
            head = _ANY_KIND if named_head else self._head_of[tokens[j].lower]
            compound = [i for i in range(k + 1, j) if tokens[i].lower.rsplit("-", 1)[-1] in _OTHER_THAN
                        and any(tokens[i].start <= m.start and m.end <= tokens[i].end for m in found)]
            related = frozenset(m.actor for i in compound for m in found
                                if tokens[i].start <= m.start and m.end <= tokens[i].end)
            if compound:  # "the Iran-backed militia": Iran stays a mention, the phrase starts after it
                start = tokens[compound[-1] + 1].start
            inside = [m for m in found if start <= m.start and m.end <= end]
            if any(self._names_inside(m, head) for m in inside):
                continue  # "the Hamas group", "the Israeli government": the name owns its head noun
            if any(m.start < end and start < m.end and not (start <= m.start and m.end <= end) for m in found):
                continue  # overlaps a name ("the Foreign Ministry")
            modifiers = " ".join(t.lower for t in tokens[k + 1:j + 1])
            # A head that is itself a hostile term frames its phrase ("a regime that bombs hospitals", like
            # "the Kyiv regime" in §8.5); "a group", "a movement" stay plain.
            framed = any(t in self._terms and (t not in self._head_of or t in self._hostile)
                         for t in _ngrams(modifiers))
            if kind == "indefinite" and not framed:
                continue  # "a group", "a state": a new referent, not a mention
            # "the Islamist movement", "the Iran-backed group": modifiers the registry lists as traits
            traits = frozenset(t for t in _ngrams(modifiers) if t in self._trait_words)
            result.append((_Phrase(start, end, head, tokens[j].lower, named_head, traits, related), k, j))
        result.extend(self._bare_plurals(tokens, found, result))
        # A phrase in apposition to, or predicated of, a name or another descriptor is its framing term:
        # "saying the group was a liberation movement".
        phrases = [RawMention(p.start, p.end, "", "", "descriptor", si) for p, _, _ in result]
        neighbours = sorted([*found, *phrases], key=lambda m: m.start)
        kept: list[_Phrase] = []
        for phrase, first, last in result:
            owner = self._owned(tokens, first, last, [m for m in neighbours if m.start != phrase.start], found)
            if owner is None:
                kept.append(phrase)
            else:  # remembered for the same-head cue: "PIJ is a smaller armed faction" … "the faction"
                described.setdefault((owner.start, owner.end), set()).add(phrase.noun)
        s0, s1 = (tokens[0].start, tokens[-1].end) if tokens else (0, 0)
        for regex, head in self._patterns:
            for m in regex.finditer(text, s0, s1):
                a, b = m.span()
                if any(a < p.end and p.start < b for p in kept) or self._covered(
                        [x for x in found if x.kind not in self._demonym_kinds], a, b):
                    continue
                kept.append(_Phrase(a, b, head, text[a:b].lower().split()[-1]))
        return sorted(kept, key=lambda p: (p.start, p.end))

    def _bare_plurals(self, tokens: list[_Token], found: list[RawMention], phrases: list) -> list:
        """Hostile plural heads with no determiner ("a reward for terrorists", "legitimising terrorists who
        …"): indefinite descriptors that carry their framing term (§8.5), so they resolve like any other.
        Only after a lower-case word that is neither a determiner nor a modifier the sentence names
        ("Hamas terrorists", "Russian terrorists" and "its fighters" stay as they are)."""
        out = []
        for k in range(1, len(tokens)):
            token, before = tokens[k], tokens[k - 1]
            head = self._head_of.get(token.lower)
            if head is None or not head.plural or token.lower not in _BARE_HEADS or not token.text.islower():
                continue
            if not before.text.isalpha() or not before.text.islower() or before.lower in _NOT_BARE:
                continue
            if any(p.start <= token.start < p.end for p, _, _ in phrases) or any(
                    m.start < token.end and before.start < m.end for m in found):
                continue
            out.append((_Phrase(token.start, token.end, head, token.lower, False, frozenset()), k, k))
        return out

    @staticmethod
    def _named_head(tokens: list[_Token], i: int, found: list[RawMention]) -> bool:
        """Whether tokens[i], right after a determiner, is a capitalised word standing alone as a head noun
        ("the Authority said"): not part of a name or demonym, not followed by another capitalised word."""
        word = tokens[i]
        if not (word.text[:1].isupper() and word.text.isalpha()) or word.lower in _NOT_MODIFIER:
            return False
        if i + 1 < len(tokens) and tokens[i + 1].text[:1].isupper():
            return False
        return not any(m.start < word.end and word.start < m.end for m in found)

    def _names_inside(self, mention: RawMention, head: HeadClass) -> bool:
        if mention.kind not in self._demonym_kinds:
            return True
        return self.actor_kind(mention.actor) in head.kinds

    def _owned(self, tokens: list[_Token], first: int, last: int, found: list[RawMention],
               names: list[RawMention]) -> RawMention | None:
        """The neighbouring mention the phrase tokens[first..last] describes rather than referring on its
        own (apposition, predicate nominal, naming verb object, possessive owner, "of X", "… X"), or None."""
        after = tokens[last + 1] if last + 1 < len(tokens) else None
        if after is not None:
            following = next((m for m in names if m.start == after.start), None)
            if following is not None:
                return following  # "the militant group Hamas"
            charged = first > 0 and tokens[first - 1].lower in _CHARGING  # "accused the regime of genocide"
            if after.lower == "of" and not charged:
                n = last + 2
                while n + 1 < len(tokens) and tokens[n].lower.endswith("ly"):
                    n += 1  # "accused the regime of deliberately targeting …"
                nxt = tokens[n] if n < len(tokens) else None
                # "the government of Israel", "the state of emergency"; not "accused the movement of sabotaging"
                if nxt is None or not nxt.lower.endswith("ing"):
                    owner = next((m for m in names if nxt is not None and m.start == nxt.start), None)
                    return owner or _NOBODY
        if after is not None and after.lower in {"'s", "’s"}:
            return None  # a possessor refers on its own: "It was the group's largest barrage"
        lead = [t.lower for t in tokens[max(0, first - 4):first]]
        for i, word in enumerate(lead):
            if word in self.rules.pronouns and lead[i + 1:] and lead[i + 1] in _COPULA and all(
                    w in _LINKS or w in _COPULA for w in lead[i + 1:]):
                return _NOBODY  # "it is a liberation movement": predicated of a pronoun
        before = [m for m in found if m.end <= tokens[first].start]
        if not before:
            return None
        prev = before[-1]
        gap = [t for t in tokens[:first] if t.start >= prev.end]
        words = [t.lower for t in gap]
        if not words:
            return prev  # "consider Hamas a terrorist group"
        if words in (["'s"], ["’s"], ["'"], ["’"]):
            return prev  # "Russia's the government" (a possessive owns what follows it)
        if words[0] in {",", "(", "—", "–"} and len(words) == 1:
            if after is not None and after.lower in {"'s", "’s"}:
                return None  # "In Beirut, the Shiite group's media office": a possessor refers on its own
            if self._attribution_follows(tokens, last):
                return None  # "… for Hamas and Hezbollah, the interior ministry said": a closing attribution
            return prev  # "Hamas, the militant group that rules Gaza"
        if words[0] in _COPULA and all(w in _LINKS or w in _COPULA for w in words):
            return prev  # "Hamas is a terrorist organization", "was no longer a movement"
        if words == ["as"]:
            return prev  # "designated Hamas as a terrorist group"
        return None

    def _attribution_follows(self, tokens: list[_Token], last: int) -> bool:
        """Whether a speech verb follows the phrase within four words and no comma ("the ministry said",
        "the ministry in Berlin said"): the phrase is the speaker of a closing attribution."""
        for t in tokens[last + 1:last + 5]:
            if t.lower in self._speech:
                return True
            if not t.text[:1].isalpha():
                return False
        return False

    def _resolve_descriptor(self, phrase: _Phrase, tokens, done, found, si, described):
        start, end, noun = phrase.start, phrase.end, phrase.noun
        excluded = self._contrast(tokens[si], start, found, end) | phrase.related
        if any(t in self._hostile for t in _ngrams(" ".join(t.lower for t in tokens[si]
                                                             if start <= t.start and t.end <= end))):
            excluded |= self._speakers(tokens[si], start, end, found, done[max(0, si - 2):si])
        owner = self._whose(tokens[si], end, found)
        if owner is not None:  # "The movement, whose secretary-general Naim Qassem spoke, …": Hezbollah
            return owner.actor, (owner.start, owner.end)
        windows = list(self._window(done, found, si, start, back=2))
        # Same head noun first (§8.5), then kind agreement (not for a capitalised head: same head only);
        # either way an actor must have every registry trait among the modifiers ("the Islamist movement").
        tests = [lambda m: self._same_head(m, noun, tokens) or noun in described.get((m.start, m.end), ())]
        if not phrase.named_head:
            tests.append(lambda m: self.actor_kind(m.actor) in phrase.head.kinds)
        for test in tests:
            for mentions in windows:
                hits = [m for m in mentions if m.actor not in excluded
                        and (not phrase.traits or phrase.traits <= self.actor_traits(m.actor))
                        and test(m)]
                if hits:
                    actors = {m.actor for m in hits}
                    if len(actors) == 1:
                        return hits[-1].actor, (hits[-1].start, hits[-1].end)
                    return None, None  # two candidates and no cue: never guessed
        return None, None

    def _same_head(self, mention: RawMention, noun: str, tokens) -> bool:
        words = mention.text.lower().split()
        if words[-1] == noun or ("of" in words[1:] and words[words.index("of", 1) - 1] == noun):
            return True  # "the party" after "the Communist Party of Palestine"
        sentence = tokens[mention.sentence]
        compound = next((t for t in sentence if t.start <= mention.start and mention.end < t.end), None)
        if compound is not None and compound.lower[mention.end - compound.start:].lstrip("-") in _OTHER_THAN:
            return False  # "the Iran-backed group" is not Iran's group
        following = [t for t in sentence if t.start >= mention.end][:4]
        if [t.lower for t in following[:1]] in (["'s"], ["’s"]):
            # "Lebanon's caretaker cabinet" -> "the cabinet": the head after up to two lower-case modifiers
            modifiers = following[1:]
            for k, t in enumerate(modifiers[:3]):
                if t.lower == noun:
                    return all(m.text.isalpha() and m.text.islower() for m in modifiers[:k])
            return False
        return [t.lower for t in following[:1]] == [noun]

    def _contrast(self, tokens: list[_Token], start: int, found: list[RawMention], end: int = -1) -> set[str]:
        """Actors the descriptor cannot be: the subject of its own clause ("X rivals the group",
        "whose Fatah movement rivals the militant group"), the object of its verb ("The regime accused
        Ankara"), the owner of what it stands beside ("Fatah's rival, the Islamist movement")."""
        excluded: set[str] = set()
        after = [t for t in tokens if t.start >= end] if end >= 0 else []
        objects = [m for m in found if end >= 0 and m.start >= end]
        if objects:
            gap = [t for t in after if t.end <= objects[0].start]
            if 0 < len(gap) <= 3 and gap[0].text.islower() and gap[0].lower not in {"of", "in", "on", "at", "for", "'s", "’s"} \
                    and not any(t.lower in _CLAUSE_BREAKS or t.lower in _COPULA for t in gap):
                excluded.add(objects[0].actor)
        lead = [t for t in tokens if t.end <= start][-4:]
        words = [t.lower for t in lead]
        if len(words) >= 3 and words[-1] == "," and words[-3] in {"'s", "’s"}:
            owner = next((m for m in found if m.end <= lead[-3].start and m.end >= lead[-3].start - 1), None)
            if owner is not None:
                excluded.add(owner.actor)
        return excluded | self._subject_contrast(tokens, start, found)

    @staticmethod
    def _whose(tokens: list[_Token], end: int, found: list[RawMention]) -> RawMention | None:
        """The official or name a relative "whose" clause gives the descriptor ("the movement, whose leader
        Naim Qassem …"): the first mention within four tokens of "whose"."""
        after = [t for t in tokens if t.start >= end][:6]
        words = [t.lower for t in after]
        if words[:2] != [",", "whose"] and words[:1] != ["whose"]:
            return None
        k = words.index("whose")
        limit = after[min(k + 4, len(after) - 1)].end
        return next((m for m in found if after[k].end <= m.start and m.end <= limit), None)

    def _speakers(self, tokens: list[_Token], start: int, end: int, found: list[RawMention],
                  earlier: Sequence[list[RawMention]] = ()) -> set[str]:
        """Who speaks the words a descriptor stands in: the mention just before a speech or naming verb
        that precedes it ("He called the attack proof that the terrorist state …") or the speaker of a
        closing attribution after it ("The regime funds terror, Israel's foreign ministry replied"; with
        "he"/"she" there, the official of the nearest earlier sentence that names exactly one actor's:
        '"That regime is an empire of evil," he added' after 'Herzog said')."""
        speakers: set[str] = set()
        verbs = [t for t in tokens if t.lower in self._speech or t.lower in self._naming]
        governing = [t for t in verbs if t.end <= start][-1:]  # the nearest verb before governs the words
        for t in governing:
            before = [m for m in found if m.end <= t.start]
            gap = [x for x in tokens if before and before[-1].end <= x.start and x.end <= t.start]
            if before and len(gap) <= 3 and not any(x.lower in _CLAUSE_BREAKS for x in gap):
                speakers.add(before[-1].actor)
        for t in [t for t in verbs if t.start >= end][:1]:
            between = [m for m in found if m.start >= end and m.end <= t.start]
            lead = [x for x in tokens if end <= x.start and x.end <= t.start]
            if not between and [x.lower for x in lead[-2:]] in ([",", "he"], [",", "she"], ['"', "he"],
                                                                ['"', "she"], ["”", "he"], ["”", "she"]):
                for mentions in reversed(earlier):
                    officials = {m.actor for m in mentions if m.kind == "official"}
                    if officials:
                        speakers |= officials if len(officials) == 1 else set()
                        break
            if not between:
                continue
            gap = [x for x in tokens if between[-1].end <= x.start and x.end <= t.start]
            lead = [x for x in tokens if end <= x.start and x.end <= between[0].start]
            if not gap and any(x.text == "," for x in lead):
                speakers.add(between[-1].actor)
        return speakers

    def _subject_contrast(self, tokens: list[_Token], start: int, found: list[RawMention]) -> set[str]:
        before = [m for m in found if m.end <= start]
        if not before:
            return set()
        subject = before[-1]
        begin = subject.start
        while True:  # "Abbas's Fatah movement accused the group": the possessor opens the subject
            ahead = [t for t in tokens if t.end <= begin]
            owner = next((m for m in found if len(ahead) > 1 and ahead[-1].lower in {"'s", "’s"}
                          and m.start <= ahead[-2].start < m.end), None)
            if owner is None and subject.kind == "official":
                begin = self._title_start(tokens, begin, found)
                ahead = [t for t in tokens if t.end <= begin]
            if owner is None:
                break
            begin = owner.start
        if ahead and ahead[-1].lower not in _CLAUSE_OPENERS and ahead[-1].lower not in self._speech:
            return set()  # "a ban on Hamas to cover the movement's …": an object, not the clause's subject
        gap = [t for t in tokens if subject.end <= t.start and t.end <= start]
        if len(gap) > 6 or any(t.lower in _CLAUSE_BREAKS for t in gap):
            return set()
        if gap and gap[0].lower in {"'s", "’s"} and any(t.lower in self._titles for t in gap) \
                and not any(t.lower in self._speech or t.lower in _COPULA for t in gap):
            return {subject.actor}  # "Israel's prime minister thanked the administration": its person acts
        if gap and (gap[0].lower in _COPULA or gap[0].lower in {"'s", "’s", "as"}):
            return set()
        return {subject.actor}

    def _title_start(self, tokens: list[_Token], begin: int, found: list[RawMention]) -> int:
        """Where an official's subject starts: its title and the actor named in it open it ("Foreign
        Minister Israel Katz accused …", "Fatah official Jibril Rajoub accused …")."""
        ahead = [t for t in tokens if t.end <= begin]
        title = [t for t in ahead[-3:] if t.lower in self._titles]
        if not title or not all(x.text[:1].isupper() or x.lower in self._titles
                                for x in ahead if x.start >= title[0].start):
            return begin
        named = next((m for m in found if title[0].start - 1 <= m.end <= title[0].start), None)
        begin = named.start if named is not None else title[0].start
        for t in reversed([t for t in tokens if t.end <= begin]):  # "Foreign Minister": the title's capitals
            if not t.text[:1].isupper() or t.lower in _CLAUSE_OPENERS:
                break
            begin = t.start
        return begin

    # -- pronouns ----------------------------------------------------------------------------
    def _resolve_pronoun(self, token: _Token, k: int, rule: dict, tokens, done, found, si, text: str):
        female = self._female
        feminine = _FEMININE.get(token.lower) if female is not None else None

        def compatible(m: RawMention) -> bool:
            if female is not None and feminine is not None and m.kind == "official" and (m.text in female) != feminine:
                return False  # "Zelensky met Ursula von der Leyen. She …": von der Leyen, not Zelensky
            if m.kind in self._demonym_kinds and not rule["plural"] and rule["kinds"]:
                head = self._following_head(m, tokens[m.sentence])
                if head is not None and not head.plural and self.actor_kind(m.actor) in head.kinds & rule["kinds"]:
                    return True  # "The Lebanese army said it would …"
            if "official" in rule["mention_kinds"] and self._titled(m, tokens[m.sentence]):
                # "Egyptian President …", "Israel's ambassador": a person speaking for the actor, unless the
                # title is a named official's ("Ukrainian President Volodymyr Zelensky": he is the candidate)
                return not self._title_of_named(m, tokens[m.sentence], done[m.sentence] if m.sentence < si else found)
            if rule["mention_kinds"] and m.kind in rule["mention_kinds"]:
                if m.kind in self._demonym_kinds and rule["plural"]:
                    return m.text.lower().endswith("s")
                return True
            if m.kind in self._demonym_kinds or m.kind == "official" or m.kind == "pronoun":
                return False
            if m.kind == "descriptor" and self._plural_head(m) and not rule["plural"]:
                return False  # "the militants" is "they", not "it"
            return self.actor_kind(m.actor) in rule["kinds"]

        speaks = self._speaks(tokens[si], k)
        s0 = tokens[si][0].start
        quoted = _quoted(text, s0, token.start)
        # "They will pay," the group's office posted: inside a quotation "they" is not the speaker
        speakers = self._speakers(tokens[si], token.start, token.end, found) if quoted else set()
        # '"The occupation forces bear …," it said': who speaks is not inside the quotation
        own = [m for m in found if m.end <= token.start and compatible(m)
               and not (speaks and _quoted(text, s0, m.start))]
        if si > 0 and not own and not quoted and (self._is_subject(tokens[si], k, found) or speaks):
            subject = self._subject(done[si - 1], tokens[si - 1])
            if subject is not None and compatible(subject):
                return subject.actor, (subject.start, subject.end)
        for mentions in self._window(done, [m for m in found if not (speaks and _quoted(text, s0, m.start))],
                                     si, token.start, back=1):
            hits = [m for m in mentions if compatible(m) and m.actor not in speakers]
            if hits and rule["plural"] and self._coordinated(mentions, tokens):
                return None, None  # "Israel and Hamas have traded blame …, and they …": both at once
            if hits:
                if len({m.actor for m in hits}) == 1:
                    return hits[-1].actor, (hits[-1].start, hits[-1].end)
                return None, None
        return None, None

    def _following_head(self, mention: RawMention, tokens: list[_Token]) -> HeadClass | None:
        nxt = next((t for t in tokens if t.start >= mention.end), None)
        return self._head_of.get(nxt.lower) if nxt is not None else None

    @staticmethod
    def _title_of_named(mention: RawMention, tokens: list[_Token], mentions: list[RawMention]) -> bool:
        """Whether an official's name follows the mention's title within five tokens ("Ukrainian President
        Volodymyr Zelensky"), so that the title is that official's."""
        following = [t for t in tokens if t.start >= mention.end][:5]
        if not following:
            return False
        limit = following[-1].end
        return any(m.kind == "official" and mention.end < m.start and m.end <= limit for m in mentions)

    @staticmethod
    def _coordinated(mentions: list[RawMention], tokens: list[list[_Token]]) -> bool:
        """Whether two mentions of different actors are joined by "and" ("Israel and Hamas")."""
        for a, b in zip(mentions, mentions[1:]):
            if a.actor != b.actor and a.sentence == b.sentence:
                gap = [t.lower for t in tokens[a.sentence] if a.end <= t.start and t.end <= b.start]
                if gap == ["and"]:
                    return True
        return False

    def _titled(self, mention: RawMention, tokens: list[_Token]) -> bool:
        """Whether a person's title follows the mention ("Egyptian President", "Israel's ambassador")."""
        if not self._titles:
            return False
        following = [t.lower for t in tokens if t.start >= mention.end][:4]
        if following[:1] in (["'s"], ["’s"]):
            following = following[1:]
        for word in following[:3]:
            if word in self._titles:
                return True
            if not word[:1].isalpha():
                return False
        return False

    def _speaks(self, tokens: list[_Token], k: int) -> bool:
        """A pronoun that is the subject of a speech verb ('…," he said'): a subject as well."""
        return k + 1 < len(tokens) and tokens[k + 1].lower in self._speech

    def _plural_head(self, mention: RawMention) -> bool:
        head = self._head_of.get(mention.text.lower().split()[-1])
        return bool(head and head.plural)

    @staticmethod
    def _is_subject(tokens: list[_Token], k: int, found: list[RawMention]) -> bool:
        words = [t.lower for t in tokens[:k] if t.lower not in {'"', "“", "'"}]
        if not words:
            return True
        return words[-1] == "," and not any(m.end <= tokens[k].start for m in found) and len(words) <= 6

    @staticmethod
    def _subject(mentions: list[RawMention], tokens: list[_Token]) -> RawMention | None:
        """The mention that opens the sentence as its subject (one actor in the opening noun phrase); for
        a sentence that opens with a quotation, the speaker of its closing attribution ('"…," Iran's
        Foreign Ministry said'), never a mention inside the quotation."""
        if tokens and tokens[0].text in {'"', "“"}:
            close = next((i for i, t in enumerate(tokens[1:], 1) if t.text in {'"', "”"}), None)
            if close is None:
                return None
            tokens = [t for t in tokens[close + 1:] if t.text != ","]
            if tokens and tokens[0].lower in {"said", "says", "told", "added", "wrote", "posted", "stated"}:
                tokens = tokens[1:]  # '"…," said Peskov'
        opening = []
        for t in tokens:
            covered = any(m.start <= t.start < m.end for m in mentions)
            if covered or t.text[:1].isupper() or t.lower in {"the", "'s", "’s", "of", "-", '"', "“"}:
                opening.append(t)
                continue
            break
        if not opening:
            return None
        rest = tokens[len(opening):len(opening) + 2]
        if rest and rest[0].lower in {"and", "or", ",", "&"} and any(
                m.start >= rest[0].end for m in mentions[:3] if len(rest) > 1 and m.start == rest[1].start):
            return None  # "Russia and Ukraine exchanged …": a coordinated subject is no one actor
        inside = [m for m in mentions if opening[0].start <= m.start and m.end <= opening[-1].end]
        actors = {m.actor for m in inside}
        if len(actors) != 1:
            return None
        named = [m for m in inside if m.kind != "demonym"] or inside
        return named[-1]

    @staticmethod
    def _pleonastic(tokens: list[_Token], k: int) -> bool:
        following = [t.lower for t in tokens[k + 1:k + 4]]
        if following[:1] in (["is"], ["was"], ["'s"]) and following[1:2] in (["the"], ["a"]) and len(following) > 2 and (
                following[2] in _ORDINALS or following[2].endswith("est")):
            return True  # "It was the third such pact", "It was the largest swap": an event, not an actor
        if following[:1] in (["is"], ["was"], ["'s"], ["seems"], ["appears"], ["remains"], ["would"], ["will"]):
            rest = [w for w in following[1:] if w not in {"not", "be", "also", "still", "now"}]
            return bool(rest) and rest[0] in _PLEONASTIC_AFTER_IT
        return False

    # -- shared ------------------------------------------------------------------------------
    @staticmethod
    def _window(done: list[list[RawMention]], found: list[RawMention], si: int, offset: int, back: int):
        """Candidate mentions, nearest sentence first: this sentence before `offset`, then up to `back`
        sentences before it."""
        yield [m for m in found if m.end <= offset]
        for j in range(si - 1, max(-1, si - 1 - back), -1):
            yield done[j]

    @staticmethod
    def _starts_mention(found: list[RawMention], offset: int) -> bool:
        return any(m.start == offset for m in found)

    @staticmethod
    def _covered(found: list[RawMention], start: int, end: int) -> bool:
        return any(m.start < end and start < m.end for m in found)


def _quoted(text: str, sentence_start: int, offset: int) -> bool:
    """Whether `offset` lies inside quotation marks opened in its sentence."""
    before = text[sentence_start:offset]
    return before.count('"') % 2 == 1 or before.count("“") > before.count("”")


_FEMININE = {"she": True, "her": True, "he": False, "his": False}  # pronouns that agree with an official
_ANY_KIND = HeadClass(frozenset(), frozenset())  # a capitalised head: only the same-head cue decides
_NOBODY = RawMention(-1, -1, "", "", "none", -1)  # a phrase owned by something that is no mention


def _cap_the(pattern: str) -> str:
    return "[Tt]he" + pattern[3:] if pattern.startswith("the") else pattern


def _ngrams(words: str) -> list[str]:
    parts = words.split()
    return [" ".join(parts[i:j]) for i in range(len(parts)) for j in range(i + 1, len(parts) + 1)]
