"""Yahoo's JSON to narrow Arrow record batches, one per table per batch of symbols."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.compute as pc

from etl.errors import SchemaError
from etl.schema import BARS, QUOTES

_BAR_PRICES = ("open", "high", "low", "close")
# Yahoo's quote field for each quotes column, renamed once here.
_QUOTE_FIELDS = {
    "price": "regularMarketPrice",
    "open": "regularMarketOpen",
    "day_high": "regularMarketDayHigh",
    "day_low": "regularMarketDayLow",
    "previous_close": "regularMarketPreviousClose",
    "volume": "regularMarketVolume",
    "market_cap": "marketCap",
    "exchange_tz": "exchangeTimezoneName",
    "currency": "currency",
}


def to_bars(run_id: str, charts: Sequence[tuple[str, dict]]) -> pa.RecordBatch:
    """Daily bars of several symbols from their chart results; all-null bars are dropped."""
    parts = []
    for symbol, chart in charts:
        with _fitting("bars", symbol):
            parts.append(_chart_to_table(symbol, chart))
    parts = [part for part in parts if part.num_rows]
    if not parts:
        return _empty(BARS.schema)
    table = pa.concat_tables(parts).combine_chunks()
    table = table.filter(_has_any_value(table))
    run_ids = pa.array([run_id] * table.num_rows, pa.string())
    return pa.RecordBatch.from_arrays(
        [run_ids, *(c.combine_chunks() for c in table.columns)], schema=BARS.schema
    )


def _chart_to_table(symbol: str, chart: dict) -> pa.Table:
    timestamps = chart.get("timestamp") or []
    indicators = chart.get("indicators") or {}
    quote = (indicators.get("quote") or [{}])[0]
    adjclose = (indicators.get("adjclose") or [{}])[0].get("adjclose")
    tz = (chart.get("meta") or {}).get("exchangeTimezoneName") or "UTC"
    n = len(timestamps)
    moments = pa.array(timestamps, pa.timestamp("s", tz=tz))
    columns = {
        "symbol": pa.array([symbol] * n, pa.string()),
        # A bar's date is the exchange's trading date, not the UTC date of its timestamp.
        "date": pc.cast(pc.local_timestamp(moments), pa.date32()),
    }
    for name in _BAR_PRICES:
        columns[name] = _floats(quote.get(name), n)
    columns["adj_close"] = _floats(adjclose, n)
    columns["volume"] = pc.cast(_floats(quote.get("volume"), n), pa.int64())
    return pa.table(columns)


def _floats(values: list | None, n: int) -> pa.Array:
    if values is None or len(values) != n:
        return pa.nulls(n, pa.float64())
    return pa.array(values, pa.float64())


def _has_any_value(table: pa.Table) -> pa.ChunkedArray:
    valid = [pc.is_valid(table[name]) for name in (*_BAR_PRICES, "volume")]
    mask = valid[0]
    for other in valid[1:]:
        mask = pc.or_(mask, other)
    return mask


def to_quotes(run_id: str, quotes: Sequence[dict]) -> pa.RecordBatch:
    """One row a symbol from Yahoo's quote objects, columns renamed to ours."""
    columns: dict[str, list] = {
        "run_id": [run_id] * len(quotes),
        "symbol": [q.get("symbol") for q in quotes],
        "name": [q.get("longName") or q.get("shortName") for q in quotes],
        "exchange": [q.get("fullExchangeName") or q.get("exchange") for q in quotes],
        "quote_time": [_micros(q.get("regularMarketTime")) for q in quotes],
    }
    for column, field in _QUOTE_FIELDS.items():
        columns[column] = [q.get(field) for q in quotes]
    arrays = [_to_quote_array(columns[f.name], f, columns["symbol"]) for f in QUOTES.schema]
    return pa.RecordBatch.from_arrays(arrays, schema=QUOTES.schema)


def _micros(epoch_s: int | float | None) -> int | None:
    return None if epoch_s is None else int(epoch_s * 1_000_000)


def _to_quote_array(values: list, field: pa.Field, symbols: list) -> pa.Array:
    """A quotes column; a value that does not fit it is a SchemaError naming its symbol."""
    try:
        return _to_array(values, field.type)
    except _ARROW_ERRORS:
        # Only on failure: the values one by one, to name the symbol whose value does not fit.
        for symbol, value in zip(symbols, values, strict=True):
            with _fitting(f"quotes.{field.name}", symbol):
                _to_array([value], field.type)
        raise


# What pyarrow raises for a value its target type cannot hold.
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError)


@contextmanager
def _fitting(what: str, symbol: str) -> Iterator[None]:
    try:
        yield
    except _ARROW_ERRORS as exc:
        reason = str(exc).splitlines()[0]
        raise SchemaError(f"{what} of {symbol} does not fit the lake's schema ({reason})") from exc


def _to_array(values: list, type_: pa.DataType) -> pa.Array:
    # Yahoo sends some integers (volume, market cap) as floats; cast checks nothing is lost.
    if pa.types.is_integer(type_):
        return pc.cast(pa.array(values, pa.float64()), type_)
    return pa.array(values, type_)


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=schema)
