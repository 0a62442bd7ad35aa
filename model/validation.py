"""Checks of annotation content beyond the schema: label names, actor ids, sentence tiling."""

from __future__ import annotations

from collections.abc import Iterable

from stancelens.model.annotation import AnnotationFileError, DocumentAnnotation
from stancelens.model.labelset import LabelStandard, default_label_standard
from stancelens.model.registry import Registry, default_registry


def check_labels(
    docs: Iterable[DocumentAnnotation],
    path: str = "<annotations>",
    standard: LabelStandard | None = None,
    registry: Registry | None = None,
) -> None:
    """Raise AnnotationFileError (line = document number) on an unknown label or actor id."""
    standard = standard or default_label_standard()
    registry = registry or default_registry()
    for line, doc in enumerate(docs, start=1):
        for s in doc.sentences:
            for k, m in enumerate(s.mentions):
                where = f"sentences[{s.index}].mentions[{k}]"
                if m.actor not in registry.actors:
                    raise AnnotationFileError(
                        path, line, where + ".actor",
                        f"expected an actor id from labels/actors.yaml, found {m.actor!r}",
                    )
                if m.framing.label not in standard.framing:
                    raise AnnotationFileError(
                        path, line, where + ".framing.label",
                        f"expected one of {list(standard.framing)}, found {m.framing.label!r}",
                    )
                if m.framing.speaker is not None and m.framing.speaker not in registry.actors:
                    raise AnnotationFileError(
                        path, line, where + ".framing.speaker",
                        f"expected an actor id or null, found {m.framing.speaker!r}",
                    )
            for k, p in enumerate(s.pairs):
                if p.stance not in standard.stance:
                    raise AnnotationFileError(
                        path, line, f"sentences[{s.index}].pairs[{k}].stance",
                        f"expected one of {list(standard.stance)}, found {p.stance!r}",
                    )


def tiling_problems(doc: DocumentAnnotation) -> list[str]:
    """Ways in which the sentences fail to tile the document (empty list when they do)."""
    problems = []
    text = doc.text
    pos = 0
    for s in sorted(doc.sentences, key=lambda x: x.start):
        gap = text[pos : s.start]
        if gap.strip():
            problems.append(f"{doc.doc_id}: text {gap.strip()[:40]!r} before offset {s.start} is in no sentence")
        if s.start < pos:
            problems.append(f"{doc.doc_id}: sentence {s.index} overlaps the previous one")
        pos = max(pos, s.end)
    if text[pos:].strip():
        problems.append(f"{doc.doc_id}: text after offset {pos} is in no sentence")
    indices = [s.index for s in doc.sentences]
    if indices != list(range(len(indices))):
        problems.append(f"{doc.doc_id}: sentence indices are not 0..n-1 in order")
    return problems
