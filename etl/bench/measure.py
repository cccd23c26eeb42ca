"""Measuring one contender: a fresh child process, its wall time, its peak RSS from the OS, what it wrote."""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from etl.config import REPO_DIR


@dataclass(frozen=True)
class Measurement:
    """One contender's run: the row of the benchmark table."""

    contender: str
    symbols: int
    latency_ms: float
    wall_s: float
    api_calls: int
    peak_rss_mb: float
    rows: int
    missing: int
    exit_code: int


class EmulatorProcess:
    """The emulator in its own process, so its work is not counted in any contender's memory or time."""

    def __init__(self, latency_ms: float, as_of: str | None = None) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._process = subprocess.Popen(
            [sys.executable, "-m", "etl", "emulator", "--port", str(self.port), "--latency-ms", str(latency_ms),
             *(["--as-of", as_of] if as_of else [])],
            cwd=REPO_DIR, stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                self.reset()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the emulator did not start on {self.url}")

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/__emulator/reset", method="POST"), timeout=5).read()

    def total_requests(self) -> int:
        with urllib.request.urlopen(f"{self.url}/__emulator/stats", timeout=5) as answer:
            return json.load(answer)["total"]

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait()


def run_child(command: list[str], env: dict) -> tuple[float, float, int]:
    """Run a command through the launcher; its wall seconds, its own peak RSS in MiB (wait4) and exit code."""
    launcher = Path(__file__).with_name("launcher.py")
    answer = subprocess.run([sys.executable, "-S", str(launcher), *command], cwd=REPO_DIR, env=env,
                            capture_output=True, text=True, check=True)
    wall_s, peak_mb, code = answer.stdout.split()
    return float(wall_s), float(peak_mb), int(code)


def count_output(paths: list[Path], symbols: list[str]) -> tuple[int, int]:
    """Rows in the Parquet files, and how many of the symbols appear in none of them."""
    rows, seen = 0, set()
    for path in paths:
        rows += pq.ParquetFile(path).metadata.num_rows
        seen.update(pq.read_table(path, columns=["symbol"]).column("symbol").unique().to_pylist())
    return rows, len(set(symbols) - seen)


def measure(contender: str, command: list[str], outputs, symbols: list[str], emulator: EmulatorProcess,
            latency_ms: float, env: dict) -> Measurement:
    """Run one contender against a freshly counted emulator and read back what it wrote."""
    emulator.reset()
    wall_s, peak_mb, code = run_child(command, env)
    rows, missing = count_output(outputs(), symbols)
    return Measurement(contender, len(symbols), latency_ms, wall_s, emulator.total_requests(), peak_mb, rows,
                       missing, code)
