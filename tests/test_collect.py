"""End to end: `python -m etl collect` against the emulator, then the lake read with DuckDB and polars."""

import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from leaky_collector import LEAK_MB

from conftest import (
    REPO_DIR,
    browser,
    cli_env,
    lake_keys,
    run_cli,
    run_collect,
    staging_keys,
    write_universe,
    yahoo_route,
)
from etl.emulator import Emulator, EmulatorConfig
from etl.lake.paths import open_lake
from etl.schema import TABLES

GOOD = ["AAPL", "MSFT", "BRK-B", "BF-B", "NVDA", "JPM", "XOM", "KO", "PEP", "WMT", "V", "MA"]
DELISTED = "DLSTD"
SUMMARY_FIGURES = {
    "processing_s",
    "symbols_per_s",
    "peak_rss_mb",
    "memory_growth_mb",
    "success_rate",
    "api_calls",
    "api_calls_per_symbol",
    "est_cost_usd",
    "full_scale_symbols",
    "full_scale_s",
    "full_scale_cost_usd",
}


def served_bars(emulator, symbol: str) -> int:
    """How many non-empty daily bars the emulator serves for a symbol over a year."""
    body = (
        browser(emulator)
        .get(
            f"https://query2.finance.yahoo.com/v8/finance/chart/{symbol}",
            params={"range": "1y", "interval": "1d"},
        )
        .json()
    )
    quote = body["chart"]["result"][0]["indicators"]["quote"][0]
    return sum(any(quote[k][i] is not None for k in quote) for i in range(len(quote["close"])))


def lake_sql(lake_dir, table: str) -> str:
    """A table as a downstream job reads it with no code of ours: the files of its Delta snapshot, read by
    DuckDB (a snapshot of no file: an empty file of its schema, which DuckDB needs to read no rows)."""
    snapshot = DeltaTable(str(lake_dir / table))
    files = snapshot.file_uris()
    if not files:
        files = [str(lake_dir.parent / f"empty-{table}.parquet")]
        pq.write_table(pa.schema(snapshot.schema().to_arrow()).empty_table(), files[0])
    return f"read_parquet({files!r}, hive_partitioning=true, union_by_name=true)"


@dataclass(frozen=True)
class FirstRun:
    """A run collected once for the module: what it printed, its universe and lake, the requests it made."""

    result: subprocess.CompletedProcess
    universe: Path
    lake_dir: Path
    requests: int
    counts: dict[str, int]


@pytest.fixture(scope="module")
def first_run_once(tmp_path_factory) -> FirstRun:
    folder = tmp_path_factory.mktemp("first-run")
    universe = write_universe(
        folder / "universe.txt", ["# test universe", "aapl", "MSFT", "BRK.B", DELISTED, *GOOD[3:], "msft"]
    )
    with Emulator(EmulatorConfig(delisted=frozenset({DELISTED}))) as emulator:
        # Module fixtures run before the per-test cache isolation: this run gets its own cache.
        result = run_collect(
            emulator,
            universe,
            folder / "lake",
            "--batch-size",
            "5",
            "--min-success",
            "0.9",
            cache_dir=folder / "cache",
        )
        requests, counts = emulator.total_requests(), emulator.counts()
    assert result.returncode == 0, result.stderr
    return FirstRun(result, universe, folder / "lake", requests, counts)


@pytest.fixture
def first_run(first_run_once, lake_dir):
    """This test's own copy of the first run's lake, in lake_dir: what collect printed, and its universe."""
    shutil.copytree(first_run_once.lake_dir, lake_dir)
    return first_run_once.result, first_run_once.universe


def test_every_served_row_lands_in_the_lake(emulator, first_run, lake_dir):
    emulator.reset_counts()
    per_symbol = duckdb.execute(
        f"select symbol, count(*) from {lake_sql(lake_dir, 'bars')} group by 1"
    ).fetchall()
    assert dict(per_symbol) == {s: served_bars(emulator, s) for s in GOOD}
    quotes = duckdb.execute(f"select symbol from {lake_sql(lake_dir, 'quotes')} order by symbol").fetchall()
    assert [s for (s,) in quotes] == sorted(GOOD)


def test_tables_have_exactly_the_documented_schemas(first_run, lake_dir):
    for table in TABLES.values():
        snapshot = DeltaTable(str(lake_dir / table.name))
        assert pa.schema(snapshot.schema().to_arrow()) == table.lake_schema, table.name
        assert snapshot.metadata().partition_columns == list(table.partition_by)
        for file in snapshot.file_uris():  # the partition columns are in the files' paths only
            assert pq.read_schema(file).remove_metadata() == table.schema, file
    assert DeltaTable(str(lake_dir / "bars")).file_uris()


def test_delisted_symbol_is_a_failure_with_its_reason_and_absent_from_data(first_run, lake_dir):
    rows = duckdb.execute(f"select symbol, outcome, message from {lake_sql(lake_dir, 'failures')}").fetchall()
    assert len(rows) == 1
    symbol, outcome, message = rows[0]
    assert (symbol, outcome) == (DELISTED, "no_data") and "delisted" in message
    for table in ("bars", "quotes"):
        found = duckdb.execute(
            f"select count(*) from {lake_sql(lake_dir, table)} where symbol = ?", [DELISTED]
        )
        assert found.fetchone() == (0,)


def test_counted_api_calls_equal_the_emulators_count(first_run_once):
    lake_dir = first_run_once.lake_dir
    (counted,) = duckdb.execute(f"select api_calls from {lake_sql(lake_dir, 'runs')}").fetchone()
    (per_batch,) = duckdb.execute(f"select sum(api_calls) from {lake_sql(lake_dir, 'batches')}").fetchone()
    assert counted == per_batch == first_run_once.requests
    assert (
        first_run_once.counts["quote"] == 3
    )  # 13 distinct symbols in batches of 5: one quote request a batch


def test_polars_reads_the_lake_with_its_partitions(first_run, lake_dir):
    bars = pl.scan_delta(str(lake_dir / "bars"))
    frame = bars.filter(pl.col("symbol") == "AAPL").select("date", "close", "year", "month").collect()
    assert frame.height > 200
    assert frame["year"].to_list() == [d.year for d in frame["date"].to_list()]
    assert frame["month"].to_list() == [d.month for d in frame["date"].to_list()]


def test_collect_prints_its_outcome_and_summary_prints_every_figure(first_run, lake_dir):
    result, _ = first_run
    (run_id,) = duckdb.execute(f"select run_id from {lake_sql(lake_dir, 'runs')}").fetchone()
    assert result.stdout.startswith(f"run {run_id} succeeded: 13 symbols")
    summary = run_cli("summary", "--lake", str(lake_dir))
    printed = dict(line.split(maxsplit=1) for line in summary.stdout.splitlines()[2:])
    assert SUMMARY_FIGURES <= set(printed)
    # The figures are the lake's own, not only their names.
    (api_calls,) = duckdb.execute(f"select api_calls from {lake_sql(lake_dir, 'runs')}").fetchone()
    (bar_rows,) = duckdb.execute(f"select count(*) from {lake_sql(lake_dir, 'bar_revisions')}").fetchone()
    (quote_rows,) = duckdb.execute(f"select count(*) from {lake_sql(lake_dir, 'quotes')}").fetchone()
    expected = {"run_id": run_id, "status": "succeeded", "n_symbols": "13", "api_calls": str(api_calls)}
    expected |= {"bar_rows": str(bar_rows), "quote_rows": str(quote_rows)}
    assert {name: printed[name].strip() for name in expected} == expected


def test_second_run_adds_a_run_and_touches_no_file_of_the_first(emulator, first_run, lake_dir):
    _, universe = first_run
    before = {path: path.read_bytes() for path in lake_dir.rglob("*.parquet")}
    assert run_collect(emulator, universe, lake_dir, "--min-success", "0.9").returncode == 0
    assert all(path.read_bytes() == content for path, content in before.items())
    runs = duckdb.execute(f"select count(distinct run_id) from {lake_sql(lake_dir, 'runs')}").fetchone()
    assert runs == (2,)
    summary = run_cli("summary", "--lake", str(lake_dir), "--format", "json")
    assert summary.returncode == 0, summary.stderr
    assert SUMMARY_FIGURES <= set(json.loads(summary.stdout))


def test_compare_sets_two_runs_side_by_side(emulator, first_run, lake_dir):
    _, universe = first_run
    assert (
        run_collect(emulator, universe, lake_dir, "--concurrency", "1", "--min-success", "0.9").returncode
        == 0
    )
    first, second = [
        r for (r,) in duckdb.execute(f"select run_id from {lake_sql(lake_dir, 'runs')} order by 1").fetchall()
    ]
    result = run_cli("summary", "--lake", str(lake_dir), "--compare", first, second, "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = {row["metric"]: row for row in json.loads(result.stdout)}
    calls = rows["api_calls"]
    assert calls["improvement_pct"] == round(100 * (calls["before"] - calls["after"]) / calls["before"], 1)
    speed = rows["symbols_per_s"]
    assert speed["improvement_pct"] == round(100 * (speed["after"] - speed["before"]) / speed["before"], 1)
    assert set(rows) >= {"processing_s", "peak_rss_mb", "memory_growth_mb", "est_cost_usd"}


def test_views_show_one_current_bar_per_symbol_and_date_the_latest_runs(first_run, lake_dir):
    _, universe = first_run
    # A Yahoo that revised its bars (another seed): the second run's values differ from the first's, so a
    # view where the older run won would show it.
    revised = EmulatorConfig(seed=EmulatorConfig.seed + 1, delisted=frozenset({DELISTED}))
    with Emulator(revised) as emulator:
        assert run_collect(emulator, universe, lake_dir, "--min-success", "0.9").returncode == 0
    # Per key both runs fetched: whether Yahoo's values changed, and whether the view holds the later run's.
    sql = """
        with runs_in_order as (select min(run_id) as first, max(run_id) as latest from runs),
        twice as (
            select new.symbol, new.date, new.close <> old.close as revised, new.close as latest_close
            from bars_all as new join bars_all as old using (symbol, date), runs_in_order
            where new.run_id = runs_in_order.latest and old.run_id = runs_in_order.first
        )
        select
            (select count(*) from bars) as n,
            (select count(distinct (symbol, date)) from bars) as keys,
            count(*) as fetched_twice,
            count(*) filter (where revised) as revised,
            count(*) filter (where bars.close = twice.latest_close) as current_is_latest
        from twice join bars using (symbol, date)
    """
    result = run_cli("query", "--lake", str(lake_dir), "--format", "json", sql)
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["n"] == row["keys"] > 0
    assert row["fetched_twice"] > 0 and row["revised"] == row["fetched_twice"]
    assert row["current_is_latest"] == row["fetched_twice"]


def test_memory_limit_stops_cleanly_and_keeps_what_was_collected(emulator, tmp_path, lake_dir):
    universe = write_universe(tmp_path / "u.txt", GOOD)
    refused = run_collect(emulator, universe, lake_dir, "--memory-limit-mb", "1")
    assert refused.returncode == 2 and emulator.total_requests() == 0
    # Half a leaked batch above what the job uses before fetching: the first batch's leak takes it over.
    start_mb = int(re.search(r"RSS (\d+) MB", refused.stderr).group(1)) + LEAK_MB // 2
    result = run_collect(
        emulator,
        universe,
        lake_dir,
        "--batch-size",
        "4",
        "--memory-limit-mb",
        str(start_mb),
        entry=(str(Path(__file__).with_name("leaky_collector.py")),),
    )
    assert result.returncode == 1
    assert "--memory-limit-mb" in result.stderr.strip().splitlines()[-1]
    status, batches = duckdb.execute(
        f"select status, (select count(*) from {lake_sql(lake_dir, 'batches')})"
        f" from {lake_sql(lake_dir, 'runs')}"
    ).fetchone()
    assert (status, batches) == ("memory_limit", 1)
    (gc_ran,) = duckdb.execute(f"select gc_ran from {lake_sql(lake_dir, 'batches')}").fetchone()
    assert gc_ran


def test_summary_refuses_an_unknown_format_in_one_line(first_run, lake_dir):
    result = run_cli("summary", "--lake", str(lake_dir), "--format", "xml")
    assert result.returncode == 2 and result.stderr == (
        "error: Invalid value for '--format': 'xml' is not one of 'table', 'markdown', 'json';"
        " see `python -m etl summary --help`\n"
    )


def test_a_second_writer_is_refused_at_once_naming_the_holder(emulator, tmp_path, lake_url):
    from etl.lake.lock import lake_lock

    universe = write_universe(tmp_path / "u.txt", ["AAPL"])
    with lake_lock(open_lake(lake_url), lease_s=60):
        result = run_collect(emulator, universe, lake_url)
    assert result.returncode == 1
    assert (
        result.stderr.count("\n") == 1
        and f"is being written by another run (pid {os.getpid()} on " in result.stderr
    )
    assert emulator.total_requests() == 0 and lake_keys(lake_url) == []
    assert run_collect(emulator, universe, lake_url).returncode == 0


def test_the_lock_dies_with_its_holder(emulator, tmp_path, lake_dir):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from etl.lake.lock import lake_lock; from etl.lake.paths import open_lake\n"
            f"with lake_lock(open_lake({str(lake_dir)!r}), lease_s=60):\n"
            "    print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    universe = write_universe(tmp_path / "u.txt", ["AAPL"])
    # The holder does hold the lake: while it lives, a collect is refused naming it...
    refused = run_collect(emulator, universe, lake_dir)
    assert refused.returncode == 1 and f"(pid {holder.pid} on " in refused.stderr, refused.stderr
    holder.kill()
    holder.wait()
    # ...and once it is killed, with no unlock of its own, the next collect takes the lake.
    assert run_collect(emulator, universe, lake_dir).returncode == 0


def test_one_request_in_five_failing_still_collects_every_symbol(tmp_path, lake_dir):
    universe = write_universe(tmp_path / "u.txt", GOOD)
    with Emulator(EmulatorConfig(error_rate=0.2, seed=11)) as flaky:
        result = run_collect(flaky, universe, lake_dir)
        assert result.returncode == 0, result.stderr
        (counted,) = duckdb.execute(f"select api_calls from {lake_sql(lake_dir, 'runs')}").fetchone()
        assert counted == flaky.total_requests()
    ok = duckdb.execute(f"select count(distinct symbol) from {lake_sql(lake_dir, 'quotes')}").fetchone()
    assert ok == (len(GOOD),)
    assert duckdb.execute(f"select count(*) from {lake_sql(lake_dir, 'failures')}").fetchone() == (0,)


def test_a_429_storm_slows_the_run_down_and_marks_no_symbol_delisted(tmp_path, lake_dir):
    universe = write_universe(tmp_path / "u.txt", [f"S{i:03d}" for i in range(20)])
    with Emulator(EmulatorConfig(rate_limit_rps=10)) as limited:
        result = run_collect(limited, universe, lake_dir)
        throttled, total = limited.faults().get("429", 0), limited.total_requests()
    assert result.returncode == 0, result.stderr
    quotes = duckdb.execute(f"select count(distinct symbol) from {lake_sql(lake_dir, 'quotes')}").fetchone()
    assert quotes == (20,)
    assert duckdb.execute(f"select count(*) from {lake_sql(lake_dir, 'failures')}").fetchone() == (0,)
    print(f"429 storm: {throttled} of {total} requests answered 429")
    # The storm happened, and once told, the job kept under the limit: no more 429s than the burst
    # it sent before the first one (8 in flight) and the few probes of the rate it wins back.
    assert 0 < throttled <= 16


def test_a_run_under_min_success_is_published_and_exits_1_saying_why(emulator, first_run, tmp_path):
    _, universe = first_run
    result = run_collect(emulator, universe, tmp_path / "other-lake")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: success rate 0.923 (12 of 13 symbols) is under --min-success 0.95; "
        "the failures table says why each one failed"
    )
    (status,) = duckdb.execute(f"select status from {lake_sql(tmp_path / 'other-lake', 'runs')}").fetchone()
    assert status == "below_min_success"


def test_a_wave_of_not_found_is_an_outage_not_delistings(tmp_path, lake_dir):
    blocked = [f"B{i}" for i in range(8)]
    universe = write_universe(tmp_path / "u.txt", [*blocked, "AAPL", "MSFT"])
    with Emulator(EmulatorConfig(delisted=frozenset(blocked))) as blocking:
        result = run_collect(blocking, universe, lake_dir)
    assert result.returncode == 3
    assert "8 of 10 symbols of this batch answered 'not found' at once" in result.stderr
    outcomes = duckdb.execute(
        f"select distinct outcome, error_type from {lake_sql(lake_dir, 'failures')}"
    ).fetchall()
    assert outcomes == [("error", "NoDataWave")]


def _file_size_limit(max_bytes: int):
    """For the child: files may not grow past max_bytes (EFBIG, as a full disk gives ENOSPC)."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return apply


def test_a_write_failure_stops_the_run_in_one_line_and_keeps_earlier_runs(emulator, tmp_path, lake_dir):
    small = write_universe(tmp_path / "small.txt", ["AAPL"])
    assert run_collect(emulator, small, lake_dir).returncode == 0
    before = {path: path.read_bytes() for path in lake_dir.rglob("*") if path.is_file()}
    big = write_universe(tmp_path / "big.txt", [f"S{i:03d}" for i in range(60)])
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "etl",
            "collect",
            *yahoo_route(emulator),
            "--universe",
            str(big),
            "--lake",
            str(lake_dir),
        ],
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_file_size_limit(40_000),
        env=cli_env(),
    )
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert (
        last_line.startswith("error: writing ")
        and "every table is at its last committed version" in last_line
    )
    assert {path: path.read_bytes() for path in lake_dir.rglob("*") if path.is_file()} == before
    assert not [key for key in staging_keys(str(lake_dir)) if key.endswith(".pending")]
    (runs,) = duckdb.execute(f"select count(*) from {lake_sql(lake_dir, 'runs')}").fetchone()
    assert runs == 1
