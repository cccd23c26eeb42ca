"""Yahoo JSON to Arrow: schemas, trading dates, null bars, renamed quote fields."""

import datetime as dt
import json

import pytest

from conftest import SHARED_DATA_DIR
from etl import transform
from etl.errors import SchemaError
from etl.schema import BARS, QUOTES

FIXTURES = SHARED_DATA_DIR / "yahoo-fixtures" / "yfinance-rs"


def chart(timestamps, closes, tz="America/New_York", volumes=None):
    n = len(timestamps)
    prices = {name: list(closes) for name in ("open", "high", "low", "close")}
    return {
        "meta": {"exchangeTimezoneName": tz},
        "timestamp": timestamps,
        "indicators": {
            "quote": [{**prices, "volume": volumes or [100] * n}],
            "adjclose": [{"adjclose": list(closes)}],
        },
    }


def recorded(name: str) -> dict:
    if not FIXTURES.is_dir():
        pytest.skip(f"recorded Yahoo responses not found at {FIXTURES} (../shared is absent)")
    return json.loads((FIXTURES / name).read_text())


def test_recorded_chart_becomes_bars_with_the_exact_schema():
    result = recorded("history_chart_AAPL.json")["chart"]["result"][0]
    bars = transform.to_bars("run-1", [("AAPL", result)])
    assert bars.schema == BARS.schema
    assert bars.num_rows == 127
    first = bars.slice(0, 1).to_pylist()[0]
    assert first["date"] == dt.date(2025, 4, 30)
    assert first["close"] == pytest.approx(212.5)
    assert first["volume"] == 52286500
    assert set(bars.column("run_id").to_pylist()) == {"run-1"}


def test_bar_dates_are_the_exchanges_trading_dates():
    # 2026-11-24 01:00 UTC is still the 23rd in New York, and already the 24th in Tokyo.
    moment = int(dt.datetime(2026, 11, 24, 1, 0, tzinfo=dt.UTC).timestamp())
    ny = transform.to_bars("r", [("A", chart([moment], [1.0]))])
    tokyo = transform.to_bars("r", [("B", chart([moment], [1.0], tz="Asia/Tokyo"))])
    assert ny.column("date").to_pylist() == [dt.date(2026, 11, 23)]
    assert tokyo.column("date").to_pylist() == [dt.date(2026, 11, 24)]


def test_all_null_bars_are_dropped_and_partly_null_ones_kept():
    data = chart([1, 86401, 172801], [1.0, None, 3.0], volumes=[5, None, None])
    bars = transform.to_bars("r", [("A", data)])
    assert bars.column("close").to_pylist() == [1.0, 3.0]
    assert bars.column("volume").to_pylist() == [5, None]


@pytest.mark.parametrize("charts", [[], [("A", {"meta": {}, "indicators": {"quote": [{}]}})]])
def test_no_bars_gives_an_empty_batch_of_the_right_schema(charts):
    bars = transform.to_bars("r", charts)
    assert bars.num_rows == 0 and bars.schema == BARS.schema


def test_recorded_quotes_become_renamed_columns():
    results = recorded("quote_v7_AAPL-MSFT.json")["quoteResponse"]["result"]
    quotes = transform.to_quotes("run-1", results)
    assert quotes.schema == QUOTES.schema
    aapl = quotes.to_pylist()[0]
    assert aapl["symbol"] == "AAPL" and aapl["exchange_tz"] == "America/New_York"
    assert aapl["price"] == results[0]["regularMarketPrice"]
    assert aapl["market_cap"] == results[0]["marketCap"]
    assert aapl["quote_time"] == dt.datetime.fromtimestamp(results[0]["regularMarketTime"], dt.UTC)


def test_quote_with_missing_fields_has_nulls():
    quotes = transform.to_quotes("r", [{"symbol": "X"}])
    row = quotes.to_pylist()[0]
    assert row["symbol"] == "X" and row["price"] is None and row["quote_time"] is None


@pytest.mark.parametrize(
    ("quote", "named"),
    [
        ({"symbol": "AAA", "regularMarketPrice": "N/A"}, ("quotes.price of AAA", "'N/A'")),
        ({"symbol": "BBB", "marketCap": 1.5}, ("quotes.market_cap of BBB", "1.5")),
    ],
)
def test_a_quote_value_that_does_not_fit_its_column_is_a_schema_error_naming_it(quote, named):
    fine = {"symbol": "OK", "regularMarketPrice": 1.0, "marketCap": 2.0}
    assert transform.to_quotes("r", [fine]).num_rows == 1  # the control: the same call with fitting values
    with pytest.raises(SchemaError) as raised:
        transform.to_quotes("r", [fine, quote])
    assert all(text in str(raised.value) for text in named) and "\n" not in str(raised.value)


def test_a_bar_value_that_does_not_fit_is_a_schema_error_naming_the_symbol():
    bad = chart([1_700_000_000, 1_700_086_400], [1.0, "x"])
    with pytest.raises(SchemaError, match=r"^bars of CCC does not fit the lake's schema \(.*'x'"):
        transform.to_bars("r", [("OK", chart([1_700_000_000], [1.0])), ("CCC", bad)])
