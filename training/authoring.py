"""The authoring format: how people write annotations by hand, compiled to the annotation format.

Writing character offsets by hand is error-prone, so annotators write spans as text plus the
occurrence number of that text in the sentence. One JSON object per line, one sentence each:

    {"doc_id": "d1", "sentence_index": 0, "start": 0, "end": 33,
     "text": "Moscow hosted a Hamas delegation.",
     "mentions": [{"span": "Moscow", "occurrence": 1, "actor": "russia", "kind": "metonym",
                   "framing": "none", "term": null, "voice": "author", "speaker": null,
                   "negated": false}, ...],
     "pairs": [{"source": "russia", "target": "hamas", "stance": "neutral"}, ...]}

`start`/`end` place the sentence in its document (seed gold); without them the sentence is a
document of its own (the authored training corpus). `compile_file` checks everything a person
can get wrong and says where: unknown actors or labels, spans not found, missing or extra pairs.

    python -m stancelens.training.authoring check FILE.jsonl
    python -m stancelens.training.authoring compile FILE.jsonl --out OUT.jsonl [--documents seeds/]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from stancelens.model.annotation import DocumentAnnotation, Framing, Mention, Pair, Sentence, Span
from stancelens.model.labelset import LabelStandard, default_label_standard
from stancelens.model.registry import Registry, default_registry


class AuthoringError(ValueError):
    pass


def _find(text: str, needle: str, occurrence: int, where: str) -> int:
    pos = -1
    for _ in range(occurrence):
        pos = text.find(needle, pos + 1)
        if pos < 0:
            count = text.count(needle)
            raise AuthoringError(
                f"{where}: expected occurrence {occurrence} of {needle!r} in the sentence, found "
                f"{count}; fix 'span'/'term' or 'occurrence'"
            )
    return pos


def compile_sentence(
    item: dict,
    offset: int,
    index: int,
    where: str,
    registry: Registry,
    standard: LabelStandard,
) -> Sentence:
    text = item.get("text")
    if not isinstance(text, str) or not text.strip():
        raise AuthoringError(f"{where}: field 'text' must be a non-empty string, found {text!r}")
    mentions: list[Mention] = []
    seen_spans: set[tuple[int, int]] = set()
    for k, raw in enumerate(item.get("mentions") or []):
        w = f"{where}, mentions[{k}]"
        missing = [f for f in ("span", "actor") if f not in raw]
        if missing:
            raise AuthoringError(f"{w}: missing field(s) {missing}")
        actor = raw["actor"]
        if actor not in registry.actors:
            raise AuthoringError(f"{w}: unknown actor {actor!r}; expected an id from labels/actors.yaml")
        start = _find(text, raw["span"], int(raw.get("occurrence", 1)), w)
        end = start + len(raw["span"])
        if (start, end) in seen_spans:
            raise AuthoringError(f"{w}: the span {raw['span']!r} at {start} is annotated twice")
        seen_spans.add((start, end))
        label = raw.get("framing", "none")
        standard.check("framing", label, f"{w}, field 'framing': ")
        term = None
        if raw.get("term"):
            t0 = _find(text, raw["term"], int(raw.get("term_occurrence", 1)), w + " term")
            term = Span(start=offset + t0, end=offset + t0 + len(raw["term"]), text=raw["term"])
        elif label != "none":
            raise AuthoringError(f"{w}: framing {label!r} needs the 'term' that carries it")
        voice = raw.get("voice", "author")
        standard.check("voice", voice, f"{w}, field 'voice': ")
        speaker = raw.get("speaker")
        if speaker is not None and speaker not in registry.actors:
            raise AuthoringError(f"{w}: unknown speaker actor {speaker!r}; use an id or null")
        mentions.append(
            Mention(
                id=f"s{index}m{k}",
                start=offset + start,
                end=offset + end,
                text=raw["span"],
                actor=actor,
                kind=raw.get("kind") or registry.alias_kind(raw["span"], actor),
                framing=Framing(
                    label=label, term=term, voice=voice, speaker=speaker, negated=bool(raw.get("negated"))
                ),
            )
        )
    mentions.sort(key=lambda m: m.start)
    actors = sorted({m.actor for m in mentions})
    expected = {(a, b) for a in actors for b in actors if a != b}
    pairs: list[Pair] = []
    got: set[tuple[str, str]] = set()
    for k, raw in enumerate(item.get("pairs") or []):
        w = f"{where}, pairs[{k}]"
        key = (raw.get("source"), raw.get("target"))
        if key not in expected:
            raise AuthoringError(
                f"{w}: pair {key[0]}->{key[1]} is not an ordered pair of two distinct actors mentioned in "
                f"the sentence (actors: {actors})"
            )
        if key in got:
            raise AuthoringError(f"{w}: pair {key[0]}->{key[1]} is given twice")
        got.add(key)
        standard.check("stance", raw.get("stance"), f"{w}, field 'stance': ")
        pairs.append(
            Pair(
                source=key[0],
                target=key[1],
                stance=raw["stance"],
                source_mentions=[m.id for m in mentions if m.actor == key[0]],
                target_mentions=[m.id for m in mentions if m.actor == key[1]],
            )
        )
    if got != expected:
        missing_pairs = sorted(f"{a}->{b}" for a, b in expected - got)
        raise AuthoringError(f"{where}: every ordered pair needs a stance; missing {missing_pairs}")
    return Sentence(
        index=index, start=offset, end=offset + len(text), text=text, mentions=mentions, pairs=pairs
    )


def compile_file(
    path: Path,
    documents: Path | None = None,
    annotator: str | None = None,
    registry: Registry | None = None,
    standard: LabelStandard | None = None,
) -> list[DocumentAnnotation]:
    """Compile an authoring JSONL file into document annotations (one per doc_id, in file order)."""
    registry = registry or default_registry()
    standard = standard or default_label_standard()
    grouped: dict[str, list[tuple[int, dict]]] = defaultdict(list)
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise AuthoringError(f"{path}, line {number}: invalid JSON ({exc.msg})") from exc
        doc_id = item.get("doc_id") or item.get("id")
        if not doc_id:
            raise AuthoringError(f"{path}, line {number}: missing field 'doc_id'")
        grouped[str(doc_id)].append((number, item))
    docs: list[DocumentAnnotation] = []
    for doc_id, items in grouped.items():
        if documents is not None:
            text = (documents / f"{doc_id}.txt").read_text(encoding="utf-8")
            sentences = []
            for number, item in sorted(items, key=lambda x: x[1].get("sentence_index", 0)):
                where = f"{path}, line {number} ({doc_id} sentence {item.get('sentence_index')})"
                start = int(item["start"])
                if text[start : start + len(item["text"])] != item["text"]:
                    raise AuthoringError(f"{where}: 'text' does not match the document at start={start}")
                sentences.append(
                    compile_sentence(item, start, int(item["sentence_index"]), where, registry, standard)
                )
        else:
            if len(items) != 1:
                raise AuthoringError(f"{path}: doc_id {doc_id!r} is used on {len(items)} lines; ids must be unique")
            number, item = items[0]
            text = item["text"]
            sentences = [compile_sentence(item, 0, 0, f"{path}, line {number}", registry, standard)]
        docs.append(
            DocumentAnnotation(
                doc_id=doc_id, text=text, annotator=annotator, label_standard=standard.version,
                sentences=sentences,
            )
        )
    return docs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["check", "compile"])
    parser.add_argument("file", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--documents", type=Path, help="folder of <doc_id>.txt documents (seed gold)")
    parser.add_argument("--annotator")
    parser.add_argument("--actors", type=Path, help="actor set YAML whose ids the file uses (replaces the registry)")
    parser.add_argument(
        "--compare-finder", action="store_true",
        help="list mentions where the annotation and the rule-based finder differ (training corpus only)",
    )
    args = parser.parse_args(argv)
    registry = None
    if args.actors is not None:
        from stancelens.model.actor_set import apply_actor_set, read_actor_set

        try:
            registry = apply_actor_set(default_registry(), read_actor_set(args.actors, default_registry()), "replace")
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    try:
        docs = compile_file(args.file, args.documents, args.annotator, registry)
    except (AuthoringError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.compare_finder:
        registry = registry or default_registry()
        for doc in docs:
            for sent in doc.sentences:
                found = registry.find_mentions(doc.text, [(sent.start, sent.end)])[0]
                auto = {(r.start, r.end, r.actor) for r in found}
                gold = {(m.start, m.end, m.actor) for m in sent.mentions}
                for s0, e0, actor in sorted(auto - gold):
                    print(f"{doc.doc_id}: finder has {doc.text[s0:e0]!r} -> {actor}, annotation does not")
                for s0, e0, actor in sorted(gold - auto):
                    print(f"{doc.doc_id}: annotation has {doc.text[s0:e0]!r} -> {actor}, finder does not")
    n_pairs = sum(len(s.pairs) for d in docs for s in d.sentences)
    n_mentions = sum(len(s.mentions) for d in docs for s in d.sentences)
    n_framed = sum(1 for d in docs for s in d.sentences for m in s.mentions if m.framing.label != "none")
    print(f"ok: {len(docs)} documents, {sum(len(d.sentences) for d in docs)} sentences, "
          f"{n_mentions} mentions ({n_framed} framed), {n_pairs} ordered pairs")
    if args.action == "compile":
        from stancelens.model.annotation import write_annotations

        if args.out is None:
            parser.error("compile needs --out")
        write_annotations(docs, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
