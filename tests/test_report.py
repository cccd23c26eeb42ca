"""`python -m etl report`: two real runs against the emulator, then the HTML page read as a user would get
it."""

import re
import socket
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from plotly.offline import get_plotlyjs

from conftest import REPO_DIR, run_cli, run_collect, write_universe
from etl.emulator import Emulator, EmulatorConfig
from etl.render import to_cell_text
from etl.report import default_report_path

SYMBOLS = ["AAPL", "MSFT", "NVDA", "BRK-B", "JPM", "XOM", "KO", "PEP", "WMT", "V", "MA", "DLSTD"]
CHART_TITLES = ("Memory per batch (MB)", "Time per batch (s)", "API calls per batch", "Success per batch")
COMPARE_TITLE = "RSS per batch: two runs (MB)"


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    """A lake with two runs of 12 symbols in batches of 4, one of them delisted, under a 1500 MB limit."""
    folder = tmp_path_factory.mktemp("report")
    universe = write_universe(folder / "universe.txt", SYMBOLS)
    with Emulator(EmulatorConfig(delisted=frozenset({"DLSTD"}))) as emulator:
        for _ in range(2):
            options = ("--batch-size", "4", "--memory-limit-mb", "1500", "--min-success", "0.9")
            result = run_collect(emulator, universe, folder / "lake", *options, cache_dir=folder / "cache")
            assert result.returncode == 0, result.stderr
    return folder / "lake"


@pytest.fixture(scope="module")
def runs(lake) -> list[dict]:
    """The runs table, oldest first, read straight from the Parquet files."""
    cursor = duckdb.execute(
        f"select run_id, api_calls, settings from read_parquet('{lake}/runs/*.parquet') order by 1"
    )
    return [dict(zip(("run_id", "api_calls", "settings"), row, strict=True)) for row in cursor.fetchall()]


@pytest.fixture(scope="module")
def default_page(lake) -> tuple[subprocess.CompletedProcess, str]:
    """The report written with every default: the latest run against the one before."""
    result = run_cli("report", "--lake", str(lake))
    assert result.returncode == 0, result.stderr
    return result, Path(result.stdout.strip()).read_text()


def section(page: str, heading: str) -> str:
    """The page from an <h2> heading to the next one."""
    return page.split(f"<h2>{heading}</h2>", 1)[1].split("<h2>", 1)[0]


def test_the_page_is_written_beside_the_lake_and_its_path_printed(lake, default_page):
    result, _ = default_page
    assert Path(result.stdout.strip()) == lake.parent / "lake-report.html"
    assert not list(lake.rglob("*.html")) and not list(lake.parent.glob(".*.tmp"))


def test_the_page_opens_offline(default_page):
    _, page = default_page
    assert page.count(get_plotlyjs()) == 1, "Plotly's JS is inlined exactly once"
    # The bundle itself names map-tile and CDN hosts for chart types the report does not draw.
    ours = page.replace(get_plotlyjs(), "")
    assert "<script src" not in ours and "<link" not in ours and "cdn" not in ours.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", ours)
    assert not re.search(r"https?://", ours)


def test_the_page_has_every_chart_the_run_id_and_the_memory_limit(default_page, runs):
    _, page = default_page
    for title in (*CHART_TITLES, COMPARE_TITLE, "Sector moves"):
        assert title in page
    assert page.count("Plotly.newPlot(") == 6  # the run's four, the comparison's, the market's sectors
    assert f"Run report <code>{runs[-1]['run_id']}</code>" in page
    assert '"memory_limit_mb": 1500.0' in runs[-1]["settings"]
    assert "memory limit 1500 MB" in page


def test_the_summary_table_holds_the_runs_figures(default_page, runs):
    _, page = default_page
    summary = section(page, "Performance summary")
    assert f"<th>run_id</th><td>{runs[-1]['run_id']}</td>" in summary
    assert f"<th>api_calls</th><td>{runs[-1]['api_calls']}</td>" in summary
    assert "<th>n_symbols</th><td>12</td>" in summary and "<th>batches_done</th><td>3</td>" in summary


def test_the_page_shows_each_worker_process_with_its_batches_time_and_memory(default_page, lake, runs):
    _, page = default_page
    header, *rows = section(page, "Worker processes").split("<tr>")[1:]
    for column in ("node_id", "pid", "batches", "symbols", "fetch_s", "write_s", "peak_rss_mb"):
        assert f"<th>{column}</th>" in header
    ((pid, peak_rss),) = duckdb.execute(
        f"select distinct pid, max(rss_mb_after) over () from read_parquet('{lake}/batches/**/*.parquet') "
        f"where run_id = '{runs[-1]['run_id']}'"
    ).fetchall()
    # A run on one machine has one worker: the collect's own process on this host, with all 3 batches.
    assert len(rows) == 1
    assert rows[0].startswith(f"<th>{socket.gethostname()}</th><td>{pid}</td><td>3</td><td>12</td>")
    assert f"<td>{to_cell_text(peak_rss)}</td>" in rows[0]


def test_by_default_the_run_is_compared_with_the_one_before(default_page, runs):
    _, page = default_page
    comparison = section(page, "Comparison with another run")
    assert f"before <code>{runs[0]['run_id']}</code>, after <code>{runs[1]['run_id']}</code>" in comparison
    assert COMPARE_TITLE in comparison and "<th>improvement_pct</th>" in comparison


def test_run_compare_and_out_choose_the_runs_and_the_file(lake, runs, tmp_path):
    out_path = tmp_path / "reports" / "first.html"
    result = run_cli(
        "report",
        "--lake",
        str(lake),
        "--run",
        runs[0]["run_id"],
        "--compare",
        runs[1]["run_id"],
        "--out",
        str(out_path),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out_path)
    page = out_path.read_text()
    assert f"Run report <code>{runs[0]['run_id']}</code>" in page
    assert f"before <code>{runs[1]['run_id']}</code>, after <code>{runs[0]['run_id']}</code>" in page
    assert [p.name for p in out_path.parent.iterdir()] == ["first.html"]


def test_the_first_run_has_nothing_to_compare_with(lake, runs, tmp_path):
    result = run_cli(
        "report", "--lake", str(lake), "--run", runs[0]["run_id"], "--out", str(tmp_path / "r.html")
    )
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "r.html").read_text()
    assert "No earlier run to compare with." in page and COMPARE_TITLE not in page
    assert all(title in page for title in CHART_TITLES)


@pytest.mark.parametrize("option", ["--run", "--compare"])
def test_an_unknown_run_is_a_one_line_error(lake, tmp_path, option):
    result = run_cli(
        "report",
        "--lake",
        str(lake),
        option,
        "20990101T000000000000Z-000000",
        "--out",
        str(tmp_path / "r.html"),
    )
    assert result.returncode == 1  # a LakeError: the lake holds no such run
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
    assert "20990101T000000000000Z-000000" in result.stderr
    assert not (tmp_path / "r.html").exists()


def test_an_empty_lake_is_a_one_line_error(tmp_path):
    result = run_cli("report", "--lake", str(tmp_path / "nothing"))
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("lake_dir", "expected"),
    [
        (Path("data/demo"), Path("data/demo-report.html")),
        (Path("data/lake/"), Path("data/lake-report.html")),
        (Path("."), Path.cwd().parent / f"{Path.cwd().name}-report.html"),
    ],
)
def test_the_default_page_sits_beside_the_lake(lake_dir, expected):
    assert default_report_path(lake_dir) == expected


def test_the_collector_never_loads_plotly():
    code = (
        "import sys, etl.cli, etl.pipeline; print(sorted(m for m in sys.modules if m.startswith('plotly')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_DIR, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
