"""The markets' calendars: which days have a daily bar, at what local time Yahoo stamps it, and the hours
that Yahoo's marketState and currentTradingPeriod tell. Every function takes the NYSE's unless told."""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo

import numpy as np

NEW_YORK = ZoneInfo("America/New_York")
FIRST_DAY = dt.date(1990, 1, 2)
LAST_YEAR = 2100
OPEN_TIME = dt.time(9, 30)
CLOSE_TIME = dt.time(16, 0)
# A market open around the clock: Yahoo's regular period runs from 00:00 to 23:59, its pre and post are empty.
_MIDNIGHT, _LAST_MINUTE = dt.time(0, 0), dt.time(23, 59)
_MONDAY, _THURSDAY = 0, 3
# Every calendar stamps its bars between 23:00 UTC the day before (midnight in a London summer) and 14:30 UTC
# (09:30 in a New York winter): two hours on, a stamp is on its local date in UTC.
_STAMP_TO_DATE_S = 2 * 3600


@dataclass(frozen=True, eq=False, kw_only=True)  # one object a market: compared and hashed by identity
class Calendar:
    """A market's trading days and hours; its daily bars are stamped with its open, in its zone."""

    name: str
    zone: ZoneInfo
    weekmask: str  # numpy's: the weekdays it trades, Monday first
    holidays: Callable[[int], list[dt.date]]  # the weekdays of a year it is shut
    sessions_a_year: int  # a usual year's, to scale a daily volatility to a year's
    open_time: dt.time
    close_time: dt.time
    # Yahoo's pre market runs from pre_open to the open, its post market from the close to post_close.
    pre_open: dt.time
    post_close: dt.time


def epoch(day: dt.date, time: dt.time, zone: ZoneInfo = NEW_YORK) -> int:
    return int(dt.datetime.combine(day, time, zone).timestamp())


def zone_at(now: dt.datetime, calendar: Calendar) -> tuple[str, int]:
    """The calendar's time-zone abbreviation (EST, GMT, UTC) and UTC offset in seconds at `now`."""
    local = now.astimezone(calendar.zone)
    offset = local.utcoffset() or dt.timedelta()  # never None: the zone is a real one
    return local.tzname() or calendar.zone.key, int(offset.total_seconds())


def days_of(stamps: np.ndarray) -> np.ndarray:
    """The local dates (datetime64[D]) of bars' or events' stamps, in any calendar."""
    return ((stamps + _STAMP_TO_DATE_S) // 86400).astype("datetime64[D]")


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


def _new_years_day(year: int) -> list[dt.date]:
    # A New Year's Day on a Saturday is not made up on the Friday before: that Friday closes a year.
    return [] if dt.date(year, 1, 1).weekday() == 5 else [_observed(dt.date(year, 1, 1))]


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
        *_new_years_day(year),
    ]
    if year >= 2022:
        days.append(_observed(dt.date(year, 6, 19)))
    return sorted(days)


def cme_holidays(year: int) -> list[dt.date]:
    """The days CME's Globex is shut all day; on the other US holidays it trades a short session, which Yahoo
    prints as a bar (its GC=F answer has no bar on New Year's Day, and quotes it on Presidents' Day)."""
    days = [_easter(year) - dt.timedelta(days=2), _observed(dt.date(year, 12, 25)), *_new_years_day(year)]
    return sorted(days)


def _no_holidays(year: int) -> list[dt.date]:
    return []


NYSE = Calendar(
    name="NYSE",
    zone=NEW_YORK,
    weekmask="1111100",
    holidays=nyse_holidays,
    sessions_a_year=252,
    open_time=OPEN_TIME,
    close_time=CLOSE_TIME,
    pre_open=dt.time(4, 0),
    post_close=dt.time(20, 0),
)
# Yahoo's recorded answers: GC=F's bars at 00:00 New York, EURUSD=X's at 00:00 London (every weekday, New
# Year's Day too), BTC-USD's at 00:00 UTC every day; each with a regular period of 00:00 to 23:59.
_AROUND_THE_CLOCK = {
    "open_time": _MIDNIGHT,
    "close_time": _LAST_MINUTE,
    "pre_open": _MIDNIGHT,
    "post_close": _LAST_MINUTE,
}
CME = Calendar(
    name="CME",
    zone=NEW_YORK,
    weekmask="1111100",
    holidays=cme_holidays,
    sessions_a_year=255,
    **_AROUND_THE_CLOCK,
)
FX = Calendar(
    name="FX",
    zone=ZoneInfo("Europe/London"),
    weekmask="1111100",
    holidays=_no_holidays,
    sessions_a_year=260,
    **_AROUND_THE_CLOCK,
)
CRYPTO = Calendar(
    name="CRYPTO",
    zone=ZoneInfo("UTC"),
    weekmask="1111111",
    holidays=_no_holidays,
    sessions_a_year=365,
    **_AROUND_THE_CLOCK,
)


@cache
def sessions(year: int, calendar: Calendar = NYSE) -> tuple[np.ndarray, np.ndarray]:
    """The year's trading days (datetime64[D]) and the epoch seconds of their opens."""
    days = np.arange(np.datetime64(f"{year}-01-01"), np.datetime64(f"{year + 1}-01-01"))
    days = days[np.is_busday(days, weekmask=calendar.weekmask, holidays=calendar.holidays(year))]
    if year == FIRST_DAY.year:
        days = days[days >= np.datetime64(FIRST_DAY)]
    opens = [epoch(day, calendar.open_time, calendar.zone) for day in days.astype(object)]
    return days, np.array(opens, dtype=np.int64)


def is_session(day: dt.date, calendar: Calendar = NYSE) -> bool:
    return np.datetime64(day) in sessions(day.year, calendar)[0]


def last_session(now: dt.datetime, calendar: Calendar = NYSE) -> dt.date:
    """The latest trading day whose session has opened by `now` (in the calendar's zone)."""
    local = now.astimezone(calendar.zone)
    day = local.date() if local.time() >= calendar.open_time else local.date() - dt.timedelta(days=1)
    while not is_session(day, calendar):
        day -= dt.timedelta(days=1)
    return day


def previous_session(day: dt.date, back: int, calendar: Calendar = NYSE) -> dt.date:
    """The trading day `back` sessions before `day` (a trading day)."""
    days = np.concatenate([sessions(day.year - 1, calendar)[0], sessions(day.year, calendar)[0]])
    return days[np.searchsorted(days, np.datetime64(day)) - back].astype(object)


@cache
def _every_session(calendar: Calendar) -> np.ndarray:
    """Every session from FIRST_DAY to the end of the year after LAST_YEAR (datetime64[D])."""
    return np.concatenate([sessions(year, calendar)[0] for year in range(FIRST_DAY.year, LAST_YEAR + 2)])


def sessions_on_or_after(days: np.ndarray, calendar: Calendar = NYSE) -> np.ndarray:
    every = _every_session(calendar)
    return every[np.searchsorted(every, days)]


def session_on_or_after(day: dt.date, calendar: Calendar = NYSE) -> dt.date:
    every = _every_session(calendar)
    return every[np.searchsorted(every, np.datetime64(day))].astype(object)


def market_state(now: dt.datetime, calendar: Calendar = NYSE) -> str:
    """Yahoo's marketState at `now`: a market open around the clock is REGULAR all its trading day."""
    local = now.astimezone(calendar.zone)
    if not is_session(local.date(), calendar):
        return "CLOSED"
    if calendar.pre_open == calendar.open_time:
        return "REGULAR"
    ends = (calendar.pre_open, calendar.open_time, calendar.close_time, calendar.post_close)
    for end, state in zip(ends, ("PREPRE", "PRE", "REGULAR", "POST"), strict=True):
        if local.time() < end:
            return state
    return "POSTPOST"


def first_open(calendar: Calendar = NYSE) -> int:
    """Yahoo's firstTradeDate: the open of FIRST_DAY, a session in every calendar."""
    return epoch(FIRST_DAY, calendar.open_time, calendar.zone)


def trading_day(now: dt.datetime, calendar: Calendar = NYSE) -> dt.date:
    """The session Yahoo's currentTradingPeriod describes: today's, else the next one."""
    day = now.astimezone(calendar.zone).date()
    while not is_session(day, calendar):
        day += dt.timedelta(days=1)
    return day
