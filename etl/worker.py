"""One batch in a worker process of a Ray cluster: the fetch, transform, validate and commit of a run on one
machine (etl/run_steps.py's `write_batch`), through the process's one Yahoo source, made at its first batch.

Nothing here imports Ray: etl/cluster.py runs `run_batch` as a Ray task and hands it its node's rate, and the
tests run it in their own process.
"""

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from etl.config import Settings
from etl.fetch import BatchFetcher, Outcome
from etl.lake.paths import open_lake
from etl.lake.staging import BatchCommitted, RunStaging
from etl.memory import MemoryCheck, check_memory
from etl.metrics import BatchMetrics
from etl.plan import Batch
from etl.run_steps import write_batch
from etl.source.rate import Rate
from etl.source.yahoo import YahooSource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunTarget:
    """What every batch of a run shares: its settings and the run it is staged in."""

    settings: Settings
    run_id: str
    started_at: dt.datetime


@dataclass(frozen=True)
class BatchResult:
    """What a batch hands back to the driver: its metrics (None when another attempt committed it first), the
    memory check after it and its symbols' outcomes, from which the driver judges whether to go on; and when
    (Unix seconds) the task's function began and ended, and its process's task before it ended (None: the
    process's first), from which the driver tells Ray's overhead from the batch's own time."""

    batch_no: int
    metrics: BatchMetrics | None
    check: MemoryCheck
    outcomes: list[Outcome]
    began_s: float
    ended_s: float
    previous_ended_s: float | None


class _Worker:
    """A process's source, fetcher and staging, for the batches of one run."""

    def __init__(self, target: RunTarget, rate: Rate) -> None:
        settings = target.settings
        self.target = target
        self.source = YahooSource(
            proxy=settings.proxy,
            ca_bundle=settings.ca_bundle,
            history=settings.history,
            timeout_s=settings.timeout_s,
            rate=rate,
        )
        self.fetcher = BatchFetcher(self.source, settings.concurrency, settings.batch_size)
        self.staging = RunStaging(open_lake(settings.lake), target.run_id, target.started_at)
        # When this process's last batch ended (Unix seconds): until then it was busy, not waiting on Ray.
        self.last_ended_s: float | None = None

    def close(self) -> None:
        self.fetcher.close()
        self.source.close()


# The process's worker: Yahoo's cookie and crumb handshake is made once a process, not once a batch.
_worker: _Worker | None = None


def run_batch(
    target: RunTarget, batch: Batch, since: dict[str, dt.date], new_rate: Callable[[], Rate]
) -> BatchResult:
    """Fetch one batch (`since`: where its symbols' bars start) and commit it whole; a batch another attempt
    committed first is reported so, and counted once."""
    began_s = time.time()
    worker = _worker_for(target, new_rate)
    worker.source.start_from(since)
    fetched = next(worker.fetcher.fetch_all([batch]))
    metrics: BatchMetrics | None
    try:
        metrics, check = write_batch(fetched, worker.staging, worker.source, target.settings)
    except BatchCommitted as exc:
        log.info("%s", exc)
        metrics, check = None, check_memory(target.settings.memory_limit_mb)
    previous_ended_s, worker.last_ended_s = worker.last_ended_s, time.time()
    return BatchResult(
        batch.batch_no, metrics, check, fetched.outcomes, began_s, worker.last_ended_s, previous_ended_s
    )


def _worker_for(target: RunTarget, new_rate: Callable[[], Rate]) -> _Worker:
    global _worker
    if _worker is None or _worker.target != target:
        if _worker is not None:
            _worker.close()
        _worker = _Worker(target, new_rate())
    return _worker
