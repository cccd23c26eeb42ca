"""Shared fixtures: an isolated yfinance cache, the Yahoo emulator on a free port, and the CLI as a subprocess."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_DIR = Path(__file__).resolve().parents[1]
SHARED_DATA_DIR = REPO_DIR.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch) -> Path:
    """yfinance keeps cookie and time-zone caches under the user's cache folder: never the real one in tests."""
    cache_dir = tmp_path_factory.mktemp("xdg-cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_dir))
    return cache_dir


@pytest.fixture
def emulator():
    """The Yahoo emulator with default knobs on a free loopback port."""
    from etl.emulator import Emulator, EmulatorConfig

    with Emulator(EmulatorConfig(delisted=frozenset({"DLSTD"}))) as emu:
        yield emu


@pytest.fixture
def lake_dir(tmp_path) -> Path:
    return tmp_path / "lake"


def write_universe(path: Path, symbols: list[str]) -> Path:
    """A one-symbol-a-line universe file."""
    path.write_text("\n".join(symbols) + "\n")
    return path


def run_cli(*args: str, env: dict | None = None, timeout: float = 300,
            cwd: Path = REPO_DIR) -> subprocess.CompletedProcess:
    """`python -m etl ARGS` as a user would run it, in `cwd` (where it looks for etl.toml), with the isolated cache."""
    # The caller's own ETL_ settings must not leak into a test.
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "etl", *args],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
    )
