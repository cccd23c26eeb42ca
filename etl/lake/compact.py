"""Compaction: the many small files of a table partition rewritten as one with full row groups.

Readers never see a row twice or miss one. A compaction links `compacted-<id>.parquet` in beside the
files it replaces, and publishes its record (`compactions/<id>.parquet`: which files it replaced)
last. The views (sql/views.sql) read a compacted file only once its record is published, and then
skip the files it replaced; those stay on disk for `keep_minutes`, for readers that listed them
before, and a later compaction removes them. Only files of completed runs are compacted. `runs` is
compacted too, so that a reader opens one manifest file and not one a run, but the files it replaces
are kept: a run's own `runs/<run_id>.parquet` is how the job knows it finished (etl/lake/holdings.py).
"""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from etl.lake.formats import read_part
from etl.lake.holdings import compaction_record_keys, completed_run_ids, parquet_keys
from etl.lake.lock import lake_lock
from etl.lake.paths import COMPACTED_PREFIX, Lake
from etl.lake.publish import merge
from etl.lake.store import COMPACTION_CUT_SHORT, failures_leave, fetch_in_order
from etl.metrics import new_run_id
from etl.schema import COMPACTIONS, RUNS, TABLES, Table


@dataclass(frozen=True)
class Compacted:
    """One partition folder rewritten: how many files became one, and its rows."""

    folder: str
    files: int
    rows: int


def compact_lake(
    lake: Lake, table_names: tuple[str, ...], *, keep_minutes: float, row_group_rows: int, lease_s: float
) -> list[Compacted]:
    """Compact every partition folder of these tables that holds two files or more; remove expired ones."""
    with lake_lock(lake, lease_s=lease_s) as lock, failures_leave(COMPACTION_CUT_SHORT):
        records = _read_records(lake)
        _remove_leftovers(lake, records, keep_minutes)
        started_at = dt.datetime.now(dt.UTC)
        compaction_id = new_run_id(started_at)
        done, rows = [], []
        for table, folder, live in _folders_to_compact(lake, table_names, records):
            lock.check()
            compacted, replaced = _compact_folder(lake, table, folder, live, compaction_id, row_group_rows)
            done.append(compacted)
            rows += replaced
        if rows:
            lock.check()
            _publish_record(lake, compaction_id, started_at, rows)
    return done


def _folders_to_compact(
    lake: Lake, table_names: tuple[str, ...], records: pa.Table
) -> Iterator[tuple[Table, str, list[str]]]:
    """(table, folder, the files a reader of the views reads there) wherever there are two or more; files are
    named relative to the lake, as the records name them."""
    replaced = set(records.column("replaced_file").to_pylist())
    written = set(records.column("compacted_file").to_pylist())
    completed = completed_run_ids(lake)
    for table in (TABLES[name] for name in table_names):
        by_folder: dict[str, list[str]] = {}
        for name in _lake_files(lake, table.name):
            by_folder.setdefault(name.rpartition("/")[0], []).append(name)
        for folder, names in sorted(by_folder.items()):
            live = [
                name
                for name in names
                if name not in replaced and (_stem(name) in completed or name in written)
            ]
            if len(live) >= 2:
                yield table, folder, live


def _compact_folder(
    lake: Lake, table: Table, folder: str, live: list[str], compaction_id: str, row_group_rows: int
) -> tuple[Compacted, list[dict]]:
    """One folder's files as one compacted file in the lake (not yet read by the views), and its record
    rows."""
    data = merge(table, fetch_in_order(lake.store, [lake.key(name) for name in live]), row_group_rows)
    compacted = f"{folder}/{COMPACTED_PREFIX}{compaction_id}.parquet"
    lake.store.put_new(lake.key(compacted), data)
    rows = [{"table_name": table.name, "replaced_file": name, "compacted_file": compacted} for name in live]
    n_rows = pq.ParquetFile(pa.BufferReader(data)).metadata.num_rows
    return Compacted(folder, len(live), n_rows), rows


def _publish_record(lake: Lake, compaction_id: str, started_at: dt.datetime, rows: list[dict]) -> None:
    record = pa.Table.from_pylist(
        [{"compaction_id": compaction_id, "compacted_at": started_at, **row} for row in rows],
        schema=COMPACTIONS.schema,
    )
    sink = pa.BufferOutputStream()
    pq.write_table(record, sink)
    lake.store.put_new(lake.key(COMPACTIONS.name, f"{compaction_id}.parquet"), sink.getvalue().to_pybytes())


def _read_records(lake: Lake) -> pa.Table:
    return pa.concat_tables(
        [read_part(lake.store.get(key), COMPACTIONS) for key in compaction_record_keys(lake)]
        or [COMPACTIONS.schema.empty_table()]
    )


def _remove_leftovers(lake: Lake, records: pa.Table, keep_minutes: float) -> None:
    """Files replaced longer than keep_minutes ago, and compacted files of a compaction that was cut off."""
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=keep_minutes)
    expired = [
        row["replaced_file"]
        for row in records.to_pylist()
        if row["compacted_at"] <= cutoff and row["table_name"] != RUNS.name  # kept: see the docstring
    ]
    written = set(records.column("compacted_file").to_pylist())
    present = [name for table in TABLES for name in _lake_files(lake, table)]
    orphans = [
        name
        for name in present
        if name.rpartition("/")[2].startswith(COMPACTED_PREFIX) and name not in written
    ]
    lake.store.delete([lake.key(name) for name in [*set(expired).intersection(present), *orphans]])


def _lake_files(lake: Lake, table_name: str) -> list[str]:
    """A table's Parquet files, named relative to the lake (`bars/year=2026/<run_id>.parquet`)."""
    return [key.removeprefix(lake.key("")) for key in parquet_keys(lake, table_name)]


def _stem(name: str) -> str:
    return name.rpartition("/")[2].removesuffix(".parquet")
