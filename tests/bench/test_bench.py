"""`stancelens bench` and the reduced-precision encoders (ONNX int8, bf16) behind the fast path, on the tiny
fine-tuned model (speed is not asserted: the table is checked for its rows, each backend for its
agreement with fp32)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from stancelens.bench import speed as bench
from stancelens.bench.corpus import BENCH_DOCS, bench_documents

# The tiny model is a few training steps old: its probabilities sit close together, so int8 noise flips
# more argmaxes than on a trained model (where `stancelens bench` checks the ≥ 99 % target). What must
# hold here: nearly the same labels and nearly the same probabilities.
TINY_AGREEMENT = 0.9
TINY_MEAN_PROB_DIFF = 0.03
TINY_MAX_PROB_DIFF = 0.25


@pytest.fixture(scope="module")
def model_copy(tiny_model, tmp_path_factory) -> Path:
    """A private copy: these tests write the ONNX cache into the model directory."""
    target = tmp_path_factory.mktemp("bench") / "tiny"
    shutil.copytree(tiny_model, target)
    return target


@pytest.fixture(scope="module")
def predictors(model_copy):
    """fp32 and the ONNX int8 variant."""
    from stancelens.model.loading import load_predictor

    return load_predictor(model_copy), load_predictor(model_copy, backend="onnx")


@pytest.fixture(scope="module")
def reduced(model_copy, predictors):
    """fp32 and each reduced-precision backend, by name."""
    from stancelens.model.loading import load_predictor

    return {"onnx": predictors[1], "bf16": load_predictor(model_copy, backend="bf16")}


def test_fast_path_is_bf16_where_the_cpu_has_bf16_units_else_onnx_int8(model_copy):
    from stancelens.model.loading import load_predictor
    from stancelens.model.precision import FAST_BACKEND, cpu_has_native_bf16

    expected = "bf16" if cpu_has_native_bf16() else "onnx"
    assert expected == FAST_BACKEND
    fast = load_predictor(model_copy, fast=True)
    assert fast.info.name.endswith("-bf16" if FAST_BACKEND == "bf16" else "-onnx-int8")


def test_onnx_int8_graph_is_cached(model_copy, predictors, monkeypatch):
    from stancelens.model.transformer import TransformerEngine

    _, fast = predictors
    cached = model_copy / "onnx" / "encoder-int8.onnx"
    assert cached.is_file() and (model_copy / "onnx" / "encoder-int8.json").is_file()
    assert fast.info.name.endswith("-onnx-int8")
    stamp = cached.stat().st_mtime_ns

    def no_export(*args, **kwargs):
        raise AssertionError("the cached ONNX graph should have been reused, not exported again")

    monkeypatch.setattr("torch.onnx.export", no_export)
    again = TransformerEngine.load(model_copy, backend="onnx")
    assert cached.stat().st_mtime_ns == stamp
    assert again.encode.path == cached


def test_stale_onnx_cache_is_rebuilt(model_copy, predictors, monkeypatch):
    from stancelens.model.onnx_backend import export_int8

    meta = model_copy / "onnx" / "encoder-int8.json"
    record = json.loads(meta.read_text())
    fp32, _ = predictors

    class Exported(Exception):
        pass

    def export(*args, **kwargs):
        raise Exported

    monkeypatch.setattr("torch.onnx.export", export)
    meta.write_text(json.dumps({**record, "source_hash": "from-other-weights"}))
    try:
        with pytest.raises(Exported):  # weights changed: the graph is exported again
            export_int8(fp32.engine.model.encoder, model_copy, say=lambda m: None)
    finally:
        meta.write_text(json.dumps(record))
    assert (model_copy / "onnx" / "encoder-int8.onnx").is_file()  # a failed rebuild leaves the old graph


def test_unknown_backend_is_refused(model_copy):
    from stancelens.model.transformer import TransformerEngine

    with pytest.raises(ValueError, match="backend: expected one of torch, onnx, bf16, found 'tpu'"):
        TransformerEngine.load(model_copy, backend="tpu")


@pytest.mark.parametrize("backend", ["onnx", "bf16"])
def test_reduced_precision_agrees_with_fp32_on_seed_gold(predictors, reduced, gold_docs, backend):
    fp32, fast = predictors[0], reduced[backend]
    result = bench.seed_agreement(fp32, fast)
    assert result["stance"]["items"] > 100 and result["framing"]["items"] > 100
    assert result["stance"]["agreement"] >= TINY_AGREEMENT
    assert result["framing"]["agreement"] >= TINY_AGREEMENT
    a = fp32.annotate_given_mentions(gold_docs)
    b = fast.annotate_given_mentions(gold_docs)
    diffs = [abs(pa.probs[k] - pb.probs[k]) for da, db in zip(a, b) for sa, sb in zip(da.sentences, db.sentences)
             for pa, pb in zip(sa.pairs, sb.pairs) for k in pa.probs]
    assert diffs and sum(diffs) / len(diffs) <= TINY_MEAN_PROB_DIFF and max(diffs) <= TINY_MAX_PROB_DIFF


@pytest.mark.parametrize("backend", ["onnx", "bf16"])
def test_reduced_precision_gives_the_same_answers_in_a_batch_as_alone(reduced, gold_docs, backend):
    """Dynamic int8 scales depend on the whole input tensor, bf16 rounding on the matmul shapes: each
    backend fixes what a sentence is computed with (int8: each sequence alone; bf16: a width and row count
    set by the sentence's own length), so that its probabilities do not depend on its batch."""
    from stancelens.model.predictor import DocumentInput
    from tests.helpers import assert_batch_equals_single

    assert_batch_equals_single(reduced[backend], [DocumentInput(d.doc_id, d.text) for d in gold_docs[:3]])


def test_bf16_encoder_pads_to_widths_set_by_each_sentence():
    """Batch-mates must not change a sentence's shapes: every call has BUCKET-multiple width and ROWS rows."""
    import torch

    from stancelens.model.bf16_backend import BUCKET, ROWS, Bf16Encoder

    shapes: list[tuple[int, int]] = []

    def encode(ids, mask):
        shapes.append(tuple(ids.shape))
        return mask.unsqueeze(-1).float().expand(-1, -1, 4) * ids.unsqueeze(-1).float()

    lengths = [3, BUCKET + 1, 5, 2 * BUCKET + 7]
    width = max(lengths)
    ids = torch.zeros((len(lengths), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.arange(1, n + 1)
        mask[row, :n] = 1
    out = Bf16Encoder(encode)(ids, mask)
    widths = {-(-n // BUCKET) * BUCKET for n in lengths}
    assert len(widths) > 1 and sorted(shapes) == sorted((ROWS, w) for w in widths)
    assert out.shape == (len(lengths), width, 4) and out.dtype == torch.float32
    for row, n in enumerate(lengths):  # each row's own values come back, padding stays zero
        assert torch.equal(out[row, :n, 0], torch.arange(1, n + 1).float())
        assert not out[row, n:].any()


def test_fast_path_keeps_the_first_layer_fp32(model_copy, predictors):
    import onnx

    from stancelens.model.onnx_backend import FP32_LAYERS, RECIPE

    graph = onnx.load(str(model_copy / "onnx" / "encoder-int8.onnx")).graph
    float_matmuls = [n.name for n in graph.node if n.op_type == "MatMul"]
    integer_matmuls = [n.name for n in graph.node if n.op_type == "MatMulInteger"]
    assert float_matmuls and all(any(k in name for k in FP32_LAYERS) or "/attention/self/MatMul" in name
                                 for name in float_matmuls)
    assert len(integer_matmuls) >= 5 * 6  # six linear layers in each of layers 1-5
    assert json.loads((model_copy / "onnx" / "encoder-int8.json").read_text())["recipe"] == RECIPE


def test_naive_pipeline_gives_the_predictors_labels(predictors):
    """Row (a) must be a fair baseline: the same weights giving the same answers, only run one input at a time."""
    fp32, _ = predictors
    docs = bench_documents(folders=[BENCH_DOCS])[:2]
    naive = bench.NaiveRunner(fp32.engine, fp32.registry)
    runner = bench.PredictorRunner(fp32)
    try:
        expected = runner(docs)
        got = naive(docs)
    finally:
        fp32.engine = runner.counter.engine
    assert got == expected
    assert naive.passes == sum(len(s) + len(f) for s, f in got)


def test_bench_prints_the_four_rows(model_copy, tmp_path):
    from stancelens.model.precision import FAST_BACKEND

    lines: list[str] = []
    docs = bench_documents(folders=[BENCH_DOCS])[:2]
    out = tmp_path / "bench.json"
    report = bench.run_bench(model_copy, repeats=1, out=out, accuracy=False, other_int8=False, documents=docs,
                             say=lines.append)
    text = "\n".join(lines)
    for row in ("(a) HF pipeline, one input at a time", "(b) HF pipeline, batched", "(c) stancelens predictor fp32",
                f"(d) stancelens fast path ({bench.backend_name(FAST_BACKEND)})"):
        assert f"| {row}" in text
    rows = {r["row"]: r for r in json.loads(out.read_text())["speed"]["rows"]}
    assert set(rows) == {"a", "b", "c", "d"}
    # one pass per sentence with actors for the predictor, one per pair and mention for the pipeline
    assert rows["c"]["forward_passes"] == rows["d"]["forward_passes"] == report["speed"]["sentences_with_actors"]
    assert rows["a"]["forward_passes"] == rows["b"]["forward_passes"] > 2 * rows["c"]["forward_passes"]
    assert rows["a"]["speedup_vs_a"] == 1.0
    assert all(r["latency_p95_ms"] >= r["latency_p50_ms"] > 0 and r["peak_rss_mib"] > 0 for r in rows.values())


def test_bench_cli_refuses_a_missing_model(tmp_path):
    from typer.testing import CliRunner

    from stancelens.cli import app

    result = CliRunner().invoke(app, ["bench", "--model", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "expected a trained model directory with stancelens.json" in result.output


def test_service_may_pick_another_fast_backend(model_copy, monkeypatch):
    """The service's micro-batches are small: ONNX int8 serves them faster than bf16 (README), at its
    accuracy cost; an operator chooses with STANCELENS_FAST_BACKEND or `serve --fast-backend`."""
    from stancelens.model.loading import load_predictor
    from stancelens.serve.settings import Settings

    assert load_predictor(model_copy, fast=True, backend="onnx").info.name.endswith("-onnx-int8")
    monkeypatch.setenv("STANCELENS_FAST_BACKEND", "onnx")
    assert Settings.from_env().fast_backend == "onnx"
    monkeypatch.setenv("STANCELENS_FAST_BACKEND", "fp8")
    with pytest.raises(ValueError, match=r"STANCELENS_FAST_BACKEND: expected bf16, onnx or torch, found 'fp8'; fix or unset"):
        Settings.from_env()


def test_parser_bench_times_the_resolver_and_says_when_spacy_is_missing(monkeypatch):
    """`stancelens bench --parser`: a row per way of finding who is meant; without spaCy, a row that says how
    to install it (spaCy's own rows are timed only where it is installed)."""
    import builtins

    from stancelens.bench.parser import parser_rows

    real_import = builtins.__import__

    def no_spacy(name, *args, **kwargs):
        if name == "spacy":
            raise ImportError("no spacy")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_spacy)
    lines: list[str] = []
    rows = parser_rows(1, lines.append)
    assert [r["row"] for r in rows[:2]] == ["mention finding, names only", "mention finding + resolver (rules)"]
    assert all(r["us_per_sentence"] > 0 for r in rows[:2])
    assert rows[2]["available"] is False and "stancelens[parser]" in rows[2]["note"]
    assert any("µs/sentence" in line for line in lines)


class _FakeToken:
    def __init__(self, text, idx, dep):
        self.text, self.idx, self.dep_, self.children, self._subtree = text, idx, dep, [], [self]

    def __len__(self):
        return len(self.text)

    @property
    def subtree(self):
        return iter(self._subtree)


def _fake_parse(text):
    """A stand-in parse: the first word is the subject of the second (enough to drive the resolver's calls)."""
    import re

    tokens = [_FakeToken(m.group(), m.start(), "dep") for m in re.finditer(r"\w+|[^\w\s]", text)]
    if len(tokens) > 1:
        tokens[0].dep_, tokens[1].dep_ = "nsubj", "ROOT"
        tokens[1].children = [tokens[0]]
    return tokens


def test_parsed_resolver_takes_subjects_from_the_parse():
    """bench --parser --resolution: the parser's subject decisions drive the subject-pronoun rule."""
    from stancelens.bench.parser import ParsedResolver
    from stancelens.model.registry import load_registry
    from stancelens.model.sentences import split_sentences

    registry = load_registry()
    text = "Hamas fired rockets at Israel. It said more would follow."
    spans = [(s.start, s.end) for s in split_sentences(text)]
    rules = registry.find_mentions(text, spans)
    registry._resolver = ParsedResolver(_fake_parse, registry.standard, registry._actor_kind, registry._actor_traits, registry.trait_words)
    parsed = registry.find_mentions(text, spans)
    assert [(m.text, m.actor) for m in parsed[1]] == [(m.text, m.actor) for m in rules[1]] == [("It", "hamas")]
    # the rules take the opening "Yesterday Hamas" as the subject; the fake parse says "Yesterday" (no actor),
    # so "It" has two candidates (Hamas, Israel) and is left out
    text = "Yesterday Hamas fired rockets at Israel. It said more would follow."
    spans = [(s.start, s.end) for s in split_sentences(text)]
    assert [m.actor for m in load_registry().find_mentions(text, spans)[1]] == ["hamas"]
    assert [m.text for m in registry.find_mentions(text, spans)[1]] == []
