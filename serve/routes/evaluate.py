"""POST /v1/evaluate: the `stancelens evaluate` report for uploaded annotation files."""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, UploadFile
from fastapi.responses import JSONResponse

from stancelens.serve.batcher import QueueFull
from stancelens.serve.deps import Caller, ServiceState, get_state, ready_state
from stancelens.serve.errors import ApiError
from stancelens.serve.schemas import ErrorResponse

router = APIRouter(prefix="/v1", tags=["evaluation"])
ERRORS: dict[int | str, dict] = {code: {"model": ErrorResponse} for code in (400, 401, 413, 422, 429, 503, 504)}


def _save(upload: UploadFile, folder: Path, index: int, limit: int, field: str) -> tuple[Path, str]:
    name = upload.filename or f"upload{index}.jsonl"
    # The suffix picks the reader (.jsonl, .json, .csv); the rest of the name is only for messages.
    safe = re.sub(r"[^\w.-]", "_", Path(name).name)[-80:] or "upload"
    path = folder / f"{index}_{safe}"
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "file_too_large", f"expected at most {limit} bytes per uploaded file, found more in "
                       f"{name!r}; evaluate large files with `stancelens evaluate`", field)
    path.write_bytes(data)
    return path, name


def _load(saved: list[tuple[Path, str]], pred_saved: tuple[Path, str] | None) -> tuple[list, object]:
    """Parse the uploads (off the event loop: a file may hold thousands of documents)."""
    from stancelens.training.annotation_io import load_any, load_sets

    sets: list = []
    for k, (path, name) in enumerate(saved):
        try:
            loaded = load_sets(path) if pred_saved is None and len(saved) > 1 else [load_any(path)]
        except ValueError as exc:
            raise ApiError(422, "invalid_annotations", str(exc).replace(str(path), name), f"gold[{k}]") from exc
        for s in loaded:
            s.name = s.name.replace(path.stem, Path(name).stem)
        sets.extend(loaded)
    predicted = None
    if pred_saved is not None:
        if len(sets) != 1:
            raise ApiError(422, "invalid_request", f"expected exactly one gold file with pred, found {len(sets)}",
                           "gold")
        try:
            predicted = load_any(pred_saved[0])
        except ValueError as exc:
            raise ApiError(422, "invalid_annotations", str(exc).replace(str(pred_saved[0]), pred_saved[1]),
                           "pred") from exc
    return sets, predicted


@router.post("/evaluate", responses=ERRORS)
async def evaluate(
    state: Annotated[ServiceState, Depends(get_state)],
    caller: Caller,
    gold: Annotated[list[UploadFile], File(description="Gold annotations: JSONL, Label Studio JSON export or CSV "
                                                       "(with a text column). Two or more give agreement.")],
    pred: Annotated[UploadFile | None, File(description="Predictions to score against one gold file; without it "
                                                        "and with one gold file, the loaded model predicts.")] = None,
) -> JSONResponse:
    """Agreement between annotators, predictions against gold, or the loaded model against gold: report.json."""
    from stancelens.training.evaluate import evaluation_report

    limits = state.settings
    # Form values that are no files (no file name) are invalid input, whatever their number.
    for k, g in enumerate([*gold, *([pred] if pred is not None else [])]):
        if not getattr(g, "filename", None):
            where = f"gold[{k}]" if k < len(gold) else "pred"
            raise ApiError(422, "invalid_request", f"{where}: expected an uploaded file, found a form value without a "
                           "file name; send each annotation file as a file part", where)
    if len(gold) + (pred is not None) > limits.max_upload_files:
        raise ApiError(422, "too_many_files", f"expected at most {limits.max_upload_files} files per request, found "
                       f"{len(gold) + (pred is not None)}; evaluate them in several requests", "gold")
    with tempfile.TemporaryDirectory(prefix="stancelens-eval-") as tmp:
        folder = Path(tmp)
        saved = [_save(g, folder, k, limits.max_upload_bytes, f"gold[{k}]") for k, g in enumerate(gold)]
        pred_saved = (_save(pred, folder, len(saved), limits.max_upload_bytes, "pred") if pred is not None
                      else None)
        sets, predicted = await asyncio.to_thread(_load, saved, pred_saved)
    predictor = None
    if predicted is None and len(sets) == 1:
        state = ready_state(state)
        predictor = state.predictor
    names = [s.name for s in sets]
    if len(set(names)) < len(names):
        names = [f"{k + 1}:{n}" for k, n in enumerate(names)]

    def build():
        return evaluation_report(sets, names, predicted, predictor)

    try:
        if predictor is not None:
            report, _ = await asyncio.wait_for(state.batcher.run(build), state.settings.request_timeout_s)
        else:
            report, _ = await asyncio.to_thread(build)
    except QueueFull as exc:
        raise ApiError(503, "overloaded", "the request queue is full; retry after the indicated delay",
                       headers={"Retry-After": "1"}) from exc
    except TimeoutError as exc:
        raise ApiError(504, "timeout", f"the evaluation took longer than {state.settings.request_timeout_s} s; send "
                       "fewer documents or evaluate with `stancelens evaluate`") from exc
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc), "gold") from exc
    return JSONResponse(json.loads(json.dumps(report, default=str)))
