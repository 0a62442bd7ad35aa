"""The actor registry (labels/actors.yaml) and the rule-based mention finder built on it.

Mention finding is deliberately mechanical (GUIDELINES.md §2): every alias occurrence on word
boundaries, longest alias first, exclusions removed, descriptor phrases resolved to the most recent
compatible antecedent, contextual institutions ("the Foreign Ministry") resolved to the document's
main state, and named rules (Abbas) applied per sentence.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from stancelens.model.labelset import LabelStandard, default_label_standard, load_yaml

_ALIAS_GROUPS = {
    "names": "name",
    "acronyms": "acronym",
    "demonyms": "demonym",
    "metonyms": "metonym",
    "officials": "official",
    "institutions": "institution",
}
_WORD = r"[\w]"
# A capitalised word right after a one-word official's name: the name is part of another person's
# ("Abbas Araghchi"), not the registry official.
_ANOTHER_NAME = re.compile(
    r" (?!(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|January|February|March|April|May|June|"
    r"July|August|September|October|November|December)\b)[A-Z][a-z]")


def _line_around(text: str, start: int, end: int) -> str:
    stop = text.find("\n", end)
    return text[text.rfind("\n", 0, start) + 1:stop if stop >= 0 else len(text)]


def _title_case(line: str) -> bool:
    """Whether a line is a headline: no closing full stop, and its longer words nearly all capitalised
    ("Putin Emphasizes Support for Abbas")."""
    if line.rstrip().endswith((".", "?", "!", '"', "”")):
        return False
    words = [w for w in re.findall(r"[A-Za-z]+", line) if len(w) > 3]
    return bool(words) and sum(w[0].isupper() for w in words) >= 0.8 * len(words)


@dataclass(frozen=True)
class Actor:
    id: str
    name: str
    kind: str
    aliases: tuple[tuple[str, str], ...]  # (alias text, alias kind)
    valid_from: str | None = None
    valid_to: str | None = None
    notes: str = ""
    # Modifiers the news uses of the actor in a descriptor ("Islamist", "Lebanese", "Iran-backed"): a
    # descriptor carrying one refers only to actors that have it (GUIDELINES.md §8.1, trait agreement).
    traits: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        out: dict[str, object] = {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "aliases": [{"text": a, "kind": k} for a, k in self.aliases],
            "valid_from": self.valid_from,
            "valid_to": self.valid_to,
            "notes": self.notes,
        }
        if self.traits:  # absent for actors without traits, so older fingerprints stay what they were
            out["traits"] = list(self.traits)
        return out


@dataclass(frozen=True)
class RawMention:
    """A mention found in a document, before framing is attached."""

    start: int
    end: int
    text: str
    actor: str
    kind: str
    sentence: int
    # "coreference" for a descriptor or pronoun resolved through an antecedent (GUIDELINES.md §8.3).
    via: str | None = None
    # Document offsets (start, end) of the mention this one corefers with.
    antecedent: tuple[int, int] | None = None


@dataclass
class Registry:
    version: str
    actors: dict[str, Actor]
    exclusions: tuple[str, ...]
    contextual: tuple[dict, ...]
    rules: tuple[dict, ...]
    standard: LabelStandard
    kinds: dict[str, str] = field(default_factory=dict)  # kind name -> description (actors.yaml `kinds:`)
    _alias_re: re.Pattern = field(init=False, repr=False)
    _alias_index: dict[str, tuple[str, str]] = field(init=False, repr=False)
    _descriptor_res: list[tuple[re.Pattern, dict]] = field(init=False, repr=False)
    _exclusion_re: re.Pattern | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        index: dict[str, tuple[str, str]] = {}
        for actor in self.actors.values():
            for alias, kind in actor.aliases:
                if alias in index and index[alias][0] != actor.id:
                    raise ValueError(
                        f"labels/actors.yaml: alias {alias!r} is listed for both {index[alias][0]!r} and "
                        f"{actor.id!r}; an alias must name one actor (use a rule for context-dependent ones)"
                    )
                index[alias] = (actor.id, kind)
        for ctx in self.contextual:
            index[ctx["alias"]] = ("@" + ctx["resolve"], ctx.get("kind", "institution"))
        for rule in self.rules:
            for alias in rule["aliases"]:
                index[alias] = ("!" + rule["id"], rule.get("kind", "official"))
        self._alias_index = index
        ordered = sorted(index, key=len, reverse=True)
        self._alias_re = re.compile(
            rf"(?<!{_WORD})(?:{'|'.join(self._alias_pattern(a) for a in ordered)})(?!{_WORD})"
        )
        # Fixed descriptors ("the Zionist regime") are found here; phrases that refer through an
        # antecedent are the resolver's (model/resolution.py, GUIDELINES.md §8).
        self._descriptor_res = [
            (re.compile(rf"(?<!{_WORD})(?:{self._cap_the(d['pattern'])})(?!{_WORD})"), d)
            for d in self.standard.descriptors
            if d["refers_to"] != "antecedent"
        ]
        from stancelens.model.resolution import Resolver

        self._resolver = Resolver(self.standard, self._actor_kind, self._actor_traits, self.trait_words)
        self._exclusion_re = (
            re.compile("|".join(re.escape(e) for e in sorted(self.exclusions, key=len, reverse=True)))
            if self.exclusions
            else None
        )

    @staticmethod
    def _alias_pattern(alias: str) -> str:
        if alias.startswith("the "):
            return "[Tt]he " + re.escape(alias[4:])
        return re.escape(alias)

    @staticmethod
    def _cap_the(pattern: str) -> str:
        return "[Tt]he" + pattern[3:] if pattern.startswith("the") else pattern

    # -- lookups -------------------------------------------------------------------------------
    def _actor_kind(self, actor_id: str) -> str | None:
        actor = self.actors.get(actor_id)
        return actor.kind if actor else None

    @property
    def trait_words(self) -> frozenset[str]:
        """Every actor's traits: the descriptor modifiers that restrict who a descriptor can be."""
        return frozenset(t for a in self.actors.values() for t in a.traits)

    def _actor_traits(self, actor_id: str) -> frozenset[str]:
        actor = self.actors.get(actor_id)
        return frozenset(actor.traits) if actor else frozenset()

    def alias_kind(self, text: str, actor: str) -> str:
        hit = self._alias_index.get(text)
        if hit is None and text[:1] == "T":
            hit = self._alias_index.get("t" + text[1:])
        return hit[1] if hit else "descriptor"

    def check_actor(self, actor_id: str, where: str = "") -> None:
        if actor_id not in self.actors:
            raise ValueError(
                f"{where}expected an actor id from labels/actors.yaml, found {actor_id!r}; "
                f"known ids include {sorted(self.actors)[:8]}..."
            )

    # -- mention finding -----------------------------------------------------------------------
    def find_mentions(self, text: str, sentences: list[tuple[int, int]]) -> list[list[RawMention]]:
        """Mentions per sentence (sentences given as (start, end) document offsets)."""
        excluded = [m.span() for m in self._exclusion_re.finditer(text)] if self._exclusion_re else []

        def is_excluded(s: int, e: int) -> bool:
            return any(s < xe and xs < e for xs, xe in excluded)

        per_sentence: list[list[RawMention]] = []
        pending_context: list[tuple[int, int]] = []  # (sentence, position in list)
        history: list[RawMention] = []
        for si, (s0, s1) in enumerate(sentences):
            chunk = text[s0:s1]
            aliases: list[RawMention] = []
            for m in self._alias_re.finditer(chunk):
                a, b = s0 + m.start(), s0 + m.end()
                if is_excluded(a, b):
                    continue
                alias = m.group()
                target, kind = self._alias_index.get(alias) or self._alias_index["t" + alias[1:]]
                if kind == "official" and " " not in alias and _ANOTHER_NAME.match(text, b) \
                        and not _title_case(_line_around(text, a, b)):
                    continue  # "Abbas Araghchi", "Abbas Kamel": one word of another person's name
                aliases.append(RawMention(a, b, alias, target, kind, si))
            # A descriptor outranks any alias inside it ("the Palestinian organization"); its
            # antecedent may be named earlier in the same sentence.
            descriptors: list[RawMention] = []
            for regex, desc in self._descriptor_res:
                for m in regex.finditer(chunk):
                    a, b = s0 + m.start(), s0 + m.end()
                    if any(a < d.end and d.start < b for d in descriptors):
                        continue
                    descriptors.append(RawMention(a, b, text[a:b], str(desc["refers_to"]), "descriptor", si))
            found = descriptors + [
                r for r in aliases if not any(r.start < d.end and d.start < r.end for d in descriptors)
            ]
            found.sort(key=lambda r: r.start)
            resolved: list[RawMention] = []
            sentence_actors = {r.actor for r in found}
            for r in found:
                if r.actor.startswith("!"):
                    rule = next(x for x in self.rules if x["id"] == r.actor[1:])
                    actor = rule["then"] if rule.get("when_sentence_mentions") in sentence_actors else rule["default"]
                    r = RawMention(r.start, r.end, r.text, actor, r.kind, si)
                elif r.actor.startswith("@"):
                    owner = self._owner(text, r, resolved)
                    if owner:  # "Russia's Foreign Ministry", "the Israeli Foreign Ministry"
                        r = RawMention(r.start, r.end, r.text, owner, r.kind, si)
                    else:
                        pending_context.append((si, len(resolved)))
                resolved.append(r)
            per_sentence.append(resolved)
            history.extend(r for r in resolved if not r.actor.startswith("@"))
        if pending_context:
            main_state = self._main_state(history)
            for si, pos in pending_context:
                r = per_sentence[si][pos]
                per_sentence[si][pos] = RawMention(r.start, r.end, r.text, main_state or "", r.kind, si)
            per_sentence = [[r for r in sent if r.actor] for sent in per_sentence]
        return self._resolver.resolve(text, sentences, per_sentence)

    def _owner(self, text: str, mention: RawMention, before: list[RawMention]) -> str | None:
        """The state named right before a contextual institution: possessive or demonym."""
        if not before:
            return None
        prev = before[-1]
        gap = text[prev.end : mention.start]
        actor = self.actors.get(prev.actor)
        if actor and actor.kind in {"state", "historical"} and re.fullmatch(r"(?:['’]s?)?\s*", gap):
            return actor.id
        return None

    def _main_state(self, mentions: list[RawMention]) -> str | None:
        counts: Counter[str] = Counter()
        first: dict[str, int] = {}
        for r in mentions:
            actor = self.actors.get(r.actor)
            if actor and actor.kind == "state":
                counts[r.actor] += 1
                first.setdefault(r.actor, r.start)
        if not counts:
            return None
        return max(counts, key=lambda a: (counts[a], -first[a]))

    @property
    def fingerprint(self) -> str:
        """A hash of the actors, aliases and rules: which actor set a result was produced with."""
        import hashlib
        import json

        if not hasattr(self, "_fingerprint"):
            # the resolution rules decide mentions too: a change to them is another actor set's output
            text = json.dumps([self.as_dict(), list(self.standard.descriptors), self.standard.resolution],
                              sort_keys=True, default=str)
            self._fingerprint = hashlib.sha256(text.encode()).hexdigest()[:16]
        return self._fingerprint

    def as_dict(self) -> dict:
        return {
            "version": self.version,
            "actors": [a.as_dict() for a in self.actors.values()],
            "exclusions": list(self.exclusions),
            "contextual": list(self.contextual),
            "rules": list(self.rules),
            "kinds": dict(self.kinds),
        }


def load_registry(directory: Path | None = None, standard: LabelStandard | None = None) -> Registry:
    data = load_yaml("actors.yaml", directory)
    actors: dict[str, Actor] = {}
    for entry in data["actors"]:
        aliases: list[tuple[str, str]] = []
        for group, kind in _ALIAS_GROUPS.items():
            aliases.extend((str(a), kind) for a in entry.get("aliases", {}).get(group, []) or [])
        if entry["id"] in actors:
            raise ValueError(f"labels/actors.yaml: actor id {entry['id']!r} is defined twice")
        actors[entry["id"]] = Actor(
            id=entry["id"],
            name=entry["name"],
            kind=entry["kind"],
            aliases=tuple(aliases),
            valid_from=entry.get("valid_from"),
            valid_to=entry.get("valid_to"),
            notes=(entry.get("notes") or "").strip(),
            traits=tuple(str(t).lower() for t in entry.get("traits") or ()),
        )
    if standard is None:
        from stancelens.model.labelset import load_label_standard

        standard = load_label_standard(directory) if directory else default_label_standard()
    return Registry(
        version=str(data["version"]),
        actors=actors,
        exclusions=tuple(data.get("exclusions", [])),
        contextual=tuple(data.get("contextual", [])),
        rules=tuple(data.get("rules", [])),
        standard=standard,
        kinds={str(k): str(v) for k, v in (data.get("kinds") or {}).items()},
    )


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    return load_registry()
