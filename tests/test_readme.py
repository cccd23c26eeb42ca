"""The README is the front door: its examples run, and it documents every command and option."""

import datetime as dt
import json
import re
import subprocess
import sys

import pytest

from conftest import REPO_DIR, run_cli, run_collect, write_universe
from etl.cli import app
from etl.emulator import Emulator, EmulatorConfig

README = (REPO_DIR / "README.md").read_text()
EXAMPLES = re.findall(r"```python\n(.*?)```", README, re.S)
PYTHON_EXAMPLES = [code for code in EXAMPLES if "s3://" not in code]
S3_EXAMPLES = [code for code in EXAMPLES if "s3://" in code]


# What each example prints from the lake of demo_like_lake: the rows it asks for, not just any output.
PRINTED = {
    "DuckDB": ["('AAPL'", "('MSFT'", "('NVDA'", "('BRK-B'"],  # the top 5 by market cap of 4 symbols: all 4
    "polars:": ["shape: (3, 2)", "date", "close"],  # AAPL's last 3 closes
    "pyarrow.dataset:": ["[{'symbol': 'MSFT', 'price': "],  # MSFT's quotes alone
    "pandas:": ["symbol", "date", "close", "NVDA"],  # NVDA's last 3 bars
    "plain": ["[("],  # the count of bars and of distinct (symbol, date): equal, test_plain_duckdb_... holds
}
# Two runs a trading day apart, the second fetching the first's last 5 bars again, as daily runs do.
RUN_CLOCKS = [
    dt.datetime(2026, 11, 23, 21, 0, tzinfo=dt.UTC),
    dt.datetime(2026, 11, 24, 21, 0, tzinfo=dt.UTC),
]


@pytest.fixture(scope="module")
def demo_like_lake(tmp_path_factory):
    """A small lake made the way `make demo` makes its own, on two days whose revision windows overlap, then
    compacted."""
    folder = tmp_path_factory.mktemp("readme")
    universe = write_universe(folder / "u.txt", ["AAPL", "MSFT", "NVDA", "BRK-B"])
    for clock in RUN_CLOCKS:
        with Emulator(EmulatorConfig(as_of=clock)) as emulator:
            result = run_collect(emulator, universe, folder / "lake", cache_dir=folder / "cache")
        assert result.returncode == 0, result.stderr
    assert run_cli("compact", "--lake", str(folder / "lake")).returncode == 0
    return folder / "lake"


def test_there_are_examples_for_duckdb_polars_pyarrow_and_pandas():
    joined = "\n".join(PYTHON_EXAMPLES)
    assert len(PYTHON_EXAMPLES) >= 5
    assert all(
        name in joined for name in ("import duckdb", "import polars", "import pyarrow.dataset", "to_pandas")
    )
    assert 'spark.read.format("delta")' in README  # documented, not run: Spark needs a JVM


def test_the_plain_duckdb_example_sees_each_bar_once_and_as_many_as_the_views(demo_like_lake):
    (example,) = [code for code in PYTHON_EXAMPLES if code.startswith("# plain DuckDB")]
    code = example.replace('"data/demo', f'"{demo_like_lake}')
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    (printed,) = re.findall(r"\[\((\d+), (\d+)\)\]", result.stdout)
    views = run_cli(
        "query", "--lake", str(demo_like_lake), "--format", "json", "select count(*) as n from bars"
    )
    assert int(printed[0]) == int(printed[1]) == json.loads(views.stdout)[0]["n"]
    revisions = run_cli(
        "query", "--lake", str(demo_like_lake), "--format", "json", "select count(*) as n from bars_all"
    )
    assert json.loads(revisions.stdout)[0]["n"] > int(printed[0])  # the control: the runs did overlap


@pytest.mark.parametrize("example", PYTHON_EXAMPLES, ids=lambda code: code.splitlines()[0][:40])
def test_python_example_runs_against_a_real_lake(demo_like_lake, example):
    code = example.replace('"data/demo', f'"{demo_like_lake}')
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_DIR, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    library = example.split()[1]  # each example opens with "# <library> ..."
    assert all(text in result.stdout for text in PRINTED[library]), (library, result.stdout)


def test_the_s3_example_reads_a_lake_in_the_loopback_store(s3_store, monkeypatch, tmp_path):
    for name, value in s3_store.env().items():
        monkeypatch.setenv(name, value)
    s3_store.new_bucket("market")  # the README's bucket: this test's alone in the process's store
    universe = write_universe(tmp_path / "u.txt", ["AAPL", "MSFT"])
    with Emulator(EmulatorConfig()) as emulator:
        assert run_collect(emulator, universe, "s3://market/lake").returncode == 0
    (example,) = S3_EXAMPLES
    result = subprocess.run(
        [sys.executable, "-c", example], cwd=REPO_DIR, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    counts = result.stdout.split()
    assert len(counts) == 3 and len(set(counts)) == 1 and int(counts[0]) > 400, result.stdout


def test_every_command_and_option_is_documented():
    for name, command in app.commands.items():
        assert f"python -m etl {name}" in README, name
        for param in command.params:
            for flag in param.opts:
                assert flag.startswith("--") is False or flag in README, f"{name} {flag}"


def test_readme_query_example_output_matches_the_demo_lake_shape(demo_like_lake):
    result = run_cli(
        "query",
        "--lake",
        str(demo_like_lake),
        "select symbol, count(*) as bars from bars group by symbol order by symbol",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["symbol", "bars"]
    assert len(result.stdout.splitlines()) == 2 + 4


def test_every_environment_variable_the_readme_names_is_a_real_setting():
    """Each `ETL_<NAME>` of the README is an option's variable of some command (`ETL_YAHOO_URL` once was
    not: it named an option that had gone)."""
    named = set(re.findall(r"\bETL_[A-Z][A-Z_]*[A-Z]\b", (REPO_DIR / "README.md").read_text()))
    real = {
        envvar
        for command in app.commands.values()
        for param in command.params
        for envvar in ([param.envvar] if isinstance(param.envvar, str) else param.envvar or [])
    }
    assert len(named) >= 8 and named <= real, sorted(named - real)
