"""Memory checks: psutil's RSS and USS and Arrow's pool, and gc when over the limit."""

import pyarrow as pa

from etl.memory import check_memory, sample_memory


def test_a_sample_reads_the_process_and_arrows_own_allocations():
    before = sample_memory()
    held = pa.array(range(4_000_000), pa.int64())  # 32 MB in Arrow's pool
    during = sample_memory()
    assert 0 < before.uss_mb <= before.rss_mb
    assert during.arrow_mb - before.arrow_mb >= 30
    del held
    assert sample_memory().arrow_mb < during.arrow_mb - 30


def test_under_the_limit_nothing_runs_and_the_limit_holds():
    check = check_memory(limit_mb=1_000_000)
    assert not check.gc_ran and not check.over_limit


def test_over_the_limit_gc_runs_and_the_check_says_what_to_do():
    check = check_memory(limit_mb=1)  # every process is above 1 MB
    assert check.gc_ran and check.over_limit
    assert check.describe().startswith(f"RSS {check.sample.rss_mb:.0f} MB stayed above --memory-limit-mb 1 ")
    assert "raise the limit or lower --batch-size" in check.describe()
