"""Label Studio: the shipped configuration, pre-annotated tasks, and the export → annotate → import round trip."""

from __future__ import annotations

import copy
import json

import pytest
from typer.testing import CliRunner

from stancelens.cli import app
from stancelens.model.lexicon import LexiconEngine
from stancelens.model.predictor import DocumentInput, Predictor
from stancelens.training.annotation_io import load_any, load_sets
from stancelens.training.labelstudio import (
    config_path,
    document_task,
    from_tasks,
    labeling_config,
    sdk_problems,
    to_tasks,
)

EMOJI_DOC = "Breaking 🚨: Moscow hosted a Hamas delegation. Netanyahu called Hamas terrorists 🙄 on Monday."


@pytest.fixture(scope="module")
def predicted(root):
    from stancelens.model.files import read_text_document

    docs = [DocumentInput(p.stem, read_text_document(p)) for p in sorted((root / "seeds").glob("*.txt"))]
    docs.append(DocumentInput("emoji", EMOJI_DOC))
    return Predictor(LexiconEngine()).annotate(docs)


def annotate_like_label_studio(tasks: list[dict], who: dict | int = 7) -> list[dict]:
    """What a Label Studio JSON export looks like after an annotator accepts every pre-annotation."""
    out = []
    for n, task in enumerate(copy.deepcopy(tasks), start=1):
        result = []
        for r in task["predictions"][0]["result"]:
            r = {k: v for k, v in r.items() if k != "score"}
            if r["type"] != "relation":
                r["origin"] = "prediction"
            result.append(r)
        task["id"] = n
        task["annotations"] = [{"id": 100 + n, "completed_by": who, "result": result, "was_cancelled": False,
                                "ground_truth": False, "lead_time": 12.5}]
        out.append(task)
    return out


def strip_probs(doc) -> dict:
    data = doc.model_dump(exclude={"model", "annotator"})
    for s in data["sentences"]:
        for m in s["mentions"]:
            m["framing"]["probs"] = None
        for p in s["pairs"]:
            p["probs"] = None
    return data


def test_shipped_config_is_generated_from_the_registry_and_parses(registry):
    shipped = config_path().read_text(encoding="utf-8")
    assert shipped == labeling_config(), "run `stancelens export-labelstudio ... --config labels/label-studio/config.xml`"
    from label_studio_sdk.label_interface import LabelInterface

    interface = LabelInterface(shipped)
    interface.validate()
    assert set(interface.get_control("actor").labels) == set(registry.actors)
    assert interface.get_control("framing").attr.get("perRegion") == "true"


def test_exported_tasks_pass_label_studios_validator(predicted):
    tasks = to_tasks(predicted)
    assert sdk_problems(labeling_config(), tasks) == []
    assert sdk_problems(labeling_config(), annotate_like_label_studio(tasks)) == []
    prediction = tasks[0]["predictions"][0]
    assert prediction["model_version"].startswith("lexicon")
    kinds = {(r["type"], r.get("from_name")) for r in prediction["result"]}
    assert {("labels", "actor"), ("choices", "framing"), ("choices", "voice"), ("relation", None)} <= kinds


def test_validator_catches_a_wrong_label(predicted):
    tasks = to_tasks(predicted[:1])
    region = next(r for r in tasks[0]["predictions"][0]["result"] if r.get("from_name") == "actor")
    region["value"]["labels"] = ["not_an_actor"]
    assert any("Invalid value for control 'actor'" in p for p in sdk_problems(labeling_config(), tasks))


def test_round_trip_export_annotate_import_equals_input(predicted):
    tasks = annotate_like_label_studio(to_tasks(predicted), who={"id": 7, "email": "ann@example.org"})
    sets, skipped = from_tasks(json.loads(json.dumps(tasks)))
    assert skipped == []
    back = {d.doc_id: d for d in sets["ann@example.org"]}
    assert set(back) == {d.doc_id for d in predicted}
    for doc in predicted:
        got = back[doc.doc_id]
        assert got.annotator == "ann@example.org" and got.model is None
        assert strip_probs(got) == strip_probs(doc)
    emoji = back["emoji"]
    assert [m.text for s in emoji.sentences for m in s.mentions] == ["Moscow", "Hamas", "Netanyahu", "Hamas"]


def test_round_trip_of_predictions_keeps_the_model(predicted):
    sets, _ = from_tasks(to_tasks(predicted), use="predictions")
    (docs,) = sets.values()
    assert [d.model for d in docs] == [d.model for d in predicted]


def test_offsets_are_utf16_in_label_studio(predicted):
    task = document_task(next(d for d in predicted if d.doc_id == "emoji"))
    moscow = next(r for r in task["predictions"][0]["result"] if r.get("from_name") == "actor")
    start = EMOJI_DOC.index("Moscow")
    assert moscow["value"]["start"] == start + 1  # 🚨 is two UTF-16 code units
    assert moscow["value"]["text"] == "Moscow"


def test_gold_round_trips_through_annotations(gold_docs, tmp_path):
    tasks = [document_task(d, as_predictions=False) for d in gold_docs]
    for t in tasks:
        t["annotations"][0]["completed_by"] = {"email": "adjudicator"}
    path = tmp_path / "gold.json"
    path.write_text(json.dumps(tasks))
    docs = load_any(path)
    assert [strip_probs(d) for d in docs] == [strip_probs(d) for d in gold_docs]


def _one_task(predicted) -> list[dict]:
    return annotate_like_label_studio(to_tasks([predicted[0]]))


def _regions(task, control):
    return [r for r in task["annotations"][0]["result"] if r.get("from_name") == control]


def test_wrong_actor_label_names_file_task_and_field(predicted, tmp_path):
    tasks = _one_task(predicted)
    _regions(tasks[0], "actor")[0]["value"]["labels"] = ["moscow"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(tasks))
    with pytest.raises(ValueError, match=r"bad\.json.*task 1: result\[0\] \(region s0m0\)\.value\.labels.*"
                                         r"expected an actor id.*found 'moscow'"):
        load_any(path)


def test_overlapping_spans_fail(predicted):
    tasks = _one_task(predicted)
    first, second = _regions(tasks[0], "actor")[:2]
    first["value"]["end"] = second["value"]["start"] + 1
    first["value"].pop("text")
    with pytest.raises(ValueError, match=r"task 1: region s0m1.*overlaps region s0m0"):
        from_tasks(tasks, "x.json")


def test_unknown_relation_label_and_missing_text_fail(predicted):
    tasks = _one_task(predicted)
    rel = next(r for r in tasks[0]["annotations"][0]["result"] if r["type"] == "relation")
    rel["labels"] = ["supports"]
    with pytest.raises(ValueError, match=r"labels.*expected exactly one relation label from \['support'"):
        from_tasks(tasks, "x.json")
    tasks = _one_task(predicted)
    del tasks[0]["data"]["text"]
    with pytest.raises(ValueError, match=r"x\.json, line 1, field 'task 1: data\.text'"):
        from_tasks(tasks, "x.json")


def test_conflicting_stances_and_cross_sentence_relations_fail(predicted):
    tasks = _one_task(predicted)
    result = tasks[0]["annotations"][0]["result"]
    rel = next(r for r in result if r["type"] == "relation" and r["labels"] != ["term"])
    result.append({**rel, "labels": ["oppose" if rel["labels"] != ["oppose"] else "support"]})
    with pytest.raises(ValueError, match="already has stance"):
        from_tasks(tasks, "x.json")


def test_unannotated_and_cancelled_tasks_are_listed_not_dropped(predicted, tmp_path):
    tasks = annotate_like_label_studio(to_tasks(predicted[:3]))
    tasks[1]["annotations"] = []
    tasks[2]["annotations"][0]["was_cancelled"] = True
    path = tmp_path / "partial.json"
    path.write_text(json.dumps(tasks))
    (docs,) = load_sets(path)
    assert len(docs) == 1
    assert len(docs.skipped) == 3  # task 2 unannotated; task 3 cancelled, so unannotated too
    assert any("cancelled" in s for s in docs.skipped)


def test_two_annotators_in_one_export_give_agreement(predicted, tmp_path):
    tasks = annotate_like_label_studio(to_tasks(predicted[:2]), who=1)
    other = annotate_like_label_studio(to_tasks(predicted[:2]), who=2)
    for t, o in zip(tasks, other, strict=False):
        t["annotations"] += o["annotations"]
    rel = next(r for r in tasks[0]["annotations"][1]["result"] if r["type"] == "relation" and r["labels"] != ["term"])
    rel["labels"] = ["oppose" if rel["labels"] != ["oppose"] else "support"]
    path = tmp_path / "team.json"
    path.write_text(json.dumps(tasks))
    out = tmp_path / "agree"
    result = CliRunner().invoke(app, ["evaluate", "--gold", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["annotators"] == ["team:user 1", "team:user 2"]
    assert report["tasks"]["stance"]["krippendorff_alpha"] < 1.0
    assert report["tasks"]["mentions"]["krippendorff_alpha"] == 1.0


def test_cli_export_and_select(root, tmp_path):
    runner = CliRunner()
    pred = tmp_path / "p.jsonl"
    r = runner.invoke(app, ["analyze", *map(str, sorted((root / "seeds").glob("*.txt"))), "--model", "lexicon",
                            "--out", str(pred)])
    assert r.exit_code == 0, r.output
    tasks_path, config = tmp_path / "tasks.json", tmp_path / "config.xml"
    r = runner.invoke(app, ["export-labelstudio", str(pred), "--out", str(tasks_path), "--config", str(config)])
    assert r.exit_code == 0, r.output
    tasks = json.loads(tasks_path.read_text())
    assert len(tasks) == 5 and config.read_text() == labeling_config()
    sel = tmp_path / "select.json"
    r = runner.invoke(app, ["select", str(pred), "--n", "12", "--per-source", "3", "--per-pair", "2", "--out", str(sel)])
    assert r.exit_code == 0, r.output
    chosen = json.loads(sel.read_text())
    assert len(chosen) == 12
    assert sdk_problems(labeling_config(), chosen) == []
    per_doc: dict = {}
    for t in chosen:
        per_doc[t["data"]["doc_id"]] = per_doc.get(t["data"]["doc_id"], 0) + 1
        assert len(t["data"]["sentences"]) == 1 and t["data"]["document"][t["data"]["offset"]:].startswith(t["data"]["text"])
    assert max(per_doc.values()) <= 3
    keys = [t["data"]["selection"]["least_certain"] for t in chosen]
    assert max(keys.count(k) for k in keys) <= 2
    probs = [t["data"]["selection"]["probability"] for t in chosen]
    assert probs == sorted(probs) or len(set(probs)) > 1
    # Annotated selection tasks come back as sentence-level gold that evaluate can match.
    sets, _ = from_tasks(annotate_like_label_studio(chosen))
    (docs,) = sets.values()
    assert sum(len(d.sentences) for d in docs) == 12
