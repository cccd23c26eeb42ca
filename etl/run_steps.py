"""The steps of a run that both ways of running it share, in one process (etl/pipeline.py) or on a Ray
cluster (etl/cluster.py): commit a fetched batch with its metrics, decide whether to stop after it, judge and
finish the run."""

import datetime as dt
import time

import pyarrow as pa
import pyarrow.compute as pc

from etl import metrics, transform, validate
from etl.config import LIVE_YAHOO_URL, Settings
from etl.errors import SchemaError
from etl.fetch import FetchedBatch, Outcome
from etl.lake.lock import LakeLock
from etl.lake.publish import publish_in_child
from etl.lake.staging import RunStaging
from etl.memory import MemoryCheck, check_memory, rss_mb
from etl.plan import Batch
from etl.schema import BARS, BATCHES, DIVIDENDS, FAILURES, QUARANTINE, QUOTES, SPLITS
from etl.source.yahoo import YahooSource
from etl.status import ErrorType, OutcomeKind, RunStatus
from etl.universe import Member


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
