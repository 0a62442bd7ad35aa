"""`stancelens report`: aggregates, plots, evidence tables and the index page of scored results."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from stancelens.batch.report import ReportError, build_report, period_of
from stancelens.batch.scoring import ScoreRun
from stancelens.batch.tables import mentions_path
from stancelens.model.lexicon import LexiconEngine
from stancelens.model.predictor import Predictor
from tests.helpers import FEED_INPUTS as INPUTS

FIGURES = ["stance_over_time", "stance_by_outlet", "framing_by_actor", "framing_by_outlet"]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("scored") / "s.parquet"
    ScoreRun(INPUTS, out, Predictor(LexiconEngine()), progress=False).run()
    return out


@pytest.fixture(scope="module")
def report_dir(results, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    build_report(results, out, period="month", top=4)
    return out


def test_report_writes_plots_tables_and_an_index(report_dir):
    index = (report_dir / "index.html").read_text("utf-8")
    assert index.startswith("<!doctype html>")
    for name in FIGURES:
        png = report_dir / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        for linked in (
            f"{name}.png",
            f"{name}.html",
            f"{name}.csv",
            f"evidence_{name}.html",
            f"evidence_{name}.csv",
        ):
            assert f"'{linked}'" in index or f'"{linked}"' in index
            assert (report_dir / linked).exists()
    assert "Moscow Wire" in (report_dir / "stance_by_outlet.csv").read_text("utf-8")


def test_stance_shares_per_pair_over_time_and_outlet(report_dir, results):
    pairs = pd.read_parquet(results)
    over_time = pd.read_csv(report_dir / "stance_over_time.csv")
    shares = over_time[["share_support", "share_oppose", "share_neutral"]].sum(axis=1)
    assert shares.between(0.999, 1.001).all()
    assert over_time["n"].sum() == len(pairs)
    assert set(over_time["period"]) >= {"2007-02", "2023-10", "(undated)"}
    # one cell checked by hand: russia → hamas in October 2023
    dated = pairs[pairs["published"].fillna("").str.startswith("2023-10")]
    cell = dated[(dated["source"] == "russia") & (dated["target"] == "hamas")]
    row = over_time[
        (over_time["source"] == "russia") & (over_time["target"] == "hamas") & (over_time["period"] == "2023-10")
    ].iloc[0]
    assert row["n"] == len(cell)
    assert row["share_oppose"] == pytest.approx((cell["stance"] == "oppose").mean(), abs=1e-4)
    by_outlet = pd.read_csv(report_dir / "stance_by_outlet.csv")
    assert by_outlet["n"].sum() == len(pairs)
    assert "(unknown outlet)" in set(by_outlet["outlet"])  # the .txt file has none


def test_framing_shares_split_by_voice(report_dir, results):
    mentions = pd.read_parquet(mentions_path(results))
    by_actor = pd.read_csv(report_dir / "framing_by_actor.csv")
    assert set(by_actor["voice"]) <= {"author", "quoted", "reported"}
    assert by_actor["n"].sum() == len(mentions)
    share_cols = [c for c in by_actor.columns if c.startswith("share_")]
    assert {"share_terrorist", "share_none"} <= set(share_cols)
    assert by_actor[share_cols].sum(axis=1).between(0.999, 1.001).all()
    hamas = by_actor[(by_actor["actor"] == "hamas") & (by_actor["voice"] == "author")].iloc[0]
    expected = mentions[(mentions["actor"] == "hamas") & (mentions["voice"] == "author")]
    assert hamas["share_terrorist"] == pytest.approx((expected["framing"] == "terrorist").mean(), abs=1e-4)
    by_outlet = pd.read_csv(report_dir / "framing_by_outlet.csv")
    assert by_outlet["n"].sum() == len(mentions) and "outlet" in by_outlet.columns


def test_every_figure_row_reaches_its_sentences(report_dir, results):
    pairs = pd.read_parquet(results)
    table = pd.read_csv(report_dir / "stance_over_time.csv")
    evidence = pd.read_csv(report_dir / "evidence_stance_over_time.csv")
    counts = evidence.groupby("group").size()
    assert (table.set_index("group")["n"] == counts.reindex(table["group"])).all()
    assert set(evidence["row_id"]) == set(pairs["row_id"])
    joined = evidence.merge(pairs[["row_id", "sentence_text"]], on="row_id", suffixes=("", "_results"))
    assert (joined["sentence_text"] == joined["sentence_text_results"]).all()
    page = (report_dir / "stance_over_time.html").read_text("utf-8")
    evidence_page = (report_dir / "evidence_stance_over_time.html").read_text("utf-8")
    for group in table["group"].head(5):
        assert f'href="evidence_stance_over_time.html#{group}"' in page
        assert f'id="{group}"' in evidence_page
    framing = pd.read_csv(report_dir / "evidence_framing_by_outlet.csv")
    assert {"mention_text", "term_text", "sentence_text", "row_id", "voice", "outlet"} <= set(framing.columns)


def test_weeks_start_on_monday():
    when = pd.to_datetime(pd.Series(["2023-10-26T14:00:00+00:00", None, "2023-10-30T00:00:00+00:00"]), utc=True)
    assert list(period_of(when, "week")) == ["2023-10-23", "(undated)", "2023-10-30"]
    assert list(period_of(when, "month")) == ["2023-10", "(undated)", "2023-10"]


def test_report_cli_and_its_errors(results, tmp_path):
    from stancelens.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["report", str(results), "--out", str(tmp_path / "r"), "--period", "week"])
    assert result.exit_code == 0, result.output
    assert "report: " in result.output and (tmp_path / "r" / "index.html").exists()
    weeks = pd.read_csv(tmp_path / "r" / "stance_over_time.csv")["period"]
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}|\(undated\)", p) for p in weeks)
    result = runner.invoke(app, ["report", str(results), "--out", str(tmp_path / "r"), "--period", "year"])
    assert result.exit_code == 2 and "--period: expected week or month, found 'year'" in result.output
    with pytest.raises(
        ReportError,
        match=r"expected the results of `stancelens score --out .*missing.parquet`, "
        "found no such file; run the scoring first",
    ):
        build_report(tmp_path / "missing.parquet", tmp_path / "r2")
