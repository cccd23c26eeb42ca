"""Publishing a staged run into the lake: its parts streamed into each Delta table as one commit, `runs` last.

The commit protocol this follows: etl/lake/__init__.py. `python -m etl.lake.publish` is the child process
the collector publishes through: deltalake and its buffers never sit in the collector's memory.
"""

import ctypes
import datetime as dt
import os
import signal
import struct
import sys
from collections.abc import Iterable, Iterator
from functools import partial

import pyarrow as pa
import pyarrow.compute as pc

from etl.lake.child import errors_to_one_line, run_child
from etl.lake.formats import read_part
from etl.lake.paths import open_lake
from etl.lake.staging import RunStaging, load_run
from etl.lake.store import fetch_in_order
from etl.schema import TABLES, Table

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_EPOCH = dt.date(1970, 1, 1)


def publish_in_child(staging: RunStaging, *, row_group_rows: int, pass_fds: tuple[int, ...]) -> None:
    """publish_run in a process of its own: the merge's buffers never add to the collector's peak memory.

    The child shares the lake's lock (a local lock's descriptor in `pass_fds`; an S3 lease stays renewed by
    the collector) and dies with the collector, so it never publishes alone; a publish cut off either way
    completes on the next run.
    """
    run_child(
        "etl.lake.publish",
        staging.lake.url,
        staging.run_id,
        str(row_group_rows),
        str(os.getpid()),
        pass_fds=pass_fds,
    )


def _die_with(parent_pid: int) -> None:
    # Asked for here rather than in a preexec_fn, which would make subprocess fork the whole collector.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the collector died before the request took
        sys.exit(1)


def publish_run(staging: RunStaging, *, row_group_rows: int) -> list[str]:
    """Commit the run's rows to each table of the lake, `runs` last; the tables it committed before a cut-off
    are skipped. The URLs of the tables committed now."""
    from etl.lake import delta  # deltalake: 20 MB in this child, never in the collector

    parts = staging.parts()
    published = []
    # TABLES ends with `runs`: every table has the run's rows before the manifest that makes readers trust it.
    for table in TABLES.values():
        keys = parts.get(table.staged_as or table.name, [])
        if delta.commit_run(
            staging.lake,
            table,
            partial(_read_staged, table, keys, staging),
            staging.run_id,
            row_group_rows=row_group_rows,
        ):
            published.append(staging.lake.table_url(table.name))
    staging.discard()
    return published


def _read_staged(table: Table, keys: list[str], staging: RunStaging) -> pa.RecordBatchReader:
    return to_reader(table, fetch_in_order(staging.lake.store, keys), staging)


def to_reader(table: Table, sources: Iterable[bytes], staging: RunStaging) -> pa.RecordBatchReader:
    """The staged parts' rows, read one part at a time, with the table's partition columns."""
    return pa.RecordBatchReader.from_batches(table.lake_schema, _batches(table, sources, staging))


def _batches(table: Table, sources: Iterable[bytes], staging: RunStaging) -> Iterator[pa.RecordBatch]:
    for source in sources:
        part = read_part(source, TABLES[table.staged_as or table.name])
        yield from with_partitions(table, part, staging.started_at.date()).to_batches()


def with_partitions(table: Table, rows: pa.Table, run_date: dt.date) -> pa.Table:
    """Rows with their Delta partition columns: a bar's year and month, a quote's collection day (UTC)."""
    for name in table.partition_by:
        if name == "date":
            column = _constant_date(run_date, rows.num_rows)
        else:  # year, month
            column = getattr(pc, name)(rows.column("date")).cast(pa.int32())
        rows = rows.append_column(name, column)
    return rows.cast(table.lake_schema)


def _constant_date(day: dt.date, n: int) -> pa.Array:
    """n times the day, made from a buffer: pa.array of a Python list makes pyarrow import pandas to check its
    items, 1.3 s and 35 MB of this child's publish."""
    days = struct.pack("<i", (day - _EPOCH).days)
    return pa.Array.from_buffers(pa.date32(), n, [None, pa.py_buffer(days * n)])


def main() -> None:
    """`python -m etl.lake.publish LAKE RUN_ID ROW_GROUP_ROWS COLLECTOR_PID`: publish a staged run."""
    lake, run_id, row_group_rows = open_lake(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    _die_with(int(sys.argv[4]))
    with errors_to_one_line():
        publish_run(load_run(lake, run_id)[0], row_group_rows=row_group_rows)


if __name__ == "__main__":
    main()
