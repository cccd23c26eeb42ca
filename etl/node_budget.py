"""One Yahoo budget per node of a Ray cluster: Yahoo limits each address, so every node has one budget actor,
the session's adaptive rate (etl/source/rate.py) and the `--max-rps` cap. The node's workers tell it what they
sent and what came back, and once the node is limited every request of theirs waits its turn from it.
"""

import logging
import threading
import time
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from etl.config import RAY_BUDGET_REPORT_S
from etl.source.rate import AdaptiveRate, Rate

log = logging.getLogger(__name__)


class NodeBudget:
    """The Yahoo budget of one node. Its workers report what they sent and what came back (answers, 429s);
    once the node is limited (a 429, or --max-rps), every request takes its turn here, one call each."""

    def __init__(self, max_rps: float | None) -> None:
        self._rate = AdaptiveRate(max_rps=max_rps)

    def report(self, sent: int, answers: int, limited: int) -> tuple[bool, bool]:
        """Learn of requests sent without a turn, answers and 429s; whether Yahoo has answered this node
        yet, and whether the node is limited."""
        self._rate.note_sent(sent)
        for _ in range(limited):
            self._rate.slow_down()
        for _ in range(answers):
            self._rate.speed_up()
        return self._rate.answered, self._rate.rps is not None

    def turn(self, sent: int, answers: int, limited: int) -> tuple[float, bool, bool]:
        """`report`, then the seconds the asking request waits for its turn."""
        answered, paced = self.report(sent, answers, limited)
        return self._rate.reserve(), answered, paced

    def rps(self) -> float | None:
        return self._rate.rps


class NodeRate:
    """A worker's session's rate: its node's budget actor, asked for a turn per request once the node is
    limited, told what was sent every RAY_BUDGET_REPORT_S until then (a 429 at once)."""

    def __init__(self, budget) -> None:
        self._budget = budget
        self._lock = threading.Lock()
        self._sent = self._answers = self._limited = 0
        self._answered = self._paced = False
        self._report_at = 0.0  # monotonic; 0: at the next request

    @property
    def answered(self) -> bool:
        if not self._answered:  # asked on a 429 only: has another worker of the node been answered?
            self._call(self._budget.report)
        return self._answered

    def acquire(self) -> None:
        with self._lock:
            if not self._paced and time.monotonic() < self._report_at:
                self._sent += 1
                return
        wait_s, _, _ = self._call(self._budget.turn)
        time.sleep(wait_s)

    def slow_down(self) -> None:
        with self._lock:
            self._limited += 1
        self._call(self._budget.report)

    def speed_up(self) -> None:
        with self._lock:
            self._answers += 1
            if not self._answered:
                self._report_at = 0.0  # the node's first answer: tell it at the next request

    def _call(self, method) -> tuple:
        """Call the budget with what happened since the last call; keep what it says of the node."""
        with self._lock:
            counts = (self._sent, self._answers, self._limited)
            self._sent = self._answers = self._limited = 0
            self._report_at = time.monotonic() + RAY_BUDGET_REPORT_S
        said = ray.get(method.remote(*counts))
        self._answered, self._paced = said[-2:]
        return said


_Budget = ray.remote(num_cpus=0)(NodeBudget)


def budget_name(node_id: str) -> str:
    """A node's budget actor, per driver: a run's budgets die with it."""
    return f"yahoo-budget:{ray.get_runtime_context().get_job_id()}:{node_id}"


def node_rate(max_rps: float | None) -> Rate:
    """In a worker: its node's budget; a node that joined after the run started has none and paces alone."""
    node_id = ray.get_runtime_context().get_node_id()
    try:
        return NodeRate(ray.get_actor(budget_name(node_id)))
    except ValueError:
        log.warning("node %s has no Yahoo budget of this run; its workers pace themselves", node_id)
        return AdaptiveRate(max_rps=max_rps)


def start_budgets(max_rps: float | None) -> list[Any]:
    """One budget actor on each node of the cluster, pinned there; up before the first batch asks."""
    nodes = [node["NodeID"] for node in ray.nodes() if node["Alive"] and node["Resources"].get("CPU")]
    budgets: list[Any] = [
        _Budget.options(
            name=budget_name(node_id),
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        ).remote(max_rps)
        for node_id in nodes
    ]
    ray.get([budget.rps.remote() for budget in budgets])
    return budgets
