"""Fetching batches through a bounded pool: the next batches' requests run while the last one is written."""

import datetime as dt
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import cast

from etl.plan import Batch
from etl.source.yahoo import Answer, YahooSource
from etl.status import ErrorType, OutcomeKind


@dataclass(frozen=True)
class Outcome:
    """How one requested symbol ended: ok, no_data or error (with the type and message of the error)."""

    symbol: str
    outcome: OutcomeKind
    error_type: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class FetchedBatch:
    """Everything Yahoo answered for one batch, with an outcome for every symbol."""

    batch: Batch
    started_at: dt.datetime
    fetch_s: float
    charts: list[tuple[str, dict]]
    quotes: list[dict]
    outcomes: list[Outcome]


class BatchFetcher:
    """Keeps a few batches' requests in flight on a shared pool and hands batches back in order."""

    def __init__(self, source: YahooSource, concurrency: int, batch_size: int) -> None:
        self._source = source
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="fetch")
        # Enough queued requests to keep every worker busy while the main thread writes, and no more.
        self._window = max(2, -(-2 * concurrency // batch_size) + 1)

    def fetch_all(self, batches: Iterable[Batch]) -> Iterator[FetchedBatch]:
        """Yield every batch fetched, in plan order."""
        upcoming = iter(batches)
        in_flight = deque(
            self._submit(batch) for _, batch in zip(range(self._window), upcoming, strict=False)
        )
        while in_flight:
            pending = in_flight.popleft()
            next_batch = next(upcoming, None)
            if next_batch is not None:
                in_flight.append(self._submit(next_batch))
            yield _collect(*pending)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, batch: Batch) -> tuple[Batch, dt.datetime, float, Future, list[Future]]:
        started_at, started = dt.datetime.now(dt.UTC), time.perf_counter()
        quotes = self._pool.submit(self._source.fetch_quotes, batch.batch_no, batch.symbols)
        charts = [self._pool.submit(self._source.fetch_chart, batch.batch_no, s) for s in batch.symbols]
        return batch, started_at, started, quotes, charts


def _collect(
    batch: Batch, started_at: dt.datetime, started: float, quotes: Future, charts: list[Future]
) -> FetchedBatch:
    quote_answer: Answer = quotes.result()
    chart_answers: list[Answer] = [future.result() for future in charts]
    fetch_s = max(answer.done_at for answer in [quote_answer, *chart_answers]) - started
    quotes_by_symbol = (
        {} if quote_answer.is_error else {q.get("symbol"): q for q in cast(list, quote_answer.payload)}
    )
    outcomes = _distrust_waves(
        [
            _outcome(symbol, chart, quotes_by_symbol.get(symbol), quote_answer)
            for symbol, chart in zip(batch.symbols, chart_answers, strict=True)
        ]
    )
    return FetchedBatch(
        batch=batch,
        started_at=started_at,
        fetch_s=fetch_s,
        charts=[
            (s, cast(dict, a.payload))
            for s, a in zip(batch.symbols, chart_answers, strict=True)
            if not a.is_error
        ],
        quotes=[quotes_by_symbol[s] for s in batch.symbols if s in quotes_by_symbol],
        outcomes=outcomes,
    )


def _outcome(symbol: str, chart: Answer, quote: dict | None, quote_answer: Answer) -> Outcome:
    """ok needs both bars and a quote; no_data is Yahoo knowing nothing of the symbol; anything else is an
    error."""
    if not chart.is_error and quote is not None:
        return Outcome(symbol, OutcomeKind.OK)
    if chart.error_type == ErrorType.NO_DATA and quote is None and not quote_answer.is_error:
        return Outcome(symbol, OutcomeKind.NO_DATA, ErrorType.NO_DATA, chart.message)
    if chart.is_error:
        return Outcome(symbol, OutcomeKind.ERROR, chart.error_type, f"chart: {chart.message}")
    if quote_answer.is_error:
        return Outcome(symbol, OutcomeKind.ERROR, quote_answer.error_type, f"quote: {quote_answer.message}")
    return Outcome(
        symbol,
        OutcomeKind.ERROR,
        ErrorType.QUOTE_MISSING,
        "chart answered but the quote request did not include the symbol",
    )


# Yahoo answers "possibly delisted" for symbols it knows while it blocks a client; real delistings are rare.
WAVE_MIN_SYMBOLS = 3


def _distrust_waves(outcomes: list[Outcome]) -> list[Outcome]:
    """Half a batch or more 'not found' at once is a blocking wave, an error, not a batch of delistings."""
    no_data = [o for o in outcomes if o.outcome is OutcomeKind.NO_DATA]
    if len(no_data) < max(WAVE_MIN_SYMBOLS, len(outcomes) / 2):
        return outcomes
    message = (
        f"{len(no_data)} of {len(outcomes)} symbols of this batch answered 'not found' at once;"
        " not trusted as delisted"
    )
    return [
        Outcome(o.symbol, OutcomeKind.ERROR, ErrorType.NO_DATA_WAVE, f"{message} ({o.message})")
        if o.outcome is OutcomeKind.NO_DATA
        else o
        for o in outcomes
    ]
