"""`collect --ray` on one local Ray cluster for this module, on 127.0.0.1 only, run as users run it: the CLI
in a subprocess, as the cluster's driver.

`make test` runs pytest-xdist with `--dist loadfile`, so one worker runs them all and starts one cluster.
"""

import datetime as dt
import re
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from bench.cluster import RAY_ENV, start_cluster
from conftest import REPO_DIR, cli_env, run_cli, staging_keys, wait_for, write_universe, yahoo_route
from etl.emulator import Emulator, EmulatorConfig
from etl.lake.views import connect_lake
from etl.plan import plan_batches
from etl.queries import fetch_dicts, load_sql

pytestmark = pytest.mark.ray

SYMBOLS = [f"S{i:03d}" for i in range(18)] + ["DLSTD"]
BATCH_SIZE = 5
WAIT_S = 60


@pytest.fixture(scope="module")
def ray_address(tmp_path_factory, s3_store):
    """The GCS address of this module's local cluster: 2 CPUs, no dashboard, a small object store. Stopped
    when the module's tests end: an idle cluster's processes would take CPU from the rest of the suite.

    Its node has credentials of its own for the loopback store, the writer's, as a real cluster's nodes have
    a role: the driver never hands its keys to the workers.
    """
    folder = tmp_path_factory.mktemp("ray")  # short: Ray's socket paths must fit in 107 characters
    with pytest.MonkeyPatch.context() as patch:
        # The raylet's environment is its workers': their temp files and yfinance caches stay in `folder`.
        node_env = RAY_ENV | s3_store.env() | {"TMPDIR": str(folder), "XDG_CACHE_HOME": str(folder)}
        for name, value in node_env.items():
            patch.setenv(name, value)
        address = start_cluster(folder)
        import ray  # loaded by start_cluster, after RAY_ENV

        patch.undo()  # the tests' own TMPDIR, but still RAY_ENV for every driver they start
        for name, value in RAY_ENV.items():
            patch.setenv(name, value)
        try:
            yield address
        finally:
            ray.shutdown()  # this cluster's processes only


# A fixed clock: the run on one machine and the Ray run, each against an emulator of its own, see one market.
MARKET = EmulatorConfig(
    delisted=frozenset({"DLSTD"}), latency_ms=20, as_of=dt.datetime(2026, 11, 24, 21, 0, tzinfo=dt.UTC)
)


@pytest.fixture
def emulator():
    with Emulator(MARKET) as emu:
        yield emu


@pytest.fixture(scope="module")
def alone(tmp_path_factory) -> tuple[str, dict[str, int]]:
    """The run on one machine that the Ray runs are held to, and the emulator's count of its requests."""
    folder = tmp_path_factory.mktemp("alone")
    universe = write_universe(folder / "u.txt", SYMBOLS)
    with Emulator(MARKET) as emulator:
        result = collect(emulator, universe, str(folder / "lake"), env={"XDG_CACHE_HOME": str(folder)})
        assert result.returncode == 0, result.stderr
        return str(folder / "lake"), emulator.counts()


def collect_args(emulator, universe: Path, lake: str, *options: str) -> list[str]:
    """The arguments of this module's collects: a month of history in batches of 5."""
    args = ["collect", *yahoo_route(emulator), "--universe", str(universe), "--lake", lake]
    args += ["--history", "1mo", "--batch-size", str(BATCH_SIZE), "--min-success", "0.9"]  # DLSTD is delisted
    return [*args, *options]


def collect(
    emulator, universe: Path, lake: str, *options: str, env: dict | None = None
) -> subprocess.CompletedProcess:
    return run_cli(*collect_args(emulator, universe, lake, *options), env=env, timeout=WAIT_S * 2)


def popen_collect(emulator, universe: Path, lake: str, *options: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "etl", *collect_args(emulator, universe, lake, *options), "--quiet"]
    env = cli_env()
    return subprocess.Popen(command, cwd=REPO_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def query(lake: str, sql: str) -> list[tuple]:
    return connect_lake(lake).execute(sql).fetchall()


def assert_whole(lake: str, symbols: list[str]) -> None:
    """Every symbol's bars once, none missing: each (run, symbol, date) one row, every symbol as many bars."""
    rows, distinct = query(lake, "select count(*), count(distinct (run_id, symbol, date)) from bars_all")[0]
    assert rows == distinct
    per_symbol = dict(query(lake, "select symbol, count(*) from bars_all group by symbol"))
    assert set(per_symbol) == set(symbols) and len(set(per_symbol.values())) == 1


def test_a_ray_run_equals_the_run_on_one_machine(ray_address, alone, emulator, tmp_path, lake_url):
    alone_lake, counts_alone = alone
    universe = write_universe(tmp_path / "u.txt", SYMBOLS)
    on_ray = collect(emulator, universe, lake_url, "--ray", ray_address)
    assert on_ray.returncode == 0, on_ray.stderr
    counts_ray = emulator.counts()

    bars = "select symbol, date, open, high, low, close, volume from bars"
    quotes, failures = "select symbol from quotes", "select symbol, outcome, error_type from failures"
    for sql in (bars, quotes, failures):
        assert sorted(query(lake_url, sql)) == sorted(query(alone_lake, sql))
    assert len(query(lake_url, bars)) > 0
    for endpoint in ("chart", "quote"):
        assert counts_ray[endpoint] == counts_alone[endpoint]
    # The handshake once per worker process that ran a batch, not once per batch.
    workers = query(lake_url, "select distinct node_id, pid from batches")
    assert counts_ray["cookie"] == counts_alone["cookie"] * len(workers) and 1 <= len(workers) <= 2
    assert query(lake_url, "select api_calls from runs") == [(sum(counts_ray.values()),)]
    # The driver tells Ray's part of each batch's time from the batch's own, on one clock.
    said = rf"ray: 4 batches on {len(workers)} worker processes; .* median (-?[\d.]+) ms, p95 (-?[\d.]+) ms"
    overhead = re.search(said, on_ray.stderr)
    assert overhead, on_ray.stderr
    # In ms, and a part of the run: no batch's overhead is negative or outlasts the whole run (a figure in the
    # wrong unit, or off another clock, would).
    ((run_ms,),) = query(lake_url, "select epoch_ms(finished_at) - epoch_ms(started_at) from runs")
    assert all(0 <= float(figure) < run_ms for figure in (overhead[1], overhead[2])), (on_ray.stderr, run_ms)
    # The report's table of worker processes: each with its own batches, all of them in all.
    ((run_id,),) = query(lake_url, "select run_id from runs")
    per_worker = fetch_dicts(connect_lake(lake_url), load_sql("report_workers"), {"run_id": run_id})
    assert {(w["node_id"], w["pid"]) for w in per_worker} == set(workers)
    assert sum(w["batches"] for w in per_worker) == 4
    assert sum(w["symbols"] for w in per_worker) == len(SYMBOLS)


def worker_asking(emulator, symbol: str) -> psutil.Process | None:
    """The Ray worker process (titled `ray::run_batch` by Ray) waiting on the emulator's answer to the
    symbol's chart: a process in the middle of that batch, not one idle with its connection kept open."""
    ports = {port for port, asked in emulator.charts_in_flight().items() if asked == symbol}
    for process in psutil.process_iter(["cmdline"]):
        if not " ".join(process.info["cmdline"] or []).startswith("ray::"):
            continue
        try:
            if ports & {c.laddr.port for c in process.net_connections("tcp")}:
                return process
        except psutil.Error:
            continue
    return None


def test_a_worker_killed_mid_batch_is_run_again_and_the_run_completes(ray_address, tmp_path):
    universe = write_universe(tmp_path / "u.txt", SYMBOLS)
    lake = str(tmp_path / "lake")
    # The symbol's first chart is held longer than the test waits: its worker is in that batch until killed.
    symbol = SYMBOLS[7]
    held = EmulatorConfig(
        delisted=frozenset({"DLSTD"}), stall_first_chart=frozenset({symbol}), stall_s=2 * WAIT_S
    )
    with Emulator(held) as slow:
        driver = popen_collect(slow, universe, lake, "--ray", ray_address)
        found: list = []
        wait_for(lambda: found.append(worker_asking(slow, symbol)) or found[-1] is not None, "a held worker")
        victim = found[-1]
        victim.send_signal(signal.SIGKILL)
        _, stderr = driver.communicate(timeout=WAIT_S * 2)
        charts = slow.chart_requests()
    assert driver.returncode == 0, stderr.decode()
    assert_whole(lake, SYMBOLS[:-1])
    assert query(lake, "select count(*), count(distinct batch_no) from batches") == [(4, 4)]
    # The victim was waiting on a chart of its batch, which ran again: the chart was asked twice (a run
    # that lost the batch would ask once), and another process committed the batch.
    assert charts[symbol] >= 2, (symbol, charts)
    (batch_no,) = [b.batch_no for b in plan_batches(SYMBOLS, BATCH_SIZE) if symbol in b.symbols]
    ((pid,),) = query(lake, f"select pid from batches where batch_no = {batch_no}")
    assert pid != victim.pid


def test_a_killed_driver_leaves_a_run_the_next_one_resumes(ray_address, tmp_path):
    universe = write_universe(tmp_path / "u.txt", SYMBOLS)
    lake = str(tmp_path / "lake")
    with Emulator(EmulatorConfig(delisted=frozenset({"DLSTD"}), latency_ms=150)) as slow:
        driver = popen_collect(slow, universe, lake, "--ray", ray_address)
        wait_for(lambda: any("/commits/" in key for key in staging_keys(lake)), "a committed batch")
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        resumed = collect(slow, universe, lake, "--ray", ray_address)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming run" in resumed.stderr
    assert len(query(lake, "select run_id from runs")) == 1
    assert_whole(lake, SYMBOLS[:-1])


def test_a_429_storm_slows_every_node_down_and_the_run_completes(ray_address, tmp_path):
    universe = write_universe(tmp_path / "u.txt", [f"S{i:03d}" for i in range(8)])
    lake = str(tmp_path / "lake")
    with Emulator(EmulatorConfig(rate_limit_rps=4)) as limited:
        result = collect(limited, universe, lake, "--ray", ray_address)
        throttled = limited.faults().get("429", 0)
    assert result.returncode == 0, result.stderr
    assert query(lake, "select count(distinct symbol) from quotes") == [(8,)]
    assert query(lake, "select count(*) from failures") == [(0,)]
    # The storm came, and the node's one budget kept both workers under the limit once told: no more 429s
    # than the burst before the first (two batches' requests) and the probes of the rate it won back.
    assert 0 < throttled <= 24


def test_a_worker_over_the_memory_limit_ends_the_run_with_what_it_collected(ray_address, emulator, tmp_path):
    symbols = [f"M{i:03d}" for i in range(40)]  # 8 batches: more than the 4 in flight when the first ends
    universe, lake = write_universe(tmp_path / "u.txt", symbols), str(tmp_path / "lake")
    refused = collect(emulator, universe, lake, "--ray", ray_address, "--memory-limit-mb", "1")
    assert refused.returncode == 2 and emulator.total_requests() == 0
    # Just above the driver's RSS before fetching: a worker holding a batch, and Ray's own, is over it.
    limit_mb = int(re.search(r"RSS (\d+) MB", refused.stderr).group(1)) + 1
    result = collect(emulator, universe, lake, "--ray", ray_address, "--memory-limit-mb", str(limit_mb))
    assert result.returncode == 1, result.stderr
    assert "--memory-limit-mb" in result.stderr.strip().splitlines()[-1]
    assert query(lake, "select status from runs") == [("memory_limit",)]
    # No batch submitted after the first was over; those in flight are kept, whole.
    ((n_batches,),) = query(lake, "select count(*) from batches")
    assert 1 <= n_batches <= 4
    assert query(lake, "select count(distinct symbol) from bars") == [(5 * n_batches,)]


def test_the_driver_hands_its_workers_the_stores_address_and_never_its_keys(s3_store, monkeypatch):
    from etl.cluster import forwarded_env

    for name, value in s3_store.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "a-session-token")
    forwarded = forwarded_env()
    assert forwarded["AWS_ENDPOINT_URL"] == s3_store.endpoint_url and forwarded["AWS_ALLOW_HTTP"] == "true"
    secrets = {
        s3_store.env()["AWS_SECRET_ACCESS_KEY"],
        s3_store.env()["AWS_ACCESS_KEY_ID"],
        "a-session-token",
    }
    assert secrets.isdisjoint(forwarded.values())


def test_a_cluster_of_other_versions_is_one_line_naming_both(ray_address):
    from etl.cluster import to_version_mismatch

    ray_message = (
        "Version mismatch: The cluster was started with:\n    Ray: 2.59.0\n    Python: 3.12.4\n"
        "This process on node 127.0.0.1 was started with:\n    Ray: 2.60.0\n    Python: 3.11.7\n"
    )
    assert to_version_mismatch(ray_message) == (
        "the cluster runs Ray: 2.59.0, Python: 3.12.4 and this process Ray: 2.60.0, Python: 3.11.7; "
        "run collect with the cluster's Ray and Python versions"
    )
