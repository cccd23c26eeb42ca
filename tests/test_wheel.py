"""The wheel: built from the checkout, installed into a fresh environment outside it, and the job run from
there."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO_DIR, write_universe

# The venv's installer (the Makefile's): it installs the wheel's dependencies from its cache, offline.
UV = Path(sys.executable).parent / "uv"


@pytest.fixture(scope="module")
def wheel_path(tmp_path_factory) -> Path:
    """The wheel as hatchling, the build backend, builds it: from this venv, so nothing is downloaded."""
    out_dir = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "--target", "wheel", "--directory", str(out_dir)],
        cwd=REPO_DIR,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return next(out_dir.glob("market_voices_etl-*.whl"))


@pytest.fixture(scope="module")
def env_dir(wheel_path, tmp_path_factory) -> Path:
    """A fresh virtual environment outside the checkout holding the wheel and the dependencies it declares,
    no extra: what `pip install market-voices-etl` gives a user, with neither the dev tools nor Ray."""
    env_dir = tmp_path_factory.mktemp("fresh") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=120)
    # At this venv's versions, whose wheels are in uv's cache: offline, uv would otherwise take the newest
    # release its cached index knows (a boto3 newer than moto allowed here), whose wheel it never fetched.
    tested = env_dir.parent / "tested.txt"
    freeze = [str(UV), "pip", "freeze", "--exclude-editable", "--python", sys.executable]
    tested.write_text(subprocess.run(freeze, check=True, capture_output=True, text=True, timeout=60).stdout)
    install = [str(UV), "pip", "install", "--offline", "--quiet", "--python", str(env_dir / "bin" / "python")]
    subprocess.run([*install, "-c", str(tested), wheel_path], check=True, capture_output=True, timeout=300)
    return env_dir


def run_installed(env_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(env_dir / "bin" / "etl"), *args], cwd=cwd, capture_output=True, text=True, timeout=180
    )


def test_the_wheel_carries_the_sql_and_the_default_universe_but_not_the_benchmark(wheel_path):
    names = set(zipfile.ZipFile(wheel_path).namelist())
    assert {f"etl/packaged/sql/{path.name}" for path in (REPO_DIR / "sql").glob("*.sql")} <= names
    assert "etl/packaged/universe/default.csv" in names
    assert not [name for name in names if name.startswith(("bench/", "etl/bench/"))]


def test_the_installed_package_is_the_wheel_and_finds_its_universe(env_dir, tmp_path):
    code = (
        "import etl, etl.config as c, etl.universe as u; "
        "print(etl.__file__); print(c.SQL_DIR); print(len(u.load_universe(c.DEFAULT_UNIVERSE_PATH)))"
    )
    done = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    package_file, sql_dir, n_symbols = done.stdout.split()
    # The negative control of this file: from the checkout, both paths would be under REPO_DIR.
    assert Path(package_file).is_relative_to(env_dir) and Path(sql_dir).is_relative_to(env_dir)
    assert int(n_symbols) == 268  # the 11 benchmarks and 257 stocks


def test_the_installed_package_has_its_dependencies_and_no_extra(env_dir, tmp_path):
    code = "import importlib.util as u; print(*(m for m in NAMES if u.find_spec(m)))"
    names = ("yfinance", "deltalake", "duckdb", "obstore", "fsspec", "plotly", "pytest", "ray", "duckdb_cli")
    done = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", f"NAMES = {names!r}; {code}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == ["yfinance", "deltalake", "duckdb", "obstore", "fsspec", "plotly"]


def test_etl_demo_then_etl_query_run_from_the_wheel_outside_the_checkout(env_dir, tmp_path):
    universe = write_universe(tmp_path / "universe.txt", ["AAPL", "MSFT", "BRK-B"])
    demo = run_installed(env_dir, "demo", "--latency-ms", "0", "--universe", str(universe), cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert (
        "run_id" in demo.stdout and (tmp_path / "data" / "demo" / "runs").is_dir()
    )  # the lake is where it ran
    query = run_installed(
        env_dir,
        "query",
        "--lake",
        "data/demo",
        "--format",
        "json",
        "select count(distinct symbol) as n_symbols from bars",
        cwd=tmp_path,
    )
    assert query.returncode == 0, query.stderr
    assert json.loads(query.stdout) == [{"n_symbols": 3}]
    # The brief's SQL ships in the wheel too.
    brief = run_installed(env_dir, "brief", "--lake", "data/demo", "--format", "json", cwd=tmp_path)
    assert brief.returncode == 0, brief.stderr
    assert len(json.loads(brief.stdout)["breadth"]["rows"]) == 1
