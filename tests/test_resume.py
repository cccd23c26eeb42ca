"""Resuming a run cut off midway (README, "A run killed at any instant" and the exit codes): the rerun
continues it under its run id and start time, fetches only the batches it had not committed, and counts
each request once.

Each attempt has an emulator of its own, the same market on the same clock: what an attempt asked for is
its emulator's count alone, with no request of the other attempt landing in it late. Yahoo changing a value
of its answer is a recording of that answer, which the emulator serves in place of its own (its
`recordings` knob, as for Yahoo's recorded answers).
"""

import datetime as dt
import json
import re
import signal
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from conftest import lake_keys, run_collect, write_universe
from etl.emulator import Emulator, EmulatorConfig, history, quotes, responses
from etl.emulator.calendars import NEW_YORK
from etl.lake.paths import open_lake
from etl.lake.staging import PLAN_NAME, load_run
from etl.plan import plan_batches

AS_OF = dt.datetime(2026, 11, 24, 22, 0, tzinfo=dt.UTC)
MARKET = EmulatorConfig(as_of=AS_OF)
SYMBOLS = [f"S{i:03d}" for i in range(18)]
BATCH_SIZE = 3
OPTIONS = ("--batch-size", str(BATCH_SIZE))
BATCHES = {batch.batch_no: batch.symbols for batch in plan_batches(SYMBOLS, BATCH_SIZE)}

# `collect` that SIGKILLs itself once batch {k} is fetched, before writing it: killed at that event exactly,
# whatever the machine's load, with one batch fetched and not committed and the next ones in flight (a test
# reading the collector's stderr would kill it some batches later, as the load has it). Run with -c, so that
# `etl` is the checkout's, as for `-m etl`.
KILLED_BEFORE_WRITING = """
import os, signal
from etl import cli, pipeline
write_batch = pipeline.write_batch
def die_before_writing(fetched, *args, **kwargs):
    if fetched.batch.batch_no == {k}:
        os.kill(os.getpid(), signal.SIGKILL)
    return write_batch(fetched, *args, **kwargs)
pipeline.write_batch = die_before_writing
cli.main()
"""


@dataclass(frozen=True)
class Staged:
    """The one run waiting in the staging area, as it was left: what its rerun must continue."""

    run_id: str
    started_at: dt.datetime
    committed: frozenset[int]


def staged_run(lake_dir: Path) -> Staged:
    lake = open_lake(str(lake_dir))
    plans = [key for key in lake.store.list_keys(lake.staging_key("")) if key.endswith(f"/{PLAN_NAME}")]
    assert len(plans) == 1, plans
    staging, _ = load_run(lake, plans[0].split("/")[-2])
    return Staged(staging.run_id, staging.started_at, frozenset(staging.committed()))


def symbols_of(batch_nos) -> set[str]:
    return {symbol for batch_no in batch_nos for symbol in BATCHES[batch_no]}


def published(lake_dir: Path, table: str) -> pl.DataFrame:
    return pl.read_delta(str(lake_dir / table))


def killed_at_batch(universe: Path, lake_dir: Path, k: int) -> Staged:
    """A run killed with batch k fetched, not written: batches 1 to k-1 staged, 1 to k each fetched once."""
    with Emulator(MARKET) as emulator:
        code = KILLED_BEFORE_WRITING.format(k=k)
        killed = run_collect(emulator, universe, lake_dir, *OPTIONS, entry=("-c", code))
        asked = Counter(emulator.chart_requests())
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    staged = staged_run(lake_dir)
    assert staged.committed == set(range(1, k))
    fetched = symbols_of(range(1, k + 1))
    assert {symbol: asked[symbol] for symbol in fetched} == dict.fromkeys(fetched, 1)
    return staged


def assert_resumed(lake_dir: Path, staged: Staged, asked: Counter, calls: int) -> None:
    """The lake holds one run, the staged one, whole: each of its batches once, the earlier ones fetched once,
    and its requests counted once (the committed batches' and the finishing attempt's)."""
    run = published(lake_dir, "runs").row(0, named=True)
    assert published(lake_dir, "runs").height == 1
    assert (run["run_id"], run["started_at"], run["status"]) == (
        staged.run_id,
        staged.started_at,
        "succeeded",
    )
    assert asked == dict.fromkeys(symbols_of(set(BATCHES) - staged.committed), 1)
    batches = published(lake_dir, "batches").sort("batch_no")
    assert batches["batch_no"].to_list() == sorted(BATCHES)
    earlier_calls = batches.filter(pl.col("batch_no").is_in(sorted(staged.committed)))["api_calls"].sum()
    assert run["api_calls"] == earlier_calls + calls == batches["api_calls"].sum()
    assert set(published(lake_dir, "bars")["symbol"]) == set(SYMBOLS)


def test_a_killed_run_resumes_under_its_id_and_fetches_only_what_it_had_not_committed(tmp_path, lake_dir):
    universe = write_universe(tmp_path / "u.txt", SYMBOLS)
    staged = killed_at_batch(universe, lake_dir, k=3)
    with Emulator(MARKET) as emulator:
        resumed = run_collect(emulator, universe, lake_dir, *OPTIONS, "--resume")
        asked, calls = Counter(emulator.chart_requests()), emulator.total_requests()
    assert resumed.returncode == 0, resumed.stderr
    assert_resumed(lake_dir, staged, asked, calls)


def record_quote(folder: Path, symbol: str, volume: float) -> None:
    """A recording of Yahoo's quote of `symbol` for the emulator to serve in place of its own: the synthetic
    quote with another volume."""
    now = AS_OF.astimezone(NEW_YORK)
    quote = quotes.quote_object(MARKET.seed, symbol, history.latest(MARKET.seed, symbol, now), now)
    body = {"quoteResponse": {"result": [quote | {"regularMarketVolume": volume}], "error": None}}
    (folder / f"quote-{symbol}.json").write_text(json.dumps({"response": {"bodyJson": body}}))


def record_chart(folder: Path, symbol: str, volume: float) -> None:
    """A recording of Yahoo's daily chart of `symbol`, served whatever period is asked: the synthetic chart
    of a year with another volume on its last bar."""
    params = {"range": "1y", "interval": "1d"}
    body = responses.chart_body(MARKET.seed, symbol, 0.0, params, AS_OF.astimezone(NEW_YORK))
    body["chart"]["result"][0]["indicators"]["quote"][0]["volume"][-1] = volume
    url = f"https://query2.finance.yahoo.com/v8/finance/chart/{symbol}?range=1y&interval=1d"
    record = {"request": {"url": url}, "response": {"status": 200, "headers": {}, "bodyJson": body}}
    (folder / f"chart-{symbol}-1y.json").write_text(json.dumps(record))


def one_error_line(stderr: str) -> str:
    """The error: the last line, and the only one (no traceback)."""
    lines = stderr.splitlines()
    assert [line for line in lines if line.startswith("error:") or "Traceback" in line] == lines[-1:], stderr
    return lines[-1]


def delta_logs(lake_dir: Path) -> list[str]:
    return [key for key in lake_keys(str(lake_dir)) if "/_delta_log/" in key]


# A volume beyond int64, its column's type, as if Yahoo had begun sending it in another unit: the column named
# in the one line, and the value as Yahoo sent it.
MISFITS = [
    pytest.param(record_quote, 1e20, "quotes.volume", "100000000000000000000", id="quote-float"),
    pytest.param(
        record_quote,
        10**20,
        "quotes.volume",
        "100000000000000000000",
        id="quote-integer",
    ),
    pytest.param(
        record_chart,
        1e20,
        "bars.volume",
        "100000000000000000000",
        id="bar-float",
    ),
]


@pytest.mark.parametrize(("record", "volume", "column", "shown"), MISFITS)
def test_a_value_that_does_not_fit_its_column_stops_the_run_unpublished_and_a_rerun_resumes(
    tmp_path, lake_dir, record, volume, column, shown
):
    universe = write_universe(tmp_path / "u.txt", SYMBOLS)
    bad_symbol = BATCHES[3][1]
    (tmp_path / "recorded").mkdir()
    record(tmp_path / "recorded", bad_symbol, volume)
    with Emulator(EmulatorConfig(as_of=AS_OF, recordings=tmp_path / "recorded")) as emulator:
        stopped = run_collect(emulator, universe, lake_dir, *OPTIONS)
    assert stopped.returncode == 3, stopped.stderr
    error = one_error_line(stopped.stderr)
    assert re.fullmatch(
        rf"error: batch 3: {re.escape(column)} of {bad_symbol} does not fit the lake's schema"
        rf" \(.*\b{shown}\b.*\); the batches committed before it are kept for a rerun to resume",
        error,
    ), error
    assert delta_logs(lake_dir) == []  # no table was written, so no run was published
    staged = staged_run(lake_dir)
    assert staged.committed == {1, 2}
    with Emulator(MARKET) as emulator:  # Yahoo's answer as it was: the rerun goes through
        rerun = run_collect(emulator, universe, lake_dir, *OPTIONS)
        asked, calls = Counter(emulator.chart_requests()), emulator.total_requests()
    assert rerun.returncode == 0, rerun.stderr
    assert delta_logs(lake_dir)  # the control of the check above: the same listing sees a published run
    assert_resumed(lake_dir, staged, asked, calls)
