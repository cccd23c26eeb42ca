"""Yahoo Finance's JSON bodies, built from the synthetic series with Yahoo's keys, nesting and types."""

import datetime as dt

import numpy as np

from etl.emulator.market import CLOSE_TIME, FIRST_DAY, NEW_YORK, OPEN_TIME, Series

VALID_RANGES = ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"]
_RANGE_DAYS = {"1mo": 31, "3mo": 92, "6mo": 183, "1y": 365, "2y": 730, "5y": 1826, "10y": 3652}
_RANGE_SESSIONS = {"1d": 1, "5d": 5}
FIRST_TRADE = int(dt.datetime.combine(FIRST_DAY, OPEN_TIME, NEW_YORK).timestamp())


def error_body(envelope: str, code: str, description: str) -> dict:
    return {envelope: {"result": None, "error": {"code": code, "description": description}}}


def window(series: Series, params: dict) -> slice:
    """The bars a chart request asks for: a `range`, or `period1` ≤ t < `period2`."""
    ts = series.timestamps
    if "period1" in params or "period2" in params:
        start = np.searchsorted(ts, int(float(params.get("period1", 0))))
        end = np.searchsorted(ts, int(float(params.get("period2", 2**40))))
        return slice(start, end)
    period = params.get("range", "1mo")
    if period in _RANGE_SESSIONS:
        return slice(max(0, len(ts) - _RANGE_SESSIONS[period]), len(ts))
    last_day = dt.datetime.fromtimestamp(int(ts[-1]), NEW_YORK).date()
    first_day = dt.date(last_day.year, 1, 1) if period == "ytd" else last_day - dt.timedelta(days=_RANGE_DAYS.get(period, 0))
    start = 0 if period == "max" else np.searchsorted(ts, int(dt.datetime.combine(first_day, OPEN_TIME, NEW_YORK).timestamp()))
    return slice(start, len(ts))


def chart_body(symbol: str, series: Series, bars: slice, params: dict) -> dict:
    """`/v8/finance/chart/{symbol}`: meta, timestamps and OHLCV lists (null for a missing bar)."""
    result = {"meta": chart_meta(symbol, series, params)}
    timestamps = series.timestamps[bars]
    if len(timestamps) == 0:
        result["indicators"] = {"quote": [{}]}
        return {"chart": {"result": [result], "error": None}}
    # Yahoo stamps the live session's bar with the time of its last price, not the open.
    stamps = timestamps.tolist()
    if bars.stop == len(series.timestamps):
        stamps[-1] = series.market_time
    quote = {name: _values(getattr(series, name)[bars]) for name in ("open", "high", "low", "close")}
    quote["volume"] = _values(series.volume[bars], as_int=True)
    result["timestamp"] = stamps
    result["indicators"] = {"quote": [quote], "adjclose": [{"adjclose": quote["close"]}]}
    return {"chart": {"result": [result], "error": None}}


def _values(array: np.ndarray, as_int: bool = False) -> list:
    missing = np.isnan(array)
    values = np.where(missing, 0, array).astype(np.int64 if as_int else np.float64).tolist()
    if missing.any():
        return [None if gap else v for v, gap in zip(values, missing.tolist())]
    return values


def _last(array: np.ndarray, back: int = 1) -> float | None:
    valid = array[~np.isnan(array)]
    return float(valid[-back]) if len(valid) >= back else None


def _trading_period(day: dt.date) -> dict:
    def moment(hour: int, minute: int) -> int:
        return int(dt.datetime.combine(day, dt.time(hour, minute), NEW_YORK).timestamp())

    zone = {"timezone": _zone_abbrev(day), "gmtoffset": _offset_s(day)}
    return {
        "pre": {**zone, "start": moment(4, 0), "end": moment(9, 30)},
        "regular": {**zone, "start": moment(9, 30), "end": moment(16, 0)},
        "post": {**zone, "start": moment(16, 0), "end": moment(20, 0)},
    }


def _zone_abbrev(day: dt.date) -> str:
    return dt.datetime.combine(day, CLOSE_TIME, NEW_YORK).tzname()


def _offset_s(day: dt.date) -> int:
    return int(dt.datetime.combine(day, CLOSE_TIME, NEW_YORK).utcoffset().total_seconds())


def _names(symbol: str) -> dict:
    return {"longName": f"{symbol} Synthetic Inc.", "shortName": f"{symbol} Synthetic"}


def chart_meta(symbol: str, series: Series, params: dict) -> dict:
    last_day = dt.datetime.fromtimestamp(series.market_time, NEW_YORK).date()
    year = series.close[-252:]
    return {
        "currency": "USD", "symbol": symbol, "exchangeName": "NMS", "fullExchangeName": "NasdaqGS",
        "instrumentType": "EQUITY", "firstTradeDate": FIRST_TRADE, "regularMarketTime": series.market_time,
        "hasPrePostMarketData": True, "gmtoffset": _offset_s(last_day), "timezone": _zone_abbrev(last_day),
        "exchangeTimezoneName": "America/New_York", "regularMarketPrice": _last(series.close),
        "fiftyTwoWeekHigh": float(np.nanmax(year)), "fiftyTwoWeekLow": float(np.nanmin(year)),
        "regularMarketDayHigh": _last(series.high), "regularMarketDayLow": _last(series.low),
        "regularMarketVolume": int(_last(series.volume) or 0), **_names(symbol),
        "chartPreviousClose": _last(series.close, 2), "priceHint": 2,
        "currentTradingPeriod": _trading_period(last_day), "dataGranularity": params.get("interval", "1d"),
        "range": params.get("range", ""), "validRanges": VALID_RANGES,
    }


def quote_object(symbol: str, series: Series) -> dict:
    """One entry of `/v7/finance/quote`'s result: the last session of the same series the chart serves."""
    price, previous = _last(series.close), _last(series.close, 2)
    change = price - previous
    last_day = dt.datetime.fromtimestamp(series.market_time, NEW_YORK).date()
    year = series.close[-252:]
    return {
        "language": "en-US", "region": "US", "quoteType": "EQUITY", "typeDisp": "Equity",
        "quoteSourceName": "Synthetic (market-voices-etl emulator)", "triggerable": True, "currency": "USD",
        "exchange": "NMS", "fullExchangeName": "NasdaqGS", "financialCurrency": "USD", **_names(symbol),
        "marketState": "CLOSED", "hasPrePostMarketData": True, "firstTradeDateMilliseconds": FIRST_TRADE * 1000,
        "priceHint": 2, "regularMarketPrice": price, "regularMarketTime": series.market_time,
        "regularMarketChange": round(change, 4), "regularMarketChangePercent": round(100 * change / previous, 6),
        "regularMarketOpen": _last(series.open), "regularMarketDayHigh": _last(series.high),
        "regularMarketDayLow": _last(series.low), "regularMarketPreviousClose": previous,
        "regularMarketVolume": int(_last(series.volume) or 0),
        "regularMarketDayRange": f"{_last(series.low)} - {_last(series.high)}",
        "fiftyTwoWeekHigh": float(np.nanmax(year)), "fiftyTwoWeekLow": float(np.nanmin(year)),
        "fiftyTwoWeekRange": f"{float(np.nanmin(year))} - {float(np.nanmax(year))}",
        "sharesOutstanding": series.shares_outstanding, "marketCap": int(price * series.shares_outstanding),
        "exchangeTimezoneName": "America/New_York", "exchangeTimezoneShortName": _zone_abbrev(last_day),
        "gmtOffSetMilliseconds": _offset_s(last_day) * 1000, "market": "us_market", "tradeable": False,
        "symbol": symbol,
    }


def summary_modules(symbol: str, series: Series, modules: list[str]) -> dict:
    """`/v10/finance/quoteSummary/{symbol}`: the requested modules that the emulator knows."""
    quote = quote_object(symbol, series)
    known = {
        "price": lambda: {"maxAge": 1, "symbol": symbol, "currency": "USD", "exchange": "NMS",
                          "exchangeName": "NasdaqGS", "quoteType": "EQUITY", **_names(symbol),
                          **{k: quote[k] for k in ("regularMarketPrice", "regularMarketTime", "regularMarketOpen",
                                                   "regularMarketDayHigh", "regularMarketDayLow",
                                                   "regularMarketVolume", "regularMarketPreviousClose",
                                                   "regularMarketChange", "regularMarketChangePercent",
                                                   "marketCap", "marketState")}},
        "summaryDetail": lambda: {"maxAge": 1, "priceHint": 2, "previousClose": quote["regularMarketPreviousClose"],
                                  "open": quote["regularMarketOpen"], "dayLow": quote["regularMarketDayLow"],
                                  "dayHigh": quote["regularMarketDayHigh"], "volume": quote["regularMarketVolume"],
                                  "marketCap": quote["marketCap"], "fiftyTwoWeekLow": quote["fiftyTwoWeekLow"],
                                  "fiftyTwoWeekHigh": quote["fiftyTwoWeekHigh"], "currency": "USD", "tradeable": False},
        "quoteType": lambda: {"exchange": "NMS", "quoteType": "EQUITY", "symbol": symbol,
                              "underlyingSymbol": symbol, **_names(symbol), "firstTradeDateEpochUtc": FIRST_TRADE,
                              "timeZoneFullName": "America/New_York",
                              "timeZoneShortName": quote["exchangeTimezoneShortName"],
                              "gmtOffSetMilliseconds": quote["gmtOffSetMilliseconds"]},
        "financialData": lambda: {"maxAge": 86400, "currentPrice": quote["regularMarketPrice"],
                                  "recommendationKey": "none", "financialCurrency": "USD"},
        "defaultKeyStatistics": lambda: {"maxAge": 1, "priceHint": 2, "sharesOutstanding": series.shares_outstanding,
                                         "floatShares": series.shares_outstanding},
        "assetProfile": lambda: {"country": "United States", "industry": "Synthetic", "sector": "Synthetic",
                                 "longBusinessSummary": "Synthetic company served by the market-voices-etl emulator.",
                                 "maxAge": 86400},
    }
    result = {name: known[name]() for name in modules if name in known}
    return {"quoteSummary": {"result": [result], "error": None}}


def timeseries_body(symbol: str, series: Series | None, types: list[str]) -> dict:
    """`/ws/fundamentals-timeseries/...`: yfinance's `.info` asks it for a few key statistics."""
    if series is None:
        return {"timeseries": {"result": [], "error": None}}
    as_of = dt.datetime.fromtimestamp(series.market_time, NEW_YORK).date()
    result = [
        {
            "meta": {"symbol": [symbol], "type": [name]},
            "timestamp": [series.market_time],
            name: [{"dataId": 0, "asOfDate": as_of.isoformat(), "periodType": "TTM", "currencyCode": "USD",
                    "reportedValue": {"raw": 1.0, "fmt": "1.00"}}],
        }
        for name in types
    ]
    return {"timeseries": {"result": result, "error": None}}
