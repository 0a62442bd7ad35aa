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
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from stancelens.batch.feeds import Article, Deduplicator, InputError, InputReader
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
    read_table,
    write_parquet,
    write_table,
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


def append_rows(new: pa.Table, path: Path, fmt: str) -> pa.Table:
    """The rows of `path` followed by those of `new` whose row_id is not there yet."""
    if not path.exists():
        return new
    old = read_table(path, fmt, schema=new.schema)
    if old.num_rows == 0:
        return new
    known = set(old.column("row_id").to_pylist())
    fresh = new.filter(pa.array([r not in known for r in new.column("row_id").to_pylist()], type=pa.bool_()))
    return pa.concat_tables([old.cast(new.schema) if fmt == "parquet" else old, fresh],
                            promote_options="permissive")


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
        write_parquet(pa.Table.from_pylist(pairs, schema=self.pair_schema), self.dir / f"{name}.pairs.parquet")
        write_parquet(
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
    runner: LocalRunner | RayRunner | None = None
    fmt: str | None = None
    batch_size: int = 16
    reader: InputReader = field(default_factory=InputReader)
    checkpoint_docs: int = 1000
    checkpoint_seconds: float = 60.0
    progress: bool | None = None  # None: a bar only on a terminal (tqdm's rule)
    output_mode: str = "refuse"  # refuse | overwrite | append: what to do with results already at `out`

    def run(self) -> ScoreSummary:
        from tqdm import tqdm

        start = time.monotonic()
        fmt = infer_format(self.out, self.fmt)
        runner = self.runner or LocalRunner(self.predictor)
        std = self.predictor.standard
        errors: list[InputError] = []
        check_output(self.out, self.output_mode)
        with Checkpoint(
            parts_path(self.out),
            self.predictor.info,
            std.stance,
            std.framing,
            self.checkpoint_docs,
            self.checkpoint_seconds,
            input_fingerprint(self.inputs),
            self.output_mode,
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
                for result in runner.run(pending, self.batch_size):
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
            if self.output_mode == "append":
                pairs = append_rows(pairs, self.out, fmt)
                mentions = append_rows(mentions, results_mentions, fmt)
            write_table(pairs, self.out, fmt)
            write_table(mentions, results_mentions, fmt)
            earlier = (errors_path(self.out).read_text(encoding="utf-8")
                       if self.output_mode == "append" and errors_path(self.out).exists() else "")
            with atomic_writer(errors_path(self.out)) as handle:
                handle.write(earlier)
                for error in errors:
                    handle.write(json.dumps(error.as_dict(), ensure_ascii=False) + "\n")
            make_readable(errors_path(self.out))
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
