"""Batch scoring: articles → pair rows and mention rows, checkpointed so that a killed run resumes losslessly.

Layout of a run writing RESULTS (e.g. ``s.parquet``):

- ``RESULTS``                 one row per (document, sentence, ordered pair)
- ``RESULTS`` with ``.mentions`` before its suffix (``s.mentions.parquet``): one row per mention
- ``RESULTS.errors.jsonl``    inputs and items that could not be read, parsed or scored
- ``RESULTS.parts/``          while running: committed chunks (``part-NNNNNN.{pairs,mentions}.parquet``
  plus ``part-NNNNNN.docs.json``, the content hashes of the documents it completes) and
  ``manifest.json``, the list of committed parts.

A part counts only once ``manifest.json`` names it, and the manifest is replaced atomically
(``os.replace``) after the part's files are on disk, so a run killed at any instant leaves either a
committed part or an orphan that the next run deletes. The next run skips the documents of committed
parts; at the end the parts are merged (atomically) into RESULTS, sorted into input order, so a
resumed run and a clean run give the same rows. Both engines (local, Ray) call `score_batch`, which
holds the one call into the Predictor.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from stancelens.model.annotation import DocumentAnnotation, ModelInfo
from stancelens.model.files import atomic_writer
from stancelens.model.predictor import DocumentInput, Predictor
from stancelens.serve.feeds import Article, Deduplicator, InputError, InputReader

FORMATS = ("parquet", "jsonl", "csv")
MANIFEST_VERSION = 1


class ScoringError(RuntimeError):
    """A run that cannot start or resume (wrong model for the checkpoint, output in use, ...)."""


# -- output naming ------------------------------------------------------------------------------


def infer_format(out: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise ScoringError(f"--format: expected one of {list(FORMATS)}, found {fmt!r}")
        return fmt
    return {".jsonl": "jsonl", ".csv": "csv"}.get(out.suffix.lower(), "parquet")


def mentions_path(results: Path) -> Path:
    """``s.parquet`` → ``s.mentions.parquet``; ``s`` → ``s.mentions``."""
    if results.suffix:
        return results.with_name(f"{results.stem}.mentions{results.suffix}")
    return results.with_name(f"{results.name}.mentions")


def errors_path(results: Path) -> Path:
    return results.with_name(f"{results.name}.errors.jsonl")


def parts_path(results: Path) -> Path:
    return results.with_name(f"{results.name}.parts")


# -- rows ---------------------------------------------------------------------------------------

PROVENANCE = [
    ("doc_index", pa.int64()),
    ("doc_id", pa.string()),
    ("doc_hash", pa.string()),
    ("url", pa.string()),
    ("outlet", pa.string()),
    ("title", pa.string()),
    ("published", pa.string()),
    ("input", pa.string()),
    ("item", pa.string()),
    ("sentence_index", pa.int64()),
    ("sentence_start", pa.int64()),
    ("sentence_end", pa.int64()),
    ("sentence_text", pa.string()),
]
MODEL_COLUMNS = [
    ("model_name", pa.string()),
    ("model_version", pa.string()),
    ("model_hash", pa.string()),
    ("scored_at", pa.string()),
]


def pair_schema(stance_labels: Sequence[str]) -> pa.Schema:
    return pa.schema(
        [
            ("row_id", pa.string()),
            *PROVENANCE,
            ("source", pa.string()),
            ("target", pa.string()),
            ("stance", pa.string()),
            *[(f"prob_{label}", pa.float64()) for label in stance_labels],
            ("source_mentions", pa.string()),
            ("target_mentions", pa.string()),
            *MODEL_COLUMNS,
        ]
    )


def mention_schema(framing_labels: Sequence[str]) -> pa.Schema:
    return pa.schema(
        [
            ("row_id", pa.string()),
            *PROVENANCE,
            ("mention_id", pa.string()),
            ("mention_start", pa.int64()),
            ("mention_end", pa.int64()),
            ("mention_text", pa.string()),
            ("actor", pa.string()),
            ("kind", pa.string()),
            ("framing", pa.string()),
            ("term_start", pa.int64()),
            ("term_end", pa.int64()),
            ("term_text", pa.string()),
            ("voice", pa.string()),
            ("speaker", pa.string()),
            ("negated", pa.bool_()),
            *[(f"prob_{label}", pa.float64()) for label in framing_labels],
            *MODEL_COLUMNS,
        ]
    )


def row_id(*parts: object) -> str:
    """Stable id: the same document text, offsets and actors give the same id in every run."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()[:24]


@dataclass
class Scored:
    """One scored document: its rows, ready for a part file."""

    doc_hash: str
    sentences: int
    pairs: list[dict]
    mentions: list[dict]


def document_rows(
    article: Article,
    doc_index: int,
    ann: DocumentAnnotation,
    scored_at: str,
    stance_labels: Sequence[str],
    framing_labels: Sequence[str],
) -> Scored:
    digest = article.content_hash
    info = ann.model or ModelInfo(name="unknown", version="-")
    model = {
        "model_name": info.name,
        "model_version": info.version,
        "model_hash": info.hash,
        "scored_at": scored_at,
    }
    pairs: list[dict] = []
    mentions: list[dict] = []
    for s in ann.sentences:
        base = {
            "doc_index": doc_index,
            "doc_id": article.doc_id,
            "doc_hash": digest,
            "url": article.url,
            "outlet": article.outlet,
            "title": article.title,
            "published": article.published,
            "input": article.input,
            "item": article.item,
            "sentence_index": s.index,
            "sentence_start": s.start,
            "sentence_end": s.end,
            "sentence_text": s.text,
        }
        for p in s.pairs:
            probs = p.probs or {}
            pairs.append(
                {
                    "row_id": row_id(digest, s.start, s.end, p.source, p.target),
                    **base,
                    "source": p.source,
                    "target": p.target,
                    "stance": p.stance,
                    **{f"prob_{label}": probs.get(label) for label in stance_labels},
                    "source_mentions": ",".join(p.source_mentions),
                    "target_mentions": ",".join(p.target_mentions),
                    **model,
                }
            )
        for m in s.mentions:
            f = m.framing
            probs = f.probs or {}
            mentions.append(
                {
                    "row_id": row_id(digest, s.start, s.end, m.start, m.end, m.actor),
                    **base,
                    "mention_id": m.id,
                    "mention_start": m.start,
                    "mention_end": m.end,
                    "mention_text": m.text,
                    "actor": m.actor,
                    "kind": m.kind,
                    "framing": f.label,
                    "term_start": f.term.start if f.term else None,
                    "term_end": f.term.end if f.term else None,
                    "term_text": f.term.text if f.term else None,
                    "voice": f.voice,
                    "speaker": f.speaker,
                    "negated": f.negated,
                    **{f"prob_{label}": probs.get(label) for label in framing_labels},
                    **model,
                }
            )
    return Scored(digest, len(ann.sentences), pairs, mentions)


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


# -- the checkpoint -----------------------------------------------------------------------------


@dataclass
class Totals:
    documents: int = 0
    sentences: int = 0
    pairs: int = 0
    mentions: int = 0

    def add(self, other: Totals) -> None:
        self.documents += other.documents
        self.sentences += other.sentences
        self.pairs += other.pairs
        self.mentions += other.mentions


class Checkpoint:
    """Committed parts of an unfinished run in RESULTS.parts/, and the buffer of the next part."""

    def __init__(
        self,
        directory: Path,
        model: ModelInfo,
        stance_labels: Sequence[str],
        framing_labels: Sequence[str],
        every_docs: int = 1000,
        every_seconds: float = 60.0,
    ):
        self.dir = directory
        self.model = model
        self.pair_schema = pair_schema(stance_labels)
        self.mention_schema = mention_schema(framing_labels)
        self.every_docs, self.every_seconds = every_docs, every_seconds
        self.identity = {
            "model": model.model_dump(),
            "stance_labels": list(stance_labels),
            "framing_labels": list(framing_labels),
        }
        self.parts: list[dict] = []
        self.completed: set[str] = set()
        self.resumed = Totals()
        self._buffer: list[Scored] = []
        self._last_commit = time.monotonic()
        self._lock: int | None = None

    # The lock is an flock, released by the kernel when the process dies (even by kill -9).
    def __enter__(self) -> Checkpoint:
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / "lock", os.O_CREAT | os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise ScoringError(
                f"{self.dir}: expected no other run writing these results, found one holding its lock; "
                "wait for it to finish or choose another --out"
            ) from exc
        self._lock = fd
        try:
            self._load()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    @property
    def manifest(self) -> Path:
        return self.dir / "manifest.json"

    def _load(self) -> None:
        if self.manifest.exists():
            data = json.loads(self.manifest.read_text(encoding="utf-8"))
            found = {k: data.get(k) for k in self.identity}
            if found != self.identity:
                raise ScoringError(
                    f"{self.dir}: expected a checkpoint of model {self.identity['model']}, found one of "
                    f"model {found['model']}; rerun with that --model (and the same --fast/--fp32: the fast "
                    f"path's name ends in -bf16 or -int8), or delete {self.dir} to start over"
                )
            self.parts = data["parts"]
        listed: set[str] = set()
        for part in self.parts:
            listed.update(f"{part['name']}.{kind}" for kind in ("pairs.parquet", "mentions.parquet", "docs.json"))
            self.completed.update(json.loads((self.dir / f"{part['name']}.docs.json").read_text("utf-8")))
            self.resumed.add(Totals(part["documents"], part["sentences"], part["pairs"], part["mentions"]))
        # Files of a part that was being written when the last run died: never committed, so dropped.
        for path in self.dir.iterdir():
            if path.name not in listed and path.name not in ("manifest.json", "lock"):
                path.unlink()

    def add(self, scored: Scored) -> Totals | None:
        """Buffer a document; commit a part when enough documents or time have gathered."""
        self._buffer.append(scored)
        self.completed.add(scored.doc_hash)
        due = len(self._buffer) >= self.every_docs or time.monotonic() - self._last_commit >= self.every_seconds
        return self.commit() if due else None

    def commit(self) -> Totals | None:
        if not self._buffer:
            return None
        number = 1 + max((int(p["name"].split("-")[1]) for p in self.parts), default=0)
        name = f"part-{number:06d}"
        pairs = [row for s in self._buffer for row in s.pairs]
        mentions = [row for s in self._buffer for row in s.mentions]
        _write_parquet(pa.Table.from_pylist(pairs, schema=self.pair_schema), self.dir / f"{name}.pairs.parquet")
        _write_parquet(
            pa.Table.from_pylist(mentions, schema=self.mention_schema), self.dir / f"{name}.mentions.parquet"
        )
        with atomic_writer(self.dir / f"{name}.docs.json") as handle:
            json.dump([s.doc_hash for s in self._buffer], handle)
        totals = Totals(len(self._buffer), sum(s.sentences for s in self._buffer), len(pairs), len(mentions))
        entry = {"name": name, **totals.__dict__}
        with atomic_writer(self.manifest) as handle:
            json.dump({"version": MANIFEST_VERSION, **self.identity, "parts": [*self.parts, entry]}, handle)
        self.parts.append(entry)
        self._buffer.clear()
        self._last_commit = time.monotonic()
        return totals

    def tables(self) -> tuple[pa.Table, pa.Table]:
        pairs = [pq.read_table(self.dir / f"{p['name']}.pairs.parquet", schema=self.pair_schema) for p in self.parts]
        mentions = [
            pq.read_table(self.dir / f"{p['name']}.mentions.parquet", schema=self.mention_schema) for p in self.parts
        ]
        pair_table = pa.concat_tables(pairs) if pairs else self.pair_schema.empty_table()
        mention_table = pa.concat_tables(mentions) if mentions else self.mention_schema.empty_table()
        # Input order, whatever order the parts were committed in (resumed runs, Ray's out-of-order batches).
        pair_table = pair_table.sort_by(
            [
                ("doc_index", "ascending"),
                ("sentence_index", "ascending"),
                ("source", "ascending"),
                ("target", "ascending"),
            ]
        )
        mention_table = mention_table.sort_by(
            [
                ("doc_index", "ascending"),
                ("mention_start", "ascending"),
                ("mention_end", "ascending"),
                ("actor", "ascending"),
            ]
        )
        return pair_table, mention_table


def _write_parquet(table: pa.Table, path: Path) -> None:
    with atomic_writer(path, "wb") as handle:
        pq.write_table(table, handle)


def _readable(path: Path) -> None:
    # atomic_writer's temporary file is private (0600); results are meant to be shared like any file.
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def write_table(table: pa.Table, path: Path, fmt: str) -> None:
    """Write a results table atomically in the chosen format."""
    _write_table(table, path, fmt)
    _readable(path)


def _write_table(table: pa.Table, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        _write_parquet(table, path)
    elif fmt == "jsonl":
        with atomic_writer(path) as handle:
            for row in table.to_pylist():
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        with atomic_writer(path) as handle:
            table.to_pandas().to_csv(handle, index=False)


def read_table(path: Path, fmt: str | None = None) -> pa.Table:
    """Read a results table written by `write_table` (format from the extension unless given)."""
    fmt = fmt or infer_format(path, None)
    if fmt == "parquet":
        return pq.read_table(path)
    if fmt == "jsonl":
        import pandas as pd

        frame = pd.read_json(path, lines=True, dtype=False) if path.stat().st_size else pd.DataFrame()
        return pa.Table.from_pandas(frame, preserve_index=False)
    import pyarrow.csv as pacsv

    return pacsv.read_csv(path)


# -- engines ------------------------------------------------------------------------------------

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


class LocalEngine:
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
        from stancelens.model.loading import load_predictor

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


class RayEngine:
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


# -- the run ------------------------------------------------------------------------------------


@dataclass
class ScoreSummary:
    totals: Totals
    scored_now: int
    resumed_documents: int
    duplicates: int
    errors: int
    seconds: float
    sentences_now: int
    results: Path
    mentions: Path
    errors_file: Path

    def line(self) -> str:
        rate = self.scored_now / self.seconds if self.seconds else 0.0
        srate = self.sentences_now / self.seconds if self.seconds else 0.0
        t = self.totals
        return (
            f"documents {t.documents} ({self.scored_now} scored now, {self.resumed_documents} from the "
            f"checkpoint, {self.duplicates} duplicates dropped), sentences {t.sentences}, pairs {t.pairs}, "
            f"mentions {t.mentions}, errors {self.errors}, time {self.seconds:.1f} s "
            f"({rate:.1f} documents/s, {srate:.1f} sentences/s) → {self.results}, {self.mentions}, "
            f"{self.errors_file}"
        )


@dataclass
class ScoreRun:
    """One `stancelens score` invocation: read, skip what is done, score, checkpoint, merge."""

    inputs: Sequence[str]
    out: Path
    predictor: Predictor
    engine: LocalEngine | RayEngine | None = None
    fmt: str | None = None
    batch_size: int = 16
    reader: InputReader = field(default_factory=InputReader)
    checkpoint_docs: int = 1000
    checkpoint_seconds: float = 60.0
    progress: bool | None = None  # None: a bar only on a terminal (tqdm's rule)

    def run(self) -> ScoreSummary:
        from tqdm import tqdm

        start = time.monotonic()
        fmt = infer_format(self.out, self.fmt)
        engine = self.engine or LocalEngine(self.predictor)
        std = self.predictor.standard
        errors: list[InputError] = []
        with Checkpoint(
            parts_path(self.out),
            self.predictor.info,
            std.stance,
            std.framing,
            self.checkpoint_docs,
            self.checkpoint_seconds,
        ) as checkpoint:
            dedup = Deduplicator()
            pending: list[tuple[int, Article]] = []
            index = 0
            for found in self.reader.read(self.inputs):
                if isinstance(found, InputError):
                    errors.append(found)
                elif dedup.keep(found):
                    if found.content_hash not in checkpoint.completed:
                        pending.append((index, found))
                    index += 1
            now = Totals()
            disable = None if self.progress is None else not self.progress
            with tqdm(total=len(pending), desc="scoring", unit="doc", disable=disable, smoothing=0.1) as bar:
                for result in engine.run(pending, self.batch_size):
                    if isinstance(result, InputError):
                        errors.append(result)
                    else:
                        checkpoint.add(result)
                        now.add(Totals(1, result.sentences, len(result.pairs), len(result.mentions)))
                    bar.update(1)
                    elapsed = max(time.monotonic() - start, 1e-9)
                    bar.set_postfix_str(f"{now.sentences / elapsed:.1f} sentences/s", refresh=False)
            checkpoint.commit()
            pairs, mentions = checkpoint.tables()
            results_mentions = mentions_path(self.out)
            write_table(pairs, self.out, fmt)
            write_table(mentions, results_mentions, fmt)
            with atomic_writer(errors_path(self.out)) as handle:
                for error in errors:
                    handle.write(json.dumps(error.as_dict(), ensure_ascii=False) + "\n")
            _readable(errors_path(self.out))
            totals = Totals()
            totals.add(checkpoint.resumed)
            totals.add(now)
        # Only once RESULTS is in place: a kill before this line leaves the parts for the next run.
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(parts_path(self.out))
        return ScoreSummary(
            totals,
            now.documents,
            checkpoint.resumed.documents,
            dedup.dropped,
            len(errors),
            time.monotonic() - start,
            now.sentences,
            self.out,
            results_mentions,
            errors_path(self.out),
        )
