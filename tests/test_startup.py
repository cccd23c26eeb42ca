"""`python -m etl --help` and each command's --help answer at once: they load none of the heavy libraries."""

import subprocess
import sys

import pytest

from conftest import REPO_DIR
from etl.cli import app
from etl.config import COMPACTABLE
from etl.schema import TABLES

# Only the commands that fetch, write or read the lake need these; together they take most of a second to
# load. Ray only `collect --ray`.
HEAVY = {"yfinance", "pandas", "duckdb", "pyarrow", "curl_cffi", "plotly", "trustme", "ray"}


def run_with_imports(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """`python -X importtime ARGS` from the repo root: its result, and the top-level packages it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args], cwd=REPO_DIR, capture_output=True, text=True
    )
    # Each line ends `| <indent>module.name`; stderr holds the CLI's own output too.
    names = {
        line.rpartition("|")[2].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    return done, names


@pytest.mark.parametrize("command", ["", *sorted(app.commands)])
def test_help_loads_no_heavy_library(command):
    done, names = run_with_imports("-m", "etl", *filter(None, [command]), "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout
    assert names & HEAVY == set()


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("import pyarrow", {"pyarrow"}),
        ("import etl.pipeline", {"yfinance", "pandas", "pyarrow", "curl_cffi"}),
        ("import etl.cluster", {"ray"}),
    ],
)
def test_the_check_sees_a_heavy_import(code, expected):
    done, names = run_with_imports("-c", code)
    assert done.returncode == 0, done.stderr
    assert names & HEAVY >= expected


@pytest.mark.parametrize("code", ["import etl.pipeline, etl.worker, etl.cli", "import etl.emulator"])
def test_a_run_on_one_machine_never_loads_ray(code):
    """The batch function and the single-process flow import no Ray: only etl.cluster does."""
    done, names = run_with_imports("-c", code)
    assert done.returncode == 0, done.stderr
    assert "ray" not in names


def test_compactable_is_every_table_but_runs():
    """etl.config spells the names out, so that `compact --help` needs no pyarrow; they must stay the
    schemas'."""
    assert set(COMPACTABLE) == set(TABLES)
