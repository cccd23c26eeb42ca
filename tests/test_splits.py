"""Splits and dividends end to end: two daily runs across an emulated split and an ex-dividend day.

The emulator splits and pays as Yahoo does (its chart answers are adjusted as of its clock); the lake keeps
bars as traded and computes the adjusted series itself, so it must agree with Yahoo's answer of the later
day while no stored bar changes.
"""

import datetime as dt
import math
import shutil
from dataclasses import dataclass

import polars as pl
import pyarrow.fs as pafs
import pytest
from deltalake import DeltaTable

from conftest import browser, run_cli, run_collect, write_universe
from etl.emulator import Emulator, EmulatorConfig, calendars
from etl.emulator.actions import corporate_actions
from etl.lake.views import connect_lake
from etl.queries import fetch_dicts
from etl.schema import TABLES

SEED = EmulatorConfig.seed
# Splits and dividends are looked for in this stretch of the emulator's calendar, as of the default universe.
SEARCH_FROM, SEARCH_TO = dt.date(2026, 3, 2), dt.date(2026, 11, 27)
PLAIN = "KO"  # any symbol; the runs must go on for it as for any day
RELATIVE = 1e-6  # the bar for the lake's adjusted prices against Yahoo's own


def evening(day: dt.date) -> dt.datetime:
    """22:00 UTC: after the close in New York, winter or summer."""
    return dt.datetime.combine(day, dt.time(22), dt.UTC)


def default_symbols() -> list[str]:
    from etl.config import DEFAULT_UNIVERSE_PATH
    from etl.universe import load_universe

    return load_universe(DEFAULT_UNIVERSE_PATH)


def first_split(symbols: list[str], start: dt.date, end: dt.date, skip: tuple[str, ...] = ()):
    """The first symbol (in universe order) that splits between start and end, and that split."""
    for symbol in symbols:
        for split in corporate_actions(SEED, symbol).splits:
            if start <= split.ex_date <= end and symbol not in skip:
                return symbol, split
    raise AssertionError(f"no symbol of the default universe splits between {start} and {end} (seed {SEED})")


def first_dividend(symbols: list[str], start: dt.date, end: dt.date):
    """The first symbol that pays between start and end and never splits, and that dividend."""
    for symbol in symbols:
        actions = corporate_actions(SEED, symbol)
        for dividend in actions.dividends:
            if start <= dividend.ex_date <= end and not actions.splits:
                return symbol, dividend
    raise AssertionError(f"no symbol of the default universe pays between {start} and {end} (seed {SEED})")


@dataclass(frozen=True)
class TwoDays:
    """A lake collected on the evening before an ex-date and on the ex-date's, and Yahoo's answers of the
    second day."""

    lake: str
    symbol: str
    ex_date: dt.date
    day_one_bars: dict[dt.date, dict]
    yahoo: dict[str, dict]  # symbol: the chart result as of the second day, a year of it


def collect_two_days(folder, first: list[str], second: list[str], ex_date: dt.date, symbol: str) -> TwoDays:
    lake = folder / "lake"
    days = (calendars.previous_session(ex_date, 1), ex_date)
    for day, symbols in zip(days, (first, second), strict=True):
        with Emulator(EmulatorConfig(as_of=evening(day))) as emulator:
            universe = write_universe(folder / f"{day}.txt", symbols)
            result = run_collect(emulator, universe, lake, cache_dir=folder / "cache")
            assert result.returncode == 0, result.stderr
            if day == days[0]:
                day_one_bars = {row["date"]: row for row in bars_of(lake, symbol)}
            else:
                yahoo = {s: yahoo_chart(emulator, s) for s in symbols}
    return TwoDays(str(lake), symbol, ex_date, day_one_bars, yahoo)


def yahoo_chart(emulator, symbol: str) -> dict:
    """Yahoo's daily chart of the last year, as a browser asks for it."""
    with browser(emulator) as session:
        answer = session.get(
            f"https://query2.finance.yahoo.com/v8/finance/chart/{symbol}",
            params={"range": "1y", "interval": "1d", "events": "div,splits"},
        )
    assert answer.status_code == 200, answer.text
    return answer.json()["chart"]["result"][0]


def yahoo_by_date(chart: dict) -> dict[dt.date, dict]:
    """Yahoo's bars of a chart by their New York trading date: close (split-adjusted) and adjclose."""
    closes = chart["indicators"]["quote"][0]["close"]
    adjcloses = chart["indicators"]["adjclose"][0]["adjclose"]
    return {
        dt.datetime.fromtimestamp(stamp, calendars.NEW_YORK).date(): {"close": close, "adjclose": adjclose}
        for stamp, close, adjclose in zip(chart["timestamp"], closes, adjcloses, strict=True)
        if close is not None
    }


def bars_of(lake, symbol: str) -> list[dict]:
    return query(lake, "from bars where symbol = $symbol order by date", {"symbol": symbol})


def query(lake, sql: str, params: dict | None = None) -> list[dict]:
    return fetch_dicts(connect_lake(lake), sql, params)


def close_to(ours: float, theirs: float) -> bool:
    return math.isclose(ours, theirs, rel_tol=RELATIVE)


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> TwoDays:
    """A run the evening before a split and one the evening of its ex-date; the second adds a symbol new
    to the lake whose last year holds a split of its own."""
    symbols = default_symbols()
    symbol, event = first_split(symbols, SEARCH_FROM, SEARCH_TO)
    newcomer, _ = first_split(symbols, event.ex_date - dt.timedelta(days=300), event.ex_date, skip=(symbol,))
    folder = tmp_path_factory.mktemp("split")
    return collect_two_days(folder, [symbol, PLAIN], [symbol, PLAIN, newcomer], event.ex_date, symbol)


@pytest.fixture(scope="module")
def dividend(tmp_path_factory) -> TwoDays:
    symbol, event = first_dividend(default_symbols(), SEARCH_FROM, SEARCH_TO)
    folder = tmp_path_factory.mktemp("dividend")
    return collect_two_days(folder, [symbol, PLAIN], [symbol, PLAIN], event.ex_date, symbol)


def test_a_split_changes_no_bar_already_stored(split):
    after = {row["date"]: row for row in bars_of(split.lake, split.symbol)}
    before_split = [day for day in split.day_one_bars if day < split.ex_date]
    assert before_split and set(before_split) <= set(after)
    for day in before_split:
        # adj_close is Yahoo's as of the run that wrote the bar: the revision window's bars take the new one.
        for column in ("open", "high", "low", "close"):
            assert close_to(after[day][column], split.day_one_bars[day][column]), (day, column)
        assert after[day]["volume"] == split.day_one_bars[day]["volume"], day


def test_bars_hold_the_split_as_traded_and_the_splits_table_records_it(split):
    event = next(s for s in corporate_actions(SEED, split.symbol).splits if s.ex_date == split.ex_date)
    (row,) = query(
        split.lake, "from splits where symbol = $s and ex_date = $d", {"s": split.symbol, "d": split.ex_date}
    )
    assert (row["ex_date"], row["numerator"], row["denominator"]) == (
        split.ex_date,
        event.numerator,
        event.denominator,
    )
    assert close_to(row["ratio"], event.ratio)
    bars = {row["date"]: row for row in bars_of(split.lake, split.symbol)}
    eve = calendars.previous_session(split.ex_date, 1)
    # As traded, the close falls by about the ratio across the ex-date: the negative control of movers().
    assert bars[split.ex_date]["close"] / bars[eve]["close"] < 1.5 / event.ratio


@pytest.mark.parametrize("which", ["splitter", "newcomer"])
def test_bars_adjusted_is_yahoos_answer_of_the_same_day(split, which):
    symbol = (
        split.symbol if which == "splitter" else [s for s in split.yahoo if s not in (split.symbol, PLAIN)][0]
    )
    yahoo = yahoo_by_date(split.yahoo[symbol])
    ratios = [
        (s["ex_date"], s["ratio"]) for s in query(split.lake, "from splits where symbol = $s", {"s": symbol})
    ]
    assert ratios, f"{symbol} splits within the year the lake holds"
    rows = query(split.lake, "from bars_adjusted where symbol = $s order by date", {"s": symbol})
    compared = 0
    for row in rows:
        if row["date"] not in yahoo:
            continue
        later = math.prod(ratio for ex_date, ratio in ratios if ex_date > row["date"])
        assert close_to(row["close"] / later, yahoo[row["date"]]["close"]), row["date"]
        assert close_to(row["adj_close"], yahoo[row["date"]]["adjclose"]), row["date"]
        compared += 1
    assert compared > 240


def test_a_newcomer_whose_year_holds_a_split_is_stored_as_traded(split):
    newcomer = [s for s in split.yahoo if s not in (split.symbol, PLAIN)][0]
    events = query(split.lake, "from splits where symbol = $s", {"s": newcomer})
    yahoo = yahoo_by_date(split.yahoo[newcomer])
    bars = {row["date"]: row for row in bars_of(split.lake, newcomer)}
    assert events and min(bars) < min(event["ex_date"] for event in events)
    for day, bar in bars.items():
        later = math.prod(event["ratio"] for event in events if event["ex_date"] > day)
        assert close_to(bar["close"], yahoo[day]["close"] * later), day


def test_movers_on_the_split_day_show_the_real_move_only(split):
    day = split.ex_date
    movers = {row["symbol"]: row for row in query(split.lake, "from movers($day, 10)", {"day": day})}
    yahoo = yahoo_by_date(split.yahoo[split.symbol])
    eve = calendars.previous_session(day, 1)
    real_move_pct = (yahoo[day]["close"] / yahoo[eve]["close"] - 1) * 100
    assert math.isclose(movers[split.symbol]["change_pct"], real_move_pct, rel_tol=1e-6, abs_tol=1e-9)
    assert abs(movers[split.symbol]["change_pct"]) < 20


def test_the_next_days_run_still_moves_six_bars_a_symbol_it_held(split):
    rows = query(
        split.lake,
        "select symbol, count(*) as n from bars_all where run_id = (select max(run_id) from runs) group by 1",
    )
    counts = {row["symbol"]: row["n"] for row in rows}
    assert counts[split.symbol] == counts[PLAIN] == 6


def test_a_dividend_changes_bars_adjusted_history_and_not_bars(dividend):
    after = {row["date"]: row for row in bars_of(dividend.lake, dividend.symbol)}
    history = [day for day in dividend.day_one_bars if day < dividend.ex_date]
    for day in history:
        assert close_to(after[day]["close"], dividend.day_one_bars[day]["close"]), day
    (paid,) = query(
        dividend.lake,
        "from dividends where symbol = $s and ex_date = $d",
        {"s": dividend.symbol, "d": dividend.ex_date},
    )
    eve = calendars.previous_session(dividend.ex_date, 1)
    factor = 1 - paid["amount"] / after[eve]["close"]
    adjusted = {
        row["date"]: row
        for row in query(dividend.lake, "from bars_adjusted where symbol = $s", {"s": dividend.symbol})
    }
    yahoo = yahoo_by_date(dividend.yahoo[dividend.symbol])
    assert close_to(adjusted[eve]["adj_close"], yahoo[eve]["adjclose"])
    assert close_to(adjusted[dividend.ex_date]["adj_close"], after[dividend.ex_date]["close"])
    # The eve's adjusted close moved by the dividend's factor; its stored bar did not.
    assert factor < 1
    assert close_to(adjusted[eve]["adj_factor"], factor)
    assert close_to(adjusted[eve]["adj_close"], after[eve]["close"] * factor)


def test_a_lake_missing_a_table_is_refused_in_one_line_and_nothing_is_written(split, tmp_path):
    lake = tmp_path / "lake"
    shutil.copytree(split.lake, lake)
    shutil.rmtree(lake / "dividends")
    before = sorted(path for path in lake.rglob("*"))
    result = run_cli("query", "--lake", str(lake), "select count(*) from splits")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: the lake at {lake} has no dividends table ({lake}/dividends/_delta_log is missing); "
        "restore it, or collect into a new lake (--lake)"
    )
    with Emulator(EmulatorConfig(as_of=evening(split.ex_date))) as emulator:
        universe = write_universe(tmp_path / "u.txt", [split.symbol])
        collected = run_collect(emulator, universe, lake)
    assert collected.returncode == 1 and "has no dividends table" in collected.stderr.splitlines()[-1]
    assert sorted(path for path in lake.rglob("*")) == before


@pytest.mark.parametrize("table", ["bars", "dividends", "splits", "bar_revisions"])
def test_raw_delta_readers_and_the_views_agree_row_for_row_after_a_compaction(split, tmp_path, table):
    """Two runs with overlapping revision windows across a split, then compact: every engine sees one row a
    key, the same rows as the views."""
    lake = tmp_path / "lake"
    shutil.copytree(split.lake, lake)
    assert run_cli("compact", "--lake", str(lake), "--z-order").returncode == 0
    view = {"bar_revisions": "bars_all"}.get(table, table)
    columns = TABLES[table].schema.names
    expected = sorted(tuple(row.values()) for row in query(lake, f"select {', '.join(columns)} from {view}"))
    url = str(lake / table)
    filesystem = pafs.SubTreeFileSystem(
        url, pafs.LocalFileSystem()
    )  # README: deltalake's own can abort at exit
    readers = {
        "polars": pl.read_delta(url).select(columns).rows(),
        "pyarrow": DeltaTable(url)
        .to_pyarrow_dataset(filesystem=filesystem)
        .to_table(columns=columns)
        .to_pylist(),
        "pandas": DeltaTable(url).to_pandas(columns=columns, filesystem=filesystem).itertuples(index=False),
    }
    for name, rows in readers.items():
        as_tuples = sorted(tuple(row.values()) if isinstance(row, dict) else tuple(row) for row in rows)
        assert as_tuples == expected, name
    assert expected  # the split lake has rows in every one of these tables
    if table != "bar_revisions":  # the control: revisions hold a key once a run, the current tables once
        keys = [row[1:3] for row in expected]  # (symbol, date) or (symbol, ex_date)
        assert len(set(keys)) == len(keys)
    else:
        assert len({row[1:3] for row in expected}) < len(expected)
