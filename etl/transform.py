"""Yahoo's JSON to narrow Arrow record batches, one per table per batch of symbols; and the universe's members
to the `symbols` table's."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict

import pyarrow as pa
import pyarrow.compute as pc

from etl.errors import SchemaError
from etl.schema import BARS, DIVIDENDS, QUOTES, SPLITS, SYMBOLS
from etl.universe import Member

_BAR_PRICES = ("open", "high", "low", "close")
# What a chart without events gives: most charts, whose window holds no split or no dividend, skip the work.
_NO_SPLITS = pa.schema([f for f in SPLITS.schema if f.name not in ("run_id", "symbol")]).empty_table()
_NO_DIVIDENDS = pa.schema([f for f in DIVIDENDS.schema if f.name != "run_id"]).empty_table()
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
    "quote_type": "quoteType",
}


def to_bars(run_id: str, charts: Sequence[tuple[str, dict]]) -> pa.RecordBatch:
    """Daily bars of several symbols from their chart results, as traded; all-null bars are dropped."""
    parts = []
    for symbol, chart in charts:
        with _fitting("bars", symbol):
            table = _chart_to_table(symbol, chart)
            parts.append(table.filter(_has_any_value(table)))
    return _to_batch(run_id, parts, BARS.schema)


def _chart_to_table(symbol: str, chart: dict) -> pa.Table:
    timestamps = chart.get("timestamp") or []
    indicators = chart.get("indicators") or {}
    quote = (indicators.get("quote") or [{}])[0]
    adjclose = (indicators.get("adjclose") or [{}])[0].get("adjclose")
    n = len(timestamps)
    dates = _trading_dates(timestamps, chart)
    # Yahoo's OHLC and volume are split-adjusted as of the request; stored as traded, a later split changes
    # no stored bar. adj_close stays Yahoo's, as of this run.
    factor = _split_factor(dates, _splits_of(chart))
    columns = {"symbol": pa.array([symbol] * n, pa.string()), "date": dates}
    for name in _BAR_PRICES:
        columns[name] = pc.multiply(_floats(quote.get(name), n), factor)
    columns["adj_close"] = _floats(adjclose, n)
    shares = pc.round(pc.divide(_floats(quote.get("volume"), n), factor))
    try:
        columns["volume"] = pc.cast(shares, pa.int64())
    except _ARROW_ERRORS as exc:
        raise _misfit("bars.volume", symbol, pc.max(pc.abs(shares)).as_py(), exc) from exc
    return pa.table(columns)


def _trading_dates(epochs: list, chart: dict) -> pa.Array:
    """The exchange's trading date of each epoch (a bar's or an event's), not the UTC date."""
    tz = (chart.get("meta") or {}).get("exchangeTimezoneName") or "UTC"
    moments = pa.array(epochs, pa.timestamp("s", tz=tz))
    return pc.cast(pc.local_timestamp(moments), pa.date32())


def _split_factor(dates: pa.Array, splits: pa.Table) -> pa.Array:
    """Per date, the product of the ratios of the splits after it: what undoes Yahoo's split adjustment.

    A split whose numerator or denominator is not above zero is left out (validate quarantines it).
    """
    factor = pa.array([1.0] * len(dates), pa.float64())
    if not splits.num_rows:
        return factor
    usable = pc.and_(pc.greater(splits["numerator"], 0), pc.greater(splits["denominator"], 0))
    for split in splits.filter(pc.fill_null(usable, False)).to_pylist():
        before = pc.less(dates, pa.scalar(split["ex_date"], pa.date32()))
        factor = pc.if_else(before, pc.multiply(factor, split["ratio"]), factor)
    return factor


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


def to_dividends(run_id: str, charts: Sequence[tuple[str, dict]]) -> pa.RecordBatch:
    """The dividends in the charts' events, amounts as paid (Yahoo's are split-adjusted as of the request)."""
    parts = []
    for symbol, chart in charts:
        with _fitting("dividends", symbol):
            parts.append(_dividends_of(symbol, chart))
    return _to_batch(run_id, parts, DIVIDENDS.schema)


def to_splits(run_id: str, charts: Sequence[tuple[str, dict]]) -> pa.RecordBatch:
    """The splits in the charts' events, with ratio = numerator / denominator."""
    parts = []
    for symbol, chart in charts:
        with _fitting("splits", symbol):
            splits = _splits_of(chart)
            parts.append(splits.add_column(0, "symbol", pa.array([symbol] * splits.num_rows, pa.string())))
    return _to_batch(run_id, parts, SPLITS.schema)


def _events(chart: dict, kind: str) -> list[dict]:
    """One kind of the chart's events ("dividends", "splits"), oldest first; Yahoo leaves out what is empty.

    Each is keyed by its epoch, which its `date` repeats.
    """
    events = (chart.get("events") or {}).get(kind) or {}
    dated = [event | {"date": event.get("date", int(key))} for key, event in events.items()]
    return sorted(dated, key=lambda event: event["date"])


def _splits_of(chart: dict) -> pa.Table:
    events = _events(chart, "splits")
    if not events:
        return _NO_SPLITS
    numerator = pa.array([e.get("numerator") for e in events], pa.float64())
    denominator = pa.array([e.get("denominator") for e in events], pa.float64())
    return pa.table(
        {
            "ex_date": _trading_dates([e["date"] for e in events], chart),
            "numerator": numerator,
            "denominator": denominator,
            "ratio": pc.divide(numerator, denominator),
        }
    )


def _dividends_of(symbol: str, chart: dict) -> pa.Table:
    events = _events(chart, "dividends")
    if not events:
        return _NO_DIVIDENDS
    ex_dates = _trading_dates([e["date"] for e in events], chart)
    adjusted = pa.array([e.get("amount") for e in events], pa.float64())
    currency = (chart.get("meta") or {}).get("currency")
    return pa.table(
        {
            "symbol": pa.array([symbol] * len(events), pa.string()),
            "ex_date": ex_dates,
            # Yahoo's amount is per share of the request day: times the ratios of the later splits.
            "amount": pc.multiply(adjusted, _split_factor(ex_dates, _splits_of(chart))),
            "currency": pa.array([currency] * len(events), pa.string()),
        }
    )


def _to_batch(run_id: str, parts: list[pa.Table], schema: pa.Schema) -> pa.RecordBatch:
    """The symbols' tables as one record batch of schema, run_id first."""
    parts = [part for part in parts if part.num_rows]
    if not parts:
        return _empty(schema)
    table = pa.concat_tables(parts).combine_chunks()
    run_ids = pa.array([run_id] * table.num_rows, pa.string())
    return pa.RecordBatch.from_arrays([run_ids, *(c.combine_chunks() for c in table.columns)], schema=schema)


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


def to_symbols(run_id: str, members: Sequence[Member]) -> pa.RecordBatch:
    """One row a member of the universe: what the universe file says it is."""
    rows = [{"run_id": run_id, **asdict(member)} for member in members]
    return pa.RecordBatch.from_pylist(rows, schema=SYMBOLS.schema)


def _micros(epoch_s: int | float | None) -> int | None:
    return None if epoch_s is None else int(epoch_s * 1_000_000)


def _to_quote_array(values: list, field: pa.Field, symbols: list) -> pa.Array:
    """A quotes column; a value that does not fit it is a SchemaError naming its symbol."""
    try:
        return _to_array(values, field.type)
    except _ARROW_ERRORS:
        # Only on failure: the values one by one, to name the symbol whose value does not fit.
        for symbol, value in zip(symbols, values, strict=True):
            try:
                _to_array([value], field.type)
            except _ARROW_ERRORS as exc:
                raise _misfit(f"quotes.{field.name}", symbol, value, exc) from exc
        raise


# What pyarrow raises for a value its target type cannot hold.
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError)


@contextmanager
def _fitting(what: str, symbol: str) -> Iterator[None]:
    try:
        yield
    except _ARROW_ERRORS as exc:
        raise _misfit(what, symbol, None, exc) from exc


def _misfit(what: str, symbol: str, value: object, exc: Exception) -> SchemaError:
    """The one line naming the column (or table), the symbol and, where known, the value that does not fit."""
    reason = str(exc).splitlines()[0]
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 100000000000000000000, as Yahoo sent it, not 1e+20
    shown = "" if value is None else f"{value}: "
    return SchemaError(f"{what} of {symbol} does not fit the lake's schema ({shown}{reason})")


def _to_array(values: list, type_: pa.DataType) -> pa.Array:
    # Yahoo sends some integers (volume, market cap) as floats; cast checks nothing is lost.
    if pa.types.is_integer(type_):
        return pc.cast(pa.array(values, pa.float64()), type_)
    return pa.array(values, type_)


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=schema)
