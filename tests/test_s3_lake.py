"""The lake in a bucket of the loopback S3 store: readers outside the job, the lease, bad input, store faults.

What a local lake and a lake in a bucket share (writing, publishing, resuming, incremental runs, the
single writer) is tested on both by parametrised tests elsewhere; this file holds what only a bucket has.
"""

import contextlib
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import polars as pl
import pyarrow.fs as pafs
import pytest
from deltalake import DeltaTable

from conftest import (
    REPO_DIR,
    lake_keys,
    run_cli,
    run_collect,
    start_cli,
    wait_for,
    wait_for_lease_expiry,
    write_universe,
    yahoo_route,
)
from etl.config import split_s3_url
from etl.emulator import Emulator, EmulatorConfig
from etl.lake.paths import Lake, open_lake
from etl.lake.store import LeaseLost
from fault_proxy import FaultProxy

SYMBOLS = ["AAPL", "MSFT", "KO", "XOM", "JPM", "V", "MA", "NVDA", "AMZN", "META", "GOOG", "TSLA"]


@pytest.fixture
def universe(tmp_path):
    return write_universe(tmp_path / "u.txt", SYMBOLS)


def count_bars(lake_url: str, view: str = "bars_all") -> int:
    result = run_cli("query", "--lake", lake_url, "--format", "json", f"select count(*) as n from {view}")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)[0]["n"]


def test_downstream_readers_read_the_lake_in_the_bucket(emulator, universe, s3_lake_url, s3_store, tmp_path):
    for _ in range(2):  # the second run's bars revise the first's: a reader must see each (symbol, date) once
        assert run_collect(emulator, universe, s3_lake_url).returncode == 0
    n_bars = count_bars(s3_lake_url, "bars")
    assert count_bars(s3_lake_url, "bars_all") > n_bars
    env = s3_store.env()
    options = {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "aws_region": env["AWS_REGION"],
        "aws_endpoint_url": env["AWS_ENDPOINT_URL"],
        "aws_allow_http": "true",
    }
    bars_url = f"{s3_lake_url}/bars"
    polars = pl.scan_delta(bars_url, storage_options=options).select(pl.len()).collect().item()
    s3 = pafs.S3FileSystem(
        access_key=env["AWS_ACCESS_KEY_ID"],
        secret_key=env["AWS_SECRET_ACCESS_KEY"],
        region=env["AWS_REGION"],
        endpoint_override=env["AWS_ENDPOINT_URL"],
    )
    on_s3 = pafs.SubTreeFileSystem(bars_url.removeprefix("s3://"), s3)  # README: not deltalake's own
    arrow = DeltaTable(bars_url, storage_options=options).to_pyarrow_dataset(filesystem=on_s3).count_rows()
    assert n_bars > 240 * len(SYMBOLS) and polars == arrow == n_bars


def test_summary_report_and_compact_work_on_the_bucket(emulator, tmp_path, s3_lake_url):
    universe = write_universe(tmp_path / "u.txt", SYMBOLS[:3])
    for _ in range(2):
        assert run_collect(emulator, universe, s3_lake_url, "--full-refresh").returncode == 0
    n_bars = count_bars(s3_lake_url)
    # two runs of a year: two files in each year's partition of bar_revisions
    compacted = run_cli("compact", "--lake", s3_lake_url, "--table", "bar_revisions", "--keep-minutes", "0")
    assert compacted.returncode == 0, compacted.stderr
    assert compacted.stdout.startswith("bar_revisions: 4 files rewritten as 2, 4 files vacuumed"), (
        compacted.stdout
    )
    assert count_bars(s3_lake_url) == n_bars
    summary = run_cli("summary", "--lake", s3_lake_url, "--json")
    assert summary.returncode == 0 and json.loads(summary.stdout)["n_symbols"] == 3
    report = run_cli("report", "--lake", s3_lake_url, "--out", str(tmp_path / "r.html"))
    assert report.returncode == 0 and (tmp_path / "r.html").read_text().startswith("<!doctype html>")


def test_no_secret_is_printed_logged_or_stored(emulator, universe, s3_lake_url, s3_store):
    secret = s3_store.env()["AWS_SECRET_ACCESS_KEY"]
    collected = run_collect(emulator, universe, s3_lake_url)
    shown = run_cli("collect", "--lake", s3_lake_url, "--show-config")
    runs = run_cli("query", "--lake", s3_lake_url, "--format", "json", "select settings from runs")
    assert collected.returncode == shown.returncode == runs.returncode == 0
    assert s3_lake_url in runs.stdout  # the lake is recorded, the credentials are not
    for output in (collected.stdout, collected.stderr, shown.stdout, shown.stderr, runs.stdout):
        assert secret not in output and s3_store.env()["AWS_ACCESS_KEY_ID"] not in output


HOLDER = """
import sys, time
from etl.lake.lock import LeaseLock, lake_lock
from etl.lake.paths import open_lake
if sys.argv[3:] == ["--no-renewal"]:  # a live holder whose lease is never renewed: the negative control
    LeaseLock._renew_until_stopped = lambda self: None
with lake_lock(open_lake(sys.argv[1]), lease_s=float(sys.argv[2])):
    print("locked", flush=True)
    time.sleep(600)
"""
# The holder's lease in the renewal tests: renewed every quarter lease, 1.5 s of slack on a loaded machine.
HOLDER_LEASE_S = 2.0


def start_holder(lake_url: str, lease_s: float, *flags: str) -> subprocess.Popen:
    """A process that takes the lake's lease and holds it (until killed), once it has it."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, lake_url, str(lease_s), *flags],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_DIR,
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def lease_record(lake_url: str) -> tuple[dict, str]:
    """The lease object's record and its ETag, which every renewal changes."""
    lake = open_lake(lake_url)
    data, e_tag = lake.store.get_with_tag(lake.lock_key)
    return json.loads(data), e_tag


def expiry(record: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(record["expires_at"])


def watch_renewals(lake_url: str, until: dt.datetime) -> set[str]:
    """The lease's ETags seen until its record expires at `until` or later (a holder that renews it through
    `until`), or until the clock passes `until` (one that does not): bounded either way."""
    e_tags = set()
    while dt.datetime.now(dt.UTC) < until:
        record, e_tag = lease_record(lake_url)
        e_tags.add(e_tag)
        if expiry(record) >= until:
            break
        time.sleep(0.05)  # a poll of the store for the renewal above, not a wait for luck
    return e_tags


def test_a_killed_writers_lease_expires_and_the_next_run_takes_over(emulator, universe, s3_lake_url):
    holder = start_holder(s3_lake_url, 3)
    # Refused while the holder lives and renews: however slowly this run starts, the lease is not let go.
    refused = run_collect(emulator, universe, s3_lake_url)
    holder.kill()  # SIGKILL: it never removes its lease
    holder.wait()
    assert refused.returncode == 1 and f"(pid {holder.pid} on " in refused.stderr
    assert emulator.total_requests() == 0
    wait_for_lease_expiry(s3_lake_url)
    taken = run_collect(emulator, universe, s3_lake_url)
    assert taken.returncode == 0, taken.stderr
    assert f"taking over the expired lease of pid {holder.pid}" in taken.stderr


def test_a_renewed_lease_keeps_the_next_run_out_for_many_leases(emulator, tmp_path, s3_lake_url):
    universe = write_universe(tmp_path / "u.txt", ["KO"])
    holder = start_holder(s3_lake_url, HOLDER_LEASE_S)
    try:
        first, _ = lease_record(s3_lake_url)
        # Watched until the holder has renewed its lease to 4 leases past its first expiry: it has held the
        # lock 4 leases or more by then, which only renewals can do.
        until = expiry(first) + dt.timedelta(seconds=4 * HOLDER_LEASE_S)
        e_tags = watch_renewals(s3_lake_url, until)
        refused = run_collect(emulator, universe, s3_lake_url)
    finally:
        holder.kill()
        holder.wait()
    assert refused.returncode == 1 and f"(pid {holder.pid} on " in refused.stderr, refused.stderr
    # The refusal names a lease the holder renewed long after its first had expired.
    (lease_until,) = re.findall(r"lease until (\S+)\)", refused.stderr)
    assert dt.datetime.fromisoformat(lease_until) >= until
    assert len(e_tags) > 1  # each renewal a compare-and-swap that changed the object in the store
    assert emulator.total_requests() == 0


def test_a_live_writer_that_stops_renewing_is_taken_over(emulator, tmp_path, s3_lake_url):
    """The negative control of the test above: the same holder, alive, but its renewal disabled."""
    universe = write_universe(tmp_path / "u.txt", ["KO"])
    holder = start_holder(s3_lake_url, HOLDER_LEASE_S, "--no-renewal")
    try:
        first = lease_record(s3_lake_url)
        wait_for_lease_expiry(s3_lake_url)
        unrenewed = lease_record(s3_lake_url)
        taken = run_collect(emulator, universe, s3_lake_url)
        holder_alive = holder.poll() is None
    finally:
        holder.kill()
        holder.wait()
    assert unrenewed == first and holder_alive  # never renewed, though its holder lives
    assert taken.returncode == 0, taken.stderr
    assert f"taking over the expired lease of pid {holder.pid}" in taken.stderr


@pytest.mark.parametrize(
    ("lake", "role", "says"),
    [
        ("s3:///lake", "writer", "'' is not an S3 bucket name"),
        ("s3://Market_Data/lake", "writer", "'Market_Data' is not an S3 bucket name"),
        ("s3://market", "writer", "give the lake a prefix of its own"),
        ("s3://no-such-bucket/lake", "writer", "bucket no-such-bucket does not exist"),
        ("BUCKET/lake", "wrong-secret", "the store refused these credentials"),
        ("BUCKET/lake", "unknown-key", "the store refused these credentials"),
        ("BUCKET/lake", "reader", "access denied to bucket"),
    ],
)
def test_bad_lake_input_is_one_line_before_any_fetch(
    emulator, universe, s3_store, s3_lake_url, lake, role, says
):
    bucket = split_s3_url(s3_lake_url)[0]
    lake = lake.replace("BUCKET", f"s3://{bucket}")
    env = s3_store.env(role)
    result = run_cli("collect", "--universe", str(universe), "--lake", lake, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: --lake ")
    assert says in result.stderr and env["AWS_SECRET_ACCESS_KEY"] not in result.stderr
    assert emulator.total_requests() == 0
    assert open_lake(s3_lake_url).store.list_keys("") == []


def test_store_errors_and_resets_are_retried_and_the_run_completes(emulator, universe, s3_store, s3_lake_url):
    bucket = split_s3_url(s3_lake_url)[0]
    with FaultProxy(s3_store.endpoint_url, seed=1, error_rate=0.15, reset_rate=0.05) as proxy:
        env = s3_store.env(endpoint_url=proxy.url)
        result = run_cli(
            "collect",
            *yahoo_route(emulator),
            "--universe",
            str(universe),
            "--lake",
            f"s3://{bucket}/lake",
            env=env,
        )
        faults = proxy.counts()
    assert result.returncode == 0, result.stderr
    assert faults["error"] >= 3 and faults["reset"] >= 1
    assert count_bars(f"s3://{bucket}/lake") > 240 * len(SYMBOLS)


@contextlib.contextmanager
def started_collect(emulator, universe, lake_url, *options: str, env: dict) -> Iterator[subprocess.Popen]:
    """`python -m etl collect --quiet` running in the background, its stderr piped; killed if the test leaves
    it running (a failed wait), so that no collect outlives its test."""
    where = ("--universe", str(universe), "--lake", lake_url)
    child = start_cli("collect", *yahoo_route(emulator), *where, "--quiet", *options, env=env, capture=True)
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_store_that_stays_down_ends_the_run_in_one_line_with_nothing_published(
    emulator, tmp_path, s3_store, s3_lake_url
):
    universe = write_universe(
        tmp_path / "u.txt", [f"S{i:02d}" for i in range(30)]
    )  # the store goes down midway
    bucket = split_s3_url(s3_lake_url)[0]
    with (
        FaultProxy(s3_store.endpoint_url, seed=2) as proxy,
        started_collect(
            emulator,
            universe,
            f"s3://{bucket}/lake",
            "--batch-size",
            "2",
            env=s3_store.env(endpoint_url=proxy.url),
        ) as child,
    ):
        # The lease, the plan and the first batch's parts are written.
        wait_for(lambda: proxy.counts()["PUT"] >= 4, "4 PUTs to the store", child)
        proxy.down = True
        stderr = child.communicate(timeout=120)[1]
    assert child.returncode == 1
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: writing s3://") and "every table is at its last committed version" in last
    assert lake_keys(f"s3://{bucket}/lake") == []


def steal_lease(lake: Lake) -> bytes:
    """Take the lake's lease over as another run would, by compare-and-swap on its ETag (tried again if the
    holder renewed in between); the record written, which names this process and never expires."""
    for _ in range(10):
        data, e_tag = lake.store.get_with_tag(lake.lock_key)
        held = json.loads(data) | {"pid": os.getpid(), "token": "another run"}
        stolen = json.dumps(held | {"expires_at": "9999-12-31T00:00:00+00:00"}).encode()
        try:
            lake.store.replace(lake.lock_key, stolen, e_tag)
        except LeaseLost:
            continue
        return stolen
    raise AssertionError("the lease was renewed under every one of 10 compare-and-swaps")


def test_a_lease_lost_to_another_run_stops_the_run_in_one_line_with_nothing_published(tmp_path, s3_lake_url):
    universe = write_universe(tmp_path / "u.txt", ["KO"])
    lake = open_lake(s3_lake_url)
    # Yahoo answers each data request after 4 s, so the run is still fetching its only batch when its next
    # renewal (every quarter of its 1 s lease) meets the lease taken; it checks the lease after the batch.
    with (
        Emulator(EmulatorConfig(stall_rate=1.0, stall_s=4)) as slow,
        started_collect(slow, universe, s3_lake_url, "--lock-lease-s", "1", env={}) as child,
    ):
        wait_for(lambda: slow.faults().get("stall", 0) > 0, "a request to Yahoo, under the lease", child)
        stolen = steal_lease(lake)
        stderr = child.communicate(timeout=120)[1]
    assert child.returncode == 1, stderr
    (line,) = stderr.splitlines()  # one line, and nothing else
    assert line.startswith(f"error: the lease on {s3_lake_url} was taken by another run ("), line
    assert lake.store.url(lake.lock_key) in line
    assert lake_keys(s3_lake_url) == []  # no table: nothing of the run published
    assert lake.store.get(lake.lock_key) == stolen  # and the other run's lease left to it


def test_no_credentials_at_all_is_one_line_before_any_fetch(emulator, universe, s3_lake_url, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ACCESS", "AWS_SECRET", "ETL_"))}
    # No ~/.aws, and the instance metadata service an EC2 machine has, on a closed loopback port.
    env |= {"HOME": str(tmp_path), "AWS_METADATA_ENDPOINT": "http://127.0.0.1:9"}
    result = subprocess.run(
        [sys.executable, "-m", "etl", "collect", "--universe", str(universe), "--lake", s3_lake_url],
        cwd=REPO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "no AWS credentials found" in result.stderr and emulator.total_requests() == 0
