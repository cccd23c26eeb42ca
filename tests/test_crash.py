"""Crash safety: the real CLI killed with SIGKILL at events of its run while readers query the lake, on a
local folder and in a bucket of the loopback S3 store.

Each attempt runs `python -m etl collect` against a faulty emulator (HTTP 500s, 429s, hung requests) and kills
it at an event, batch kills and commit kills in turn: a few ms after its k-th committed batch (`batch i/N` on
its stderr), or as soon as a table's Delta log has a new entry, written by the publishing child (the first
such kill after `bars`, so before `runs`). The next attempt resumes. Readers query the lake as downstream jobs
do (the views, polars.read_delta and scan_delta, deltalake's pyarrow dataset, DuckDB over a snapshot's file
list) all the while. After every kill: every table reads with polars and through the views, every file a
snapshot lists reads as Parquet (orphan files a killed writer left outside every snapshot are allowed), no
key twice, a run in `runs` has committed every table, no child process outlived the collector; and the
emulator's chart requests, per symbol, show that a resumed run fetched none of the batches it had committed,
under the run id it started with. Each of these checks is shown, at the end, to catch the fault it exists for
in a damaged copy of a lake, on a folder and in a bucket.
"""

import datetime as dt
import json
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import duckdb
import polars as pl
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import s3fs
from deltalake import DeltaTable, write_deltalake

from conftest import (
    REPO_DIR,
    cli_env,
    copy_lake,
    staging_keys,
    wait_for_lease_expiry,
    write_universe,
    yahoo_route,
)
from etl.emulator import Emulator, EmulatorConfig
from etl.lake.delta import commit_run
from etl.lake.paths import DELTA_LOG_DIR_NAME, Lake, open_lake
from etl.lake.staging import load_run
from etl.lake.store import fetch_in_order
from etl.lake.views import connect_lake
from etl.metrics import new_run_id
from etl.plan import plan_batches
from etl.schema import BAR_REVISIONS, BARS, RUNS, TABLES

SEED = 20261125
KILL_POINTS = 6
# In a bucket, every attempt also waits out the killed writer's lease (a second) and the checks read the
# bucket: fewer kills keep the test in make test's time, and the local test covers the events at large.
S3_KILL_POINTS = 3
# Between two rounds of the readers' queries: flat out, they took both cores from the writer they watch.
READER_PAUSE_S = 0.05
SYMBOLS = [f"S{i:03d}" for i in range(40)]
BATCH_SIZE = 4
N_BATCHES = len(SYMBOLS) // BATCH_SIZE
# What a collector has fetched but not committed when it is killed (etl/fetch.py keeps 2 x --concurrency 8
# requests queued, 5 batches of 4, besides the one being written): the most a resumed run fetches again per
# kill.
IN_FLIGHT_BATCHES = 6
ATTEMPT_DEADLINE_S = 120
CHILD_EXIT_S = 10
AS_OF = dt.datetime(2026, 11, 24, 21, 0, tzinfo=dt.UTC)
FAULTY = EmulatorConfig(
    error_rate=0.1, stall_rate=0.02, stall_s=1.0, rate_limit_rps=300, latency_ms=5, as_of=AS_OF, seed=3
)
BARS_COLUMNS = ["symbol", "date", "open", "high", "low", "close", "adj_close", "volume"]
QUOTES_COLUMNS = (
    "symbol, name, currency, exchange, exchange_tz, price, open, day_high, day_low, volume, market_cap"
)
# Each table's view (sql/views.sql), where it is named otherwise.
VIEWS = {"bar_revisions": "bars_all"}
# What no table may hold twice.
KEYS = {
    "bars": ("symbol", "date"),
    "bar_revisions": ("run_id", "symbol", "date"),
    "dividends": ("symbol", "ex_date"),
    "splits": ("symbol", "ex_date"),
    "quotes": ("run_id", "symbol"),
    "batches": ("run_id", "batch_no"),
    "runs": ("run_id",),
}
# The tables every run of this universe commits: the appended ones, and bars (a merge of no rows, as of a run
# without splits, makes no commit).
COMMITTED_BY_EVERY_RUN = [name for name, table in TABLES.items() if not table.merge_key or table is BARS]
_LOG_ENTRY = re.compile(r"\d{20}\.json")


class ChartRequests:
    """Per symbol, how often the emulator was asked for its chart, faulted answers included."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def snapshot(self) -> Counter[str]:
        return Counter(self.emulator.chart_requests())

    def asked_since(self, earlier: Counter[str]) -> set[str]:
        return set(self.snapshot() - earlier)


class DeltaLogs:
    """The lake's Delta logs, each entry read once: a log entry is created whole and never rewritten."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._entries: dict[str, list[dict]] = {}

    def entry_keys(self, table: str) -> list[str]:
        keys = self.lake.store.list_keys(self.lake.key(table, DELTA_LOG_DIR_NAME, ""))
        return [key for key in keys if _LOG_ENTRY.fullmatch(key.rpartition("/")[2])]

    def actions(self, table: str) -> Iterator[dict]:
        """Every action of every commit of the table (a torn entry raises json.JSONDecodeError)."""
        keys = self.entry_keys(table)
        unread = [key for key in keys if key not in self._entries]
        for key, data in zip(unread, fetch_in_order(self.lake.store, unread), strict=True):
            self._entries[key] = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
        for key in keys:
            yield from self._entries[key]

    def committed_runs(self, table: str) -> set[str]:
        """The runs that committed the table: their application transactions."""
        return {action["txn"]["appId"] for action in self.actions(table) if "txn" in action}

    def added_files(self, table: str) -> set[str]:
        return {action["add"]["path"] for action in self.actions(table) if "add" in action}


@dataclass(frozen=True)
class StagedRun:
    """A run in the staging area: its plan, and its committed batches (0 is its manifest)."""

    plan: dict
    committed: frozenset[int]

    @property
    def remaining(self) -> int:
        return 0 if 0 in self.committed else N_BATCHES - len(self.committed)

    def symbols(self, batch_nos: frozenset[int]) -> set[str]:
        batches = plan_batches(list(self.plan["symbols"]), self.plan["batch_size"])
        return {symbol for batch in batches if batch.batch_no in batch_nos for symbol in batch.symbols}


@dataclass(frozen=True)
class LakeState:
    """What is staged, and which runs `runs` lists, while no writer runs."""

    staged: dict[str, StagedRun]
    completed: tuple[str, ...]

    @property
    def unfinished(self) -> list[str]:
        return [run_id for run_id in self.staged if run_id not in self.completed]

    def run_ids(self) -> set[str]:
        return set(self.staged) | set(self.completed)


def read_state(lake: Lake) -> LakeState:
    root = lake.staging_key("")
    staged = {}
    for name in sorted({key.removeprefix(root).partition("/")[0] for key in lake.store.list_keys(root)}):
        try:
            run, plan = load_run(lake, name)
        except FileNotFoundError:  # the local store's pending folder; a run whose discard was cut off
            continue
        staged[run.run_id] = StagedRun(plan, frozenset(run.committed()))
    return LakeState(staged, tuple(pl.read_delta(lake.table_url("runs"))["run_id"]))


@dataclass
class ResumeLedger:
    """Which run each attempt worked on and which symbols' charts it asked for: a resumed run fetches none of
    the batches it committed, and completes under the run id it started with."""

    started: list[str] = field(default_factory=list)  # every run an attempt started, in order
    seen: dict[str, StagedRun] = field(default_factory=dict)  # every run seen staged, as last seen
    asked: dict[str, Counter[str]] = field(default_factory=dict)  # per run, per symbol: attempts that asked
    cut_off: Counter[str] = field(default_factory=Counter)  # per run: attempts killed while on it
    resumed: int = 0  # attempts that resumed a run with committed batches and fetched the others
    # Charts fetched for a run `runs` already listed, its staging's discard cut off: a collect that resumed
    # it would throw them away (RunStaging.discard removes the plan first so that none can).
    refetched_published: int = 0
    replaced: list[str] = field(default_factory=list)  # unfinished runs discarded for one of another plan
    faults: list[str] = field(default_factory=list)

    def record(self, before: LakeState, after: LakeState, asked: set[str], *, killed: bool) -> None:
        new = sorted(after.run_ids() - before.run_ids())
        self.faults += [f"one attempt started {len(new)} runs: {new}"] if len(new) > 1 else []
        self._check_kept(before, after, new)
        run_id = new[0] if new else next(iter(before.unfinished or before.staged), None)
        if new:
            self._check_new(before, after, new[0])
        elif run_id is not None:
            self._check_resumed(run_id, before, asked)
        if run_id is not None and run_id not in before.completed:
            self.asked.setdefault(run_id, Counter()).update(asked)
            self.cut_off[run_id] += killed
        self.started += new
        self.seen.update(after.staged)

    def _check_kept(self, before: LakeState, after: LakeState, new: list[str]) -> None:
        for run_id, run in before.staged.items():
            kept = after.staged.get(run_id)
            if run_id in after.completed:  # published (its staging may be half discarded)
                continue
            if kept is not None and not run.committed <= kept.committed:
                self.faults.append(
                    f"run {run_id} lost committed batches {sorted(run.committed - kept.committed)}"
                )
            elif kept is None and any(after.staged[n].plan != run.plan for n in new if n in after.staged):
                self.replaced.append(run_id)
            elif kept is None:
                self.faults.append(
                    f"run {run_id} ({len(run.committed)} batches committed) was thrown away unpublished, "
                    "and not for a run of another plan"
                )

    def _check_new(self, before: LakeState, after: LakeState, new_run: str) -> None:
        plan = after.staged.get(new_run)
        for run_id in before.unfinished:
            if plan is not None and plan.plan == before.staged[run_id].plan:
                self.faults.append(
                    f"started run {new_run} instead of resuming run {run_id}, of the same plan"
                )

    def _check_resumed(self, run_id: str, before: LakeState, asked: set[str]) -> None:
        run = before.staged[run_id]
        again = asked & run.symbols(run.committed)
        if again:
            self.faults.append(
                f"resumed run {run_id} fetched again {sorted(again)}, of batches committed before the attempt"
            )
        if run_id in before.completed:  # published, its discard cut off: what it fetched is thrown away
            self.refetched_published += len(asked)
        else:
            self.resumed += bool(asked) and bool(run.committed - {0})

    def final_faults(self, completed: tuple[str, ...]) -> list[str]:
        """What is wrong once the last attempt has finished: a run that never completed under its own id, or
        one that fetched more again than its kills had in flight."""
        faults = [
            f"run {run_id} never completed under its own id"
            for run_id in dict.fromkeys([*self.started, *self.seen])
            if run_id not in completed and run_id not in self.replaced
        ]
        for run_id, asked in self.asked.items():
            again = sum(n - 1 for n in asked.values())
            if again > self.cut_off[run_id] * IN_FLIGHT_BATCHES * BATCH_SIZE:
                faults.append(f"run {run_id}: {again} charts fetched again over {self.cut_off[run_id]} kills")
        return faults


@dataclass(frozen=True)
class KillPoint:
    """Where an attempt is killed: `jitter_s` after its `batches`-th committed batch, or after `table` has a
    new Delta commit."""

    batches: int = 0
    jitter_s: float = 0.0
    table: str | None = None

    def __str__(self) -> str:
        if self.table is not None:
            return f"killed {self.jitter_s * 1000:.0f} ms after {self.table}'s commit"
        return f"killed {self.jitter_s * 1000:.0f} ms after batch {self.batches}"


class KillSchedule:
    """Seeded, and driven by what the lake holds: batch kills while the run has more than half its batches to
    fetch and more than two kills are left, then commit kills until it is published. The first commit kill
    lands after `bars`, the others after one of the next two tables the run has to commit before `runs` (so
    a publish is cut off again and again), and the last after `runs` (while its staging is discarded)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.commit_kills = 0

    def next_point(self, logs: DeltaLogs, state: LakeState, kills_left: int) -> KillPoint:
        if state.staged and not state.unfinished:
            return KillPoint(table=RUNS.name)  # a published run, its discard cut off: no kill comes
        run_id = next(iter(state.unfinished), None)
        remaining = N_BATCHES if run_id is None else state.staged[run_id].remaining
        if remaining > N_BATCHES // 2 and kills_left > 2:
            return KillPoint(batches=self.rng.randint(1, 3), jitter_s=self.rng.uniform(0, 0.03))
        pending = [
            t for t in COMMITTED_BY_EVERY_RUN if run_id is None or run_id not in logs.committed_runs(t)
        ]
        before_runs = [t for t in pending if t != RUNS.name]
        self.commit_kills += 1
        if self.commit_kills == 1 and BARS.name in before_runs:
            return KillPoint(table=BARS.name)
        if not before_runs:
            return KillPoint(table=RUNS.name)
        # A few ms later, now and then: into the next table's write, which leaves its files orphans.
        return KillPoint(
            jitter_s=self.rng.choice([0, self.rng.uniform(0, 0.015)]), table=self.rng.choice(before_runs[:2])
        )


class FixedSchedule:
    """The same kill point for every attempt."""

    def __init__(self, point: KillPoint) -> None:
        self.point = point

    def next_point(self, logs: DeltaLogs, state: LakeState, kills_left: int) -> KillPoint:
        return self.point


@dataclass
class Readers:
    """Queries the lake in a loop as downstream jobs do, counting failures: the views, polars, deltalake's
    pyarrow dataset, and DuckDB over a snapshot's file list."""

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

    def _queries(self) -> list[Callable[[], object]]:
        lake = open_lake(self.lake_url)
        bars, quotes = lake.table_url("bars"), lake.table_url("quotes")
        plain = duckdb.connect()  # its own: other tests may leave a result pending on DuckDB's default one
        if not lake.is_local:
            plain.register_filesystem(s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False))
        return [
            lambda: connect_lake(self.lake_url).execute("select count(*) from bars").fetchall(),
            lambda: self._check_unique_bars(pl.read_delta(bars)),
            lambda: pl.scan_delta(bars).select(pl.len()).collect(),
            lambda: DeltaTable(quotes).to_pyarrow_dataset().to_table(),
            lambda: plain.execute(
                "select count(*) from read_parquet($files, hive_partitioning = true, "
                "hive_types = {'year': 'INTEGER', 'month': 'INTEGER'})",
                {"files": DeltaTable(bars).file_uris()},
            ).fetchall(),
        ]

    def _check_unique_bars(self, bars: pl.DataFrame) -> None:
        twice = bars.select(KEYS["bars"]).is_duplicated().sum()
        if twice:
            self.failures.append(f"polars.read_delta saw {twice} bars of a (symbol, date) held twice")

    def _loop(self) -> None:
        queries = self._queries()
        while not self._stop.is_set():
            for query in queries:
                try:
                    query()
                except Exception as exc:  # any failure a reader would see is what this test counts
                    self.failures.append(f"{type(exc).__name__}: {exc}"[:3000])
                self.queries += 1
            self._stop.wait(READER_PAUSE_S)


class Collector:
    """`collect` in a process of its own, its stderr read as it comes: how many batches it committed."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(
            command,
            cwd=REPO_DIR,
            env=cli_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.batches = 0
        self.tail: deque[str] = deque(maxlen=20)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stderr or ():
            self.batches += line.startswith("batch ")
            self.tail.append(line)

    def wait_for(self, happened: Callable[[], bool], poll_s: float) -> bool | None:
        """Poll until it happened (True), the collector ended first (False), or the deadline passed (None)."""
        deadline = time.monotonic() + ATTEMPT_DEADLINE_S
        while time.monotonic() < deadline:
            if happened():
                return True
            if self.process.poll() is not None:
                return happened()
            time.sleep(poll_s)
        return None

    def kill(self) -> tuple[int, list[psutil.Process], list[str]]:
        """SIGKILL it: its exit status, its child processes then, and a fault for each that outlived it."""
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
            described = {child.pid: " ".join(child.cmdline()) for child in children}
        except psutil.NoSuchProcess:  # it ended on its own
            children, described = [], {}
        self.process.send_signal(signal.SIGKILL)
        status = self.process.wait(timeout=CHILD_EXIT_S)
        _, alive = psutil.wait_procs(children, timeout=CHILD_EXIT_S)
        for child in alive:  # the collector's own child, which nothing else ends now
            child.kill()
        self._reader.join(timeout=CHILD_EXIT_S)
        outlived = [f"child {c.pid} ({described.get(c.pid)}) outlived the collector" for c in alive]
        return status, children, outlived


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
        str(BATCH_SIZE),
        "--timeout-s",
        "0.3",
        "--min-success",
        "1",
        # A lake in a bucket: a killed writer's lease lasts a second, not a minute, before the next run goes.
        "--lock-lease-s",
        "1",
    ]


@dataclass(frozen=True)
class Attempt:
    """How one attempt went."""

    point: KillPoint
    status: int
    children: int  # child processes the collector had when it was killed
    seconds: float
    faults: list[str]

    @property
    def killed(self) -> bool:
        return self.status == -signal.SIGKILL


def run_and_kill(command: list[str], logs: DeltaLogs, point: KillPoint) -> Attempt:
    """Start collect and kill -9 it at the kill point (it may end before it gets there)."""
    started = time.monotonic()
    if point.table is not None:
        commits_before = len(logs.entry_keys(point.table))
        event = lambda: len(logs.entry_keys(point.table)) > commits_before  # noqa: E731
    else:
        event = lambda: collector.batches >= point.batches  # noqa: E731
    collector = Collector(command)
    got_there = collector.wait_for(event, poll_s=0.005 if logs.lake.is_local else 0.05)
    if got_there:
        time.sleep(point.jitter_s)  # where in the next batch the kill lands
    status, children, faults = collector.kill()
    if got_there is None:
        faults.append(f"collect got neither to {point} nor to its end in {ATTEMPT_DEADLINE_S} s")
    if status not in (0, -signal.SIGKILL) or got_there is None:
        faults.append(f"collect ended with exit status {status}: {''.join(collector.tail)}")
    return Attempt(point, status, len(children), time.monotonic() - started, faults)


@dataclass
class LakeCheck:
    """What is wrong in the lake, each table as polars and the views read it; and whether a publish was cut
    off between two tables' commits (some table holds a commit of a run that `runs` does not list)."""

    faults: list[str]
    cut_between: bool = False


def check_lake(lake: Lake, logs: DeltaLogs) -> LakeCheck:
    try:
        tables = {name: DeltaTable(lake.table_url(name)) for name in TABLES}
        # Before polars reads the files: a file that is not Parquet is named, not left to polars' error.
        if unreadable := snapshot_faults(lake, tables):
            return LakeCheck(unreadable)
        frames = {name: pl.read_delta(table) for name, table in tables.items()}
        committed = {name: logs.committed_runs(name) for name in TABLES}
        faults = view_faults(connect_lake(lake), {n: f.height for n, f in frames.items()})
    except Exception as exc:  # what a reader would see, or a torn log entry
        return LakeCheck([f"the lake does not read: {type(exc).__name__}: {exc}"])
    faults += [
        fault
        for name, frame in frames.items()
        for fault in duplicate_faults(f"{name} (polars.read_delta)", frame.select(KEYS.get(name, [])))
    ]
    completed = set(frames[RUNS.name]["run_id"])
    faults += [
        f"runs lists run {run_id}, which has no commit in {name}: its manifest came before its rows"
        for name in COMMITTED_BY_EVERY_RUN
        for run_id in sorted(completed - committed[name])
    ]
    return LakeCheck(faults, any(runs - completed for runs in committed.values()))


def duplicate_faults(where: str, keys: pl.DataFrame) -> list[str]:
    twice = keys.is_duplicated().sum() if keys.width else 0
    return [f"{where}: {twice} rows of keys ({', '.join(keys.columns)}) held twice"] if twice else []


def snapshot_faults(lake: Lake, tables: dict[str, DeltaTable]) -> list[str]:
    """Every file of each table's snapshot reads as Parquet; files outside every snapshot (a killed writer's)
    are allowed."""
    uris = [uri for table in tables.values() for uri in table.file_uris()]
    keys = [lake.key(uri.removeprefix(f"{lake.root_url}/")) for uri in uris]
    faults = []
    for uri, data in zip(uris, fetch_in_order(lake.store, keys), strict=True):
        try:
            pq.ParquetFile(pa.BufferReader(data)).read()
        except Exception as exc:
            faults.append(f"{uri}, in its table's snapshot, does not read as Parquet: {exc}")
    return faults


def view_faults(con: duckdb.DuckDBPyConnection, heights: dict[str, int]) -> list[str]:
    """Through the views: each table's rows as polars reads them (a view reads no file outside the snapshot),
    and no key twice."""
    views = {name: VIEWS.get(name, name) for name in TABLES}
    counts = con.execute(
        f"select {', '.join(f'(select count(*) from {v})' for v in views.values())}"
    ).fetchone()
    faults = [
        f"{name}: {count} rows through the views, {heights[name]} read by polars"
        for name, count in zip(views, counts or (), strict=True)
        if count != heights[name]
    ]
    twice_sql = ", ".join(
        f"(select count(*) from (select {', '.join(key)} from {views[name]} group by all "
        "having count(*) > 1))"
        for name, key in KEYS.items()
    )
    twice = con.execute(f"select {twice_sql}").fetchone() or ()
    return faults + [
        f"{name} (views): {n} keys ({', '.join(key)}) held twice"
        for (name, key), n in zip(KEYS.items(), twice, strict=True)
        if n
    ]


def orphan_files(lake: Lake, logs: DeltaLogs) -> int:
    """The files in the tables' folders that no commit ever added: what killed writers left."""
    count = 0
    for name in TABLES:
        keys = lake.store.list_keys(lake.key(name, ""))
        data = {k.removeprefix(lake.key(name, "")) for k in keys if f"/{DELTA_LOG_DIR_NAME}/" not in k}
        count += len(data - logs.added_files(name))
    return count


@dataclass
class Outcome:
    kills: int = 0
    cut_between: int = 0  # kills after which a run had committed some table and not `runs`
    children: int = 0  # child processes of killed collectors, all of which died with them
    queries: int = 0
    reader_failures: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    after_kills: list[str] = field(default_factory=list)  # the faults the checks after a kill found
    ledger: ResumeLedger = field(default_factory=ResumeLedger)
    orphans: int = 0
    attempts: list[str] = field(default_factory=list)  # what each attempt did, for a failure's report
    finished: subprocess.CompletedProcess | None = None

    def add(self, attempt: Attempt, check: LakeCheck) -> None:
        self.kills += attempt.killed
        self.cut_between += attempt.killed and check.cut_between
        self.children += attempt.children
        self.faults += attempt.faults + check.faults
        self.after_kills += check.faults if attempt.killed else []
        self.attempts.append(
            f"{attempt.point}: exit status {attempt.status} after {attempt.seconds:.1f} s, "
            f"{attempt.children} children{', cut off between two tables' if check.cut_between else ''}"
        )


def crash_and_resume(
    command: list[str], charts: ChartRequests, lake_url: str, kills: int, schedule
) -> Outcome:
    """Kill collect at `kills` kill points of the schedule (resuming each time), then let it finish."""
    lake = open_lake(lake_url)
    logs, outcome = DeltaLogs(lake), Outcome()
    before = read_state(lake)
    with Readers(lake_url) as readers:
        while outcome.kills < kills:
            asked_before = charts.snapshot()
            attempt = run_and_kill(command, logs, schedule.next_point(logs, before, kills - outcome.kills))
            outcome.add(attempt, check_lake(lake, logs))
            after = read_state(lake)
            outcome.ledger.record(before, after, charts.asked_since(asked_before), killed=attempt.status != 0)
            before = after
            wait_for_lease_expiry(lake_url)
        asked_before = charts.snapshot()
        outcome.finished = subprocess.run(
            command,
            cwd=REPO_DIR,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=ATTEMPT_DEADLINE_S,
        )
        after = read_state(lake)
        outcome.ledger.record(before, after, charts.asked_since(asked_before), killed=False)
    outcome.queries, outcome.reader_failures = readers.queries, readers.failures
    outcome.faults += check_lake(lake, logs).faults + outcome.ledger.faults
    outcome.faults += outcome.ledger.final_faults(after.completed)
    outcome.orphans = orphan_files(lake, logs)
    return outcome


def current_bars(lake_url: Path | str) -> set[tuple]:
    """The lake's current bars through the views, without the run ids."""
    return set(connect_lake(lake_url).execute(f"select {', '.join(BARS_COLUMNS)} from bars").fetchall())


def delta_bars(lake_url: Path | str) -> set[tuple]:
    """The lake's current bars as polars.read_delta reads them, without the run ids."""
    return set(pl.read_delta(open_lake(lake_url).table_url("bars")).select(BARS_COLUMNS).iter_rows())


def latest_run(lake_url: Path | str, columns: str, table: str) -> set[tuple]:
    con = connect_lake(lake_url)
    return set(
        con.execute(f"select {columns} from {table} where run_id = (select max(run_id) from runs)").fetchall()
    )


@pytest.fixture(scope="module")
def faulty_emulator():
    """One for the module, and its chart requests by symbol."""
    with Emulator(FAULTY) as emu:
        yield emu, ChartRequests(emu)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, faulty_emulator):
    """A run of the same universe that nobody killed."""
    folder = tmp_path_factory.mktemp("reference")
    universe = write_universe(folder / "universe.txt", SYMBOLS)
    lake_dir = folder / "lake"
    command = collect_command(["-m", "etl"], faulty_emulator[0], universe, lake_dir)
    # Module fixtures run before the per-test cache isolation: this run gets its own cache.
    env = cli_env({"XDG_CACHE_HOME": str(folder / "cache")})
    result = subprocess.run(command, cwd=REPO_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return universe, lake_dir


def describe(where: str, outcome: Outcome) -> str:
    ledger = outcome.ledger
    return "\n".join(
        [
            f"{where}: {outcome.kills} kills ({outcome.cut_between} between two tables' commits, "
            f"{outcome.children} child processes killed with the collector), "
            f"{outcome.queries} reader queries, {len(outcome.reader_failures)} failed, "
            f"{len(outcome.faults)} lake faults, {outcome.orphans} orphan files; "
            f"{len(ledger.started)} runs started, {ledger.resumed} resumed with batches committed, "
            f"{len(ledger.replaced)} replaced by another plan's; "
            f"{ledger.refetched_published} charts fetched for a run already published",
            *outcome.attempts,
            *outcome.reader_failures,
            *outcome.faults,
        ]
    )


def test_killed_at_events_readers_never_fail_and_resume_gives_the_reference_data(
    faulty_emulator, reference, lake_url
):
    (emulator, charts), (universe, reference_lake) = faulty_emulator, reference
    # Readers need a lake to read: it starts with one completed run, as any morning's lake does.
    lake_dir = copy_lake(reference_lake, lake_url)
    reference_runs = read_state(open_lake(reference_lake)).completed

    kill_points = KILL_POINTS if open_lake(lake_url).is_local else S3_KILL_POINTS
    command = collect_command(["-m", "etl"], emulator, universe, lake_dir)
    outcome = crash_and_resume(command, charts, lake_dir, kill_points, KillSchedule(SEED))

    print(describe(f"crash test on {lake_url}", outcome))
    assert outcome.finished is not None and outcome.finished.returncode == 0, outcome.finished
    assert outcome.kills >= kill_points and outcome.queries > kill_points
    assert outcome.reader_failures == [] and outcome.faults == []
    # The kills covered what matters: a publish cut off between two tables, a publishing child killed with
    # its collector, and a run resumed with batches committed.
    assert outcome.cut_between >= 1 and outcome.children >= 1 and outcome.ledger.resumed >= 1
    # A published run whose staging's discard was cut off is never resumed and fetched again.
    assert outcome.ledger.refetched_published == 0
    # Every run started completed, once, under its own id; a run of another plan is the only excuse.
    ledger, completed = outcome.ledger, read_state(open_lake(lake_dir)).completed
    assert sorted(completed) == sorted({*reference_runs, *ledger.started} - {*ledger.replaced})
    assert ledger.replaced or ledger.started[0] in completed
    bars = current_bars(lake_dir)
    assert delta_bars(lake_dir) == bars == current_bars(reference_lake)
    assert {bar[0] for bar in bars} == set(SYMBOLS)
    quotes = latest_run(lake_dir, QUOTES_COLUMNS, "quotes")
    assert {quote[0] for quote in quotes} == set(SYMBOLS)
    assert quotes == latest_run(reference_lake, QUOTES_COLUMNS, "quotes")
    assert staging_keys(lake_url) == []


def test_the_crash_test_catches_a_writer_that_publishes_a_run_twice(faulty_emulator, reference, tmp_path):
    (emulator, charts), (universe, reference_lake) = faulty_emulator, reference
    lake_dir = copy_lake(reference_lake, str(tmp_path / "lake"))
    naive_writer = str(Path(__file__).with_name("naive_writer.py"))
    command = collect_command([naive_writer], emulator, universe, lake_dir)

    # Killed after bar_revisions twice: its first publish cut off, then the publish that resumes it.
    outcome = crash_and_resume(command, charts, lake_dir, 2, FixedSchedule(KillPoint(table="bar_revisions")))

    print(describe("naive writer", outcome))
    assert outcome.kills == 2 and outcome.cut_between == 2
    assert any("held twice" in fault for fault in outcome.after_kills)


# The checks' own negative controls: each damages a copy of the reference lake, on a folder and in a bucket,
# as a broken writer would, and shows the check meant for that damage report it where the undamaged copy
# passed.
# The lake is damaged directly: a kill loop per damage would cost make test several times more, above all in
# a bucket.


@pytest.fixture
def lake_copy(reference, lake_url) -> Lake:
    return open_lake(copy_lake(reference[1], lake_url))


def lake_faults(lake: Lake) -> list[str]:
    return check_lake(lake, DeltaLogs(lake)).faults


def data_key(lake: Lake, uri: str) -> str:
    """A table's file, as its snapshot names it, as the lake's store does."""
    return lake.key(unquote(uri).removeprefix(f"{lake.root_url}/"))


def replace_object(lake: Lake, key: str, data: bytes) -> None:
    lake.store.delete([key])
    lake.store.put_new(key, data)


def test_check_lake_catches_a_key_held_twice_as_a_publish_run_again_leaves_it(lake_copy):
    assert lake_faults(lake_copy) == []
    url = lake_copy.table_url(BAR_REVISIONS.name)
    rows = DeltaTable(url).to_pyarrow_table()
    # What the naive writer's publish, run again, does: bar_revisions is appended to (bars, merged, is not).
    write_deltalake(url, rows, mode="append", partition_by=list(BAR_REVISIONS.partition_by))

    key = "(run_id, symbol, date)"
    assert lake_faults(lake_copy) == [
        f"bar_revisions (views): {rows.num_rows} keys {key} held twice",
        f"bar_revisions (polars.read_delta): {2 * rows.num_rows} rows of keys {key} held twice",
    ]


def test_check_lake_catches_a_snapshot_file_that_is_not_parquet(lake_copy):
    assert lake_faults(lake_copy) == []
    uri = DeltaTable(lake_copy.table_url(BARS.name)).file_uris()[0]
    key = data_key(lake_copy, uri)
    # What a writer that rewrote a file in place leaves when it is killed: the file cut short.
    replace_object(lake_copy, key, lake_copy.store.get(key)[:-100])

    faults = lake_faults(lake_copy)
    assert len(faults) == 1
    assert faults[0].startswith(f"{uri}, in its table's snapshot, does not read as Parquet")


def test_check_lake_catches_a_torn_log_entry(lake_copy):
    assert lake_faults(lake_copy) == []
    key = DeltaLogs(lake_copy).entry_keys(RUNS.name)[-1]
    # A commit that is not whole (a writer that wrote its log entry in place, killed): no reader reads the
    # table.
    replace_object(lake_copy, key, lake_copy.store.get(key)[:-20])

    faults = lake_faults(lake_copy)
    assert len(faults) == 1 and faults[0].startswith("the lake does not read: ")


def test_check_lake_catches_a_run_listed_in_runs_before_its_rows_are_committed(lake_copy):
    assert lake_faults(lake_copy) == []
    runs = DeltaTable(lake_copy.table_url(RUNS.name)).to_pyarrow_table().slice(0, 1)
    run_id = new_run_id(AS_OF)
    row = runs.set_column(runs.schema.get_field_index("run_id"), "run_id", pa.array([run_id]))
    # What a publisher that commits `runs` first leaves when it is killed right after: the run listed, and
    # none of its rows in the other tables.
    commit_run(lake_copy, RUNS, lambda: pa.RecordBatchReader.from_stream(row), run_id, row_group_rows=1000)

    assert lake_faults(lake_copy) == [
        f"runs lists run {run_id}, which has no commit in {name}: its manifest came before its rows"
        for name in COMMITTED_BY_EVERY_RUN
        if name != RUNS.name
    ]


def globbing_views(lake: Lake, table: str) -> duckdb.DuckDBPyConnection:
    """The lake's views with one table's read as a glob reads its folder (as the views did before Delta):
    every Parquet file there, in the snapshot or not."""
    con = connect_lake(lake)
    files = [
        f"'{lake.root_url}/{key.removeprefix(lake.key(''))}'"
        for key in lake.store.list_keys(lake.key(table, ""))
        if key.endswith(".parquet")
    ]
    con.execute(
        f"create or replace view {table} as select * from read_parquet([{', '.join(files)}], "
        "hive_partitioning = true, union_by_name = true)"
    )
    return con


def test_a_stray_file_beside_a_snapshot_is_allowed_and_a_view_that_read_it_would_be_caught(lake_copy):
    logs = DeltaLogs(lake_copy)
    heights = {name: pl.read_delta(lake_copy.table_url(name)).height for name in TABLES}
    assert orphan_files(lake_copy, logs) == 0
    assert view_faults(globbing_views(lake_copy, BARS.name), heights) == []
    uri = DeltaTable(lake_copy.table_url(BARS.name)).file_uris()[0]
    # What a commit killed before its log entry leaves: a whole Parquet file of the table's, in no snapshot.
    key = data_key(lake_copy, uri)
    folder, _, name = key.rpartition("/")
    lake_copy.store.put_new(f"{folder}/stray-{name}", lake_copy.store.get(key))

    assert orphan_files(lake_copy, logs) == 1
    assert lake_faults(lake_copy) == []  # polars and the views read the snapshot: the stray file is unread
    stray_rows = pq.read_metadata(pa.BufferReader(lake_copy.store.get(key))).num_rows
    assert view_faults(globbing_views(lake_copy, BARS.name), heights) == [
        f"bars: {heights['bars'] + stray_rows} rows through the views, {heights['bars']} read by polars",
        f"bars (views): {stray_rows} keys (symbol, date) held twice",
    ]
