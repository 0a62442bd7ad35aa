"""Batch scoring: rows and provenance, formats, errors, checkpoints, kill -9 and resume, the Ray engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from stancelens.batch.feeds import Article, InputReader
from stancelens.batch.runners import LocalRunner, score_batch
from stancelens.batch.scoring import Checkpoint, ScoreRun, input_fingerprint
from stancelens.batch.tables import ScoringError, errors_path, mentions_path, parts_path, read_table
from stancelens.model.lexicon import LexiconEngine
from stancelens.model.predictor import Predictor
from tests.helpers import FEED_INPUTS as FIXTURE_INPUTS
from tests.helpers import FEEDS, PARAGRAPH, ROOT, check_paragraph

OUTLETS = ["Moscow Wire", "Tel Aviv Daily", "Levant Post", "Gazeta Test"]


@pytest.fixture(scope="module")
def lexicon() -> Predictor:
    return Predictor(LexiconEngine())


def seed_corpus(path: Path, n: int) -> Path:
    """n distinct articles built from windows of the seed paragraphs, with outlets and dates."""
    paragraphs = [
        p
        for f in sorted((ROOT / "seeds").glob("*.txt"))
        for p in f.read_text("utf-8").splitlines()
        if len(p.split()) > 8
    ]
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            start = (i * 7) % len(paragraphs)
            text = "\n".join(paragraphs[(start + k) % len(paragraphs)] for k in range(1 + i % 3))
            text += f"\nRussia's envoy met the Hamas delegation for the {i + 1}th time, the agency said."
            handle.write(
                json.dumps(
                    {
                        "id": f"doc-{i}",
                        "text": text,
                        "url": f"https://news.example/{i}",
                        "source": OUTLETS[i % 4],
                        "date": f"202{i % 4}-0{1 + i % 9}-1{i % 10}",
                    }
                )
                + "\n"
            )
    return path


class DiesAfter(LocalRunner):
    """A runner that raises `error` once it has scored `count` documents (the run hands it one bounded chunk
    at a time, so it counts across calls)."""

    def __init__(self, predictor, count: int, error: type[BaseException]):
        super().__init__(predictor)
        self.count, self.error, self.seen = count, error, 0

    def run(self, items, batch_size):
        for result in super().run(items, batch_size):
            if self.seen == self.count:
                raise self.error
            self.seen += 1
            yield result


def rows_without_time(path: Path) -> list[dict]:
    table = read_table(path).drop(["scored_at"])
    return table.to_pylist()


def test_fixture_feeds_are_scored_with_provenance(tmp_path, lexicon):
    out = tmp_path / "s.parquet"
    summary = ScoreRun(FIXTURE_INPUTS, out, lexicon, progress=False).run()
    assert mentions_path(out) == tmp_path / "s.mentions.parquet"
    pairs = pq.read_table(out).to_pandas()
    mentions = pq.read_table(tmp_path / "s.mentions.parquet").to_pandas()
    assert summary.totals.pairs == len(pairs) > 100 and summary.totals.mentions == len(mentions) > 100
    assert summary.duplicates == 2 and summary.totals.documents == 13
    assert pairs["row_id"].is_unique and mentions["row_id"].is_unique
    assert (pairs["source"] != pairs["target"]).all()
    probs = pairs[["prob_support", "prob_oppose", "prob_neutral"]].sum(axis=1)
    assert probs.between(0.999, 1.001).all()
    assert set(pairs["stance"]) <= {"support", "oppose", "neutral"}
    wire = pairs[pairs["outlet"] == "Moscow Wire"].iloc[0]
    assert wire["url"].startswith("https://moscow-wire.example/")
    assert wire["published"].endswith("+00:00")
    assert wire["model_name"] == "lexicon" and wire["model_version"] and wire["scored_at"]
    # sentence offsets point into the document: the sentence text is what they cut out
    assert all(
        len(t) == e - s
        for t, s, e in zip(pairs["sentence_text"], pairs["sentence_start"], pairs["sentence_end"], strict=True)
    )
    framed = mentions[mentions["framing"] != "none"]
    assert len(framed) and framed["term_text"].notna().all()
    assert set(mentions["voice"]) <= {"author", "quoted", "reported"}
    errors = [json.loads(line) for line in errors_path(out).read_text("utf-8").splitlines()]
    assert {e["item"] for e in errors} >= {"(feed)", "line 3", "line 6", "row 3"}
    assert all(set(e) == {"input", "item", "reason"} for e in errors)
    assert not parts_path(out).exists()
    assert "documents 13" in summary.line() and "errors 7" in summary.line()


def test_formats_give_the_same_rows(tmp_path, lexicon):
    ids = {}
    for fmt in ("parquet", "jsonl", "csv"):
        out = tmp_path / f"s.{fmt}"
        ScoreRun(FIXTURE_INPUTS[:2], out, lexicon, progress=False).run()
        assert mentions_path(out).exists()
        ids[fmt] = (
            read_table(out).column("row_id").to_pylist(),
            read_table(mentions_path(out)).column("row_id").to_pylist(),
        )
    assert ids["parquet"] == ids["jsonl"] == ids["csv"]
    first = json.loads((tmp_path / "s.jsonl").read_text("utf-8").splitlines()[0])
    assert {"row_id", "doc_id", "sentence_text", "prob_support", "model_name", "scored_at"} <= set(first)


def test_row_ids_are_stable_across_runs_and_batch_sizes(tmp_path, lexicon):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    ScoreRun(FIXTURE_INPUTS, a, lexicon, batch_size=1, progress=False).run()
    ScoreRun(list(reversed(FIXTURE_INPUTS)), b, lexicon, batch_size=7, progress=False).run()
    # the same documents in another order, in other batches: the same rows under the same ids (which copy
    # of a duplicated article is kept depends on the order, so its url may differ; its text does not)
    ra = {r["row_id"]: r for r in rows_without_time(a)}
    rb = {r["row_id"]: r for r in rows_without_time(b)}
    assert set(ra) == set(rb)
    keep = ["stance", "prob_oppose", "sentence_start", "sentence_text", "source", "target", "doc_hash"]
    assert all({k: ra[i][k] for k in keep} == {k: rb[i][k] for k in keep} for i in ra)


def test_interrupted_run_resumes_to_the_same_rows(tmp_path, lexicon):
    corpus = seed_corpus(tmp_path / "corpus.jsonl", 40)
    clean = tmp_path / "clean.parquet"
    ScoreRun([str(corpus)], clean, lexicon, progress=False).run()

    out = tmp_path / "resumed.parquet"

    class Crash(Exception):
        pass

    with pytest.raises(Crash):
        ScoreRun([str(corpus)], out, lexicon, DiesAfter(lexicon, 25, Crash), batch_size=4, checkpoint_docs=10,
                 progress=False).run()
    manifest = json.loads((parts_path(out) / "manifest.json").read_text("utf-8"))
    assert [p["documents"] for p in manifest["parts"]] == [10, 10]
    (parts_path(out) / "part-000003.pairs.parquet").write_bytes(b"half a part")  # died while writing
    summary = ScoreRun([str(corpus)], out, lexicon, batch_size=4, checkpoint_docs=10, progress=False).run()
    assert summary.resumed_documents == 20 and summary.scored_now == 20
    assert rows_without_time(out) == rows_without_time(clean)
    assert rows_without_time(mentions_path(out)) == rows_without_time(mentions_path(clean))


def test_kill_9_mid_run_then_rerun_gives_a_clean_runs_rows(tmp_path):
    """A real `stancelens score` process, SIGKILLed once parts exist, then started again."""
    corpus = seed_corpus(tmp_path / "corpus.jsonl", 300)
    exe = str(Path(sys.executable).parent / "stancelens")

    def command(out: Path) -> list[str]:
        return [
            exe,
            "score",
            str(corpus),
            "--out",
            str(out),
            "--model",
            "lexicon",
            "--batch-size",
            "8",
            "--checkpoint-docs",
            "16",
        ]

    clean = tmp_path / "clean.parquet"
    subprocess.run(command(clean), check=True, capture_output=True, timeout=300)

    out = tmp_path / "killed.parquet"
    manifest = parts_path(out) / "manifest.json"
    proc = subprocess.Popen(command(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    parts = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if manifest.exists():
            parts = len(json.loads(manifest.read_text("utf-8"))["parts"])
            if parts >= 3:
                break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert parts >= 3 and not out.exists()

    done = subprocess.run(command(out), check=True, capture_output=True, text=True, timeout=300)
    assert "from the checkpoint" in done.stdout
    resumed_from = int(done.stdout.split("scored now, ")[1].split(" from")[0])
    assert resumed_from >= 48
    assert rows_without_time(out) == rows_without_time(clean)
    assert rows_without_time(mentions_path(out)) == rows_without_time(mentions_path(clean))
    assert not parts_path(out).exists()


class Stop(Exception):
    pass


class StopAfterTwo(LocalRunner):
    """A run that dies after scoring two documents (its checkpoint stays behind)."""

    def run(self, items, batch_size):
        yield from super().run(items[:2], batch_size)
        raise Stop


def test_checkpoint_refuses_another_model_and_a_second_writer(tmp_path, lexicon):
    corpus = seed_corpus(tmp_path / "corpus.jsonl", 4)
    out = tmp_path / "s.parquet"

    with pytest.raises(Stop):
        ScoreRun([str(corpus)], out, lexicon, StopAfterTwo(lexicon), checkpoint_docs=1, progress=False).run()
    other = Predictor(LexiconEngine())
    other.engine.info = other.engine.info.model_copy(update={"name": "other-model"})
    with pytest.raises(
        ScoringError,
        match="expected a checkpoint of model .*other-model.*found one of model "
        ".*lexicon.*rerun with that --model \\(and the same --fast/--fp32.*\\), or delete",
    ):
        ScoreRun([str(corpus)], out, other, progress=False).run()
    std = lexicon.standard
    with (
        Checkpoint(parts_path(out), lexicon.info, std.stance, std.framing, inputs=input_fingerprint([str(corpus)]),
                   actors=lexicon.registry.fingerprint),
        pytest.raises(ScoringError, match="expected no other run writing these results, found one holding its lock"),
    ):
        ScoreRun([str(corpus)], out, lexicon, progress=False).run()


def test_a_document_the_model_fails_on_is_an_error_row(lexicon):
    class Fragile(Predictor):
        def annotate(self, documents, tasks=("stance", "framing"), actors=None):
            documents = list(documents)
            if any("BOOM" in d.text for d in documents):
                raise RuntimeError("cannot score this")
            return super().annotate(documents, tasks, actors)

    fragile = Fragile(LexiconEngine())
    batch = [
        (0, Article("a", "Russia condemned Hamas.", "in", "1")),
        (1, Article("b", "BOOM. Russia backed Fatah.", "in", "2")),
    ]
    first, second = score_batch(fragile, batch)
    assert first.pairs and first.pairs[0]["stance"] == "oppose"
    assert second.item == "2"
    assert second.reason == "expected the model to score it, found RuntimeError: cannot score this"


def test_cli_score_needs_a_model_and_reports_a_summary(tmp_path, monkeypatch):
    from stancelens.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STANCELENS_NO_AUTO_TRAIN", "1")
    runner = CliRunner()
    result = runner.invoke(app, ["score", str(FEEDS / "tlv_daily.atom"), "--out", "s.parquet"])
    assert result.exit_code == 2
    assert "no --model given and models/default does not exist" in result.output
    assert "--model lexicon" in result.output
    result = runner.invoke(
        app,
        ["score", str(FEEDS / "tlv_daily.atom"), "-", "--out", "s.jsonl", "--model", "lexicon"],
        input="Russia condemned the Hamas attack.\n",
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("documents 3 (3 scored now")
    assert (tmp_path / "s.mentions.jsonl").exists() and (tmp_path / "s.jsonl.errors.jsonl").exists()
    result = runner.invoke(app, ["score", "x.rss", "--out", "s.txt", "--format", "xlsx", "--model", "lexicon"])
    assert result.exit_code == 2 and "--format: expected one of ['parquet', 'jsonl', 'csv'], found 'xlsx'" in (
        result.output
    )


@pytest.mark.slow
def test_ray_engine_gives_the_local_engines_rows(tmp_path, lexicon):
    ray = pytest.importorskip("ray")
    from stancelens.batch.runners import RayRunner

    corpus = seed_corpus(tmp_path / "corpus.jsonl", 60)
    inputs = [*FIXTURE_INPUTS, str(corpus)]
    local, remote = tmp_path / "local.parquet", tmp_path / "ray.parquet"
    ScoreRun(inputs, local, lexicon, batch_size=8, progress=False).run()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = ScoreRun(
            inputs,
            remote,
            lexicon,
            RayRunner("lexicon", workers=2),
            batch_size=8,
            checkpoint_docs=16,
            progress=False,
        ).run()
    finally:
        ray.shutdown()
    assert summary.scored_now == 73
    assert rows_without_time(remote) == rows_without_time(local)
    assert rows_without_time(mentions_path(remote)) == rows_without_time(mentions_path(local))
    assert errors_path(remote).read_text("utf-8") == errors_path(local).read_text("utf-8")


def test_reader_is_deterministic_for_resume():
    first = list(InputReader().read(FIXTURE_INPUTS))
    second = list(InputReader().read(FIXTURE_INPUTS))
    assert first == second


# -- the output contract: nothing already scored is lost -----------------------------------------------


def test_existing_results_are_refused_unless_overwrite_or_append(tmp_path, lexicon):
    """A daily run over a live feed: yesterday's rows must survive today's run."""
    yesterday = seed_corpus(tmp_path / "yesterday.jsonl", 6)
    today = tmp_path / "today.jsonl"
    lines = yesterday.read_text(encoding="utf-8").splitlines()
    extra = seed_corpus(tmp_path / "extra.jsonl", 9).read_text(encoding="utf-8").splitlines()[6:]
    today.write_text("\n".join(lines[3:] + extra) + "\n", encoding="utf-8")  # 3 old articles, 3 new
    out = tmp_path / "s.parquet"
    ScoreRun([str(yesterday)], out, lexicon, progress=False).run()
    before = {r["row_id"] for r in read_table(out).to_pylist()}
    with pytest.raises(ScoringError, match="expected no earlier results at --out, found them; pass --append"):
        ScoreRun([str(today)], out, lexicon, progress=False).run()
    assert {r["row_id"] for r in read_table(out).to_pylist()} == before  # untouched

    ScoreRun([str(today)], out, lexicon, progress=False, output_mode="append").run()
    alone = tmp_path / "alone.parquet"
    ScoreRun([str(today)], alone, lexicon, progress=False).run()
    after = [r["row_id"] for r in read_table(out).to_pylist()]
    assert len(after) == len(set(after))  # no row twice
    assert set(after) == before | {r["row_id"] for r in read_table(alone).to_pylist()}
    assert {r["row_id"] for r in read_table(mentions_path(out)).to_pylist()} >= {
        r["row_id"] for r in read_table(mentions_path(alone)).to_pylist()}

    ScoreRun([str(today)], out, lexicon, progress=False, output_mode="overwrite").run()
    assert {r["row_id"] for r in read_table(out).to_pylist()} == {r["row_id"] for r in read_table(alone).to_pylist()}


def test_cli_score_refuses_existing_output_before_loading_a_model(tmp_path):
    from stancelens.cli import app

    corpus = seed_corpus(tmp_path / "c.jsonl", 2)
    out = tmp_path / "s.parquet"
    out.write_bytes(b"yesterday")
    result = CliRunner().invoke(app, ["score", str(corpus), "--out", str(out), "--model", "lexicon"])
    assert result.exit_code == 2 and "pass --append" in result.output
    assert out.read_bytes() == b"yesterday"
    both = CliRunner().invoke(app, ["score", str(corpus), "--out", str(out), "--model", "lexicon", "--append",
                                    "--overwrite"])
    assert both.exit_code == 2 and "expected at most one" in both.output


def test_a_checkpoint_of_other_inputs_is_refused_not_merged(tmp_path, lexicon):
    first, second = seed_corpus(tmp_path / "a.jsonl", 6), tmp_path / "b.jsonl"
    second.write_text(first.read_text(encoding="utf-8").replace("agency said", "agency reported"), encoding="utf-8")
    out = tmp_path / "s.parquet"

    with pytest.raises(Stop):
        ScoreRun([str(first)], out, lexicon, StopAfterTwo(lexicon), checkpoint_docs=1, progress=False).run()
    with pytest.raises(ScoringError, match="expected a checkpoint of these inputs, found one of other or changed"):
        ScoreRun([str(second)], out, lexicon, progress=False).run()
    # The same inputs resume.
    ScoreRun([str(first)], out, lexicon, progress=False).run()
    assert not parts_path(out).exists()


def test_html_pages_in_legacy_charsets_are_scored(tmp_path, lexicon):
    body = ("Le Kremlin a reçu une délégation du Hamas à Moscou. Israël a condamné la visite. " * 4)
    pages = {
        "declared-latin1.html": ('<html><head><meta charset="ISO-8859-1"></head><body><article><p>' + body
                                 + "</p></article></body></html>").encode("latin-1"),
        "declared-1252.html": ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'
                               "</head><body><article><p>" + body + "’s</p></article></body></html>").encode("cp1252"),
        "undeclared.html": ("<html><body><article><p>" + body + " Le Fatah s'est tu.</p></article></body></html>"
                            ).encode("cp1252"),
    }
    folder = tmp_path / "pages"
    folder.mkdir()
    for name, data in pages.items():
        (folder / name).write_bytes(data)
    out = tmp_path / "s.parquet"
    summary = ScoreRun([str(folder)], out, lexicon, progress=False).run()
    assert summary.errors == 0 and summary.totals.documents == 3
    texts = {r["sentence_text"] for r in read_table(mentions_path(out)).to_pylist()}
    assert any("délégation du Hamas à Moscou" in t for t in texts)
    assert not any("\ufffd" in t for t in texts)


def test_resuming_needs_the_output_mode_of_the_killed_run(tmp_path, lexicon):
    """A killed --append run resumed without --append would have replaced the earlier results."""
    first, second = seed_corpus(tmp_path / "a.jsonl", 4), seed_corpus(tmp_path / "b.jsonl", 8)
    out = tmp_path / "s.parquet"
    ScoreRun([str(first)], out, lexicon, progress=False).run()
    before = {r["row_id"] for r in read_table(out).to_pylist()}
    with pytest.raises(Stop):
        ScoreRun([str(second)], out, lexicon, StopAfterTwo(lexicon), checkpoint_docs=1, progress=False,
                 output_mode="append").run()
    with pytest.raises(ScoringError, match=r"expected the output mode of the run that made this checkpoint \(--append\)"):
        ScoreRun([str(second)], out, lexicon, progress=False).run()
    ScoreRun([str(second)], out, lexicon, progress=False, output_mode="append").run()
    assert before <= {r["row_id"] for r in read_table(out).to_pylist()}


def test_append_works_for_csv_and_jsonl(tmp_path, lexicon):
    corpus = seed_corpus(tmp_path / "c.jsonl", 4)
    more = seed_corpus(tmp_path / "d.jsonl", 7)
    for suffix in ("csv", "jsonl"):
        out = tmp_path / f"s.{suffix}"
        ScoreRun([str(corpus)], out, lexicon, progress=False).run()
        ScoreRun([str(more)], out, lexicon, progress=False, output_mode="append").run()
        rows = [r["row_id"] for r in read_table(out).to_pylist()]
        assert len(rows) == len(set(rows)) and len(rows) > 0


def test_batch_rows_give_the_paragraph_readings_of_issue_14(tmp_path, lexicon):
    feed = tmp_path / "p.jsonl"
    feed.write_text(json.dumps({"id": "p", "text": PARAGRAPH}) + "\n", encoding="utf-8")
    out = tmp_path / "s.parquet"
    ScoreRun([str(feed)], out, lexicon, progress=False).run()
    pairs = pq.read_table(out).to_pandas()
    mentions = pq.read_table(mentions_path(out)).to_pandas()
    sentences = []
    for index in sorted(set(mentions["sentence_index"])):
        rows = mentions[mentions["sentence_index"] == index]
        sentences.append({"index": int(index), "mentions": [
            {"text": r.mention_text, "actor": r.actor, "kind": r.kind, "via": r.via,
             "framing": {"label": r.framing, "voice": r.voice, "speaker": r.speaker, "negated": bool(r.negated)}}
            for r in rows.itertuples()],
            "pairs": [{"source": p.source, "target": p.target, "via": p.via}
                      for p in pairs[pairs["sentence_index"] == index].itertuples()]})
    check_paragraph({"sentences": sentences})
