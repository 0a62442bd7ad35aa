"""The tables of batch scoring: where they go (RESULTS, RESULTS.mentions, errors, parts), their columns,
the rows of one scored document, and reading and writing them in Parquet, JSONL or CSV."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from stancelens.batch.feeds import Article
from stancelens.model.annotation import DocumentAnnotation, ModelInfo
from stancelens.model.files import atomic_writer

FORMATS = ("parquet", "jsonl", "csv")

class ScoringError(RuntimeError):
    """A run that cannot start or resume (wrong model for the checkpoint, output in use, ...)."""



# -- output naming ------------------------------------------------------------------------------


def infer_format(out: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise ScoringError(f"--format: expected one of {list(FORMATS)}, found {fmt!r}")
        return fmt
    return {".jsonl": "jsonl", ".csv": "csv"}.get(out.suffix.lower(), "parquet")


def mentions_path(results: Path) -> Path:
    """``s.parquet`` → ``s.mentions.parquet``; ``s`` → ``s.mentions``."""
    if results.suffix:
        return results.with_name(f"{results.stem}.mentions{results.suffix}")
    return results.with_name(f"{results.name}.mentions")


def errors_path(results: Path) -> Path:
    return results.with_name(f"{results.name}.errors.jsonl")


def parts_path(results: Path) -> Path:
    return results.with_name(f"{results.name}.parts")


# -- rows ---------------------------------------------------------------------------------------

PROVENANCE = [
    ("doc_index", pa.int64()),
    ("doc_id", pa.string()),
    ("doc_hash", pa.string()),
    ("url", pa.string()),
    ("outlet", pa.string()),
    ("title", pa.string()),
    ("published", pa.string()),
    ("input", pa.string()),
    ("item", pa.string()),
    ("sentence_index", pa.int64()),
    ("sentence_start", pa.int64()),
    ("sentence_end", pa.int64()),
    ("sentence_text", pa.string()),
]
MODEL_COLUMNS = [
    ("model_name", pa.string()),
    ("model_version", pa.string()),
    ("model_hash", pa.string()),
    ("scored_at", pa.string()),
]


def pair_schema(stance_labels: Sequence[str]) -> pa.Schema:
    return pa.schema(
        [
            ("row_id", pa.string()),
            *PROVENANCE,
            ("source", pa.string()),
            ("target", pa.string()),
            ("stance", pa.string()),
            *[(f"prob_{label}", pa.float64()) for label in stance_labels],
            ("source_mentions", pa.string()),
            ("target_mentions", pa.string()),
            ("via", pa.string()),  # "coreference" when an actor is present only through a descriptor or pronoun
            *MODEL_COLUMNS,
        ]
    )


def mention_schema(framing_labels: Sequence[str]) -> pa.Schema:
    return pa.schema(
        [
            ("row_id", pa.string()),
            *PROVENANCE,
            ("mention_id", pa.string()),
            ("mention_start", pa.int64()),
            ("mention_end", pa.int64()),
            ("mention_text", pa.string()),
            ("actor", pa.string()),
            ("kind", pa.string()),
            ("framing", pa.string()),
            ("term_start", pa.int64()),
            ("term_end", pa.int64()),
            ("term_text", pa.string()),
            ("voice", pa.string()),
            ("speaker", pa.string()),
            ("speaker_text", pa.string()),
            ("negated", pa.bool_()),
            ("via", pa.string()),
            ("antecedent", pa.string()),
            *[(f"prob_{label}", pa.float64()) for label in framing_labels],
            *MODEL_COLUMNS,
        ]
    )


def row_id(*parts: object) -> str:
    """Stable id: the same document text, offsets and actors give the same id in every run."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()[:24]


@dataclass
class Scored:
    """One scored document: its rows, ready for a part file."""

    doc_hash: str
    sentences: int
    pairs: list[dict]
    mentions: list[dict]
    doc_index: int = -1  # position in the run's input order


def document_rows(
    article: Article,
    doc_index: int,
    ann: DocumentAnnotation,
    scored_at: str,
    stance_labels: Sequence[str],
    framing_labels: Sequence[str],
) -> Scored:
    digest = article.content_hash
    info = ann.model or ModelInfo(name="unknown", version="-")
    model = {
        "model_name": info.name,
        "model_version": info.version,
        "model_hash": info.hash,
        "scored_at": scored_at,
    }
    pairs: list[dict] = []
    mentions: list[dict] = []
    for s in ann.sentences:
        base = {
            "doc_index": doc_index,
            "doc_id": article.doc_id,
            "doc_hash": digest,
            "url": article.url,
            "outlet": article.outlet,
            "title": article.title,
            "published": article.published,
            "input": article.input,
            "item": article.item,
            "sentence_index": s.index,
            "sentence_start": s.start,
            "sentence_end": s.end,
            "sentence_text": s.text,
        }
        for p in s.pairs:
            probs = p.probs or {}
            pairs.append(
                {
                    "row_id": row_id(digest, s.start, s.end, p.source, p.target),
                    **base,
                    "source": p.source,
                    "target": p.target,
                    "stance": p.stance,
                    **{f"prob_{label}": probs.get(label) for label in stance_labels},
                    "source_mentions": ",".join(p.source_mentions),
                    "target_mentions": ",".join(p.target_mentions),
                    "via": p.via,
                    **model,
                }
            )
        for m in s.mentions:
            f = m.framing
            probs = f.probs or {}
            mentions.append(
                {
                    "row_id": row_id(digest, s.start, s.end, m.start, m.end, m.actor),
                    **base,
                    "mention_id": m.id,
                    "mention_start": m.start,
                    "mention_end": m.end,
                    "mention_text": m.text,
                    "actor": m.actor,
                    "kind": m.kind,
                    "framing": f.label,
                    "term_start": f.term.start if f.term else None,
                    "term_end": f.term.end if f.term else None,
                    "term_text": f.term.text if f.term else None,
                    "voice": f.voice,
                    "speaker": f.speaker,
                    "speaker_text": f.speaker_text,
                    "negated": f.negated,
                    "via": m.via,
                    "antecedent": m.antecedent,
                    **{f"prob_{label}": probs.get(label) for label in framing_labels},
                    **model,
                }
            )
    return Scored(digest, len(ann.sentences), pairs, mentions, doc_index)


# -- reading and writing ------------------------------------------------------------------------


def write_parquet(table: pa.Table, path: Path) -> None:
    with atomic_writer(path, "wb") as handle:
        pq.write_table(table, handle)


def make_readable(path: Path) -> None:
    # atomic_writer's temporary file is private (0600); results are meant to be shared like any file.
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def write_table(table: pa.Table, path: Path, fmt: str) -> None:
    """Write a results table atomically in the chosen format."""
    _write_table(table, path, fmt)
    make_readable(path)


def _write_table(table: pa.Table, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        write_parquet(table, path)
    elif fmt == "jsonl":
        with atomic_writer(path) as handle:
            for row in table.to_pylist():
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        with atomic_writer(path) as handle:
            table.to_pandas(integer_object_nulls=True).to_csv(handle, index=False)


def read_table(path: Path, fmt: str | None = None, schema: pa.Schema | None = None) -> pa.Table:
    """Read a results table written by `write_table` (format from the extension unless given); with
    `schema`, CSV columns are read as those types instead of guessed ones."""
    fmt = fmt or infer_format(path, None)
    if fmt == "parquet":
        return pq.read_table(path)
    if fmt == "jsonl":
        import pandas as pd

        frame = pd.read_json(path, lines=True, dtype=False) if path.stat().st_size else pd.DataFrame()
        return pa.Table.from_pandas(frame, preserve_index=False)
    import pyarrow.csv as pacsv

    if schema is not None:
        return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=schema))
    return pacsv.read_csv(path)
