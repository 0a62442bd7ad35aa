"""Writing the results of a run: committed parts streamed into RESULTS without holding every row in memory.

RESULTS is one file (parquet, jsonl or csv) or, with `--partition-by month|outlet`, a Parquet dataset
(a folder of `month=2024-05/…parquet` files, read by pandas, pyarrow and DuckDB alike). The output
contract is the one of the checkpoint (batch/scoring.py): `refuse` never touches earlier results,
`overwrite` replaces them in one rename, `append` keeps them and adds the rows whose row_id is new —
the known row_ids go to a SQLite file, not to memory.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from stancelens.batch.tables import ScoringError, make_readable
from stancelens.model.files import replace_directory

PARTITIONS = ("none", "month", "outlet")
UNKNOWN = "unknown"
# The folder key of each partitioning: not a column name of the rows ("outlet" is one), or readers would
# see the same field twice with two types.
PARTITION_KEYS = {"month": "month", "outlet": "outlet_name"}


def partition_values(table: pa.Table, by: str) -> pa.Array:
    """The partition of each row: its publication month (YYYY-MM) or outlet; `unknown` when missing."""
    if by == "month":
        published = pc.fill_null(table.column("published"), "")
        month = pc.utf8_slice_codeunits(published, 0, 7)
        valid = pc.match_substring_regex(month, r"^\d{4}-\d{2}$")
        return pc.if_else(valid, month, UNKNOWN)
    outlet = pc.fill_null(table.column("outlet"), UNKNOWN)
    # A folder name: no separators or dots that would leave the dataset folder.
    cleaned = pc.replace_substring_regex(outlet, r"[/\\:\x00]|^\.+", "_")
    return pc.if_else(pc.equal(cleaned, ""), UNKNOWN, cleaned)


def check_partition(partition_by: str, fmt: str) -> None:
    """A partitioning the output can take (a partitioned dataset is Parquet)."""
    if partition_by not in PARTITIONS:
        raise ScoringError(f"--partition-by: expected one of {list(PARTITIONS)}, found {partition_by!r}")
    if partition_by != "none" and fmt != "parquet":
        raise ScoringError(f"--partition-by {partition_by}: expected --format parquet (a partitioned dataset is "
                           f"Parquet), found {fmt}; drop --partition-by or write parquet")


class RowIds:
    """A set of row_ids on disk (bounded memory), for `append`."""

    def __init__(self, folder: Path):
        self.path = folder / f"row_ids-{uuid.uuid4().hex[:8]}.sqlite"
        self.db = sqlite3.connect(str(self.path))
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("CREATE TABLE ids (id TEXT PRIMARY KEY) WITHOUT ROWID")

    def add(self, ids: Iterable[str]) -> None:
        self.db.executemany("INSERT OR IGNORE INTO ids VALUES (?)", ((i,) for i in ids))

    def new(self, table: pa.Table) -> pa.Table:
        """Rows whose row_id is not in the set yet (they are then added)."""
        ids = table.column("row_id").to_pylist()
        keep = []
        for i in ids:
            seen = self.db.execute("SELECT 1 FROM ids WHERE id = ?", (i,)).fetchone() is not None
            keep.append(not seen)
            if not seen:
                self.db.execute("INSERT INTO ids VALUES (?)", (i,))
        return table.filter(pa.array(keep, type=pa.bool_()))

    def close(self) -> None:
        self.db.close()
        self.path.unlink(missing_ok=True)


def _old_batches(path: Path, fmt: str, schema: pa.Schema) -> Iterator[pa.Table]:
    """The rows of earlier results, batch by batch, as `schema`."""
    if fmt == "parquet":
        if path.is_dir():
            import pyarrow.dataset as ds

            for batch in ds.dataset(path, format="parquet", partitioning="hive").to_batches():
                yield pa.Table.from_batches([batch]).select(schema.names).cast(schema)
            return
        for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536):
            yield pa.Table.from_batches([batch]).select(schema.names).cast(schema)
    elif fmt == "jsonl":
        rows: list[dict] = []
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    rows.append(json.loads(line))
                if len(rows) >= 65_536:
                    yield pa.Table.from_pylist(rows, schema=schema)
                    rows = []
        if rows:
            yield pa.Table.from_pylist(rows, schema=schema)
    else:
        import pyarrow.csv as pacsv

        if path.stat().st_size == 0:
            return
        reader = pacsv.open_csv(path, convert_options=pacsv.ConvertOptions(column_types=schema))
        for batch in reader:
            yield pa.Table.from_batches([batch]).select(schema.names).cast(schema)


class ResultsWriter:
    """Streams tables into RESULTS (a file, or a partitioned Parquet dataset) and puts it in place at the end."""

    def __init__(self, path: Path, fmt: str, schema: pa.Schema, mode: str, partition_by: str = "none"):
        check_partition(partition_by, fmt)
        self.path, self.fmt, self.schema, self.mode, self.by = path, fmt, schema, mode, partition_by
        self.dataset = partition_by != "none"
        if self.dataset and path.exists() and not path.is_dir():
            raise ScoringError(f"{path}: expected a dataset folder for --partition-by {partition_by}, found a file "
                               "from a run without it; choose another --out or --overwrite")
        if not self.dataset and path.is_dir():
            raise ScoringError(f"{path}: expected a results file, found a partitioned dataset folder; pass the same "
                               "--partition-by as the run that wrote it, or choose another --out")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        self.ids: RowIds | None = None
        self._file = self.tmp / "results"
        self._parquet: pq.ParquetWriter | None = None
        self._text: TextIO | None = None
        self._header = True
        self._run = uuid.uuid4().hex[:8]
        self._files = 0
        self.rows = 0
        if mode == "append" and path.exists():
            self.ids = RowIds(self.tmp)
            for old in _old_batches(path, fmt, schema):
                self.ids.add(old.column("row_id").to_pylist())
                if not self.dataset:  # a dataset's earlier files stay where they are
                    self._write_file(old)

    def write(self, table: pa.Table) -> None:
        if self.ids is not None:
            table = self.ids.new(table)
        if table.num_rows == 0:
            return
        self.rows += table.num_rows
        if self.dataset:
            self._write_partitions(table)
        else:
            self._write_file(table)

    def _write_file(self, table: pa.Table) -> None:
        if self.fmt == "parquet":
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self._file, self.schema)
            self._parquet.write_table(table.cast(self.schema))
        elif self.fmt == "jsonl":
            if self._text is None:
                self._text = self._file.open("w", encoding="utf-8")
            for row in table.to_pylist():
                self._text.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            if self._text is None:
                self._text = self._file.open("w", encoding="utf-8", newline="")
            # integers stay integers where a column has nulls (pandas would write "388.0", which reads back badly)
            table.to_pandas(integer_object_nulls=True).to_csv(self._text, index=False, header=self._header)
            self._header = False

    def _write_partitions(self, table: pa.Table) -> None:
        keys = partition_values(table, self.by)
        # New files go to the temporary folder; on `append` they join the existing dataset at the end.
        for key in pc.unique(keys).to_pylist():
            part = table.filter(pc.equal(keys, key))
            folder = self.tmp / "dataset" / f"{PARTITION_KEYS[self.by]}={key}"
            folder.mkdir(parents=True, exist_ok=True)
            self._files += 1
            pq.write_table(part, folder / f"part-{self._run}-{self._files:06d}.parquet")

    def close(self) -> None:
        """Put RESULTS in place: one rename for a file or a new dataset; new files moved in on `append`."""
        try:
            if self._parquet is not None:
                self._parquet.close()
            if self._text is not None:
                self._text.close()
            if self.dataset:
                self._close_dataset()
            else:
                if not self._file.exists():  # nothing written: an empty table of the right schema
                    self._write_file(self.schema.empty_table())
                    if self._parquet is not None:
                        self._parquet.close()
                    if self._text is not None:
                        self._text.close()
                os.replace(self._file, self.path)
                make_readable(self.path)
        finally:
            if self.ids is not None:
                self.ids.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _close_dataset(self) -> None:
        new = self.tmp / "dataset"
        new.mkdir(exist_ok=True)
        if self.mode == "append" and self.path.is_dir():
            for file in sorted(new.rglob("*.parquet")):
                target = self.path / file.relative_to(new)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(file, target)
            return
        for file in new.rglob("*.parquet"):
            make_readable(file)
        replace_directory(new, self.path)

    def abort(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._text is not None:
            self._text.close()
        if self.ids is not None:
            self.ids.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
