"""Reading annotations in any supported format into `DocumentAnnotation`s, validated."""

from __future__ import annotations

from pathlib import Path

from stancelens.model.annotation import AnnotationFileError, DocumentAnnotation, read_annotations
from stancelens.model.validation import check_labels


def load_any(path: Path) -> list[DocumentAnnotation]:
    """JSONL annotation format (Label Studio JSON and CSV are added by the evaluation issue)."""
    path = Path(path)
    try:
        docs = list(read_annotations(path))
        check_labels(docs, str(path))
    except AnnotationFileError as exc:
        raise ValueError(str(exc)) from exc
    if not docs:
        raise ValueError(f"{path}: expected at least one annotated document, found none")
    return docs
