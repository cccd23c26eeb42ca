"""Data checks between transform and sink: rows that break a bar's, a quote's, a dividend's or a split's
invariants go to quarantine."""

import json

import pyarrow as pa
import pyarrow.compute as pc

from etl.schema import QUARANTINE

# (reason, test) in order of precedence: a row is quarantined under the first reason it fails.
_BAR_CHECKS = (
    ("close is missing", lambda t: pc.is_null(t["close"])),
    (
        "price not above zero",
        lambda t: _any(pc.less_equal(t[c], 0) for c in ("open", "high", "low", "close")),
    ),
    ("high below low", lambda t: pc.less(t["high"], t["low"])),
    (
        "open or close outside high-low",
        lambda t: _any(
            pc.or_(pc.greater(t[c], t["high"]), pc.less(t[c], t["low"])) for c in ("open", "close")
        ),
    ),
    ("negative volume", lambda t: pc.less(t["volume"], 0)),
    ("date repeated or out of order", lambda t: _out_of_order(t)),
)
_QUOTE_CHECKS = (
    ("price is missing", lambda t: pc.is_null(t["price"])),
    ("price not above zero", lambda t: pc.less_equal(t["price"], 0)),
    ("day high below day low", lambda t: pc.less(t["day_high"], t["day_low"])),
)

# A missing amount or ratio is as unusable as a zero one.
_DIVIDEND_CHECKS = (("amount not above zero", lambda t: _not_above_zero(t["amount"])),)
_SPLIT_CHECKS = (
    (
        "numerator or denominator not above zero",
        lambda t: pc.or_(_not_above_zero(t["numerator"]), _not_above_zero(t["denominator"])),
    ),
)


def split_bars(bars: pa.RecordBatch) -> tuple[pa.RecordBatch, pa.RecordBatch]:
    """The bars that hold (one a symbol and date, in order, prices positive and within high-low) and the
    rest."""
    return _split(bars, "bars", _BAR_CHECKS, date_column="date")


def split_quotes(quotes: pa.RecordBatch) -> tuple[pa.RecordBatch, pa.RecordBatch]:
    """The quotes with a positive price and a sane day range, and the rest."""
    return _split(quotes, "quotes", _QUOTE_CHECKS, date_column=None)


def split_dividends(dividends: pa.RecordBatch) -> tuple[pa.RecordBatch, pa.RecordBatch]:
    """The dividends with an amount above zero, and the rest."""
    return _split(dividends, "dividends", _DIVIDEND_CHECKS, date_column="ex_date")


def split_splits(splits: pa.RecordBatch) -> tuple[pa.RecordBatch, pa.RecordBatch]:
    """The splits whose numerator and denominator are above zero (the ratio is a real one), and the rest."""
    return _split(splits, "splits", _SPLIT_CHECKS, date_column="ex_date")


def _split(
    batch: pa.RecordBatch, table_name: str, checks, *, date_column: str | None
) -> tuple[pa.RecordBatch, pa.RecordBatch]:
    reason = pa.nulls(batch.num_rows, pa.string())
    for text, test in reversed(checks):
        reason = pc.if_else(pc.fill_null(test(batch), False), text, reason)
    failed = pc.is_valid(reason)
    if not pc.any(failed).as_py():
        return batch, pa.RecordBatch.from_pylist([], schema=QUARANTINE.schema)
    return batch.filter(pc.invert(failed)), _to_quarantine(
        batch.filter(failed), reason.filter(failed), table_name, date_column
    )


def _to_quarantine(
    rows: pa.RecordBatch, reasons: pa.Array, table_name: str, date_column: str | None
) -> pa.RecordBatch:
    records = rows.to_pylist()
    return pa.RecordBatch.from_pylist(
        [
            {
                "run_id": r["run_id"],
                "table_name": table_name,
                "symbol": r["symbol"],
                "date": r[date_column] if date_column else None,
                "reason": reason,
                "row_json": json.dumps(r, default=str),
            }
            for r, reason in zip(records, reasons.to_pylist(), strict=True)
        ],
        schema=QUARANTINE.schema,
    )


def _any(masks) -> pa.Array:
    masks = list(masks)
    result = masks[0]
    for mask in masks[1:]:
        result = pc.or_kleene(result, mask)
    return result


def _not_above_zero(values: pa.Array) -> pa.Array:
    return pc.invert(pc.fill_null(pc.greater(values, 0), False))


def _out_of_order(bars: pa.RecordBatch) -> pa.Array:
    """A bar whose date is not after the previous bar's of the same symbol (charts arrive in time order)."""
    if bars.num_rows < 2:
        return pa.array([False] * bars.num_rows, pa.bool_())
    same_symbol = pc.equal(bars["symbol"][1:], bars["symbol"][:-1])
    not_later = pc.less_equal(bars["date"][1:], bars["date"][:-1])
    return pa.concat_arrays([pa.array([False]), pc.and_(same_symbol, not_later)])
