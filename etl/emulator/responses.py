"""Yahoo Finance's chart bodies for the synthetic market, and its error bodies: Yahoo's keys, nesting and JSON
types, each instrument as Yahoo describes its kind, made-up values (the quotes: etl/emulator/quotes.py)."""

import datetime as dt
from calendar import monthrange
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from etl.emulator import calendars, history, market
from etl.emulator.calendars import FIRST_DAY, LAST_YEAR, Calendar, days_of, zone_at
from etl.emulator.history import Latest
from etl.emulator.instruments import instrument, names
from etl.emulator.market import Bars

VALID_RANGES = ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"]
_RANGE_MONTHS = {"1mo": 1, "3mo": 3, "6mo": 6, "1y": 12, "2y": 24, "5y": 60, "10y": 120}
_RANGE_SESSIONS = {"1d": 1, "5d": 5}
DAILY_INTERVALS = ("1d", "5d", "1wk", "1mo", "3mo")
_YAHOO_INTERVALS = "1m, 2m, 5m, 15m, 30m, 60m, 90m, 1h, 4h, 1d, 5d, 1wk, 1mo, 3mo"
FIRST_TRADE = calendars.first_open()  # a stock's, as etl/emulator/fundamentals.py tells it
# A bar's prior close may lie before a window's first session, across a long weekend.
_LOOKBACK = dt.timedelta(days=14)


class BadRequest(Exception):
    """A chart request Yahoo refuses: its HTTP status and Yahoo's error body."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status, self.body = status, error_body("chart", code, description)


def error_body(envelope: str, code: str, description: str) -> dict:
    return {envelope: {"result": None, "error": {"code": code, "description": description}}}


def check_chart_params(params: dict) -> None:
    """Refuse what Yahoo refuses, in Yahoo's words, and the intraday intervals that only the emulator
    lacks."""
    interval = params.get("interval", "1d")
    if interval in _YAHOO_INTERVALS.split(", ") and interval not in DAILY_INTERVALS:
        raise BadRequest(
            400,
            "Bad Request",
            f"Invalid input - interval={interval} is not supported by the "
            f"Yahoo emulator: it serves daily data only {DAILY_INTERVALS}",
        )
    if interval not in DAILY_INTERVALS:
        raise BadRequest(
            400,
            "Bad Request",
            f"Invalid input - interval={interval} is not supported. Valid intervals: [{_YAHOO_INTERVALS}]",
        )
    if "range" in params and params["range"] not in VALID_RANGES:
        raise BadRequest(
            422, "Unprocessable Entity", f"{interval} data not available for range={params['range']}"
        )
    start, end = _period(params)
    if start > end:
        raise BadRequest(
            400,
            "Bad Request",
            f"Invalid input - start date cannot be after end date. startDate = {start}, endDate = {end}",
        )


def _period(params: dict) -> tuple[int, int]:
    try:
        return int(float(params.get("period1", 0))), int(float(params.get("period2", 2**31)))
    except ValueError:
        raise BadRequest(
            400, "Bad Request", "Invalid input - period1 and period2 must be epoch seconds"
        ) from None


def chart_body(seed: int, symbol: str, null_fraction: float, params: dict, now: dt.datetime) -> dict:
    """`/v8/finance/chart/{symbol}`: meta, then timestamps, the window's events and OHLCV lists (null for a
    missing bar), as Yahoo tells them on the last session by `now` (see etl/emulator/history.py)."""
    if not {"range", "period1", "period2"} & params.keys():
        params = {**params, "range": "1d"}  # what Yahoo answers a bare chart request, less its 1m bars
    latest = history.latest(seed, symbol, now)
    bars, previous_close = _window(seed, symbol, null_fraction, params, latest.day)
    interval, calendar = params.get("interval", "1d"), instrument(symbol).calendar
    result: dict[str, Any] = {"meta": _chart_meta(symbol, latest, previous_close, params, now)}
    if not len(bars):
        result["indicators"] = {"quote": [{}]}
        return {"chart": {"result": [result], "error": None}}
    events = history.events(seed, symbol, bars, latest.day)
    adjclose = bars.close * history.dividend_multipliers(seed, symbol, bars, latest.day)
    stamps = bars.timestamps.tolist()
    if interval == "1d" and stamps[-1] == calendars.epoch(latest.day, calendar.open_time, calendar.zone):
        # Yahoo stamps the last session's bar with the time of its last trade, not the open.
        stamps[-1] = latest.time
    elif interval != "1d":
        bars, adjclose = _grouped(bars, adjclose, interval)
        stamps = bars.timestamps.tolist()
    quote = {name: _floats(getattr(bars, name)) for name in ("open", "high", "low", "close")}
    quote["volume"] = _ints(bars.volume)
    result["timestamp"] = stamps
    if events:  # Yahoo's order: timestamp, events, indicators
        result["events"] = events
    result["indicators"] = {"quote": [quote], "adjclose": [{"adjclose": _floats(adjclose)}]}
    return {"chart": {"result": [result], "error": None}}


def _window(
    seed: int, symbol: str, null_fraction: float, params: dict, last_day: dt.date
) -> tuple[Bars, float]:
    """The bars asked for (a `range`, or `period1` <= open < `period2`) and the close before the first,
    split-adjusted as of `last_day`."""
    calendar = instrument(symbol).calendar
    if "period1" in params or "period2" in params:
        start, end = _period(params)
        first = _day_of(start, calendar.zone)
        last = min(_day_of(end, calendar.zone), last_day)
        bars = market.bars_between(seed, symbol, null_fraction, first - _LOOKBACK, last)
        lo, hi = np.searchsorted(bars.timestamps, [start, end])
    else:
        first = _range_start(params.get("range", "1d"), last_day, calendar)
        bars = market.bars_between(seed, symbol, null_fraction, first - _LOOKBACK, last_day)
        opened = calendars.epoch(first, calendar.open_time, calendar.zone)
        lo, hi = np.searchsorted(bars.timestamps, opened), len(bars)
    bars = history.split_adjusted(seed, symbol, bars, last_day)
    window, before = bars[lo:hi], bars.close[:lo]
    before, opens = before[~np.isnan(before)], window.open[~np.isnan(window.open)]
    # Nothing before the window (it starts at the first session): Yahoo falls back on the first open.
    return window, float(before[-1] if len(before) else opens[0] if len(opens) else 0.0)


def _day_of(epoch_s: int, zone: ZoneInfo) -> dt.date:
    moment = dt.datetime.fromtimestamp(min(max(epoch_s, -(2**31)), 2**32), zone)
    return min(max(moment.date(), FIRST_DAY - _LOOKBACK), dt.date(LAST_YEAR, 12, 31))


def _range_start(period: str, last_day: dt.date, calendar: Calendar) -> dt.date:
    """The first day of a `range` ending at `last_day`: Yahoo counts months back and starts the day after."""
    if period in _RANGE_SESSIONS:
        return calendars.previous_session(last_day, _RANGE_SESSIONS[period] - 1, calendar)
    if period == "ytd":
        return dt.date(last_day.year, 1, 1)
    if period == "max":
        return FIRST_DAY
    year, month = divmod(last_day.year * 12 + last_day.month - 1 - _RANGE_MONTHS[period], 12)
    day = min(last_day.day, monthrange(year, month + 1)[1])
    return dt.date(year, month + 1, day) + dt.timedelta(days=1)


def _grouped(bars: Bars, adjclose: np.ndarray, interval: str) -> tuple[Bars, np.ndarray]:
    """Daily bars merged into weeks, months, quarters or runs of 5 sessions, each stamped with its first
    open, and the adjusted close of each one's last bar."""
    days = days_of(bars.timestamps)
    if interval == "5d":
        keys = np.arange(len(days)) // 5
    elif interval == "1wk":
        keys = days - (days.astype(np.int64) + 3) % 7  # back to Monday: 1970-01-01 was a Thursday
    else:
        keys = days.astype("datetime64[M]").astype(np.int64) // (3 if interval == "3mo" else 1)
    starts = np.concatenate([[0], np.flatnonzero(keys[1:] != keys[:-1]) + 1])
    ends = np.append(starts[1:], len(days))
    present = ~np.isnan(bars.close)
    empty = ~np.logical_or.reduceat(present, starts)
    valid = np.flatnonzero(present) if present.any() else np.zeros(1, dtype=np.int64)
    first = valid[np.minimum(np.searchsorted(valid, starts), len(valid) - 1)]
    last = valid[np.maximum(np.searchsorted(valid, ends) - 1, 0)]
    volume = np.add.reduceat(np.nan_to_num(bars.volume), starts)
    grouped = Bars(
        bars.timestamps[starts],
        np.where(empty, np.nan, bars.open[first]),
        np.fmax.reduceat(bars.high, starts),
        np.fmin.reduceat(bars.low, starts),
        np.where(empty, np.nan, bars.close[last]),
        np.where(empty, np.nan, volume),
    )
    return grouped, np.where(empty, np.nan, adjclose[last])


def _floats(values: np.ndarray) -> list:
    missing = np.isnan(values)
    if not missing.any():
        return values.tolist()
    return [None if gap else v for v, gap in zip(values.tolist(), missing.tolist(), strict=True)]


def _ints(values: np.ndarray) -> list:
    missing = np.isnan(values)
    whole = np.where(missing, 0, values).astype(np.int64).tolist()
    if not missing.any():
        return whole
    return [None if gap else v for v, gap in zip(whole, missing.tolist(), strict=True)]


def _trading_period(now: dt.datetime, calendar: Calendar) -> dict:
    day = calendars.trading_day(now, calendar)
    zone, offset = zone_at(dt.datetime.combine(day, calendar.open_time, calendar.zone), calendar)

    def part(start: dt.time, end: dt.time) -> dict:
        return {
            "timezone": zone,
            "start": calendars.epoch(day, start, calendar.zone),
            "end": calendars.epoch(day, end, calendar.zone),
            "gmtoffset": offset,
        }

    return {
        "pre": part(calendar.pre_open, calendar.open_time),
        "regular": part(calendar.open_time, calendar.close_time),
        "post": part(calendar.close_time, calendar.post_close),
    }


def _chart_meta(symbol: str, latest: Latest, previous_close: float, params: dict, now: dt.datetime) -> dict:
    found = instrument(symbol)
    zone, offset = zone_at(now, found.calendar)
    return {
        "currency": found.currency,
        "symbol": symbol,
        "exchangeName": found.exchange,
        "fullExchangeName": found.full_exchange_name,
        "instrumentType": found.quote_type.value,
        "firstTradeDate": calendars.first_open(found.calendar),
        "regularMarketTime": latest.time,
        "hasPrePostMarketData": found.pre_post,
        "gmtoffset": offset,
        "timezone": zone,
        "exchangeTimezoneName": found.calendar.zone.key,
        "regularMarketPrice": latest.price,
        "fiftyTwoWeekHigh": float(np.max(latest.year.high)),
        "fiftyTwoWeekLow": float(np.min(latest.year.low)),
        "regularMarketDayHigh": latest.high,
        "regularMarketDayLow": latest.low,
        "regularMarketVolume": latest.volume,
        **names(symbol, latest.day),
        "chartPreviousClose": previous_close,
        "priceHint": found.price_hint,
        "currentTradingPeriod": _trading_period(now, found.calendar),
        "dataGranularity": params.get("interval", "1d"),
        "range": params.get("range", ""),
        "validRanges": VALID_RANGES,
    }
