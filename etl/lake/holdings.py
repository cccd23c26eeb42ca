"""What the lake holds: its completed runs, its compactions' records, and where each symbol's bars resume.

The last is read by DuckDB over the lake's views, in a child process of its own, so that DuckDB never
sits in the collector's memory: `python -m etl.lake.holdings LAKE REVISION_DAYS` prints
`{symbol: first date}`.
"""

import datetime as dt
import json
import sys
from pathlib import Path

from etl.errors import LakeError
from etl.lake.child import errors_to_one_line, run_child
from etl.lake.paths import COMPACTIONS_DIR_NAME, RUNS_DIR_NAME


def completed_run_ids(lake_dir: Path) -> set[str]:
    """The runs whose `runs` file is published: the lake's completed runs."""
    return {path.stem for path in (lake_dir / RUNS_DIR_NAME).glob("*.parquet")}


def has_completed_run(lake_dir: Path) -> bool:
    """Whether the lake holds a completed run."""
    # A run killed while publishing can leave `runs/` made but empty: that lake has no completed run either.
    return any((lake_dir / RUNS_DIR_NAME).glob("*.parquet"))


def require_completed_run(lake_dir: Path) -> None:
    """Refuse, in one line, a lake that holds no completed run."""
    if not has_completed_run(lake_dir):
        raise LakeError(
            f"the lake at {lake_dir} holds no completed run yet; run `make demo` or `make collect` first"
        )


def compaction_record_paths(lake_dir: Path) -> list[Path]:
    """The published compactions' records (`compactions/<id>.parquet`), oldest first."""
    return sorted((lake_dir / COMPACTIONS_DIR_NAME).glob("*.parquet"))


def read_refetch_from(lake_dir: Path, revision_days: int) -> dict[str, dt.date]:
    """Per symbol in the lake's completed runs, the first date to fetch again; empty for a new lake."""
    if not has_completed_run(lake_dir):
        return {}
    try:
        output = run_child("etl.lake.holdings", str(lake_dir), str(revision_days))
    except LakeError as exc:
        raise LakeError(
            f"cannot read what the lake at {lake_dir} holds ({exc}); --full-refresh ignores it"
        ) from exc
    return {symbol: dt.date.fromisoformat(day) for symbol, day in json.loads(output).items()}


def main() -> None:
    """`python -m etl.lake.holdings LAKE REVISION_DAYS`: print `{symbol: first date to fetch}` as JSON."""
    from etl import summary  # DuckDB, in this child only

    lake_dir, revision_days = Path(sys.argv[1]), int(sys.argv[2])
    with errors_to_one_line():
        rows = summary.fetch_dicts(
            summary.connect_lake(lake_dir), summary.load_sql("refetch_from"), {"revision_days": revision_days}
        )
    print(json.dumps({row["symbol"]: row["refetch_from"].isoformat() for row in rows}))


if __name__ == "__main__":
    main()
