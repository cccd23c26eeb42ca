"""What the lake already holds, as the place each symbol's bars must be fetched from.

DuckDB reads it over the lake's views, in a child process of its own, so that DuckDB never sits in
the collector's memory: `python -m etl.state LAKE REVISION_DAYS` prints `{symbol: first date}`.
"""

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from etl.errors import LakeError


def read_refetch_from(lake_dir: Path, revision_days: int) -> dict[str, dt.date]:
    """Per symbol in the lake's completed runs, the first date to fetch again; empty for a new lake."""
    if not any((lake_dir / "runs").glob("*.parquet")):
        return {}
    child = subprocess.run(
        [sys.executable, "-m", "etl.state", str(lake_dir), str(revision_days)], capture_output=True, text=True
    )
    if child.returncode:
        reason = (child.stderr.strip().splitlines() or ["no output"])[-1]
        raise LakeError(
            f"cannot read what the lake at {lake_dir} holds ({reason}); --full-refresh ignores it"
        )
    return {symbol: dt.date.fromisoformat(day) for symbol, day in json.loads(child.stdout).items()}


def main() -> None:
    from etl import summary

    lake_dir, revision_days = Path(sys.argv[1]), int(sys.argv[2])
    rows = summary.fetch_dicts(
        summary.connect_lake(lake_dir), summary.load_sql("refetch_from"), {"revision_days": revision_days}
    )
    print(json.dumps({row["symbol"]: row["refetch_from"].isoformat() for row in rows}))


if __name__ == "__main__":
    main()
