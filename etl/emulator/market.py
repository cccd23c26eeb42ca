"""Deterministic synthetic market data on each instrument's calendar: its prices as the exchange printed them,
drawn about its seeded walk (walk.py) and moved by its splits (actions.py), and its company's figures; not
real prices."""

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from etl.emulator import actions
from etl.emulator.calendars import FIRST_DAY, LAST_YEAR, epoch, previous_session, sessions
from etl.emulator.instruments import STOCK_DAILY_SD, Instrument, instrument
from etl.emulator.walk import ANCHOR_YEAR, stable_seed, year_anchors

# The sds of a stock's open gap and wicks, as fractions of its price; another's scale with its daily sd.
_OPEN_GAP, _WICK = 0.004, 0.007


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


@lru_cache(maxsize=2048)
def year_bars(seed: int, symbol: str, null_fraction: float, year: int) -> Bars:
    """Every session of one year as the exchange printed it: the same (seed, symbol, date) always gives
    the same bar.

    Each price is the walk's times actions.raw_factors (the splits), rounded to the instrument's decimals; the
    volume is the walk's divided by the same factor, so that a split changes the number of shares and not the
    money traded.
    """
    found = instrument(symbol)
    anchors = year_anchors(seed, symbol)
    start, end = anchors[year - FIRST_DAY.year], anchors[year - FIRST_DAY.year + 1]
    days, opens = sessions(year, found.calendar)
    n = len(days)
    noise = np.random.default_rng([stable_seed(seed, symbol), year]).standard_normal((5, n))
    # A random walk pinned at both ends of the year (a Brownian bridge), so years are drawn independently.
    steps = found.daily_sd * noise[0]
    steps += (np.log(end / start) - steps.sum()) / n
    close = start * np.exp(np.cumsum(steps))
    scale = found.daily_sd / STOCK_DAILY_SD
    open_ = np.concatenate(([start], close[:-1])) * np.exp(_OPEN_GAP * scale * noise[1])
    factor = actions.raw_factors(actions.corporate_actions(seed, symbol).splits, days)
    decimals = found.price_hint
    tick = 10.0**-decimals
    open_, close = (np.round(np.maximum(price * factor, tick), decimals) for price in (open_, close))
    high = np.round(np.maximum(open_, close) * (1 + _WICK * scale * np.abs(noise[2])), decimals)
    low = np.round(np.minimum(open_, close) * (1 - _WICK * scale * np.abs(noise[3])), decimals)
    low = np.maximum(low, tick)
    volume = _volumes(found, noise[4], steps, factor)
    if not null_fraction:
        return Bars(opens, open_, high, low, close, volume)
    nulls = np.random.default_rng([stable_seed(seed, symbol, "nulls"), year]).random(n) < null_fraction
    return Bars(opens, *(np.where(nulls, np.nan, a) for a in (open_, high, low, close, volume)))


def _volumes(found: Instrument, noise: np.ndarray, steps: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """More traded on the days that move more; none for a market that Yahoo sends no volume of."""
    if found.log_volume is None:
        return np.zeros(len(steps))
    return np.floor(np.exp(found.log_volume + 0.6 * noise) * (1 + 20 * np.abs(steps)) / factor)


def bars_between(seed: int, symbol: str, null_fraction: float, first: dt.date, last: dt.date) -> Bars:
    """The bars of every session from `first` to `last`, both included."""
    years = range(max(first.year, FIRST_DAY.year), min(last.year, LAST_YEAR) + 1)
    if not years:
        return year_bars(seed, symbol, null_fraction, FIRST_DAY.year)[0:0]
    bars = Bars.concat([year_bars(seed, symbol, null_fraction, year) for year in years])
    calendar = instrument(symbol).calendar
    opened, closed = (
        epoch(first, calendar.open_time, calendar.zone),
        epoch(last, calendar.close_time, calendar.zone),
    )
    lo, hi = np.searchsorted(bars.timestamps, [opened, closed])
    return bars[lo:hi]


def close_before(seed: int, symbol: str, day: dt.date) -> float:
    """The raw close of the session before `day` (a session), as the exchange printed it."""
    calendar = instrument(symbol).calendar
    before = previous_session(day, 1, calendar)
    at = np.searchsorted(sessions(before.year, calendar)[0], np.datetime64(before))
    return float(year_bars(seed, symbol, 0.0, before.year).close[at])


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
    level = year_anchors(seed, symbol)[ANCHOR_YEAR - FIRST_DAY.year]
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
