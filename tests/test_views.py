"""The lake's views and table macros (sql/views.sql) on a real two-run lake and on lakes written row by row,
and the DuckDB shell that loads them."""

import csv
import datetime as dt
import json
import subprocess
import sys

import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from conftest import REPO_DIR, SHARED_DATA_DIR, open_staged_run, publish_staged, run_collect, write_universe
from etl import transform
from etl.emulator import Emulator, EmulatorConfig
from etl.lake.paths import open_lake
from etl.lake.staging import RunPlan
from etl.lake.views import connect_lake
from etl.queries import fetch_dicts
from etl.schema import BARS, DIVIDENDS, SPLITS, Table

GOOD = ["AAPL", "MSFT", "NVDA", "JPM", "XOM", "KO", "PEP", "WMT"]
DELISTED = "DLSTD"  # delisted, in both runs
GONE = "GONE"  # delisted, in the first run only


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """Two runs in 4-symbol batches; the second re-collects half the symbols. The folder's name needs SQL
    quoting."""
    folder = tmp_path_factory.mktemp("views")
    lake_dir = folder / "it's a lake"
    universes = [
        write_universe(folder / "first.txt", [*GOOD[:4], DELISTED, *GOOD[4:], GONE]),
        write_universe(folder / "second.txt", [*GOOD[:4], DELISTED]),
    ]
    with Emulator(EmulatorConfig(delisted=frozenset({DELISTED, GONE}))) as emulator:
        for universe in universes:
            options = ("--batch-size", "4", "--min-success", "0.5")
            result = run_collect(emulator, universe, lake_dir, *options, cache_dir=folder / "cache")
            assert result.returncode == 0, result.stderr
    return lake_dir


def read_table(lake, name: str) -> pl.DataFrame:
    """A table through deltalake's pyarrow dataset: polars 2.1's read_delta cannot open a path with a space
    (it passes deltalake's percent-encoded file URIs on as paths). A filesystem of pyarrow's own: README."""
    filesystem = pafs.SubTreeFileSystem(str(lake / name), pafs.LocalFileSystem())
    return pl.from_arrow(DeltaTable(str(lake / name)).to_pyarrow_table(filesystem=filesystem))


@pytest.fixture(scope="module")
def run_ids(lake) -> list[str]:
    return sorted(read_table(lake, "runs")["run_id"].to_list())


@pytest.fixture(scope="module")
def current_bars(lake) -> pl.DataFrame:
    """Every run's bars read straight from the bar_revisions table, the latest run's row of each (symbol,
    date), oldest first: computed here, not by the MERGE that keeps `bars` current."""
    bars = read_table(lake, "bar_revisions")
    latest = bars.group_by("symbol", "date").agg(pl.col("run_id").max())
    return bars.join(latest, on=["symbol", "date", "run_id"]).sort("symbol", "date")


@pytest.fixture(scope="module")
def dates(current_bars) -> list:
    return current_bars["date"].unique().sort().to_list()


def query(lake, sql: str, params: dict | None = None) -> list[dict]:
    return fetch_dicts(connect_lake(lake), sql, params)


def shell(lake, stdin: str) -> subprocess.CompletedProcess:
    """`python -m etl shell` with its input piped, as a script would run it."""
    return subprocess.run(
        [sys.executable, "-m", "etl", "shell", "--lake", str(lake)],
        input=stdin,
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_symbol_bars_are_the_current_bars_between_two_dates_in_order(lake, current_bars, dates):
    first, last = dates[-30], dates[-10]
    rows = query(lake, "from symbol_bars($sym, $first, $last)", {"sym": "AAPL", "first": first, "last": last})
    expected = current_bars.filter((pl.col("symbol") == "AAPL") & pl.col("date").is_between(first, last))
    assert len(rows) == expected.height == 21
    assert [(r["date"], r["close"], r["volume"]) for r in rows] == list(
        zip(expected["date"], expected["close"], expected["volume"], strict=True)
    )
    # the emulator neither splits nor pays yet: adjusted is as traded
    assert all(r["adj_factor"] == 1 and r["adj_close"] == r["close"] for r in rows)


def test_symbol_bars_takes_dates_as_text_too(lake, dates):
    rows = query(lake, f"from symbol_bars('MSFT', '{dates[0]}', '{dates[4]}')")
    assert [r["date"] for r in rows] == dates[:5]


def test_latest_quotes_has_each_symbol_once_from_the_latest_run_that_quoted_it(lake, run_ids):
    rows = query(lake, "from latest_quotes()")
    first, second = run_ids
    assert {r["symbol"]: r["run_id"] for r in rows} == {s: second for s in GOOD[:4]} | {
        s: first for s in GOOD[4:]
    }
    assert len(rows) == len(GOOD)


@pytest.mark.parametrize("n", [1, 3, len(GOOD)])
def test_movers_are_the_largest_moves_against_the_previous_close(lake, current_bars, dates, n):
    day = dates[-10]
    rows = query(lake, "from movers($day, $n)", {"day": day, "n": n})
    expected = []
    for symbol, bars in current_bars.filter(pl.col("date") <= day).group_by("symbol"):
        closes = bars.sort("date")["close"].to_list()
        expected.append((symbol[0], (closes[-1] / closes[-2] - 1) * 100))
    expected.sort(key=lambda move: -abs(move[1]))
    assert [r["symbol"] for r in rows] == [symbol for symbol, _ in expected[:n]]
    assert [r["change_pct"] for r in rows] == pytest.approx([pct for _, pct in expected[:n]])
    assert all(
        r["date"] == day
        and r["change_pct"] == pytest.approx((r["adj_close"] / r["previous_adj_close"] - 1) * 100)
        for r in rows
    )


def test_movers_skip_a_symbol_on_its_first_bar(lake, dates):
    assert query(lake, "from movers($day, 100)", {"day": dates[0]}) == []


def test_failed_recently_counts_failures_in_the_last_n_runs(lake, run_ids):
    last_run = {r["symbol"]: r for r in query(lake, "from failed_recently(1)")}
    both_runs = {r["symbol"]: r for r in query(lake, "from failed_recently(2)")}
    assert set(last_run) == {DELISTED}
    assert last_run[DELISTED]["runs_failed"] == 1 and last_run[DELISTED]["last_run_id"] == run_ids[1]
    assert (
        last_run[DELISTED]["last_outcome"] == "no_data" and "delisted" in last_run[DELISTED]["last_message"]
    )
    assert {s: r["runs_failed"] for s, r in both_runs.items()} == {DELISTED: 2, GONE: 1}
    assert both_runs[GONE]["last_run_id"] == run_ids[0]


def test_shell_starts_with_the_views_and_macros_loaded(lake, dates):
    result = shell(
        lake,
        ".mode csv\nselect count(*) as n from latest_quotes();\n"
        f"select symbol from movers('{dates[-10]}', 3);\n",
    )
    assert result.returncode == 0, result.stderr
    movers = [r["symbol"] for r in query(lake, "from movers($day, 3)", {"day": dates[-10]})]
    assert list(csv.reader(result.stdout.splitlines())) == [
        ["n"],
        [str(len(GOOD))],
        ["symbol"],
        *([s] for s in movers),
    ]


def test_shell_refuses_a_lake_with_no_run_in_one_line(tmp_path):
    result = shell(tmp_path / "empty", "select 1;\n")
    assert result.returncode == 1
    assert result.stderr.startswith("error: the lake at") and len(result.stderr.splitlines()) == 1


def test_shell_refuses_a_lake_path_with_a_newline(tmp_path):
    result = shell(tmp_path / "two\nlines", "select 1;\n")
    assert result.returncode == 2
    assert "newline" in result.stderr and not result.stdout


# --- Splits and dividends: bars_adjusted, the event views and movers on a lake written row by row ---------

STARTED_AT = dt.datetime(2026, 3, 9, 22, 0, tzinfo=dt.UTC)
D1, D2, D3, D4, D5, D6 = (dt.date(2026, 3, 2) + dt.timedelta(days=i) for i in range(6))
# SPL trades at 100, 102, 104; pays 2.00 a share, ex D4 (close 101); splits 2:1, ex D5 (51, then 52).
# FLAT has no events and moves 1.5% on D5, more than SPL's real move that day, far less than its raw -49.5%.
SPL_CLOSES = {D1: 100.0, D2: 102.0, D3: 104.0, D4: 101.0, D5: 51.0, D6: 52.0}
FLAT_CLOSES = {D1: 50.0, D2: 50.0, D3: 50.0, D4: 50.0, D5: 50.75, D6: 50.0}
DIVIDEND_STEP = 1 - 2.0 / 104.0
ADJ_FACTORS = {
    D1: 0.5 * DIVIDEND_STEP,
    D2: 0.5 * DIVIDEND_STEP,
    D3: 0.5 * DIVIDEND_STEP,
    D4: 0.5,
    D5: 1.0,
    D6: 1.0,
}


def bar_rows(run_id: str, symbol: str, closes: dict) -> list[dict]:
    return [
        {"run_id": run_id, "symbol": symbol, "date": day, "open": c, "high": c, "low": c, "close": c}
        | {"adj_close": c, "volume": 1000 if day < D5 else 2000}
        for day, c in closes.items()
    ]


def dividend_row(run_id: str, day: dt.date, amount: float, symbol: str = "SPL") -> dict:
    return {"run_id": run_id, "symbol": symbol, "ex_date": day, "amount": amount, "currency": "USD"}


def split_row(run_id: str, symbol: str, day: dt.date, ratio: float) -> dict:
    split = {"run_id": run_id, "symbol": symbol, "ex_date": day, "numerator": ratio, "denominator": 1.0}
    return split | {"ratio": ratio}


# SAME splits 2:1 and pays 1.00 a share of after the split, both ex D4: its close before is 100 as traded,
# 50 in the shares the dividend is paid on, so the dividend's step is 1 - 1/50 and D3's factor 0.5 * 0.98.
SAME_CLOSES = {D3: 100.0, D4: 50.0}


def publish_rows(
    lake, run_id: str, rows: dict[Table, list[dict]], started_at: dt.datetime = STARTED_AT
) -> None:
    """A completed run that wrote these rows, through the lake's own staging and publish; its quotes are dated
    by the UTC day it started."""
    staging = open_staged_run(lake, RunPlan(("SPL",), 10, "1y", "http://127.0.0.1:1"), run_id, started_at)
    with staging.batch(1) as parts:
        for table, table_rows in rows.items():
            parts.write(table, pa.RecordBatch.from_pylist(table_rows, schema=table.schema))
    publish_staged(staging)


@pytest.fixture(scope="module")
def events_lake(tmp_path_factory):
    """r1 writes the bars, the splits and the dividends, one of which r2 revises; r3's file lies in the
    dividends folder but in no commit (a writer killed before it committed)."""
    lake = open_lake(str(tmp_path_factory.mktemp("events") / "lake"))
    bars = [
        *bar_rows("r1", "SPL", SPL_CLOSES),
        *bar_rows("r1", "FLAT", FLAT_CLOSES),
        *bar_rows("r1", "SAME", SAME_CLOSES),
    ]
    splits = [split_row("r1", "SPL", D5, 2.0), split_row("r1", "SAME", D4, 2.0)]
    # FLAT's dividend is on its first bar in the lake: no bar before it to adjust, nor a close to divide by
    dividends = [
        dividend_row("r1", D4, 1.9),
        dividend_row("r1", D1, 0.5, "FLAT"),
        dividend_row("r1", D4, 1.0, "SAME"),
    ]
    publish_rows(lake, "r1", {BARS: bars, SPLITS: splits, DIVIDENDS: dividends})
    publish_rows(lake, "r2", {DIVIDENDS: [dividend_row("r2", D4, 2.0)]})
    unpublished = pa.Table.from_pylist([dividend_row("r3", D4, 5.0)], schema=DIVIDENDS.schema)
    pq.write_table(unpublished, lake.root_url + "/dividends/r3.parquet")
    return lake


def test_event_views_keep_the_latest_completed_runs_row(events_lake):
    spl = "where symbol = 'SPL'"
    assert query(events_lake, f"select run_id, amount from dividends {spl}") == [
        {"run_id": "r2", "amount": 2.0}
    ]
    assert query(events_lake, f"select run_id, ex_date, ratio from splits {spl}") == [
        {"run_id": "r1", "ex_date": D5, "ratio": 2.0}
    ]


def test_bars_adjusted_back_adjusts_for_the_split_and_the_dividend(events_lake):
    rows = query(events_lake, "from bars_adjusted where symbol = 'SPL' order by date")
    assert [r["date"] for r in rows] == list(SPL_CLOSES)
    assert [r["close"] for r in rows] == list(SPL_CLOSES.values())  # as traded, from bars
    assert [r["adj_factor"] for r in rows] == pytest.approx(list(ADJ_FACTORS.values()), rel=1e-12)
    for r in rows:
        factor = ADJ_FACTORS[r["date"]]
        assert [r[f"adj_{c}"] for c in ("open", "high", "low", "close")] == pytest.approx(
            [r["close"] * factor] * 4
        )
    assert [r["adj_volume"] for r in rows] == [2000.0] * 6  # 1,000 before the 2:1 split is 2,000 today


def test_a_split_and_a_dividend_on_the_same_day_are_both_counted_once(events_lake):
    rows = query(
        events_lake, "select date, adj_factor from bars_adjusted where symbol = 'SAME' order by date"
    )
    assert [(r["date"], r["adj_factor"]) for r in rows] == [
        (D3, pytest.approx(0.5 * (1 - 1.0 / 50))),
        (D4, 1.0),
    ]


def test_bars_adjusted_has_no_jump_at_the_split(events_lake):
    rows = query(events_lake, "select date, adj_close from bars_adjusted where symbol = 'SPL' order by date")
    closes = {r["date"]: r["adj_close"] for r in rows}
    assert closes[D5] / closes[D4] - 1 == pytest.approx(51 / 50.5 - 1)  # the real move, not -49.5%


def test_bars_adjusted_leaves_a_symbol_without_events_as_traded(events_lake):
    rows = query(events_lake, "from bars_adjusted where symbol = 'FLAT' order by date")
    assert {r["adj_factor"] for r in rows} == {1.0}
    assert [r["adj_close"] for r in rows] == list(FLAT_CLOSES.values())


def test_movers_never_report_a_split_as_a_move(events_lake):
    rows = query(events_lake, "from movers($day, 2)", {"day": D5})
    assert [r["symbol"] for r in rows] == ["FLAT", "SPL"]
    spl = rows[1]
    assert (spl["close"], spl["change_pct"]) == (51.0, pytest.approx((51 / 50.5 - 1) * 100))
    assert spl["previous_adj_close"] == pytest.approx(50.5)


def test_movers_count_a_dividend_as_paid_not_as_a_drop(events_lake):
    (spl,) = [r for r in query(events_lake, "from movers($day, 2)", {"day": D4}) if r["symbol"] == "SPL"]
    assert spl["change_pct"] == pytest.approx((101 / (104 - 2.0) - 1) * 100)


def publish_charts(lake, charts: list[tuple[str, dict]]) -> None:
    """A run that collected these chart answers, through the job's own transform."""
    rows = {table: to_rows("r1", charts).to_pylist() for table, to_rows in TRANSFORMS.items()}
    publish_rows(lake, "r1", rows)


TRANSFORMS = {BARS: transform.to_bars, SPLITS: transform.to_splits, DIVIDENDS: transform.to_dividends}


def yahoo_answer_on_d6() -> dict:
    """SPL's chart as Yahoo would answer it on D6: OHLC split-adjusted as of D6, adjclose adjusted for the
    dividend too, the dividend's amount split-adjusted (1.00 for 2.00 paid), epochs at the New York open."""
    epoch = {day: int(dt.datetime.combine(day, dt.time(14, 30), dt.UTC).timestamp()) for day in SPL_CLOSES}
    split_factor = {day: 0.5 if day < D5 else 1.0 for day in SPL_CLOSES}
    closes = [c * split_factor[day] for day, c in SPL_CLOSES.items()]
    step = 1 - 1.0 / closes[2]  # Yahoo's way: the adjusted amount over the adjusted close before the ex-date
    prices = {name: closes for name in ("open", "high", "low", "close")}
    return {
        "meta": {"exchangeTimezoneName": "America/New_York", "currency": "USD"},
        "timestamp": list(epoch.values()),
        "events": {
            "dividends": {str(epoch[D4]): {"amount": 1.0, "date": epoch[D4]}},
            "splits": {
                str(epoch[D5]): {"date": epoch[D5], "numerator": 2, "denominator": 1, "splitRatio": "2:1"}
            },
        },
        "indicators": {
            "quote": [{**prices, "volume": [2000] * len(closes)}],
            "adjclose": [
                {
                    "adjclose": [
                        c * (step if day < D4 else 1) for day, c in zip(SPL_CLOSES, closes, strict=True)
                    ]
                }
            ],
        },
    }


def test_bars_adjusted_reproduces_the_same_days_yahoo_answer(tmp_path):
    chart = yahoo_answer_on_d6()
    lake = open_lake(str(tmp_path / "lake"))
    publish_charts(lake, [("SPL", chart)])
    # volume / adj_volume is the split factor alone: close times it is the split-adjusted close
    rows = query(
        lake,
        "select close, adj_close, close * volume / adj_volume as split_close "
        "from bars_adjusted order by date",
    )
    assert [r["close"] for r in rows] == pytest.approx(list(SPL_CLOSES.values()))  # stored as traded
    assert [r["adj_close"] for r in rows] == pytest.approx(
        chart["indicators"]["adjclose"][0]["adjclose"], rel=1e-6
    )
    assert [r["split_close"] for r in rows] == pytest.approx(
        chart["indicators"]["quote"][0]["close"], rel=1e-6
    )


def test_bars_adjusted_reproduces_yahoos_adjclose_of_a_recorded_answer(tmp_path):
    path = (
        SHARED_DATA_DIR
        / "yahoo-fixtures"
        / "node-yahoo-finance2"
        / "chart-AAPL-2020-08-31-to-2020-11-07.json"
    )
    if not path.exists():
        pytest.skip(f"recorded Yahoo responses not found at {path} (../shared is absent)")
    chart = json.loads(path.read_text())["response"]["bodyJson"]["chart"]["result"][0]
    lake = open_lake(str(tmp_path / "lake"))
    publish_charts(lake, [("AAPL", chart)])
    rows = query(lake, "select adj_close from bars_adjusted order by date")
    yahoo_adjclose = chart["indicators"]["adjclose"][0]["adjclose"]
    # Yahoo answered in 2025, adjusting for the dividends after 2020-11-07 too, which are not in the answer:
    # one factor more on every bar, taken from the last, which no event in the answer adjusts.
    later = yahoo_adjclose[-1] / rows[-1]["adj_close"]
    assert [r["adj_close"] * later for r in rows] == pytest.approx(yahoo_adjclose, rel=1e-6)
