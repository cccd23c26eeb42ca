"""The emulator's splits and dividends: drawn from its seed, printed raw, told as Yahoo tells them on the
emulator's clock (split-adjusted bars, adjclose, events), and read by unmodified yfinance."""

import csv
import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import numpy as np
import pytest

from conftest import REPO_DIR
from etl.emulator import Emulator, EmulatorConfig, calendars, market
from etl.emulator.actions import Dividend, Split, corporate_actions
from etl.emulator.calendars import NEW_YORK, OPEN_TIME
from test_emulator import assert_same_shape, chart, in_new_process, quotes, recorded

UNIVERSE = [row["symbol"] for row in csv.DictReader((REPO_DIR / "data/universe/default.csv").open())]
# Seed 7: GOOG splits 2:1 on 2026-07-17 and pays 0.84 on 2026-08-10; DHI pays 0.61 on 2026-09-22, then
# splits 2:1 on 2026-09-24.
SPLIT_DAY, DIVIDEND_DAY = dt.date(2026, 7, 17), dt.date(2026, 8, 10)


def evening(day: dt.date) -> dt.datetime:
    """An emulator clock after the day's close, so that the day's bar is final."""
    return dt.datetime.combine(day, dt.time(18, 0), NEW_YORK)


@pytest.fixture(scope="module")
def at() -> Iterator[Callable[[dt.datetime], Emulator]]:
    """The emulator whose clock stands at a given instant: one a clock, shared by the module's tests."""
    with ExitStack() as stack:
        emulators: dict[dt.datetime, Emulator] = {}

        def emulator_at(now: dt.datetime) -> Emulator:
            if now not in emulators:
                emulators[now] = stack.enter_context(Emulator(EmulatorConfig(as_of=now)))
            return emulators[now]

        yield emulator_at


def served(emu: Emulator, symbol: str, **params) -> dict:
    return chart(emu, symbol, **params).json()["chart"]["result"][0]


def by_day(result: dict) -> dict[dt.date, dict]:
    """Each served bar by its New York date: open, high, low, close, volume and adjclose."""
    quote, adjclose = result["indicators"]["quote"][0], result["indicators"]["adjclose"][0]["adjclose"]
    return {
        dt.datetime.fromtimestamp(stamp, NEW_YORK).date(): {
            **{name: quote[name][i] for name in ("open", "high", "low", "close", "volume")},
            "adjclose": adjclose[i],
        }
        for i, stamp in enumerate(result["timestamp"])
    }


# The corporate actions


def test_corporate_actions_are_fixed_by_seed_and_symbol():
    actions = corporate_actions(7, "GOOG")
    assert corporate_actions(7, "GOOG") is actions  # cached
    corporate_actions.cache_clear()
    assert corporate_actions(7, "GOOG") == actions
    assert corporate_actions(8, "GOOG") != actions
    assert Split(SPLIT_DAY, 2, 1) in actions.splits and Split(SPLIT_DAY, 2, 1).ratio == 2.0
    assert {split.ratio for split in actions.splits} <= {2, 3, 1.5, 4, 5, 10}
    assert Dividend(DIVIDEND_DAY, 0.84) in actions.dividends


def test_about_a_third_of_symbols_pay_a_fifth_split_and_a_split_comes_every_few_weeks():
    actions = [corporate_actions(7, symbol) for symbol in UNIVERSE]
    payers, splitters = sum(bool(a.dividends) for a in actions), sum(bool(a.splits) for a in actions)
    assert 0.3 < payers / len(UNIVERSE) < 0.45 and 0.12 < splitters / len(UNIVERSE) < 0.25
    splits_2026 = sorted(s.ex_date for a in actions for s in a.splits if s.ex_date.year == 2026)
    assert len(splits_2026) >= 8 and max(np.diff(splits_2026)) < dt.timedelta(days=100)
    # Payers pay every quarter of every year of the calendar (but for one on its first day, 1990-01-02).
    assert {len(a.dividends) for a in actions if a.dividends} <= {
        4 * (2100 - 1990 + 1) - 1,
        4 * (2100 - 1990 + 1),
    }


@pytest.mark.parametrize("symbol", ["GOOG", "DHI", "JPM", "XEL", "KO"])
def test_every_ex_date_is_a_session_in_order_and_never_shared(symbol):
    actions = corporate_actions(7, symbol)
    for events in (actions.splits, actions.dividends):
        days = [event.ex_date for event in events]
        assert days == sorted(set(days)) and all(map(calendars.is_session, days))
    assert not {s.ex_date for s in actions.splits} & {d.ex_date for d in actions.dividends}


@pytest.mark.parametrize("symbol", ["GOOG", "KO", "MSFT"])
def test_dividends_are_a_plausible_yield_of_the_raw_price(symbol):
    dividends = [d for d in corporate_actions(7, symbol).dividends if d.ex_date.year in (1995, 2026)]
    yields = [4 * d.amount / market.close_before(7, symbol, d.ex_date) for d in dividends]
    assert all(0.003 < y < 0.07 for y in yields)
    assert all(d.amount == round(d.amount, 4) > 0 for d in dividends)


@pytest.mark.parametrize("symbol", ["GOOG", "DHI", "JPM", "XEL"])
def test_raw_prices_fall_by_the_ratio_on_each_split_day_and_stay_plausible(symbol):
    for split in corporate_actions(7, symbol).splits:
        bar = market.bars_between(7, symbol, 0.0, split.ex_date, split.ex_date)
        fall = bar.open[0] / market.close_before(7, symbol, split.ex_date)
        assert 0.85 < fall * split.ratio < 1.15, split
        assert 1 < bar.close[0] < 5000


# Yahoo's answer on the emulator's clock


def test_on_the_ex_date_the_bars_before_a_split_are_divided_by_its_ratio(at):
    eve = served(at(evening(SPLIT_DAY - dt.timedelta(days=1))), "GOOG", range="3mo")
    ex = served(at(evening(SPLIT_DAY)), "GOOG", range="3mo")
    stamp = calendars.epoch(SPLIT_DAY, OPEN_TIME)
    assert "splits" not in eve.get("events", {})
    assert ex["events"]["splits"] == {
        str(stamp): {"date": stamp, "numerator": 2, "denominator": 1, "splitRatio": "2:1"}
    }
    before, after = by_day(eve), by_day(ex)
    common = set(before) & set(after)  # each window is 3 months back from its own day
    assert len(common) > 55 and set(after) - set(before) == {SPLIT_DAY}
    for day in common:
        bar = before[day]
        for name in ("open", "high", "low", "close"):
            assert after[day][name] == pytest.approx(bar[name] / 2, rel=1e-12)
        assert after[day]["volume"] == bar["volume"] * 2


def test_split_adjusted_closes_move_smoothly_and_unadjust_to_the_prices_printed(at):
    ex = by_day(served(at(evening(SPLIT_DAY)), "GOOG", range="3mo"))
    days = sorted(ex)
    closes = np.array([ex[day]["close"] for day in days])
    assert np.max(np.abs(np.diff(np.log(closes)))) < 0.1  # no split-sized jump (a 2:1 is log 2 = 0.69)
    raw = market.bars_between(7, "GOOG", 0.0, days[0], days[-1])
    later = np.array([2.0 if day < SPLIT_DAY else 1.0 for day in days])
    assert np.allclose(closes * later, raw.close, rtol=1e-12)  # which falls by half on the ex-date


def test_the_quote_on_a_split_day_changes_by_the_real_move(at):
    emu = at(evening(SPLIT_DAY))
    quote = quotes(emu, "GOOG")["quoteResponse"]["result"][0]
    raw = market.bars_between(7, "GOOG", 0.0, SPLIT_DAY - dt.timedelta(days=1), SPLIT_DAY)
    assert quote["regularMarketPrice"] == raw.close[-1]  # today's prices are as printed
    assert quote["regularMarketPreviousClose"] == pytest.approx(raw.close[0] / 2, rel=1e-12)
    assert abs(quote["regularMarketChangePercent"]) < 10
    eve = SPLIT_DAY - dt.timedelta(days=1)
    assert quote["regularMarketPreviousClose"] == by_day(served(emu, "GOOG", range="5d"))[eve]["close"]


def test_adjclose_is_close_times_the_dividend_multipliers(at):
    now = evening(dt.date(2026, 11, 20))
    result = served(at(now), "GOOG", range="1y")
    bars = by_day(result)
    days = sorted(bars)
    splits = [s for s in corporate_actions(7, "GOOG").splits if s.ex_date <= now.date()]
    dividends = [d for d in corporate_actions(7, "GOOG").dividends if days[0] < d.ex_date <= now.date()]
    assert len(dividends) == 4

    def raw_close(day: dt.date) -> float:  # Yahoo's close times the splits after it: the close printed
        return bars[day]["close"] * np.prod([s.ratio for s in splits if s.ex_date > day])

    multipliers = {
        d.ex_date: 1 - d.amount / raw_close(max(day for day in days if day < d.ex_date)) for d in dividends
    }
    for day in days:
        factor = np.prod([m for ex_date, m in multipliers.items() if ex_date > day])
        assert bars[day]["adjclose"] == pytest.approx(bars[day]["close"] * factor, rel=1e-12)
    first, last = bars[days[0]], bars[days[-1]]
    assert first["adjclose"] < first["close"] and last["adjclose"] == last["close"]


def test_a_dividend_changes_the_adjclose_before_it_and_not_the_close(at):
    eve = by_day(served(at(evening(DIVIDEND_DAY - dt.timedelta(days=3))), "GOOG", range="1mo"))
    ex_result = served(at(evening(DIVIDEND_DAY)), "GOOG", range="1mo")
    ex = by_day(ex_result)
    stamp = calendars.epoch(DIVIDEND_DAY, OPEN_TIME)
    assert ex_result["events"]["dividends"] == {str(stamp): {"amount": 0.84, "date": stamp}}
    last_close = eve[max(eve)]["close"]  # the session before the ex-date, as printed (no split since)
    for day in set(eve) & set(ex):
        bar = eve[day]
        assert ex[day]["close"] == bar["close"]
        assert ex[day]["adjclose"] == pytest.approx(bar["adjclose"] * (1 - 0.84 / last_close), rel=1e-12)


def test_a_dividend_amount_is_divided_by_the_splits_after_it(at):
    def events_on(day: dt.date) -> dict:
        return served(at(evening(day)), "DHI", range="1mo")["events"]

    paid, split = (
        calendars.epoch(dt.date(2026, 9, 22), OPEN_TIME),
        calendars.epoch(dt.date(2026, 9, 24), OPEN_TIME),
    )
    assert events_on(dt.date(2026, 9, 23)) == {"dividends": {str(paid): {"amount": 0.61, "date": paid}}}
    after = events_on(dt.date(2026, 9, 25))
    assert after["dividends"] == {str(paid): {"amount": 0.305, "date": paid}}
    assert list(after["splits"]) == [str(split)]


def test_events_outside_the_window_are_not_sent(at):
    emu = at(evening(dt.date(2026, 8, 12)))
    june = {
        "period1": calendars.epoch(dt.date(2026, 6, 1), OPEN_TIME),
        "period2": calendars.epoch(dt.date(2026, 7, 1), OPEN_TIME),
    }
    result = served(emu, "GOOG", **june)
    assert "events" not in result and list(result) == ["meta", "timestamp", "indicators"]
    raw = market.bars_between(7, "GOOG", 0.0, dt.date(2026, 6, 1), dt.date(2026, 6, 30))
    # ...yet its bars are adjusted for the split after them, as Yahoo adjusts them on the day asked.
    assert result["indicators"]["quote"][0]["close"] == pytest.approx((raw.close / 2).tolist(), rel=1e-12)
    july = {
        "period1": calendars.epoch(dt.date(2026, 7, 1), OPEN_TIME),
        "period2": calendars.epoch(dt.date(2026, 8, 1), OPEN_TIME),
    }
    assert list(served(emu, "GOOG", **july)["events"]) == ["splits"]
    assert list(served(emu, "GOOG", range="1mo")["events"]) == ["dividends", "splits"]


def test_weekly_adjclose_is_the_daily_adjclose_of_each_weeks_last_session(at):
    emu = at(evening(dt.date(2026, 11, 20)))
    daily, weekly = by_day(served(emu, "GOOG", range="6mo")), served(emu, "GOOG", range="6mo", interval="1wk")
    weeks = [dt.datetime.fromtimestamp(stamp, NEW_YORK).date() for stamp in weekly["timestamp"]]
    for start, adjclose in zip(weeks, weekly["indicators"]["adjclose"][0]["adjclose"], strict=True):
        monday = start - dt.timedelta(days=start.weekday())
        last = max(day for day in daily if monday <= day < monday + dt.timedelta(days=7))
        assert adjclose == daily[last]["adjclose"]


@pytest.mark.parametrize("fixture", ["chart-AAPL-2020-08-31-to-2020-11-07.json", "history_chart_AAPL.json"])
def test_events_have_yahoos_structure(at, fixture):
    theirs = recorded(fixture)["chart"]["result"][0]
    ours = served(at(evening(dt.date(2026, 9, 25))), "DHI", range="1mo")
    assert list(ours) == list(theirs) == ["meta", "timestamp", "events", "indicators"]
    for kind, items in theirs["events"].items():  # keyed by the event's date as a string
        yahoos = next(iter(items.values()))
        assert ours["events"][kind] and all(key == str(event["date"]) for key, event in items.items())
        for key, event in ours["events"][kind].items():
            assert key == str(event["date"]) and list(event) == list(yahoos)
            assert_same_shape(event, yahoos, f"$.events.{kind}.{key}")
            assert {k: type(v) for k, v in event.items()} == {k: type(v) for k, v in yahoos.items()}
    # Yahoo dates an event by its ex-date's open, 09:30 in New York.
    for events in (ours["events"], theirs["events"]):
        stamps = [event["date"] for items in events.values() for event in items.values()]
        assert {dt.datetime.fromtimestamp(stamp, NEW_YORK).time() for stamp in stamps} == {OPEN_TIME}


@pytest.mark.parametrize("fixture", ["quote_v7_AAPL.json", "quote-AAPL.json"])
def test_a_payers_quote_has_yahoos_dividend_keys(at, fixture):
    now = evening(dt.date(2026, 11, 20))
    ours = quotes(at(now), "GOOG")
    assert_same_shape(ours, recorded(fixture))  # the dividend keys included
    quote = ours["quoteResponse"]["result"][0]
    dividends = corporate_actions(7, "GOOG").dividends
    year = [d for d in dividends if now.date() - dt.timedelta(days=365) < d.ex_date <= now.date()]
    # The amounts as Yahoo tells them today: those before the 2:1 split halved.
    trailing = sum(d.amount / (2 if d.ex_date < SPLIT_DAY else 1) for d in year)
    assert quote["trailingAnnualDividendRate"] == pytest.approx(trailing, abs=1e-4)
    assert quote["trailingAnnualDividendYield"] == pytest.approx(
        quote["trailingAnnualDividendRate"] / quote["regularMarketPreviousClose"]
    )
    # The last one (0.84 on 2026-11-09) a year ahead, paid 3 days after its ex-date.
    assert quote["dividendRate"] == 4 * 0.84
    assert quote["dividendYield"] == round(100 * 4 * 0.84 / quote["regularMarketPrice"], 2)
    assert quote["dividendDate"] == int(dt.datetime(2026, 11, 12, tzinfo=dt.UTC).timestamp())
    non_payer = quotes(at(now), "AAPL")["quoteResponse"]["result"][0]
    assert non_payer["trailingAnnualDividendRate"] == 0 and "dividendRate" not in non_payer


# Unmodified yfinance reads them


def test_yfinance_shows_the_emulators_splits_and_dividends(at, tmp_path):
    emu = at(evening(dt.date(2026, 11, 20)))
    found = in_new_process(
        emu,
        't = yf.Ticker("GOOG", session=session)\n'
        'h = t.history(period="1y", auto_adjust=False)\n'
        "def dated(series): return {str(d.date()): v for d, v in series.items() if v}\n"
        'result = {"splits": dated(h["Stock Splits"]), "dividends": dated(h["Dividends"]),'
        ' "adjclose": h["Adj Close"].tolist(), "all_splits": dated(t.splits),'
        ' "all_dividends": dated(t.dividends)}',
        tmp_path / "yfinance",
    )
    result = served(emu, "GOOG", range="1y")
    paid = {
        str(dt.datetime.fromtimestamp(event["date"], NEW_YORK).date()): event["amount"]
        for event in result["events"]["dividends"].values()
    }
    assert found["splits"] == {"2026-07-17": 2.0}
    assert found["dividends"] == paid and "2026-08-10" in paid
    assert found["adjclose"] == result["indicators"]["adjclose"][0]["adjclose"]
    splits = corporate_actions(7, "GOOG").splits
    assert found["all_splits"] == {str(s.ex_date): s.ratio for s in splits if s.ex_date <= SPLIT_DAY}
    assert len(found["all_dividends"]) == 4 * (2026 - 1990) + 4
