"""The Parquet lake's writer: streaming files staged outside the lake, published whole, never torn.

Layout: `<lake>/<table>/[<key>=<value>/]<run_id>.parquet`. A file is written under the staging
folder (a sibling of the lake, on the same filesystem, so no `**/*.parquet` glob over the lake can
see it), fsynced, then linked into the lake (os.link refuses to replace anything) and the folder
fsynced. The run's `runs` row is published last: readers trust a run once that row exists.
"""

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from etl.errors import LakeError
from etl.schema import SCHEMA_VERSION, TABLES, Table


_MAX_BUFFERED_BATCHES = 64


def staging_dir_for(lake_dir: Path) -> Path:
    """Where a lake's files are written before they are published: beside the lake, never inside."""
    return lake_dir.parent / f".{lake_dir.name}.staging"


@contextlib.contextmanager
def disk_errors(path: Path) -> Iterator[None]:
    """A full disk or a failing device, as one line naming the file; the run's writer then discards its files."""
    try:
        yield
    except OSError as exc:
        raise LakeError(
            f"writing {path} failed ({exc.strerror or exc}); this run is not committed, earlier runs are untouched"
        ) from exc


@contextlib.contextmanager
def lake_lock(lake_dir: Path, run_id: str) -> Iterator[None]:
    """Hold the lake's single-writer lock: a kernel flock, so the OS frees it when its holder dies."""
    lock_path = lake_dir.parent / f".{lake_dir.name}.lock"
    try:
        lake_dir.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise LakeError(f"cannot create the lake's lock file {lock_path}: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown"
            raise LakeError(f"{lake_dir} is being written by another run ({holder}); wait for it to finish") from None
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "run_id": run_id}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        yield
    finally:
        os.close(fd)


class PartitionFile:
    """One Parquet file being written: rows are buffered until a row group is large enough."""

    def __init__(self, table: Table, staged_path: Path, final_path: Path, row_group_rows: int) -> None:
        self.staged_path = staged_path
        self.final_path = final_path
        self._schema = table.schema.with_metadata({"etl.schema_version": SCHEMA_VERSION, "etl.table": table.name})
        self._row_group_rows = row_group_rows
        self._buffer: list[pa.RecordBatch] = []
        self._buffered_rows = 0
        with disk_errors(staged_path):
            self._writer = pq.ParquetWriter(staged_path, self._schema, compression="zstd", write_statistics=True)

    def append(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        self._buffer.append(batch)
        self._buffered_rows += batch.num_rows
        if self._buffered_rows >= self._row_group_rows:
            self.flush()
        elif len(self._buffer) >= _MAX_BUFFERED_BATCHES:
            # Small tables (a row a batch) never fill a row group; thousands of one-row batches cost
            # ~10 KB of bookkeeping each, so they are merged into one as they come.
            self._buffer = [pa.concat_batches(self._buffer)]

    def flush(self) -> None:
        """Write what is buffered as row groups, so the buffer's memory can go."""
        if self._buffered_rows:
            table = pa.Table.from_batches(self._buffer, schema=self._schema)
            with disk_errors(self.staged_path):
                self._writer.write_table(table, row_group_size=self._row_group_rows)
        self._buffer.clear()
        self._buffered_rows = 0

    def close(self) -> None:
        self.flush()
        with disk_errors(self.staged_path):
            self._writer.close()
            _fsync_path(self.staged_path)


class RunWriter:
    """Streams one run's record batches into staged Parquet files and publishes them at the end."""

    def __init__(self, lake_dir: Path, run_id: str, run_date: dt.date, *, row_group_rows: int) -> None:
        self.lake_dir = lake_dir
        self.run_id = run_id
        self.run_date = run_date
        self._row_group_rows = row_group_rows
        self._staging = staging_dir_for(lake_dir) / run_id
        self._files: dict[tuple[str, str | None], PartitionFile] = {}
        try:
            self._staging.mkdir(parents=True, exist_ok=False)
        except OSError as exc:
            raise LakeError(f"cannot create staging folder {self._staging}: {exc.strerror}") from exc

    def write(self, table: Table, batch: pa.RecordBatch) -> None:
        """Append a batch to the table's file(s); it may span several partitions."""
        for partition, part in self._split(table, batch):
            self._file(table, partition).append(part)

    def flush(self) -> None:
        """Write every buffered row out now (under memory pressure)."""
        for file in self._files.values():
            file.flush()

    def publish(self) -> list[Path]:
        """Close every file and move it into the lake, the `runs` manifest last."""
        for table in TABLES.values():
            if not any(name == table.name for name, _ in self._files):
                self._file(table, self._default_partition(table))
        ordered = [file for _, file in sorted(self._files.items(), key=lambda item: list(TABLES).index(item[0][0]))]
        # Every byte is written and fsynced before the first file appears in the lake: a full disk fails here.
        for file in ordered:
            file.close()
        published = [self._publish_one(file) for file in ordered]
        shutil.rmtree(self._staging, ignore_errors=True)
        return published

    def discard(self) -> None:
        """Drop every staged file of this run; nothing in the lake changes."""
        shutil.rmtree(self._staging, ignore_errors=True)

    def _split(self, table: Table, batch: pa.RecordBatch):
        if table.partition_key != "year":
            yield self._default_partition(table), batch
            return
        years = pc.year(batch.column("date"))
        for year in pc.unique(years).to_pylist():
            yield str(year), batch.filter(pc.equal(years, year))

    def _default_partition(self, table: Table) -> str | None:
        # Quotes are filed under the day they were collected, bars under the year of each bar.
        if table.partition_key == "date":
            return self.run_date.isoformat()
        if table.partition_key == "year":
            return str(self.run_date.year)
        return None

    def _file(self, table: Table, partition: str | None) -> PartitionFile:
        key = (table.name, partition)
        if key not in self._files:
            folder = Path(table.name) if partition is None else Path(table.name, f"{table.partition_key}={partition}")
            staged = self._staging / f"{table.name}-{partition or 'all'}.parquet"
            final = self.lake_dir / folder / f"{self.run_id}.parquet"
            self._files[key] = PartitionFile(table, staged, final, self._row_group_rows)
        return self._files[key]

    def _publish_one(self, file: PartitionFile) -> Path:
        with disk_errors(file.final_path):
            _make_dirs(file.final_path.parent)
            try:
                os.link(file.staged_path, file.final_path)
            except FileExistsError as exc:
                raise LakeError(f"{file.final_path} already exists; a published file is never replaced") from exc
            _fsync_path(file.final_path.parent)
        return file.final_path


def _make_dirs(folder: Path) -> None:
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for new_folder in reversed(missing):
        new_folder.mkdir(exist_ok=True)
        _fsync_path(new_folder.parent)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
