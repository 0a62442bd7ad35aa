"""Training on your own annotations: `train --from MODEL --add FILE`, and the annotation loop end to end on
the second domain (labels/domains/taiwan_strait) with the gold as a simulated annotator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from stancelens.cli import app
from stancelens.model.annotation import read_annotations, write_annotations
from stancelens.training.labelstudio import document_task, write_tasks
from tests.helpers import MINI_CORPUS, ROOT

DOMAIN = ROOT / "labels" / "domains" / "taiwan_strait"
ACTORS = DOMAIN / "actors.yaml"
runner = CliRunner()


def cli(*args: str) -> str:
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def finetune_config(tmp_path: Path) -> Path:
    """The shipped fine-tune recipe, shrunk to the test's data: no public datasets, a few steps."""
    config = yaml.safe_load((ROOT / "training" / "configs" / "finetune.yaml").read_text(encoding="utf-8"))
    config.update(authored_path=str(MINI_CORPUS), dse_path=None, relabelled_path=None, epochs=3, batch_size=16,
                  max_length=64, learning_rate=1e-4, head_learning_rate=1e-3, replay_fraction=1.0,
                  authored_valid_fraction=0.2)
    path = tmp_path / "finetune.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def stance_f1(output: str) -> float:
    return json.loads(output.strip().splitlines()[-1])["stance.macro_f1"]


@pytest.mark.slow
def test_the_annotation_loop_raises_the_new_domains_f1(tiny_model, tmp_path):
    gold = {d.doc_id: d for d in read_annotations(DOMAIN / "gold.jsonl")}
    articles = tmp_path / "articles.jsonl"
    articles.write_text("".join(json.dumps({"id": d, "text": g.text}) + "\n" for d, g in gold.items()), encoding="utf-8")
    actors = ("--actors", ACTORS, "--actors-mode", "replace")
    # score -> select: the sentences the model is least sure about
    cli("score", articles, "--out", tmp_path / "scored.parquet", "--model", tiny_model, "--fp32", *actors)
    cli("select", tmp_path / "scored.parquet", "--out", tmp_path / "tasks.json", "--n", 100, "--per-pair", 100,
        "--per-source", 100)
    chosen = {t["data"]["doc_id"] for t in json.loads((tmp_path / "tasks.json").read_text(encoding="utf-8"))}
    assert 90 <= len(chosen) <= 100
    # the annotator corrects every pre-annotated sentence to the gold (a Label Studio export of annotations)
    export = tmp_path / "export.json"
    write_tasks([document_task(gold[d], as_predictions=False) for d in sorted(chosen)], export)
    held_out = tmp_path / "held_out.jsonl"
    write_annotations([g for d, g in gold.items() if d not in chosen], held_out)
    # evaluate against the annotations, fine-tune on them, evaluate on the sentences nobody annotated
    cli("evaluate", "--gold", export, "--model", tiny_model, "--out", tmp_path / "r0", "--json", *actors)
    before = stance_f1(cli("evaluate", "--gold", held_out, "--model", tiny_model, "--out", tmp_path / "r1", "--json",
                           *actors))
    adapted = tmp_path / "adapted"
    cli("train", "--from", tiny_model, "--add", export, "--actors", ACTORS, "--config", finetune_config(tmp_path),
        "--out", adapted, "--quiet", "--add-licence", "test annotations")
    after = stance_f1(cli("evaluate", "--gold", held_out, "--model", adapted, "--out", tmp_path / "r2", "--json",
                          *actors))
    assert after > before + 0.05, (before, after)
    metrics = json.loads((adapted / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["init_from"]["hash"] == json.loads((tiny_model / "stancelens.json").read_text())["hash"]
    [added] = metrics["added"]
    assert added["path"] == str(export) and added["documents"] == len(chosen) and added["licence_note"] == "test annotations"
    assert len(added["sha256"]) == 64
    card = (adapted / "DATA.md").read_text(encoding="utf-8")
    assert str(export) in card and "test annotations" in card
    assert (adapted / "labels" / "actor_sets" / "actors.yaml").is_file()


def test_train_from_refuses_its_own_folder_and_bad_added_files(tiny_model, tmp_path):
    result = runner.invoke(app, ["train", "--from", str(tiny_model), "--out", str(tiny_model)])
    assert result.exit_code == 2 and "expected another --out" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"doc_id": "x", "text": "Taiwan thanked Japan.", "sentences": []}\n', encoding="utf-8")
    result = runner.invoke(app, ["train", "--from", str(tiny_model), "--add", str(bad), "--config",
                                 str(finetune_config(tmp_path)), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "--add" in result.output and "expected annotated sentences" in result.output
    assert not (tmp_path / "m").exists()


def test_train_from_a_folder_that_is_no_model_says_so(tmp_path):
    result = runner.invoke(app, ["train", "--from", str(tmp_path), "--add", str(DOMAIN / "gold.jsonl"), "--actors",
                                 str(ACTORS), "--config", str(finetune_config(tmp_path)), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "expected a stancelens model directory" in result.output
