"""Data checks: a bar, quote, dividend or split that breaks an invariant is quarantined with its reason,
never dropped silently."""

import datetime as dt
import json

import pyarrow as pa
import pytest

from etl import validate
from etl.schema import BARS, DIVIDENDS, QUARANTINE, QUOTES, SPLITS

DAY = dt.date(2026, 11, 2)


def bar(symbol="AAPL", day=DAY, o=10.0, h=12.0, low=9.0, c=11.0, v=100):
    return {
        "run_id": "r",
        "symbol": symbol,
        "date": day,
        "open": o,
        "high": h,
        "low": low,
        "close": c,
        "adj_close": c,
        "volume": v,
    }


def bars(*rows) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(list(rows), schema=BARS.schema)


NEXT = DAY + dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (bar(day=NEXT, c=None), "close is missing"),
        (bar(day=NEXT, low=0.0), "price not above zero"),
        (bar(day=NEXT, o=-1.0), "price not above zero"),
        (bar(day=NEXT, h=8.0, low=9.0, o=8.5, c=8.5), "high below low"),
        (bar(day=NEXT, c=13.0), "open or close outside high-low"),
        (bar(day=NEXT, o=8.0), "open or close outside high-low"),
        (bar(day=NEXT, v=-5), "negative volume"),
        (bar(day=DAY), "date repeated or out of order"),
        (bar(day=DAY - dt.timedelta(days=3)), "date repeated or out of order"),
    ],
)
def test_a_broken_bar_is_quarantined_with_its_reason(bad, reason):
    clean, quarantined = validate.split_bars(bars(bar(), bad, bar(day=NEXT + dt.timedelta(days=1))))
    assert clean.num_rows == 2 and clean.schema == BARS.schema
    assert quarantined.schema == QUARANTINE.schema
    (row,) = quarantined.to_pylist()
    assert (row["table_name"], row["symbol"], row["date"], row["reason"]) == (
        "bars",
        "AAPL",
        bad["date"],
        reason,
    )
    assert json.loads(row["row_json"])["close"] == bad["close"]


def test_good_bars_of_several_symbols_all_pass():
    clean, quarantined = validate.split_bars(bars(bar("A"), bar("A", NEXT), bar("B"), bar("B", NEXT)))
    assert clean.num_rows == 4 and quarantined.num_rows == 0


def test_missing_optional_values_are_not_a_fault():
    clean, quarantined = validate.split_bars(bars(bar(o=None, h=None, low=None, v=None)))
    assert clean.num_rows == 1 and quarantined.num_rows == 0


@pytest.mark.parametrize(
    ("quote", "reason"),
    [
        ({"price": None}, "price is missing"),
        ({"price": 0.0}, "price not above zero"),
        ({"price": 5.0, "day_high": 4.0, "day_low": 6.0}, "day high below day low"),
    ],
)
def test_a_broken_quote_is_quarantined(quote, reason):
    good = {"run_id": "r", "symbol": "GOOD", "price": 5.0, "day_high": 6.0, "day_low": 4.0}
    batch = pa.RecordBatch.from_pylist(
        [good, {"run_id": "r", "symbol": "BAD", **quote}], schema=QUOTES.schema
    )
    clean, quarantined = validate.split_quotes(batch)
    assert clean.column("symbol").to_pylist() == ["GOOD"]
    assert [(r["table_name"], r["symbol"], r["reason"]) for r in quarantined.to_pylist()] == [
        ("quotes", "BAD", reason)
    ]


def dividend(amount):
    return {"run_id": "r", "symbol": "KO", "ex_date": DAY, "amount": amount, "currency": "USD"}


def split_row(numerator, denominator):
    ratio = numerator / denominator if numerator is not None and denominator else None
    return {
        "run_id": "r",
        "symbol": "NVDA",
        "ex_date": DAY,
        "numerator": numerator,
        "denominator": denominator,
        "ratio": ratio,
    }


BAD_RATIO = "numerator or denominator not above zero"


@pytest.mark.parametrize(
    ("split", "schema", "good", "bad", "reason"),
    [
        (validate.split_dividends, DIVIDENDS.schema, dividend(0.51), dividend(0.0), "amount not above zero"),
        (validate.split_dividends, DIVIDENDS.schema, dividend(0.51), dividend(-0.5), "amount not above zero"),
        (validate.split_dividends, DIVIDENDS.schema, dividend(0.51), dividend(None), "amount not above zero"),
        *(
            (validate.split_splits, SPLITS.schema, split_row(4, 1), split_row(n, d), BAD_RATIO)
            for n, d in ((0, 1), (-1, 2), (10, 0), (None, 1))
        ),
    ],
)
def test_a_broken_dividend_or_split_is_quarantined_under_its_ex_date(split, schema, good, bad, reason):
    clean, quarantined = split(pa.RecordBatch.from_pylist([good, bad], schema=schema))
    assert clean.to_pylist() == [good]  # the negative control: a good row of the same batch passes
    (row,) = quarantined.to_pylist()
    table_name = "dividends" if split is validate.split_dividends else "splits"
    assert (row["table_name"], row["symbol"], row["date"], row["reason"]) == (
        table_name,
        bad["symbol"],
        DAY,
        reason,
    )
    assert json.loads(row["row_json"])["ex_date"] == DAY.isoformat()


SPLITTERS = {
    validate.split_bars: BARS.schema,
    validate.split_quotes: QUOTES.schema,
    validate.split_dividends: DIVIDENDS.schema,
    validate.split_splits: SPLITS.schema,
}


@pytest.mark.parametrize("split", list(SPLITTERS))
def test_empty_batches_pass_through(split):
    schema = SPLITTERS[split]
    clean, quarantined = split(pa.RecordBatch.from_pylist([], schema=schema))
    assert clean.num_rows == quarantined.num_rows == 0


def test_real_prices_keep_their_known_faults_out_of_the_clean_table():
    from pyarrow import csv

    from conftest import SHARED_DATA_DIR

    path = SHARED_DATA_DIR / "sp500-stocks-5yr" / "all_stocks_5yr.csv.gz"
    if not path.exists():
        pytest.skip(f"five years of real prices not found at {path} (../shared is absent)")
    raw = csv.read_csv(path).rename_columns(["date", "open", "high", "low", "close", "volume", "symbol"])
    table = pa.table(
        {
            "run_id": pa.array(["r"] * raw.num_rows),
            "symbol": raw["symbol"],
            "date": raw["date"].cast(pa.date32()),
            **{c: raw[c].cast(pa.float64()) for c in ("open", "high", "low", "close")},
            "adj_close": raw["close"].cast(pa.float64()),
            "volume": raw["volume"].cast(pa.int64()),
        }
    )
    clean, quarantined = validate.split_bars(table.combine_chunks().to_batches()[0])
    assert clean.num_rows + quarantined.num_rows == raw.num_rows
    faults = {(r["symbol"], r["date"].isoformat()): r["reason"] for r in quarantined.to_pylist()}
    assert faults[("AOS", "2014-05-19")] == "high below low"
    assert 0 < len(faults) < 100
