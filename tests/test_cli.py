"""Bad input gets an error that names the file, the line, the field, and what was expected."""

import json

import pytest
from typer.testing import CliRunner

from stancelens.cli import app
from stancelens.model.annotation import AnnotationFileError, read_annotations
from tests.helpers import GOLD, PARAGRAPH, check_paragraph


def _good_line() -> dict:
    return json.loads(GOLD.read_text(encoding="utf-8").splitlines()[0])


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(_good_line()) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(AnnotationFileError, match=r"a\.jsonl, line 2, field '\(line\)': expected one JSON object"):
        list(read_annotations(path))


def test_missing_field_names_line_and_field(tmp_path):
    doc = _good_line()
    del doc["sentences"][1]["mentions"][0]["actor"]
    path = tmp_path / "b.jsonl"
    path.write_text(json.dumps(doc) + "\n", encoding="utf-8")
    with pytest.raises(AnnotationFileError, match=r"line 1, field 'sentences\.1\.mentions\.0\.actor': Field required"):
        list(read_annotations(path))


def test_wrong_type_names_what_was_found(tmp_path):
    doc = _good_line()
    doc["sentences"][1]["start"] = "ten"
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps(doc) + "\n", encoding="utf-8")
    with pytest.raises(AnnotationFileError, match=r"field 'sentences\.1\.start'.*found \"ten\""):
        list(read_annotations(path))


def test_offsets_that_do_not_match_the_text_are_rejected(tmp_path):
    doc = _good_line()
    doc["sentences"][1]["mentions"][0]["start"] += 1
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(doc) + "\n", encoding="utf-8")
    with pytest.raises(AnnotationFileError, match=r"line 1.*mention .* (text does not match|lies outside)"):
        list(read_annotations(path))


def test_unknown_label_is_named_by_validate(tmp_path):
    doc = _good_line()
    doc["sentences"][1]["pairs"][0]["stance"] = "friendly"
    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps(doc) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code != 0
    assert "line 1, field 'sentences[1].pairs[0].stance': expected one of ['support', 'oppose', 'neutral'], found 'friendly'" in result.output


def test_analyze_rejects_non_utf8_and_empty_documents(tmp_path):
    bad = tmp_path / "latin.txt"
    bad.write_bytes("Moscow caf\xe9".encode("latin-1"))
    result = CliRunner().invoke(app, ["analyze", str(bad), "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code != 0 and "latin.txt: expected UTF-8 text, found an undecodable byte 0xe9" in result.output
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    result = CliRunner().invoke(app, ["analyze", str(empty), "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code != 0 and "empty.txt: expected a document with text, found an empty file" in result.output


def test_analyze_writes_schema_valid_annotations(tmp_path, root):
    out = tmp_path / "p.jsonl"
    result = CliRunner().invoke(app, ["analyze", *map(str, sorted((root / "seeds").glob("*.txt"))), "--model", "lexicon",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    docs = list(read_annotations(out))
    assert len(docs) == 5 and all(d.model.name == "lexicon" for d in docs)


DOMAIN = "labels/domains/taiwan_strait"


def test_analyze_and_evaluate_with_an_actor_set(tmp_path, root):
    doc = tmp_path / "d.txt"
    doc.write_text("Beijing condemned the US arms sale to Taiwan. Hamas praised Iran.", encoding="utf-8")
    out = tmp_path / "a.jsonl"
    actors = ["--actors", str(root / DOMAIN / "actors.yaml"), "--actors-mode", "replace"]
    result = CliRunner().invoke(app, ["analyze", str(doc), "--out", str(out), *actors])
    assert result.exit_code == 0, result.output
    [annotation] = read_annotations(out)
    pairs = {(p.source, p.target) for s in annotation.sentences for p in s.pairs}
    assert ("china", "taiwan") in pairs and not any("hamas" in p for p in pairs)
    config = tmp_path / "config.xml"
    result = CliRunner().invoke(app, ["export-labelstudio", str(out), "--out", str(tmp_path / "tasks.json"),
                                      "--config", str(config), *actors])
    assert result.exit_code == 0, result.output
    assert 'value="taiwan"' in config.read_text(encoding="utf-8")
    assert json.loads((tmp_path / "tasks.json").read_text(encoding="utf-8"))[0]["predictions"]
    result = CliRunner().invoke(app, ["evaluate", "--gold", str(root / DOMAIN / "gold.jsonl"), "--model", "lexicon",
                                      "--out", str(tmp_path / "r"), "--json", *actors])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["mentions.f1"] > 0.9
    # without the set, the domain's ids are unknown: the error names the file, the line and the field
    result = CliRunner().invoke(app, ["evaluate", "--gold", str(root / DOMAIN / "gold.jsonl"), "--model", "lexicon",
                                      "--out", str(tmp_path / "r2")])
    assert result.exit_code == 2 and "gold.jsonl, line 1" in result.output and "actor" in result.output


@pytest.mark.parametrize("command", [["analyze", "-"], ["score", "-"], ["serve"]])
def test_a_broken_actor_set_stops_a_command_before_any_work(tmp_path, command):
    bad = tmp_path / "set.yaml"
    bad.write_text("actors:\n  - id: a\n    kind: militia\n    aliases: {names: [A]}\n", encoding="utf-8")
    extra = {"analyze": ["--out", str(tmp_path / "o.jsonl")], "score": ["--out", str(tmp_path / "o.parquet")],
             "serve": []}[command[0]]
    result = CliRunner().invoke(app, [*command, *extra, "--model", "lexicon", "--actors", str(bad)], input="x\n")
    assert result.exit_code == 2, result.output
    assert f"{bad}:3: actors[0].kind: expected one of the kinds" in result.output


def test_analyze_gives_the_paragraph_readings_of_issue_14(tmp_path):
    doc = tmp_path / "paragraph.txt"
    doc.write_text(PARAGRAPH, encoding="utf-8")
    out = tmp_path / "p.jsonl"
    result = CliRunner().invoke(app, ["analyze", str(doc), "--model", "lexicon", "--out", str(out)])
    assert result.exit_code == 0, result.output
    check_paragraph(next(read_annotations(out)).model_dump())


def test_evaluate_scores_resolution_against_the_baseline(tmp_path, root):
    result = CliRunner().invoke(app, ["evaluate", "--model", "lexicon", "--resolution",
                                      str(root / "labels/resolution/dev.jsonl"), "--out", str(tmp_path / "r"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    for key in ("resolution_accuracy", "voice_accuracy", "speaker_accuracy"):
        assert summary[f"resolution.system.{key}"] > summary[f"resolution.baseline.{key}"]
    missing = CliRunner().invoke(app, ["evaluate", "--model", "lexicon", "--resolution", str(tmp_path / "none.jsonl"),
                                       "--out", str(tmp_path / "r2")])
    assert missing.exit_code != 0 and "no such file" in missing.output
