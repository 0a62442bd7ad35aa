"""POST /v1/analyze and POST /v1/stance."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from stancelens.model.annotation import DocumentAnnotation, Framing, Mention, Sentence
from stancelens.model.predictor import DocumentInput, rollup
from stancelens.model.sentences import split_sentences
from stancelens.serve.batcher import QueueFull
from stancelens.serve.deps import Caller, Ready
from stancelens.serve.errors import ApiError
from stancelens.serve.schemas import (
    AnalyzeRequest,
    AnalyzeResponse,
    DocumentOut,
    ErrorResponse,
    SpanIn,
    StanceRequest,
    StanceResponse,
)

router = APIRouter(prefix="/v1", tags=["analysis"])
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (400, 401, 413, 422, 429, 503, 504)}


def _check_actors(predictor, actors: list[str] | None, field: str) -> None:
    registry = predictor.registry
    for i, actor in enumerate(actors or []):
        if actor not in registry.actors:
            raise ApiError(422, "unknown_actor", f"expected an actor id from GET /v1/actors, found {actor!r}",
                           f"{field}[{i}]" if field == "actors" else field)


@router.post("/analyze", response_model=AnalyzeResponse, responses=ERRORS)
async def analyze(body: AnalyzeRequest, state: Ready, caller: Caller) -> AnalyzeResponse:
    """Sentences, actor mentions with framing, ordered pairs with stance, and a per-document roll-up."""
    settings = state.settings
    documents = body.document_list()
    if len(documents) > settings.max_documents:
        raise ApiError(422, "too_many_documents", f"expected at most {settings.max_documents} documents per request, "
                       f"found {len(documents)}; split them over several requests", "documents")
    for i, d in enumerate(documents):
        if len(d.text) > settings.max_chars_per_document:
            raise ApiError(422, "document_too_long", f"expected at most {settings.max_chars_per_document} characters "
                           f"per document, found {len(d.text)}; split the document",
                           "text" if body.text is not None else f"documents[{i}].text")
    # Splitting is linear in the text but not free (~3 ms per 1,000 characters): off the event loop.
    sentences = await asyncio.to_thread(lambda: sum(len(split_sentences(d.text)) for d in documents))
    if sentences > settings.max_sentences_per_request:
        raise ApiError(422, "too_many_sentences", f"expected at most {settings.max_sentences_per_request} sentences per "
                       f"request, found {sentences}; send fewer or shorter documents", "documents")
    batcher = state.batcher  # one model answers the whole request, even if the service switches meanwhile
    set_name, predictor = state.actor_sets.predictor(batcher.predictor, body.actor_set)
    if body.actor_definitions:
        definitions = [d.as_entry() for d in body.actor_definitions]
        # Building an inline registry compiles its alias pattern: bounded, but off the event loop.
        predictor = await asyncio.to_thread(state.actor_sets.with_definitions, predictor, set_name, definitions)
        set_name += "+inline"
    _check_actors(predictor, body.actors, "actors")
    try:
        results = await asyncio.wait_for(
            batcher.annotate([DocumentInput(d.id, d.text) for d in documents], body.tasks,
                             set(body.actors) if body.actors is not None else None,
                             predictor if predictor is not batcher.predictor else None),
            settings.request_timeout_s,
        )
    except QueueFull as exc:
        raise ApiError(503, "overloaded", "the request queue is full; retry after the indicated delay",
                       headers={"Retry-After": "1"}) from exc
    except TimeoutError as exc:
        raise ApiError(504, "timeout", f"the request took longer than {settings.request_timeout_s} s; send fewer "
                       "documents per request") from exc
    out = [
        DocumentOut(**r.model_dump(), source=d.source, published=d.published, rollup=rollup(r))
        for d, r in zip(documents, results)
    ]
    return AnalyzeResponse(model=batcher.predictor.info, actor_set=set_name, documents=out)


@router.post("/stance", response_model=StanceResponse, responses=ERRORS)
async def stance(body: StanceRequest, state: Ready, caller: Caller) -> StanceResponse:
    """The stance of a source toward a target in one sentence, for users who bring their own entities."""
    text = body.sentence
    for name, entity in (("source", body.source), ("target", body.target)):
        if entity.actor is not None:
            _check_actors(state.predictor, [entity.actor], f"{name}.actor")
        if entity.span is not None and not (0 <= entity.span.start < entity.span.end <= len(text)):
            raise ApiError(422, "bad_span", f"expected 0 <= start < end <= {len(text)} (the sentence length), found "
                           f"start={entity.span.start} end={entity.span.end}", f"{name}.span")
    try:
        # Mention finding and the model both run on the model thread, through the bounded queue.
        batcher = state.batcher
        result = await asyncio.wait_for(batcher.run(_stance, batcher.predictor, body), state.settings.request_timeout_s)
    except QueueFull as exc:
        raise ApiError(503, "overloaded", "the request queue is full; retry after the indicated delay",
                       headers={"Retry-After": "1"}) from exc
    except TimeoutError as exc:
        raise ApiError(504, "timeout", "the request took too long") from exc
    source, target, source_spans, target_spans, pair = result
    return StanceResponse(
        source=source, target=target, stance=pair.stance, probs=pair.probs or {},
        source_spans=[SpanIn(start=a, end=b) for a, b in source_spans],
        target_spans=[SpanIn(start=a, end=b) for a, b in target_spans],
        model=batcher.predictor.info,
    )


def _stance(predictor, body: StanceRequest):
    text = body.sentence
    found = predictor.registry.find_mentions(text, [(0, len(text))])[0]

    def spans_for(entity, name: str) -> tuple[str, list[tuple[int, int]]]:
        if entity.span is not None:
            a, b = entity.span.start, entity.span.end
            return entity.actor or f"{name}:{text[a:b]}", [(a, b)]
        spans = [(m.start, m.end) for m in found if m.actor == entity.actor]
        if not spans:
            raise ApiError(422, "actor_not_in_sentence", f"expected a mention of {entity.actor!r} in the sentence, "
                           "found none; give its character span instead", f"{name}.actor")
        return entity.actor, spans

    source, source_spans = spans_for(body.source, "source")
    target, target_spans = spans_for(body.target, "target")
    if source == target or set(source_spans) & set(target_spans):
        raise ApiError(422, "same_entity", "expected two different entities, found the same one twice", "target")
    mentions = []
    for k, (name, spans) in enumerate([(source, source_spans), (target, target_spans)]):
        for a, b in spans:
            mentions.append(Mention(id=f"m{k}_{a}", start=a, end=b, text=text[a:b], actor=name,
                                    framing=Framing(label="none")))
    mentions.sort(key=lambda m: m.start)
    doc = DocumentAnnotation(doc_id="stance", text=text,
                             sentences=[Sentence(index=0, start=0, end=len(text), text=text, mentions=mentions)])
    result = predictor.annotate_given_mentions([doc], ("stance",))
    pair = next(p for p in result[0].sentences[0].pairs if p.source == source and p.target == target)
    return source, target, source_spans, target_spans, pair
