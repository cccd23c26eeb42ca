"""Publishing a staged run into the lake: its parts merged per table and partition, created in place, `runs`
last.

The commit protocol this follows: etl/lake/__init__.py. `python -m etl.lake.publish` is the child process
the collector publishes through.
"""

import ctypes
import os
import signal
import sys
from collections.abc import Iterable, Iterator
from itertools import islice

import pyarrow as pa

from etl.lake.child import errors_to_one_line, run_child
from etl.lake.formats import file_schema, read_part
from etl.lake.paths import default_partition, lake_folder, open_lake
from etl.lake.staging import RunStaging, load_run
from etl.lake.store import fetch_in_order
from etl.schema import TABLES, Table

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


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
    """Merge the run's parts into one object per table and partition, each created in the lake, `runs`
    last."""
    by_folder = staging.parts()
    for table in TABLES.values():
        if not any(folder.parts[0] == table.name for folder in by_folder):
            by_folder[lake_folder(table, default_partition(table, staging.started_at.date()))] = []
    # `runs` sorts last: every data object is in the lake before the manifest that makes readers trust them.
    ordered = sorted(by_folder.items(), key=lambda item: list(TABLES).index(item[0].parts[0]))
    store, published = staging.lake.store, []
    # One stream of every part, so that the fetches ahead run on across folders instead of starting anew at
    # each (a round trip to a bucket per folder, waited for nine times a run).
    stream = fetch_in_order(store, [key for _, parts in ordered for key in parts])
    for folder, parts in ordered:
        key = staging.lake.key(folder, f"{staging.run_id}.parquet")
        store.put_new(key, merge(TABLES[folder.parts[0]], islice(stream, len(parts)), row_group_rows))
        published.append(key)
    staging.discard()
    return published


def merge(table: Table, sources: Iterable[bytes], row_group_rows: int) -> bytes:
    """A table's Arrow IPC parts or Parquet files, in order, as one Parquet file of full row groups."""
    # Only the publishing child and compact write Parquet: 9 MB the collector never pays
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, file_schema(table), compression="zstd", write_statistics=True) as writer:
        for group in _row_groups(table, sources, row_group_rows):
            writer.write_table(group, row_group_size=row_group_rows)
    return sink.getvalue().to_pybytes()


def _row_groups(table: Table, sources: Iterable[bytes], row_group_rows: int) -> Iterator[pa.Table]:
    """The sources' rows in order, cut into row groups of exactly row_group_rows (the last one shorter)."""
    # Parts wait in a list and are joined once a row group's worth is in: joining each part to what waits
    # costs a step per chunk already there, quadratic in the parts of a row group (650 of a 10-symbol batch's
    # bars at 5 days a symbol).
    pending: list[pa.Table] = []
    rows = 0
    for source in sources:
        part = read_part(source, table)
        pending.append(part)
        rows += part.num_rows
        while rows >= row_group_rows:
            buffered = pa.concat_tables(pending)
            yield buffered.slice(0, row_group_rows)
            pending = [buffered.slice(row_group_rows)]
            rows = pending[0].num_rows
    if rows:
        yield pa.concat_tables(pending)


def main() -> None:
    """`python -m etl.lake.publish LAKE RUN_ID ROW_GROUP_ROWS COLLECTOR_PID`: publish a staged run."""
    lake, run_id, row_group_rows = open_lake(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    _die_with(int(sys.argv[4]))
    with errors_to_one_line():
        publish_run(load_run(lake, run_id)[0], row_group_rows=row_group_rows)


if __name__ == "__main__":
    main()
