"""The run's own facts: run ids, and the rows of `batches`, `failures` and `runs` in their schemas."""

import datetime as dt
import os
import re
import socket

from conftest import run_record
from etl import metrics
from etl.fetch import FetchedBatch, Outcome
from etl.memory import MemoryCheck, MemorySample
from etl.plan import Batch
from etl.schema import BATCHES, FAILURES, RUNS
from etl.status import ErrorType, OutcomeKind, RunStatus

STARTED_AT = dt.datetime(2026, 11, 24, 21, 0, 0, 123456, tzinfo=dt.UTC)
OUTCOMES = [
    Outcome("AAPL", OutcomeKind.OK),
    Outcome("GONE", OutcomeKind.NO_DATA, ErrorType.NO_DATA, "delisted"),
    Outcome("MSFT", OutcomeKind.ERROR, "HTTP500", "chart: server error"),
]


def test_run_ids_sort_by_start_time_and_never_repeat():
    later = STARTED_AT + dt.timedelta(microseconds=1)
    assert re.fullmatch(r"20261124T210000123456Z-[0-9a-f]{6}", metrics.new_run_id(STARTED_AT))
    assert metrics.new_run_id(STARTED_AT) < metrics.new_run_id(later)
    assert len({metrics.new_run_id(STARTED_AT) for _ in range(200)}) == 200


def test_a_batch_row_counts_its_outcomes_and_carries_its_memory_readings():
    fetched = FetchedBatch(Batch(4, ("AAPL", "GONE", "MSFT")), STARTED_AT, 0.5, [], [], OUTCOMES)
    check = MemoryCheck(MemorySample(120.0, 90.0, 3.0), gc_ran=True, limit_mb=100.0)
    row = metrics.to_batch_metrics(
        fetched,
        run_id="r1",
        api_calls=5,
        write_s=0.01,
        rss_mb_before=110.0,
        check=check,
        bar_rows=500,
        quote_rows=1,
    )
    record = metrics.to_batches_record(row)
    assert record.schema == BATCHES.schema
    (values,) = record.to_pylist()
    assert values["batch_no"] == 4 and (values["n_symbols"], values["n_ok"], values["n_failed"]) == (3, 1, 2)
    assert (values["rss_mb_before"], values["rss_mb_after"], values["gc_ran"]) == (110.0, 120.0, True)
    assert (values["node_id"], values["pid"]) == (socket.gethostname(), os.getpid())


def test_failures_are_the_symbols_that_did_not_end_ok():
    record = metrics.to_failures_record("r1", 4, OUTCOMES)
    assert record.schema == FAILURES.schema
    assert [(r["symbol"], r["outcome"], r["error_type"]) for r in record.to_pylist()] == [
        ("GONE", "no_data", "NoData"),
        ("MSFT", "error", "HTTP500"),
    ]
    assert metrics.to_failures_record("r1", 4, OUTCOMES[:1]).num_rows == 0


def test_the_runs_row_stores_the_status_as_its_plain_string():
    run = run_record("r1", STARTED_AT, status=RunStatus.BELOW_MIN_SUCCESS, message="success rate 0.5")
    record = metrics.to_runs_record(run)
    assert record.schema == RUNS.schema
    assert record.to_pylist()[0]["status"] == "below_min_success"
