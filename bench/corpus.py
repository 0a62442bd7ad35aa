"""The benchmark's documents: the seed documents (their texts travel in the packaged seed gold) and the
short news documents written for the bench (package data in bench/documents/), all naming registry actors.
Shipped with the package, so `stancelens bench` works from any install, not only from a checkout."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from stancelens.model.annotation import read_annotations
from stancelens.model.files import read_text_document
from stancelens.model.predictor import DocumentInput
from stancelens.model.registry import load_registry
from stancelens.model.sentences import split_sentences

BENCH_DOCS = Path(str(resources.files("stancelens.bench") / "documents"))
SEED_GOLD = Path(str(resources.files("stancelens.labels") / "gold" / "seeds.jsonl"))


def seed_documents(gold: Path = SEED_GOLD) -> list[DocumentInput]:
    """The five seed documents, read from the seed gold (whose texts equal seeds/*.txt byte for byte)."""
    return [DocumentInput(d.doc_id, d.text) for d in sorted(read_annotations(gold), key=lambda d: d.doc_id)]


def folder_documents(folder: Path) -> list[DocumentInput]:
    """Every .txt document of a folder, in name order."""
    return [DocumentInput(p.stem, read_text_document(p)) for p in sorted(folder.glob("*.txt"))]


def bench_documents(n: int | None = None, folders: Sequence[Path] | None = None) -> list[DocumentInput]:
    """The seeds and the bench documents (or the .txt files of `folders`); `n` takes the first n, cycling
    (with new ids) past the end."""
    if folders is None:
        base = seed_documents() + folder_documents(BENCH_DOCS)
    else:
        base = [d for folder in folders for d in folder_documents(folder)]
    if not base:
        where = ", ".join(map(str, folders or [BENCH_DOCS]))
        raise FileNotFoundError(f"bench documents: expected .txt files in {where}, found none")
    if n is None:
        return base
    return [DocumentInput(f"{base[i % len(base)].doc_id}#{i // len(base)}" if i >= len(base) else base[i].doc_id,
                          base[i % len(base)].text) for i in range(n)]


def bench_sentences() -> list[str]:
    """Distinct sentences naming at least one registry actor, from the seeds and the bench documents."""
    registry = load_registry()
    seen: dict[str, None] = {}
    for document in bench_documents():
        spans = split_sentences(document.text)
        found = registry.find_mentions(document.text, [(s.start, s.end) for s in spans])
        for sentence, mentions in zip(spans, found):
            text = " ".join(sentence.text.split())
            if len(text) >= 20 and mentions:
                seen[text] = None
    return list(seen)
