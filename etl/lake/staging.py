"""A run's staging area beside the lake: its plan, and every batch committed whole as Arrow IPC parts.

The layout and why a kill at any instant leaves a batch whole or absent: etl/lake/__init__.py.
"""

import contextlib
import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import pyarrow as pa

from etl.errors import ConfigError, LakeError, SchemaError
from etl.lake.formats import PART_NAME, file_schema, read_part
from etl.lake.paths import Lake
from etl.lake.store import ObjectExists, fetch_in_order, put_all
from etl.schema import RUNS, SYMBOLS, Table

PLAN_NAME = "plan.json"

log = logging.getLogger(__name__)


class BatchCommitted(LakeError):
    """Another attempt of the batch (a task Ray retried or ran twice) committed it first; this one's parts are
    gone."""


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
    """One run's staged batches; created new, or reopened to resume a run that was cut off.

    A batch's parts go under a key of their own attempt, and its commit record (which attempt, which
    parts) is created last, create-only: a batch is committed once, whole, or not at all, however often
    it was written.
    """

    def __init__(self, lake: Lake, run_id: str, started_at: dt.datetime) -> None:
        self.lake = lake
        self.run_id = run_id
        self.started_at = started_at
        self.prefix = lake.staging_key(run_id)
        self._records: dict[int, dict] = {}

    def committed(self) -> set[int]:
        """The numbers of the batches committed so far."""
        keys = self.lake.store.list_keys(f"{self.prefix}/commits/")
        stems = (key.rpartition("/")[2].removesuffix(".json") for key in keys)
        return {int(stem) for stem in stems if stem.isdigit()}

    @contextlib.contextmanager
    def batch(self, batch_no: int) -> Iterator["BatchParts"]:
        """Write one batch's parts; they are committed, all at once, when the block ends without error."""
        attempt = f"{self.prefix}/parts/{batch_no:06d}/{uuid.uuid4().hex}"
        parts = BatchParts(attempt)
        try:
            yield parts
            put_all(self.lake.store, parts.staged)
        except BaseException:
            with contextlib.suppress(LakeError):  # cleaning up must not hide the error that made it necessary
                self.lake.store.delete(list(parts.staged))
            raise
        record = {"attempt": attempt, "parts": parts.tables}
        try:
            self.lake.store.put_new(_record_key(self.prefix, batch_no), json.dumps(record).encode())
        except ObjectExists:
            self.lake.store.delete(list(parts.staged))
            raise BatchCommitted(f"batch {batch_no} was committed by another attempt") from None
        self._records[batch_no] = record

    def commit_manifest(self, runs_record: pa.RecordBatch, symbols_record: pa.RecordBatch) -> None:
        """Stage the run's `runs` row and its universe's `symbols` rows as batch 0; one staged before a kill
        is kept, as publishing may have begun."""
        if 0 not in self.committed():
            with self.batch(0) as manifest:
                manifest.write(SYMBOLS, symbols_record)
                manifest.write(RUNS, runs_record)

    def manifest_staged(self) -> bool:
        """Whether the run's manifest is staged: its publishing may have begun, and must be finished."""
        return 0 in self.committed()

    def parts(self) -> dict[str, list[str]]:
        """Every committed part's key by its table, in batch order."""
        by_table: dict[str, list[str]] = {}
        committed = sorted(self.committed())
        unread = [n for n in committed if n not in self._records]
        records = fetch_in_order(self.lake.store, [_record_key(self.prefix, n) for n in unread])
        self._records.update((n, json.loads(data)) for n, data in zip(unread, records, strict=True))
        for batch_no in committed:
            record = self._records[batch_no]
            for name in record["parts"]:
                by_table.setdefault(name, []).append(f"{record['attempt']}/{name}/{PART_NAME}")
        return by_table

    def read_each(self, table: Table) -> Iterator[pa.Table]:
        """Each committed batch's rows of a small table (`batches`, `failures`), one batch at a time: judging
        a run of 10,000 batches must not hold them all."""
        for data in fetch_in_order(self.lake.store, self.parts().get(table.name, [])):
            yield read_part(data, table)

    def discard(self) -> None:
        """Remove the run's staged objects: once it is published, or when another plan replaces it.

        Its plan goes first: a discard cut off midway leaves a run no collect can resume (a leftover without
        a plan is removed), never one whose commit records are gone and that would be fetched again."""
        plan_key = self.lake.staging_key(self.run_id, PLAN_NAME)
        self.lake.store.delete([plan_key])
        self.lake.store.delete(
            [key for key in self.lake.store.list_keys(f"{self.prefix}/") if key != plan_key]
        )


def _record_key(prefix: str, batch_no: int) -> str:
    return f"{prefix}/commits/{batch_no:06d}.json"


class BatchParts:
    """The parts of one batch being written: an Arrow IPC object per table, each written once."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.tables: list[str] = []
        self.staged: dict[str, bytes] = {}  # put together when the batch ends

    def write(self, table: Table, batch: pa.RecordBatch) -> None:
        """Write a batch's rows of a table (none: no part)."""
        if not batch.num_rows:
            return
        sink = pa.BufferOutputStream()
        # Arrow IPC, not Parquet: parts are read once, by the publisher, and Parquet's encoders would cost the
        # collector 3 MB of RSS and CPU for nothing.
        with pa.ipc.new_file(sink, file_schema(table)) as part_file:
            part_file.write_table(_to_schema(table, batch))
        key = f"{self.prefix}/{table.name}/{PART_NAME}"
        if key in self.staged:
            raise LakeError(f"{key} written twice in one batch; each part is written once")
        self.staged[key] = sink.getvalue().to_pybytes()
        self.tables.append(table.name)


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
    lake: Lake,
    plan: RunPlan,
    *,
    new_run_id: str,
    started_at: dt.datetime,
    finish: Callable[["RunStaging"], None],
    resume: bool = False,
) -> RunStaging:
    """The unfinished run of this plan, to resume; else a new one. A run of another plan cut off while it
    published is finished first (`finish` publishes it: its tables must not stay half written); the other
    leftovers go."""
    unfinished = [run for run, saved in _leftovers(lake) if _settle(run, saved, plan, finish)]
    if unfinished:
        run = unfinished[-1]
        log.info("resuming run %s: %d batches already committed", run.run_id, len(run.committed()))
        return run
    if resume:
        raise ConfigError(
            f"--resume: no unfinished run of this universe and settings in "
            f"{lake.store.url(lake.staging_key())}; run without --resume to start one"
        )
    return _create(lake, plan, new_run_id, started_at)


def load_run(lake: Lake, run_id: str) -> tuple[RunStaging, dict]:
    """A staged run from its plan.json, and the plan saved there."""
    saved = json.loads(lake.store.get(lake.staging_key(run_id, PLAN_NAME)))
    return RunStaging(lake, saved["run_id"], dt.datetime.fromisoformat(saved["started_at"])), saved["plan"]


def _leftovers(lake: Lake) -> list[tuple[RunStaging, dict]]:
    """Every run left in the staging area with its plan, oldest first; what has no readable plan goes."""
    runs, unreadable = [], []
    root = lake.staging_key("")
    keys = lake.store.list_keys(root)
    for name in sorted({key.removeprefix(root).partition("/")[0] for key in keys}):
        try:
            runs.append(load_run(lake, name))
        except (FileNotFoundError, ValueError, KeyError):
            unreadable += [key for key in keys if key.startswith(f"{root}{name}/")]
    lake.store.delete(unreadable)
    return runs


def _settle(run: RunStaging, saved: dict, plan: RunPlan, finish: Callable[[RunStaging], None]) -> bool:
    """Whether a leftover run is this plan's unfinished one; otherwise it is finished or removed."""
    if saved == _to_json(plan):
        return True
    if run.manifest_staged():
        log.info("finishing run %s: it was cut off while it published", run.run_id)
        finish(run)
    else:
        log.info(
            "discarding unfinished run %s: it collected another universe or with other settings", run.run_id
        )
        run.discard()
    return False


def _create(lake: Lake, plan: RunPlan, run_id: str, started_at: dt.datetime) -> RunStaging:
    saved = {"run_id": run_id, "started_at": started_at.isoformat(), "plan": _to_json(plan)}
    lake.store.put_new(lake.staging_key(run_id, PLAN_NAME), json.dumps(saved).encode())
    return RunStaging(lake, run_id, started_at)


def _to_json(plan: RunPlan) -> dict:
    return asdict(plan) | {"symbols": list(plan.symbols)}
