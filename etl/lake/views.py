"""DuckDB over the lake: a connection with sql/views.sql and sql/brief.sql in place, over each table's
current Delta snapshot."""

import tempfile
from concurrent.futures import ThreadPoolExecutor
from functools import cache, partial
from pathlib import Path
from urllib.parse import unquote

import duckdb
from deltalake import DeltaTable

from etl.errors import LakeError
from etl.lake.delta import missing_added_columns, open_table, require_table
from etl.lake.holdings import require_completed_run
from etl.lake.paths import Lake, open_lake
from etl.queries import load_sql
from etl.schema import TABLES, Table

# The SQL files a connection to the lake runs once its tables' files are set, in order: brief.sql's macros
# are over views.sql's views.
LAKE_SQL = ("views", "brief")

# A value of each partition column for the empty file's folders; it holds no row, so none is read.
_EMPTY_PARTITION = {"year": "0", "month": "0", "date": "1970-01-01"}


def connect_lake(location: str | Path | Lake) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake's views and macros in place, over each table's current snapshot."""
    lake = open_lake(location)
    con = duckdb.connect()
    try:
        variables = lake_variables(con, lake)
        con.execute(load_sql("set_lake"), {"lake": variables["lake"]})
        con.execute(load_sql("set_files"), {"tables": variables["tables"], "files": variables["files"]})
        for name in LAKE_SQL:
            con.execute(load_sql(name))
    except duckdb.Error as exc:  # a file of the lake that is not Parquet, or not of this job's schema
        raise LakeError(f"cannot read the lake at {lake.url}: {exc}".splitlines()[0]) from exc
    return con


def lake_variables(con: duckdb.DuckDBPyConnection, lake: Lake) -> dict:
    """What sql/set_lake.sql and sql/set_files.sql bind; a lake with no completed run is refused."""
    require_completed_run(lake)
    files = table_files(con, lake)
    return {"lake": lake.root_url, "tables": list(files), "files": list(files.values())}


def table_files(con: duckdb.DuckDBPyConnection, lake: Lake) -> dict[str, list[str]]:
    """Each table's files as its Delta snapshot lists them now (read once: a commit landing later is the next
    connection's); a lake in a bucket is made readable to DuckDB here."""
    # Opened side by side: each open reads a log, in a bucket a few round trips one after another.
    with ThreadPoolExecutor(max_workers=len(TABLES)) as pool:
        snapshots = dict(zip(TABLES, pool.map(partial(_snapshot, lake), TABLES.values()), strict=True))
    # deltalake gives URIs percent-encoded (a space as %20); DuckDB takes the path as it is.
    files = {name: list(map(unquote, s.file_uris())) if s else [] for name, s in snapshots.items()}
    if not lake.is_local:
        from etl.lake.s3_readers import BucketReader  # obstore and fsspec, for a lake in a bucket only

        BucketReader(con, lake).prefetch(file for names in files.values() for file in names)
    return {name: _readable(TABLES[name], names, snapshots[name]) for name, names in files.items()}


def _snapshot(lake: Lake, table: Table) -> DeltaTable | None:
    return open_table(lake, table) if table.added_later else require_table(lake, table)


def _readable(table: Table, files: list[str], snapshot: DeltaTable | None) -> list[str]:
    """The files for the table's view: with an empty file of its whole schema when it has no file (DuckDB
    reads no files at all as an error) or when its files predate a column (the column reads as null)."""
    if files and snapshot is not None and not missing_added_columns(snapshot, table):
        return files
    return [*files, empty_table_file(table.name)]


@cache
def empty_table_file(name: str) -> str:
    """A Parquet file of the table's columns and no rows, outside the lake, in folders naming its partitions
    as the table's files do (DuckDB refuses files of other partitions beside them). It lasts as long as the
    process."""
    import pyarrow.parquet as pq  # only for a table with no rows, or files older than a column

    table = TABLES[name]
    folder = Path(_empty_tables_dir().name, name, *(f"{p}={_EMPTY_PARTITION[p]}" for p in table.partition_by))
    folder.mkdir(parents=True)
    pq.write_table(table.schema.empty_table(), folder / "empty.parquet")
    return str(folder / "empty.parquet")


@cache
def _empty_tables_dir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="etl-empty-tables-")
