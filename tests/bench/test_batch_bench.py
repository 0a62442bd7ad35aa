"""`stancelens bench --batch` prints and writes the scaling figures (tiny sizes here; the README's
figures come from the default sizes)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from stancelens.cli import app


def test_batch_bench_measures_scoring_and_report(tmp_path):
    out = tmp_path / "b.json"
    result = CliRunner().invoke(app, ["bench", "--batch", "--batch-sizes", "60,120", "--report-rows", "3000",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert [r["documents"] for r in figures["scoring"]] == [60, 120]
    assert all(r["peak_rss_mib"] > 10 and r["documents_per_s"] > 0 for r in figures["scoring"])
    assert figures["report"][0]["pair_rows"] == 3000
    assert "peak RSS growth 60 -> 120 documents" in result.output


def test_batch_sizes_are_checked():
    result = CliRunner().invoke(app, ["bench", "--batch", "--batch-sizes", "ten"])
    assert result.exit_code == 2 and "--batch-sizes: expected comma-separated document counts" in result.output
