"""Deterministic synthetic market data on the NYSE calendar: a seeded random walk per symbol, not real
prices."""

import datetime as dt
import zlib
from dataclasses import dataclass
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

import numpy as np

NEW_YORK = ZoneInfo("America/New_York")
FIRST_DAY = dt.date(1990, 1, 2)
OPEN_TIME = dt.time(9, 30)
CLOSE_TIME = dt.time(16, 0)
_LAST_YEAR = 2100
# Yearly anchors of each walk are drawn forward and backward from here, so today's prices stay plausible.
_ANCHOR_YEAR = 2025
_DAILY_SD = 0.015
_MONDAY, _THURSDAY = 0, 3


@dataclass(frozen=True)
class Bars:
    """Daily bars in time order; a null bar (Yahoo's missing day) is NaN in every price and the volume."""

    timestamps: np.ndarray  # int64 epoch seconds of each session's open
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # float64, so that a null bar can be NaN

    def __len__(self) -> int:
        return len(self.timestamps)

    def __getitem__(self, rows: slice) -> "Bars":
        return Bars(*(array[rows] for array in self._arrays()))

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return self.timestamps, self.open, self.high, self.low, self.close, self.volume

    @staticmethod
    def concat(parts: list["Bars"]) -> "Bars":
        return Bars(*(np.concatenate(arrays) for arrays in zip(*(p._arrays() for p in parts), strict=True)))


def stable_seed(*parts: object) -> int:
    """A seed that is the same in every process (Python's hash() is salted)."""
    return zlib.crc32(":".join(map(str, parts)).encode())


def epoch(day: dt.date, time: dt.time) -> int:
    return int(dt.datetime.combine(day, time, NEW_YORK).timestamp())


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The n-th (1-based; -1 for the last) given weekday of a month."""
    if n > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (the Meeus/Jones/Butcher algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (b - (b + 8) // 25 + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    to_sunday = (32 + 2 * e + 2 * i - h - k) % 7  # the algorithm's L: days from the full moon to Sunday
    m = (a + 11 * h + 22 * to_sunday) // 451
    month, day = divmod(h + to_sunday - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def _observed(day: dt.date) -> dt.date:
    return day + dt.timedelta(days={5: -1, 6: 1}.get(day.weekday(), 0))


def nyse_holidays(year: int) -> list[dt.date]:
    """NYSE's full-day holidays by today's rules (one-off closures left out)."""
    days = [
        _nth_weekday(year, 1, _MONDAY, 3),
        _nth_weekday(year, 2, _MONDAY, 3),
        _easter(year) - dt.timedelta(days=2),
        _nth_weekday(year, 5, _MONDAY, -1),
        _observed(dt.date(year, 7, 4)),
        _nth_weekday(year, 9, _MONDAY, 1),
        _nth_weekday(year, 11, _THURSDAY, 4),
        _observed(dt.date(year, 12, 25)),
    ]
    # A New Year's Day on a Saturday is not made up on the Friday before: that Friday closes a year.
    if dt.date(year, 1, 1).weekday() != 5:
        days.append(_observed(dt.date(year, 1, 1)))
    if year >= 2022:
        days.append(_observed(dt.date(year, 6, 19)))
    return sorted(days)


@cache
def sessions(year: int) -> tuple[np.ndarray, np.ndarray]:
    """The year's trading days (datetime64[D]) and the epoch seconds of their 09:30 New York opens."""
    days = np.arange(np.datetime64(f"{year}-01-01"), np.datetime64(f"{year + 1}-01-01"))
    days = days[np.is_busday(days, holidays=nyse_holidays(year))]
    if year == FIRST_DAY.year:
        days = days[days >= np.datetime64(FIRST_DAY)]
    opens = np.array([epoch(day, OPEN_TIME) for day in days.astype(object)], dtype=np.int64)
    return days, opens


def is_session(day: dt.date) -> bool:
    return np.datetime64(day) in sessions(day.year)[0]


def last_session(now: dt.datetime) -> dt.date:
    """The latest trading day whose session has opened by `now` (New York time)."""
    day = now.date() if now.time() >= OPEN_TIME else now.date() - dt.timedelta(days=1)
    while not is_session(day):
        day -= dt.timedelta(days=1)
    return day


def previous_session(day: dt.date, back: int) -> dt.date:
    """The trading day `back` sessions before `day` (a trading day)."""
    days = np.concatenate([sessions(day.year - 1)[0], sessions(day.year)[0]])
    return days[np.searchsorted(days, np.datetime64(day)) - back].astype(object)


@lru_cache(maxsize=4096)
def _year_anchors(seed: int, symbol: str) -> np.ndarray:
    """The walk's close on the eve of each year from FIRST_DAY's to _LAST_YEAR's: a level of 10..500 in
    2025."""
    rng = np.random.default_rng(stable_seed(seed, symbol))
    log_level = np.log(rng.uniform(10, 500))
    steps = np.concatenate(
        [[0.0], rng.normal(0.05, _DAILY_SD * np.sqrt(252), _LAST_YEAR - FIRST_DAY.year + 1)]
    )
    walk = np.cumsum(steps)
    return np.exp(log_level + walk - walk[_ANCHOR_YEAR - FIRST_DAY.year])


@lru_cache(maxsize=2048)
def year_bars(seed: int, symbol: str, null_fraction: float, year: int) -> Bars:
    """Every session of one year: the same (seed, symbol, date) always gives the same bar."""
    anchors = _year_anchors(seed, symbol)
    start, end = anchors[year - FIRST_DAY.year], anchors[year - FIRST_DAY.year + 1]
    days, opens = sessions(year)
    n = len(days)
    noise = np.random.default_rng([stable_seed(seed, symbol), year]).standard_normal((5, n))
    # A random walk pinned at both ends of the year (a Brownian bridge), so years are drawn independently.
    steps = _DAILY_SD * noise[0]
    steps += (np.log(end / start) - steps.sum()) / n
    close = start * np.exp(np.cumsum(steps))
    open_ = np.concatenate(([start], close[:-1])) * np.exp(0.004 * noise[1])
    open_, close = np.round(np.maximum(open_, 0.01), 2), np.round(np.maximum(close, 0.01), 2)
    high = np.round(np.maximum(open_, close) * (1 + 0.007 * np.abs(noise[2])), 2)
    low = np.maximum(np.round(np.minimum(open_, close) * (1 - 0.007 * np.abs(noise[3])), 2), 0.01)
    volume = np.floor(np.exp(14.5 + 0.6 * noise[4]) * (1 + 20 * np.abs(steps)))
    if not null_fraction:
        return Bars(opens, open_, high, low, close, volume)
    nulls = np.random.default_rng([stable_seed(seed, symbol, "nulls"), year]).random(n) < null_fraction
    return Bars(opens, *(np.where(nulls, np.nan, a) for a in (open_, high, low, close, volume)))


def bars_between(seed: int, symbol: str, null_fraction: float, first: dt.date, last: dt.date) -> Bars:
    """The bars of every session from `first` to `last`, both included."""
    years = range(max(first.year, FIRST_DAY.year), min(last.year, _LAST_YEAR) + 1)
    if not years:
        return year_bars(seed, symbol, null_fraction, FIRST_DAY.year)[0:0]
    bars = Bars.concat([year_bars(seed, symbol, null_fraction, year) for year in years])
    lo, hi = np.searchsorted(bars.timestamps, [epoch(first, OPEN_TIME), epoch(last, CLOSE_TIME)])
    return bars[lo:hi]


def market_state(now: dt.datetime) -> str:
    """Yahoo's marketState for a US equity at `now`."""
    if not is_session(now.date()):
        return "CLOSED"
    for hour, state in ((4, "PREPRE"), (9.5, "PRE"), (16, "REGULAR"), (20, "POST")):
        if now.hour + now.minute / 60 < hour:
            return state
    return "POSTPOST"


def trading_day(now: dt.datetime) -> dt.date:
    """The session Yahoo's currentTradingPeriod describes: today's, else the next one."""
    day = now.date()
    while not is_session(day):
        day += dt.timedelta(days=1)
    return day


@dataclass(frozen=True)
class Latest:
    """The last session as quotes describe it, read from the very bars the chart serves."""

    day: dt.date
    time: int  # regularMarketTime: the last trade's minute, 16:00 once the session has closed
    open: float
    high: float
    low: float
    price: float
    previous_close: float
    volume: int
    year: Bars  # the trailing 52 weeks, for ranges and averages
    closed: bool  # the session is over: its bar is final


def latest(seed: int, symbol: str, now: dt.datetime) -> Latest:
    """The last session: a quote always has a price, even on a day the chart sends as a null bar."""
    day = last_session(now)
    bars = bars_between(seed, symbol, 0.0, day - dt.timedelta(days=400), day)
    closed = now >= dt.datetime.combine(day, CLOSE_TIME, NEW_YORK)
    # Quotes move by the minute, so that a chart and a quote asked for together agree on the time.
    market_time = epoch(day, CLOSE_TIME) if closed else int(now.timestamp()) // 60 * 60
    year = bars[np.searchsorted(bars.timestamps, epoch(day - dt.timedelta(days=365), OPEN_TIME)) :]
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


@dataclass(frozen=True)
class Company:
    """Synthetic fundamentals of a symbol, fixed by (seed, symbol)."""

    shares: int
    eps: float  # trailing twelve months
    eps_forward: float
    book_value: float  # a share
    revenue_per_share: float
    margins: tuple[float, float, float]  # gross, operating, profit
    beta: float
    employees: int


@lru_cache(maxsize=4096)
def company(seed: int, symbol: str) -> Company:
    """Earnings and book value in proportion to the 2025 price level, so that ratios look like a real
    stock's."""
    rng = np.random.default_rng(stable_seed(seed, symbol, "company"))
    level = _year_anchors(seed, symbol)[_ANCHOR_YEAR - FIRST_DAY.year]
    eps = round(level / rng.uniform(12, 40), 2)
    gross = rng.uniform(0.2, 0.7)
    operating = gross * rng.uniform(0.3, 0.7)
    return Company(
        shares=int(rng.uniform(1e8, 1e10)),
        eps=eps,
        eps_forward=round(eps * rng.uniform(0.9, 1.3), 2),
        book_value=round(level / rng.uniform(1, 15), 3),
        revenue_per_share=round(eps / (operating * 0.8), 3),
        margins=(round(gross, 5), round(operating, 5), round(operating * 0.8, 5)),
        beta=round(rng.uniform(0.5, 1.8), 2),
        employees=int(rng.uniform(200, 200_000)),
    )
