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
resumed run and a clean run give the same rows. Both runners (local, Ray; batch/runners.py) call `score_batch`, which
holds the one call into the Predictor.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from stancelens.batch.feeds import Article, Deduplicator, InputError, InputReader
from stancelens.batch.results import ResultsWriter
from stancelens.batch.runners import LocalRunner, RayRunner
from stancelens.batch.tables import (
    Scored,
    ScoringError,
    errors_path,
    infer_format,
    make_readable,
    mention_schema,
    mentions_path,
    pair_schema,
    parts_path,
    write_parquet,
)
from stancelens.model.annotation import ModelInfo
from stancelens.model.files import atomic_writer
from stancelens.model.predictor import Predictor

MANIFEST_VERSION = 1

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


# -- the output contract --------------------------------------------------------------------------

OUTPUT_MODES = ("refuse", "overwrite", "append")
_MIB = 1 << 20


def _file_fingerprint(path: Path) -> dict:
    """Path, size, modification time and a hash of the first and last MiB: cheap, and changes when the
    file does (a feed that grew, an export that was replaced)."""
    stat = path.stat()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        digest.update(handle.read(_MIB))
        if stat.st_size > _MIB:
            handle.seek(max(_MIB, stat.st_size - _MIB))
            digest.update(handle.read(_MIB))
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "head_tail_sha256": digest.hexdigest()}


def input_fingerprint(specs: Sequence[str]) -> list[dict]:
    """What a checkpoint was made from. Files and folders (each file) by `_file_fingerprint`; URLs and stdin
    by name (their items are recorded by content hash in the parts as they are read)."""
    out: list[dict] = []
    for spec in specs:
        path = Path(spec)
        if spec == "-" or spec.startswith(("http://", "https://")) or not path.exists():
            out.append({"input": spec})
        elif path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
            out.append({"input": spec, "files": [_file_fingerprint(p) for p in files]})
        else:
            out.append({"input": spec, **_file_fingerprint(path)})
    return out


def check_output(out: Path, mode: str) -> None:
    """The output contract: existing results are never replaced silently. `refuse` (the default) stops when
    RESULTS or its mentions file exists and no checkpoint of an unfinished run is there to resume;
    `overwrite` replaces them; `append` adds the rows whose row_id is new."""
    if mode not in OUTPUT_MODES:
        raise ScoringError(f"output mode: expected one of {list(OUTPUT_MODES)}, found {mode!r}")
    existing = [p for p in (out, mentions_path(out)) if p.exists()]
    if mode == "refuse" and existing and not (parts_path(out) / "manifest.json").exists():
        raise ScoringError(f"{existing[0]}: expected no earlier results at --out, found them; pass --append to add "
                           "new rows to them, --overwrite to replace them, or choose another --out")


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
        inputs: list[dict] | None = None,
        output_mode: str = "refuse",
        actors: str | None = None,
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
            "inputs": inputs or [],
            "output_mode": output_mode,
            "actors": actors,  # the registry's fingerprint: a run under another actor set is not resumed into
        }
        self.parts: list[dict] = []
        self.completed: CompletedDocuments | None = None
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
        if self.completed is not None:
            self.completed.close()
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
            if "inputs" not in data or "output_mode" not in data:
                raise ScoringError(f"{self.dir}: expected a checkpoint that records its inputs and output mode, "
                                   "found one written by an older stancelens; finish it with that version, or "
                                   f"delete {self.dir} to start over")
            if found["output_mode"] != self.identity["output_mode"]:
                flag = {"append": "--append", "overwrite": "--overwrite", "refuse": "neither --append nor --overwrite"}
                raise ScoringError(f"{self.dir}: expected the output mode of the run that made this checkpoint "
                                   f"({flag[found['output_mode']]}), found {flag[self.identity['output_mode']]}; rerun "
                                   "with the same flag to resume, so that earlier results are kept as that run "
                                   f"promised, or delete {self.dir} to start over")
            if found["inputs"] != self.identity["inputs"] and {k: v for k, v in found.items() if k != "inputs"} == {
                    k: v for k, v in self.identity.items() if k != "inputs"}:
                changed = [i.get("input") for i in self.identity["inputs"] if i not in (found["inputs"] or [])]
                raise ScoringError(
                    f"{self.dir}: expected a checkpoint of these inputs, found one of other or changed inputs "
                    f"({', '.join(map(str, changed or ['a different list']))}); rerun the same command with the "
                    f"same inputs to resume, or delete {self.dir} to start over"
                )
            if found["actors"] != self.identity["actors"] and found["model"] == self.identity["model"]:
                raise ScoringError(
                    f"{self.dir}: expected a checkpoint made with this actor registry, found one made with another "
                    "(a different --actors file or --actors-mode); rerun with the same --actors to resume, or "
                    f"delete {self.dir} to start over"
                )
            if found != self.identity:
                raise ScoringError(
                    f"{self.dir}: expected a checkpoint of model {self.identity['model']}, found one of "
                    f"model {found['model']}; rerun with that --model (and the same --fast/--fp32: the fast "
                    f"path's name ends in -bf16 or -int8), or delete {self.dir} to start over"
                )
            self.parts = data["parts"]
        listed: set[str] = set()
        # The documents of committed parts, rebuilt from the parts themselves (the manifest is the truth).
        self.completed = CompletedDocuments(self.dir / "completed.sqlite")
        for part in self.parts:
            listed.update(f"{part['name']}.{kind}" for kind in ("pairs.parquet", "mentions.parquet", "docs.json"))
            self.completed.update(json.loads((self.dir / f"{part['name']}.docs.json").read_text("utf-8")))
            self.resumed.add(Totals(part["documents"], part["sentences"], part["pairs"], part["mentions"]))
        # Files of a part that was being written when the last run died: never committed, so dropped.
        for path in self.dir.iterdir():
            if path.name not in listed and path.name not in ("manifest.json", "lock", "completed.sqlite"):
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()

    def add(self, scored: Scored) -> Totals | None:
        """Buffer a document; commit a part when enough documents or time have gathered."""
        self._buffer.append(scored)
        due = len(self._buffer) >= self.every_docs or time.monotonic() - self._last_commit >= self.every_seconds
        return self.commit() if due else None

    def commit(self) -> Totals | None:
        if not self._buffer:
            return None
        number = 1 + max((int(p["name"].split("-")[1]) for p in self.parts), default=0)
        name = f"part-{number:06d}"
        self._buffer.sort(key=lambda s: s.doc_index)  # a Ray chunk comes back in any order
        pairs = [row for s in self._buffer for row in s.pairs]
        mentions = [row for s in self._buffer for row in s.mentions]
        write_parquet(pa.Table.from_pylist(pairs, schema=self.pair_schema), self.dir / f"{name}.pairs.parquet")
        write_parquet(
            pa.Table.from_pylist(mentions, schema=self.mention_schema), self.dir / f"{name}.mentions.parquet"
        )
        with atomic_writer(self.dir / f"{name}.docs.json") as handle:
            json.dump([s.doc_hash for s in self._buffer], handle)
        totals = Totals(len(self._buffer), sum(s.sentences for s in self._buffer), len(pairs), len(mentions))
        entry = {"name": name, **totals.__dict__, "first": self._buffer[0].doc_index,
                 "last": self._buffer[-1].doc_index}
        with atomic_writer(self.manifest) as handle:
            json.dump({"version": MANIFEST_VERSION, **self.identity, "parts": [*self.parts, entry]}, handle)
        self.parts.append(entry)
        assert self.completed is not None
        self.completed.update(s.doc_hash for s in self._buffer)
        self._buffer.clear()
        self._last_commit = time.monotonic()
        return totals

    def ordered_parts(self) -> list[list[dict]]:
        """Committed parts grouped so that reading the groups in turn gives input order: parts whose
        document ranges do not overlap (a local run) are groups of one; parts of one Ray chunk (results come
        back in any order) or a retried document in a later run's part join the parts they overlap, sorted
        together — a group is at most about one chunk, so memory stays bounded."""
        parts = sorted(self.parts, key=lambda p: (p.get("first", 0), p.get("last", 0)))
        groups: list[list[dict]] = []
        reach = -1
        for part in parts:
            if groups and part.get("first", 0) <= reach:
                groups[-1].append(part)
            else:
                groups.append([part])
            reach = max(reach, part.get("last", 0))
        return groups

    def tables(self) -> Iterator[tuple[pa.Table, pa.Table]]:
        """(pairs, mentions) of the committed parts, one group at a time, in input order."""
        for group in self.ordered_parts():
            pairs = pa.concat_tables([pq.read_table(self.dir / f"{p['name']}.pairs.parquet", schema=self.pair_schema)
                                      for p in group])
            mentions = pa.concat_tables([pq.read_table(self.dir / f"{p['name']}.mentions.parquet",
                                                       schema=self.mention_schema) for p in group])
            yield (pairs.sort_by([("doc_index", "ascending"), ("sentence_index", "ascending"),
                                  ("source", "ascending"), ("target", "ascending")]),
                   mentions.sort_by([("doc_index", "ascending"), ("mention_start", "ascending"),
                                     ("mention_end", "ascending"), ("actor", "ascending")]))


class CompletedDocuments:
    """Content hashes of the documents in committed parts, in a SQLite file of the parts folder (bounded
    memory); rebuilt from the parts on every start, so a kill at any instant leaves it consistent."""

    def __init__(self, path: Path):
        path.unlink(missing_ok=True)
        self.db = sqlite3.connect(str(path))
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("CREATE TABLE done (hash TEXT PRIMARY KEY) WITHOUT ROWID")

    def update(self, hashes: Iterable[str]) -> None:
        self.db.executemany("INSERT OR IGNORE INTO done VALUES (?)", ((h,) for h in hashes))

    def __contains__(self, digest: str) -> bool:
        return self.db.execute("SELECT 1 FROM done WHERE hash = ?", (digest,)).fetchone() is not None

    def close(self) -> None:
        self.db.close()


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
    """One `stancelens score` invocation: read lazily, skip what is done, score in bounded chunks,
    checkpoint, and stream the committed parts into RESULTS."""

    inputs: Sequence[str]
    out: Path
    predictor: Predictor
    runner: LocalRunner | RayRunner | None = None
    fmt: str | None = None
    batch_size: int = 16
    reader: InputReader = field(default_factory=InputReader)
    checkpoint_docs: int = 1000
    checkpoint_seconds: float = 60.0
    progress: bool | None = None  # None: a bar only on a terminal (tqdm's rule)
    output_mode: str = "refuse"  # refuse | overwrite | append: what to do with results already at `out`
    partition_by: str = "none"  # none | month | outlet: a partitioned Parquet dataset instead of one file
    chunk_documents: int = 512  # documents read ahead and scored together: the memory bound of the run

    def run(self) -> ScoreSummary:
        from tqdm import tqdm

        start = time.monotonic()
        fmt = infer_format(self.out, self.fmt)
        runner = self.runner or LocalRunner(self.predictor)
        std = self.predictor.standard
        check_output(self.out, self.output_mode)
        chunk_size = max(self.chunk_documents, self.batch_size)
        with Checkpoint(
            parts_path(self.out),
            self.predictor.info,
            std.stance,
            std.framing,
            self.checkpoint_docs,
            self.checkpoint_seconds,
            input_fingerprint(self.inputs),
            self.output_mode,
            self.predictor.registry.fingerprint,
        ) as checkpoint:
            assert checkpoint.completed is not None
            dedup = Deduplicator(checkpoint.dir / "seen.sqlite")
            errors = ErrorLog(checkpoint.dir / "errors.run.jsonl")
            now = Totals()
            disable = None if self.progress is None else not self.progress
            # No total: counting would mean reading every input twice; the bar shows the rate instead.
            with tqdm(desc="scoring", unit="doc", disable=disable, smoothing=0.1) as bar:
                chunk: list[tuple[int, Article]] = []
                index = 0
                for found in self.reader.read(self.inputs):
                    if isinstance(found, InputError):
                        errors.write(found)
                        continue
                    if not dedup.keep(found):
                        continue
                    if found.content_hash not in checkpoint.completed:
                        chunk.append((index, found))
                    index += 1
                    if len(chunk) >= chunk_size:
                        self._score(runner, chunk, checkpoint, errors, now, bar, start)
                        chunk = []
                self._score(runner, chunk, checkpoint, errors, now, bar, start)
            close = getattr(runner, "close", None)
            if close is not None:
                close()
            checkpoint.commit()
            results_mentions = mentions_path(self.out)
            self._write_results(checkpoint, fmt, results_mentions)
            errors.finish(errors_path(self.out), self.output_mode == "append")
            dedup.close()
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
            errors.count,
            time.monotonic() - start,
            now.sentences,
            self.out,
            results_mentions,
            errors_path(self.out),
        )

    def _score(self, runner, chunk, checkpoint: Checkpoint, errors: ErrorLog, now: Totals, bar, start: float) -> None:
        if not chunk:
            return
        for result in runner.run(chunk, self.batch_size):
            if isinstance(result, InputError):
                errors.write(result)
            else:
                checkpoint.add(result)
                now.add(Totals(1, result.sentences, len(result.pairs), len(result.mentions)))
            bar.update(1)
            elapsed = max(time.monotonic() - start, 1e-9)
            bar.set_postfix_str(f"{now.sentences / elapsed:.1f} sentences/s", refresh=False)

    def _write_results(self, checkpoint: Checkpoint, fmt: str, results_mentions: Path) -> None:
        pairs = ResultsWriter(self.out, fmt, checkpoint.pair_schema, self.output_mode, self.partition_by)
        mentions = ResultsWriter(results_mentions, fmt, checkpoint.mention_schema, self.output_mode,
                                 self.partition_by)
        try:
            for pair_table, mention_table in checkpoint.tables():
                pairs.write(pair_table)
                mentions.write(mention_table)
        except BaseException:
            pairs.abort()
            mentions.abort()
            raise
        pairs.close()
        mentions.close()


class ErrorLog:
    """Inputs and items that could not be used, written as they happen (not kept in memory); put beside
    RESULTS at the end (after the earlier errors on --append)."""

    def __init__(self, path: Path):
        self.path = path
        self.handle = path.open("w", encoding="utf-8")
        self.count = 0

    def write(self, error: InputError) -> None:
        self.handle.write(json.dumps(error.as_dict(), ensure_ascii=False) + "\n")
        self.count += 1

    def finish(self, target: Path, keep_earlier: bool) -> None:
        self.handle.close()
        with atomic_writer(target) as out:
            if keep_earlier and target.exists():
                with target.open(encoding="utf-8") as earlier:
                    shutil.copyfileobj(earlier, out)
            with self.path.open(encoding="utf-8") as now:
                shutil.copyfileobj(now, out)
        make_readable(target)
