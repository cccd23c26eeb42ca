"""The run's own facts as record batches for the `runs`, `batches` and `failures` tables."""

import datetime as dt
import os
import secrets
import socket
import sys
from dataclasses import asdict, dataclass

import pyarrow as pa

from etl.fetch import FetchedBatch, Outcome
from etl.memory import MemoryCheck
from etl.schema import BATCHES, FAILURES, RUNS
from etl.status import OutcomeKind, RunStatus


def new_run_id(started_at: dt.datetime) -> str:
    """A run id that sorts by start time and never repeats: 20261124T062250123456Z-3fa9c1."""
    return f"{started_at:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class BatchMetrics:
    """One row of the `batches` table."""

    run_id: str
    batch_no: int
    n_symbols: int
    n_ok: int
    n_failed: int
    api_calls: int
    started_at: dt.datetime
    fetch_s: float
    write_s: float
    rss_mb_before: float
    rss_mb_after: float
    uss_mb_after: float
    arrow_mb_after: float
    gc_ran: bool
    bar_rows: int
    quote_rows: int
    node_id: str
    pid: int


def to_batch_metrics(
    fetched: FetchedBatch,
    *,
    run_id: str,
    api_calls: int,
    write_s: float,
    rss_mb_before: float,
    check: MemoryCheck,
    bar_rows: int,
    quote_rows: int,
) -> BatchMetrics:
    """The metrics of a fetched and written batch."""
    n_ok = sum(o.outcome is OutcomeKind.OK for o in fetched.outcomes)
    return BatchMetrics(
        run_id=run_id,
        batch_no=fetched.batch.batch_no,
        n_symbols=len(fetched.batch.symbols),
        n_ok=n_ok,
        n_failed=len(fetched.outcomes) - n_ok,
        api_calls=api_calls,
        started_at=fetched.started_at,
        fetch_s=fetched.fetch_s,
        write_s=write_s,
        rss_mb_before=rss_mb_before,
        rss_mb_after=check.sample.rss_mb,
        uss_mb_after=check.sample.uss_mb,
        arrow_mb_after=check.sample.arrow_mb,
        gc_ran=check.gc_ran,
        bar_rows=bar_rows,
        quote_rows=quote_rows,
        node_id=this_node_id(),
        pid=os.getpid(),
    )


def this_node_id() -> str:
    """The Ray node's id in a Ray worker, which names its Yahoo budget too (etl/cluster.py); else the host's
    name. Read from a loaded ray only: a run on one machine never imports it."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return ray.get_runtime_context().get_node_id()
    return socket.gethostname()


def to_batches_record(metrics: BatchMetrics) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([asdict(metrics)], schema=BATCHES.schema)


def to_failures_record(run_id: str, batch_no: int, outcomes: list[Outcome]) -> pa.RecordBatch:
    """Every symbol of the batch that did not end ok."""
    rows = [
        {"run_id": run_id, "batch_no": batch_no, **asdict(o)}
        for o in outcomes
        if o.outcome is not OutcomeKind.OK
    ]
    return pa.RecordBatch.from_pylist(rows, schema=FAILURES.schema)


@dataclass(frozen=True)
class RunRecord:
    """One row of the `runs` table: the run's manifest, written last."""

    run_id: str
    started_at: dt.datetime
    finished_at: dt.datetime
    status: RunStatus
    message: str | None
    n_symbols: int
    n_batches: int
    batch_size: int
    api_calls: int
    source_url: str
    settings: str


def to_runs_record(run: RunRecord) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([asdict(run)], schema=RUNS.schema)
