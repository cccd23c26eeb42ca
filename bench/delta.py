"""`python -m bench.delta [publish merge summary s3]`: the Delta lake's performance bars, synthetic runs.

Each run is staged as the collector stages it (bench/synthetic.py) and published by the publishing
child, `python -m etl.lake.publish`, started through the launcher: its wall time and its own peak RSS. No
lock is held (the collector would hold it); the emulator is not needed. Every figure carries the load
average, as the machine may be shared.

  publish  257 symbols: a year into an empty lake, then the next day's run (6 bars a symbol), 3 times
  merge    10,000 symbols: a year, then 3 daily runs, each published by the child (bars by year and month,
           as etl/schema.py partitions them); before it, the run's bars alone, by a child of this module,
           into a table by (year, month) and one by year alone, through etl/lake/delta.py's own commit_run
           (the same writer properties and merge predicate)
  summary  `python -m etl summary` in a fresh process over 250 daily runs of 257 symbols, before and after
           `compact`, in a folder; `s3`: the same lake copied into a bucket of the loopback store
"""

import argparse
import dataclasses
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from bench.measure import drop_cached_libraries, run_child
from bench.readback import describe_objects
from bench.synthetic import next_weekday, stage_run, universe, weekdays_to
from etl.config import COMPACTABLE, DEFAULT_LOCK_LEASE_S, ROW_GROUP_ROWS
from etl.lake import delta
from etl.lake.compact import compact_lake
from etl.lake.paths import Lake, open_lake
from etl.lake.publish import publish_run, to_reader
from etl.lake.staging import RunStaging, load_run
from etl.lake.store import fetch_in_order
from etl.schema import BARS

YEAR_END = dt.date(2026, 11, 23)  # a Monday: the first run's last bar; trading days are the weekdays
YEAR_BARS = 251
DAY_BARS = 6  # the new day and the 5-day revision window
REPEATS = 3
BARS_CHILD = "commit-bars"
PARTS = ("publish", "merge", "summary", "s3")
PARTITIONINGS = {"year, month": ("year", "month"), "year": ("year",)}


def load() -> str:
    return f"(load {' '.join(Path('/proc/loadavg').read_text().split()[:3])})"


def measured(command: list[str]) -> tuple[float, float]:
    """A fresh process through the launcher: its wall seconds and its own peak RSS in MiB, the libraries
    mapped as the loader reads them (as the bench measures the collector)."""
    drop_cached_libraries()
    wall_s, peak_mb, code, _ = run_child(command, dict(os.environ))
    if code:
        raise RuntimeError(f"{' '.join(command)} exited {code}")
    return wall_s, peak_mb


def publish_child(staging: RunStaging) -> tuple[float, float]:
    """The publishing child as the collector starts it, timed."""
    args = [staging.lake.url, staging.run_id, str(ROW_GROUP_ROWS), "{launcher_pid}"]
    return measured([sys.executable, "-m", "etl.lake.publish", *args])


def bars_child(staging: RunStaging, target_dir: Path, partitioning: str) -> tuple[float, float]:
    """commit_bars in a child process, timed."""
    args = [staging.lake.url, staging.run_id, str(target_dir), partitioning]
    return measured([sys.executable, "-m", "bench.delta", BARS_CHILD, *args])


def commit_bars(lake_url: str, run_id: str, target_url: str, partitioning: str) -> None:
    """The staged run's bars committed to `target_url`/bars, partitioned by these columns, as publish does."""
    staging, _ = load_run(open_lake(lake_url), run_id)
    table = dataclasses.replace(BARS, partition_by=tuple(PARTITIONINGS[partitioning]))
    keys = staging.parts()[BARS.name]

    def rows() -> pa.RecordBatchReader:
        return to_reader(table, fetch_in_order(staging.lake.store, keys), staging)

    delta.commit_run(open_lake(target_url), table, rows, run_id, row_group_rows=ROW_GROUP_ROWS)


def last_commit(table_url: str) -> str:
    """The table's last commit: its operation, time, files added and removed, rows copied."""
    from deltalake import DeltaTable

    table = DeltaTable(table_url)
    commit = table.history(1)[0]
    m = commit["operationMetrics"]
    added = m.get("num_target_files_added", m.get("num_added_files"))
    removed = m.get("num_target_files_removed", m.get("num_removed_files"))
    copied = f", {m['num_target_rows_copied']:,} rows copied" if "num_target_rows_copied" in m else ""
    return (
        f"{commit['operation']} {m['execution_time_ms'] / 1000:.2f} s, files +{added} -{removed}{copied};"
        f" {len(table.file_uris())} files in the table"
    )


def bench_publish(work: Path) -> None:
    symbols = universe(257)
    print(f"publishing {len(symbols)} symbols, the publishing child (bar: 0.80 s, the publish before Delta):")
    for attempt in range(REPEATS):
        lake = open_lake(work / f"publish-{attempt}")
        year = weekdays_to(YEAR_END, YEAR_BARS)
        next_day = weekdays_to(next_weekday(YEAR_END), DAY_BARS)
        for label, days in (("a year into an empty lake", year), ("the next day", next_day)):
            staging = stage_run(lake, symbols, days, seed=attempt)
            wall_s, peak_mb = publish_child(staging)
            print(f"  {label:<26} {wall_s:5.2f} s, peak RSS {peak_mb:4.0f} MB {load()}", flush=True)
            print(f"    bars: {last_commit(lake.table_url('bars'))}")


def bench_merge(work: Path, n_symbols: int) -> None:
    symbols, last_day = universe(n_symbols), YEAR_END
    lake = open_lake(work / "merge-lake")
    print(
        f"\n{n_symbols:,} symbols: a year, then {REPEATS} daily runs (bar: under 10 s, 600 MB in the child)"
    )
    commit_run_everywhere(work, stage_run(lake, symbols, weekdays_to(last_day, YEAR_BARS), seed=0), "a year")
    for seed in range(1, REPEATS + 1):
        last_day = next_weekday(last_day)
        staging = stage_run(lake, symbols, weekdays_to(last_day, DAY_BARS), seed=seed)
        commit_run_everywhere(work, staging, f"the run of {last_day}")


def commit_run_everywhere(work: Path, staging: RunStaging, label: str) -> None:
    """The staged run's bars into a table of each partitioning, then the whole run by the publishing child."""
    print(f"  {label}:")
    for name in PARTITIONINGS:  # before the publishing child, which discards the staged run
        target = work / f"bars-by-{name.replace(', ', '-')}"
        wall_s, peak_mb = bars_child(staging, target, name)
        print(f"    bars alone by {name:<11}: child {wall_s:5.2f} s, peak RSS {peak_mb:4.0f} MB {load()}")
        print(f"      {last_commit(str(target / 'bars'))}", flush=True)
    wall_s, peak_mb = publish_child(staging)
    print(f"    publishing child (every table): {wall_s:5.2f} s, peak RSS {peak_mb:4.0f} MB {load()}")
    print(f"      bars: {last_commit(staging.lake.table_url('bars'))}", flush=True)


def build_daily_runs(lake: Lake, n_runs: int) -> None:
    """A year's run, then n_runs - 1 daily ones, each published in this process."""
    symbols, last_day = universe(257), YEAR_END
    started = time.perf_counter()
    publish_run(
        stage_run(lake, symbols, weekdays_to(last_day, YEAR_BARS), seed=0), row_group_rows=ROW_GROUP_ROWS
    )
    for seed in range(1, n_runs):
        last_day = next_weekday(last_day)
        staging = stage_run(lake, symbols, weekdays_to(last_day, DAY_BARS), seed=seed)
        publish_run(staging, row_group_rows=ROW_GROUP_ROWS)
    built_s = time.perf_counter() - started
    print(
        f"\n{n_runs} runs of {len(symbols)} symbols staged and published, in this process, in {built_s:.0f} s"
    )


def time_summary(lake: Lake, where: str) -> None:
    """`python -m etl summary` in fresh processes, before and after compact (bar: under 2 s)."""
    for state in ("as the runs left it", "after compact"):
        if state == "after compact":
            started = time.perf_counter()
            compacted = compact_lake(
                lake, COMPACTABLE, keep_minutes=0, row_group_rows=ROW_GROUP_ROWS, lease_s=DEFAULT_LOCK_LEASE_S
            )
            removed = sum(c.files_removed for c in compacted)
            vacuumed = sum(c.files_vacuumed for c in compacted)
            compact_s = time.perf_counter() - started
            print(
                f"  compact: {compact_s:.1f} s, {removed:,} files rewritten, {vacuumed:,} vacuumed {load()}"
            )
        command = [sys.executable, "-m", "etl", "summary", "--lake", lake.url]
        runs = [measured(command) for _ in range(REPEATS)]
        walls = ", ".join(f"{wall_s:.2f}" for wall_s, _ in runs)
        median_s = statistics.median(wall_s for wall_s, _ in runs)
        print(
            f"  summary in {where}, {state}: {walls} s (median {median_s:.2f}),"
            f" peak RSS {runs[0][1]:.0f} MB {load()}"
        )
        print(f"    {describe_objects(lake)}")
        for name in ("bars", "runs"):
            print(f"    {name}: {describe_objects(lake, name)}")


def copy_lake(source_dir: Path, lake: Lake) -> None:
    for path in sorted(p for p in source_dir.rglob("*") if p.is_file()):
        lake.store.put_new(lake.key(path.relative_to(source_dir)), path.read_bytes())


def main() -> None:
    if sys.argv[1:2] == [BARS_CHILD]:
        commit_bars(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(prog="python -m bench.delta", description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", metavar="PART", help=f"of {', '.join(PARTS)} (default: all)")
    parser.add_argument("--merge-symbols", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=250)
    args = parser.parse_args()
    parts = set(args.parts or PARTS)
    if parts - set(PARTS):
        parser.error(f"unknown parts {sorted(parts - set(PARTS))}; choose from {', '.join(PARTS)}")
    print(f"machine: {os.cpu_count()} cores {load()}")
    with tempfile.TemporaryDirectory(prefix="etl-bench-delta-") as folder:
        work = Path(folder)
        if "publish" in parts:
            bench_publish(work)
        if "merge" in parts:
            bench_merge(work, args.merge_symbols)
        if parts & {"summary", "s3"}:
            daily = open_lake(work / "daily")
            build_daily_runs(daily, args.runs)
            if "s3" in parts:
                from bench.s3 import loopback_bucket  # moto, for the bucket's figures only

                with loopback_bucket() as (bucket_url, _):
                    bucket = open_lake(bucket_url)
                    copy_lake(work / "daily", bucket)
                    time_summary(bucket, "a bucket (loopback S3)")
            if "summary" in parts:
                time_summary(daily, "a folder")


if __name__ == "__main__":
    main()
