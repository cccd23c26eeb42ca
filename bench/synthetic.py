"""Synthetic runs, staged as the collector stages them: 10-symbol batches of bars, quotes and `batches` rows,
then the run's manifest (etl/lake/staging.py), for benchmarks that need a lake of a given size without the
emulator. Bars are random prices on weekdays, a run's started_at 22:00 UTC of its last bar's day."""

import datetime as dt
import os

import numpy as np
import pyarrow as pa

from etl import metrics, transform
from etl.config import DEFAULT_UNIVERSE_PATH, Settings
from etl.lake.paths import Lake
from etl.lake.staging import RunPlan, RunStaging, open_run
from etl.schema import BARS, BATCHES, QUOTES
from etl.status import RunStatus
from etl.universe import Member, load_members


def universe(size: int) -> list[str]:
    """The default universe's stocks, then made-up ones up to size: the benchmarks are left out, so the rows
    stay those of the figures measured before they joined (257 stocks, a year of sessions each)."""
    symbols = [m.symbol for m in load_members(DEFAULT_UNIVERSE_PATH) if not m.benchmark][:size]
    return symbols + [f"SYN{i:05d}" for i in range(size - len(symbols))]


def weekdays_to(last: dt.date, n: int) -> list[dt.date]:
    """The n weekdays up to and including `last`, oldest first."""
    days = [last - dt.timedelta(days=back) for back in range(2 * n + 7)]
    return sorted(day for day in days if day.weekday() < 5)[-n:]


def next_weekday(day: dt.date) -> dt.date:
    return next(d for d in (day + dt.timedelta(days=k) for k in range(1, 4)) if d.weekday() < 5)


def bars_of(run_id: str, symbols: list[str], days: list[dt.date], rng: np.random.Generator) -> pa.RecordBatch:
    n = len(symbols) * len(days)
    close = 20 + 200 * rng.random(n)
    return pa.RecordBatch.from_pydict(
        {
            "run_id": [run_id] * n,
            "symbol": np.repeat(symbols, len(days)),
            "date": pa.array(np.tile(np.array(days, "datetime64[D]"), len(symbols))).cast(pa.date32()),
            "open": close * 0.99,
            "high": close * 1.01,
            "low": close * 0.98,
            "close": close,
            "adj_close": close,
            "volume": rng.integers(1_000, 10_000_000, n),
        },
        schema=BARS.schema,
    )


def quotes_of(run_id: str, symbols: list[str], at: dt.datetime) -> pa.RecordBatch:
    n = len(symbols)
    prices = [100.0] * n
    columns: dict[str, list] = {"run_id": [run_id] * n, "symbol": symbols, "name": symbols}
    columns["currency"] = ["USD"] * n
    columns |= {"exchange": ["NMS"] * n, "exchange_tz": ["America/New_York"] * n, "quote_time": [at] * n}
    columns |= {name: prices for name in ("price", "open", "day_high", "day_low", "previous_close")}
    columns |= {"volume": [1_000_000] * n, "market_cap": [10**10] * n, "quote_type": ["EQUITY"] * n}
    return pa.RecordBatch.from_pydict(columns, schema=QUOTES.schema)


def batch_row(run_id: str, batch_no: int, n_symbols: int, at: dt.datetime, bar_rows: int) -> pa.RecordBatch:
    figures = dict(fetch_s=0.5, write_s=0.01, rss_mb_before=140.0, rss_mb_after=140.0, uss_mb_after=130.0)
    return metrics.to_batches_record(
        metrics.BatchMetrics(
            run_id=run_id,
            batch_no=batch_no,
            n_symbols=n_symbols,
            n_ok=n_symbols,
            n_failed=0,
            api_calls=n_symbols + 1,
            started_at=at,
            **figures,
            arrow_mb_after=1.0,
            gc_ran=False,
            bar_rows=bar_rows,
            quote_rows=n_symbols,
            node_id="bench",
            pid=os.getpid(),
        )
    )


def _no_leftover(run: RunStaging) -> None:
    raise RuntimeError(f"run {run.run_id} was left in the staging area by an earlier bench")


def stage_run(lake: Lake, symbols: list[str], days: list[dt.date], seed: int) -> RunStaging:
    """A run that fetched these days' bars of the symbols, staged whole with its manifest, at 22:00 UTC of the
    last day."""
    started_at = dt.datetime.combine(days[-1], dt.time(22), dt.UTC)
    run_id, batch_size, rng = metrics.new_run_id(started_at), Settings.batch_size, np.random.default_rng(seed)
    since = {symbol: days[0].isoformat() for symbol in symbols}
    plan = RunPlan(tuple(symbols), batch_size, "1y", "synthetic", since)
    staging = open_run(lake, plan, new_run_id=run_id, started_at=started_at, finish=_no_leftover)
    for batch_no, start in enumerate(range(0, len(symbols), batch_size), start=1):
        batch = symbols[start : start + batch_size]
        bars = bars_of(run_id, batch, days, rng)
        with staging.batch(batch_no) as parts:
            parts.write(BARS, bars)
            parts.write(QUOTES, quotes_of(run_id, batch, started_at))
            parts.write(BATCHES, batch_row(run_id, batch_no, len(batch), started_at, bars.num_rows))
    record = metrics.RunRecord(
        run_id=run_id,
        started_at=started_at,
        finished_at=started_at,
        status=RunStatus.SUCCEEDED,
        message=None,
        n_symbols=len(symbols),
        n_batches=batch_no,
        batch_size=batch_size,
        api_calls=len(symbols) + batch_no,
        source_url="synthetic",
        settings="{}",
    )
    staging.commit_manifest(
        metrics.to_runs_record(record), transform.to_symbols(run_id, [Member(s) for s in symbols])
    )
    return staging
