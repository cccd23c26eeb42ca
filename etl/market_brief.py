"""The market brief: the facts a daily market script is written from (benchmarks, sectors, breadth, movers,
unusual volume, gaps, corporate actions), each section a table macro of sql/brief.sql over the lake's views.

The JSON form is the script generator's contract, versioned by BRIEF_VERSION and described by
docs/brief.schema.json: a change that removes or renames a field or changes its meaning is a new major
version; a new field or section is a new minor one.
"""

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal

import duckdb

from etl.errors import ConfigError, LakeError
from etl.queries import fetch_dicts, load_sql

BRIEF_VERSION = "1.0"


@dataclass(frozen=True)
class Section:
    """A section of the brief: the sql/brief.sql macro that answers it, and whether it takes the top n."""

    name: str
    title: str
    top_n: bool = False


# In the order a market script uses them: the benchmarks open it, the day's corporate actions close it.
SECTIONS = (
    Section("benchmarks", "Benchmarks"),
    Section("sector_moves", "Sector moves"),
    Section("breadth", "Breadth"),
    Section("movers", "Top movers", top_n=True),
    Section("unusual_volume", "Unusual volume", top_n=True),
    Section("gaps", "Gaps", top_n=True),
    Section("corporate_actions", "Corporate actions"),
)


def latest_trading_day(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    """The latest day on which a stock of the lake has a bar; None before any has."""
    return fetch_dicts(con, load_sql("brief_days"), {"day": None})[0]["latest"]


def brief_day(con: duckdb.DuckDBPyConnection, day: dt.date | None) -> dt.date:
    """The day to brief: the given one, or the latest trading day in the lake; a day with no bars is refused
    in one line naming the trading day nearest it."""
    days = fetch_dicts(con, load_sql("brief_days"), {"day": day})[0]
    if days["latest"] is None:
        raise LakeError("the lake holds no bar of a stock yet; run `etl collect` first")
    if day is None:
        return days["latest"]
    if not days["has_day"]:
        raise ConfigError(
            f"--date {day.isoformat()}: no stock in the lake has a bar that day (a weekend, a holiday, or "
            f"not collected); the nearest trading day in the lake is {days['nearest'].isoformat()}"
        )
    return day


def market_brief(
    con: duckdb.DuckDBPyConnection, day: dt.date, top_n: int, sections: tuple[Section, ...] = SECTIONS
) -> dict:
    """The brief of the day: its version, the day, and one object a section with its rows (every section, or
    those asked for)."""
    brief: dict = {"brief_version": BRIEF_VERSION, "day": day.isoformat()}
    for section in sections:
        params = {"day": day, "top_n": top_n} if section.top_n else {"day": day}
        # A statement, not con.table_function: a relation is bound holding Python's lock, and DuckDB's
        # threads reading a bucket's files through the lake's fsspec filesystem wait on it for ever.
        rows = fetch_dicts(con, f"from {section.name}({', '.join('$' + name for name in params)})", params)
        brief[section.name] = {"title": section.title, "rows": [_to_json_row(row) for row in rows]}
    return brief


def _to_json_row(row: dict) -> dict:
    """A row in JSON's values: numbers as numbers (a NaN, which JSON has not, as null), dates as ISO
    text."""
    return {name: _to_json_value(value) for name, value in row.items()}


def _to_json_value(value: object) -> object:
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
