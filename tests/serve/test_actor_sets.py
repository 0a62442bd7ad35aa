"""Actor sets in the service: `serve --actors FILE` sets, inline `actor_definitions`, GET /v1/actors?set=."""

from __future__ import annotations

import pytest

from stancelens.model.lexicon import LexiconEngine
from stancelens.model.predictor import Predictor
from tests.helpers import ROOT, ready_client

DOMAIN_ACTORS = str(ROOT / "labels" / "domains" / "taiwan_strait" / "actors.yaml")
HOUTHIS = {"id": "houthis", "kind": "armed_group", "aliases": {"names": ["Houthis", "Ansar Allah"]}}


@pytest.fixture(scope="module")
def client():
    client = ready_client(Predictor(LexiconEngine()), actor_sets=[DOMAIN_ACTORS], actors_mode="replace")
    yield client
    client.__exit__(None, None, None)


def pairs(body) -> set[tuple[str, str]]:
    return {(p["source"], p["target"]) for d in body["documents"] for s in d["sentences"] for p in s["pairs"]}


def test_the_started_set_is_the_default_and_the_models_own_stays_reachable(client):
    body = client.post("/v1/analyze", json={"text": "Beijing condemned Taipei. Hamas praised Iran."}).json()
    assert body["actor_set"] == "taiwan_strait" and ("china", "taiwan") in pairs(body)
    assert not any("hamas" in p for p in pairs(body))
    body = client.post("/v1/analyze", json={"text": "Hamas praised Iran.", "actor_set": "model"}).json()
    assert body["actor_set"] == "model" and ("hamas", "iran") in pairs(body)


def test_inline_definitions_add_actors_to_the_chosen_set(client):
    r = client.post("/v1/analyze", json={"text": "The Houthis attacked Israel.", "actor_set": "model",
                                         "actor_definitions": [HOUTHIS], "actors": ["houthis", "israel"]})
    assert r.status_code == 200, r.text
    assert r.json()["actor_set"] == "model+inline" and ("houthis", "israel") in pairs(r.json())


@pytest.mark.parametrize("definition, field, code", [
    ({**HOUTHIS, "kind": "militia"}, "actor_definitions[0].kind", "bad_actor_definition"),
    ({**HOUTHIS, "id": "Houthis"}, "actor_definitions.0.id", "invalid_request"),
    ({**HOUTHIS, "aliases": {"names": ["x" * 101]}}, "actor_definitions.0.aliases.names.0", "invalid_request"),
    ({**HOUTHIS, "aliases": {"names": [f"A{i}" for i in range(51)]}}, "actor_definitions.0", "invalid_request"),
    ({**HOUTHIS, "aliases": {"names": ["Hamas"]}}, "actor_definitions", "bad_actor_definition"),
    ({**HOUTHIS, "aliases": {}}, "actor_definitions.0.aliases", "invalid_request"),
])
def test_bad_definitions_name_the_field(client, definition, field, code):
    r = client.post("/v1/analyze", json={"text": "x", "actor_set": "model", "actor_definitions": [definition]})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == code and error["field"] == field, error


def test_inline_sets_are_bounded(client):
    many = [{**HOUTHIS, "id": f"a{i}", "aliases": {"names": [f"Actor{i}"]}} for i in range(51)]
    r = client.post("/v1/analyze", json={"text": "x", "actor_definitions": many})
    assert r.status_code == 422 and r.json()["error"]["field"] == "actor_definitions"


def test_unknown_set_and_actor_listing(client):
    r = client.post("/v1/analyze", json={"text": "x", "actor_set": "nope"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_actor_set"
    listed = client.get("/v1/actors").json()
    assert listed["set"] == "taiwan_strait" and listed["sets"] == ["taiwan_strait", "model"]
    assert "taiwan" in {a["id"] for a in listed["actors"]}
    assert "hamas" in {a["id"] for a in client.get("/v1/actors", params={"set": "model"}).json()["actors"]}
    assert client.get("/v1/actors", params={"set": "nope"}).status_code == 422


def test_requests_with_different_sets_share_the_batcher_and_keep_their_answers(client):
    from concurrent.futures import ThreadPoolExecutor

    bodies = [{"text": "Beijing condemned Taipei.", "actor_set": name} for name in ("taiwan_strait", "model")] * 8
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda b: client.post("/v1/analyze", json=b), bodies))
    for body, answer in zip(bodies, answers):
        got = pairs(answer.json())
        assert (("china", "taiwan") in got) == (body["actor_set"] == "taiwan_strait"), got
