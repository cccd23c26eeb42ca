"""Measuring one contender: a fresh child process, its wall time, its peak RSS from the OS, what it wrote."""

import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import sysconfig
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

# The benchmark runs from a checkout only (the wheel leaves it out): contenders start at its top.
REPO_DIR = Path(__file__).resolve().parents[1]

# Variables that would take a peer's route from HTTPS_PROXY and CURL_CA_BUNDLE: libcurl reads `https_proxy`
# before `HTTPS_PROXY`, NO_PROXY could send Yahoo's hosts around the proxy, and curl_cffi reads
# REQUESTS_CA_BUNDLE before CURL_CA_BUNDLE.
_SHADOWING_ROUTE = ("https_proxy", "NO_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE")


@dataclass(frozen=True)
class Measurement:
    """One contender's run: the row of the benchmark table, and what the emulator saw of its TLS."""

    contender: str
    symbols: int
    latency_ms: float
    wall_s: float
    api_calls: int
    peak_rss_mb: float
    rows: int
    missing: int
    exit_code: int
    launched_at: dt.datetime
    tls_connections: int
    blocked_connections: int
    fingerprints: dict[str, int]


class EmulatorProcess:
    """The emulator in its own process, so its work is not counted in any contender's memory or time.

    Contenders reach it as an HTTPS proxy (`proxy_url`) and trust its CA (`ca_path`); the same port
    answers the control paths /__emulator/stats and /__emulator/reset over plain HTTP.
    """

    def __init__(self, latency_ms: float, work_dir: Path, as_of: str | None = None) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.proxy_url = f"http://127.0.0.1:{self.port}"
        self.ca_path = work_dir / f"emulator-{self.port}-ca.pem"
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "etl",
                "emulator",
                "--port",
                str(self.port),
                "--latency-ms",
                str(latency_ms),
                "--ca-path",
                str(self.ca_path),
                *(["--as-of", as_of] if as_of else []),
            ],
            cwd=REPO_DIR,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                self.reset()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the emulator did not start on {self.proxy_url}")

    def reset(self) -> None:
        urllib.request.urlopen(
            urllib.request.Request(f"{self.proxy_url}/__emulator/reset", method="POST"), timeout=5
        ).read()

    def _stats(self) -> dict:
        with urllib.request.urlopen(f"{self.proxy_url}/__emulator/stats", timeout=5) as answer:
            return json.load(answer)

    def total_requests(self) -> int:
        return self._stats()["total"]

    def counts(self) -> dict[str, int]:
        """Requests by endpoint: cookie, getcrumb, chart, quote, ..."""
        return self._stats()["by_endpoint"]

    @property
    def pid(self) -> int:
        return self._process.pid

    def tls_stats(self) -> dict:
        """Tunnels opened, how many were refused for their ClientHello, and connections by fingerprint."""
        return self._stats()["tls"]

    def to_routed_env(self, env: dict) -> dict:
        """`env` for a client that takes its route from the environment, as yfinance's default session
        does."""
        kept = {name: value for name, value in env.items() if name not in _SHADOWING_ROUTE}
        return kept | {"HTTPS_PROXY": self.proxy_url, "CURL_CA_BUNDLE": str(self.ca_path)}

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait()


def drop_cached_libraries() -> None:
    """Drop the page cache's copy of the interpreter's and the packages' shared libraries, so that each
    contender maps them as the loader reads them.

    Peak RSS counts a library's resident pages, and on Linux 6.x a file last read whole (by pip, a
    checksum, a backup) is cached in large folios that a mapping takes in whole: the same run then
    measures up to 40 MB more, depending on what read the files before, not on the contender.
    """
    paths = sysconfig.get_paths()
    libraries = [path for name in ("purelib", "platlib") for path in Path(paths[name]).rglob("*.so*")]
    libraries += Path(paths["platstdlib"], "lib-dynload").glob("*.so")
    libraries += Path(sysconfig.get_config_var("LIBDIR") or sys.prefix).glob("libpython*.so*")
    for path in set(libraries):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def run_child(command: list[str], env: dict) -> tuple[float, float, int, dt.datetime]:
    """Run a command through the launcher: its wall seconds, its own peak RSS in MiB (its high-water mark, not
    wait4's, which counts the children it waited for), exit code, start time."""
    launcher = Path(__file__).with_name("launcher.py")
    answer = subprocess.run(
        [sys.executable, "-S", str(launcher), *command],
        cwd=REPO_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    wall_s, peak_mb, code, launched_epoch_s = answer.stdout.split()
    return (
        float(wall_s),
        float(peak_mb),
        int(code),
        dt.datetime.fromtimestamp(float(launched_epoch_s), dt.UTC),
    )


def median_wall_s(command: list[str], env: dict, repeats: int) -> float:
    """The median wall seconds of `repeats` fresh runs of a command."""
    return statistics.median(run_child(command, env)[0] for _ in range(repeats))


def count_output(paths: list[Path], symbols: list[str]) -> tuple[int, int]:
    """Rows in a contender's Parquet files (one it did not write has none), and how many of the symbols appear
    in none of them."""
    rows, seen = 0, set()
    for path in filter(Path.exists, paths):
        rows += pq.ParquetFile(path).metadata.num_rows
        seen.update(pq.read_table(path, columns=["symbol"]).column("symbol").unique().to_pylist())
    return rows, len(set(symbols) - seen)


def measure(
    contender: str,
    command: list[str],
    count: Callable[[], tuple[int, int]],
    symbols: list[str],
    emulator: EmulatorProcess,
    latency_ms: float,
    env: dict,
) -> Measurement:
    """Run one contender against a freshly counted emulator and read back what it wrote: `count` gives its
    rows and how many of the symbols it missed."""
    emulator.reset()
    drop_cached_libraries()
    wall_s, peak_mb, code, launched_at = run_child(command, env)
    rows, missing = count()
    tls = emulator.tls_stats()
    return Measurement(
        contender,
        len(symbols),
        latency_ms,
        wall_s,
        emulator.total_requests(),
        peak_mb,
        rows,
        missing,
        code,
        launched_at,
        tls["connections"],
        tls["blocked_connections"],
        tls["fingerprints"],
    )
