"""Actor sets chosen at run time: a user's own registry file (or inline definitions) added to the
model's registry or replacing it, without retraining.

The transformer never sees actor ids (mentions are marked in the text), so a new actor gets stance and
framing as soon as the registry can find its mentions. This module reads and validates such a set —
every error names the file, line and field, what was expected and the fix — and builds the `Registry`
that the predictor uses for it (`Predictor.with_registry`).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stancelens.model.registry import _ALIAS_GROUPS, Actor, Registry

MODES = ("add", "replace")
_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_ACTOR_KEYS = {"id", "name", "kind", "aliases", "valid_from", "valid_to", "notes", "traits"}
_TOP_KEYS = {"version", "name", "kinds", "exclusions", "contextual", "rules", "actors", "descriptors",
             "framing_terms", "resolution"}
# A set's own resolution rules (GUIDELINES.md §8; the format of labels/framing.yaml `resolution:`), so that
# its own kinds get head nouns ("the firm" for a company) and pronouns.
_RESOLUTION_KEYS = {"descriptor_heads", "pronouns", "person_titles", "private_speakers", "female_officials"}
MAX_ALIAS_CHARS = 100
MAX_PATTERN_CHARS = 300
MAX_TRAIT_CHARS = 60


class ActorSetError(ValueError):
    """A problem with an actor set: where (file:line or request field), what was expected, found, the fix."""

    def __init__(self, where: str, message: str, field: str = ""):
        self.where, self.field, self.message = where, field, message
        super().__init__(f"{where}: {field + ': ' if field else ''}{message}")


@dataclass(frozen=True)
class ActorSet:
    """A validated actor set: the registry-format data plus where it came from."""

    name: str
    data: dict  # the parsed file: actors (required), kinds, exclusions, contextual, rules, descriptors,
    # framing_terms, resolution
    source: str  # a path, or "actor_definitions" for a request's inline set

    @property
    def ids(self) -> list[str]:
        return [a["id"] for a in self.data["actors"]]

    @property
    def fingerprint(self) -> str:
        """A content hash: two requests with the same inline set share one cached registry."""
        text = json.dumps(self.data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class _Lines:
    """Line numbers of the YAML nodes, looked up by path (("actors", 3, "kind"))."""

    def __init__(self, root: yaml.Node | None):
        self.root = root

    def __call__(self, *path: str | int) -> int | None:
        node = self.root
        line = node.start_mark.line + 1 if node is not None else None
        for key in path:
            if isinstance(node, yaml.MappingNode):
                hit = next((v for k, v in node.value if k.value == key), None)
                if hit is None:
                    return line
                node = hit
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
                node = node.value[key]
            else:
                return line
            line = node.start_mark.line + 1
        return line


def read_actor_set(path: str | Path, base: Registry) -> ActorSet:
    """Read and validate an actor-set YAML file against the registry it will join (for its kinds and
    framing labels); alias clashes with the base are checked when the set is applied (they depend on the mode)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ActorSetError(str(path), "expected an actor-set YAML file, found no such file; check the path") from exc
    except UnicodeDecodeError as exc:
        raise ActorSetError(str(path), "expected UTF-8 text, found undecodable bytes; save the file as UTF-8") from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ActorSetError(where, f"expected YAML, found a syntax error ({getattr(exc, 'problem', exc)}); fix the "
                            "file's syntax") from exc
    lines = _Lines(root)
    checked = _check(data, base, lambda *p: f"{path}:{lines(*p)}" if lines(*p) else str(path))
    name = str(checked.get("name") or (path.parent.name if path.stem == "actors" else path.stem))
    return ActorSet(name=name, data=checked, source=str(path))


def actor_set_from_definitions(definitions: list[dict], base: Registry, name: str = "inline") -> ActorSet:
    """An inline set (the service's `actor_definitions`): actors only, no patterns of its own."""
    data = _check({"actors": definitions}, base, lambda *p: "actor_definitions", inline=True)
    return ActorSet(name=name, data=data, source="actor_definitions")


def _field(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _check(data: Any, base: Registry, at, inline: bool = False) -> dict:
    """Validate the structure; returns a normalised copy (dates as ISO strings, aliases as lists)."""

    def fail(path: tuple, message: str) -> None:
        field = _field(path)
        if inline:
            field = "actor_definitions" + field[len("actors"):] if field.startswith("actors") else field
        raise ActorSetError(at(*path), message, field)

    if not isinstance(data, dict):
        fail((), f"expected a mapping with an `actors:` list (the format of labels/actors.yaml), found "
             f"{type(data).__name__}; see labels/domains/*/actors.yaml for an example")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        fail((unknown[0],), f"expected one of the keys {sorted(_TOP_KEYS)}, found {unknown[0]!r}; remove or rename it")
    kinds = dict(base_kinds(base))
    own_kinds = data.get("kinds") or {}
    if not isinstance(own_kinds, dict):
        fail(("kinds",), "expected a mapping of kind name to its description, found "
             f"{type(own_kinds).__name__}")
    kinds.update({str(k): str(v) for k, v in own_kinds.items()})
    actors = data.get("actors")
    if not isinstance(actors, list) or not actors:
        fail(("actors",), "expected a non-empty list of actors (id, name, kind, aliases), found "
             f"{'nothing' if not actors else type(actors).__name__}; add at least one actor")
    out_actors: list[dict] = []
    seen_ids: dict[str, int] = {}
    seen_alias: dict[str, str] = {}
    for i, entry in enumerate(actors):
        out_actors.append(_check_actor(entry, i, kinds, seen_ids, seen_alias, fail))
    out = {k: v for k, v in data.items() if k != "actors"}
    out["actors"] = out_actors
    for key in ("exclusions",):
        value = data.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(x, str) and x for x in value)):
            fail((key,), "expected a list of phrases, found " + type(value).__name__)
    for j, ctx in enumerate(data.get("contextual") or []):
        if not (isinstance(ctx, dict) and isinstance(ctx.get("alias"), str) and ctx.get("resolve") == "document_main_state"):
            fail(("contextual", j), "expected {alias: TEXT, kind: institution, resolve: document_main_state}, found "
                 f"{ctx!r}")
    for j, rule in enumerate(data.get("rules") or []):
        need = {"id", "aliases", "default"}
        if not isinstance(rule, dict) or not need <= set(rule):
            fail(("rules", j), f"expected a rule with {sorted(need)} (and optionally when_sentence_mentions, then), "
                 f"found {rule!r}")
    for j, desc in enumerate(data.get("descriptors") or []):
        _check_descriptor(desc, j, fail)
    terms = data.get("framing_terms")
    if terms is not None:
        categories = [c for c in base.standard.framing if c != "none"]
        if not isinstance(terms, dict):
            fail(("framing_terms",), f"expected a mapping of framing label to terms, found {type(terms).__name__}")
        for label, words in terms.items():
            if label not in categories:
                fail(("framing_terms", label), f"expected a framing label in {categories}, found {label!r}; "
                     "use a label of labels/labels.yaml")
            if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
                fail(("framing_terms", label), "expected a list of terms (strings), found " + repr(words)[:80])
    if data.get("resolution") is not None:
        _check_resolution(data["resolution"], kinds, fail)
    return out


def _check_resolution(section: Any, kinds: dict, fail) -> None:
    """A set's `resolution:` section: head nouns and pronouns name kinds the set knows; lists of words."""
    if not isinstance(section, dict):
        fail(("resolution",), "expected a mapping with some of the keys " + str(sorted(_RESOLUTION_KEYS)) +
             f" (the format of labels/framing.yaml `resolution:`), found {type(section).__name__}")
    unknown = sorted(set(section) - _RESOLUTION_KEYS)
    if unknown:
        fail(("resolution", unknown[0]), f"expected one of the keys {sorted(_RESOLUTION_KEYS)}, found "
             f"{unknown[0]!r}; remove or rename it")

    def words(value: Any, path: tuple, what: str) -> None:
        if not (isinstance(value, list) and value and all(isinstance(w, str) and w.strip() for w in value)):
            fail(path, f"expected a non-empty list of {what} (strings), found {value!r}"[:200])

    def known(value: Any, path: tuple) -> None:
        words(value, path, "kinds")
        for k, kind in enumerate(value):
            if kind not in kinds:
                fail((*path, k), f"expected one of the kinds {sorted(kinds)}, found {kind!r}; define it under "
                     "`kinds:` or use one of these")

    for j, head in enumerate(section.get("descriptor_heads") or []):
        if not isinstance(head, dict) or set(head) - {"nouns", "kinds", "plural"}:
            fail(("resolution", "descriptor_heads", j), "expected {nouns: [WORD, ...], kinds: [KIND, ...], "
                 f"plural: true|false}}, found {head!r}"[:200])
        words(head.get("nouns"), ("resolution", "descriptor_heads", j, "nouns"), "head nouns")
        known(head.get("kinds"), ("resolution", "descriptor_heads", j, "kinds"))
    for j, group in enumerate(section.get("pronouns") or []):
        if not isinstance(group, dict) or set(group) - {"words", "kinds", "mention_kinds", "plural"} or not (
                group.get("kinds") or group.get("mention_kinds")):
            fail(("resolution", "pronouns", j), "expected {words: [PRONOUN, ...], kinds: [KIND, ...] and/or "
                 f"mention_kinds: [official, ...], plural: true|false}}, found {group!r}"[:200])
        words(group.get("words"), ("resolution", "pronouns", j, "words"), "pronouns")
        if group.get("kinds"):
            known(group["kinds"], ("resolution", "pronouns", j, "kinds"))
        if group.get("mention_kinds"):
            words(group["mention_kinds"], ("resolution", "pronouns", j, "mention_kinds"), "mention kinds")
    for key in ("person_titles", "private_speakers", "female_officials"):
        if section.get(key) is not None:
            words(section[key], ("resolution", key), "words")


def base_kinds(base: Registry) -> dict[str, str]:
    return dict(base.kinds) or {a.kind: "" for a in base.actors.values()}


def _check_actor(entry: Any, i: int, kinds: dict, seen_ids: dict, seen_alias: dict, fail) -> dict:
    if not isinstance(entry, dict):
        fail(("actors", i), f"expected an actor mapping (id, name, kind, aliases), found {type(entry).__name__}")
    unknown = sorted(set(entry) - _ACTOR_KEYS)
    if unknown:
        fail(("actors", i, unknown[0]), f"expected one of the keys {sorted(_ACTOR_KEYS)}, found {unknown[0]!r}; "
             "remove or rename it")
    actor_id = entry.get("id")
    if not isinstance(actor_id, str) or not _ID.match(actor_id):
        fail(("actors", i, "id"), f"expected an id of lower-case letters, digits and _ (at most 64, starting with "
             f"a letter), found {actor_id!r}")
    if actor_id in seen_ids:
        fail(("actors", i, "id"), f"expected each id once, found {actor_id!r} again (first at actors[{seen_ids[actor_id]}]); "
             "merge the two entries")
    seen_ids[actor_id] = i
    kind = entry.get("kind")
    if kind not in kinds:
        fail(("actors", i, "kind"), f"expected one of the kinds {sorted(kinds)}, found {kind!r}; use one of them "
             "or declare it under `kinds:`")
    name = entry.get("name", actor_id)
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        fail(("actors", i, "name"), f"expected a display name of 1-200 characters, found {name!r}")
    aliases = entry.get("aliases") or {}
    if not isinstance(aliases, dict):
        fail(("actors", i, "aliases"), f"expected a mapping of alias kinds {sorted(_ALIAS_GROUPS)} to lists, found "
             f"{type(aliases).__name__}")
    out_aliases: dict[str, list[str]] = {}
    for group, texts in aliases.items():
        if group not in _ALIAS_GROUPS:
            fail(("actors", i, "aliases", group), f"expected an alias kind in {sorted(_ALIAS_GROUPS)}, found {group!r}")
        if texts is None:
            continue
        if not isinstance(texts, list):
            fail(("actors", i, "aliases", group), f"expected a list of alias texts, found {type(texts).__name__}")
        for k, text in enumerate(texts):
            text = str(text) if isinstance(text, (int, float)) else text
            if not isinstance(text, str) or not text.strip() or text != text.strip() or len(text) > MAX_ALIAS_CHARS:
                fail(("actors", i, "aliases", group, k), f"expected an alias of 1-{MAX_ALIAS_CHARS} characters without "
                     f"outer spaces, found {text!r}")
            if text in seen_alias and seen_alias[text] != actor_id:
                fail(("actors", i, "aliases", group, k), f"expected an alias to name one actor, found {text!r} for both "
                     f"{seen_alias[text]!r} and {actor_id!r}; keep it on one of them")
            seen_alias[text] = actor_id
            out_aliases.setdefault(group, []).append(text)
    if not out_aliases:
        fail(("actors", i, "aliases"), f"expected at least one alias for {actor_id!r} (names, acronyms, ...), found "
             "none; an actor without aliases is never found")
    out = {"id": actor_id, "name": name, "kind": kind, "aliases": out_aliases}
    for key in ("valid_from", "valid_to"):
        value = entry.get(key)
        if value is None:
            continue
        if isinstance(value, datetime.date):
            value = value.isoformat()
        elif not (isinstance(value, str) and re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", value)):
            fail(("actors", i, key), f"expected a date (YYYY, YYYY-MM or YYYY-MM-DD), found {value!r}")
        out[key] = str(value)
    if entry.get("notes"):
        out["notes"] = str(entry["notes"])
    traits = entry.get("traits")
    if traits is not None:
        if not isinstance(traits, list):
            fail(("actors", i, "traits"), f"expected a list of descriptor modifiers (\"Islamist\", \"Lebanese\"), found "
                 f"{type(traits).__name__}")
        for k, trait in enumerate(traits):
            if not isinstance(trait, str) or not re.fullmatch(r"[^\W_]+(?:[- ][^\W_]+)*", trait) or len(trait) > MAX_TRAIT_CHARS:
                fail(("actors", i, "traits", k), f"expected a modifier of 1-{MAX_TRAIT_CHARS} characters (words joined by "
                     f"a space or hyphen), found {trait!r}")
        out["traits"] = [t.lower() for t in traits]
    return out


def _check_descriptor(desc: Any, j: int, fail) -> None:
    if not isinstance(desc, dict) or not isinstance(desc.get("pattern"), str) or "refers_to" not in desc:
        fail(("descriptors", j), f"expected {{pattern: REGEX, refers_to: ACTOR_ID or antecedent, kinds: [...]}}, found "
             f"{desc!r}"[:200])
    pattern = desc["pattern"]
    if len(pattern) > MAX_PATTERN_CHARS:
        fail(("descriptors", j, "pattern"), f"expected at most {MAX_PATTERN_CHARS} characters, found {len(pattern)}")
    try:
        re.compile(pattern)
    except re.error as exc:
        fail(("descriptors", j, "pattern"), f"expected a regular expression, found an invalid one ({exc}); fix it")


def apply_actor_set(base: Registry, actor_set: ActorSet, mode: str = "add") -> Registry:
    """The registry a set gives: `add` keeps the model's actors and adds (or redefines, by id) the set's;
    `replace` keeps only the set's, and fails naming every reference of the model's labels that would
    lose its actor (framing.yaml descriptors, resolution rules) unless the set brings its own."""
    if mode not in MODES:
        raise ActorSetError("--actors-mode", f"expected one of {list(MODES)}, found {mode!r}")
    data = actor_set.data
    new = {a["id"]: _actor(a) for a in data["actors"]}
    if mode == "add":
        actors = {k: v for k, v in base.actors.items() if k not in new}
        _check_clashes(actors, new, actor_set)
        actors.update(new)
        exclusions = tuple(dict.fromkeys([*base.exclusions, *(data.get("exclusions") or [])]))
        contextual = tuple(data["contextual"]) if "contextual" in data else base.contextual
        rules = (*[r for r in base.rules if r["id"] not in {x["id"] for x in data.get("rules") or []}],
                 *(data.get("rules") or []))
        descriptors = (*base.standard.descriptors, *(data.get("descriptors") or []))
    else:
        actors = new
        exclusions = tuple(data.get("exclusions") or [])
        contextual = tuple(data["contextual"]) if "contextual" in data else base.contextual
        rules = tuple(data["rules"]) if "rules" in data else base.rules
        descriptors = tuple(data["descriptors"]) if "descriptors" in data else base.standard.descriptors
    broken = broken_references(actors, rules, descriptors, "rules" in data, "descriptors" in data)
    if broken:
        raise ActorSetError(actor_set.source, f"--actors-mode {mode}: expected every reference of the labels to name "
                            f"an actor of the set, found {len(broken)} that would not: {'; '.join(broken)}; define "
                            "these ids in the set, give the set its own `rules:` / `descriptors:` (an empty list "
                            "drops them), or use --actors-mode add")
    own_resolution = data.get("resolution")
    if mode == "replace" and own_resolution is not None:
        resolution = dict(own_resolution)
    else:
        resolution = _merged_resolution(base.standard.resolution, own_resolution)
    standard = dataclasses.replace(base.standard, descriptors=tuple(descriptors), resolution=resolution,
                                   framing_terms=_merged_terms(base.standard.framing_terms, data.get("framing_terms")))
    kinds = {**base_kinds(base), **{str(k): str(v) for k, v in (data.get("kinds") or {}).items()}}
    return Registry(version=f"{base.version}+{actor_set.name}", actors=actors, exclusions=exclusions,
                    contextual=contextual, rules=tuple(rules), standard=standard, kinds=kinds)


def broken_references(actors: dict, rules, descriptors, own_rules: bool, own_descriptors: bool) -> list[str]:
    broken = []
    for rule in rules:
        for key in ("default", "then"):
            target = rule.get(key)
            if target and target not in actors:
                where = "the set's rules" if own_rules else "labels/actors.yaml rules"
                broken.append(f"{where}: {rule['id']}.{key} -> {target}")
    for desc in descriptors:
        target = desc.get("refers_to")
        if target != "antecedent" and target not in actors:
            where = "the set's descriptors" if own_descriptors else "labels/framing.yaml descriptors"
            broken.append(f"{where}: {desc['pattern']!r} -> {target}")
    return broken


def _check_clashes(base_actors: dict[str, Actor], new: dict[str, Actor], actor_set: ActorSet) -> None:
    owner = {alias: a.id for a in base_actors.values() for alias, _ in a.aliases}
    for actor in new.values():
        for alias, _ in actor.aliases:
            if alias in owner:
                raise ActorSetError(actor_set.source, f"--actors-mode add: expected the set's aliases to be new, found "
                                    f"{alias!r} for {actor.id!r} and for the model's {owner[alias]!r}; remove it from "
                                    f"one, redefine {owner[alias]!r} in the set (same id), or use --actors-mode "
                                    "replace", f"actors.{actor.id}.aliases")


def _actor(entry: dict) -> Actor:
    aliases = tuple((text, _ALIAS_GROUPS[group]) for group in _ALIAS_GROUPS for text in entry["aliases"].get(group, []))
    return Actor(id=entry["id"], name=entry["name"], kind=entry["kind"], aliases=aliases,
                 valid_from=entry.get("valid_from"), valid_to=entry.get("valid_to"), notes=entry.get("notes", ""),
                 traits=tuple(entry.get("traits", ())))


def _merged_resolution(base: dict, extra: dict | None) -> dict:
    """`add`: the set's head nouns and pronoun groups join the model's (a word in both refers to the kinds
    of both); titles and private speakers are the union."""
    if not extra:
        return base
    merged = dict(base)
    for key in ("descriptor_heads", "pronouns"):
        merged[key] = [*(base.get(key) or []), *(extra.get(key) or [])]
    for key in ("person_titles", "private_speakers", "female_officials"):
        merged[key] = list(dict.fromkeys([*(base.get(key) or []), *(extra.get(key) or [])]))
    return merged


def _merged_terms(terms: dict[str, tuple[str, ...]], extra: dict | None) -> dict[str, tuple[str, ...]]:
    if not extra:
        return terms
    merged = {k: tuple(v) for k, v in terms.items()}
    for label, words in extra.items():
        merged[label] = tuple(dict.fromkeys([*merged.get(label, ()), *words]))
    return merged
