"""The batch function a Ray task runs, here without Ray: one source a process, a batch committed once."""

import datetime as dt

from conftest import open_staged_run, staging_keys
from etl.config import Settings
from etl.lake.paths import open_lake
from etl.lake.staging import RunPlan
from etl.plan import Batch
from etl.source.rate import AdaptiveRate
from etl.worker import RunTarget, run_batch

STARTED_AT = dt.datetime(2026, 11, 24, 21, 0, tzinfo=dt.UTC)


def test_a_batch_run_twice_is_committed_once_and_the_handshake_made_once(emulator, lake_dir):
    batches = [Batch(1, ("AAPL", "MSFT")), Batch(2, ("GOOG",))]
    settings = Settings(
        lake=str(lake_dir), proxy=emulator.proxy_url, ca_bundle=emulator.ca_path, history="1mo"
    )
    plan = RunPlan(("AAPL", "MSFT", "GOOG"), 2, "1mo", "https://query1.finance.yahoo.com")
    staging = open_staged_run(open_lake(str(lake_dir)), plan, "r1", STARTED_AT)
    target = RunTarget(settings, staging.run_id, staging.started_at)

    first, second = (run_batch(target, batch, {}, AdaptiveRate) for batch in batches)
    again = run_batch(target, batches[0], {}, AdaptiveRate)

    assert first.metrics is not None and second.metrics is not None
    assert (first.metrics.n_ok, second.metrics.n_ok) == (2, 1)
    assert again.metrics is None and again.batch_no == 1  # committed by the first attempt: counted once
    assert staging.committed() == {1, 2}
    batch_1 = [key.partition("/parts/000001/")[2] for key in staging_keys(str(lake_dir))]
    assert len({key.partition("/")[0] for key in batch_1 if key}) == 1  # the second attempt's parts are gone
    assert emulator.counts()["cookie"] == 1
