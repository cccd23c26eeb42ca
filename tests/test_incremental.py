"""Daily incremental runs: the next day fetches each symbol's new bars and a revision window, not its whole
history."""

import datetime as dt

import polars as pl
import pytest

from conftest import run_cli, write_universe, yahoo_route
from etl.emulator import Emulator, EmulatorConfig
from etl.lake.delta import storage_options
from etl.lake.paths import open_lake
from etl.lake.views import connect_lake

SYMBOLS = ["AAPL", "MSFT", "BRK-B", "KO", "XOM", "JPM", "V", "MA"]
# Monday and Tuesday evenings, after the close in New York.
MONDAY = dt.datetime(2026, 11, 23, 22, 0, tzinfo=dt.UTC)
TUESDAY = MONDAY + dt.timedelta(days=1)
# Tuesday's Yahoo having revised its bars: another seed, so that every bar it serves differs from Monday's and
# a lake that kept the older of two runs' values shows it.
REVISED_SEED = EmulatorConfig.seed + 1
BAR_COLUMNS = ["symbol", "date", "open", "high", "low", "close", "adj_close", "volume"]


def collect_on(day: dt.datetime, universe, lake_dir, *extra: str, seed: int = EmulatorConfig.seed):
    with Emulator(EmulatorConfig(as_of=day, seed=seed)) as emulator:
        result = run_cli(
            "collect", *yahoo_route(emulator), "--universe", str(universe), "--lake", str(lake_dir), *extra
        )
        assert result.returncode == 0, result.stderr
        return emulator.total_requests()


def latest_run_bars(lake_dir) -> dict[str, list[dt.date]]:
    rows = (
        connect_lake(lake_dir)
        .execute(
            "select symbol, list(date order by date) from bars_all"
            " where run_id = (select max(run_id) from runs) group by 1"
        )
        .fetchall()
    )
    return dict(rows)


@pytest.fixture
def monday_lake(tmp_path, lake_dir):
    collect_on(MONDAY, write_universe(tmp_path / "u.txt", SYMBOLS), lake_dir)
    return lake_dir


@pytest.fixture
def monday_lake_anywhere(tmp_path, lake_url):
    """Monday's run, in a local lake and in a bucket: the incremental run reads back what the lake holds."""
    collect_on(MONDAY, write_universe(tmp_path / "u.txt", SYMBOLS), lake_url)
    return lake_url


def test_the_next_day_fetches_the_new_bar_and_five_days_of_revisions(monday_lake_anywhere, tmp_path):
    monday_lake = monday_lake_anywhere
    monday_bars = latest_run_bars(monday_lake)
    calls = collect_on(TUESDAY, tmp_path / "u.txt", monday_lake)
    tuesday_bars = latest_run_bars(monday_lake)
    assert {s: days[:-1] for s, days in tuesday_bars.items()} == {
        s: days[-5:] for s, days in monday_bars.items()
    }
    assert {days[-1] for days in tuesday_bars.values()} == {TUESDAY.date()}
    assert calls == 2 + 1 + len(
        SYMBOLS
    )  # handshake, one quote request, one chart a symbol: as on the first day


def view_bars(lake_url) -> list[tuple]:
    """Every row of the bars view, in key order (a key held twice shows as two rows)."""
    return (
        connect_lake(lake_url).execute(f"select {', '.join(BAR_COLUMNS)} from bars order by 1, 2").fetchall()
    )


def delta_bars(lake_url) -> list[tuple]:
    """The bars table as polars reads it, with no code of ours: what a downstream job sees."""
    table = pl.read_delta(open_lake(lake_url).table_url("bars"), storage_options=storage_options())
    return table.select(BAR_COLUMNS).sort("symbol", "date").rows()


def by_key(rows: list[tuple]) -> dict[tuple, tuple]:
    return {row[:2]: row[2:] for row in rows}


def test_the_latest_run_wins_the_bars_yahoo_revised_and_the_older_bars_stay(monday_lake_anywhere, tmp_path):
    """Tuesday's run fetches the revision window again from a Yahoo that revised it: the bars view and a
    plain Delta reader hold Tuesday's values there (a full refresh's from that Yahoo), Monday's before it."""
    lake = monday_lake_anywhere
    monday = by_key(view_bars(lake))
    collect_on(TUESDAY, tmp_path / "u.txt", lake, seed=REVISED_SEED)
    fresh = tmp_path / "fresh"
    collect_on(TUESDAY, tmp_path / "u.txt", fresh, "--full-refresh", seed=REVISED_SEED)
    tuesday = by_key(view_bars(fresh))
    window = {(symbol, day) for symbol, days in latest_run_bars(lake).items() for day in days}
    revised = window & monday.keys()
    # The data tells the runs apart: each bar fetched twice has other values the second time.
    assert len(revised) == 5 * len(SYMBOLS) and all(monday[key] != tuesday[key] for key in revised)
    expected = {key: monday[key] for key in monday.keys() - window} | {key: tuesday[key] for key in window}
    expected_rows = sorted(key + values for key, values in expected.items())
    assert view_bars(lake) == expected_rows
    assert delta_bars(lake) == expected_rows


def test_a_symbol_new_to_the_universe_gets_its_whole_history(monday_lake, tmp_path):
    universe = write_universe(tmp_path / "more.txt", [*SYMBOLS, "NVDA"])
    collect_on(TUESDAY, universe, monday_lake)
    counts = {s: len(days) for s, days in latest_run_bars(monday_lake).items()}
    assert counts["NVDA"] > 240 and {counts[s] for s in SYMBOLS} == {6}


@pytest.mark.parametrize(
    ("extra", "bars_a_symbol"), [(["--revision-days", "0"], 1), (["--full-refresh"], None)]
)
def test_revision_window_and_full_refresh(monday_lake, tmp_path, extra, bars_a_symbol):
    monday_counts = {s: len(days) for s, days in latest_run_bars(monday_lake).items()}
    collect_on(TUESDAY, tmp_path / "u.txt", monday_lake, *extra)
    counts = {s: len(days) for s, days in latest_run_bars(monday_lake).items()}
    assert counts == ({s: bars_a_symbol for s in SYMBOLS} if bars_a_symbol else monday_counts)


def test_the_revision_window_of_a_currency_in_londons_summer_starts_on_its_first_day(tmp_path, lake_dir):
    """Yahoo stamps EURUSD=X's bars at midnight London, 23:00 UTC the day before in summer: a window opened at
    midnight UTC would miss the first day's bar (the run's first bar would be a day late)."""
    universe = write_universe(tmp_path / "u.txt", ["EURUSD=X", "AAPL"])
    monday, tuesday = (dt.datetime(2026, 7, day, 22, 0, tzinfo=dt.UTC) for day in (13, 14))
    collect_on(monday, universe, lake_dir)
    monday_bars = latest_run_bars(lake_dir)
    collect_on(tuesday, universe, lake_dir)
    tuesday_bars = latest_run_bars(lake_dir)
    assert {s: days[:-1] for s, days in tuesday_bars.items()} == {
        s: days[-5:] for s, days in monday_bars.items()
    }
