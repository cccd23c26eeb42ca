"""Deterministic synthetic market data on each instrument's calendar: a seeded random walk per symbol, its
splits and dividends, and its prices as the exchange printed them; not real prices."""

import datetime as dt
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from etl.emulator import calendars
from etl.emulator.calendars import FIRST_DAY, LAST_YEAR, epoch, previous_session, sessions
from etl.emulator.instruments import STOCK_DAILY_SD, Instrument, instrument

# Yearly anchors of each walk are drawn forward and backward from here, so today's prices stay plausible.
_ANCHOR_YEAR = 2025
_PAYER_SHARE = 0.38
_SPLITTER_SHARE = 0.2
_SPLITS_PER_YEAR = 0.45
_SPLIT_RATIOS = ((2, 1), (3, 1), (3, 2), (4, 1), (5, 1), (10, 1))
_SPLIT_WEIGHTS = (0.4, 0.15, 0.2, 0.12, 0.08, 0.05)
# Splits are kept only while the raw prices they move stay within this factor of the anchor year's level.
_SPLIT_BAND = 3.0
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


def stable_seed(*parts: object) -> int:
    """A seed that is the same in every process (Python's hash() is salted)."""
    return zlib.crc32(":".join(map(str, parts)).encode())


@lru_cache(maxsize=4096)
def _year_anchors(seed: int, symbol: str) -> np.ndarray:
    """The walk's close on the eve of each year from FIRST_DAY's to LAST_YEAR's: about the instrument's level
    in 2025 (else 10..500), each year's from the year before's as a random walk goes, or from the level for an
    instrument that comes back to it."""
    found = instrument(symbol)
    rng = np.random.default_rng(stable_seed(seed, symbol))
    if found.level is None:
        log_level = np.log(rng.uniform(10, 500))
    else:  # a day off the round level, so that no bar closes exactly on it
        log_level = np.log(found.level) + rng.normal(0, found.daily_sd)
    years = LAST_YEAR - FIRST_DAY.year + 1
    if found.yearly_sd is None:
        yearly_sd = found.daily_sd * np.sqrt(found.calendar.sessions_a_year)
        walk = np.cumsum(np.concatenate([[0.0], rng.normal(0.05, yearly_sd, years)]))
    else:
        walk = rng.normal(0, found.yearly_sd, years + 1)
    return np.exp(log_level + walk - walk[_ANCHOR_YEAR - FIRST_DAY.year])


@dataclass(frozen=True)
class Split:
    """A stock split: from its ex-date on, `numerator` shares stand for every `denominator` held before."""

    ex_date: dt.date
    numerator: int
    denominator: int

    @property
    def ratio(self) -> float:
        return self.numerator / self.denominator


@dataclass(frozen=True)
class Dividend:
    """A cash dividend: `amount` a share as paid, in the money of its ex-date (no later split divides it)."""

    ex_date: dt.date
    amount: float


@dataclass(frozen=True)
class Actions:
    """A symbol's corporate actions over the whole calendar, each kind in ex-date order."""

    splits: tuple[Split, ...]
    dividends: tuple[Dividend, ...]


@lru_cache(maxsize=4096)
def corporate_actions(seed: int, symbol: str) -> Actions:
    """The splits and dividends of a symbol, fixed by (seed, symbol) alone: never by the clock.

    About _PAYER_SHARE of symbols pay a dividend every quarter of every year, on a schedule of their own,
    at a yield of 0.5..4 % a year of the raw price. About _SPLITTER_SHARE split now and then (2:1, 3:1,
    3:2, 4:1, 5:1, 10:1), _SPLITS_PER_YEAR on average; see _kept_splits for the ones that never happen.
    Every ex-date is an NYSE session, and a split never shares one with a dividend. An instrument other than
    a stock or an ETF has none.
    """
    if not instrument(symbol).actions:
        return Actions((), ())
    rng = np.random.default_rng(stable_seed(seed, symbol, "actions"))
    pays, splits = rng.random(2) < (_PAYER_SHARE, _SPLITTER_SHARE)
    payout_days = _quarterly_sessions(rng) if pays else np.array([], dtype="datetime64[D]")
    taken = set(payout_days.astype(object).tolist())
    drawn = _kept_splits(seed, symbol, _drawn_splits(rng, taken)) if splits else ()
    yield_a_quarter = rng.uniform(0.005, 0.04) / 4
    return Actions(drawn, _dividends(seed, symbol, payout_days, drawn, yield_a_quarter))


def _quarterly_sessions(rng: np.random.Generator) -> np.ndarray:
    """Four ex-dates a year, every year: the first session on or after a fixed day of every third month."""
    first_month, day = int(rng.integers(1, 4)), int(rng.integers(1, 29))
    years = np.arange(FIRST_DAY.year, LAST_YEAR + 1) - 1970
    months = (years[:, None] * 12 + np.arange(first_month - 1, 12, 3)).ravel().astype("datetime64[M]")
    days = calendars.sessions_on_or_after(months.astype("datetime64[D]") + (day - 1))
    return days[days > np.datetime64(FIRST_DAY)]  # a dividend's multiplier needs the close before it


def _dividends(
    seed: int, symbol: str, days: np.ndarray, splits: tuple[Split, ...], yield_a_quarter: float
) -> tuple[Dividend, ...]:
    """A quarter's yield of the walk's level at the start of each ex-date's year, in the raw money of the
    ex-date, rounded as a company declares it: in cents, or to four places below ten cents."""
    years = days.astype("datetime64[Y]").astype(np.int64) + 1970
    amounts = (
        yield_a_quarter * _year_anchors(seed, symbol)[years - FIRST_DAY.year] * _raw_factors(splits, days)
    )
    amounts = np.where(amounts >= 0.1, np.round(amounts, 2), np.maximum(np.round(amounts, 4), 0.0001))
    return tuple(map(Dividend, days.astype(object).tolist(), amounts.tolist()))


def _drawn_splits(rng: np.random.Generator, taken: set[dt.date]) -> list[Split]:
    """A Poisson process of splits over the calendar, in ex-date order, none on a day in `taken`."""
    span_days = (dt.date(LAST_YEAR, 10, 1) - FIRST_DAY).days
    count = rng.poisson(_SPLITS_PER_YEAR * span_days / 365.25)
    offsets = np.sort(rng.integers(1, span_days, count))
    ratios = rng.choice(len(_SPLIT_RATIOS), count, p=_SPLIT_WEIGHTS)
    splits: list[Split] = []
    for offset, ratio in zip(offsets.tolist(), ratios.tolist(), strict=True):
        day = calendars.session_on_or_after(FIRST_DAY + dt.timedelta(days=offset))
        while day in taken:
            day = calendars.session_on_or_after(day + dt.timedelta(days=1))
        taken.add(day)
        splits.append(Split(day, *_SPLIT_RATIOS[ratio]))
    return sorted(splits, key=lambda split: split.ex_date)


def _kept_splits(seed: int, symbol: str, drawn: list[Split]) -> tuple[Split, ...]:
    """The drawn splits that keep raw prices within _SPLIT_BAND of the anchor year's level.

    Raw prices are pinned to the walk at the start of _ANCHOR_YEAR, so a split after it divides the prices
    after it and one before it multiplies the prices before it. Taken outward from there, a split is kept
    only if the prices it moves stay inside the band: otherwise, as the walk drifts far less than splits
    would, raw prices a few decades away would be thousands of dollars or fractions of a cent.
    """
    anchor = dt.date(_ANCHOR_YEAR, 1, 1)
    level = _walk_level(seed, symbol, anchor)
    kept, factor = [], 1.0
    for split in (s for s in drawn if s.ex_date > anchor):
        if _walk_level(seed, symbol, split.ex_date) / (factor * split.ratio) >= level / _SPLIT_BAND:
            kept.append(split)
            factor *= split.ratio
    factor = 1.0
    for split in (s for s in reversed(drawn) if s.ex_date < anchor):
        if _walk_level(seed, symbol, split.ex_date) * factor * split.ratio <= level * _SPLIT_BAND:
            kept.append(split)
            factor *= split.ratio
    return tuple(sorted(kept, key=lambda split: split.ex_date))


def _walk_level(seed: int, symbol: str, day: dt.date) -> float:
    """The walk's level on a day, geometrically between the anchors of its year (no bars drawn)."""
    anchors = np.log(_year_anchors(seed, symbol))
    start = anchors[day.year - FIRST_DAY.year]
    fraction = (day - dt.date(day.year, 1, 1)).days / 365.25
    return float(np.exp(start + fraction * (anchors[day.year - FIRST_DAY.year + 1] - start)))


def product_after(days: np.ndarray, ex_days: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each day, the product of the values whose ex-day (sorted) comes after it (1.0 for none)."""
    after = np.append(np.cumprod(values[::-1])[::-1], 1.0)
    return after[np.searchsorted(ex_days, days, side="right")]


def _raw_factors(splits: tuple[Split, ...], days: np.ndarray) -> np.ndarray:
    """Raw price / walk on each day: the ratios of the splits after it, over those after _ANCHOR_YEAR began.

    1.0 from the last split before _ANCHOR_YEAR to the first split in or after it; each split before
    multiplies the raw prices before it, each split after divides the raw prices from its ex-date on.
    """
    ex_days = np.array([split.ex_date for split in splits], dtype="datetime64[D]")
    ratios = np.array([split.ratio for split in splits], dtype=np.float64)
    anchor = np.array([np.datetime64(f"{_ANCHOR_YEAR}-01-01")])
    return product_after(days, ex_days, ratios) / product_after(anchor, ex_days, ratios)[0]


@lru_cache(maxsize=2048)
def year_bars(seed: int, symbol: str, null_fraction: float, year: int) -> Bars:
    """Every session of one year as the exchange printed it: the same (seed, symbol, date) always gives
    the same bar.

    Each price is the walk's times _raw_factors (the splits), rounded to the instrument's decimals; the volume
    is the walk's divided by the same factor, so that a split changes the number of shares and not the money
    traded.
    """
    found = instrument(symbol)
    anchors = _year_anchors(seed, symbol)
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
    factor = _raw_factors(corporate_actions(seed, symbol).splits, days)
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
