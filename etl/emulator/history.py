"""A symbol's history as Yahoo tells it on a given day: bars adjusted for the splits up to that day,
closes adjusted for the dividends too, the events of a window, and the last session as quotes describe it."""

import datetime as dt
from dataclasses import dataclass

import numpy as np

from etl.emulator import actions, calendars, market
from etl.emulator.actions import Split
from etl.emulator.calendars import OPEN_TIME, days_of
from etl.emulator.instruments import instrument
from etl.emulator.market import Bars


def _splits_by(seed: int, symbol: str, as_of: dt.date) -> tuple[Split, ...]:
    return tuple(s for s in actions.corporate_actions(seed, symbol).splits if s.ex_date <= as_of)


def _split_factors(splits: tuple[Split, ...], days: np.ndarray) -> np.ndarray:
    """For each day, the product of the ratios of the splits after it."""
    ex_days = np.array([s.ex_date for s in splits], dtype="datetime64[D]")
    return actions.product_after(days, ex_days, np.array([s.ratio for s in splits], dtype=np.float64))


def split_adjusted(seed: int, symbol: str, bars: Bars, as_of: dt.date) -> Bars:
    """Raw bars as Yahoo sends them on `as_of`: each bar before the ex-date of a split up to `as_of` divided
    by its ratio and its volume multiplied by it, unrounded as Yahoo's are."""
    factor = _split_factors(_splits_by(seed, symbol, as_of), days_of(bars.timestamps))
    prices = (bars.open / factor, bars.high / factor, bars.low / factor, bars.close / factor)
    return Bars(bars.timestamps, *prices, bars.volume * factor)


def dividend_multipliers(seed: int, symbol: str, bars: Bars, as_of: dt.date) -> np.ndarray:
    """adjclose / close of each bar on `as_of`: the product, over the dividends with the bar's date <
    ex-date <= `as_of`, of 1 - amount / the raw close of the session before the ex-date (CRSP's and
    Yahoo's multiplier; raw amount over raw close, so the splits cancel out)."""
    days = days_of(bars.timestamps)
    dividends = [
        d
        for d in actions.corporate_actions(seed, symbol).dividends
        if len(days) and days[0] < np.datetime64(d.ex_date) and d.ex_date <= as_of
    ]
    ex_days = np.array([d.ex_date for d in dividends], dtype="datetime64[D]")
    kept = [1 - d.amount / market.close_before(seed, symbol, d.ex_date) for d in dividends]
    return actions.product_after(days, ex_days, np.array(kept, dtype=np.float64))


def events(seed: int, symbol: str, bars: Bars, as_of: dt.date) -> dict:
    """Yahoo's `events` of a chart: the dividends and splits whose ex-date falls within the bars' window,
    keyed and dated by the ex-date's 09:30 open. A kind with no event is left out, as Yahoo leaves it out."""
    if not len(bars):
        return {}
    first, last = days_of(bars.timestamps[[0, -1]]).astype(object)
    splits = [s for s in _splits_by(seed, symbol, as_of) if first <= s.ex_date <= last]
    found = {
        "dividends": _dividend_events(adjusted_dividends(seed, symbol, first, last, as_of)),
        "splits": _split_events(splits),
    }
    return {kind: items for kind, items in found.items() if items}


def adjusted_dividends(
    seed: int, symbol: str, first: dt.date, last: dt.date, as_of: dt.date
) -> list[tuple[dt.date, float]]:
    """The ex-dates and amounts of the dividends from `first` to `last` as Yahoo tells them on `as_of`:
    each amount divided by the ratios of the splits after it up to `as_of`."""
    paid = [d for d in actions.corporate_actions(seed, symbol).dividends if first <= d.ex_date <= last]
    later = _split_factors(
        _splits_by(seed, symbol, as_of), np.array([d.ex_date for d in paid], "datetime64[D]")
    )
    return [(d.ex_date, d.amount / factor) for d, factor in zip(paid, later.tolist(), strict=True)]


def _dividend_events(paid: list[tuple[dt.date, float]]) -> dict:
    found = {}
    for ex_date, amount in paid:
        stamp = calendars.epoch(ex_date, OPEN_TIME)
        found[str(stamp)] = {"amount": amount, "date": stamp}
    return found


def _split_events(splits: list[Split]) -> dict:
    found = {}
    for split in splits:
        stamp = calendars.epoch(split.ex_date, OPEN_TIME)
        ratio = f"{split.numerator}:{split.denominator}"
        found[str(stamp)] = {
            "date": stamp,
            "numerator": split.numerator,
            "denominator": split.denominator,
            "splitRatio": ratio,
        }
    return found


@dataclass(frozen=True)
class Latest:
    """The last session as quotes describe it, read from the very bars the chart serves."""

    day: dt.date
    time: int  # regularMarketTime: the last trade's minute, the close once the session has closed
    open: float
    high: float
    low: float
    price: float
    previous_close: float  # split-adjusted: on an ex-date the day's change is a real move
    volume: int
    year: Bars  # the trailing 52 weeks, split-adjusted, for ranges and averages
    closed: bool  # the session is over: its bar is final


def latest(seed: int, symbol: str, now: dt.datetime) -> Latest:
    """The last session of the symbol's calendar: a quote always has a price, even on a day the chart sends as
    a null bar. Its own prices are raw, as no split after it is known yet."""
    calendar = instrument(symbol).calendar
    day = calendars.last_session(now, calendar)
    raw = market.bars_between(seed, symbol, 0.0, day - dt.timedelta(days=400), day)
    bars = split_adjusted(seed, symbol, raw, day)
    close = calendars.epoch(day, calendar.close_time, calendar.zone)
    closed = now.timestamp() >= close
    # Quotes move by the minute, so that a chart and a quote asked for together agree on the time.
    market_time = close if closed else int(now.timestamp()) // 60 * 60
    year_ago = calendars.epoch(day - dt.timedelta(days=365), calendar.open_time, calendar.zone)
    year = bars[np.searchsorted(bars.timestamps, year_ago) :]
    return Latest(
        day,
        market_time,
        float(bars.open[-1]),
        float(bars.high[-1]),
        float(bars.low[-1]),
        float(bars.close[-1]),
        float(bars.close[-2]),
        int(bars.volume[-1]),
        year,
        closed,
    )
