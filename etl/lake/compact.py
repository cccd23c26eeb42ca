"""Compaction: the many small files of a table partition rewritten as one with full row groups.

Readers never see a row twice or miss one. A compaction links `compacted-<id>.parquet` in beside the
files it replaces, and publishes its record (`compactions/<id>.parquet`: which files it replaced)
last. The views (sql/views.sql) read a compacted file only once its record is published, and then
skip the files it replaced; those stay on disk for `keep_minutes`, for readers that listed them
before, and a later compaction removes them. Only files of completed runs are compacted, and never
`runs` itself: a run's own `runs/<run_id>.parquet` is how the job knows it finished.
"""

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from etl.lake.files import COMPACTION_CUT_SHORT, disk_errors, link_into_lake, write_atomically
from etl.lake.formats import read_part
from etl.lake.holdings import compaction_record_paths, completed_run_ids
from etl.lake.lock import lake_lock
from etl.lake.paths import staging_dir_for
from etl.lake.publish import write_merged
from etl.metrics import new_run_id
from etl.schema import COMPACTIONS, TABLES, Table

COMPACTED_PREFIX = "compacted-"


@dataclass(frozen=True)
class Compacted:
    """One partition folder rewritten: how many files became one, and its rows."""

    folder: str
    files: int
    rows: int


def compact_lake(
    lake_dir: Path, table_names: tuple[str, ...], *, keep_minutes: float, row_group_rows: int
) -> list[Compacted]:
    """Compact every partition folder of these tables that holds two files or more; remove expired ones."""
    with lake_lock(lake_dir):
        records = _read_records(lake_dir)
        _remove_leftovers(lake_dir, records, keep_minutes)
        started_at = dt.datetime.now(dt.UTC)
        compaction_id = new_run_id(started_at)
        work_dir = staging_dir_for(lake_dir) / f"compaction-{compaction_id}"
        try:
            done, rows = [], []
            for table, live in _folders_to_compact(lake_dir, table_names, records):
                compacted, replaced = _compact_folder(
                    lake_dir, table, live, work_dir, compaction_id, row_group_rows
                )
                done.append(compacted)
                rows += replaced
            if rows:
                _publish_record(lake_dir, work_dir, compaction_id, started_at, rows)
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
    return done


def _folders_to_compact(lake_dir: Path, table_names: tuple[str, ...], records: pa.Table):
    """(table, the files a reader of the views reads in a folder) wherever there are two or more."""
    replaced = set(records.column("replaced_file").to_pylist())
    written = set(records.column("compacted_file").to_pylist())
    completed = completed_run_ids(lake_dir)
    for table in (TABLES[name] for name in table_names):
        for folder in sorted({path.parent for path in (lake_dir / table.name).rglob("*.parquet")}):
            relative = {path: str(path.relative_to(lake_dir)) for path in sorted(folder.glob("*.parquet"))}
            live = [
                path
                for path, name in relative.items()
                if name not in replaced and (path.stem in completed or name in written)
            ]
            if len(live) >= 2:
                yield table, live


def _compact_folder(
    lake_dir: Path, table: Table, live: list[Path], work_dir: Path, compaction_id: str, row_group_rows: int
) -> tuple[Compacted, list[dict]]:
    """One folder's files as one compacted file in the lake (not yet read by the views), and its record
    rows."""
    relative = live[0].parent.relative_to(lake_dir)
    staged = work_dir / relative / f"{COMPACTED_PREFIX}{compaction_id}.parquet"
    write_merged(table, live, staged, row_group_rows, consequence=COMPACTION_CUT_SHORT)
    compacted = link_into_lake(staged, lake_dir / relative / staged.name, consequence=COMPACTION_CUT_SHORT)
    rows = [
        {
            "table_name": table.name,
            "replaced_file": str(path.relative_to(lake_dir)),
            "compacted_file": str(compacted.relative_to(lake_dir)),
        }
        for path in live
    ]
    return Compacted(str(relative), len(live), pq.ParquetFile(compacted).metadata.num_rows), rows


def _publish_record(
    lake_dir: Path, work_dir: Path, compaction_id: str, started_at: dt.datetime, rows: list[dict]
) -> None:
    staged = work_dir / COMPACTIONS.name / f"{compaction_id}.parquet"
    record = pa.Table.from_pylist(
        [{"compaction_id": compaction_id, "compacted_at": started_at, **row} for row in rows],
        schema=COMPACTIONS.schema,
    )
    with disk_errors(staged, COMPACTION_CUT_SHORT):
        staged.parent.mkdir(parents=True, exist_ok=True)
        with write_atomically(staged) as pending:
            pq.write_table(record, pending)
    link_into_lake(staged, lake_dir / COMPACTIONS.name / staged.name, consequence=COMPACTION_CUT_SHORT)


def _read_records(lake_dir: Path) -> pa.Table:
    return pa.concat_tables(
        [read_part(path, COMPACTIONS) for path in compaction_record_paths(lake_dir)]
        or [COMPACTIONS.schema.empty_table()]
    )


def _remove_leftovers(lake_dir: Path, records: pa.Table, keep_minutes: float) -> None:
    """Files replaced longer than keep_minutes ago, and compacted files of a compaction that was cut off."""
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=keep_minutes)
    for row in records.to_pylist():
        if row["compacted_at"] <= cutoff:
            (lake_dir / row["replaced_file"]).unlink(missing_ok=True)
    written = set(records.column("compacted_file").to_pylist())
    for path in lake_dir.rglob(f"{COMPACTED_PREFIX}*.parquet"):
        if str(path.relative_to(lake_dir)) not in written:
            path.unlink()
