"""What the bench reads back from a lake of Delta tables: the newest run's rows, when its manifest was
committed, and what objects the tables hold."""

import datetime as dt
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from etl.lake import delta
from etl.lake.paths import DELTA_LOG_DIR_NAME, Lake, open_lake
from etl.schema import BAR_REVISIONS, BATCHES, QUOTES, RUNS, Table


def newest_run_rows(lake_url: str, symbols: list[str]) -> tuple[int, int]:
    """The rows the lake's newest run wrote (its `batches` rows' bar_rows + quote_rows), and how many of the
    symbols appear in none of its bars and quotes."""
    lake = open_lake(lake_url)
    run_id = newest_run_id(lake)
    batches = run_rows(lake, BATCHES, run_id, ["bar_rows", "quote_rows"])
    rows = sum(pc.sum(batches[name]).as_py() or 0 for name in ("bar_rows", "quote_rows"))
    seen: set[str] = set()
    for table in (BAR_REVISIONS, QUOTES):  # bar_revisions: every bar the run fetched, as it fetched it
        seen.update(pc.unique(run_rows(lake, table, run_id, ["symbol"])["symbol"]).to_pylist())
    return rows, len(set(symbols) - seen)


def newest_run_id(lake: Lake) -> str:
    return pc.max(delta.require_table(lake, RUNS).to_pyarrow_table(columns=["run_id"])["run_id"]).as_py()


def run_rows(lake: Lake, table: Table, run_id: str, columns: list[str]) -> pa.Table:
    """One run's rows of a table, these columns only."""
    dataset = delta.require_table(lake, table).to_pyarrow_dataset()
    return dataset.to_table(columns=columns, filter=pc.field("run_id") == run_id)


def manifest_committed_at(lake: Lake, run_id: str) -> dt.datetime:
    """When the run's commit to the `runs` table was made (that commit's timestamp): its publishing's end."""
    for commit in delta.require_table(lake, RUNS).history():
        if commit.get("run_id") == run_id:
            return dt.datetime.fromtimestamp(commit["timestamp"] / 1000, dt.UTC)
    raise LookupError(f"the runs table of {lake.url} has no commit of run {run_id}")


def describe_objects(lake: Lake, table_name: str = "") -> str:
    """The lake's objects (or one table's) by kind: Parquet data files, Delta commits and checkpoints."""
    kinds: Counter[str] = Counter()
    for key in lake.store.list_keys(lake.key(f"{table_name}/" if table_name else "")):
        in_log = f"/{DELTA_LOG_DIR_NAME}/" in key
        if in_log and key.endswith(".checkpoint.parquet"):
            kinds["checkpoints"] += 1
        elif in_log and key.endswith(".json"):
            kinds["commits"] += 1
        elif key.endswith(".parquet"):
            kinds["data files"] += 1
        else:
            kinds["other"] += 1
    kinds_listed = ("data files", "commits", "checkpoints", "other")
    listed = ", ".join(f"{kinds[kind]:,} {kind}" for kind in kinds_listed)
    return f"{kinds.total():,} objects: {listed}"
