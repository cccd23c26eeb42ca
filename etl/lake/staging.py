"""A run's staging folder beside the lake: its plan, and every batch committed whole as Arrow IPC parts.

The layout and why a kill at any instant leaves a batch whole or absent: etl/lake/__init__.py.
"""

import contextlib
import datetime as dt
import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from etl.errors import ConfigError, LakeError, SchemaError
from etl.lake.files import disk_errors, pending_path, write_atomically
from etl.lake.formats import PART_NAME, file_schema, read_part
from etl.lake.paths import default_partition, lake_folder, run_manifest_path, staging_dir_for
from etl.schema import RUNS, Table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunPlan:
    """What a run collects: a rerun with an equal plan continues the unfinished run instead of starting
    one."""

    symbols: tuple[str, ...]
    batch_size: int
    history: str
    source_url: str
    # Per symbol the lake already holds, the ISO date its bars are fetched from (see etl/lake/holdings.py).
    since: dict[str, str] = field(default_factory=dict)


class RunStaging:
    """One run's staged batches; created new, or reopened to resume a run that was cut off."""

    def __init__(self, folder: Path, run_id: str, started_at: dt.datetime) -> None:
        self.folder = folder
        self.run_id = run_id
        self.started_at = started_at

    def committed(self) -> set[int]:
        """The numbers of the batches committed so far."""
        return {int(path.name) for path in self._committed_dirs()}

    @contextlib.contextmanager
    def batch(self, batch_no: int) -> Iterator["BatchParts"]:
        """Write one batch's parts; they are committed, all at once, when the block ends without error."""
        final = self.folder / "batches" / f"{batch_no:06d}"
        with disk_errors(pending_path(final)), write_atomically(final) as pending:
            yield BatchParts(pending, self.started_at.date())

    def commit_manifest(self, runs_record: pa.RecordBatch) -> None:
        """Stage the run's `runs` row as batch 0; one staged before a kill is kept, as publishing may have
        begun."""
        if 0 not in self.committed():
            with self.batch(0) as manifest:
                manifest.write(RUNS, runs_record)

    def parts(self) -> dict[Path, list[Path]]:
        """Every committed part by its lake folder (`bars/year=2026`), in batch order."""
        by_folder: dict[Path, list[Path]] = {}
        for batch_dir in sorted(self._committed_dirs()):
            for part in sorted(batch_dir.rglob(PART_NAME)):
                by_folder.setdefault(part.parent.relative_to(batch_dir), []).append(part)
        return by_folder

    def read(self, table: Table) -> pa.Table:
        """Every committed row of a small table (`batches`, `failures`), for judging the whole run."""
        paths = [
            part for folder, parts in self.parts().items() if folder.parts[0] == table.name for part in parts
        ]
        return pa.concat_tables([read_part(p, table) for p in paths] or [table.schema.empty_table()])

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _committed_dirs(self) -> list[Path]:
        # A batch being written is `NNNNNN.tmp`: only a folder named by its number alone is committed.
        return [path for path in (self.folder / "batches").iterdir() if path.name.isdigit()]


class BatchParts:
    """The parts of one batch being written: an Arrow IPC file per table and partition, each written once."""

    def __init__(self, folder: Path, run_date: dt.date) -> None:
        self.folder = folder
        self.run_date = run_date

    def write(self, table: Table, batch: pa.RecordBatch) -> None:
        """Write a batch's rows of a table; bars may span several years, so several partitions."""
        for partition, rows in self._split(table, batch):
            path = self.folder / lake_folder(table, partition) / PART_NAME
            with disk_errors(path):
                path.parent.mkdir(parents=True, exist_ok=True)
                rows_table = _to_schema(table, rows)
                # Arrow IPC, not Parquet: parts are read once, by the merge, and Parquet's encoders would
                # cost the collector 3 MB of RSS and CPU for nothing.
                with pa.ipc.new_file(str(path), file_schema(table)) as part_file:
                    part_file.write_table(rows_table)

    def _split(self, table: Table, batch: pa.RecordBatch) -> Iterator[tuple[str | None, pa.RecordBatch]]:
        if not batch.num_rows:
            return
        if table.partition_key != "year":
            yield default_partition(table, self.run_date), batch
            return
        years = pc.year(batch.column("date"))
        for year in pc.unique(years).to_pylist():
            yield str(year), batch.filter(pc.equal(years, year))


def _to_schema(table: Table, rows: pa.RecordBatch) -> pa.Table:
    """Rows cast to the table's canonical schema: a column of another name or type never drifts into
    the lake."""
    try:
        return pa.Table.from_batches([rows]).cast(table.schema)
    except (ValueError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SchemaError(
            f"{table.name} rows with columns {rows.schema.names} do not fit the lake's schema"
            f" {table.schema.names} ({str(exc).splitlines()[0]})"
        ) from exc


def open_run(
    lake_dir: Path, plan: RunPlan, *, new_run_id: str, started_at: dt.datetime, resume: bool = False
) -> RunStaging:
    """The unfinished run of this plan, to resume; else a new one. Leftovers of finished or other plans go."""
    unfinished = [run for run, saved in _leftovers(lake_dir) if _settle(lake_dir, run, saved, plan)]
    if unfinished:
        run = unfinished[-1]
        log.info("resuming run %s: %d batches already committed", run.run_id, len(run.committed()))
        return run
    if resume:
        raise ConfigError(
            f"--resume: no unfinished run of this universe and settings in {staging_dir_for(lake_dir)}; "
            "run without --resume to start one"
        )
    return _create(lake_dir, plan, new_run_id, started_at)


def load_run(folder: Path) -> tuple[RunStaging, dict]:
    """A staged run from its folder's plan.json, and the plan saved there."""
    saved = json.loads((folder / "plan.json").read_text())
    return RunStaging(folder, saved["run_id"], dt.datetime.fromisoformat(saved["started_at"])), saved["plan"]


def _leftovers(lake_dir: Path) -> list[tuple[RunStaging, dict]]:
    """Every run folder left in the staging folder with its plan, oldest first; one without a readable plan
    goes."""
    runs = []
    root = staging_dir_for(lake_dir)
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            runs.append(load_run(folder))
        except (OSError, ValueError, KeyError):
            shutil.rmtree(folder, ignore_errors=True)
    return runs


def _settle(lake_dir: Path, run: RunStaging, saved: dict, plan: RunPlan) -> bool:
    """Whether a leftover run is this plan's unfinished one; otherwise its folder is removed."""
    finished = run_manifest_path(lake_dir, run.run_id).exists()
    if not finished and saved == _to_json(plan):
        for pending in (run.folder / "batches").glob("*.tmp"):
            shutil.rmtree(pending)
        return True
    if not finished:
        log.info(
            "discarding unfinished run %s: it collected another universe or with other settings", run.run_id
        )
    run.discard()
    return False


def _create(lake_dir: Path, plan: RunPlan, run_id: str, started_at: dt.datetime) -> RunStaging:
    folder = staging_dir_for(lake_dir) / run_id
    saved = {"run_id": run_id, "started_at": started_at.isoformat(), "plan": _to_json(plan)}
    try:
        (folder / "batches").mkdir(parents=True)
        with write_atomically(folder / "plan.json") as pending:
            pending.write_text(json.dumps(saved))
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise LakeError(
            f"cannot create the staging folder {folder} ({exc.strerror}); check the lake's parent folder"
        ) from exc
    return RunStaging(folder, run_id, started_at)


def _to_json(plan: RunPlan) -> dict:
    return asdict(plan) | {"symbols": list(plan.symbols)}
