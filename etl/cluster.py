"""`collect --ray`: the run's batches as Ray tasks on a cluster, one Yahoo budget per node, one lake.

This process is the driver: it plans, holds the lake's lock, opens the run's staging, judges the run and
publishes it, manifest last, as a run on one machine does (etl/pipeline.py). Each batch is a task running
etl/worker.py's `run_batch` (fetch, transform, validate, commit whole), a bounded number in flight, paced by
its node's Yahoo budget (etl/node_budget.py).

Imported by `collect --ray` only: a run on one machine never loads Ray.
"""

import datetime as dt
import functools
import itertools
import logging
import os
import socket
import statistics
import sys
import time
from array import array
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

from etl import run_steps
from etl.config import (
    RAY_BATCHES_PER_CPU,
    RAY_CONNECT_TIMEOUT_S,
    RAY_FORWARDED_ENV,
    RAY_NAMESPACE,
    RAY_TASK_RETRIES,
    Settings,
)
from etl.errors import ClusterError, ConfigError, EtlError
from etl.lake.lock import LakeLock
from etl.lake.staging import RunStaging
from etl.metrics import BatchMetrics, RunRecord
from etl.plan import Batch
from etl.status import RunStatus
from etl.universe import Member
from etl.worker import BatchResult, RunTarget, run_batch

try:
    import ray
except ImportError as exc:
    raise ConfigError(
        f"--ray: Ray is not installed for {sys.executable}; pip install 'market-voices-etl[ray]', "
        "or leave --ray out to run on this machine"
    ) from exc

from etl.node_budget import node_rate, start_budgets  # noqa: E402 (after Ray's own import error)

log = logging.getLogger(__name__)
_run_batch = ray.remote(num_cpus=1, max_retries=RAY_TASK_RETRIES)(run_batch)


class Cluster:
    """A connected Ray cluster that runs a collect's batches."""

    def collect_staged(
        self,
        settings: Settings,
        staging: RunStaging,
        batches: list[Batch],
        since: dict[str, dt.date],
        on_batch: Callable[[BatchMetrics], None],
        *,
        members: list[Member],
        lock: LakeLock,
    ) -> RunRecord:
        """Run the uncommitted batches on the cluster, then finish the run as one machine does."""
        budgets = start_budgets(settings.max_rps)
        target = ray.put(RunTarget(settings, staging.run_id, staging.started_at))
        new_rate = functools.partial(node_rate, settings.max_rps)
        tasks = (
            _run_batch.remote(target, batch, {s: since[s] for s in batch.symbols if s in since}, new_rate)
            for batch in run_steps.uncommitted(staging, batches)
        )
        stops: list[tuple[RunStatus, str]] = []  # why the run stopped early: memory, or Yahoo refusing it
        overheads = Overheads()
        results = gather_bounded(tasks, _in_flight(), go_on=lambda: not stops)
        for n_done, (submitted_s, result) in enumerate(results, start=1):
            overheads.add(submitted_s, time.time(), result)
            lock.check()
            if result.metrics is None:
                log.info("batch %d was committed by an earlier attempt; counted once", result.batch_no)
            else:
                on_batch(result.metrics)
            stop = run_steps.stop_reason(result.check, result.outcomes, first=n_done == 1)
            if stop is not None and not stops:
                stops.append(stop)
        del budgets  # held until every task is done
        log.info("%s", overheads.describe())
        status, message = stops[0] if stops else run_steps.judge(settings, staging)
        return run_steps.finish_run(
            settings,
            staging,
            batches,
            status,
            message,
            api_calls=run_steps.staged_api_calls(staging),
            members=members,
            lock=lock,
        )

    def close(self) -> None:
        ray.shutdown()


class Overheads:
    """Ray's overhead on each batch: from the task's submission to its result in the driver, less the task's
    own time (its function, start to end) and its wait for its worker process to finish the task before."""

    def __init__(self) -> None:
        self._ms = array("d")  # 8 bytes a batch: 0.8 MB at 100,000 symbols
        self._workers: set[tuple[str, int]] = set()

    def add(self, submitted_s: float, received_s: float, result: BatchResult) -> None:
        if result.metrics is None:  # another attempt's batch: its first attempt's time is not known here
            return
        self._workers.add((result.metrics.node_id, result.metrics.pid))
        free_s = max(submitted_s, result.previous_ended_s or submitted_s)
        to_worker_s, back_s = result.began_s - free_s, received_s - result.ended_s
        self._ms.append(1000 * (to_worker_s + back_s))

    def describe(self) -> str:
        """One line: the batches, the worker processes, and Ray's overhead a batch (median, p95, mean)."""
        ran = f"ray: {len(self._ms)} batches on {len(self._workers)} worker processes"
        if len(self._ms) < 2:
            return ran
        median, p95, mean = (
            statistics.median(self._ms),
            # Inclusive: the default method extrapolates past the largest of a few batches.
            statistics.quantiles(self._ms, n=20, method="inclusive")[-1],
            statistics.fmean(self._ms),
        )
        return (
            f"{ran}; Ray's overhead a batch (submission to result, less the batch's own time and its wait "
            f"for a free worker): median {median:.1f} ms, p95 {p95:.1f} ms, mean {mean:.1f} ms"
        )


def gather_bounded(
    tasks: Iterator, in_flight: int, *, go_on: Callable[[], bool]
) -> Iterator[tuple[float, BatchResult]]:
    """Each task's result as it finishes, with when it was submitted (Unix seconds), at most `in_flight`
    submitted and unfinished at once; once `go_on` says no, no more are submitted and those in flight are
    gathered."""
    submitted_s: dict = {}

    def submit(n: int) -> list:
        refs = []
        for ref in itertools.islice(tasks, n):
            submitted_s[ref] = time.time()
            refs.append(ref)
        return refs

    running = submit(in_flight)
    while running:
        (done,), running = ray.wait(running, num_returns=1)
        yield submitted_s.pop(done), _result(done)
        if go_on():
            running += submit(1)


def _result(ref) -> BatchResult:
    """A task's result; the job's own error as it was raised in the worker, one line."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, EtlError):
            raise exc.cause from None
        raise
    except ray.exceptions.WorkerCrashedError as exc:
        raise ClusterError(
            f"a batch's worker died {RAY_TASK_RETRIES + 1} times ({type(exc).__name__}); "
            "the batches committed are kept for a rerun to resume"
        ) from exc


def _in_flight() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1) * RAY_BATCHES_PER_CPU))


def connect(address: str) -> Cluster:
    """Join the cluster at `address` as the run's driver; ConfigError, fast, where no cluster of this Ray and
    Python answers."""
    _check_answers(address)
    try:
        ray.init(
            address=address,
            namespace=RAY_NAMESPACE,
            runtime_env={"env_vars": forwarded_env()},
            logging_level=logging.WARNING,
        )
    except ConnectionError as exc:
        raise ConfigError(
            f"--ray {address}: no Ray cluster answers ({exc}); "
            "start one (ray start --head) or fix the address"
        ) from None
    except RuntimeError as exc:
        if "Version mismatch" not in str(exc):
            raise
        raise ConfigError(f"--ray {address}: {to_version_mismatch(str(exc))}") from None
    return Cluster()


def to_version_mismatch(ray_message: str) -> str:
    """Ray's several-line version mismatch as one line: what the cluster runs, what this process runs."""
    lines = (line.strip() for line in ray_message.splitlines())
    versions = [line for line in lines if line.startswith(("Ray:", "Python:"))]
    cluster, here = ", ".join(versions[:2]), ", ".join(versions[2:])
    return (
        f"the cluster runs {cluster} and this process {here}; "
        "run collect with the cluster's Ray and Python versions"
    )


def _check_answers(address: str) -> None:
    """Ray waits minutes for an address where nothing listens: see at once whether anything does."""
    if address == "auto":
        return  # Ray finds a local cluster, or says at once that there is none
    parts = urlsplit(address if "://" in address else f"gcs://{address}")
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=RAY_CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ConfigError(
            f"--ray {address}: no Ray cluster answers there ({exc.strerror or exc}); "
            "start one (ray start --head) or fix the address"
        ) from None


def forwarded_env() -> dict[str, str]:
    """The driver's AWS settings but its secrets, so that workers find the store the driver locked."""
    return {name: os.environ[name] for name in RAY_FORWARDED_ENV if name in os.environ}
