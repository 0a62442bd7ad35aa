"""Request and response models of the HTTP API (pydantic v2), with limits and examples."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from stancelens.model.annotation import DocumentAnnotation, ModelInfo
from stancelens.model.sentences import MAX_SENTENCE_CHARS


def _unicode(value: str) -> str:
    """JSON escapes can carry unpaired surrogates ("\\ud800"), which are not text and cannot be answered in UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"expected Unicode text, found an unpaired surrogate at character {exc.start}; send "
                         "valid UTF-8 text") from exc
    return value


Text = Annotated[str, AfterValidator(_unicode)]
Task = Literal["stance", "framing"]
TASKS: tuple[Task, ...] = ("stance", "framing")
EXAMPLE_TEXT = "Moscow hosted a Hamas delegation. Netanyahu called Hamas terrorists."


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Text = Field(min_length=1, max_length=200, examples=["x"])
    text: Text = Field(min_length=1, examples=[EXAMPLE_TEXT])
    source: Text | None = Field(default=None, max_length=200, description="Outlet or feed the text comes from.")
    published: Text | None = Field(default=None, max_length=40, description="Publication date (ISO 8601).")


MAX_INLINE_ACTORS = 50
MAX_INLINE_ALIASES = 50
AliasText = Annotated[Text, Field(min_length=1, max_length=100)]


class ActorDefinitionIn(BaseModel):
    """An actor defined in the request (the registry's format, aliases only): found, paired and framed like
    the registry's own, without retraining."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"id": "houthis", "name": "Houthis (Ansar Allah)", "kind": "armed_group",
         "aliases": {"names": ["Houthis", "Ansar Allah"]}}]})

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="Lower-case id, used in pairs and filters.")
    name: Text | None = Field(default=None, min_length=1, max_length=200)
    kind: str = Field(max_length=40, description="An actor kind of GET /v1/actors (state, armed_group, ...).")
    aliases: dict[Literal["names", "acronyms", "demonyms", "metonyms", "officials", "institutions"],
                  list[AliasText]] = Field(min_length=1, max_length=6)
    valid_from: str | None = Field(default=None, max_length=10)
    valid_to: str | None = Field(default=None, max_length=10)

    @model_validator(mode="after")
    def _bounded(self) -> ActorDefinitionIn:
        count = sum(len(v) for v in self.aliases.values())
        if not 1 <= count <= MAX_INLINE_ALIASES:
            raise ValueError(f"expected 1 to {MAX_INLINE_ALIASES} aliases per actor, found {count}")
        return self

    def as_entry(self) -> dict:
        return self.model_dump(exclude_none=True)


class AnalyzeRequest(BaseModel):
    """Either `text` (one document) or `documents`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"documents": [{"id": "x", "text": EXAMPLE_TEXT}]}, {"text": EXAMPLE_TEXT}]},
    )

    text: Text | None = Field(default=None, min_length=1, description="A single document's text.")
    documents: list[DocumentIn] | None = Field(default=None, min_length=1, max_length=10_000)
    actors: list[Annotated[str, Field(max_length=100)]] | None = Field(
        default=None, max_length=1000, description="Report only these actor ids (see /v1/actors).")
    tasks: list[Task] = Field(default_factory=lambda: list(TASKS), min_length=1, max_length=10)
    actor_set: str | None = Field(default=None, max_length=100, description="An actor set the service was started "
                                  "with (GET /v1/actors lists them; 'model' is the model's own registry).")
    actor_definitions: list[ActorDefinitionIn] | None = Field(
        default=None, min_length=1, max_length=MAX_INLINE_ACTORS,
        description="Actors of this request only, added to the chosen set (an id of the set is redefined).")

    @model_validator(mode="after")
    def _one_input(self) -> AnalyzeRequest:
        if (self.text is None) == (self.documents is None):
            raise ValueError("expected exactly one of 'text' or 'documents', found "
                             + ("both" if self.text is not None else "neither"))
        if self.text is not None and not self.text.strip():
            raise ValueError("expected non-empty 'text', found only whitespace")
        if self.documents is not None:
            for i, d in enumerate(self.documents):
                if not d.text.strip():
                    raise ValueError(f"documents[{i}].text: expected text, found only whitespace")
            ids = [d.id for d in self.documents]
            if len(set(ids)) != len(ids):
                raise ValueError("documents: expected unique ids, found duplicates")
        return self

    def document_list(self) -> list[DocumentIn]:
        return self.documents if self.documents is not None else [DocumentIn(id="text", text=self.text or "")]


class PairRollup(BaseModel):
    source: str
    target: str
    sentences: int
    counts: dict[str, int]
    mean_probs: dict[str, float]


class DocumentOut(DocumentAnnotation):
    source: str | None = None
    published: str | None = None
    rollup: list[PairRollup] = Field(default_factory=list)


class AnalyzeResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model: ModelInfo
    actor_set: str = Field(description="The actor set that found the mentions ('+inline' with actor_definitions).")
    documents: list[DocumentOut]


class SpanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # strict: JSON true/false must not pass as offsets 1/0.
    start: int = Field(ge=0, strict=True)
    end: int = Field(gt=0, strict=True)


class EntityIn(BaseModel):
    """An entity given by character span in the sentence, by actor id, or both (span named as that actor)."""

    model_config = ConfigDict(extra="forbid")

    span: SpanIn | None = None
    actor: str | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _something(self) -> EntityIn:
        if self.span is None and self.actor is None:
            raise ValueError("expected 'span' or 'actor', found neither")
        return self


class StanceRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [
            {"sentence": "Moscow condemned the Israeli strikes.", "source": {"actor": "russia"}, "target": {"actor": "israel"}},
            {"sentence": "Acme Corp praised Globex.", "source": {"span": {"start": 0, "end": 9}},
             "target": {"span": {"start": 19, "end": 25}}},
        ]},
    )

    sentence: Text = Field(min_length=1, max_length=MAX_SENTENCE_CHARS,
                          description="One sentence (at most the splitter's longest sentence).")
    source: EntityIn
    target: EntityIn


class StanceResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    source: str
    target: str
    stance: str
    probs: dict[str, float]
    source_spans: list[SpanIn]
    target_spans: list[SpanIn]
    model: ModelInfo


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail
