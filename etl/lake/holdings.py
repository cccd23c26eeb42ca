"""What the lake holds: its completed runs, its compactions' records, and where each symbol's bars resume.

The last is read by DuckDB over the lake's views, in a child process of its own, so that DuckDB never
sits in the collector's memory: `python -m etl.lake.holdings LAKE REVISION_DAYS` prints
`{symbol: first date}`.
"""

import datetime as dt
import json
import sys

from etl.errors import LakeError
from etl.lake.child import errors_to_one_line, run_child
from etl.lake.paths import COMPACTED_PREFIX, COMPACTIONS_DIR_NAME, RUNS_DIR_NAME, Lake, open_lake


def completed_run_ids(lake: Lake) -> set[str]:
    """The runs whose own `runs` object is published: the lake's completed runs (a compaction's file of many
    is not one, and leaves theirs in place)."""
    names = (key.rpartition("/")[2] for key in parquet_keys(lake, RUNS_DIR_NAME))
    return {name.removesuffix(".parquet") for name in names if not name.startswith(COMPACTED_PREFIX)}


def require_completed_run(lake: Lake) -> None:
    """Refuse, in one line, a lake that holds no completed run."""
    # A run killed while publishing can leave `runs/` made but empty: that lake has no completed run either.
    if not completed_run_ids(lake):
        raise LakeError(
            f"the lake at {lake.url} holds no completed run yet; run `make demo` or `make collect` first"
        )


def compaction_record_keys(lake: Lake) -> list[str]:
    """The published compactions' records (`compactions/<id>.parquet`), oldest first."""
    return parquet_keys(lake, COMPACTIONS_DIR_NAME)


def read_refetch_from(lake: Lake, revision_days: int) -> dict[str, dt.date]:
    """Per symbol in the lake's completed runs, the first date to fetch again; empty for a new lake."""
    if not completed_run_ids(lake):
        return {}
    try:
        output = run_child("etl.lake.holdings", lake.url, str(revision_days))
    except LakeError as exc:
        raise LakeError(
            f"cannot read what the lake at {lake.url} holds ({exc}); --full-refresh ignores it"
        ) from exc
    return {symbol: dt.date.fromisoformat(day) for symbol, day in json.loads(output).items()}


def parquet_keys(lake: Lake, folder: str) -> list[str]:
    """The keys of a folder's Parquet files, at any depth: a table's, or its partition's."""
    return [key for key in lake.store.list_keys(lake.key(folder, "")) if key.endswith(".parquet")]


def main() -> None:
    """`python -m etl.lake.holdings LAKE REVISION_DAYS`: print `{symbol: first date to fetch}` as JSON."""
    from etl import summary  # DuckDB, in this child only

    lake, revision_days = open_lake(sys.argv[1]), int(sys.argv[2])
    with errors_to_one_line():
        rows = summary.fetch_dicts(
            summary.connect_lake(lake), summary.load_sql("refetch_from"), {"revision_days": revision_days}
        )
    print(json.dumps({row["symbol"]: row["refetch_from"].isoformat() for row in rows}))


if __name__ == "__main__":
    main()
