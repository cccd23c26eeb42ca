"""The bench's printed report: the contenders' table, their TLS as the emulator saw it, and ours' own bars."""

import datetime as dt
from pathlib import Path

import duckdb

from bench.measure import Measurement
from bench.readback import manifest_committed_at
from etl import summary
from etl.config import DEFAULT_CONCURRENCY, DEFAULT_COST_PER_CALL
from etl.lake.paths import open_lake
from etl.lake.views import connect_lake
from etl.queries import fetch_dicts, load_sql

WALL_SPLIT_SOURCES = """How ours' wall time splits, in seconds:
  start-up: from the launcher starting the process (its wall clock) to the run's runs.started_at
    (interpreter, imports, settings, universe)
  processing: runs.finished_at - runs.started_at; inside it, from the batches table: before the first batch's
    requests are queued (lock, lake state, session), fetching (from then to the last answer of any batch; the
    batches overlap, so their fetch_s sum is larger), after the last answer (the last write, the manifest)
  publishing: from runs.finished_at to the run's commit to the `runs` Delta table, that commit's timestamp
    (the publishing child, its own interpreter's start included)
  exit: from then to the process's end as the launcher saw it (the publishing child's and the \
collector's teardown)"""


def print_table(results: list[Measurement]) -> None:
    ours = {(r.symbols, r.latency_ms): r.wall_s for r in results if r.contender == "ours"}
    print(
        "| contender | symbols | latency ms | wall s | API calls | calls/symbol |"
        " peak RSS MB | rows | missing | wall vs ours |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        ratio = (
            r.wall_s / ours[(r.symbols, r.latency_ms)] if (r.symbols, r.latency_ms) in ours else float("nan")
        )
        flag = "" if r.exit_code == 0 else f" (exit {r.exit_code})"
        print(
            f"| {r.contender}{flag} | {r.symbols:,} | {r.latency_ms:g} | {r.wall_s:.2f} | {r.api_calls:,} | "
            f"{r.api_calls / r.symbols:.2f} | {r.peak_rss_mb:.0f} | {r.rows:,} | {r.missing} | {ratio:.1f}x |"
        )


def print_tls(results: list[Measurement]) -> None:
    """What the emulator saw of each contender's TLS: all should pass its check, with one fingerprint."""
    print(
        "TLS as the emulator saw each contender (refused: a ClientHello without GREASE or h2 ALPN,"
        " answered 429;"
        " a fingerprint is a digest of the hello's ciphers, extensions and ALPN):"
    )
    print("| contender | symbols | latency ms | TLS connections | refused | fingerprints (connections) |")
    print("|---|---:|---:|---:|---:|---|")
    for r in results:
        seen = ", ".join(f"{digest} ({n:,})" for digest, n in sorted(r.fingerprints.items()))
        print(
            f"| {r.contender} | {r.symbols:,} | {r.latency_ms:g} | {r.tls_connections:,} | "
            f"{r.blocked_connections:,} | {seen} |"
        )


def report_ours(
    results: list[Measurement], work: Path, startup_s: dict[str, float], startup_repeats: int
) -> None:
    """The bars that concern the job alone: floor, CPU per symbol, flat memory, and where its wall time
    goes; `startup_s` is each start-up command's median wall seconds over `startup_repeats` processes."""
    print(WALL_SPLIT_SOURCES)
    print(
        f"  for scale, the median of {startup_repeats} fresh processes: "
        + "; ".join(f"{label} {seconds:.2f} s" for label, seconds in startup_s.items())
        + "\n"
    )
    for r in results:
        if r.contender != "ours":
            continue
        lake_dir = work / f"ours-{r.symbols}-{r.latency_ms:g}"
        con = connect_lake(lake_dir)
        figures = summary.run_summary(con, None, cost_per_call=DEFAULT_COST_PER_CALL, full_scale=r.symbols)
        line = (
            f"ours {r.symbols:,} symbols at {r.latency_ms:g} ms: processing {figures['processing_s']:.2f} s"
        )
        if r.latency_ms:
            floor_s = r.api_calls * r.latency_ms / 1000 / DEFAULT_CONCURRENCY
            line += (
                f", floor R*L/C = {r.api_calls}*{r.latency_ms / 1000:g}/{DEFAULT_CONCURRENCY}"
                f" = {floor_s:.2f} s,"
                f" processing/floor {figures['processing_s'] / floor_s:.2f},"
                f" wall/floor {r.wall_s / floor_s:.2f}"
            )
        else:
            line += (
                f", {1000 * figures['processing_s'] / r.symbols:.2f} ms a symbol"
                f" ({1000 * r.wall_s / r.symbols:.2f} with start-up)"
            )
        print(line + "; " + flatness(con))
        print("  " + split_wall(r, con, lake_dir, figures["run_id"]))


def flatness(con: duckdb.DuckDBPyConnection) -> str:
    (row,) = fetch_dicts(con, load_sql("memory_flatness"))
    return (
        f"RSS after batch {row['tenth_batch']}: {row['rss_mb_at_tenth']:.0f} MB, after the last: "
        f"{row['rss_mb_at_last']:.0f} MB ({100 * row['growth_ratio']:+.1f}%),"
        f" peak {row['peak_rss_mb']:.0f} MB"
    )


def split_wall(r: Measurement, con: duckdb.DuckDBPyConnection, lake_dir: Path, run_id: str) -> str:
    """The run's wall time as start-up, processing, publishing and exit, read as WALL_SPLIT_SOURCES says."""
    (phases,) = fetch_dicts(con, load_sql("run_phases"))
    published_at = manifest_committed_at(open_lake(lake_dir), run_id)
    ended_at = r.launched_at + dt.timedelta(seconds=r.wall_s)
    startup_s = (phases["started_at"] - r.launched_at).total_seconds()
    publishing_s = (published_at - phases["finished_at"]).total_seconds()
    return (
        f"wall {r.wall_s:.2f} = start-up {startup_s:.2f} + processing {phases['processing_s']:.2f} "
        f"(before the first batch {phases['before_first_batch_s']:.2f}, fetching {phases['fetching_s']:.2f}, "
        f"after the last answer {phases['after_last_answer_s']:.2f}; {phases['n_batches']} batches: fetch_s "
        f"summed {phases['fetch_s_summed']:.2f}, write_s summed {phases['write_s_summed']:.2f}) "
        f"+ publishing {publishing_s:.2f} + exit {(ended_at - published_at).total_seconds():.2f}"
    )
