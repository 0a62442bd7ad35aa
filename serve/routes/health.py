"""Health and metrics: open even when an API key is set."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stancelens.serve.errors import error_body
from stancelens.serve.schemas import ErrorResponse

router = APIRouter(tags=["health"])


@router.get("/health/live")
async def live() -> dict:
    return {"status": "live"}


@router.get("/health/ready", responses={503: {"model": ErrorResponse}})
async def ready(request: Request):
    state = request.app.state.service
    if state.predictor is None:
        message = "the model is still loading" if not state.error else f"the model failed to load: {state.error}"
        return JSONResponse(error_body("not_ready", message), status_code=503, headers={"Retry-After": "5"})
    if state.batcher is None or not state.batcher.alive:
        return JSONResponse(error_body("not_ready", "the model worker has stopped; restart the service"),
                            status_code=503, headers={"Retry-After": "5"})
    body = {"status": "ready", "engine": state.engine, "model": state.predictor.info.model_dump()}
    if state.training is not None:
        body["training"] = state.training
    return body


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> Response:
    m = request.app.state.metrics
    state = request.app.state.service
    m.queue_depth.set(state.batcher.depth if state.batcher else 0)
    m.ready.set(1 if state.predictor else 0)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
