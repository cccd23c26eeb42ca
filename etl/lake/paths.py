"""Where the lake keeps things: its tables' folders, and the staging folder and lock file beside it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # etl.schema loads pyarrow; the readers of these paths (holdings, the CLI) need none
    from etl.schema import Table

# The folders of the `runs` and `compactions` tables (etl/schema.py names them so too).
RUNS_DIR_NAME = "runs"
COMPACTIONS_DIR_NAME = "compactions"


def staging_dir_for(lake_dir: Path) -> Path:
    """Where a lake's files are written before they are published: beside the lake, never inside."""
    return lake_dir.parent / f".{lake_dir.name}.staging"


def lock_path_for(lake_dir: Path) -> Path:
    """The single writer's lock file, beside the lake."""
    return lake_dir.parent / f".{lake_dir.name}.lock"


def run_manifest_path(lake_dir: Path, run_id: str) -> Path:
    """A run's `runs` file: once it exists, the run is complete."""
    return lake_dir / RUNS_DIR_NAME / f"{run_id}.parquet"


def lake_folder(table: Table, partition: str | None) -> Path:
    """A table's (partition's) folder, relative to the lake: `bars/year=2026`."""
    return Path(table.name) if partition is None else Path(table.name, f"{table.partition_key}={partition}")


def default_partition(table: Table, run_date: dt.date) -> str | None:
    """Quotes are filed under the day they were collected, bars under their year (the run's for an empty
    run)."""
    if table.partition_key == "date":
        return run_date.isoformat()
    if table.partition_key == "year":
        return str(run_date.year)
    return None
