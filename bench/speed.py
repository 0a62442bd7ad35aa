"""`stancelens bench`: how fast the same documents go through four ways of running the same weights.

    stancelens bench --model models/default --repeats 3 --out bench.json

In one process and on one input — the seed documents plus short news documents written for the bench
(bench/documents/), all with actors of the registry — it times, end to end (text in, labels out):

(a) naive:     Hugging Face ``pipeline("text-classification")`` over one marked input per ordered pair
               and per mention, one call at a time — what a user does with a fine-tuned classifier;
(b) batched:   the same pipeline given all inputs at once (batch_size 32);
(c) fp32:      the stancelens predictor (one encoder pass per sentence for all its pairs and mentions,
               length-sorted batches, dynamic padding, no pass for sentences without actors);
(d) fast:      the same predictor with the reduced-precision encoder of the fast path
               (`load_predictor(fast=True)`: bf16 where the CPU has bf16 units, else ONNX int8), plus the
               other backends as (d') for comparison.

The pipeline rows use the very weights of the model: `MarkedItemClassifier` wraps its encoder and heads
as a Hugging Face sequence classifier reading one marked sentence, and the bench checks that it gives
the predictor's labels. Sentence splitting and mention finding are the same code for every row.

Reported per row: medians over the repeats of documents/s and sentences/s, encoder forward passes,
single-document latency p50/p95, peak resident memory; then the fast path's label agreement with fp32
and macro-F1 against gold on the seed gold (gold mentions) and on DSE valid. `--serve URL` instead runs
the bounded load test of `stancelens.bench.load` against a running service.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stancelens.bench.corpus import SEED_GOLD, bench_documents
from stancelens.bench.load import percentile
from stancelens.model.annotation import read_annotations
from stancelens.model.framing import LexiconFramer
from stancelens.model.labelset import default_label_standard
from stancelens.model.loading import load_predictor
from stancelens.model.pipeline import prepare_document
from stancelens.model.precision import BACKENDS, FAST_BACKEND
from stancelens.model.predictor import boost_attached_term
from stancelens.training.metrics import classification_report

AGREEMENT_TARGET = 0.99
F1_TARGET_POINTS = 1.0


# -- the naive Hugging Face pipeline over the same weights -------------------------------------------
def marked_inputs(sentence, registry_items: bool = True):
    """One marked text per ordered pair ([S]/[T] around source/target, [M] around other mentions) and per
    mention ([S] around it), as a user would feed a sequence classifier."""
    from stancelens.model.transformer import mark_text

    spans = sentence.all_spans
    pairs, mentions = [], []
    for a, b in sentence.ordered_pairs():
        item = sentence.pair_item(a, b)
        roles = {**{s: "S" for s in item.source_spans}, **{t: "T" for t in item.target_spans}}
        pairs.append(mark_text(item.sentence, spans, roles)[0])
    for m in sentence.mentions:
        item = sentence.mention_item(m)
        mentions.append(mark_text(item.sentence, spans, {item.span: "S"})[0])
    return pairs, mentions


def _classifier_class():
    import torch
    from transformers import PretrainedConfig, PreTrainedModel
    from transformers.modeling_outputs import SequenceClassifierOutput

    from stancelens.model.transformer import MARKERS, ranges_tensor

    class MarkedItemClassifier(PreTrainedModel):
        """The fine-tuned encoder and one of its heads as a sequence classifier of one marked input:
        [S]…[/S] is the mention to frame or the stance source, [T]…[/T] the stance target. For a model
        trained with the sentence encoding the S/T markers become [M] before the encoder, so the encoder
        sees exactly what the predictor gives it; the head reads the S and T spans."""

        config_class = PretrainedConfig
        base_model_prefix = "headed"
        _supports_sdpa = True  # the wrapped encoder already has its attention implementation
        _no_split_modules: list[str] = []

        def __init__(self, engine, task: str):
            import copy

            config = copy.deepcopy(engine.model.encoder.config)
            labels = engine.stance_labels if task == "stance" else engine.framing_labels
            config.id2label = dict(enumerate(labels))
            config.label2id = {label: i for i, label in enumerate(labels)}
            config.num_labels = len(labels)
            config.problem_type = "single_label_classification"
            super().__init__(config)
            self.headed = engine.model
            self.task = task
            self.temperature = engine.temperature[task]
            self.register_buffer("bias", engine.bias[task].clone(), persistent=False)
            tok = engine.tokenizer
            self.ids = {name: tok.convert_tokens_to_ids(t) for name, t in
                        (("S", MARKERS["S"][0]), ("/S", MARKERS["S"][1]), ("T", MARKERS["T"][0]),
                         ("/T", MARKERS["T"][1]), ("M", MARKERS["M"][0]), ("/M", MARKERS["M"][1]))}
            self.sentence_encoding = engine.encoding == "sentence"

        def _ranges(self, row: list[int], open_name: str, close_name: str) -> list[tuple[int, int]]:
            opens = [i for i, t in enumerate(row) if t == self.ids[open_name]]
            closes = [i for i, t in enumerate(row) if t == self.ids[close_name]]
            return [(a, b + 1) for a, b in zip(opens, closes)]

        def forward(self, input_ids=None, attention_mask=None, **_):
            rows = input_ids.tolist()
            src = ranges_tensor([self._ranges(r, "S", "/S") for r in rows])
            tgt = ranges_tensor([self._ranges(r, "T", "/T") for r in rows])
            if self.sentence_encoding:
                ids = input_ids.clone()
                ids[(ids == self.ids["S"]) | (ids == self.ids["T"])] = self.ids["M"]
                ids[(ids == self.ids["/S"]) | (ids == self.ids["/T"])] = self.ids["/M"]
            else:
                ids = input_ids
            hidden = self.headed.encode(ids, attention_mask)
            index = torch.arange(len(rows))
            if self.task == "stance":
                logits = self.headed.stance_logits(hidden, index, src, tgt)
            else:
                logits = self.headed.framing_logits(hidden, index, src)
            return SequenceClassifierOutput(logits=logits / self.temperature + self.bias)

    return MarkedItemClassifier


@dataclass
class NaiveRunner:
    """The pipeline way: candidates from the same splitter and registry, then one input per item."""

    engine: Any
    registry: Any
    batch_size: int | None = None  # None: one call per input
    passes: int = 0
    pipes: dict = field(default_factory=dict)
    framer: Any = field(init=False, default=None)  # the attached-term rules the predictor's boost uses

    def __post_init__(self):
        from transformers import pipeline
        from transformers.utils import logging as hf_logging


        self.framer = LexiconFramer(getattr(self.engine, "standard", None) or default_label_standard())

        cls = _classifier_class()
        # The pipeline logs an error that a custom model "is not supported for text-classification": it is,
        # through forward(); silence that one check.
        level = hf_logging.get_verbosity()
        hf_logging.set_verbosity(hf_logging.CRITICAL)
        try:
            for task in ("stance", "framing"):
                model = cls(self.engine, task).eval()
                self.pipes[task] = pipeline(  # type: ignore[call-overload]
                    "text-classification", model=model, tokenizer=self.engine.tokenizer, device="cpu")
        finally:
            hf_logging.set_verbosity(level)

    def _run(self, task: str, texts: list[str], rules: list[str] | None = None) -> list[str]:
        """Labels for marked inputs. For framing the model's whole distribution is taken and the
        attached lexicon term (`rules`, one per input) boosted as the predictor does, so that the
        naive row gives the model's answers, only computed the slow way."""

        if not texts:
            return []
        pipe = self.pipes[task]
        self.passes += len(texts)
        kwargs = {"truncation": True, "max_length": 512, "top_k": None}
        if self.batch_size is None:
            results = [pipe(t, **kwargs) for t in texts]
        else:
            results = list(pipe(texts, batch_size=self.batch_size, **kwargs))
        labels = []
        boost = float(getattr(self.engine, "framing_term_boost", 1.0))
        for i, scores in enumerate(results):
            probs = {r["label"]: r["score"] for r in scores}
            if rules is not None:
                probs = boost_attached_term(probs, rules[i], boost)
            labels.append(max(probs, key=lambda k: probs[k]))
        return labels

    def __call__(self, documents) -> list[tuple[list[str], list[str]]]:
        """Per document: (stance labels in predictor order, framing labels in predictor order)."""

        per_doc = []
        for doc in documents:
            pairs, mentions, rules = [], [], []
            for s in prepare_document(doc.text, self.registry):
                p, m = marked_inputs(s)
                pairs += p
                mentions += m
                rules += [d.label for d in self.framer.frame_sentence(doc.text, (s.start, s.end), s.mentions)]
            per_doc.append((pairs, mentions, rules))
        if self.batch_size is None:
            return [(self._run("stance", p), self._run("framing", m, r)) for p, m, r in per_doc]
        stance = self._run("stance", [t for p, _, _ in per_doc for t in p])
        framing = self._run("framing", [t for _, m, _ in per_doc for t in m], [x for _, _, r in per_doc for x in r])
        out, i, j = [], 0, 0
        for p, m, _ in per_doc:
            out.append((stance[i : i + len(p)], framing[j : j + len(m)]))
            i, j = i + len(p), j + len(m)
        return out


class CountingEngine:
    """Delegates to an engine and counts the encoder passes of every `classify` call."""

    def __init__(self, engine):
        self.engine = engine
        self.passes = 0

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def classify(self, pairs, mentions):
        self.passes += self.engine.forward_passes(pairs, mentions)
        return self.engine.classify(pairs, mentions)


@dataclass
class PredictorRunner:
    predictor: Any
    batch_docs: int = 16

    def __post_init__(self):
        self.counter = CountingEngine(self.predictor.engine)
        self.predictor.engine = self.counter

    @property
    def passes(self) -> int:
        return self.counter.passes

    @passes.setter
    def passes(self, value: int) -> None:
        self.counter.passes = value

    def __call__(self, documents) -> list[tuple[list[str], list[str]]]:
        out = []
        for i in range(0, len(documents), self.batch_docs):
            for doc in self.predictor.annotate(documents[i : i + self.batch_docs]):
                out.append(([p.stance for s in doc.sentences for p in s.pairs],
                            [m.framing.label for s in doc.sentences for m in s.mentions]))
        return out


# -- memory ------------------------------------------------------------------------------------------
def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the high-water mark is the best there is
        return peak_rss_bytes()


def peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if os.uname().sysname == "Darwin" else peak * 1024


class RssSampler:
    """Samples resident memory on a thread while a block runs: the peak of that block alone (the
    process-wide high-water mark cannot be reset between rows)."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.peak = 0

    def __enter__(self):
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


# -- measuring ---------------------------------------------------------------------------------------
@dataclass
class Row:
    key: str
    title: str
    runner: Any
    load_seconds: float
    load_rss_mib: float
    seconds: list[float] = field(default_factory=list)
    passes: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    peak_rss_mib: float = 0.0
    labels: list = field(default_factory=list)


def _time_run(row: Row, documents) -> float:
    row.runner.passes = 0
    with RssSampler() as sampler:
        started = time.perf_counter()
        row.labels = row.runner(documents)
        seconds = time.perf_counter() - started
    row.passes = row.runner.passes
    row.peak_rss_mib = max(row.peak_rss_mib, sampler.peak / 2**20)
    return seconds


def _latencies(row: Row, documents) -> list[float]:
    out = []
    for doc in documents:
        started = time.perf_counter()
        row.runner([doc])
        out.append((time.perf_counter() - started) * 1000)
    return out


def _load(key: str, title: str, make: Callable[[], Callable]) -> Row:
    before = rss_bytes()
    started = time.perf_counter()
    runner = make()
    return Row(key, title, runner, time.perf_counter() - started, (rss_bytes() - before) / 2**20)


def label_agreement(a: list[tuple[list[str], list[str]]], b: list[tuple[list[str], list[str]]]) -> float | None:
    pairs = [(x, y) for (sa, fa), (sb, fb) in zip(a, b) for x, y in [*zip(sa, sb), *zip(fa, fb)]]
    return sum(x == y for x, y in pairs) / len(pairs) if pairs else None


def backend_name(backend: str) -> str:
    return "bf16" if backend == "bf16" else f"{backend} int8"


def run_speed(model: Path, documents, repeats: int, fast_backend: str, other_int8: bool = True,
              naive: bool = True, say: Callable[[str], None] = print) -> dict:
    import torch


    rows: list[Row] = []
    fp32 = _load("c", "(c) stancelens predictor fp32", lambda: PredictorRunner(load_predictor(model)))
    if naive:
        engine = fp32.runner.counter.engine
        registry = fp32.runner.predictor.registry
        rows.append(_load("a", "(a) HF pipeline, one input at a time", lambda: NaiveRunner(engine, registry)))
        rows.append(_load("b", "(b) HF pipeline, batched (32)", lambda: NaiveRunner(engine, registry, 32)))
    rows.append(fp32)
    rows.append(_load("d", f"(d) stancelens fast path ({backend_name(fast_backend)})",
                      lambda: PredictorRunner(load_predictor(model, backend=fast_backend))))
    if other_int8:
        for backend in BACKENDS:
            if backend != fast_backend:
                def make(b: str = backend) -> PredictorRunner:
                    return PredictorRunner(load_predictor(model, backend=b))

                rows.append(_load(f"d_{backend}", f"(d') predictor, {backend_name(backend)}", make))
    sentences = sum(len(prepare_document(d.text, fp32.runner.predictor.registry)) for d in documents)
    with_actors = sum(1 for d in documents for s in prepare_document(d.text, fp32.runner.predictor.registry)
                      if s.mentions)
    say(f"input: {len(documents)} documents, {sentences} sentences ({with_actors} with actors); "
        f"{repeats} repeats; torch threads {torch.get_num_threads()}")
    for row in rows:  # warm-up: first calls allocate and pick kernels
        row.runner(documents[:1])
    for r in range(repeats):
        for row in rows:  # interleaved, so a noisy neighbour slows every row alike
            row.seconds.append(_time_run(row, documents))
            say(f"  repeat {r + 1}/{repeats} {row.title}: {row.seconds[-1]:.2f} s")
    for row in rows:
        row.latencies_ms = _latencies(row, documents)
    reference = next((r for r in rows if r.key == "a"), fp32)
    base_s = statistics.median(reference.seconds)
    results = []
    for row in rows:
        median = statistics.median(row.seconds)
        results.append({
            "row": row.key, "title": row.title, "median_seconds": round(median, 3),
            "seconds": [round(s, 3) for s in row.seconds],
            "documents_per_s": round(len(documents) / median, 2), "sentences_per_s": round(sentences / median, 1),
            "forward_passes": row.passes, "speedup_vs_" + reference.key: round(base_s / median, 2),
            "latency_p50_ms": round(percentile(row.latencies_ms, 50), 1),
            "latency_p95_ms": round(percentile(row.latencies_ms, 95), 1),
            # peak_rss_mib is the whole process (every row's model is loaded); load_rss_mib is what loading
            # this row's model added — the pipeline rows share row (c)'s weights.
            "peak_rss_mib": round(row.peak_rss_mib, 1), "load_seconds": round(row.load_seconds, 2),
            "load_rss_mib": round(row.load_rss_mib, 1),
            "label_agreement_with_fp32": label_agreement(row.labels, fp32.labels),
        })
    return {"documents": len(documents), "sentences": sentences, "sentences_with_actors": with_actors,
            "repeats": repeats, "torch_threads": torch.get_num_threads(), "reference": reference.key,
            "rows": results, "process_peak_rss_mib": round(peak_rss_bytes() / 2**20, 1)}


# -- accuracy of the fast path -----------------------------------------------------------------------
def _compare(gold: list[str], a: list[str], b: list[str], labels: Sequence[str]) -> dict:

    f1_a = classification_report(gold, a, labels)["macro_f1"] if gold else None
    f1_b = classification_report(gold, b, labels)["macro_f1"] if gold else None
    agree = sum(x == y for x, y in zip(a, b)) / len(a) if a else None
    delta = None if f1_a is None or f1_b is None else round(100 * (f1_b - f1_a), 2)
    return {"items": len(a), "agreement": None if agree is None else round(agree, 4),
            "macro_f1_fp32": None if f1_a is None else round(100 * f1_a, 2),
            "macro_f1_fast": None if f1_b is None else round(100 * f1_b, 2), "delta_points": delta,
            "meets_target": bool(agree is not None and agree >= AGREEMENT_TARGET
                                 and (delta is None or abs(delta) <= F1_TARGET_POINTS))}


def seed_agreement(fp32, fast, gold_path: Path = SEED_GOLD) -> dict:
    """Stance and framing on the seed gold, with the gold mentions given (no mention detection)."""

    gold = list(read_annotations(gold_path))
    a = fp32.annotate_given_mentions(gold)
    b = fast.annotate_given_mentions(gold)
    out = {}
    gold_pairs = {(d.doc_id, s.index, p.source, p.target): p.stance for d in gold for s in d.sentences for p in s.pairs}
    gold_frames = {(d.doc_id, s.index, m.start): m.framing.label for d in gold for s in d.sentences for m in s.mentions}
    pa = {(d.doc_id, s.index, p.source, p.target): p.stance for d in a for s in d.sentences for p in s.pairs}
    pb = {(d.doc_id, s.index, p.source, p.target): p.stance for d in b for s in d.sentences for p in s.pairs}
    keys = sorted(k for k in pa if k in gold_pairs)
    out["stance"] = _compare([gold_pairs[k] for k in keys], [pa[k] for k in keys], [pb[k] for k in keys],
                             fp32.standard.stance)
    out["stance"]["agreement_all_pairs"] = round(sum(pa[k] == pb.get(k) for k in pa) / max(1, len(pa)), 4)
    fa = {(d.doc_id, s.index, m.start): m.framing.label for d in a for s in d.sentences for m in s.mentions}
    fb = {(d.doc_id, s.index, m.start): m.framing.label for d in b for s in d.sentences for m in s.mentions}
    mention_keys = sorted(k for k in fa if k in gold_frames)
    out["framing"] = _compare([gold_frames[k] for k in mention_keys], [fa[k] for k in mention_keys],
                              [fb[k] for k in mention_keys],
                              fp32.standard.framing)
    return out


def dse_agreement(fp32, fast, path: Path) -> dict:
    """Directed stance (3 classes) and DSE's 5 classes on DSE valid, through `engine.classify`."""
    from stancelens.training import data as D
    from stancelens.training.items import rows_to_items

    standard = fp32.standard
    rows = list(D.dse_examples(path, standard))
    pair_items, pair_y, pair_rows, _, _ = rows_to_items(rows)
    gold = [standard.stance[y] for y in pair_y]
    out = {}
    probs = {}
    for name, predictor in (("fp32", fp32), ("fast", fast)):
        engine = getattr(predictor.engine, "engine", predictor.engine)
        probs[name] = engine.classify(pair_items, [])[0]
    labels = {k: [max(p, key=p.get) for p in v] for k, v in probs.items()}
    out["stance"] = _compare(gold, labels["fp32"], labels["fast"], standard.stance)
    five: dict[str, list[str]] = {"fp32": [], "fast": []}
    five_gold: list[str] = []
    for i in range(len(pair_rows) - 1):
        row = pair_rows[i]["row"]
        if pair_rows[i]["k"] == 0 and pair_rows[i + 1]["row"] is row:
            five_gold.append(str(row["dse_label"]))
            for name in five:
                five[name].append(str(D.directed_to_dse(labels[name][i], labels[name][i + 1],
                                                        probs[name][i], probs[name][i + 1])))
    out["dse5"] = _compare(five_gold, five["fp32"], five["fast"], ["0", "1", "2", "3", "4"])
    return out


def default_dse_path() -> Path:
    return Path(os.environ.get("STANCELENS_DATA", "../shared/datasets")) / "dse" / "valid.txt"


# -- the service under load --------------------------------------------------------------------------
# -- report ------------------------------------------------------------------------------------------
def format_table(speed: dict) -> str:
    ref = speed["reference"]
    head = ("| row | docs/s | sentences/s | forward passes | × (" + ref + ") | doc latency p50 / p95 ms "
            "| model RSS MiB | labels = fp32 |")
    lines = [head, "|" + "---|" * 8]
    for r in speed["rows"]:
        agree = r["label_agreement_with_fp32"]
        memory = "= (c)" if r["row"] in ("a", "b") else f"{r['load_rss_mib']:.0f}"
        lines.append(
            f"| {r['title']} | {r['documents_per_s']:.2f} | {r['sentences_per_s']:.1f} | {r['forward_passes']} | "
            f"{r['speedup_vs_' + ref]:.1f} | {r['latency_p50_ms']:.0f} / {r['latency_p95_ms']:.0f} | "
            f"{memory} | {'–' if agree is None else f'{100 * agree:.1f} %'} |"
        )
    lines.append(f"\n{speed['documents']} documents, {speed['sentences']} sentences "
                 f"({speed['sentences_with_actors']} with actors), medians of {speed['repeats']} runs, "
                 f"{speed['torch_threads']} threads; process peak RSS {speed['process_peak_rss_mib']:.0f} MiB "
                 "(all rows loaded together)")
    return "\n".join(lines)


def format_accuracy(accuracy: dict) -> str:
    lines = ["| data | task | items | agreement fast = fp32 | macro-F1 fp32 | macro-F1 fast | Δ points | target |",
             "|" + "---|" * 8]
    for data, tasks in accuracy.items():
        if not isinstance(tasks, dict) or "skipped" in tasks:
            lines.append(f"| {data} | – | – | {tasks.get('skipped') if isinstance(tasks, dict) else tasks} "
                         "| | | | |")
            continue
        for task, t in tasks.items():
            agree = "–" if t["agreement"] is None else f"{100 * t['agreement']:.2f} %"
            lines.append(f"| {data} | {task} | {t['items']} | {agree} | {t['macro_f1_fp32']} | {t['macro_f1_fast']} | "
                         f"{t['delta_points']} | {'ok' if t['meets_target'] else 'MISSED'} |")
    return "\n".join(lines)


def run_bench(model: Path, docs: int | None = None, repeats: int = 3, out: Path | None = None,
              fast_backend: str | None = None, dse: Path | None = None, accuracy: bool = True,
              other_int8: bool = True, threads: int | None = None, documents: list | None = None,
              say: Callable[[str], None] = print) -> dict:
    import warnings

    import torch


    # torch's dynamic quantisation warns that its quantised tensor types are deprecated: known, and the
    # warning says nothing about the numbers measured here.
    warnings.filterwarnings("ignore", message=r".*quantize_per_tensor.*")
    if threads:  # ONNX Runtime sessions take the same count (OnnxEncoder)
        torch.set_num_threads(threads)
    fast_backend = fast_backend or FAST_BACKEND
    documents = documents if documents is not None else bench_documents(docs)
    speed = run_speed(Path(model), documents, repeats, fast_backend, other_int8=other_int8, say=say)
    report: dict[str, Any] = {"model": str(model), "fast_backend": fast_backend, "speed": speed,
                    "command": "stancelens bench " + " ".join(f"--{k} {v}" for k, v in
                                                               (("model", model), ("docs", docs),
                                                                ("repeats", repeats), ("threads", threads))
                                                               if v is not None)}
    say("")
    say(format_table(speed))
    if accuracy:
        fp32 = load_predictor(model)
        fast = load_predictor(model, backend=fast_backend)
        acc: dict = {"seed gold": seed_agreement(fp32, fast)}
        dse_path = dse if dse is not None else default_dse_path()
        if dse_path.is_file():
            acc["DSE valid"] = dse_agreement(fp32, fast, dse_path)
        else:
            acc["DSE valid"] = {"skipped": f"no file {dse_path} (pass --dse PATH)"}
        report["accuracy"] = acc
        say("")
        say(f"fast path ({backend_name(fast_backend)}) against fp32 — targets: agreement ≥ {100 * AGREEMENT_TARGET:.0f} %, "
            f"macro-F1 within {F1_TARGET_POINTS:.0f} point")
        say(format_accuracy(acc))
    if out is not None:
        from stancelens.model.files import atomic_writer

        with atomic_writer(Path(out), "w") as handle:
            handle.write(json.dumps(report, indent=2) + "\n")
        say(f"\nwrote {out}")
    return report
