"""`etl migrate`: a lake of the layout before Delta, written here by hand, converted into Delta tables.

The old lake has three completed runs and a later one without a manifest, bars that each run revised, a
published compaction whose replaced files are still on disk, a compacted file no record names, quotes of two
days, and no splits folder (lakes older than the table). What the Delta tables must hold is computed here
with polars from the rows the files were written from, not from the files.
"""

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from conftest import REPO_DIR, copy_lake, lake_keys, run_cli
from etl.errors import LegacyLakeError
from etl.lake.holdings import refuse_legacy
from etl.lake.paths import open_lake
from etl.schema import TABLES

R1, R2, R3 = "20261120T060000000000Z-aaaaaa", "20261121T060000000000Z-bbbbbb", "20261122T060000000000Z-cccccc"
# The latest run, cut off before its manifest: were its rows migrated, its bars and dividends would win.
INCOMPLETE = "20261123T060000000000Z-dddddd"
COMPLETED = (R1, R2, R3)
COMPACTION, UNPUBLISHED = "20261121T120000000000Z-eeeeee", "20261122T120000000000Z-ffffff"
QUOTE_DAYS = {R1: "2026-11-20", R2: "2026-11-21", R3: "2026-11-21", INCOMPLETE: "2026-11-23"}
BAR_DAYS = {
    R1: ["2025-12-31", "2026-11-18", "2026-11-19"],
    R2: ["2026-11-19", "2026-11-20"],
    R3: ["2026-11-20", "2026-11-21"],
    INCOMPLETE: ["2026-11-21", "2026-11-22"],
}
SYMBOLS = ("AAA", "BBB")
TABLE_NAMES = list(TABLES)


def run_index(run_id: str) -> int:
    return [*COMPLETED, INCOMPLETE].index(run_id) + 1


def old_rows() -> dict[str, dict[str, list[dict]]]:
    """Every row each run wrote, by old table and run: what the hand-made files hold, and what the Delta
    tables are checked against."""
    runs = [*COMPLETED, INCOMPLETE]
    return {
        "bars": {run: [bar(run, symbol, day) for symbol in SYMBOLS for day in BAR_DAYS[run]] for run in runs},
        "quotes": {
            run: [{"run_id": run, "symbol": s, "price": 10.0 * run_index(run)} for s in SYMBOLS]
            for run in runs
        },
        "dividends": {
            R1: [{"run_id": R1, "symbol": "AAA", "ex_date": dt.date(2026, 6, 1), "amount": 0.50}],
            R3: [
                {"run_id": R3, "symbol": "AAA", "ex_date": dt.date(2026, 6, 1), "amount": 0.55},
                {"run_id": R3, "symbol": "BBB", "ex_date": dt.date(2026, 9, 1), "amount": 0.20},
            ],
            INCOMPLETE: [
                {"run_id": INCOMPLETE, "symbol": "AAA", "ex_date": dt.date(2026, 6, 1), "amount": 9.9}
            ],
        },
        "batches": {run: [{"run_id": run, "batch_no": 0, "n_symbols": 2}] for run in runs},
        "failures": {
            run: [{"run_id": run, "batch_no": 0, "symbol": "BBB", "outcome": "error"}]
            for run in (R2, INCOMPLETE)
        },
        "quarantine": {
            run: [{"run_id": run, "table_name": "bars", "reason": "high < low"}] for run in (R3, INCOMPLETE)
        },
        "runs": {run: [manifest(run)] for run in COMPLETED},
    }


def bar(run_id: str, symbol: str, day: str) -> dict:
    # Each run's close of a bar differs from every other run's: the one that wins is known from it.
    return {
        "run_id": run_id,
        "symbol": symbol,
        "date": dt.date.fromisoformat(day),
        "close": 100.0 + run_index(run_id),
    }


def manifest(run_id: str) -> dict:
    started_at = dt.datetime.strptime(run_id[:15], "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)
    return {"run_id": run_id, "started_at": started_at, "finished_at": started_at, "status": "succeeded"}


def write_file(root: Path, name: str, table: str, rows: list[dict]) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=TABLES[table].schema), path)


def write_old_lake(root: Path) -> Path:
    """The old layout, file by file, as the job wrote it before Delta."""
    rows = old_rows()
    for run, bars in rows["bars"].items():
        for year in sorted({row["date"].year for row in bars}):
            write_file(
                root, f"bars/year={year}/{run}.parquet", "bars", [r for r in bars if r["date"].year == year]
            )
    for run, quotes in rows["quotes"].items():
        write_file(root, f"quotes/date={QUOTE_DAYS[run]}/{run}.parquet", "quotes", quotes)
    for table in ("dividends", "batches", "failures", "quarantine", "runs"):
        for run, table_rows in rows[table].items():
            write_file(root, f"{table}/{run}.parquet", table, table_rows)
    write_compactions(root, rows)
    return root


def write_compactions(root: Path, rows: dict[str, dict[str, list[dict]]]) -> None:
    """A published compaction of R1's and R2's bars of 2026 and manifests (the replaced files stay), and a
    compacted file of R3's bars that no record names (a compaction cut off before its record)."""
    bars_2026 = [row for run in (R1, R2) for row in rows["bars"][run] if row["date"].year == 2026]
    write_file(root, f"bars/year=2026/compacted-{COMPACTION}.parquet", "bars", bars_2026)
    write_file(root, f"runs/compacted-{COMPACTION}.parquet", "runs", rows["runs"][R1] + rows["runs"][R2])
    write_file(root, f"bars/year=2026/compacted-{UNPUBLISHED}.parquet", "bars", rows["bars"][R3])
    compacted_at = dt.datetime(2026, 11, 21, 12, tzinfo=dt.UTC)
    record = [
        {
            "compaction_id": COMPACTION,
            "compacted_at": compacted_at,
            "table_name": table,
            "replaced_file": f"{folder}/{run}.parquet",
            "compacted_file": f"{folder}/compacted-{COMPACTION}.parquet",
        }
        for table, folder in (("bars", "bars/year=2026"), ("runs", "runs"))
        for run in (R1, R2)
    ]
    (root / "compactions").mkdir()
    pq.write_table(pa.Table.from_pylist(record), root / "compactions" / f"{COMPACTION}.parquet")


def expected(table: str, runs: tuple[str, ...] = COMPLETED) -> pl.DataFrame:
    """What the Delta table must hold, from the rows the given runs wrote: one current row per key, the latest
    run's, for bars, dividends and splits; every row for the others."""
    old = "bars" if table == "bar_revisions" else table
    rows = [row for run in runs for row in old_rows().get(old, {}).get(run, [])]
    frame = pl.from_arrow(pa.Table.from_pylist(rows, schema=TABLES[old].schema))
    key = {
        "bars": ["symbol", "date"],
        "dividends": ["symbol", "ex_date"],
        "splits": ["symbol", "ex_date"],
    }.get(table)
    if key:
        frame = frame.sort("run_id", descending=True).unique(key, keep="first", maintain_order=True)
    return frame


def read_delta(lake_url: str, table: str) -> pl.DataFrame:
    """The table's current snapshot through polars, in a folder or a bucket."""
    options = None
    if lake_url.startswith("s3://"):
        options = {
            "aws_access_key_id": os.environ["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": os.environ["AWS_SECRET_ACCESS_KEY"],
            "aws_region": os.environ["AWS_REGION"],
            "aws_endpoint_url": os.environ["AWS_ENDPOINT_URL"],
            "aws_allow_http": "true",
        }
    return pl.read_delta(open_lake(lake_url).table_url(table), storage_options=options)


def is_legacy(lake_url: str) -> bool:
    try:
        refuse_legacy(open_lake(lake_url))
    except LegacyLakeError:
        return True
    return False


def old_keys(lake_url: str) -> list[str]:
    """The old layout's objects still in the lake: any but a Delta table's log and part files."""
    return [
        key
        for key in lake_keys(lake_url)
        if "/_delta_log/" not in key and not key.rpartition("/")[2].startswith("part-")
    ]


def migrate(lake_url: str) -> subprocess.CompletedProcess:
    return run_cli("migrate", "--lake", lake_url, timeout=60)


@pytest.fixture
def old_lake_url(lake_url, tmp_path) -> str:
    """The hand-made old lake, in a folder or copied into a bucket."""
    if open_lake(lake_url).is_local:
        return str(write_old_lake(Path(lake_url)))
    return copy_lake(write_old_lake(tmp_path / "old"), lake_url)


def test_migrate_converts_an_old_lake_into_delta_tables(old_lake_url):
    done = migrate(old_lake_url)
    assert done.returncode == 0, done.stderr
    printed = dict(line.split(": ") for line in done.stdout.strip().splitlines())
    assert list(printed) == TABLE_NAMES  # runs last
    for table in TABLE_NAMES:
        assert printed[table] == f"{expected(table).height:,} rows", table
        assert read_delta(old_lake_url, table).height == expected(table).height, table
    committed_at = {
        table: DeltaTable(open_lake(old_lake_url).table_url(table)).history()[0]["timestamp"]
        for table in TABLE_NAMES
    }
    assert committed_at["runs"] == max(committed_at.values())  # the manifests last, as every run commits them

    bars = read_delta(old_lake_url, "bars")
    assert bars.select("symbol", "date").is_duplicated().sum() == 0
    winners = expected("bars").select("symbol", "date", "close").sort("symbol", "date")
    assert bars.select("symbol", "date", "close").sort("symbol", "date").equals(winners)
    assert set(bars["year"]) == {2025, 2026} and set(bars["month"]) == {11, 12}
    revisions = read_delta(old_lake_url, "bar_revisions").select("run_id", "symbol", "date", "close")
    assert revisions.sort(pl.all()).equals(expected("bar_revisions").select(revisions.columns).sort(pl.all()))
    dividends = read_delta(old_lake_url, "dividends").sort("symbol")
    assert dividends["amount"].to_list() == [0.55, 0.20]
    assert read_delta(old_lake_url, "splits").height == 0  # the old lake has no splits folder

    quotes = read_delta(old_lake_url, "quotes").select("run_id", "date").unique().sort("run_id")
    assert quotes.rows() == [(run, dt.date.fromisoformat(QUOTE_DAYS[run])) for run in COMPLETED]
    assert sorted(read_delta(old_lake_url, "runs")["run_id"]) == list(COMPLETED)

    assert old_keys(old_lake_url) == [] and not is_legacy(old_lake_url)
    again = migrate(old_lake_url)
    assert again.returncode == 1
    assert len(again.stderr.strip().splitlines()) == 1 and "already Delta" in again.stderr


def test_an_old_lake_is_refused_until_migrated_and_queried_after(tmp_path):
    lake_url = str(write_old_lake(tmp_path / "lake"))
    refused = run_cli("summary", "--lake", lake_url)
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1 and "etl migrate" in refused.stderr

    assert migrate(lake_url).returncode == 0
    queried = run_cli("query", "--lake", lake_url, "--format", "json", "select count(*) as n from bars")
    assert queried.returncode == 0, queried.stderr
    assert json.loads(queried.stdout) == [{"n": expected("bars").height}]


def test_the_counts_would_catch_a_migration_that_broke_an_old_rule(tmp_path):
    """Each rule of the old layout, broken, gives other counts or other winners than those checked above."""
    with_incomplete = (*COMPLETED, INCOMPLETE)
    for table in ("bar_revisions", "quotes", "batches", "failures", "quarantine", "bars"):
        assert expected(table, with_incomplete).height != expected(table).height, table
    assert (
        expected("dividends", with_incomplete)["amount"].to_list()
        != expected("dividends")["amount"].to_list()
    )
    every_file = pl.read_parquet(
        write_old_lake(tmp_path / "lake") / "bars" / "**" / "*.parquet", hive_partitioning=False
    )
    assert every_file.height != expected("bar_revisions").height  # replaced and unpublished files counted
    every_manifest = pl.read_parquet(tmp_path / "lake" / "runs" / "*.parquet")
    assert every_manifest.height != expected("runs").height  # a compacted runs file counted beside its runs


def committed_tables(lake_dir: Path) -> int:
    return sum((lake_dir / name / "_delta_log" / f"{0:020}.json").exists() for name in TABLE_NAMES)


def run_and_kill(lake_dir: Path, after_tables: int, rng: random.Random) -> None:
    """Start migrate, kill -9 it a few ms after its `after_tables`-th table is committed (or once it ends)."""
    command = [sys.executable, "-m", "etl", "migrate", "--lake", str(lake_dir)]
    child = subprocess.Popen(command, cwd=REPO_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while child.poll() is None and committed_tables(lake_dir) < after_tables:
        time.sleep(0.002)
    time.sleep(rng.uniform(0, 0.03))
    child.send_signal(signal.SIGKILL)
    child.wait()


def assert_migrated_once(lake_url: str) -> None:
    """Every table holds what it must, written by one commit of the migration; no old file is left."""
    assert old_keys(lake_url) == [] and not is_legacy(lake_url)
    for table in TABLE_NAMES:
        history = DeltaTable(open_lake(lake_url).table_url(table)).history()
        assert [entry["run_id"] for entry in history] == ["migrate"], table
        assert read_delta(lake_url, table).height == expected(table).height, table


def test_a_migrate_killed_at_any_instant_is_finished_by_the_next_and_writes_each_table_once(tmp_path):
    rng = random.Random(7)
    lake_dir = write_old_lake(tmp_path / "lake")
    cut_short = []
    for after_tables in (0, 3, 7, 9):
        run_and_kill(lake_dir, after_tables, rng)
        # Until the last old file is gone, the lake is refused as one to migrate: no collect writes into it.
        assert is_legacy(str(lake_dir)) == bool(old_keys(str(lake_dir)))
        cut_short.append(0 < committed_tables(lake_dir) < len(TABLE_NAMES))
    assert any(cut_short)  # a kill did land between two tables' commits
    finished = migrate(str(lake_dir))
    assert finished.returncode == 0 or "already Delta" in finished.stderr, finished.stderr
    assert_migrated_once(str(lake_dir))


def test_a_migrate_cut_off_while_removing_the_old_files_is_finished_by_the_next(tmp_path):
    lake_dir = write_old_lake(tmp_path / "lake")
    records = sorted((lake_dir / "compactions").iterdir())
    tables = sorted(path for path in lake_dir.rglob("*.parquet") if path not in records)
    # What a removal cut off halfway leaves: the tables' later files (it goes in key order), and compactions/,
    # removed last, with the marker of a migrate (whatever its text) that refuse_legacy sees.
    kept = {path: path.read_bytes() for path in [*tables[len(tables) // 2 :], *records]}
    assert migrate(str(lake_dir)).returncode == 0
    for path, data in kept.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (lake_dir / "compactions" / "migrating").write_text("a marker of an earlier migrate\n")
    assert is_legacy(str(lake_dir))

    finished = migrate(str(lake_dir))
    assert finished.returncode == 0, finished.stderr
    assert_migrated_once(str(lake_dir))


@pytest.mark.parametrize("exists", [False, True], ids=["missing", "empty"])
def test_an_empty_or_missing_lake_is_one_line_and_makes_nothing(tmp_path, exists):
    lake_dir = tmp_path / "lake"
    if exists:
        lake_dir.mkdir()
    refused = migrate(str(lake_dir))
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1 and "nothing to migrate" in refused.stderr
    assert [path.name for path in tmp_path.iterdir()] == (["lake"] if exists else [])
