"""Actor sets at run time: validation with file/line/field, add and replace, and predictions for new ids."""

from __future__ import annotations

import pytest

from stancelens.model.actor_set import ActorSetError, apply_actor_set, read_actor_set
from stancelens.model.lexicon import LexiconEngine
from stancelens.model.predictor import DocumentInput, Predictor
from tests.helpers import ROOT

DOMAIN_ACTORS = ROOT / "labels" / "domains" / "taiwan_strait" / "actors.yaml"
HOUTHIS = """\
name: red_sea
actors:
  - id: houthis
    name: Houthis (Ansar Allah)
    kind: armed_group
    aliases:
      names: [Houthis, Ansar Allah]
"""


def write(tmp_path, text: str, name: str = "set.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def pairs(doc) -> set[tuple[str, str]]:
    return {(p.source, p.target) for s in doc.sentences for p in s.pairs}


def test_added_actors_get_pairs_and_framing_without_retraining(tmp_path, registry):
    actor_set = read_actor_set(write(tmp_path, HOUTHIS), registry)
    predictor = Predictor(LexiconEngine()).with_registry(apply_actor_set(registry, actor_set, "add"))
    [doc] = predictor.annotate([DocumentInput("d", "The Houthis attacked Israel. Hamas praised Ansar Allah.")])
    assert {("houthis", "israel"), ("israel", "houthis"), ("hamas", "houthis")} <= pairs(doc)
    base = Predictor(LexiconEngine())
    [plain] = base.annotate([DocumentInput("d", "The Houthis attacked Israel. Hamas praised Ansar Allah.")])
    assert not any("houthis" in p for p in pairs(plain))


def test_a_batch_under_a_set_equals_single_calls(tmp_path, registry):
    predictor = Predictor(LexiconEngine()).with_registry(
        apply_actor_set(registry, read_actor_set(DOMAIN_ACTORS, registry), "replace"))
    texts = ["Beijing condemned the US arms sale to Taiwan.", "The KMT praised Beijing.", "Tokyo backed Taipei."]
    batch = predictor.annotate([DocumentInput(str(i), t) for i, t in enumerate(texts)])
    single = [predictor.annotate([DocumentInput(str(i), t)])[0] for i, t in enumerate(texts)]
    assert [d.model_dump() for d in batch] == [d.model_dump() for d in single]
    assert ("china", "taiwan") in pairs(batch[0]) and ("kuomintang", "china") in pairs(batch[1])
    assert "israel" not in predictor.registry.actors  # replace keeps only the set's actors


@pytest.mark.parametrize("text, line, field, message", [
    ("actors:\n  - id: Houthis\n    kind: armed_group\n    aliases: {names: [Houthis]}\n", 2, "actors[0].id",
     "lower-case letters"),
    ("actors:\n  - id: a\n    kind: militia\n    aliases: {names: [A]}\n", 3, "actors[0].kind", "expected one of the kinds"),
    ("actors:\n  - id: a\n    kind: state\n    aliases: {names: [A]}\n  - id: a\n    kind: state\n    aliases: {names: [B]}\n",
     5, "actors[1].id", "each id once"),
    ("actors:\n  - id: a\n    kind: state\n    aliases: {names: [Aland]}\n  - id: b\n    kind: state\n"
     "    aliases: {names: [Aland]}\n", 7, "actors[1].aliases.names[0]", "one actor"),
    ("actors:\n  - id: a\n    kind: state\n    aliases: {nicknames: [A]}\n", 4, "actors[0].aliases.nicknames",
     "alias kind"),
    ("actors:\n  - id: a\n    kind: state\n    alias: {names: [A]}\n", 4, "actors[0].alias", "expected one of the keys"),
    ("actors: []\n", 1, "actors", "non-empty list"),
    ("actors:\n  - id: a\n    kind: state\n    aliases: {names: [A]}\n    valid_from: soon\n", 5,
     "actors[0].valid_from", "expected a date"),
    ("actors:\n  - id: a\n    kind: state\n    aliases: {names: [A]}\nframing_terms: {villain: [x]}\n", 5,
     "framing_terms.villain", "framing label"),
    ("actors:\n  - id: a\n    kind: state\n    aliases: {names: [A]}\n    traits: Islamist\n", 5,
     "actors[0].traits", "list of descriptor modifiers"),
    ("actors:\n  - id: a\n    kind: state\n    aliases: {names: [A]}\n    traits: [gulf, 'oil, rich']\n", 5,
     "actors[0].traits[1]", "words joined by a space or hyphen"),
    ("actors: [\n", None, "", "syntax error"),
])
def test_errors_name_file_line_and_field(tmp_path, registry, text, line, field, message):
    path = write(tmp_path, text)
    with pytest.raises(ActorSetError, match=message) as caught:
        read_actor_set(path, registry)
    error = str(caught.value)
    assert error.startswith(f"{path}:{line}" if line else str(path)) and field in error


def test_add_refuses_an_alias_of_another_model_actor(tmp_path, registry):
    clash = "actors:\n  - id: militants\n    kind: armed_group\n    aliases: {names: [Hamas]}\n"
    with pytest.raises(ActorSetError, match=r"'Hamas' for 'militants' and for the model's 'hamas'"):
        apply_actor_set(registry, read_actor_set(write(tmp_path, clash), registry), "add")


def test_replace_names_every_reference_it_breaks(tmp_path, registry):
    actor_set = read_actor_set(write(tmp_path, HOUTHIS), registry)
    with pytest.raises(ActorSetError, match="found 7 that would not") as caught:
        apply_actor_set(registry, actor_set, "replace")
    error = str(caught.value)
    assert "abbas.default -> palestinian_authority" in error and "'the Kyiv regime' -> ukraine" in error
    own = write(tmp_path, HOUTHIS + "rules: []\ndescriptors: []\n", "own.yaml")
    replaced = apply_actor_set(registry, read_actor_set(own, registry), "replace")
    assert list(replaced.actors) == ["houthis"]


def test_a_set_id_redefines_the_models_actor_in_add_mode(tmp_path, registry):
    text = "actors:\n  - id: hamas\n    name: Hamas\n    kind: armed_group\n    aliases: {names: [Hamas, Harakat]}\n"
    extended = apply_actor_set(registry, read_actor_set(write(tmp_path, text), registry), "add")
    found = extended.find_mentions("Harakat met Israel.", [(0, 19)])[0]
    assert [(m.text, m.actor) for m in found] == [("Harakat", "hamas"), ("Israel", "israel")]
    assert extended.fingerprint != registry.fingerprint


def test_a_set_brings_framing_terms(tmp_path, registry):
    text = HOUTHIS + "framing_terms:\n  extremist: [separatist]\n"
    extended = apply_actor_set(registry, read_actor_set(write(tmp_path, text), registry), "add")
    [doc] = Predictor(LexiconEngine()).with_registry(extended).annotate(
        [DocumentInput("d", "Israel called the Houthis separatist rebels.")])
    houthis = [m for s in doc.sentences for m in s.mentions if m.actor == "houthis"]
    assert houthis[0].framing.label == "extremist"


COMPANIES = """\
name: markets
kinds:
  company: a business
actors:
  - id: acme
    name: Acme
    kind: company
    aliases:
      names: [Acme Corp]
  - id: globex
    name: Globex
    kind: company
    aliases:
      names: [Globex]
"""
OWN_RESOLUTION = """\
resolution:
  descriptor_heads:
    - {nouns: [company, firm], kinds: [company]}
  pronouns:
    - {words: [it, its], kinds: [company]}
"""


def resolved(registry, text: str, actors_yaml: str, tmp_path, mode: str = "add"):
    extended = apply_actor_set(registry, read_actor_set(write(tmp_path, actors_yaml), registry), mode)
    [doc] = Predictor(LexiconEngine()).with_registry(extended).annotate([DocumentInput("d", text)])
    return [(m.text, m.actor, m.kind) for s in doc.sentences for m in s.mentions if m.kind in ("descriptor", "pronoun")]


@pytest.mark.parametrize("mode", ["add", "replace"])
def test_a_set_brings_resolution_rules_for_its_own_kinds(tmp_path, registry, mode):
    text = "Globex lost a lawsuit on Monday. The firm said its appeal would follow."
    own = COMPANIES + ("rules: []\ndescriptors: []\n" if mode == "replace" else "")
    assert resolved(registry, text, own, tmp_path, mode) == []  # no head noun or pronoun reaches a company
    found = resolved(registry, text, own + OWN_RESOLUTION, tmp_path, mode)
    assert found == [("The firm", "globex", "descriptor"), ("its", "globex", "pronoun")]


def test_set_resolution_joins_the_models_in_add_mode(tmp_path, registry):
    text = "Hamas fired rockets at Israel. Acme Corp said it had halted shipments; the group denied it."
    found = resolved(registry, text, COMPANIES + OWN_RESOLUTION, tmp_path)
    assert ("it", "acme", "pronoun") in found  # the set's kind for "it" ...
    assert ("the group", "hamas", "descriptor") in found  # ... beside the model's head nouns


@pytest.mark.parametrize("section, field, message", [
    ("resolution: [group]\n", "resolution", "expected a mapping"),
    ("resolution: {heads: []}\n", "resolution.heads", "expected one of the keys"),
    ("resolution:\n  descriptor_heads:\n    - {nouns: [firm], kinds: [corporation]}\n",
     "resolution.descriptor_heads[0].kinds[0]", "expected one of the kinds"),
    ("resolution:\n  descriptor_heads:\n    - {nouns: [], kinds: [company]}\n",
     "resolution.descriptor_heads[0].nouns", "non-empty list of head nouns"),
    ("resolution:\n  pronouns:\n    - {words: [it]}\n", "resolution.pronouns[0]", "and/or mention_kinds"),
    ("resolution:\n  person_titles: chairman\n", "resolution.person_titles", "non-empty list of words"),
    ("resolution:\n  female_officials: Jane Roe\n", "resolution.female_officials", "non-empty list of words"),
])
def test_set_resolution_errors_name_the_field(tmp_path, registry, section, field, message):
    path = write(tmp_path, COMPANIES + section)
    with pytest.raises(ActorSetError, match=message) as caught:
        read_actor_set(path, registry)
    assert field in str(caught.value) and str(caught.value).startswith(f"{path}:")


def test_a_set_brings_traits_that_choose_among_candidates(tmp_path, registry):
    text = HOUTHIS + "    traits: [yemeni]\n"
    predictor = Predictor(LexiconEngine()).with_registry(
        apply_actor_set(registry, read_actor_set(write(tmp_path, text), registry), "add"))
    [doc] = predictor.annotate([DocumentInput("d", "Israel struck the Houthis and Hezbollah on Sunday. "
                                                   "The Yemeni group vowed revenge.")])
    found = [(m.text, m.actor) for s in doc.sentences for m in s.mentions]
    assert ("The Yemeni group", "houthis") in found, found
