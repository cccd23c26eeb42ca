"""Every table of the lake: its Arrow schema, its Delta partition columns and how a run writes it, defined
once."""

from dataclasses import dataclass

import pyarrow as pa

SCHEMA_VERSION = "1"
UTC_TIME = pa.timestamp("us", tz="UTC")
PRICE = pa.float64()


# The Delta partition columns a table's rows gain when they are published, from a column of the row
# (bars' date) or the run's own date (quotes); staged rows never carry them.
PARTITION_TYPES = {"year": pa.int32(), "month": pa.int32(), "date": pa.date32()}


@dataclass(frozen=True)
class Table:
    """A table of the lake.

    `partition_by`: its Delta partition columns (PARTITION_TYPES). `merge_key`: a run MERGEs its rows on these
    columns, a row replaced only by one of a later run; without one, a run appends. `staged_as`: the staged
    table whose rows it is published from (bar_revisions from the bars), if not its own.
    """

    name: str
    schema: pa.Schema
    partition_by: tuple[str, ...] = ()
    merge_key: tuple[str, ...] = ()
    staged_as: str | None = None
    # Columns added after the table's first release: a table written before lacks them until the next publish
    # adds them (etl/lake/delta.py), and reads them as null meanwhile.
    added_columns: tuple[str, ...] = ()
    # MERGE replaces a row only when one of its values changed, so run_id says which run last changed it.
    update_changed_only: bool = False
    # A table new since the lake's first Delta release: a lake written before has none until the next
    # collect creates it, and its readers read it as empty meanwhile.
    added_later: bool = False

    @property
    def lake_schema(self) -> pa.Schema:
        """The schema of the table's Delta table: its columns, then its partition columns."""
        return pa.schema(
            [*self.schema, *(pa.field(name, PARTITION_TYPES[name]) for name in self.partition_by)]
        )


QUOTES = Table(
    "quotes",
    pa.schema(
        [
            ("run_id", pa.string()),
            ("symbol", pa.string()),
            ("name", pa.string()),
            ("currency", pa.string()),
            ("exchange", pa.string()),
            ("exchange_tz", pa.string()),
            ("price", PRICE),
            ("open", PRICE),
            ("day_high", PRICE),
            ("day_low", PRICE),
            ("previous_close", PRICE),
            ("volume", pa.int64()),
            ("market_cap", pa.int64()),
            ("quote_time", UTC_TIME),
            # Yahoo's quoteType: EQUITY, ETF, INDEX, CURRENCY, CRYPTOCURRENCY, FUTURE, MUTUALFUND
            ("quote_type", pa.string()),
        ]
    ),
    partition_by=("date",),
    added_columns=("quote_type",),
)

BARS = Table(
    "bars",
    pa.schema(
        [
            ("run_id", pa.string()),
            ("symbol", pa.string()),
            ("date", pa.date32()),
            ("open", PRICE),
            ("high", PRICE),
            ("low", PRICE),
            ("close", PRICE),
            ("adj_close", PRICE),
            ("volume", pa.int64()),
        ]
    ),
    # By month: a daily run's 5-day revision window rewrites a month's file, not a year's (README, The lake).
    partition_by=("year", "month"),
    merge_key=("symbol", "date"),
)

# Every bar every run fetched, as it fetched it, appended: which run changed which bar, and from what.
BAR_REVISIONS = Table("bar_revisions", BARS.schema, partition_by=("year",), staged_as="bars")

# Yahoo's chart events, one row an event a run; small tables, so no partition. ex_date is the exchange's
# trading date of the ex-date session, and amount, numerator and denominator are as of that day (as paid).
DIVIDENDS = Table(
    "dividends",
    pa.schema(
        [
            ("run_id", pa.string()),
            ("symbol", pa.string()),
            ("ex_date", pa.date32()),
            ("amount", PRICE),
            ("currency", pa.string()),
        ]
    ),
    merge_key=("symbol", "ex_date"),
)

SPLITS = Table(
    "splits",
    pa.schema(
        [
            ("run_id", pa.string()),
            ("symbol", pa.string()),
            ("ex_date", pa.date32()),
            ("numerator", pa.float64()),
            ("denominator", pa.float64()),
            # numerator / denominator: shares after the split for each share before it (4:1 is 4.0)
            ("ratio", pa.float64()),
        ]
    ),
    merge_key=("symbol", "ex_date"),
)

# What the universe file says each symbol is: one current row a symbol, from the manifest of the run that
# last changed it. A symbol that leaves the universe keeps its row, as its bars stay in the lake.
SYMBOLS = Table(
    "symbols",
    pa.schema(
        [
            ("run_id", pa.string()),
            ("symbol", pa.string()),
            ("name", pa.string()),
            ("sector", pa.string()),  # GICS sector; null for a benchmark
            ("industry", pa.string()),  # GICS sub-industry
            ("benchmark", pa.bool_()),
        ]
    ),
    merge_key=("symbol",),
    update_changed_only=True,
    added_later=True,
)

RUNS = Table(
    "runs",
    pa.schema(
        [
            ("run_id", pa.string()),
            ("started_at", UTC_TIME),
            ("finished_at", UTC_TIME),
            ("status", pa.string()),
            ("message", pa.string()),
            ("n_symbols", pa.int32()),
            ("n_batches", pa.int32()),
            ("batch_size", pa.int32()),
            ("api_calls", pa.int64()),
            ("source_url", pa.string()),
            ("settings", pa.string()),
        ]
    ),
)

BATCHES = Table(
    "batches",
    pa.schema(
        [
            ("run_id", pa.string()),
            ("batch_no", pa.int32()),
            ("n_symbols", pa.int32()),
            ("n_ok", pa.int32()),
            ("n_failed", pa.int32()),
            ("api_calls", pa.int64()),
            ("started_at", UTC_TIME),
            ("fetch_s", pa.float64()),
            ("write_s", pa.float64()),
            ("rss_mb_before", pa.float64()),
            ("rss_mb_after", pa.float64()),
            ("uss_mb_after", pa.float64()),
            ("arrow_mb_after", pa.float64()),
            ("gc_ran", pa.bool_()),
            ("bar_rows", pa.int64()),
            ("quote_rows", pa.int64()),
            # Where the batch ran: the Ray node's id on a cluster, else the host's name; and the process.
            ("node_id", pa.string()),
            ("pid", pa.int32()),
        ]
    ),
)

FAILURES = Table(
    "failures",
    pa.schema(
        [
            ("run_id", pa.string()),
            ("batch_no", pa.int32()),
            ("symbol", pa.string()),
            ("outcome", pa.string()),
            ("error_type", pa.string()),
            ("message", pa.string()),
        ]
    ),
)

QUARANTINE = Table(
    "quarantine",
    pa.schema(
        [
            ("run_id", pa.string()),
            ("table_name", pa.string()),
            ("symbol", pa.string()),
            ("date", pa.date32()),
            ("reason", pa.string()),
            ("row_json", pa.string()),
        ]
    ),
)

# Data tables first, the run's manifest (`runs`) last: readers trust a run once its `runs` row exists.
TABLES: dict[str, Table] = {
    t.name: t
    for t in (QUOTES, BARS, BAR_REVISIONS, DIVIDENDS, SPLITS, SYMBOLS, QUARANTINE, FAILURES, BATCHES, RUNS)
}
