"""Batches: in order, the last one short, bad sizes refused."""

import pytest

from etl.errors import ConfigError
from etl.plan import plan_batches


@pytest.mark.parametrize(
    ("n", "size", "sizes"),
    [(25, 10, [10, 10, 5]), (20, 10, [10, 10]), (3, 10, [3]), (3, 1, [1, 1, 1]), (0, 10, [])],
)
def test_batches_cover_every_symbol_in_order(n, size, sizes):
    symbols = [f"S{i}" for i in range(n)]
    batches = plan_batches(symbols, size)
    assert [len(b.symbols) for b in batches] == sizes
    assert [s for b in batches for s in b.symbols] == symbols
    assert [b.batch_no for b in batches] == list(range(1, len(sizes) + 1))


@pytest.mark.parametrize("size", [0, -3])
def test_batch_size_below_one_is_refused_by_name(size):
    with pytest.raises(ConfigError, match=f"--batch-size {size} must be"):
        plan_batches(["A"], size)
