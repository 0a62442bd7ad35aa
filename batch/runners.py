"""Runners of batch scoring: this process (`LocalRunner`) or a pool of Ray actors (`RayRunner`). Both call
`score_batch`, the one call into the Predictor, so both give the same rows."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from stancelens.batch.feeds import Article, InputError
from stancelens.batch.tables import Scored, ScoringError, document_rows
from stancelens.model.actor_set import ActorSet, apply_actor_set
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


def pack_model(directory: Path) -> tuple[bytes, str]:
    """A model directory as one tar archive in memory, with its sha256: what travels to the Ray workers
    through the object store, so that no node needs the driver's path."""
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            archive.add(path, arcname=str(path.relative_to(directory)))
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def unpack_model(data: bytes, digest: str, folder: Path) -> Path:
    """The archive of `pack_model` checked against its hash and unpacked into `folder`."""
    import io
    import tarfile

    found = hashlib.sha256(data).hexdigest()
    if found != digest:
        raise ScoringError(f"the model received from the driver: expected sha256 {digest[:16]}…, found {found[:16]}…; "
                           "the transfer was corrupted, rerun the job")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as archive:
        archive.extractall(folder, filter="data")
    return folder


class RayScorer:
    """One Ray worker: loads the model once — from the archive the driver put in the object store when the
    model is a directory, else by its spec ('lexicon') — and scores batches with `score_batch`."""

    def __init__(self, model: str, package: tuple[bytes, str] | None = None, fast: bool = False,
                 actor_set: ActorSet | None = None, actors_mode: str = "add"):
        import tempfile

        if package is not None:
            self._folder = tempfile.TemporaryDirectory(prefix="stancelens-model-")
            kind = model.split(":", 1)[0] if model.startswith("tfidf:") else ""
            unpacked = unpack_model(package[0], package[1], Path(self._folder.name))
            model = f"{kind}:{unpacked}" if kind else str(unpacked)
        predictor = load_predictor(model, fast=fast)
        if actor_set is not None:
            predictor = predictor.with_registry(apply_actor_set(predictor.registry, actor_set, actors_mode))
        self.predictor = predictor

    def ready(self) -> str:
        return self.predictor.info.name

    def score(self, batch: Batch) -> list[Scored | InputError]:
        return score_batch(self.predictor, batch)


class RayRunner:
    """Scores on a Ray cluster: a pool of `RayScorer` actors created once per run (each loads the model
    once) that take batches as they come free; the chunk's results come back in any order and the
    checkpoint sorts them. A model directory is archived and put in the object store: workers on other
    nodes need no copy of it at any path.

    `address` names an existing cluster (as `ray.init(address=...)`; RAY_ADDRESS is read by Ray
    itself when it is None); without either, a local Ray is started."""

    def __init__(self, model: str, workers: int | None = None, address: str | None = None, num_cpus: int | None = None,
                 fast: bool = False, actor_set: ActorSet | None = None, actors_mode: str = "add"):
        spec_path = Path(model.removeprefix("tfidf:"))
        # Read now: the directory may be gone (or unreadable to the workers) by the time the job runs.
        self.package = pack_model(spec_path) if spec_path.is_dir() else None
        self.model = model
        self.workers, self.address, self.num_cpus, self.fast = workers, address, num_cpus, fast
        self.actor_set, self.actors_mode = actor_set, actors_mode  # travels to the actors with the job
        self._pool: Any = None
        self._actors: list = []

    def _start(self):
        try:
            import ray
            from ray.util import ActorPool
        except ImportError as exc:
            raise ScoringError(
                "--runner ray: expected the ray package, found it missing; install it with "
                "`pip install 'stancelens[ray]'`"
            ) from exc
        if not ray.is_initialized():
            num_cpus = self.num_cpus if not self.address else None
            ray.init(address=self.address, num_cpus=num_cpus, ignore_reinit_error=True, log_to_driver=False)
        workers = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        package = ray.put(self.package) if self.package is not None else None
        actor = ray.remote(num_cpus=1)(RayScorer)
        self._actors = [actor.remote(self.model, package, self.fast, self.actor_set, self.actors_mode)
                        for _ in range(workers)]
        try:  # a worker that cannot load the model fails the job here, with its reason, instead of hanging
            ray.get([a.ready.remote() for a in self._actors])
        except Exception as exc:
            self.close()
            raise ScoringError(f"--runner ray: a worker could not load the model {self.model!r}: "
                               f"{_root_cause(exc)}; check the model on the driver and the workers' logs") from exc
        self._pool = ActorPool(self._actors)

    def run(self, items: list[tuple[int, Article]], batch_size: int) -> Iterator[Scored | InputError]:
        if not items:
            return
        if self._pool is None:
            self._start()
        try:
            for results in self._pool.map_unordered(lambda a, batch: a.score.remote(batch),
                                                    list(_batches(items, batch_size))):
                yield from results
        except ScoringError:
            raise
        except Exception as exc:
            raise ScoringError(f"--runner ray: a worker failed: {_root_cause(exc)}") from exc

    def close(self) -> None:
        """Stop the actors (their memory and the model copies are freed)."""
        try:
            import ray
        except ImportError:
            return
        for a in self._actors:
            ray.kill(a)
        self._actors, self._pool = [], None


def _root_cause(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc.__cause__ or exc
    return f"{type(cause).__name__}: {str(cause).strip().splitlines()[-1][:300] if str(cause).strip() else ''}"
