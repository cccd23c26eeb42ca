"""Yahoo JSON to Arrow: schemas, trading dates, null bars, renamed quote fields."""

import datetime as dt
import json

import pytest

from conftest import SHARED_DATA_DIR
from etl import transform
from etl.errors import SchemaError
from etl.schema import BARS, DIVIDENDS, QUOTES, SPLITS

FIXTURES = SHARED_DATA_DIR / "yahoo-fixtures" / "yfinance-rs"
NODE_FIXTURES = SHARED_DATA_DIR / "yahoo-fixtures" / "node-yahoo-finance2"


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


def recorded(name: str, folder=FIXTURES) -> dict:
    if not folder.is_dir():
        pytest.skip(f"recorded Yahoo responses not found at {folder} (../shared is absent)")
    return json.loads((folder / name).read_text())


def session_open(day: dt.date) -> int:
    """The epoch Yahoo gives a New York session's bar and events: 09:30 local (EST: the test's dates are in
    winter)."""
    return int(dt.datetime(day.year, day.month, day.day, 14, 30, tzinfo=dt.UTC).timestamp())


def split_event(day: dt.date, numerator, denominator) -> dict:
    epoch = session_open(day)
    return {str(epoch): {"date": epoch, "numerator": numerator, "denominator": denominator}}


# A chart as Yahoo answers it on 2026-02-10: a 3:2 split on Jan 7 and a 4:1 on Feb 3, everything before them
# divided by their ratios; a dividend of 0.30 a share paid on Jan 5 (before both), shown as 0.30 / 6 = 0.05.
DAYS = [
    dt.date(2026, 1, 5),
    dt.date(2026, 1, 6),
    dt.date(2026, 1, 7),
    dt.date(2026, 2, 2),
    dt.date(2026, 2, 3),
]
AS_TRADED = [600.0, 612.0, 400.0, 420.0, 105.0]
VOLUMES_AS_TRADED = [1000, 1001, 1500, 1503, 6000]
SPLIT_ADJUSTED = [100.0, 102.0, 100.0, 105.0, 105.0]


def split_chart(splits: dict | None = None) -> dict:
    splits = splits if splits is not None else split_event(DAYS[2], 3, 2) | split_event(DAYS[4], 4, 1)
    data = chart(
        [session_open(d) for d in DAYS],
        SPLIT_ADJUSTED,
        volumes=[1000 * 6, 1001 * 6, 1500 * 4, 1503 * 4, 6000],
    )
    data["meta"]["currency"] = "USD"
    dividend = session_open(DAYS[0])
    data["events"] = {"splits": splits, "dividends": {str(dividend): {"amount": 0.05, "date": dividend}}}
    return data


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


def test_bars_before_a_split_are_stored_as_traded():
    bars = transform.to_bars("r", [("A", split_chart())])
    assert bars.column("date").to_pylist() == DAYS
    # the ex-date's own bar is already after the split: Yahoo's figure as it is
    for name in ("open", "high", "low", "close"):
        assert bars.column(name).to_pylist() == pytest.approx(AS_TRADED)
    assert bars.column("volume").to_pylist() == VOLUMES_AS_TRADED
    assert bars.column("adj_close").to_pylist() == SPLIT_ADJUSTED  # Yahoo's, as of the run


def test_dividends_are_stored_as_paid_in_the_currency_of_the_chart():
    (row,) = transform.to_dividends("r", [("A", split_chart())]).to_pylist()
    assert row == {
        "run_id": "r",
        "symbol": "A",
        "ex_date": DAYS[0],
        "amount": pytest.approx(0.30),
        "currency": "USD",
    }


def test_splits_become_rows_with_their_ratio():
    splits = transform.to_splits("r", [("A", split_chart())])
    assert splits.schema == SPLITS.schema
    assert [(r["ex_date"], r["numerator"], r["denominator"], r["ratio"]) for r in splits.to_pylist()] == [
        (DAYS[2], 3.0, 2.0, 1.5),
        (DAYS[4], 4.0, 1.0, 4.0),
    ]


@pytest.mark.parametrize(("numerator", "denominator"), [(0, 1), (4, 0), (-2, 1), (None, 1)])
def test_a_split_that_is_not_above_zero_leaves_the_bars_alone(numerator, denominator):
    bars = transform.to_bars("r", [("A", split_chart(split_event(DAYS[2], numerator, denominator)))])
    assert bars.column("close").to_pylist() == SPLIT_ADJUSTED
    assert (
        transform.to_splits("r", [("A", split_chart(split_event(DAYS[2], numerator, denominator)))]).num_rows
        == 1
    )


def test_a_chart_without_events_has_no_dividends_or_splits():
    data = chart([session_open(DAYS[0])], [1.0])
    assert transform.to_bars("r", [("A", data)]).column("close").to_pylist() == [1.0]
    for to_rows, schema in ((transform.to_dividends, DIVIDENDS.schema), (transform.to_splits, SPLITS.schema)):
        rows = to_rows("r", [("A", data), ("B", data | {"events": {}})])
        assert rows.num_rows == 0 and rows.schema == schema


def test_recorded_split_and_dividend_become_rows():
    body = recorded("chart-AAPL-2020-08-31-to-2020-11-07.json", NODE_FIXTURES)["response"]["bodyJson"]
    result = body["chart"]["result"][0]
    (split,) = transform.to_splits("run-1", [("AAPL", result)]).to_pylist()
    (dividend,) = transform.to_dividends("run-1", [("AAPL", result)]).to_pylist()
    assert split == {
        "run_id": "run-1",
        "symbol": "AAPL",
        "ex_date": dt.date(2020, 8, 31),
        "numerator": 4.0,
        "denominator": 1.0,
        "ratio": 4.0,
    }
    # after the split, so Yahoo's amount is already as paid
    assert dividend == {
        "run_id": "run-1",
        "symbol": "AAPL",
        "ex_date": dt.date(2020, 11, 6),
        "amount": 0.205,
        "currency": "USD",
    }
    # the split's ex-date is the response's first bar: already after the split, so left as Yahoo sent it
    bars = transform.to_bars("run-1", [("AAPL", result)])
    closes = result["indicators"]["quote"][0]["close"]
    assert bars.column("close").to_pylist() == closes
