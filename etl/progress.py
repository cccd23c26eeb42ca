"""A collect run's progress on stderr: a bar on a terminal, else one log line a batch."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

from etl.config import Settings
from etl.plan import plan_batches
from etl.universe import load_universe

if TYPE_CHECKING:  # etl.metrics loads pyarrow and, through etl.fetch, yfinance: too slow for --help
    from etl.metrics import BatchMetrics

log = logging.getLogger(__name__)


@dataclass
class Tally:
    """The run's figures so far, for the progress bar and the per-batch line."""

    n_batches: int
    # What the ETA is timed by: the monotonic clock, or one a test moves.
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    started: float = field(init=False)
    done: int = 0
    batch_no: int = 0
    n_ok: int = 0
    n_failed: int = 0
    rss_mb: float = 0.0

    def __post_init__(self) -> None:
        self.started = self.clock()

    def add(self, m: BatchMetrics) -> Tally:
        self.done, self.batch_no, self.rss_mb = self.done + 1, m.batch_no, m.rss_mb_after
        self.n_ok, self.n_failed = self.n_ok + m.n_ok, self.n_failed + m.n_failed
        return self

    def describe(self) -> str:
        # By batch_no, not batches done: a resumed run starts past the batches committed before.
        eta_s = int((self.clock() - self.started) / self.done * (self.n_batches - self.batch_no))
        return (
            f"{self.n_ok} ok, {self.n_failed} failed so far, RSS {self.rss_mb:.0f} MB, "
            f"ETA {eta_s // 60}:{eta_s % 60:02d}"
        )


@contextmanager
def show_progress(settings: Settings, quiet: bool) -> Iterator[Callable[[BatchMetrics], None]]:
    """The pipeline's on_batch: a bar on a terminal, else one log line a batch; nothing with --quiet."""
    if quiet:
        yield lambda m: None
        return
    # The pipeline does not say how many batches there are; counting them again costs ~7 ms at 10,000 symbols.
    tally = Tally(len(plan_batches(load_universe(settings.universe_path), settings.batch_size)))
    if not sys.stderr.isatty():
        yield lambda m: log_batch(m, tally.add(m))
        return
    with click.progressbar(
        length=tally.n_batches,
        label="batches",
        file=sys.stderr,
        show_pos=True,
        show_eta=False,
        item_show_func=lambda t: t and t.describe(),
    ) as bar:
        yield lambda m: bar.update(m.batch_no - bar.pos, tally.add(m))


def log_batch(m: BatchMetrics, tally: Tally) -> None:
    """One line for a batch done: its figures, and the run's so far."""
    log.info(
        "batch %d/%d: %d/%d ok, %d calls, fetch %.2fs, write %.3fs; %s",
        m.batch_no,
        tally.n_batches,
        m.n_ok,
        m.n_symbols,
        m.api_calls,
        m.fetch_s,
        m.write_s,
        tally.describe(),
    )
