"""Compaction: Delta's optimize of each table (its small files rewritten as few, optionally z-ordered by
symbol), then a vacuum of the files no snapshot of the last `keep_minutes` needs.

Optimize is a commit like any other: a reader of the snapshot before it keeps reading the files it replaced,
until the vacuum removes them, `keep_minutes` after they left the snapshot. The vacuum is a full one: it also
removes the files that a writer killed mid-write left unreferenced (delta-rs's plain vacuum keeps those), and
it runs under the lake's lock, so no running writer's uncommitted files are among them.
"""

import math
from dataclasses import dataclass

from deltalake.exceptions import DeltaError

from etl.errors import LakeError
from etl.lake import delta
from etl.lake.lock import lake_lock
from etl.lake.paths import Lake
from etl.lake.store import COMPACTION_CUT_SHORT, failures_leave
from etl.schema import TABLES


@dataclass(frozen=True)
class Compacted:
    """One table optimized and vacuumed: the files it rewrote, the files it wrote, and the files removed."""

    table: str
    files_removed: int
    files_added: int
    files_vacuumed: int


def compact_lake(
    lake: Lake,
    table_names: tuple[str, ...],
    *,
    keep_minutes: float,
    row_group_rows: int,
    lease_s: float,
    z_order: bool = False,
) -> list[Compacted]:
    """Optimize and vacuum each of these tables, under the lake's lock."""
    done = []
    with lake_lock(lake, lease_s=lease_s) as lock, failures_leave(COMPACTION_CUT_SHORT):
        for name in table_names:
            lock.check()
            done.append(_compact_table(lake, name, keep_minutes, row_group_rows, z_order=z_order))
    return done


def _compact_table(
    lake: Lake, name: str, keep_minutes: float, row_group_rows: int, *, z_order: bool
) -> Compacted:
    table = delta.require_table(lake, TABLES[name])
    writer = delta.writer_properties(row_group_rows)
    by_symbol = z_order and "symbol" in table.schema().to_arrow().names
    try:
        metrics = (
            table.optimize.z_order(["symbol"], writer_properties=writer)
            if by_symbol
            else table.optimize.compact(writer_properties=writer)
        )
        vacuumed = table.vacuum(
            # delta-rs counts whole hours: a part-hour is kept the whole hour, never less than asked.
            retention_hours=math.ceil(keep_minutes / 60),
            enforce_retention_duration=False,
            dry_run=False,
            full=True,
        )
        # A reader opens the table from its latest checkpoint, not by replaying the commits since the last
        # one delta-rs wrote (every 100): in a bucket, a round trip each.
        table.create_checkpoint()
    except (DeltaError, OSError) as exc:  # a file or a commit that could not be written, or deleted
        raise LakeError(
            f"compacting {lake.table_url(name)} failed ({delta.first_line(exc)}); {COMPACTION_CUT_SHORT}"
        ) from exc
    return Compacted(name, metrics["numFilesRemoved"], metrics["numFilesAdded"], len(vacuumed))
