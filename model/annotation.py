"""The one annotation format: document → sentences → mentions (with framing) → ordered pairs.

Gold files, predictions, HTTP responses and evaluation all use these models. The JSON Schema in
``labels/schema/annotation.schema.json`` is generated from them (``stancelens schema``) and a test
keeps the two in step. Offsets are Python string indices into the whole document text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stancelens.model.files import atomic_writer

Voice = Literal["author", "quoted", "reported"]


class Span(BaseModel):
    """A character span of the document (start inclusive, end exclusive) and its text."""

    model_config = ConfigDict(extra="forbid")

    start: int = Field(ge=0)
    end: int = Field(ge=0)
    text: str

    @model_validator(mode="after")
    def _ordered(self) -> Span:
        if self.end <= self.start:
            raise ValueError(f"span end must be greater than start, found start={self.start} end={self.end}")
        if len(self.text) != self.end - self.start:
            raise ValueError(
                f"span text has {len(self.text)} characters but start..end covers {self.end - self.start}"
            )
        return self


class Framing(BaseModel):
    """How a mention frames its actor: category, the term that carries it, voice, negation."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(description="Framing category from labels/labels.yaml (framing).")
    term: Span | None = Field(default=None, description="The framing term; null when label is none.")
    voice: Voice = "author"
    speaker: str | None = Field(default=None, description="Actor id of the speaker when voice is quoted or "
                                "reported; null when the speaker is not a registry actor.")
    speaker_text: str | None = Field(default=None, max_length=200,
                                     description="The speaker's words when no registry actor speaks "
                                     "('an analyst'), else null (codebook §8.4).")
    negated: bool = False
    probs: dict[str, float] | None = Field(default=None, description="Model probabilities per category.")


class Mention(BaseModel):
    """A span that refers to a registry actor."""

    model_config = ConfigDict(extra="forbid")

    id: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    text: str
    actor: str = Field(description="Actor id from labels/actors.yaml.")
    kind: str = Field(default="name", description="How the actor is named: name, demonym, metonym, official, "
                      "institution, descriptor, pronoun.")
    via: Literal["coreference"] | None = Field(
        default=None, description="'coreference' for a descriptor or pronoun resolved through an antecedent "
        "(codebook §8).")
    antecedent: str | None = Field(default=None, description="Id of the mention this one corefers with.")
    framing: Framing


class Pair(BaseModel):
    """The stance of one actor (source) toward another (target) in one sentence."""

    model_config = ConfigDict(extra="forbid")

    source: str
    target: str
    stance: str = Field(description="Stance label from labels/labels.yaml (stance).")
    probs: dict[str, float] | None = None
    source_mentions: list[str] = Field(default_factory=list)
    target_mentions: list[str] = Field(default_factory=list)
    via: Literal["coreference"] | None = Field(
        default=None, description="'coreference' when source or target is in the sentence only through "
        "descriptor or pronoun mentions resolved by coreference (codebook §8.3).")

    @model_validator(mode="after")
    def _distinct(self) -> Pair:
        if self.source == self.target:
            raise ValueError(f"a pair needs two distinct actors, found source = target = {self.source!r}")
        return self


class Sentence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0)
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    text: str
    mentions: list[Mention] = Field(default_factory=list)
    pairs: list[Pair] = Field(default_factory=list)


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: str
    version: str
    hash: str | None = None


class DocumentAnnotation(BaseModel):
    """One document's annotation: gold (annotator set) or prediction (model set, probs filled)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    doc_id: str = Field(min_length=1)
    text: str
    annotator: str | None = None
    model: ModelInfo | None = None
    label_standard: str | None = Field(default=None, description="Version of labels/ used.")
    sentences: list[Sentence]

    @model_validator(mode="after")
    def _consistent(self) -> DocumentAnnotation:
        every_id = {m.id for s in self.sentences for m in s.mentions}
        for s in self.sentences:
            for m in s.mentions:
                if m.antecedent is not None and m.antecedent not in every_id:
                    raise ValueError(f"sentence {s.index}: mention {m.id} names antecedent {m.antecedent!r}, "
                                     "which is no mention id of this document; fix the id or set it to null")
            if self.text[s.start : s.end] != s.text:
                raise ValueError(f"sentence {s.index}: text does not match document[{s.start}:{s.end}]")
            ids = set()
            for m in s.mentions:
                if not (s.start <= m.start < m.end <= s.end):
                    raise ValueError(
                        f"sentence {s.index}: mention {m.id} [{m.start},{m.end}) lies outside the sentence "
                        f"[{s.start},{s.end})"
                    )
                if self.text[m.start : m.end] != m.text:
                    raise ValueError(f"sentence {s.index}: mention {m.id} text does not match the document")
                term = m.framing.term
                if term is not None and self.text[term.start : term.end] != term.text:
                    raise ValueError(f"sentence {s.index}: mention {m.id} term does not match the document")
                ids.add(m.id)
            actors = {m.actor for m in s.mentions}
            for p in s.pairs:
                if p.source not in actors or p.target not in actors:
                    raise ValueError(
                        f"sentence {s.index}: pair {p.source}->{p.target} names an actor with no mention "
                        f"in the sentence (actors mentioned: {sorted(actors)})"
                    )
        return self


def pair_via(mentions: Iterable[Any], source: str, target: str) -> Literal["coreference"] | None:
    """'coreference' when source or target is in the sentence only through descriptors or pronouns resolved
    by coreference (codebook §8.3). `mentions`: the sentence's mentions (anything with .actor and .via)."""
    mentions = list(mentions)
    for actor in (source, target):
        own = [m for m in mentions if m.actor == actor]
        if own and all(m.via == "coreference" for m in own):
            return "coreference"
    return None


class AnnotationFileError(ValueError):
    """A problem in an annotation file, located by file, line and field."""

    def __init__(self, path: str, line: int, field: str, message: str):
        self.path, self.line, self.field = path, line, field
        super().__init__(f"{path}, line {line}, field '{field}': {message}")


def _loc(err: Mapping[str, Any]) -> str:
    return ".".join(str(p) for p in err.get("loc", ())) or "(document)"


def parse_line(raw: str, path: str = "<string>", line: int = 1) -> DocumentAnnotation:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise AnnotationFileError(
            path, line, "(line)", f"expected one JSON object per line, found invalid JSON ({exc.msg}); "
            "fix the line or remove it"
        ) from exc
    except RecursionError as exc:
        raise AnnotationFileError(path, line, "(line)", "expected an annotation object, found JSON nested too "
                                  "deeply to read; fix the line or remove it") from exc
    if not isinstance(data, dict):
        raise AnnotationFileError(
            path, line, "(line)", f"expected a JSON object, found {type(data).__name__}"
        )
    try:
        return DocumentAnnotation.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        found = first.get("input")
        found_text = json.dumps(found)[:80] if not isinstance(found, dict) else "an object"
        raise AnnotationFileError(
            path, line, _loc(first),
            f"{first['msg']} (found {found_text}); see labels/schema/annotation.schema.json",
        ) from exc


def read_annotations(path: str | Path) -> Iterator[DocumentAnnotation]:
    """Read a JSONL annotation file, raising AnnotationFileError with file, line and field."""
    p = Path(path)
    try:
        handle = p.open(encoding="utf-8")
    except FileNotFoundError as exc:
        raise AnnotationFileError(str(p), 0, "(file)", "file not found; check the path") from exc
    with handle:
        try:
            for number, raw in enumerate(handle, start=1):
                if raw.strip():
                    yield parse_line(raw, str(p), number)
        except UnicodeDecodeError as exc:
            raise AnnotationFileError(
                str(p), 0, "(file)", f"expected UTF-8 text, found undecodable byte at offset {exc.start}; "
                "re-save the file as UTF-8"
            ) from exc


def write_annotations(docs: Iterable[DocumentAnnotation], path: str | Path) -> int:
    """Write JSONL atomically (temporary file, then rename); returns the number of documents."""

    n = 0
    with atomic_writer(Path(path)) as handle:
        for doc in docs:
            handle.write(doc.model_dump_json(exclude_none=False) + "\n")
            n += 1
    return n


def json_schema() -> dict:
    schema = DocumentAnnotation.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://stancelens.invalid/schema/annotation.schema.json"
    schema["description"] = (
        "One stancelens document annotation per JSONL line: sentences with character offsets into "
        "the document, actor mentions with framing, and ordered actor pairs with stance."
    )
    return schema
