"""CSV annotations, matching by document and sentence offsets, `evaluate --pred`, POST /v1/evaluate, selection."""

from __future__ import annotations

import csv
import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from stancelens.cli import app
from stancelens.model.lexicon import LexiconEngine
from stancelens.model.predictor import Predictor
from stancelens.training.annotation_io import load_any
from stancelens.training.selection import candidates_from_annotations, select
from tests.helpers import ready_client

MENTION_COLS = ["doc_id", "start", "end", "actor", "framing", "voice", "speaker", "negated", "kind",
                "term_start", "term_end", "sentence_start", "sentence_end"]
PAIR_COLS = ["doc_id", "sentence_start", "sentence_end", "source", "target", "stance"]


def gold_to_csv(docs, path, with_text=True, only_pairs=False):
    cols = (["text"] if with_text else []) + sorted(set(MENTION_COLS) | set(PAIR_COLS))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, cols)
        writer.writeheader()
        for d in docs:
            for s in d.sentences:
                base = {"doc_id": d.doc_id, "sentence_start": s.start, "sentence_end": s.end}
                if with_text:
                    base["text"] = d.text
                for m in [] if only_pairs else s.mentions:
                    f = m.framing
                    writer.writerow({**base, "start": m.start, "end": m.end, "actor": m.actor, "framing": f.label,
                                     "voice": f.voice, "speaker": f.speaker or "", "negated": str(f.negated).lower(),
                                     "kind": m.kind, "term_start": f.term.start if f.term else "",
                                     "term_end": f.term.end if f.term else ""})
                for p in s.pairs:
                    writer.writerow({**base, "source": p.source, "target": p.target, "stance": p.stance})


def comparable(doc) -> dict:
    data = doc.model_dump(exclude={"annotator", "model", "label_standard"})
    for s in data["sentences"]:
        ids = {m["id"]: f"m{i}" for i, m in enumerate(s["mentions"])}
        for m in s["mentions"]:
            m["id"] = ids[m["id"]]
        for p in s["pairs"]:
            p["source_mentions"] = [ids[x] for x in p["source_mentions"]]
            p["target_mentions"] = [ids[x] for x in p["target_mentions"]]
    return data


def test_csv_with_mention_and_pair_rows_equals_the_gold(gold_docs, tmp_path):
    path = tmp_path / "gold.csv"
    gold_to_csv(gold_docs, path)
    docs = load_any(path)
    assert [comparable(d) for d in docs] == [comparable(d) for d in gold_docs]


def test_csv_takes_texts_from_a_documents_folder(gold_docs, root, tmp_path):
    path = tmp_path / "gold.csv"
    gold_to_csv(gold_docs, path, with_text=False)
    with pytest.raises(ValueError, match=r"gold\.csv, line 2, field 'text': expected the text of document"):
        load_any(path)
    docs = load_any(path, root / "seeds")
    assert [comparable(d) for d in docs] == [comparable(d) for d in gold_docs]


def test_pair_only_csv_finds_mentions_with_the_registry(gold_docs, tmp_path):
    path = tmp_path / "pairs.csv"
    gold_to_csv(gold_docs[:1], path, only_pairs=True)
    (doc,) = load_any(path)
    gold_pairs = [(p.source, p.target, p.stance) for s in gold_docs[0].sentences for p in s.pairs]
    assert [(p.source, p.target, p.stance) for s in doc.sentences for p in s.pairs] == gold_pairs


def _write(path, rows, cols):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, cols)
        writer.writeheader()
        writer.writerows(rows)


TEXT = "Moscow hosted a Hamas delegation. Netanyahu called Hamas terrorists."


@pytest.mark.parametrize("row, cols, match", [
    ({"doc_id": "d", "text": TEXT, "sentence_start": 0, "sentence_end": 33, "source": "russia", "target": "hamas",
      "stance": "supports"}, PAIR_COLS + ["text"], r"m\.csv, line 2, field 'stance': expected one of \['support'"),
    ({"doc_id": "d", "text": TEXT, "start": 0, "end": 6, "actor": "moscow"}, MENTION_COLS + ["text"],
     r"line 2, field 'actor': expected an actor id from labels/actors\.yaml, found 'moscow'"),
    ({"doc_id": "d", "text": TEXT, "start": "", "end": 6, "actor": "russia"}, MENTION_COLS + ["text"],
     r"line 2, field 'start': expected a value, found an empty cell"),
    ({"doc_id": "d", "text": TEXT, "start": 0, "end": 6, "actor": "russia", "framing": "terror"},
     MENTION_COLS + ["text"], r"field 'framing': expected one of \['terrorist'"),
    ({"doc_id": "d", "text": TEXT, "start": 30, "end": 40, "actor": "hamas"}, MENTION_COLS + ["text"],
     r"field 'start': span \[30, 40\) of 'd' lies in no sentence"),
    ({"doc_id": "d", "text": TEXT, "x": 1}, ["doc_id", "text", "x"], r"field '\(header\)': expected the columns"),
])
def test_malformed_csv_names_file_row_and_field(tmp_path, row, cols, match):
    path = tmp_path / "m.csv"
    _write(path, [row], cols)
    with pytest.raises(ValueError, match=match):
        load_any(path)


def test_overlapping_csv_mentions_fail(tmp_path):
    path = tmp_path / "o.csv"
    rows = [{"doc_id": "d", "text": TEXT, "start": 16, "end": 21, "actor": "hamas"},
            {"doc_id": "d", "text": TEXT, "start": 18, "end": 32, "actor": "hamas"}]
    _write(path, rows, MENTION_COLS + ["text"])
    with pytest.raises(ValueError, match=r"o\.csv, line 3, field 'start': mention \[18, 32\) overlaps the mention "
                                         r"of row 2"):
        load_any(path)


@pytest.fixture(scope="module")
def lexicon_pred(root, tmp_path_factory):
    path = tmp_path_factory.mktemp("pred") / "p.jsonl"
    result = CliRunner().invoke(app, ["analyze", *map(str, sorted((root / "seeds").glob("*.txt"))), "--model",
                                      "lexicon", "--out", str(path)])
    assert result.exit_code == 0, result.output
    return path


def test_cli_evaluate_predictions_against_gold(root, lexicon_pred, tmp_path):
    out = tmp_path / "eval"
    result = CliRunner().invoke(app, ["evaluate", "--gold", str(root / "labels/gold/seeds.jsonl"), "--pred",
                                      str(lexicon_pred), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["name"] == "lexicon"
    stance = report["gold_mentions"]["stance"]
    assert {"per_class", "macro_f1", "micro_f1", "confusion"} <= set(stance)
    assert report["gold_mentions"]["unmatched"]["gold_only_sentences"] == []
    assert (out / "report.md").exists() and (out / "confusion_gold_mentions_stance.png").exists()
    assert json.loads((out / "confusion_gold_mentions_stance.json").read_text())["labels"][:3] == [
        "support", "oppose", "neutral"]


def test_partial_gold_scores_only_its_sentences(gold_docs, lexicon_pred, tmp_path):
    from stancelens.model.annotation import write_annotations

    doc = gold_docs[0]
    one = doc.model_copy(update={"sentences": [s for s in doc.sentences if s.pairs][:1]})
    write_annotations([one], tmp_path / "one.jsonl")
    out = tmp_path / "eval"
    result = CliRunner().invoke(app, ["evaluate", "--gold", str(tmp_path / "one.jsonl"), "--pred", str(lexicon_pred),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["gold_mentions"]["stance"]["support"] == len(one.sentences[0].pairs)
    assert report["gold_mentions"]["unmatched"]["pred_only_sentences"] > 0
    assert len(report["unmatched_documents"]["pred_only"]) == 4


def test_selection_removes_near_duplicates_and_spreads(gold_docs):
    pred = Predictor(LexiconEngine()).annotate_given_mentions(gold_docs)
    doc = pred[0]
    twin = doc.model_copy(update={"doc_id": "twin"})  # the same sentences again, as a syndicated copy would be
    chosen, stats = select(candidates_from_annotations([doc, twin]), n=50, per_pair=50, per_source=50)
    assert stats["skipped"].get("duplicate_text", 0) >= len([s for s in doc.sentences if s.mentions]) - 1
    texts = [c.sentence.text for c in chosen]
    assert len(texts) == len(set(texts))
    chosen, _ = select(candidates_from_annotations(pred), n=10, per_pair=1, per_source=2)
    assert len({c.key for c in chosen}) == len(chosen)
    assert max([c.doc.doc_id for c in chosen].count(d.doc_id) for d in pred) <= 2
    assert [c.uncertainty for c in chosen] == sorted([c.uncertainty for c in chosen], reverse=True)


# -- POST /v1/evaluate -------------------------------------------------------------------------------
def client_for(**settings) -> TestClient:
    return ready_client(Predictor(LexiconEngine()), **settings)


@pytest.fixture(scope="module")
def client():
    c = client_for()
    yield c
    c.__exit__(None, None, None)


def _files(root, *names):
    return [("gold", (n, (root / "labels/gold" / n).read_bytes(), "application/octet-stream")) for n in names]


def test_service_agreement_pred_and_model(client, root, lexicon_pred):
    r = client.post("/v1/evaluate", files=_files(root, "seeds.jsonl", "seeds.pass2.jsonl"))
    assert r.status_code == 200, r.text
    assert r.json()["annotators"] == ["seeds", "seeds.pass2"]
    assert r.json()["tasks"]["stance"]["krippendorff_alpha"] < 1.0
    files = _files(root, "seeds.jsonl") + [("pred", ("p.jsonl", lexicon_pred.read_bytes(), "application/json"))]
    r = client.post("/v1/evaluate", files=files)
    assert r.status_code == 200, r.text
    assert r.json()["summary"]["stance.micro_f1"] > 0.5
    r = client.post("/v1/evaluate", files=_files(root, "seeds.jsonl"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"]["name"] == "lexicon" and {"gold_mentions", "end_to_end"} <= set(body)


def test_service_malformed_upload_and_auth(client, root):
    r = client.post("/v1/evaluate", files=[("gold", ("bad.jsonl", b'{"doc_id": "x"}\n', "text/plain"))])
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "invalid_annotations" and error["field"] == "gold[0]"
    assert error["message"].startswith("bad.jsonl, line 1")
    r = client.post("/v1/evaluate")
    assert r.status_code == 422 and r.json()["error"]["field"] == "gold"
    secured = client_for(api_key="k")
    try:
        r = secured.post("/v1/evaluate", files=_files(root, "seeds.jsonl", "seeds.pass2.jsonl"))
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        r = secured.post("/v1/evaluate", files=_files(root, "seeds.jsonl", "seeds.pass2.jsonl"),
                         headers={"Authorization": "Bearer k"})
        assert r.status_code == 200
    finally:
        secured.__exit__(None, None, None)


def test_select_reads_the_parquet_of_score(root, tmp_path):
    from stancelens.training.annotation_io import read_documents
    from stancelens.training.labelstudio import from_tasks, labeling_config, sdk_problems

    runner = CliRunner()
    results = tmp_path / "s.parquet"
    r = runner.invoke(app, ["score", str(root / "seeds"), "--model", "lexicon", "--out", str(results)])
    assert r.exit_code == 0, r.output
    out = tmp_path / "tasks.json"
    r = runner.invoke(app, ["select", str(results), "--n", "8", "--out", str(out)])
    assert r.exit_code == 0, r.output
    tasks = json.loads(out.read_text())
    assert len(tasks) == 8 and sdk_problems(labeling_config(), tasks) == []
    for t in tasks:
        t["annotations"] = [{"result": t["predictions"][0]["result"], "completed_by": 1}]
    # Parquet rows carry sentences, not whole documents: the import takes the texts from --documents.
    sets, _ = from_tasks(tasks, documents=read_documents(root / "seeds"))
    assert sum(len(d.sentences) for d in sets["user 1"]) == 8
