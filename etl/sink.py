"""Publishing into the Parquet lake: one writer at a time, whole files only, the `runs` manifest last.

Layout: `<lake>/<table>/[<key>=<value>/]<run_id>.parquet`. When a run ends, the parts of its
committed batches (etl/staging.py) are merged per table and partition into a file with large row
groups, staged beside the lake (so no `**/*.parquet` glob over the lake can see it), fsynced, then
linked into the lake (os.link refuses to replace anything) and the folder fsynced. The run's `runs`
row is published last: readers trust a run once that row exists. Publishing again after a kill
picks up where it stopped: a merged file is kept once complete, a file already linked is skipped.
"""

import contextlib
import ctypes
import datetime as dt
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from etl.errors import EtlError, LakeError
from etl.schema import TABLES, Table
from etl.staging import (
    RunStaging,
    default_partition,
    disk_errors,
    file_schema,
    fsync_path,
    lake_folder,
    load_run,
    read_part,
)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


@contextlib.contextmanager
def lake_lock(lake_dir: Path) -> Iterator[int]:
    """Hold the lake's single-writer lock (its descriptor): a kernel flock, freed by the OS when its holders
    die."""
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
            raise LakeError(
                f"{lake_dir} is being written by another run ({holder}); wait for it to finish"
            ) from None
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": dt.datetime.now(dt.UTC).isoformat(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        yield fd
    finally:
        os.close(fd)


def publish_in_child(staging: RunStaging, lake_dir: Path, *, row_group_rows: int, lock_fd: int) -> None:
    """publish_run in a process of its own: the merge's buffers never add to the collector's peak memory.

    The child shares the lake's lock (its descriptor) and dies with the collector, so it never
    publishes alone; a publish cut off either way completes on the next run.
    """
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "etl.sink",
            str(staging.folder),
            str(lake_dir),
            str(row_group_rows),
            str(os.getpid()),
        ],
        capture_output=True,
        text=True,
        pass_fds=(lock_fd,),
    )
    if child.returncode:
        last_line = (child.stderr.strip().splitlines() or [f"exit status {child.returncode}"])[-1]
        raise LakeError(last_line.removeprefix("error: "))


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


def write_merged(table: Table, sources: list[Path], path: Path, row_group_rows: int) -> None:
    """Rewrite Parquet files of one table, in order, as one file of full row groups: whole once it exists."""
    # Only the publishing child and compact write Parquet: 9 MB the collector never pays
    import pyarrow.parquet as pq

    pending = path.with_name(path.name + ".tmp")
    with disk_errors(pending):
        pending.parent.mkdir(parents=True, exist_ok=True)
        with pq.ParquetWriter(
            pending, file_schema(table), compression="zstd", write_statistics=True
        ) as writer:
            for group in _row_groups(table, sources, row_group_rows):
                writer.write_table(group, row_group_size=row_group_rows)
        fsync_path(pending)
        os.rename(pending, path)


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


def link_into_lake(staged: Path, final: Path) -> Path:
    """Publish a finished file under its lake path, never replacing one (a file linked before is skipped)."""
    with disk_errors(final):
        _make_dirs(final.parent)
        try:
            os.link(staged, final)
        except FileExistsError as exc:
            if not os.path.samefile(staged, final):  # linked before this run was cut off: already published
                raise LakeError(f"{final} already exists; a published file is never replaced") from exc
        fsync_path(final.parent)
    return final


def _make_dirs(folder: Path) -> None:
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for new_folder in reversed(missing):
        new_folder.mkdir(exist_ok=True)
        fsync_path(new_folder.parent)


def main() -> None:
    """`python -m etl.sink STAGING_FOLDER LAKE ROW_GROUP_ROWS COLLECTOR_PID`: publish a staged run."""
    folder, lake_dir, row_group_rows = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    _die_with(int(sys.argv[4]))
    try:
        publish_run(load_run(folder)[0], lake_dir, row_group_rows=row_group_rows)
    except EtlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
