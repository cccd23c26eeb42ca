"""Yahoo Finance's JSON bodies for the synthetic market: Yahoo's keys, nesting and JSON types, made-up
values."""

import calendar
import datetime as dt
from typing import Any

import numpy as np

from etl.emulator import history, market
from etl.emulator.history import Latest
from etl.emulator.market import FIRST_DAY, NEW_YORK, OPEN_TIME, Bars

VALID_RANGES = ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"]
_RANGE_MONTHS = {"1mo": 1, "3mo": 3, "6mo": 6, "1y": 12, "2y": 24, "5y": 60, "10y": 120}
_RANGE_SESSIONS = {"1d": 1, "5d": 5}
DAILY_INTERVALS = ("1d", "5d", "1wk", "1mo", "3mo")
_YAHOO_INTERVALS = "1m, 2m, 5m, 15m, 30m, 60m, 90m, 1h, 4h, 1d, 5d, 1wk, 1mo, 3mo"
FIRST_TRADE = market.epoch(FIRST_DAY, OPEN_TIME)
# A bar's prior close may lie before a window's first session, across a long weekend.
_LOOKBACK = dt.timedelta(days=14)


class BadRequest(Exception):
    """A chart request Yahoo refuses: its HTTP status and Yahoo's error body."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status, self.body = status, error_body("chart", code, description)


def error_body(envelope: str, code: str, description: str) -> dict:
    return {envelope: {"result": None, "error": {"code": code, "description": description}}}


def names(symbol: str) -> dict:
    return {"shortName": f"{symbol} Synthetic", "longName": f"{symbol} Synthetic Inc."}


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
    interval = params.get("interval", "1d")
    result: dict[str, Any] = {"meta": _chart_meta(symbol, latest, previous_close, params, now)}
    if not len(bars):
        result["indicators"] = {"quote": [{}]}
        return {"chart": {"result": [result], "error": None}}
    events = history.events(seed, symbol, bars, latest.day)
    adjclose = bars.close * history.dividend_multipliers(seed, symbol, bars, latest.day)
    stamps = bars.timestamps.tolist()
    if interval == "1d" and stamps[-1] == market.epoch(latest.day, OPEN_TIME):
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
    if "period1" in params or "period2" in params:
        start, end = _period(params)
        first = _day_of(start)
        bars = market.bars_between(
            seed, symbol, null_fraction, first - _LOOKBACK, min(_day_of(end), last_day)
        )
        lo, hi = np.searchsorted(bars.timestamps, [start, end])
    else:
        first = _range_start(params.get("range", "1d"), last_day)
        bars = market.bars_between(seed, symbol, null_fraction, first - _LOOKBACK, last_day)
        lo, hi = np.searchsorted(bars.timestamps, market.epoch(first, OPEN_TIME)), len(bars)
    bars = history.split_adjusted(seed, symbol, bars, last_day)
    window, before = bars[lo:hi], bars.close[:lo]
    before, opens = before[~np.isnan(before)], window.open[~np.isnan(window.open)]
    # Nothing before the window (it starts at the first session): Yahoo falls back on the first open.
    return window, float(before[-1] if len(before) else opens[0] if len(opens) else 0.0)


def _day_of(epoch_s: int) -> dt.date:
    moment = dt.datetime.fromtimestamp(min(max(epoch_s, -(2**31)), 2**32), NEW_YORK)
    return min(max(moment.date(), FIRST_DAY - _LOOKBACK), dt.date(2100, 12, 31))


def _range_start(period: str, last_day: dt.date) -> dt.date:
    """The first day of a `range` ending at `last_day`: Yahoo counts months back and starts the day after."""
    if period in _RANGE_SESSIONS:
        return market.previous_session(last_day, _RANGE_SESSIONS[period] - 1)
    if period == "ytd":
        return dt.date(last_day.year, 1, 1)
    if period == "max":
        return FIRST_DAY
    year, month = divmod(last_day.year * 12 + last_day.month - 1 - _RANGE_MONTHS[period], 12)
    day = min(last_day.day, calendar.monthrange(year, month + 1)[1])
    return dt.date(year, month + 1, day) + dt.timedelta(days=1)


def _grouped(bars: Bars, adjclose: np.ndarray, interval: str) -> tuple[Bars, np.ndarray]:
    """Daily bars merged into weeks, months, quarters or runs of 5 sessions, each stamped with its first
    open, and the adjusted close of each one's last bar."""
    days = (bars.timestamps // 86400).astype("datetime64[D]")
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


def _zone(now: dt.datetime) -> tuple[str | None, int]:
    """The exchange's time-zone abbreviation and UTC offset in seconds at `now`."""
    offset = now.utcoffset()
    assert offset is not None, "`now` is in the exchange's time zone"
    return now.tzname(), int(offset.total_seconds())


def _trading_period(now: dt.datetime) -> dict:
    day = market.trading_day(now)
    zone, offset = _zone(dt.datetime.combine(day, OPEN_TIME, NEW_YORK))

    def part(start: tuple[int, int], end: tuple[int, int]) -> dict:
        return {
            "timezone": zone,
            "start": market.epoch(day, dt.time(*start)),
            "end": market.epoch(day, dt.time(*end)),
            "gmtoffset": offset,
        }

    return {"pre": part((4, 0), (9, 30)), "regular": part((9, 30), (16, 0)), "post": part((16, 0), (20, 0))}


def _chart_meta(symbol: str, latest: Latest, previous_close: float, params: dict, now: dt.datetime) -> dict:
    zone, offset = _zone(now)
    return {
        "currency": "USD",
        "symbol": symbol,
        "exchangeName": "NMS",
        "fullExchangeName": "NasdaqGS",
        "instrumentType": "EQUITY",
        "firstTradeDate": FIRST_TRADE,
        "regularMarketTime": latest.time,
        "hasPrePostMarketData": True,
        "gmtoffset": offset,
        "timezone": zone,
        "exchangeTimezoneName": "America/New_York",
        "regularMarketPrice": latest.price,
        "fiftyTwoWeekHigh": float(np.max(latest.year.high)),
        "fiftyTwoWeekLow": float(np.min(latest.year.low)),
        "regularMarketDayHigh": latest.high,
        "regularMarketDayLow": latest.low,
        "regularMarketVolume": latest.volume,
        **names(symbol),
        "chartPreviousClose": previous_close,
        "priceHint": 2,
        "currentTradingPeriod": _trading_period(now),
        "dataGranularity": params.get("interval", "1d"),
        "range": params.get("range", ""),
        "validRanges": VALID_RANGES,
    }


def quote_object(seed: int, symbol: str, latest: Latest, now: dt.datetime) -> dict:
    """One entry of `/v7/finance/quote`'s result: the last session of the very bars the chart serves."""
    zone, offset = _zone(now)
    return {
        "language": "en-US",
        "region": "US",
        "quoteType": "EQUITY",
        "typeDisp": "Equity",
        "quoteSourceName": "Synthetic Real Time Price",
        "triggerable": True,
        "customPriceAlertConfidence": "HIGH",
        "currency": "USD",
        "exchange": "NMS",
        "fullExchangeName": "NasdaqGS",
        "financialCurrency": "USD",
        "market": "us_market",
        "messageBoardId": f"finmb_{market.stable_seed(symbol)}",
        "esgPopulated": False,
        "exchangeTimezoneName": "America/New_York",
        "exchangeTimezoneShortName": zone,
        "gmtOffSetMilliseconds": offset * 1000,
        "marketState": market.market_state(now),
        "hasPrePostMarketData": True,
        "firstTradeDateMilliseconds": FIRST_TRADE * 1000,
        "priceHint": 2,
        "sourceInterval": 15,
        "exchangeDataDelayedBy": 0,
        "tradeable": False,
        "cryptoTradeable": False,
        "corporateActions": [],
        **names(symbol),
        "displayName": f"{symbol} Synthetic",
        **_regular_market(latest),
        **_extended_hours(seed, symbol, latest, now),
        **_trailing(latest),
        **_per_share(seed, symbol, latest),
        "symbol": symbol,
    }


def _regular_market(latest: Latest) -> dict:
    price, previous = latest.price, latest.previous_close
    return {
        "regularMarketPrice": price,
        "regularMarketTime": latest.time,
        "regularMarketChange": round(price - previous, 6),
        "regularMarketChangePercent": round(100 * (price / previous - 1), 6),
        "regularMarketOpen": latest.open,
        "regularMarketDayHigh": latest.high,
        "regularMarketDayLow": latest.low,
        "regularMarketDayRange": f"{latest.low} - {latest.high}",
        "regularMarketVolume": latest.volume,
        "regularMarketPreviousClose": previous,
        "bid": round(price * 0.999, 2),
        "ask": round(price * 1.001, 2),
        "bidSize": 1,
        "askSize": 1,
    }


def _extended_hours(seed: int, symbol: str, latest: Latest, now: dt.datetime) -> dict:
    """Yahoo quotes the post market once the session has closed, and the pre market before the next opens."""
    rng = np.random.default_rng([market.stable_seed(seed, symbol, "extended"), latest.day.toordinal()])
    fields: dict[str, Any] = {}
    is_pre = market.market_state(now) == "PRE"
    for prefix, end, quoted in (
        ("postMarket", dt.time(20, 0), latest.closed),
        ("preMarket", OPEN_TIME, is_pre),
    ):
        if quoted:
            price = round(latest.price * (1 + rng.normal(0, 0.003)), 2)
            end_s = market.epoch(now.date() if prefix == "preMarket" else latest.day, end)
            fields |= {
                f"{prefix}ChangePercent": round(100 * (price / latest.price - 1), 6),
                f"{prefix}Price": price,
                f"{prefix}Change": round(price - latest.price, 6),
                f"{prefix}Time": min(int(now.timestamp()), end_s),
            }
    return fields


def _trailing(latest: Latest) -> dict:
    """52-week range and moving averages of the trailing year."""
    year, price = latest.year, latest.price
    high, low = float(year.high.max()), float(year.low.min())
    fields: dict[str, Any] = {
        "fiftyTwoWeekHigh": high,
        "fiftyTwoWeekLow": low,
        "fiftyTwoWeekRange": f"{low} - {high}",
        "fiftyTwoWeekChangePercent": round(100 * (price / float(year.close[0]) - 1), 6),
        "averageDailyVolume10Day": int(year.volume[-10:].mean()),
        "averageDailyVolume3Month": int(year.volume[-63:].mean()),
        "fiftyDayAverage": round(float(year.close[-50:].mean()), 4),
        "twoHundredDayAverage": round(float(year.close[-200:].mean()), 4),
    }
    for name, level in (
        ("fiftyTwoWeekHigh", high),
        ("fiftyTwoWeekLow", low),
        ("fiftyDayAverage", fields["fiftyDayAverage"]),
        ("twoHundredDayAverage", fields["twoHundredDayAverage"]),
    ):
        fields[f"{name}Change"] = round(price - level, 6)
        fields[f"{name}ChangePercent"] = round(price / level - 1, 6)
    return fields


def _per_share(seed: int, symbol: str, latest: Latest) -> dict:
    """Valuation of the synthetic company, and its dividends."""
    company, price = market.company(seed, symbol), latest.price
    eps_year = round((company.eps + company.eps_forward) / 2, 4)
    earnings = market.epoch(latest.day + dt.timedelta(days=7 + company.shares % 80), dt.time(16, 30))
    return {
        "sharesOutstanding": company.shares,
        "marketCap": int(price * company.shares),
        "epsTrailingTwelveMonths": company.eps,
        "epsForward": company.eps_forward,
        "epsCurrentYear": eps_year,
        "priceEpsCurrentYear": round(price / eps_year, 6),
        "trailingPE": round(price / company.eps, 6),
        "forwardPE": round(price / company.eps_forward, 6),
        "bookValue": company.book_value,
        "priceToBook": round(price / company.book_value, 6),
        **_dividends(seed, symbol, latest),
        "averageAnalystRating": "2.0 - Buy",
        "earningsTimestamp": earnings,
        "earningsTimestampStart": earnings,
        "earningsTimestampEnd": earnings,
        "earningsCallTimestampStart": earnings + 1800,
        "earningsCallTimestampEnd": earnings + 1800,
        "isEarningsDateEstimate": True,
    }


def _dividends(seed: int, symbol: str, latest: Latest) -> dict:
    """Yahoo's dividend keys: the trailing year's dividends (over the previous close), the last one a year
    ahead (over the price, in percent) and its payment date, 3 days after the ex-date at midnight UTC; for a
    symbol that has paid none in a year, zeros and no more, as Yahoo sends."""
    year_ago = latest.day - dt.timedelta(days=365)
    paid = history.adjusted_dividends(seed, symbol, year_ago + dt.timedelta(days=1), latest.day, latest.day)
    if not paid:
        return {"trailingAnnualDividendRate": 0.0, "trailingAnnualDividendYield": 0.0}
    trailing, (last_ex, last_amount) = round(sum(amount for _, amount in paid), 4), paid[-1]
    rate = round(4 * last_amount, 4)
    paid_on = dt.datetime.combine(last_ex + dt.timedelta(days=3), dt.time(0, 0), dt.UTC)
    return {
        "dividendDate": int(paid_on.timestamp()),
        "trailingAnnualDividendRate": trailing,
        "dividendRate": rate,
        "trailingAnnualDividendYield": round(trailing / latest.previous_close, 10),
        "dividendYield": round(100 * rate / latest.price, 2),
    }
