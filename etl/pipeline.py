"""The collect job in one screen: universe → plan → source → transform → sink, memory checked between batches."""

import datetime as dt
import time
from collections.abc import Callable

from etl import metrics, transform, validate
from etl.config import Settings
from etl.fetch import BatchFetcher, FetchedBatch, Outcome
from etl.memory import check_memory, sample_memory
from etl.plan import Batch, plan_batches
from etl.schema import BARS, BATCHES, FAILURES, QUARANTINE, QUOTES, RUNS
from etl.sink import RunWriter, lake_lock
from etl.source.yahoo import YahooSource
from etl.universe import load_universe

LIVE_YAHOO_URL = "https://query1.finance.yahoo.com"


def collect(settings: Settings, on_batch: Callable[[metrics.BatchMetrics], None] = lambda m: None) -> metrics.RunRecord:
    """Run the whole job once, as the lake's only writer, and return the run's manifest row."""
    symbols = load_universe(settings.universe_path)
    batches = plan_batches(symbols, settings.batch_size)
    started_at = dt.datetime.now(dt.timezone.utc)
    run_id = metrics.new_run_id(started_at)
    with lake_lock(settings.lake_dir, run_id):
        return _collect_locked(settings, symbols, batches, started_at, run_id, on_batch)


def _collect_locked(settings: Settings, symbols: list[str], batches: list[Batch], started_at: dt.datetime,
                    run_id: str, on_batch: Callable[[metrics.BatchMetrics], None]) -> metrics.RunRecord:
    source = YahooSource(
        base_url=settings.yahoo_url, history=settings.history,
        concurrency=settings.concurrency, timeout_s=settings.timeout_s,
    )
    writer = RunWriter(settings.lake_dir, run_id, started_at.date(), row_group_rows=settings.row_group_rows)
    try:
        status, message = _write_batches(batches, source, writer, settings, run_id, on_batch)
        run = metrics.RunRecord(
            run_id=run_id, started_at=started_at, finished_at=dt.datetime.now(dt.timezone.utc),
            status=status, message=message, n_symbols=len(symbols), n_batches=len(batches),
            batch_size=settings.batch_size, api_calls=source.counter.total,
            source_url=_source_url(settings), settings=settings.to_json(),
        )
        writer.write(RUNS, metrics.to_runs_record(run))
        writer.publish()
    except BaseException:
        writer.discard()
        raise
    return run


def _write_batches(batches: list[Batch], source: YahooSource, writer: RunWriter, settings: Settings, run_id: str,
                   on_batch: Callable[[metrics.BatchMetrics], None]) -> tuple[str, str | None]:
    """Fetch and write every batch; the run's status, and why when it is not `succeeded`."""
    fetcher = BatchFetcher(source, settings.concurrency, settings.batch_size)
    n_done, n_ok, errors = 0, 0, []
    try:
        for fetched in fetcher.fetch_all(batches):
            batch_metrics, check = _write_batch(fetched, writer, source, settings, run_id)
            on_batch(batch_metrics)
            n_done += batch_metrics.n_symbols
            n_ok += batch_metrics.n_ok
            errors += [o for o in fetched.outcomes if o.outcome == "error"]
            if check.over_limit:
                return "memory_limit", check.describe()
    finally:
        fetcher.close()
    return _judge(settings, n_done, n_ok, errors)


def _judge(settings: Settings, n_done: int, n_ok: int, errors: list[Outcome]) -> tuple[str, str | None]:
    """A finished run's status: an outage when nothing came or Yahoo was blocking, short of --min-success, or fine."""
    if errors and (n_ok == 0 or any(o.error_type == "NoDataWave" for o in errors)):
        first = next((o for o in errors if o.error_type == "NoDataWave"), errors[0])
        return "source_outage", (
            f"source outage at {_source_url(settings)}: {n_ok} of {n_done} symbols collected "
            f"({first.error_type}: {first.message})"
        )
    if n_done and n_ok / n_done < settings.min_success:
        return "below_min_success", (
            f"success rate {n_ok / n_done:.3f} ({n_ok} of {n_done} symbols) is under --min-success "
            f"{settings.min_success}; the failures table says why each one failed"
        )
    return "succeeded", None


def _source_url(settings: Settings) -> str:
    return settings.yahoo_url or LIVE_YAHOO_URL


def _write_batch(fetched: FetchedBatch, writer: RunWriter, source: YahooSource, settings: Settings, run_id: str):
    """Transform one fetched batch, append it to the run's files, then check memory."""
    before = sample_memory()
    started = time.perf_counter()
    bars, bad_bars = validate.split_bars(transform.to_bars(run_id, fetched.charts))
    quotes, bad_quotes = validate.split_quotes(transform.to_quotes(run_id, fetched.quotes))
    writer.write(BARS, bars)
    writer.write(QUOTES, quotes)
    writer.write(QUARANTINE, bad_bars)
    writer.write(QUARANTINE, bad_quotes)
    writer.write(FAILURES, metrics.to_failures_record(run_id, fetched.batch.batch_no, fetched.outcomes))
    write_s = time.perf_counter() - started
    check = check_memory(settings.memory_limit_mb, writer.flush)
    batch_metrics = metrics.to_batch_metrics(
        fetched, run_id=run_id, api_calls=source.counter.for_batch(fetched.batch.batch_no),
        write_s=write_s, before=before, check=check, bar_rows=bars.num_rows, quote_rows=quotes.num_rows,
    )
    writer.write(BATCHES, metrics.to_batches_record(batch_metrics))
    return batch_metrics, check
