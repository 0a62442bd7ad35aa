"""GET /v1/labels and GET /v1/actors: the label standard, and the registry of the model or of an actor set."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from stancelens.serve.deps import Caller, Ready
from stancelens.serve.schemas import ErrorResponse

router = APIRouter(prefix="/v1", tags=["label standard"])
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (401, 429, 503)}


@router.get("/labels", responses=ERRORS)
async def labels(state: Ready, caller: Caller) -> dict:
    return {"model": state.predictor.info.model_dump(), **state.predictor.standard.as_dict()}


@router.get("/actors", responses={**ERRORS, 422: {"model": ErrorResponse}})
async def actors(state: Ready, caller: Caller,
                 set: Annotated[str | None, Query(max_length=100, description="An actor set (default: the service's "
                                                  "default; 'model': the model's own registry).")] = None) -> dict:
    """The actors of one set, and the names of every set the service offers."""
    name, predictor = state.actor_sets.predictor(state.predictor, set)
    return {"model": state.predictor.info.model_dump(), "set": name, "sets": state.actor_sets.names,
            **predictor.registry.as_dict()}
