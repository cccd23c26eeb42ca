"""Each symbol's seeded random walk, year by year: the anchors that its bars, its splits and dividends and its
company's figures are all drawn from, so that they agree with one another and with any process's."""

import datetime as dt
import zlib
from functools import lru_cache

import numpy as np

from etl.emulator.calendars import FIRST_DAY, LAST_YEAR
from etl.emulator.instruments import instrument

# Yearly anchors of each walk are drawn forward and backward from here, so today's prices stay plausible.
ANCHOR_YEAR = 2025


def stable_seed(*parts: object) -> int:
    """A seed that is the same in every process (Python's hash() is salted)."""
    return zlib.crc32(":".join(map(str, parts)).encode())


@lru_cache(maxsize=4096)
def year_anchors(seed: int, symbol: str) -> np.ndarray:
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
    return np.exp(log_level + walk - walk[ANCHOR_YEAR - FIRST_DAY.year])


def walk_level(seed: int, symbol: str, day: dt.date) -> float:
    """The walk's level on a day, geometrically between the anchors of its year (no bars drawn)."""
    anchors = np.log(year_anchors(seed, symbol))
    start = anchors[day.year - FIRST_DAY.year]
    fraction = (day - dt.date(day.year, 1, 1)).days / 365.25
    return float(np.exp(start + fraction * (anchors[day.year - FIRST_DAY.year + 1] - start)))
