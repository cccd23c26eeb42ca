"""`python -m etl compact`: Delta's optimize (one file a partition, or z-ordered by symbol) and a full vacuum
under the lake's lock; readers of an older snapshot keep their files for --keep-minutes, and no view ever
shows a row twice, misses one, or reads a file the log does not list."""

import datetime as dt
import os
import re
import shutil
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from conftest import (
    copy_lake,
    hold_stalled_requests,
    lake_keys,
    run_cli,
    run_collect,
    staging_keys,
    start_cli,
    wait_for,
    write_universe,
    yahoo_route,
)
from etl.config import COMPACTABLE
from etl.emulator import Emulator, EmulatorConfig
from etl.lake.delta import storage_options
from etl.lake.lock import lake_lock
from etl.lake.paths import open_lake
from etl.lake.store import COMPACTION_CUT_SHORT
from etl.lake.views import connect_lake

# Three runs of three universes: a merge inserts a bar it has not seen as a file of its own, so every table
# with rows ends with three files in a partition (bars: in each of its 4 months, August to November). The
# market's clock is fixed so that each run's symbols paid a dividend in its 3 months (MSFT, KO, NVDA).
UNIVERSES = (("AAPL", "MSFT"), ("KO", "XOM", "DLSTD"), ("JPM", "NVDA"))
AS_OF = dt.datetime(2026, 11, 20, 22, tzinfo=dt.UTC)
COLLECT_OPTIONS = ("--history", "3mo", "--min-success", "0.5")
VIEWS = (
    "runs",
    "batches",
    "failures",
    "quarantine",
    "quotes",
    "bars",
    "bars_all",
    "bar_changes",
    "dividends",
    "splits",
    "bars_adjusted",
)
# A reader's check: bars_all's rows and keys (run, symbol, date), and bars' rows and keys (symbol, date).
READ_COUNTS = """
select
    (select count(*) from bars_all),
    (select count(distinct (run_id, symbol, date)) from bars_all),
    (select count(*) from bars),
    (select count(distinct (symbol, date)) from bars)
"""
SUMMARY_LINE = re.compile(r"(\w+): (\d+) files rewritten as (\d+), (\d+) files vacuumed")


def view_rows(lake_url: str, con: duckdb.DuckDBPyConnection | None = None) -> dict[str, list[tuple]]:
    """Every view's full contents, in a stable order."""
    con = con or connect_lake(lake_url)
    return {view: sorted(con.execute(f"select * from {view}").fetchall(), key=repr) for view in VIEWS}


def table_rows(lake_url: str, name: str, version: int | None = None) -> list[tuple]:
    """A table's rows as polars reads its Delta snapshot (the current one, or `version`)."""
    frame = pl.read_delta(f"{lake_url}/{name}", version=version, storage_options=storage_options())
    return sorted(frame.rows(), key=repr)


def open_table(lake_url: str, name: str, version: int | None = None) -> DeltaTable:
    """A snapshot of the table: the current one, or `version`."""
    return DeltaTable(f"{lake_url}/{name}", version=version, storage_options=storage_options())


def versions(lake_url: str) -> dict[str, int]:
    """Each table's current version."""
    return {name: open_table(lake_url, name).version() for name in COMPACTABLE}


def snapshot_keys(lake_url: str, name: str, version: int | None = None) -> set[str]:
    """The Parquet files a snapshot of the table lists, named relative to the lake."""
    actions = pa.table(open_table(lake_url, name, version).get_add_actions(flatten=True))
    return {f"{name}/{path}" for path in actions.column("path").to_pylist()}


def stored_keys(lake_url: str, name: str) -> set[str]:
    """The Parquet files in the table's folder, listed or not: what the store holds, outside the log."""
    return {key for key in lake_keys(lake_url, f"{name}/") if "/_delta_log/" not in key}


def files_a_partition(keys: set[str]) -> Counter:
    """How many of these files each partition folder holds."""
    return Counter(key.rpartition("/")[0] for key in keys)


def compact(lake_url: str, *options: str) -> dict[str, tuple[int, int, int]]:
    """`compact` that must succeed: each table's line as (files rewritten, files written, files vacuumed)."""
    return compacted(run_cli("compact", "--lake", lake_url, *options))


def compacted(result: subprocess.CompletedProcess) -> dict[str, tuple[int, int, int]]:
    """A compaction that succeeded: each table's line as (files rewritten, files written, files vacuumed)."""
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    parsed = [SUMMARY_LINE.fullmatch(line) for line in lines]
    assert all(parsed), lines
    return {m[1]: (int(m[2]), int(m[3]), int(m[4])) for m in parsed if m}


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one line a failed command prints: exit 1, nothing on stdout, one line on stderr."""
    assert result.returncode == 1 and result.stdout == "", (result.stdout, result.stderr)
    (line,) = result.stderr.splitlines()
    return line


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory) -> Path:
    """A local lake of three runs, made once; each test compacts a copy of it."""
    folder = tmp_path_factory.mktemp("compact")
    with Emulator(EmulatorConfig(delisted=frozenset({"DLSTD"}), as_of=AS_OF)) as emulator:
        for i, symbols in enumerate(UNIVERSES):
            universe = write_universe(folder / f"u{i}.txt", list(symbols))
            # Module fixtures run before the per-test cache isolation: this one gets its own cache.
            result = run_collect(
                emulator, universe, folder / "lake", *COLLECT_OPTIONS, cache_dir=folder / "cache"
            )
            assert result.returncode == 0, result.stderr
    return folder / "lake"


@pytest.fixture
def lake(three_runs, lake_dir) -> str:
    """This test's own local copy of the three-run lake."""
    return str(shutil.copytree(three_runs, lake_dir, symlinks=True))


@pytest.fixture
def lake_anywhere(three_runs, lake_url) -> str:
    """The three-run lake copied to a local folder, or into a bucket of the loopback store."""
    return copy_lake(three_runs, lake_url)


def test_compaction_leaves_views_and_tables_as_they_were_with_one_file_a_partition(lake_anywhere):
    views_before = view_rows(lake_anywhere)
    rows_before = {name: table_rows(lake_anywhere, name) for name in COMPACTABLE}
    counts_before = {name: files_a_partition(snapshot_keys(lake_anywhere, name)) for name in COMPACTABLE}
    crowded = {name for name, counts in counts_before.items() if max(counts.values(), default=0) > 1}
    # Not vacuous: symbols too, as each of the three runs has another universe.
    assert crowded == {"quotes", "bars", "bar_revisions", "dividends", "symbols", "batches", "runs"}
    assert list(counts_before["bars"].values()) == [3] * 4

    done = compact(lake_anywhere)

    # Each partition of several files became one; a lone file is left as it is; nothing vacuumed yet.
    expected = {
        name: (sum(n for n in counts.values() if n > 1), sum(n > 1 for n in counts.values()), 0)
        for name, counts in counts_before.items()
    }
    assert list(done) == list(COMPACTABLE) and done == expected
    for name in COMPACTABLE:
        counts = files_a_partition(snapshot_keys(lake_anywhere, name))
        assert counts.keys() == counts_before[name].keys() and set(counts.values()) <= {1}, name
        assert table_rows(lake_anywhere, name) == rows_before[name], name
    assert view_rows(lake_anywhere) == views_before
    # A plain compaction keeps the order rows were written in: not z-ordered (the --z-order test's control).
    (optimize,) = open_table(lake_anywhere, "bars").history(1)
    assert optimize["operation"] == "OPTIMIZE"
    assert optimize["operationMetrics"]["plannerStrategy"] != "zOrder"


def test_a_reader_of_the_snapshot_before_keeps_its_files_for_keep_minutes_and_no_longer(lake):
    # On a local folder: a DuckDB connection to a bucket keeps the small files it listed in memory, and the
    # vacuum's deletes in a bucket are the orphan test's.
    version_before = open_table(lake, "bars").version()
    replaced = snapshot_keys(lake, "bars")
    rows_before = table_rows(lake, "bars")
    reader = connect_lake(lake)  # lists each table's files now, reads them later
    views_before = view_rows(lake, reader)

    assert compact(lake, "--keep-minutes", "60")["bars"] == (12, 4, 0)
    assert replaced <= stored_keys(lake, "bars")  # out of the snapshot, still in the folder
    assert not replaced & snapshot_keys(lake, "bars")
    assert table_rows(lake, "bars", version_before) == rows_before
    assert view_rows(lake, reader) == views_before

    # --keep-minutes is what protected them: with 0, the replaced files go, and the old snapshot with them.
    assert compact(lake, "--keep-minutes", "0")["bars"] == (0, 0, len(replaced))
    assert stored_keys(lake, "bars") == snapshot_keys(lake, "bars")
    with pytest.raises(FileNotFoundError):
        table_rows(lake, "bars", version_before)
    with pytest.raises(duckdb.IOException, match="No files found") as gone:
        reader.execute("select * from bars").fetchall()
    assert any(key in str(gone.value) for key in replaced)  # a file the compaction replaced
    assert view_rows(lake) == views_before  # the current snapshot reads on


def test_orphan_files_are_never_read_and_a_full_vacuum_removes_them(lake_anywhere):
    views_before, rows_before = view_rows(lake_anywhere), table_rows(lake_anywhere, "bars")
    opened = open_lake(lake_anywhere)
    live = sorted(snapshot_keys(lake_anywhere, "bars"))
    orphan_bytes = opened.store.get(opened.key(live[0]))
    assert pq.read_table(pa.BufferReader(orphan_bytes)).num_rows > 0  # rows a reader of the folder would see
    # What a writer killed mid-write leaves: Parquet files no commit ever listed, in a new and an old folder.
    orphans = {"bars/year=2026/month=1/part-00000-killed-c000.zstd.parquet", f"{live[0]}.killed.parquet"}
    for key in orphans:
        opened.store.put_new(opened.key(key), orphan_bytes)
    assert orphans <= stored_keys(lake_anywhere, "bars")
    assert view_rows(lake_anywhere) == views_before and table_rows(lake_anywhere, "bars") == rows_before

    # Fresh orphans are kept for --keep-minutes like replaced files (they might be a snapshot's, for all the
    # vacuum knows); with 0 they go, and only the snapshot's files are left.
    compact(lake_anywhere, "--table", "bars", "--keep-minutes", "60")
    assert orphans <= stored_keys(lake_anywhere, "bars")
    vacuumed = compact(lake_anywhere, "--table", "bars", "--keep-minutes", "0")
    assert vacuumed == {"bars": (0, 0, 12 + len(orphans))}  # the 12 files the compaction replaced, and these
    assert stored_keys(lake_anywhere, "bars") == snapshot_keys(lake_anywhere, "bars")
    assert table_rows(lake_anywhere, "bars") == rows_before and view_rows(lake_anywhere) == views_before


def test_z_order_sorts_each_file_by_symbol_and_table_bars_touches_only_bars(lake):
    versions_before, rows_before = versions(lake), table_rows(lake, "bars")
    others = {name: snapshot_keys(lake, name) for name in COMPACTABLE if name != "bars"}

    def symbols_sorted() -> list[bool]:
        files = (pq.read_table(Path(lake, key), columns=["symbol"]) for key in snapshot_keys(lake, "bars"))
        return [(s := file.column("symbol").to_pylist()) == sorted(s) for file in files]

    assert compact(lake, "--table", "bars") == {"bars": (12, 4, 0)}
    assert symbols_sorted() == [False] * 4  # a plain compaction keeps the runs' order (the control)
    assert compact(lake, "--table", "bars", "--z-order") == {"bars": (4, 4, 0)}
    assert symbols_sorted() == [True] * 4
    (optimize,) = open_table(lake, "bars").history(1)
    assert optimize["operation"] == "OPTIMIZE" and optimize["operationMetrics"]["plannerStrategy"] == "zOrder"
    assert table_rows(lake, "bars") == rows_before
    assert versions(lake) == versions_before | {"bars": versions_before["bars"] + 2}
    assert {name: snapshot_keys(lake, name) for name in others} == others


def test_compaction_is_refused_in_one_line_while_another_process_holds_the_lock(lake_anywhere):
    before = (versions(lake_anywhere), sorted(lake_keys(lake_anywhere)))
    with lake_lock(open_lake(lake_anywhere), lease_s=60):
        line = error_line(run_cli("compact", "--lake", lake_anywhere))
    assert line.startswith("error: ") and f"is being written by another run (pid {os.getpid()} on " in line
    assert (versions(lake_anywhere), sorted(lake_keys(lake_anywhere))) == before
    assert compact(lake_anywhere, "--table", "bars") == {"bars": (12, 4, 0)}  # only the lock stopped it


def test_compaction_is_refused_while_a_collect_runs_and_goes_ahead_once_it_is_gone(lake, tmp_path):
    universe = write_universe(tmp_path / "u.txt", ["PEP"])
    before = (versions(lake), sorted(lake_keys(lake)))
    # Every chart request hangs: the collect holds the lock, fetching, until it is killed.
    with Emulator(EmulatorConfig(stall_rate=1.0, stall_s=600)) as hanging:
        command = ["collect", *yahoo_route(hanging), "--universe", str(universe), "--lake", lake, "--quiet"]
        collect = start_cli(*command)
        try:
            while not hanging.faults().get("stall"):  # until the collect is fetching, under the lock
                assert collect.poll() is None, "the collect ended before it fetched"
                time.sleep(0.01)  # a poll for the fact above, not a wait for luck
            line = error_line(run_cli("compact", "--lake", lake))
        finally:
            collect.kill()
            collect.wait()
    assert f"is being written by another run (pid {collect.pid} on " in line
    assert (versions(lake), sorted(lake_keys(lake))) == before
    assert compact(lake)["bars"] == (12, 4, 0)  # a flock dies with its holder


# `python -m etl ARGS` with its lake's lock wrapped, by `python -c WRAPPER FOLDER MODULE WAYS ARGS`: MODULE
# is where the command takes the lock (etl.pipeline for collect, etl.lake.compact for compact), WAYS a comma
# list:
# - start-line: once at the lock it creates FOLDER/ready-<pid> and waits for FOLDER/go, so that two racers,
#   interpreters started and imports done, try the lock in the same instant;
# - hold (compact): once under the lock, before its first table, it creates FOLDER/held and waits for
#   FOLDER/release, which the test creates once it has done what it does meanwhile;
# - no-lock (the control): the lock does nothing, all else is as it was.
WRAPPED_CLI = """
import contextlib, importlib, os, sys, time
from pathlib import Path
from types import SimpleNamespace

from etl.cli import main

folder, module, ways = Path(sys.argv[1]), importlib.import_module(sys.argv[2]), sys.argv[3].split(",")
take_lock = module.lake_lock


def wait_for(path):
    deadline = time.monotonic() + 120  # a test that never creates it must not leave this running
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.001)


@contextlib.contextmanager
def lake_lock(lake, lease_s):
    if "start-line" in ways:
        (folder / f"ready-{os.getpid()}").touch()
        wait_for(folder / "go")
    if "no-lock" in ways:
        yield SimpleNamespace(check=lambda: None, pass_fds=())
        return
    with take_lock(lake, lease_s=lease_s) as lock:
        yield lock


def held(compact_table):
    def held_table(*args, **kwargs):
        (folder / "held").touch()
        wait_for(folder / "release")
        return compact_table(*args, **kwargs)

    return held_table


module.lake_lock = lake_lock
if "hold" in ways:
    module._compact_table = held(module._compact_table)
sys.argv = ["python -m etl", *sys.argv[4:]]
main()
"""


def start_wrapped(folder: Path, module: str, ways: str, *args: str) -> subprocess.Popen:
    """`python -m etl ARGS` with its lake's lock wrapped as WRAPPED_CLI says."""
    folder.mkdir(exist_ok=True)
    return start_cli(str(folder), module, ways, *args, entry=("-c", WRAPPED_CLI), capture=True)


def start_held_compaction(lake_url: str, folder: Path, ways: str = "hold") -> subprocess.Popen:
    """`compact` of the lake, held under its lock (from when FOLDER/held exists) until release_compaction."""
    return start_wrapped(folder, "etl.lake.compact", ways, "compact", "--lake", lake_url)


def ended(child: subprocess.Popen) -> subprocess.CompletedProcess:
    """A started child once it has ended: its exit code and output, and its pid in place of its `args`."""
    stdout, stderr = child.communicate(timeout=120)
    return subprocess.CompletedProcess(child.pid, child.returncode, stdout, stderr)


def release_compaction(compaction: subprocess.Popen, folder: Path) -> subprocess.CompletedProcess:
    (folder / "release").touch()
    return ended(compaction)


def lake_state(lake_url: str) -> tuple:
    """What a refused command must leave as it was: each table's version, the lake's objects, its staging."""
    return versions(lake_url), sorted(lake_keys(lake_url)), staging_keys(lake_url)


def run_count(lake_url: str) -> int:
    return len(table_rows(lake_url, "runs"))


def test_a_collect_is_refused_while_a_compaction_holds_the_lock_and_goes_ahead_once_it_is_done(
    lake, tmp_path
):
    universe = write_universe(tmp_path / "u.txt", ["PEP"])
    before = lake_state(lake)
    with Emulator(EmulatorConfig(as_of=AS_OF)) as emulator:
        compaction = start_held_compaction(lake, tmp_path)
        try:
            wait_for(
                (tmp_path / "held").exists, "the compaction holding the lock", compaction
            )  # held from here on
            refused = run_collect(emulator, universe, Path(lake), "--quiet")
            assert compaction.poll() is None  # the compaction still held the lock when the collect ended
            assert lake_state(lake) == before and emulator.total_requests() == 0  # nothing fetched
        finally:
            done = release_compaction(compaction, tmp_path)
        line = error_line(refused)  # exit 1, one line, as for any run meeting another at the lock
        assert f"is being written by another run (pid {compaction.pid} on " in line
        assert compacted(done)["bars"] == (12, 4, 0)  # the compaction went on as if nothing had happened
        assert run_count(lake) == 3

        assert run_collect(emulator, universe, Path(lake), "--quiet").returncode == 0  # the lock is free
    assert run_count(lake) == 4 and emulator.total_requests() > 0


def test_the_control_without_the_compactions_lock_the_same_collect_is_not_refused(lake, tmp_path):
    # The compaction held as above, its lock taken out: the collect goes ahead, so the refusal above is the
    # lock's, not the hold's nor the compaction's mere presence.
    universe = write_universe(tmp_path / "u.txt", ["PEP"])
    with Emulator(EmulatorConfig(as_of=AS_OF)) as emulator:
        compaction = start_held_compaction(lake, tmp_path, "hold,no-lock")
        try:
            wait_for((tmp_path / "held").exists, "the compaction holding the lock", compaction)
            result = run_collect(emulator, universe, Path(lake), "--quiet")
            assert compaction.poll() is None  # it ran beside the held compaction
        finally:
            release_compaction(compaction, tmp_path)
    assert result.returncode == 0, result.stderr
    assert emulator.total_requests() > 0 and run_count(lake) == 4


def race(lake_url: str, universe: Path, folder: Path, release_fetch: threading.Event) -> tuple:
    """A collect and a compaction brought to the lock together: how each ended (`args` is its pid), and the
    requests the collect made.

    Whichever takes the lock holds it (the compaction at its hold, the collect at its stalled requests)
    until the other has ended: only the lock decides which goes ahead.
    """
    release_fetch.clear()
    with Emulator(EmulatorConfig(as_of=AS_OF, stall_rate=1.0, stall_s=120)) as emulator:
        route = (*yahoo_route(emulator), "--universe", str(universe), "--lake", lake_url, "--quiet")
        collect = start_wrapped(folder, "etl.pipeline", "start-line", "collect", *route)
        compaction = start_held_compaction(lake_url, folder, "start-line,hold")
        try:
            wait_for(
                lambda: len(list(folder.glob("ready-*"))) == 2, "both at the start line", collect, compaction
            )
            (folder / "go").touch()
            wait_for(
                lambda: collect.poll() is not None or compaction.poll() is not None, "one of them ending"
            )
        finally:
            release_fetch.set()
            (folder / "release").touch()
        return ended(collect), ended(compaction), emulator.total_requests()


def test_a_collect_and_a_compaction_started_at_once_one_goes_ahead_and_the_other_is_refused(
    lake, tmp_path, monkeypatch
):
    universe = write_universe(tmp_path / "u.txt", ["PEP", "WMT"])
    release_fetch = hold_stalled_requests(monkeypatch)
    winners = []
    for attempt in range(3):
        runs_before = run_count(lake)
        collected, done, requests = race(lake, universe, tmp_path / f"race-{attempt}", release_fetch)
        winner, loser = (collected, done) if collected.returncode == 0 else (done, collected)
        assert f"is being written by another run (pid {winner.args} on " in error_line(loser)
        if winner is done:
            compacted(done)
            assert requests == 0 and run_count(lake) == runs_before  # refused before fetching anything
        else:
            assert requests > 0 and run_count(lake) == runs_before + 1
        winners.append("collect" if winner is collected else "compact")
    (counts,) = connect_lake(lake).execute(READ_COUNTS).fetchall()
    assert counts[0] == counts[1] and counts[2] == counts[3], counts  # no key held twice
    assert run_count(lake) == 3 + winners.count("collect"), winners


def test_a_compaction_that_cannot_write_is_one_line_and_leaves_every_table_readable(lake):
    versions_before, views_before = versions(lake), view_rows(lake)
    rows_before = {name: table_rows(lake, name) for name in COMPACTABLE}
    # Root writes through any mode bits: a folder where bars' next commit must go stops it instead.
    blocker = Path(lake, "bars", "_delta_log", f"{versions_before['bars'] + 1:020d}.json")
    blocker.mkdir()
    try:
        line = error_line(run_cli("compact", "--lake", lake))
        assert line.startswith(f"error: compacting {lake}/bars failed (")
        assert line.endswith(f"; {COMPACTION_CUT_SHORT}")
        after = versions(lake)
        assert after["bars"] == versions_before["bars"] and after["quotes"] == versions_before["quotes"] + 1
        later = COMPACTABLE[COMPACTABLE.index("bars") + 1 :]
        assert {name: after[name] for name in later} == {name: versions_before[name] for name in later}
        assert {name: table_rows(lake, name) for name in COMPACTABLE} == rows_before
        assert view_rows(lake) == views_before
        left = stored_keys(lake, "bars") - snapshot_keys(lake, "bars")
        assert len(left) == 4  # the files the optimize wrote before its commit failed: in no snapshot
    finally:
        blocker.rmdir()
    assert compact(lake, "--keep-minutes", "0")["bars"] == (12, 4, 12 + len(left))
    assert stored_keys(lake, "bars") == snapshot_keys(lake, "bars")
    assert view_rows(lake) == views_before


def test_readers_never_see_a_row_twice_while_a_run_and_a_compaction_follow_each_other(lake, tmp_path):
    universe = write_universe(tmp_path / "u.txt", ["PEP", "WMT"])
    seen, failures = [], []

    def read() -> None:
        try:
            (counts,) = connect_lake(lake).execute(READ_COUNTS).fetchall()
        except (duckdb.Error, OSError) as exc:  # anything a reader would see fail is what this test counts
            failures.append(repr(exc))
            return
        seen.append(counts)
        if counts[0] != counts[1] or counts[2] != counts[3]:
            failures.append(counts)

    read()
    with Emulator(EmulatorConfig(as_of=AS_OF)) as emulator:
        route = yahoo_route(emulator)
        for command in (
            ["collect", *route, "--universe", str(universe), "--lake", lake, "--history", "1mo", "--quiet"],
            ["compact", "--lake", lake],
        ):
            child = start_cli(*command)
            while child.poll() is None:  # reading throughout: each of these reads starts while the child runs
                read()
            assert child.returncode == 0, command[0]
    read()
    assert failures == []
    # Each table's rows arrive whole, in one commit, and stay through the compaction: a reader sees a table
    # before the run or after it, never between, never back.
    for column in (0, 2):
        counts = [row[column] for row in seen]
        assert counts == sorted(counts) and set(counts) == {counts[0], counts[-1]} and counts[-1] > counts[0]


def test_compact_on_a_lake_without_runs_is_one_line(tmp_path):
    line = error_line(run_cli("compact", "--lake", str(tmp_path / "nothing")))
    assert line.startswith(f"error: the lake at {tmp_path / 'nothing'}")
    assert not (tmp_path / "nothing").exists()


@pytest.mark.parametrize("minutes", ["-5", "nan", "inf"])
def test_a_keep_minutes_that_is_no_retention_is_refused_before_anything_is_compacted(tmp_path, minutes):
    result = run_cli("compact", "--lake", str(tmp_path / "lake"), "--keep-minutes", minutes)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: Invalid value for '--keep-minutes': {minutes} is not")
    assert not (tmp_path / "lake").exists()
