"""The progress tally: figures so far and the ETA the bar and the per-batch lines show."""

import time
from types import SimpleNamespace

from conftest import FakeClock
from etl.progress import Tally


def batch(batch_no: int, n_ok: int, n_failed: int, rss_mb: float) -> SimpleNamespace:
    """What the tally reads of a BatchMetrics."""
    return SimpleNamespace(batch_no=batch_no, n_ok=n_ok, n_failed=n_failed, rss_mb_after=rss_mb)


def test_eta_is_the_time_per_batch_so_far_times_the_batches_left():
    clock = FakeClock()
    tally = Tally(n_batches=10, clock=clock)
    clock.advance(20)
    tally.add(batch(1, 9, 1, 150.2)).add(batch(2, 10, 0, 155.7))
    assert tally.describe() == "19 ok, 1 failed so far, RSS 156 MB, ETA 1:20"


def test_the_eta_follows_the_clock_as_batches_take_longer():
    clock = FakeClock()
    tally = Tally(n_batches=10, clock=clock).add(batch(1, 10, 0, 100.0))
    clock.advance(10)
    assert tally.describe().endswith("ETA 1:30")  # 10 s a batch, 9 left
    clock.advance(20)
    assert tally.describe().endswith("ETA 4:30")  # still one batch done, now in 30 s


def test_a_resumed_run_counts_the_batches_left_from_where_it_is():
    clock = FakeClock()
    tally = Tally(n_batches=10, clock=clock).add(batch(7, 10, 0, 100.0))
    clock.advance(10)
    assert (tally.done, tally.batch_no) == (1, 7)
    assert tally.describe().endswith("ETA 0:30")


def test_the_tally_is_timed_by_the_monotonic_clock_unless_told_otherwise():
    # The product's clock, which a step of the wall clock (NTP, a laptop's resume) never moves.
    assert Tally(n_batches=1).clock is time.monotonic
