"""The lake's tables as Delta tables, through deltalake (delta-rs): opened, checked, and written once a run.

Every table is a Delta table at `<lake>/<table>/`, its Parquet files beside its `_delta_log/`. A run commits
each table once: a MERGE on the table's key for bars, dividends and splits (a row is replaced only by one of
a later run, whatever order the commits land in), an append for the others. Each commit carries the run's
id twice: in its commit info (`run_id`, for `history()`), and as a Delta application transaction whose app
id is the run's id. The transaction is how a run cut off between two tables' commits and published again
skips the tables it committed already, by a look-up in the table's snapshot rather than a scan of its rows.
A table of another schema, or with reader features the lake's readers do not follow (deletion vectors,
column mapping), is refused in one line before anything is written.

Imported by the publishing child and the readers only: deltalake costs a process 20 MB, the first table
opened 17 more, which the collector never pays.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, WriterProperties, write_deltalake
from deltalake.exceptions import DeltaError, TableNotFoundError
from deltalake.schema import Field

from etl.config import DELTA_COMMIT_ATTEMPTS, DELTA_TARGET_FILE_BYTES
from etl.errors import LakeError
from etl.lake.paths import Lake
from etl.schema import Table

# What a table's readers must follow to read it right through its file list (sql/views.sql reads the files).
_READER_FEATURES_READ = {"timestampNtz"}
log = logging.getLogger(__name__)
_WHAT_TO_DO = "restore it, or collect into a new lake (--lake)"


def storage_options() -> dict[str, str]:
    """deltalake's options for a bucket: it reads the AWS environment itself; a named profile's (or
    ~/.aws's) keys are resolved here, through boto3's chain, and held in memory only."""
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        return {}
    profile = os.environ.get("AWS_PROFILE")
    if not profile and not Path("~/.aws/credentials").expanduser().is_file():
        return {}
    import boto3  # only for a profile

    credentials = boto3.Session(profile_name=profile or None).get_credentials()
    if credentials is None:
        return {}
    frozen = credentials.get_frozen_credentials()
    options = {"AWS_ACCESS_KEY_ID": frozen.access_key, "AWS_SECRET_ACCESS_KEY": frozen.secret_key}
    return options | ({"AWS_SESSION_TOKEN": frozen.token} if frozen.token else {})


def open_table(lake: Lake, table: Table) -> DeltaTable | None:
    """The table's current snapshot, checked against its schema; None if the lake holds no such table."""
    url = lake.table_url(table.name)
    try:
        delta = DeltaTable(url, storage_options=storage_options())
    except TableNotFoundError:
        return None
    except (DeltaError, OSError, ValueError) as exc:
        raise LakeError(f"cannot read the Delta table {url} ({first_line(exc)}); {_WHAT_TO_DO}") from exc
    _require_readable(url, delta, table)
    return delta


def require_table(lake: Lake, table: Table) -> DeltaTable:
    """The table's snapshot; a lake without it is refused in one line."""
    delta = open_table(lake, table)
    if delta is None:
        raise LakeError(
            f"the lake at {lake.url} has no {table.name} table ({lake.table_url(table.name)}/_delta_log is "
            f"missing); {_WHAT_TO_DO}"
        )
    return delta


def _require_readable(url: str, delta: DeltaTable, table: Table) -> None:
    """A table another tool wrote with other columns or features the readers do not follow: one line."""
    protocol = delta.protocol()
    unread = set(protocol.reader_features or ()) - _READER_FEATURES_READ
    if protocol.min_reader_version > 3 or unread:
        raise LakeError(
            f"the Delta table {url} needs reader features {sorted(unread)} (reader version "
            f"{protocol.min_reader_version}) that this job does not read; {_WHAT_TO_DO}"
        )
    found = pa.schema(delta.schema().to_arrow())
    absent = missing_added_columns(delta, table)
    missing = [
        f"{f.name} {f.type}"
        for f in table.lake_schema
        if _field_type(found, f.name) != f.type and f.name not in absent
    ]
    if missing:
        raise LakeError(
            f"the Delta table {url} does not hold this job's {table.name} columns (missing or of another "
            f"type: {', '.join(missing)}; it has {', '.join(found.names)}); {_WHAT_TO_DO}"
        )


def _field_type(schema: pa.Schema, name: str) -> pa.DataType | None:
    index = schema.get_field_index(name)
    if index < 0:
        return None
    found = schema.field(index).type
    # delta-rs reads strings back as Arrow's large or view variants: the same column to every reader.
    return pa.string() if found in (pa.large_string(), pa.string_view()) else found


def missing_added_columns(delta: DeltaTable, table: Table) -> list[str]:
    """The columns added to the table's schema since this Delta table was written; the next publish adds
    them."""
    names = set(delta.schema().to_arrow().names)
    return [name for name in table.added_columns if name not in names]


def has_run(delta: DeltaTable | None, run_id: str) -> bool:
    """Whether the run committed this table already (its application transaction is in the snapshot)."""
    return delta is not None and delta.transaction_version(run_id) is not None


def commit_run(
    lake: Lake, table: Table, rows: Callable[[], pa.RecordBatchReader], run_id: str, *, row_group_rows: int
) -> bool:
    """The run's rows of one table as one commit: merged on the table's key, or appended; False if the run
    committed it before. `rows` gives the rows anew for each attempt: a merge that another writer's commit
    beat is run again on the new snapshot."""
    attempt = 1
    while True:
        delta = open_table(lake, table)
        if has_run(delta, run_id):  # an attempt whose answer was lost had committed: not twice
            return False
        try:
            _commit(lake, table, delta, rows(), run_id, writer_properties(row_group_rows))
            return True
        # Another tool's commit won the race, or the store failed a request that delta-rs does not resend
        # (its puts: object_store retries only what it may): the table is at its last version, so the whole
        # commit is tried again.
        except (DeltaError, OSError) as exc:
            if attempt == DELTA_COMMIT_ATTEMPTS:
                raise LakeError(
                    f"committing {lake.table_url(table.name)} failed ({first_line(exc)})"
                ) from exc
            log.info("committing %s failed (%s); trying again", lake.table_url(table.name), first_line(exc))
        time.sleep(min(0.2 * 2**attempt, 5.0) * random.uniform(0.5, 1.0))
        attempt += 1


def writer_properties(row_group_rows: int) -> WriterProperties:
    """zstd, statistics, and row groups of row_group_rows: what every file of the lake is written with."""
    return WriterProperties(compression="ZSTD", compression_level=3, max_row_group_size=row_group_rows)


def _commit(
    lake: Lake,
    table: Table,
    delta: DeltaTable | None,
    rows: pa.RecordBatchReader,
    run_id: str,
    writer: WriterProperties,
) -> None:
    commit = CommitProperties(
        custom_metadata={"run_id": run_id}, app_transactions=[Transaction(app_id=run_id, version=1)]
    )
    if delta is not None and (missing := missing_added_columns(delta, table)):
        # Delta's schema evolution: a metadata-only commit; the table's old files read the column as null.
        delta.alter.add_columns([Field.from_arrow(table.lake_schema.field(name)) for name in missing])
    if delta is None or not table.merge_key:
        write_deltalake(
            lake.table_url(table.name),
            rows,
            mode="append",
            partition_by=list(table.partition_by) or None,
            writer_properties=writer,
            target_file_size=DELTA_TARGET_FILE_BYTES,
            commit_properties=commit,
            storage_options=storage_options(),
        )
        return
    on = " and ".join(f"t.{name} = s.{name}" for name in (*table.partition_by, *table.merge_key))
    # streamed_exec=False: the source's statistics prune the target's files, so a daily run rewrites one
    # month's file; streamed, every file of the table is read (README, Performance).
    delta.merge(
        rows,
        on,
        source_alias="s",
        target_alias="t",
        writer_properties=writer,
        streamed_exec=False,
        commit_properties=commit,
    ).when_matched_update_all(predicate=_update_when(table)).when_not_matched_insert_all().execute()


def _update_when(table: Table) -> str:
    """When a merged row replaces the table's: a later run's, and, for a table kept per change, a changed
    one."""
    later = "s.run_id > t.run_id"
    if not table.update_changed_only:
        return later
    values = [name for name in table.schema.names if name not in ("run_id", *table.merge_key)]
    # Each comparison in parentheses: delta-rs's SQL parser binds `or` tighter than `is distinct from`.
    changed = " or ".join(f"(s.{name} is distinct from t.{name})" for name in values)
    return f"{later} and ({changed})"


def first_line(exc: BaseException) -> str:
    """A deltalake error's first line, for a one-line message (its Rust backtrace follows)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
