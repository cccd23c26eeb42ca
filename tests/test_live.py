"""The live smoke test: five symbols from the real Yahoo Finance, as `make collect` would fetch them.

Deselected by default (no machine of the project's CI has internet); on a machine that has it:
`make test ARGS="-m network"`. A corporate proxy comes from HTTPS_PROXY or ETL_PROXY, its CA from
ETL_CA_BUNDLE.
"""

import duckdb
import pytest

from conftest import USERS_ROUTE, run_cli, write_universe

SYMBOLS = ["AAPL", "MSFT", "JPM", "KO", "BRK-B"]


@pytest.mark.network
def test_five_symbols_from_the_real_yahoo(tmp_path, lake_dir):
    universe = write_universe(tmp_path / "u.txt", SYMBOLS)
    result = run_cli(
        "collect", "--universe", str(universe), "--lake", str(lake_dir), "--history", "1mo", env=USERS_ROUTE
    )
    assert result.returncode == 0, result.stderr
    rows = duckdb.execute(
        f"select (select count(distinct symbol) from read_parquet('{lake_dir}/quotes/**/*.parquet')), "
        f"(select count(distinct symbol) from read_parquet('{lake_dir}/bars/**/*.parquet')), "
        f"(select min(n) from (select count(*) as n from read_parquet('{lake_dir}/bars/**/*.parquet')"
        " group by symbol)), "
        f"(select api_calls from read_parquet('{lake_dir}/runs/*.parquet'))"
    ).fetchone()
    quotes, bar_symbols, fewest_bars, api_calls = rows
    assert (quotes, bar_symbols) == (5, 5)
    assert fewest_bars >= 15  # a month of trading days
    # cookie, crumb, one quote request, five charts; a consent redirect or a retry may add a few
    assert 8 <= api_calls <= 14
