"""The collect job in one screen: universe → plan → source → transform → staging → lake, memory checked
between batches."""

import datetime as dt
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from etl import metrics, transform, validate
from etl.config import Settings
from etl.errors import ConfigError, SchemaError
from etl.fetch import BatchFetcher, FetchedBatch, Outcome
from etl.lake.holdings import read_refetch_from, refuse_legacy
from etl.lake.lock import LakeLock, lake_lock
from etl.lake.paths import Lake, open_lake
from etl.lake.publish import publish_in_child
from etl.lake.staging import RunPlan, RunStaging, open_run
from etl.lake.store import RUN_CUT_SHORT, failures_leave
from etl.memory import MemoryCheck, check_memory, rss_mb
from etl.plan import Batch, plan_batches
from etl.schema import BARS, BATCHES, DIVIDENDS, FAILURES, QUARANTINE, QUOTES, SPLITS
from etl.source.rate import AdaptiveRate
from etl.source.yahoo import YahooSource
from etl.status import ErrorType, OutcomeKind, RunStatus
from etl.universe import Member, load_members

if TYPE_CHECKING:  # Ray is imported by a run on a cluster only
    from etl.cluster import Cluster

LIVE_YAHOO_URL = "https://query1.finance.yahoo.com"


def collect(
    settings: Settings,
    on_batch: Callable[[metrics.BatchMetrics], None] = lambda m: None,
    cluster: "Cluster | None" = None,
) -> metrics.RunRecord:
    """Run the whole job once, as the lake's only writer, and return the run's manifest row; the batches run
    in this process, or on a connected Ray cluster (etl/cluster.py).

    A run cut off before it published (killed, disk full) is resumed by the next run of the same plan.
    """
    members = load_members(settings.universe_path)
    symbols = [member.symbol for member in members]
    batches = plan_batches(symbols, settings.batch_size)
    _check_memory_limit(settings.memory_limit_mb)
    started_at = dt.datetime.now(dt.UTC)
    lake = open_lake(settings.lake)
    with lake_lock(lake, lease_s=settings.lock_lease_s) as lock, failures_leave(RUN_CUT_SHORT):
        refuse_legacy(lake)
        since = _since(settings, lake, symbols)
        plan = RunPlan(
            tuple(symbols),
            settings.batch_size,
            settings.history,
            LIVE_YAHOO_URL,
            {symbol: day.isoformat() for symbol, day in since.items()},
        )
        staging = open_run(
            lake,
            plan,
            new_run_id=metrics.new_run_id(started_at),
            started_at=started_at,
            finish=lambda run: publish_in_child(
                run, row_group_rows=settings.row_group_rows, pass_fds=lock.pass_fds
            ),
            resume=settings.resume,
        )
        if cluster is not None:
            return cluster.collect_staged(
                settings, staging, batches, since, on_batch, members=members, lock=lock
            )
        source = YahooSource(
            proxy=settings.proxy,
            ca_bundle=settings.ca_bundle,
            history=settings.history,
            since=since,
            timeout_s=settings.timeout_s,
            rate=AdaptiveRate(max_rps=settings.max_rps),
        )
        try:
            return _collect_staged(settings, staging, source, batches, on_batch, members=members, lock=lock)
        finally:
            source.close()


def _since(settings: Settings, lake: Lake, symbols: list[str]) -> dict[str, dt.date]:
    """Where each symbol's bars start: after what the lake holds, less the revision window; new ones get
    --history."""
    if settings.full_refresh:
        return {}
    held = read_refetch_from(lake, settings.revision_days)
    return {symbol: held[symbol] for symbol in symbols if symbol in held}


def _collect_staged(
    settings: Settings,
    staging: RunStaging,
    source: YahooSource,
    batches: list[Batch],
    on_batch: Callable[[metrics.BatchMetrics], None],
    *,
    members: list[Member],
    lock: LakeLock,
) -> metrics.RunRecord:
    earlier_calls = staged_api_calls(staging)
    todo = uncommitted(staging, batches)
    status, message = _write_batches(todo, source, staging, settings, on_batch, lock)
    api_calls = earlier_calls + source.counter.total
    return finish_run(
        settings, staging, batches, status, message, api_calls=api_calls, members=members, lock=lock
    )


def staged_api_calls(staging: RunStaging) -> int:
    """The requests of the run's batches committed so far: a resumed run counts its earlier attempts'."""
    return sum(pc.sum(part.column("api_calls")).as_py() or 0 for part in staging.read_each(BATCHES))


def uncommitted(staging: RunStaging, batches: list[Batch]) -> list[Batch]:
    """The batches still to run: all of a new run, those a killed run did not commit."""
    committed = staging.committed()
    return [batch for batch in batches if batch.batch_no not in committed]


def finish_run(
    settings: Settings,
    staging: RunStaging,
    batches: list[Batch],
    status: RunStatus,
    message: str | None,
    *,
    api_calls: int,
    members: list[Member],
    lock: LakeLock,
) -> metrics.RunRecord:
    """Stage the run's manifest, with its universe's members, and publish the run in a child process, manifest
    last."""
    run = metrics.RunRecord(
        run_id=staging.run_id,
        started_at=staging.started_at,
        finished_at=dt.datetime.now(dt.UTC),
        status=status,
        message=message,
        n_symbols=sum(len(b.symbols) for b in batches),
        n_batches=len(batches),
        batch_size=settings.batch_size,
        api_calls=api_calls,
        source_url=LIVE_YAHOO_URL,
        settings=settings.to_json(),
    )
    lock.check()
    staging.commit_manifest(metrics.to_runs_record(run), transform.to_symbols(run.run_id, members))
    publish_in_child(staging, row_group_rows=settings.row_group_rows, pass_fds=lock.pass_fds)
    return run


def _write_batches(
    batches: list[Batch],
    source: YahooSource,
    staging: RunStaging,
    settings: Settings,
    on_batch: Callable[[metrics.BatchMetrics], None],
    lock: LakeLock,
) -> tuple[RunStatus, str | None]:
    """Fetch and commit every batch; the run's status, and why when it is not `succeeded`."""
    fetcher = BatchFetcher(source, settings.concurrency, settings.batch_size)
    try:
        for n_fetched, fetched in enumerate(fetcher.fetch_all(batches), start=1):
            lock.check()
            batch_metrics, check = write_batch(fetched, staging, source, settings)
            on_batch(batch_metrics)
            stop = stop_reason(check, fetched.outcomes, first=n_fetched == 1)
            if stop is not None:
                return stop
    finally:
        fetcher.close()
    return judge(settings, staging)


def stop_reason(check: MemoryCheck, outcomes: list[Outcome], *, first: bool) -> tuple[RunStatus, str] | None:
    """Why the run stops after this batch, if it does: memory over the limit, or Yahoo refusing the client."""
    if check.over_limit:
        return RunStatus.MEMORY_LIMIT, check.describe()
    if first and _refused_outright(outcomes):
        return RunStatus.SOURCE_OUTAGE, _describe_refusal(outcomes)
    return None


def _refused_outright(outcomes: list[Outcome]) -> bool:
    """Not one symbol of the batch answered, not even 'not found': Yahoo refuses the client, or cannot be
    reached."""
    return bool(outcomes) and all(o.outcome is OutcomeKind.ERROR for o in outcomes)


def _describe_refusal(outcomes: list[Outcome]) -> str:
    """Why a run stops after its first batch, and what to check, in one line."""
    first = outcomes[0]
    if any(o.error_type in (ErrorType.RATE_LIMITED, ErrorType.YF_RATE_LIMITED) for o in outcomes):
        return (
            f"source outage: Yahoo is refusing this client, every symbol of the first batch was answered "
            f"429 Too Many Requests ({first.symbol}: {first.message}); "
            f"check the route (--proxy, HTTPS_PROXY), "
            f"the TLS fingerprint (curl_cffi impersonating Chrome) and the rate (--concurrency)"
        )
    return f"source outage: no symbol of the first batch could be fetched ({first.symbol}: {first.message})"


def judge(settings: Settings, staging: RunStaging) -> tuple[RunStatus, str | None]:
    """A finished run's status: an outage when nothing came or Yahoo was blocking, short of --min-success, or
    fine."""
    n_done = n_ok = 0
    for part in staging.read_each(BATCHES):
        n_done += pc.sum(part.column("n_symbols")).as_py() or 0
        n_ok += pc.sum(part.column("n_ok")).as_py() or 0
    errors = [
        Outcome(**row | {"outcome": OutcomeKind(row["outcome"])})
        for part in staging.read_each(FAILURES)
        for row in part.filter(pc.equal(part.column("outcome"), OutcomeKind.ERROR.value))
        .drop_columns(["run_id", "batch_no"])
        .to_pylist()
    ]
    if errors and (n_ok == 0 or any(o.error_type == ErrorType.NO_DATA_WAVE for o in errors)):
        first = next((o for o in errors if o.error_type == ErrorType.NO_DATA_WAVE), errors[0])
        return RunStatus.SOURCE_OUTAGE, (
            f"source outage at {LIVE_YAHOO_URL}: {n_ok} of {n_done} symbols collected "
            f"({first.error_type}: {first.message})"
        )
    if n_done and n_ok / n_done < settings.min_success:
        return RunStatus.BELOW_MIN_SUCCESS, (
            f"success rate {n_ok / n_done:.3f} ({n_ok} of {n_done} symbols) is under --min-success "
            f"{settings.min_success}; the failures table says why each one failed"
        )
    return RunStatus.SUCCEEDED, None


def _check_memory_limit(limit_mb: float) -> None:
    """A limit the process is already above would stop the run after its first batch: refuse it up front."""
    used_mb = rss_mb()
    if used_mb >= limit_mb:
        raise ConfigError(
            f"--memory-limit-mb {limit_mb:g} is below what the job uses before fetching anything "
            f"(RSS {used_mb:.0f} MB); give it at least {used_mb * 2:.0f}"
        )


def write_batch(fetched: FetchedBatch, staging: RunStaging, source: YahooSource, settings: Settings):
    """Transform one fetched batch and commit it whole, with its metrics and the memory check after it."""
    rss_mb_before = rss_mb()
    started = time.perf_counter()
    run_id, batch_no = staging.run_id, fetched.batch.batch_no
    try:
        bars, bad_bars = validate.split_bars(transform.to_bars(run_id, fetched.charts))
        quotes, bad_quotes = validate.split_quotes(transform.to_quotes(run_id, fetched.quotes))
        dividends, bad_dividends = validate.split_dividends(transform.to_dividends(run_id, fetched.charts))
        splits, bad_splits = validate.split_splits(transform.to_splits(run_id, fetched.charts))
    except SchemaError as exc:
        raise SchemaError(
            f"batch {batch_no}: {exc}; the batches committed before it are kept for a rerun to resume"
        ) from exc
    with staging.batch(batch_no) as parts:
        parts.write(BARS, bars)
        parts.write(QUOTES, quotes)
        parts.write(DIVIDENDS, dividends)
        parts.write(SPLITS, splits)
        parts.write(QUARANTINE, pa.concat_batches([bad_bars, bad_quotes, bad_dividends, bad_splits]))
        parts.write(FAILURES, metrics.to_failures_record(run_id, batch_no, fetched.outcomes))
        write_s = time.perf_counter() - started
        check = check_memory(settings.memory_limit_mb)
        batch_metrics = metrics.to_batch_metrics(
            fetched,
            run_id=run_id,
            api_calls=source.counter.for_batch(batch_no),
            write_s=write_s,
            rss_mb_before=rss_mb_before,
            check=check,
            bar_rows=bars.num_rows,
            quote_rows=quotes.num_rows,
        )
        parts.write(BATCHES, metrics.to_batches_record(batch_metrics))
    return batch_metrics, check
