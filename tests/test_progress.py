"""The progress tally: figures so far and the ETA the bar and the per-batch lines show."""

import time
from types import SimpleNamespace

from etl.progress import Tally


def batch(batch_no: int, n_ok: int, n_failed: int, rss_mb: float) -> SimpleNamespace:
    """What the tally reads of a BatchMetrics."""
    return SimpleNamespace(batch_no=batch_no, n_ok=n_ok, n_failed=n_failed, rss_mb_after=rss_mb)


def test_eta_is_the_time_per_batch_so_far_times_the_batches_left():
    tally = Tally(n_batches=10, started=time.monotonic() - 20)
    tally.add(batch(1, 9, 1, 150.2)).add(batch(2, 10, 0, 155.7))
    assert tally.describe() == "19 ok, 1 failed so far, RSS 156 MB, ETA 1:20"


def test_a_resumed_run_counts_the_batches_left_from_where_it_is():
    tally = Tally(n_batches=10, started=time.monotonic() - 10).add(batch(7, 10, 0, 100.0))
    assert (tally.done, tally.batch_no) == (1, 7)
    assert tally.describe().endswith("ETA 0:30")
