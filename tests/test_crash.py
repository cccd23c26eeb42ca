"""Crash safety: the real CLI killed with SIGKILL at seeded random instants while readers query the lake,
on a local folder and in a bucket of the loopback S3 store.

Each attempt runs `python -m etl collect` against a faulty emulator (HTTP 500s, 429s, hung requests),
waits for a random number of its batches plus a random few milliseconds, and kills it; the next
attempt resumes the run. Readers query the lake with DuckDB, polars and pyarrow all the while.
"""

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
import s3fs

from conftest import (
    REPO_DIR,
    copy_lake,
    lake_keys,
    staging_keys,
    wait_for_lease_expiry,
    write_universe,
    yahoo_route,
)
from etl.emulator import Emulator, EmulatorConfig
from etl.lake.paths import open_lake
from etl.summary import connect_lake

SEED = 20261125
KILL_POINTS = 12
# In a bucket, every attempt also waits out the killed writer's lease (a second) and lists the store through
# s3fs: fewer kills keep the test in make test's time, and the local test covers the instants at large.
S3_KILL_POINTS = 4
# Between two rounds of the readers' queries: flat out, they took both cores from the writer they watch.
READER_PAUSE_S = 0.05
SYMBOLS = [f"S{i:03d}" for i in range(40)]
AS_OF = dt.datetime(2026, 11, 24, 21, 0, tzinfo=dt.UTC)
FAULTY = EmulatorConfig(
    error_rate=0.1, stall_rate=0.02, stall_s=1.0, rate_limit_rps=300, latency_ms=5, as_of=AS_OF, seed=3
)
BARS_COLUMNS = "symbol, date, open, high, low, close, adj_close, volume"
QUOTES_COLUMNS = (
    "symbol, name, currency, exchange, exchange_tz, price, open, day_high, day_low, volume, market_cap"
)


@dataclass
class Readers:
    """Queries the lake in a loop with DuckDB, polars and pyarrow, as a newsroom's jobs would, counting
    failures."""

    lake_url: str
    queries: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> "Readers":
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        bars_glob = f"{self.lake_url}/bars/**/*.parquet"
        plain = duckdb.connect()  # its own: other tests may leave a result pending on DuckDB's default one
        quotes, filesystem = f"{self.lake_url}/quotes", None
        if self.lake_url.startswith("s3://"):
            plain.register_filesystem(s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False))
            quotes = quotes.removeprefix("s3://")
            filesystem = pafs.S3FileSystem(endpoint_override=os.environ["AWS_ENDPOINT_URL"])
        queries = [
            lambda: connect_lake(self.lake_url).execute("select count(*) from bars").fetchall(),
            lambda: plain.execute(
                f"select count(*) from read_parquet('{bars_glob}', hive_partitioning=true)"
            ).fetchall(),
            lambda: pl.scan_parquet(bars_glob, hive_partitioning=True).select(pl.len()).collect(),
            lambda: ds.dataset(
                quotes, format="parquet", partitioning="hive", filesystem=filesystem
            ).to_table(),
        ]
        while not self._stop.is_set():
            for query in queries:
                try:
                    query()
                except Exception as exc:  # any failure a reader would see is what this test counts
                    self.failures.append(f"{type(exc).__name__}: {exc}"[:3000])
                self.queries += 1
            self._stop.wait(READER_PAUSE_S)


def collect_command(cli: list[str], emulator, universe: Path, lake_dir: Path | str) -> list[str]:
    return [
        sys.executable,
        *cli,
        "collect",
        *yahoo_route(emulator),
        "--universe",
        str(universe),
        "--lake",
        str(lake_dir),
        "--batch-size",
        "4",
        "--timeout-s",
        "0.3",
        "--min-success",
        "1",
        # A lake in a bucket: a killed writer's lease lasts a second, not a minute, before the next run goes.
        "--lock-lease-s",
        "1",
    ]


def run_and_kill(command: list[str], rng: random.Random) -> int:
    """Start collect, kill -9 it after a random number of its batches and a few ms; its exit status."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    child = subprocess.Popen(
        command, cwd=REPO_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    batches_to_wait = rng.randint(0, 3)
    while batches_to_wait and (line := child.stderr.readline()):
        batches_to_wait -= line.startswith("batch ")
    time.sleep(rng.uniform(0, 0.03))  # where in the next batch (or the publish) the kill lands
    child.send_signal(signal.SIGKILL)
    child.stderr.close()
    return child.wait()


def lake_faults(lake_url: str) -> list[str]:
    """Unreadable objects, stray objects and duplicate keys in the lake, as a list of what is wrong."""
    lake, faults = open_lake(lake_url), []
    for name in lake_keys(lake_url):
        if not name.endswith(".parquet"):
            faults.append(f"stray object {name}")
            continue
        try:
            pq.read_metadata(pa.BufferReader(lake.store.get(lake.key(name))))
        except Exception as exc:
            faults.append(f"unreadable {name}: {exc}")
    if faults or not lake_keys(lake_url, "runs/"):
        return faults
    con = connect_lake(lake_url)
    for table, key in [
        ("bars", "symbol, date"),
        ("bars_all", "run_id, symbol, date"),
        ("quotes", "run_id, symbol"),
    ]:
        (dupes,) = con.execute(
            f"select count(*) from (select {key} from {table} group by all having count(*) > 1)"
        ).fetchone()
        faults += [f"{dupes} duplicate keys ({key}) in {table}"] if dupes else []
    return faults


def crash_and_resume(cli: list[str], emulator: Emulator, universe: Path, lake_url: str, kills: int) -> dict:
    """Kill collect at `kills` random instants (resuming each time), then let it finish; what went wrong."""
    rng = random.Random(SEED)
    command = collect_command(cli, emulator, universe, lake_url)
    killed, faults = 0, []
    with Readers(lake_url) as readers:
        while killed < kills:
            status = run_and_kill(command, rng)
            killed += status == -signal.SIGKILL
            faults += lake_faults(lake_url)
            wait_for_lease_expiry(lake_url)
        finished = subprocess.run(command, cwd=REPO_DIR, capture_output=True, text=True, timeout=120)
    return {
        "kills": killed,
        "queries": readers.queries,
        "reader_failures": readers.failures,
        "faults": faults + lake_faults(lake_url),
        "finished": finished,
    }


def current_bars(lake_url: Path | str) -> set[tuple]:
    return set(connect_lake(lake_url).execute(f"select {BARS_COLUMNS} from bars").fetchall())


def latest_run(lake_url: Path | str, columns: str, table: str) -> set[tuple]:
    con = connect_lake(lake_url)
    return set(
        con.execute(f"select {columns} from {table} where run_id = (select max(run_id) from runs)").fetchall()
    )


@pytest.fixture(scope="module")
def faulty_emulator():
    """One for the module: the crash tests read no counts of it, only the lake."""
    with Emulator(FAULTY) as emu:
        yield emu


@pytest.fixture(scope="module")
def reference(tmp_path_factory, faulty_emulator):
    """A run of the same universe that nobody killed."""
    folder = tmp_path_factory.mktemp("reference")
    universe = write_universe(folder / "universe.txt", SYMBOLS)
    lake_dir = folder / "lake"
    command = collect_command(["-m", "etl"], faulty_emulator, universe, lake_dir)
    # Module fixtures run before the per-test cache isolation: this run gets its own cache.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")} | {
        "XDG_CACHE_HOME": str(folder / "cache")
    }
    result = subprocess.run(command, cwd=REPO_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return universe, lake_dir


def test_killed_at_random_instants_readers_never_fail_and_resume_gives_the_reference_data(
    faulty_emulator, reference, lake_url
):
    universe, reference_lake = reference
    # Readers need a lake to read: it starts with one completed run, as any morning's lake does.
    lake_dir = copy_lake(reference_lake, lake_url)

    kill_points = KILL_POINTS if open_lake(lake_url).is_local else S3_KILL_POINTS
    outcome = crash_and_resume(["-m", "etl"], faulty_emulator, universe, lake_dir, kill_points)

    print(
        f"crash test on {lake_url}: {outcome['kills']} kills, {outcome['queries']} reader queries, "
        f"{len(outcome['reader_failures'])} failed, {len(outcome['faults'])} lake faults"
    )
    print("\n".join(outcome["reader_failures"]))
    assert outcome["finished"].returncode == 0, outcome["finished"].stderr
    assert outcome["kills"] >= kill_points and outcome["queries"] > kill_points
    assert outcome["reader_failures"] == [] and outcome["faults"] == []
    assert latest_run(lake_dir, "symbol", "quotes") == {(s,) for s in SYMBOLS}
    assert current_bars(lake_dir) == current_bars(reference_lake)
    assert latest_run(lake_dir, QUOTES_COLUMNS, "quotes") == latest_run(
        reference_lake, QUOTES_COLUMNS, "quotes"
    )
    assert staging_keys(lake_url) == []


def test_the_crash_test_catches_a_writer_that_writes_in_place(faulty_emulator, reference, tmp_path):
    universe, reference_lake = reference
    lake_dir = copy_lake(reference_lake, str(tmp_path / "lake"))

    outcome = crash_and_resume(
        [str(Path(__file__).with_name("naive_writer.py"))], faulty_emulator, universe, lake_dir, kills=3
    )

    print(
        f"naive writer: {outcome['kills']} kills, {outcome['queries']} reader queries, "
        f"{len(outcome['reader_failures'])} failed, {len(outcome['faults'])} lake faults"
    )
    assert outcome["kills"] == 3
    assert any(fault.startswith("unreadable") for fault in outcome["faults"])
    assert outcome["reader_failures"]
