"""A symbol's corporate actions: splits and quarterly dividends drawn once from (seed, symbol), never from the
clock, so that the raw bars of market.py and Yahoo's adjusted history in history.py tell the same events."""

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from etl.emulator import calendars
from etl.emulator.calendars import FIRST_DAY, LAST_YEAR
from etl.emulator.instruments import instrument
from etl.emulator.walk import ANCHOR_YEAR, stable_seed, walk_level, year_anchors

_PAYER_SHARE = 0.38
_SPLITTER_SHARE = 0.2
_SPLITS_PER_YEAR = 0.45
_SPLIT_RATIOS = ((2, 1), (3, 1), (3, 2), (4, 1), (5, 1), (10, 1))
_SPLIT_WEIGHTS = (0.4, 0.15, 0.2, 0.12, 0.08, 0.05)
# Splits are kept only while the raw prices they move stay within this factor of the anchor year's level.
_SPLIT_BAND = 3.0


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
    amounts = yield_a_quarter * year_anchors(seed, symbol)[years - FIRST_DAY.year] * raw_factors(splits, days)
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

    Raw prices are pinned to the walk at the start of ANCHOR_YEAR, so a split after it divides the prices
    after it and one before it multiplies the prices before it. Taken outward from there, a split is kept
    only if the prices it moves stay inside the band: otherwise, as the walk drifts far less than splits
    would, raw prices a few decades away would be thousands of dollars or fractions of a cent.
    """
    anchor = dt.date(ANCHOR_YEAR, 1, 1)
    level = walk_level(seed, symbol, anchor)
    kept, factor = [], 1.0
    for split in (s for s in drawn if s.ex_date > anchor):
        if walk_level(seed, symbol, split.ex_date) / (factor * split.ratio) >= level / _SPLIT_BAND:
            kept.append(split)
            factor *= split.ratio
    factor = 1.0
    for split in (s for s in reversed(drawn) if s.ex_date < anchor):
        if walk_level(seed, symbol, split.ex_date) * factor * split.ratio <= level * _SPLIT_BAND:
            kept.append(split)
            factor *= split.ratio
    return tuple(sorted(kept, key=lambda split: split.ex_date))


def product_after(days: np.ndarray, ex_days: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each day, the product of the values whose ex-day (sorted) comes after it (1.0 for none)."""
    after = np.append(np.cumprod(values[::-1])[::-1], 1.0)
    return after[np.searchsorted(ex_days, days, side="right")]


def raw_factors(splits: tuple[Split, ...], days: np.ndarray) -> np.ndarray:
    """Raw price / walk on each day: the ratios of the splits after it, over those after ANCHOR_YEAR began.

    1.0 from the last split before ANCHOR_YEAR to the first split in or after it; each split before
    multiplies the raw prices before it, each split after divides the raw prices from its ex-date on.
    """
    ex_days = np.array([split.ex_date for split in splits], dtype="datetime64[D]")
    ratios = np.array([split.ratio for split in splits], dtype=np.float64)
    anchor = np.array([np.datetime64(f"{ANCHOR_YEAR}-01-01")])
    return product_after(days, ex_days, ratios) / product_after(anchor, ex_days, ratios)[0]
