"""Publishing a staged run into the lake: its parts merged per table and partition, linked in, `runs` last.

The commit protocol this follows: etl/lake/__init__.py. `python -m etl.lake.publish` is the child process
the collector publishes through.
"""

import ctypes
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from etl.lake.child import errors_to_one_line, run_child
from etl.lake.files import RUN_CUT_SHORT, disk_errors, link_into_lake, pending_path, write_atomically
from etl.lake.formats import file_schema, read_part
from etl.lake.paths import default_partition, lake_folder
from etl.lake.staging import RunStaging, load_run
from etl.schema import TABLES, Table

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def publish_in_child(staging: RunStaging, lake_dir: Path, *, row_group_rows: int, lock_fd: int) -> None:
    """publish_run in a process of its own: the merge's buffers never add to the collector's peak memory.

    The child shares the lake's lock (its descriptor) and dies with the collector, so it never
    publishes alone; a publish cut off either way completes on the next run.
    """
    run_child(
        "etl.lake.publish",
        str(staging.folder),
        str(lake_dir),
        str(row_group_rows),
        str(os.getpid()),
        pass_fds=(lock_fd,),
    )


def _die_with(parent_pid: int) -> None:
    # Asked for here rather than in a preexec_fn, which would make subprocess fork the whole collector.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the collector died before the request took
        sys.exit(1)


def publish_run(staging: RunStaging, lake_dir: Path, *, row_group_rows: int) -> list[Path]:
    """Merge the run's parts into one file per table and partition, link each into the lake, `runs` last."""
    by_folder = staging.parts()
    for table in TABLES.values():
        if not any(folder.parts[0] == table.name for folder in by_folder):
            by_folder[lake_folder(table, default_partition(table, staging.started_at.date()))] = []
    # `runs` sorts last: every data file is in the lake before the manifest that makes readers trust them.
    ordered = sorted(by_folder.items(), key=lambda item: list(TABLES).index(item[0].parts[0]))
    merged = [_merge(staging, folder, parts, row_group_rows) for folder, parts in ordered]
    published = [
        link_into_lake(path, lake_dir / path.relative_to(staging.folder / "merged")) for path in merged
    ]
    staging.discard()
    return published


def _merge(staging: RunStaging, folder: Path, parts: list[Path], row_group_rows: int) -> Path:
    """The parts of one table and partition as one file of full row groups; kept once complete."""
    path = staging.folder / "merged" / folder / f"{staging.run_id}.parquet"
    if not path.exists():
        write_merged(TABLES[folder.parts[0]], parts, path, row_group_rows)
    return path


def write_merged(
    table: Table, sources: list[Path], path: Path, row_group_rows: int, *, consequence: str = RUN_CUT_SHORT
) -> None:
    """Merge a table's Arrow IPC parts or Parquet files, in order, into one Parquet file of full row groups:
    whole once it exists."""
    # Only the publishing child and compact write Parquet: 9 MB the collector never pays
    import pyarrow.parquet as pq

    with disk_errors(pending_path(path), consequence):
        path.parent.mkdir(parents=True, exist_ok=True)
        with write_atomically(path) as pending:
            with pq.ParquetWriter(
                pending, file_schema(table), compression="zstd", write_statistics=True
            ) as writer:
                for group in _row_groups(table, sources, row_group_rows):
                    writer.write_table(group, row_group_size=row_group_rows)


def _row_groups(table: Table, parts: list[Path], row_group_rows: int) -> Iterator[pa.Table]:
    """The parts' rows in order, cut into row groups of exactly row_group_rows (the last one shorter)."""
    buffered = table.schema.empty_table()
    for part in parts:
        buffered = pa.concat_tables([buffered, read_part(part, table)])
        while buffered.num_rows >= row_group_rows:
            yield buffered.slice(0, row_group_rows)
            buffered = buffered.slice(row_group_rows)
    if buffered.num_rows:
        yield buffered


def main() -> None:
    """`python -m etl.lake.publish STAGING_FOLDER LAKE ROW_GROUP_ROWS COLLECTOR_PID`: publish a staged run."""
    folder, lake_dir, row_group_rows = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    _die_with(int(sys.argv[4]))
    with errors_to_one_line():
        publish_run(load_run(folder)[0], lake_dir, row_group_rows=row_group_rows)


if __name__ == "__main__":
    main()
