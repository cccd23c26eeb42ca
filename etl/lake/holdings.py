"""What the lake holds: whether it is a lake of Delta tables, its completed runs, and where each symbol's bars
resume.

The last is read by DuckDB over the lake's views, in a child process of its own (etl/lake/refetch.py), so that
neither DuckDB nor deltalake ever sits in the collector's memory.
"""

import datetime as dt
import json

from etl.errors import LakeError, LegacyLakeError
from etl.lake.child import run_child
from etl.lake.paths import DELTA_LOG_DIR_NAME, RUNS_DIR_NAME, Lake

# The folder of the records that `compact` wrote before the lake's tables were Delta tables.
LEGACY_COMPACTIONS_DIR_NAME = "compactions"


def has_runs_table(lake: Lake) -> bool:
    """Whether the lake's `runs` Delta table exists: a run has completed in it."""
    return bool(lake.store.list_keys(lake.key(RUNS_DIR_NAME, DELTA_LOG_DIR_NAME, "")))


def refuse_legacy(lake: Lake) -> None:
    """A lake of one Parquet file a run and table (before Delta), or one `etl migrate` did not finish: refused
    in one line naming the command that converts it."""
    runs = lake.store.list_keys(lake.key(RUNS_DIR_NAME, ""))
    legacy_runs = any(key.endswith(".parquet") and f"/{DELTA_LOG_DIR_NAME}/" not in key for key in runs)
    has_log = any(f"/{DELTA_LOG_DIR_NAME}/" in key for key in runs)
    if (legacy_runs and not has_log) or lake.store.list_keys(lake.key(LEGACY_COMPACTIONS_DIR_NAME, "")):
        raise LegacyLakeError(
            f"the lake at {lake.url} predates Delta tables (one Parquet file a run); convert it once with "
            f"`python -m etl migrate --lake {lake.url}`"
        )


def require_completed_run(lake: Lake) -> None:
    """Refuse, in one line, a lake of the layout before Delta, or one that holds no completed run."""
    refuse_legacy(lake)
    if not has_runs_table(lake):
        raise LakeError(
            f"the lake at {lake.url} holds no completed run yet; run `make demo` or `make collect` first"
        )


def read_refetch_from(lake: Lake, revision_days: int) -> dict[str, dt.date]:
    """Per symbol in the lake, the first date to fetch again; empty for a new lake."""
    if not has_runs_table(lake):
        return {}
    try:
        output = run_child("etl.lake.refetch", lake.url, str(revision_days))
    except LakeError as exc:
        raise LakeError(
            f"cannot read what the lake at {lake.url} holds ({exc}); --full-refresh ignores it"
        ) from exc
    return {symbol: dt.date.fromisoformat(day) for symbol, day in json.loads(output).items()}
