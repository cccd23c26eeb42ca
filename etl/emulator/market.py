"""Deterministic synthetic market data for any symbol: a seeded random walk, clearly not real prices."""

import datetime as dt
import zlib
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

NEW_YORK = ZoneInfo("America/New_York")
FIRST_DAY = dt.date(2000, 1, 3)
OPEN_TIME = dt.time(9, 30)
CLOSE_TIME = dt.time(16, 0)


@dataclass(frozen=True)
class Series:
    """A symbol's whole daily history up to its last trading day; prices are NaN on a null bar."""

    timestamps: np.ndarray  # int64 epoch seconds of each session's open
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # float64, so a null bar can be NaN
    shares_outstanding: int
    market_time: int  # epoch seconds of the last price


def market_now() -> dt.datetime:
    return dt.datetime.now(NEW_YORK)


def last_session(now: dt.datetime) -> dt.date:
    """The latest weekday whose session has opened by `now` (New York time)."""
    day = now.date() if now.time() >= OPEN_TIME else now.date() - dt.timedelta(days=1)
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


@lru_cache(maxsize=4)
def session_opens(last_day: dt.date) -> np.ndarray:
    """Epoch seconds of 09:30 New York on every weekday from FIRST_DAY to last_day."""
    days = np.arange(np.datetime64(FIRST_DAY), np.datetime64(last_day) + 1)
    days = days[np.is_busday(days)]
    return np.array([_epoch(d, OPEN_TIME) for d in days.astype(object)], dtype=np.int64)


def _epoch(day: dt.date, time: dt.time) -> int:
    return int(dt.datetime.combine(day, time, NEW_YORK).timestamp())


def stable_seed(*parts: object) -> int:
    """A seed that is the same in every process (Python's hash() is salted)."""
    return zlib.crc32(":".join(map(str, parts)).encode())


# Small on purpose: the demo runs the emulator inside the measured process, and a series is cheap to redo.
@lru_cache(maxsize=64)
def daily_series(seed: int, symbol: str, null_fraction: float, now_minute: dt.datetime) -> Series:
    """The symbol's bars; the same (seed, symbol, date) always gives the same bar."""
    last_day = last_session(now_minute)
    opens = session_opens(last_day)
    rng = np.random.default_rng(stable_seed(seed, symbol))
    n = len(opens)
    close = rng.uniform(10, 500) * np.exp(np.cumsum(rng.normal(0.0001, 0.012, n)))
    open_ = np.concatenate(([close[0]], close[:-1])) * np.exp(rng.normal(0, 0.005, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.008, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.008, n)))
    volume = np.floor(rng.lognormal(15, 0.5, n))
    nulls = np.random.default_rng(stable_seed(seed, symbol, "nulls")).random(n) < null_fraction
    prices = [np.where(nulls, np.nan, np.round(a, 4)) for a in (open_, high, low, close)]
    market_close = _epoch(last_day, CLOSE_TIME)
    return Series(
        opens, *prices, np.where(nulls, np.nan, volume),
        shares_outstanding=int(rng.uniform(1e8, 1e10)),
        market_time=min(market_close, int(now_minute.timestamp())),
    )
