"""`python -m bench [--quick]`: every contender in a fresh process against the emulator, one table."""

import argparse
import os
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from bench.measure import EmulatorProcess, Measurement, count_output, measure, median_wall_s
from bench.readback import describe_objects, newest_run_rows
from bench.report import print_table, print_tls, report_ours
from bench.s3 import loopback_bucket, print_s3_table
from bench.synthetic import universe
from etl import pipeline, summary
from etl.config import (
    COMPACTABLE,
    DEFAULT_COST_PER_CALL,
    DEFAULT_FULL_SCALE,
    DEFAULT_LOCK_LEASE_S,
    ROW_GROUP_ROWS,
    YAHOO_LATENCY_MS,
    Settings,
)
from etl.lake.compact import compact_lake
from etl.lake.paths import open_lake
from etl.lake.views import connect_lake

NAIVE = ("naive", "batched-gc")
FULL_PLAN = [
    (30, ("naive", "batched-gc", "yf-download", "ours")),
    (257, ("naive", "batched-gc", "yf-download", "ours")),
    (5000, ("ours",)),
]
SKIPPED = """skipped at 5,000 symbols, to finish within 15 minutes on 2 cores:
  naive, batched-gc: about 5 requests a symbol one after another, over 40 minutes at 100 ms
  yf-download: 552 s when measured (2 requests a symbol on 4 threads, then pandas); ours is at 1/3.4 \
of it at 257
"""
QUICK_PLAN = [(30, ("naive", "batched-gc", "yf-download", "ours")), (257, ("yf-download", "ours"))]
# A Monday and a Tuesday evening (UTC) after New York's close: the second run is the next day's incremental
# one.
DAYS = (("ours day 1", "2026-11-23T22:00"), ("ours day 2", "2026-11-24T22:00"))
# Fresh processes that show what ours pays before its run starts, each timed as the median of STARTUP_REPEATS.
STARTUP_COMMANDS = {
    "python -m etl --help": ["-m", "etl", "--help"],
    "python -m etl collect --help": ["-m", "etl", "collect", "--help"],
    'python -c "import etl.pipeline"': ["-c", "import etl.pipeline"],
}
STARTUP_REPEATS = 5


def make_universe(size: int, folder: Path) -> tuple[Path, list[str]]:
    """The default universe, cut or extended with synthetic tickers to `size` symbols."""
    symbols = universe(size)
    path = folder / f"universe-{size}.txt"
    path.write_text("\n".join(symbols) + "\n")
    return path, symbols


def run_contender(
    name: str,
    size: int,
    emulator: EmulatorProcess,
    latency_ms: float,
    work: Path,
    env: dict,
    *,
    lake: str | None = None,
) -> Measurement:
    """One contender's run; ours into `lake` when given (a bucket's), else into a folder of `work`."""
    universe, symbols = make_universe(size, work)
    out = work / (f"ours-days-{size}" if name.startswith("ours day") else f"{name}-{size}-{latency_ms:g}")
    if name.startswith("ours"):
        lake = lake or str(out)
        command = [
            sys.executable,
            "-m",
            "etl",
            "collect",
            "--proxy",
            emulator.proxy_url,
            "--ca-bundle",
            str(emulator.ca_path),
            "--universe",
            str(universe),
            "--lake",
            lake,
        ]
        count = partial(newest_run_rows, lake, symbols)
    else:
        command = [
            sys.executable,
            "-m",
            "bench.contenders",
            name,
            "--universe",
            str(universe),
            "--out",
            str(out.with_suffix(".parquet")),
        ]
        count = partial(count_output, [out.with_suffix(".parquet")], symbols)
        # yfinance's own default session takes its route from the environment alone.
        env = emulator.to_routed_env(env)
    result = measure(name, command, count, symbols, emulator, latency_ms, env)
    print(f"  {name:<12} {size:>6} symbols: {result.wall_s:7.2f} s", file=sys.stderr, flush=True)
    return result


def run_two_days(size: int, latency_ms: float, work: Path, env: dict) -> list[Measurement]:
    """The job one evening and again the next: the second run fetches new bars and the revision window
    only."""
    results = []
    for name, as_of in DAYS:
        emulator = EmulatorProcess(latency_ms, work, as_of=as_of)
        try:
            results.append(run_contender(name, size, emulator, latency_ms, work, env))
        finally:
            emulator.stop()
    return results


def time_startup(env: dict) -> dict[str, float]:
    """Each of STARTUP_COMMANDS' median wall seconds, started through the launcher like every contender."""
    return {
        label: median_wall_s([sys.executable, *args], env, STARTUP_REPEATS)
        for label, args in STARTUP_COMMANDS.items()
    }


def time_summary_over_daily_runs(emulator: EmulatorProcess, work: Path, n_runs: int, lake: str) -> None:
    """A lake of n daily runs (small universes); the summary's time from connect to answer, before and after
    compact."""
    universe, _ = make_universe(20, work)
    # Full runs, as before incremental ones: a lake as large as daily runs could make, and no state read per
    # run.
    for _ in range(n_runs):
        pipeline.collect(
            Settings(
                universe_path=universe,
                lake=lake,
                proxy=emulator.proxy_url,
                ca_bundle=emulator.ca_path,
                full_refresh=True,
            )
        )
    for state in ("as the runs left it", "after compact"):
        if state == "after compact":  # optimize, and a vacuum of every file the optimize replaced
            compact_lake(
                open_lake(lake),
                COMPACTABLE,
                keep_minutes=0,
                row_group_rows=ROW_GROUP_ROWS,
                lease_s=DEFAULT_LOCK_LEASE_S,
            )
        started = time.perf_counter()
        summary.run_summary(
            connect_lake(lake),
            None,
            cost_per_call=DEFAULT_COST_PER_CALL,
            full_scale=DEFAULT_FULL_SCALE,
        )
        summary_s = time.perf_counter() - started
        opened = open_lake(lake)
        print(
            f"summary over a lake of {n_runs} runs in {'a folder' if opened.is_local else 'a bucket'}, "
            f"{state}: {summary_s:.3f} s (connect, views, query; {describe_objects(opened)})"
        )


def run_s3_rows(latency_ms: float, work: Path, env: dict, n_runs: int) -> None:
    """257 symbols into a folder and into a bucket of the loopback store, back to back; then the summary
    over daily runs in a bucket."""
    emulator = EmulatorProcess(latency_ms, work)
    try:
        with loopback_bucket() as (lake, counter):
            folder = str(work / "s3-compare-folder")  # a new lake, as the bucket's is
            local = run_contender("ours", 257, emulator, latency_ms, work, env, lake=folder)
            counter.reset_counts()
            in_bucket = run_contender("ours", 257, emulator, latency_ms, work, env | os.environ, lake=lake)
            print_s3_table(local, in_bucket, counter.counts())
        emulator.stop()
        emulator = EmulatorProcess(0.0, work)
        with loopback_bucket() as (lake, _):
            time_summary_over_daily_runs(emulator, work, n_runs, lake)
    finally:
        emulator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="30 and 257 symbols only (about 2 minutes)")
    parser.add_argument("--latency-ms", type=float, default=YAHOO_LATENCY_MS)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="etl-bench-"))
    env = {**os.environ, "XDG_CACHE_HOME": str(work / "cache")}
    results = []
    for latency_ms, plan in (
        (args.latency_ms, QUICK_PLAN if args.quick else FULL_PLAN),
        (0.0, [(257, ("ours",))]),
    ):
        emulator = EmulatorProcess(latency_ms, work)
        try:
            for size, contenders in plan:
                results += [run_contender(name, size, emulator, latency_ms, work, env) for name in contenders]
        finally:
            emulator.stop()
    results += run_two_days(257, args.latency_ms, work, env)
    emulator = EmulatorProcess(0.0, work)
    try:
        if not args.quick:
            results.append(run_contender("ours", 10_000, emulator, 0.0, work, env))
        startup_s = time_startup(env)
        print(
            f"\nmachine: {os.cpu_count()} cores,"
            f" {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
        )
        print(SKIPPED)
        print_table(results)
        print()
        print_tls(results)
        print()
        report_ours(results, work, startup_s, STARTUP_REPEATS)
        n_runs = 20 if args.quick else 250
        time_summary_over_daily_runs(emulator, work, n_runs, str(work / "daily-runs"))
        print()
        run_s3_rows(args.latency_ms, work, env, n_runs)
    finally:
        emulator.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
