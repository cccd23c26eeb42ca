"""The collect job in one screen: universe → plan → source → transform → staging → lake, memory checked
between batches."""

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

from etl import metrics
from etl.config import LIVE_YAHOO_URL, Settings
from etl.errors import ConfigError
from etl.fetch import BatchFetcher
from etl.lake.holdings import read_refetch_from, refuse_legacy
from etl.lake.lock import LakeLock, lake_lock
from etl.lake.paths import Lake, open_lake
from etl.lake.publish import publish_in_child
from etl.lake.staging import RunPlan, RunStaging, open_run
from etl.lake.store import RUN_CUT_SHORT, failures_leave
from etl.memory import rss_mb
from etl.plan import Batch, plan_batches
from etl.run_steps import finish_run, judge, staged_api_calls, stop_reason, uncommitted, write_batch
from etl.source.rate import AdaptiveRate
from etl.source.yahoo import YahooSource
from etl.status import RunStatus
from etl.universe import Member, load_members

if TYPE_CHECKING:  # Ray is imported by a run on a cluster only
    from etl.cluster import Cluster


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


def _check_memory_limit(limit_mb: float) -> None:
    """A limit the process is already above would stop the run after its first batch: refuse it up front."""
    used_mb = rss_mb()
    if used_mb >= limit_mb:
        raise ConfigError(
            f"--memory-limit-mb {limit_mb:g} is below what the job uses before fetching anything "
            f"(RSS {used_mb:.0f} MB); give it at least {used_mb * 2:.0f}"
        )
