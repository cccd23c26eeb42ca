"""The performance summary of a run and the comparison of two, from sql/summary.sql and sql/compare.sql."""

import duckdb

from etl.errors import LakeError
from etl.queries import fetch_dicts, load_sql


def run_summary(
    con: duckdb.DuckDBPyConnection, run_id: str | None, *, cost_per_call: float, full_scale: int
) -> dict:
    """The performance summary of one run (the latest when run_id is None)."""
    rows = fetch_dicts(
        con, load_sql("summary"), {"run_id": run_id, "cost_per_call": cost_per_call, "full_scale": full_scale}
    )
    if not rows:
        raise LakeError(
            f'no completed run {run_id!r} in the lake; `python -m etl query "from runs"` lists them'
        )
    return rows[0]


def compare_runs(
    con: duckdb.DuckDBPyConnection, before: str, after: str, *, cost_per_call: float, full_scale: int
) -> list[dict]:
    """Two runs side by side, with the improvement in percent of each figure."""
    for run_id in (before, after):
        run_summary(con, run_id, cost_per_call=cost_per_call, full_scale=full_scale)
    params = {
        "before_run": before,
        "after_run": after,
        "cost_per_call": cost_per_call,
        "full_scale": full_scale,
    }
    return fetch_dicts(con, load_sql("compare"), params)
