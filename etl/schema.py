"""Every table of the lake: its Arrow schema and its hive partition key, defined once."""

from dataclasses import dataclass

import pyarrow as pa

SCHEMA_VERSION = "1"
UTC_TIME = pa.timestamp("us", tz="UTC")
PRICE = pa.float64()


@dataclass(frozen=True)
class Table:
    """A table of the lake; `partition_key` names its hive folder level, if it has one."""

    name: str
    schema: pa.Schema
    partition_key: str | None = None


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
        ]
    ),
    partition_key="date",
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
    partition_key="year",
)

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
    t.name: t for t in (QUOTES, BARS, DIVIDENDS, SPLITS, QUARANTINE, FAILURES, BATCHES, RUNS)
}

# Written by `python -m etl compact`, not by runs: one row a file that a compaction replaced.
COMPACTIONS = Table(
    "compactions",
    pa.schema(
        [
            ("compaction_id", pa.string()),
            ("compacted_at", UTC_TIME),
            ("table_name", pa.string()),
            ("replaced_file", pa.string()),
            ("compacted_file", pa.string()),
        ]
    ),
)
