"""Runners of batch scoring: this process (`LocalRunner`) or a Ray Data actor pool (`RayRunner`). Both call
`score_batch`, the one call into the Predictor, so both give the same rows."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from stancelens.batch.feeds import Article, InputError
from stancelens.batch.tables import Scored, ScoringError, document_rows
from stancelens.model.annotation import DocumentAnnotation
from stancelens.model.loading import load_predictor
from stancelens.model.predictor import DocumentInput, Predictor


def score_batch(predictor: Predictor, batch: Sequence[tuple[int, Article]]) -> list[Scored | InputError]:
    """Annotate a batch with the predictor and turn it into rows. A batch that fails is retried one
    document at a time, so one bad document costs only itself."""
    stance_labels, framing_labels = predictor.standard.stance, predictor.standard.framing
    inputs = [DocumentInput(a.doc_id, a.text) for _, a in batch]
    try:
        annotations: list[DocumentAnnotation | Exception] = list(predictor.annotate(inputs))
    except Exception:
        annotations = []
        for doc in inputs:
            try:
                annotations.append(predictor.annotate([doc])[0])
            except Exception as exc:  # any failure of one document is reported, never fatal
                annotations.append(exc)
    scored_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    out: list[Scored | InputError] = []
    for (index, article), ann in zip(batch, annotations, strict=True):
        if isinstance(ann, Exception):
            out.append(
                InputError(
                    article.input,
                    article.item,
                    f"expected the model to score it, found {type(ann).__name__}: {ann}",
                )
            )
        else:
            out.append(document_rows(article, index, ann, scored_at, stance_labels, framing_labels))
    return out


Batch = list[tuple[int, Article]]


def _batches(items: Iterable[tuple[int, Article]], size: int) -> Iterator[Batch]:
    batch: Batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class LocalRunner:
    """Scores in this process with one Predictor."""

    def __init__(self, predictor: Predictor):
        self.predictor = predictor

    def run(self, items: list[tuple[int, Article]], batch_size: int) -> Iterator[Scored | InputError]:
        for batch in _batches(items, batch_size):
            yield from score_batch(self.predictor, batch)


_ARTICLE_FIELDS = ("doc_id", "text", "input", "item", "title", "url", "outlet", "published")


class RayScorer:
    """The Ray Data actor: loads the model once (`load_predictor`) and scores batches with `score_batch`."""

    def __init__(self, model: str, fast: bool = False):

        self.predictor = load_predictor(model, fast=fast)

    def __call__(self, batch: pa.Table) -> pa.Table:
        items = [(row["doc_index"], Article(**{k: row[k] for k in _ARTICLE_FIELDS})) for row in batch.to_pylist()]
        results = score_batch(self.predictor, items)
        # Rows travel back as JSON text: one flat column per document, whatever the nesting.
        return pa.table({"payload": [json.dumps(_to_payload(r)) for r in results]})


def _to_payload(result: Scored | InputError) -> dict:
    if isinstance(result, InputError):
        return {"error": result.as_dict()}
    return {"scored": result.__dict__}


def _from_payload(payload: dict) -> Scored | InputError:
    if "error" in payload:
        return InputError(**payload["error"])
    return Scored(**payload["scored"])


class RayRunner:
    """Scores as a Ray Data pipeline: `from_items` → `map_batches(RayScorer)` on an actor pool.

    `address` names an existing cluster (as `ray.init(address=...)`; RAY_ADDRESS is read by Ray
    itself when it is None); without either, a local Ray is started."""

    def __init__(self, model: str, workers: int | None = None, address: str | None = None, num_cpus: int | None = None,
                 fast: bool = False):
        # A model directory must mean the same folder to the actors, whatever their working directory.
        self.model = str(Path(model).resolve()) if Path(model).is_dir() else model
        self.workers, self.address, self.num_cpus, self.fast = workers, address, num_cpus, fast

    def run(self, items: list[tuple[int, Article]], batch_size: int) -> Iterator[Scored | InputError]:
        try:
            import ray
            import ray.data
        except ImportError as exc:
            raise ScoringError(
                "--engine ray: expected the ray package, found it missing; install it with "
                "`pip install 'stancelens[ray]'`"
            ) from exc
        if not items:
            return
        if not ray.is_initialized():
            num_cpus = self.num_cpus if not self.address else None
            ray.init(address=self.address, num_cpus=num_cpus, ignore_reinit_error=True, log_to_driver=False)
        workers = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        rows = [{"doc_index": i, **{k: getattr(a, k) for k in _ARTICLE_FIELDS}} for i, a in items]
        ds: Any = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows) // batch_size + 1, 1000)))
        ds = ds.map_batches(
            RayScorer,
            fn_constructor_kwargs={"model": self.model, "fast": self.fast},
            batch_size=batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=workers),
        )
        for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            for payload in batch.column("payload").to_pylist():
                yield _from_payload(json.loads(payload))
