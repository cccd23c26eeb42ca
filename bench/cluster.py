"""`python -m bench.cluster`: `collect --ray` on a local 2-CPU Ray cluster against one process, through
the emulator in its own process.

Two rows: N symbols at 100 ms a request, Ray against one process (wall, requests, ratio); and M symbols
at 0 ms with --history 5d on Ray alone: the driver's peak RSS and whether it stays flat, Ray's overhead per
batch (as the driver tells it: submission to result, less the batch's own time and its wait for a free
worker), the handshakes (one per worker process), each worker process's batches, time and memory
(sql/report_workers.sql) and the memory of every Ray process of the cluster.
"""

import argparse
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.measure import REPO_DIR, EmulatorProcess
from etl import summary
from etl.config import DEFAULT_COST_PER_CALL, DEFAULT_FULL_SCALE
from etl.lake.views import connect_lake
from etl.queries import fetch_dicts, load_sql

MB = 1024 * 1024
# A local cluster's, for this bench and tests/test_ray.py: everything Ray listens on stays on loopback
# (without RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 Ray 2.60 also listens on the machine's other interfaces, and a
# driver resolves 127.0.0.1 to them); no tokens, no usage stats. Ray reads them at import.
RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
}
SAMPLE_S = 0.2
# The driver's last word on Ray's overhead (etl/cluster.py, Overheads.describe).
OVERHEAD_SAID = re.compile(
    r"Ray's overhead a batch .*: median ([\d.-]+) ms, p95 ([\d.-]+) ms, mean ([\d.-]+) ms"
)


@dataclass
class Run:
    """One collect: wall time, the emulator's counts, the driver's memory over time, the cluster's peak, and
    what the driver wrote to stderr."""

    wall_s: float
    requests: dict[str, int]
    driver_rss_mb: list[tuple[float, float]]  # (Unix time, MB)
    cluster_peak_mb: float
    said: str


def start_cluster(temp_dir: Path) -> str:
    """A local cluster on 127.0.0.1 in this process: 2 CPUs, no dashboard, a small object store, its files in
    `temp_dir` (short: Ray's socket paths must fit in 107 characters); its GCS address."""
    os.environ.update(RAY_ENV)
    import ray

    context = ray.init(
        num_cpus=2,
        _node_ip_address="127.0.0.1",
        include_dashboard=False,
        object_store_memory=80 * MB,
        _temp_dir=str(temp_dir),
        logging_level=logging.WARNING,
    )
    return context.address_info["gcs_address"]  # type: ignore[attr-defined]  # a local cluster's context


def collect(emulator: EmulatorProcess, universe: Path, lake: Path, *options: str) -> Run:
    """Run `python -m etl collect` and sample its RSS and the Ray processes' (this process's other
    children)."""
    emulator.reset()
    command = [sys.executable, "-m", "etl", "collect", "--universe", str(universe), "--lake", str(lake)]
    command += ["--proxy", emulator.proxy_url, "--ca-bundle", str(emulator.ca_path), "--quiet", *options]
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as stderr:
        driver = subprocess.Popen(command, cwd=REPO_DIR, stdout=subprocess.DEVNULL, stderr=stderr)
        rss, cluster_peak = [], 0.0
        while driver.poll() is None:
            rss.append((time.time(), _rss_mb([psutil.Process(driver.pid)])))
            cluster_peak = max(cluster_peak, _rss_mb(_ray_processes(driver.pid, emulator)))
            time.sleep(SAMPLE_S)
        stderr.seek(0)
        said = stderr.read()
    if driver.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {driver.returncode}: {said[-2000:]}")
    return Run(time.perf_counter() - started, emulator.counts(), rss, cluster_peak, said)


def _ray_processes(driver_pid: int, emulator: EmulatorProcess) -> list[psutil.Process]:
    skip = {driver_pid, emulator.pid}
    return [p for p in psutil.Process().children(recursive=True) if p.pid not in skip]


def _rss_mb(processes: list[psutil.Process]) -> float:
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:  # ended between the listing and the reading
            continue
    return total / MB


def worker_figures(lake: Path) -> list[dict]:
    """The latest run's worker processes: batches, time and memory of each (sql/report_workers.sql)."""
    con = connect_lake(str(lake))
    run_id = summary.run_summary(
        con, None, cost_per_call=DEFAULT_COST_PER_CALL, full_scale=DEFAULT_FULL_SCALE
    )["run_id"]
    return fetch_dicts(con, load_sql("report_workers"), {"run_id": run_id})


def batches_span(workers: list[dict]) -> tuple[float, float]:
    """When (Unix seconds) the first batch started and the last one's own work ended, over every worker."""
    first = min(w["first_started_at"] for w in workers)
    return first.timestamp(), max(w["last_ended_at"] for w in workers).timestamp()


def rss_over_batches(rss: list[tuple[float, float]], first_s: float, last_s: float) -> tuple[float, float]:
    """The driver's RSS once a tenth of the batches' time has passed, and just before the last batch ended
    (judging and publishing, after it, read every batch's record: they are the peak, not the growth)."""
    tenth_s = first_s + (last_s - first_s) / 10
    tenth = next(mb for at, mb in rss if at >= tenth_s)
    last = [mb for at, mb in rss if at <= last_s][-1]
    return tenth, last


def write_universe(folder: Path, n: int) -> Path:
    path = folder / f"universe-{n}.txt"
    path.write_text("".join(f"B{i:06d}\n" for i in range(n)))
    return path


def compare(work_dir: Path, address: str, n: int) -> None:
    emulator = EmulatorProcess(latency_ms=100, work_dir=work_dir)
    try:
        universe = write_universe(work_dir, n)
        alone = collect(emulator, universe, work_dir / f"alone-{n}")
        on_ray = collect(emulator, universe, work_dir / f"ray-{n}", "--ray", address)
    finally:
        emulator.stop()
    print(f"{n:,} symbols at 100 ms a request, 2 CPUs:")
    for name, run in (("one process", alone), ("ray", on_ray)):
        print(f"  {name:12} wall {run.wall_s:7.1f} s, {sum(run.requests.values()):,} requests")
    print(f"  ratio ray/one process: {on_ray.wall_s / alone.wall_s:.2f}")


def scale(work_dir: Path, address: str, n: int) -> None:
    emulator = EmulatorProcess(latency_ms=0, work_dir=work_dir)
    try:
        universe = write_universe(work_dir, n)
        lake = work_dir / f"ray-scale-{n}"
        run = collect(emulator, universe, lake, "--ray", address, "--history", "5d")
    finally:
        emulator.stop()
    workers = worker_figures(lake)
    first_s, last_s = batches_span(workers)
    tenth, last = rss_over_batches(run.driver_rss_mb, first_s, last_s)
    peak = max(mb for _, mb in run.driver_rss_mb)
    batches = sum(w["batches"] for w in workers)
    # The driver's last sample (every SAMPLE_S) against the end of the last batch's own work.
    after_s = run.driver_rss_mb[-1][0] - last_s
    print(
        f"{n:,} symbols at 0 ms, --history 5d, Ray: {run.wall_s:.1f} s, {batches:,} batches;"
        f" {after_s:.0f} s of it after the last batch (judging and publishing the run)"
    )
    print(
        f"  driver RSS: {tenth:.0f} MB after a tenth of the batches, {last:.0f} MB after the last"
        f" ({(last - tenth) / tenth:+.1%}); peak {peak:.0f} MB (judging and publishing the run included)"
    )
    said = OVERHEAD_SAID.search(run.said)
    if said is None:
        raise RuntimeError(f"the driver did not tell Ray's overhead: {run.said[-2000:]}")
    median, p95, mean = said.groups()
    print(
        "  Ray's overhead per batch (submission to result, less the batch's own time and its wait for a free"
        f" worker): median {median} ms, p95 {p95} ms, mean {mean} ms"
    )
    print(f"  handshakes: {run.requests.get('cookie', 0)} for {len(workers)} worker processes")
    for w in workers:
        print(
            f"  worker {w['node_id'][:8]} pid {w['pid']}: {w['batches']:,} batches,"
            f" fetch {w['fetch_s']:.1f} s, write {w['write_s']:.1f} s, peak RSS {w['peak_rss_mb']:.0f} MB"
        )
    print(f"  cluster memory (every Ray process, peak of the sum): {run.cluster_peak_mb:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__)
    parser.add_argument("--compare-symbols", type=int, default=10_000)
    parser.add_argument("--scale-symbols", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="etl-bench-ray-") as folder:
        work_dir = Path(folder)
        address = start_cluster(work_dir / "ray")
        compare(work_dir, address, args.compare_symbols)
        scale(work_dir, address, args.scale_symbols)


if __name__ == "__main__":
    main()
