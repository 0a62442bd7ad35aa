"""GET /v1/labels and GET /v1/actors: the label standard and registry the model was trained with."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from stancelens.serve.deps import Caller, Ready
from stancelens.serve.schemas import ErrorResponse

router = APIRouter(prefix="/v1", tags=["label standard"])
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (401, 429, 503)}


@router.get("/labels", responses=ERRORS)
async def labels(state: Ready, caller: Caller) -> dict:
    return {"model": state.predictor.info.model_dump(), **state.predictor.standard.as_dict()}


@router.get("/actors", responses=ERRORS)
async def actors(state: Ready, caller: Caller) -> dict:
    return {"model": state.predictor.info.model_dump(), **state.predictor.registry.as_dict()}
