"""The lake's table macros (sql/views.sql) on a real two-run lake, and the DuckDB shell that loads them."""

import csv
import subprocess
import sys

import polars as pl
import pytest

from conftest import REPO_DIR, run_collect, write_universe
from etl.emulator import Emulator, EmulatorConfig
from etl.summary import connect_lake, fetch_dicts

GOOD = ["AAPL", "MSFT", "NVDA", "JPM", "XOM", "KO", "PEP", "WMT"]
DELISTED = "DLSTD"  # delisted, in both runs
GONE = "GONE"  # delisted, in the first run only


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """Two runs in 4-symbol batches; the second re-collects half the symbols. The folder's name needs SQL
    quoting."""
    folder = tmp_path_factory.mktemp("views")
    lake_dir = folder / "it's a lake"
    universes = [
        write_universe(folder / "first.txt", [*GOOD[:4], DELISTED, *GOOD[4:], GONE]),
        write_universe(folder / "second.txt", [*GOOD[:4], DELISTED]),
    ]
    with Emulator(EmulatorConfig(delisted=frozenset({DELISTED, GONE}))) as emulator:
        for universe in universes:
            options = ("--batch-size", "4", "--min-success", "0.5")
            result = run_collect(emulator, universe, lake_dir, *options, cache_dir=folder / "cache")
            assert result.returncode == 0, result.stderr
    return lake_dir


@pytest.fixture(scope="module")
def run_ids(lake) -> list[str]:
    return sorted(pl.read_parquet(lake / "runs" / "*.parquet")["run_id"].to_list())


@pytest.fixture(scope="module")
def current_bars(lake) -> pl.DataFrame:
    """The bars read straight from the files, the latest run's row of each (symbol, date), oldest first."""
    bars = pl.read_parquet(lake / "bars" / "**" / "*.parquet", hive_partitioning=True)
    latest = bars.group_by("symbol", "date").agg(pl.col("run_id").max())
    return bars.join(latest, on=["symbol", "date", "run_id"]).sort("symbol", "date")


@pytest.fixture(scope="module")
def dates(current_bars) -> list:
    return current_bars["date"].unique().sort().to_list()


def query(lake, sql: str, params: dict | None = None) -> list[dict]:
    return fetch_dicts(connect_lake(lake), sql, params)


def shell(lake, stdin: str) -> subprocess.CompletedProcess:
    """`python -m etl shell` with its input piped, as a script would run it."""
    return subprocess.run(
        [sys.executable, "-m", "etl", "shell", "--lake", str(lake)],
        input=stdin,
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_symbol_bars_are_the_current_bars_between_two_dates_in_order(lake, current_bars, dates):
    first, last = dates[-30], dates[-10]
    rows = query(lake, "from symbol_bars($sym, $first, $last)", {"sym": "AAPL", "first": first, "last": last})
    expected = current_bars.filter((pl.col("symbol") == "AAPL") & pl.col("date").is_between(first, last))
    assert len(rows) == expected.height == 21
    assert [(r["date"], r["close"], r["run_id"]) for r in rows] == list(
        zip(expected["date"], expected["close"], expected["run_id"], strict=True)
    )


def test_symbol_bars_takes_dates_as_text_too(lake, dates):
    rows = query(lake, f"from symbol_bars('MSFT', '{dates[0]}', '{dates[4]}')")
    assert [r["date"] for r in rows] == dates[:5]


def test_latest_quotes_has_each_symbol_once_from_the_latest_run_that_quoted_it(lake, run_ids):
    rows = query(lake, "from latest_quotes()")
    first, second = run_ids
    assert {r["symbol"]: r["run_id"] for r in rows} == {s: second for s in GOOD[:4]} | {
        s: first for s in GOOD[4:]
    }
    assert len(rows) == len(GOOD)


@pytest.mark.parametrize("n", [1, 3, len(GOOD)])
def test_movers_are_the_largest_moves_against_the_previous_close(lake, current_bars, dates, n):
    day = dates[-10]
    rows = query(lake, "from movers($day, $n)", {"day": day, "n": n})
    expected = []
    for symbol, bars in current_bars.filter(pl.col("date") <= day).group_by("symbol"):
        closes = bars.sort("date")["close"].to_list()
        expected.append((symbol[0], (closes[-1] / closes[-2] - 1) * 100))
    expected.sort(key=lambda move: -abs(move[1]))
    assert [r["symbol"] for r in rows] == [symbol for symbol, _ in expected[:n]]
    assert [r["change_pct"] for r in rows] == pytest.approx([pct for _, pct in expected[:n]])
    assert all(
        r["date"] == day and r["change_pct"] == pytest.approx((r["close"] / r["previous_close"] - 1) * 100)
        for r in rows
    )


def test_movers_skip_a_symbol_on_its_first_bar(lake, dates):
    assert query(lake, "from movers($day, 100)", {"day": dates[0]}) == []


def test_failed_recently_counts_failures_in_the_last_n_runs(lake, run_ids):
    last_run = {r["symbol"]: r for r in query(lake, "from failed_recently(1)")}
    both_runs = {r["symbol"]: r for r in query(lake, "from failed_recently(2)")}
    assert set(last_run) == {DELISTED}
    assert last_run[DELISTED]["runs_failed"] == 1 and last_run[DELISTED]["last_run_id"] == run_ids[1]
    assert (
        last_run[DELISTED]["last_outcome"] == "no_data" and "delisted" in last_run[DELISTED]["last_message"]
    )
    assert {s: r["runs_failed"] for s, r in both_runs.items()} == {DELISTED: 2, GONE: 1}
    assert both_runs[GONE]["last_run_id"] == run_ids[0]


def test_shell_starts_with_the_views_and_macros_loaded(lake, dates):
    result = shell(
        lake,
        ".mode csv\nselect count(*) as n from latest_quotes();\n"
        f"select symbol from movers('{dates[-10]}', 3);\n",
    )
    assert result.returncode == 0, result.stderr
    movers = [r["symbol"] for r in query(lake, "from movers($day, 3)", {"day": dates[-10]})]
    assert list(csv.reader(result.stdout.splitlines())) == [
        ["n"],
        [str(len(GOOD))],
        ["symbol"],
        *([s] for s in movers),
    ]


def test_shell_refuses_a_lake_with_no_run_in_one_line(tmp_path):
    result = shell(tmp_path / "empty", "select 1;\n")
    assert result.returncode == 1
    assert result.stderr.startswith("error: the lake at") and len(result.stderr.splitlines()) == 1


def test_shell_refuses_a_lake_path_with_a_newline(tmp_path):
    result = shell(tmp_path / "two\nlines", "select 1;\n")
    assert result.returncode == 2
    assert "newline" in result.stderr and not result.stdout
