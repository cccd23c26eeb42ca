"""`etl migrate`: a lake of the old layout (one Parquet file a run and table) rewritten as Delta tables."""

import contextlib
import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from etl.errors import LakeError
from etl.lake import delta
from etl.lake.holdings import LEGACY_COMPACTIONS_DIR_NAME, has_runs_table
from etl.lake.lock import lake_lock
from etl.lake.paths import DELTA_LOG_DIR_NAME, RUNS_DIR_NAME, Lake
from etl.lake.publish import with_partitions
from etl.lake.store import ObjectExists, failures_leave
from etl.queries import load_sql
from etl.schema import BARS, TABLES, Table

log = logging.getLogger(__name__)

# The app id of the migration's commits (delta.commit_run's run id): one id for every table, so a second
# attempt skips what the first committed; a collect's commits carry its own run id, never this one.
MIGRATION_ID = "migrate"
# Put in compactions/ before anything is written, removed last: refuse_legacy reports a lake holding any key
# there as one etl migrate has not finished, also once the `runs` Delta table exists.
MIGRATION_MARKER = "migrating"
_MARKER_TEXT = b"etl migrate is converting this lake to Delta tables; run it again to finish\n"
# The old folders: every table's own, but bar_revisions, which the old layout kept in bars/.
_OLD_DIRS = frozenset(table.staged_as or table.name for table in TABLES.values())
_COMPACTED_PREFIX = "compacted-"
# Delta names its data files so; the old layout named them by run or compaction id.
_DELTA_FILE_PREFIX = "part-"
# The statement (sql/migrate_*.sql) of the tables read otherwise than migrate_rows.sql, bars apart.
_SQL = {"dividends": "migrate_events", "splits": "migrate_events", "runs": "migrate_runs"}
# Partition columns other than quotes' date come from the row: a stand-in for the run date they ignore.
_NO_RUN_DATE = dt.date.min
_CUT_SHORT = "the old files stay until every Delta table is whole; run `etl migrate` again to finish"


@dataclass(frozen=True)
class OldLake:
    """What the old lake holds, named relative to the lake: the files its views read by folder, its completed
    runs, and every one of its objects (compactions/ apart), which go once the tables are committed."""

    files: dict[str, list[str]]
    run_ids: list[str]
    table_keys: list[str]
    compaction_keys: list[str]


def migrate_lake(lake: Lake, *, lease_s: float, row_group_rows: int) -> list[tuple[str, int]]:
    """Convert the old lake into Delta tables, then remove its files; (table, rows it holds) for each."""
    # Each table is one Delta commit carrying MIGRATION_ID, `runs` last as in every publish: a migrate cut
    # off and run again skips the tables it committed. Only then do the old files go, compactions/ last: the
    # marker put there first keeps refuse_legacy refusing the lake (collect, summary) once `runs` is Delta.
    _require_old(lake)  # before the lock: a mistyped --lake gets no lock file made beside it
    with lake_lock(lake, lease_s=lease_s) as lock, failures_leave(_CUT_SHORT), duckdb.connect() as con:
        names = _require_old(lake)
        _put_marker(lake)
        old = _read_old_lake(con, lake, names)
        done = []
        for table in TABLES.values():
            lock.check()
            done.append((table.name, _migrate_table(con, lake, table, old, row_group_rows)))
        lock.check()
        _remove_old(lake, old)
    return done


def _put_marker(lake: Lake) -> None:
    with contextlib.suppress(ObjectExists):  # an earlier attempt's, whatever its text
        lake.store.put_new(lake.key(LEGACY_COMPACTIONS_DIR_NAME, MIGRATION_MARKER), _MARKER_TEXT)


def _require_old(lake: Lake) -> list[str]:
    """The names of the lake's objects (relative to it); an empty lake, or one of Delta tables, refused."""
    names = [key.removeprefix(lake.key("")) for key in lake.store.list_keys(lake.key(""))]
    if not names:
        raise LakeError(f"there is no lake at {lake.url} (nothing is stored under it); nothing to migrate")
    if not any(_is_old(name) for name in names):
        what = "is already Delta" if has_runs_table(lake) else "holds no file of the layout before Delta"
        raise LakeError(f"the lake at {lake.url} {what}; nothing to migrate")
    return names


def _is_old(name: str) -> bool:
    """An object of the old layout: anything under compactions/, a table's Parquet file that Delta did not
    write (not in a `_delta_log/`, not a `part-*.parquet`)."""
    folder, file_name = name.partition("/")[0], name.rpartition("/")[2]
    if folder == LEGACY_COMPACTIONS_DIR_NAME:
        return True
    in_log = f"/{DELTA_LOG_DIR_NAME}/" in f"/{name}"
    return (
        folder in _OLD_DIRS
        and name.endswith(".parquet")
        and not in_log
        and not file_name.startswith(_DELTA_FILE_PREFIX)
    )


def _read_old_lake(con: duckdb.DuckDBPyConnection, lake: Lake, names: list[str]) -> OldLake:
    """The old lake as its views read it: a run complete once its manifest `runs/<run_id>.parquet` exists (a
    `compacted-*` file is none), a file a published compaction record names as replaced skipped (its rows are
    in the compacted file), and a `compacted-*` file read only once a record names it."""
    if not lake.is_local:
        from etl.lake.s3_readers import BucketReader  # obstore and fsspec, for a lake in a bucket only

        BucketReader(con, lake)
    old = [name for name in names if _is_old(name)]
    compaction_keys = [name for name in old if name.partition("/")[0] == LEGACY_COMPACTIONS_DIR_NAME]
    table_keys = [name for name in old if name not in compaction_keys]
    replaced, compacted = _compaction_files(con, lake, [n for n in compaction_keys if n.endswith(".parquet")])
    files: dict[str, list[str]] = {}
    for name in table_keys:
        if name not in replaced and (not _file_name(name).startswith(_COMPACTED_PREFIX) or name in compacted):
            files.setdefault(name.partition("/")[0], []).append(name)
    manifests = [_file_name(name) for name in table_keys if name.partition("/")[0] == RUNS_DIR_NAME]
    run_ids = [name.removesuffix(".parquet") for name in manifests if not name.startswith(_COMPACTED_PREFIX)]
    return OldLake(files, run_ids, table_keys, compaction_keys)


def _compaction_files(con: duckdb.DuckDBPyConnection, lake: Lake, records: list[str]) -> tuple[set, set]:
    """The files the published compactions replaced, and those they wrote."""
    if not records:
        return set(), set()
    urls = [lake.store.url(lake.key(name)) for name in records]
    with _reading_old_files(lake):
        [(replaced, compacted)] = con.sql(
            load_sql("migrate_compactions"), params={"records": urls}
        ).fetchall()
    return set(replaced), set(compacted)


def _migrate_table(
    con: duckdb.DuckDBPyConnection, lake: Lake, table: Table, old: OldLake, row_group_rows: int
) -> int:
    """One table committed (or found committed by an earlier attempt); the rows its Delta table holds."""
    files = [lake.store.url(lake.key(name)) for name in old.files.get(table.staged_as or table.name, [])]
    rows = partial(_read_rows, con, lake, table, files, old.run_ids, row_group_rows)
    if not delta.commit_run(lake, table, rows, MIGRATION_ID, row_group_rows=row_group_rows):
        log.info("%s: committed by an earlier etl migrate, kept as it is", table.name)
    actions = pa.table(delta.require_table(lake, table).get_add_actions(flatten=True))
    return int(pc.sum(actions.column("num_records")).as_py() or 0)


def _read_rows(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    table: Table,
    files: list[str],
    run_ids: list[str],
    batch_rows: int,
) -> pa.RecordBatchReader:
    """The table's rows from the old files, streamed a batch at a time in the Delta table's schema."""
    # Only quotes' partition (the day a run collected them) is in the old files' path alone, as `date=...`.
    params = {"files": files, "run_ids": run_ids, "hive": "date" in table.partition_by}
    # Bound now, so that a bad old file is named here, before deltalake; run one after another as it pulls.
    with _reading_old_files(lake):
        relations = [
            con.sql(load_sql(name), params=values) for name, values in _statements(con, table, params)
        ]
    batches = (batch for relation in relations for batch in relation.to_arrow_reader(batch_rows))
    return pa.RecordBatchReader.from_batches(table.lake_schema, _to_lake_batches(table, batches))


def _statements(con: duckdb.DuckDBPyConnection, table: Table, params: dict) -> list[tuple[str, dict]]:
    """The statements (sql/migrate_*.sql) that read the table's rows, and their parameters."""
    if not params["files"]:  # a table the old lake never held (dividends and splits came later): no rows
        return []
    if table.name != BARS.name:
        return [(_SQL.get(table.name, "migrate_rows"), params)]
    # The current bars a year at a time: the window that picks them holds one year's bars, not the lake's.
    years = con.sql(load_sql("migrate_bar_years"), params={"files": params["files"]}).fetchall()
    return [("migrate_bars", params | {"year": year}) for (year,) in years]


@contextlib.contextmanager
def _reading_old_files(lake: Lake) -> Iterator[None]:
    """DuckDB's error on an old file (not Parquet, or not of the old layout's columns) as one line. One that
    comes only while deltalake pulls the rows reaches the user inside commit_run's one line."""
    try:
        yield
    except duckdb.Error as exc:
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise LakeError(
            f"cannot read an old file of the lake at {lake.url} ({cause}); fix or remove it and run `etl "
            "migrate` again: it keeps the tables committed so far"
        ) from exc


def _to_lake_batches(table: Table, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        yield from _to_lake_rows(table, pa.Table.from_batches([batch])).to_batches()


def _to_lake_rows(table: Table, rows: pa.Table) -> pa.Table:
    """Old rows in the Delta table's schema: a column that files older than it lack as nulls, then the
    partition columns, quotes' `date` from their old file's folder (a column DuckDB read from the path)."""
    columns = [_column(rows, field) for field in table.schema]
    new = pa.Table.from_arrays(columns, schema=table.schema)
    if "date" in table.partition_by:
        return new.append_column("date", rows.column("date")).cast(table.lake_schema)
    return with_partitions(table, new, _NO_RUN_DATE)


def _column(rows: pa.Table, field: pa.Field) -> pa.ChunkedArray | pa.Array:
    if field.name not in rows.column_names:
        return pa.nulls(rows.num_rows, field.type)
    return rows.column(field.name).cast(field.type)


def _remove_old(lake: Lake, old: OldLake) -> None:
    """The old files, once every table is committed; compactions/ last and its marker after its records, so a
    remove cut off leaves a lake refuse_legacy still refuses and etl migrate finishes."""
    marker = f"{LEGACY_COMPACTIONS_DIR_NAME}/{MIGRATION_MARKER}"
    lake.store.delete([lake.key(name) for name in old.table_keys])
    lake.store.delete([lake.key(name) for name in old.compaction_keys if name != marker])
    lake.store.delete([lake.key(marker)])
    log.info("removed the old layout's %d files", len(old.table_keys) + len(old.compaction_keys))


def _file_name(name: str) -> str:
    return name.rpartition("/")[2]
