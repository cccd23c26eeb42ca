"""`python -m etl compact`: small files rewritten as one, and the views never show a row twice or miss one."""

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import REPO_DIR, copy_lake, lake_keys, run_cli, run_collect, write_universe
from etl.emulator import Emulator, EmulatorConfig
from etl.lake.paths import open_lake
from etl.summary import connect_lake

SYMBOLS = ["AAPL", "MSFT", "KO", "XOM", "JPM", "DLSTD"]
VIEWS = [
    "runs",
    "batches",
    "failures",
    "quarantine",
    "quotes",
    "bars_all",
    "bars",
    "dividends",
    "splits",
    "bars_adjusted",
]


def views(lake_dir) -> dict[str, list[tuple]]:
    con = connect_lake(lake_dir)
    return {view: sorted(con.execute(f"select * from {view}").fetchall(), key=repr) for view in VIEWS}


def collect(emulator, universe, lake_dir, cache_dir=None) -> None:
    """A run in 3-symbol batches, every bar again (--full-refresh): one more small file a folder."""
    options = ("--batch-size", "3", "--full-refresh", "--min-success", "0.5")
    result = run_collect(emulator, universe, lake_dir, *options, cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    """A lake of three runs: three small files in every folder. Made once; tests compact copies of it."""
    folder = tmp_path_factory.mktemp("compact")
    universe = write_universe(folder / "u.txt", SYMBOLS)
    with Emulator(EmulatorConfig(delisted=frozenset({"DLSTD"}))) as emulator:
        for _ in range(3):
            # Module fixtures run before the per-test cache isolation: this one gets its own cache.
            collect(emulator, universe, folder / "lake", cache_dir=folder / "cache")
    return folder / "lake"


@pytest.fixture
def lake(three_runs, tmp_path):
    """This test's own copy of the three-run lake, under the universe the runs collected."""
    write_universe(tmp_path / "u.txt", SYMBOLS)
    return Path(shutil.copytree(three_runs, tmp_path / "lake", symlinks=True))


@pytest.fixture
def lake_anywhere(three_runs, lake_url):
    """The three-run lake copied to a local folder, or into a bucket of the loopback store."""
    return copy_lake(three_runs, lake_url)


def test_compaction_leaves_every_view_as_it_was_with_one_file_a_folder(lake_anywhere):
    before = views(lake_anywhere)
    result = run_cli("compact", "--lake", lake_anywhere)
    assert result.returncode == 0, result.stderr
    assert "bars/year=2026: 3 files into 1" in result.stdout
    assert views(lake_anywhere) == before
    files = lake_keys(lake_anywhere, "bars/year=2026/")
    compacted = [name for name in files if "/compacted-" in name]
    assert len(compacted) == 1 and len(files) == 4  # the replaced ones are kept a while
    lake = open_lake(lake_anywhere)
    file = pq.ParquetFile(pa.BufferReader(lake.store.get(lake.key(compacted[0]))))
    sizes = [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)]
    assert sizes == [sum(sizes)] and sum(sizes) == len([r for r in before["bars_all"] if r[2].year == 2026])


def test_replaced_files_go_after_keep_minutes_and_nothing_is_compacted_twice(lake_anywhere):
    before = views(lake_anywhere)
    assert run_cli("compact", "--lake", lake_anywhere).returncode == 0
    again = run_cli("compact", "--lake", lake_anywhere, "--keep-minutes", "0")
    assert again.returncode == 0 and "nothing to compact" in again.stdout
    files = lake_keys(lake_anywhere, "bars/year=2026/")
    assert len(files) == 1 and "/compacted-" in files[0]
    runs = lake_keys(lake_anywhere, "runs/")
    assert len(runs) == 4 and sum("/compacted-" in name for name in runs) == 1  # a run's own manifest stays
    assert views(lake_anywhere) == before


def test_the_compacted_file_of_a_compaction_cut_off_is_never_read_and_is_removed(lake):
    before = views(lake)
    folder = lake / "bars" / "year=2026"
    shutil.copy(next(folder.glob("*.parquet")), folder / "compacted-20261125T000000000000Z-dead00.parquet")
    assert views(lake) == before
    assert run_cli("compact", "--lake", str(lake), "--table", "quotes").returncode == 0
    assert not (folder / "compacted-20261125T000000000000Z-dead00.parquet").exists()


def test_readers_never_see_a_row_twice_while_runs_and_compactions_follow_each_other(emulator, lake, tmp_path):
    failures, counts = [], []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                con = connect_lake(lake)
                rows, keys = con.execute(
                    "select count(*), count(distinct (run_id, symbol, date)) from bars_all"
                ).fetchone()
                runs, batches = con.execute("select count(distinct run_id), count(*) from batches").fetchone()
            except Exception as exc:  # any failure a reader would see is what this test counts
                failures.append(repr(exc))
                continue
            counts.append(rows)
            if rows != keys or batches != 2 * runs:
                failures.append((rows, keys, runs, batches))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(2):
            collect(emulator, tmp_path / "u.txt", lake)
            assert run_cli("compact", "--lake", str(lake)).returncode == 0
    finally:
        stop.set()
        reader.join()
    assert failures == [] and len(counts) > 10 and counts == sorted(counts)


def test_compact_on_a_lake_without_runs_is_one_line(tmp_path):
    result = run_cli("compact", "--lake", str(tmp_path / "nothing"))
    assert (
        result.returncode == 1
        and result.stderr.startswith("error: the lake at")
        and result.stderr.count("\n") == 1
    )


def test_the_duckdb_shell_reads_the_compacted_lake_as_the_views_do(lake):
    assert run_cli("compact", "--lake", str(lake)).returncode == 0
    assert (
        run_cli("compact", "--lake", str(lake), "--keep-minutes", "0").returncode == 0
    )  # only compacted files left
    shell = subprocess.run(
        [sys.executable, "-m", "etl", "shell", "--lake", str(lake)],
        cwd=REPO_DIR,
        text=True,
        input=".mode csv\nselect count(*) as n from bars_all;\n",
        capture_output=True,
        timeout=60,
    )
    (rows,) = connect_lake(lake).execute("select count(*) from bars_all").fetchone()
    assert shell.returncode == 0 and shell.stdout.split() == ["n", str(rows)]


def test_a_compaction_that_cannot_write_is_one_line_and_leaves_the_views_as_they_were(lake):
    before = views(lake)
    blocker = lake.parent / f".{lake.name}.staging"  # where a compaction writes before linking into the lake
    shutil.rmtree(blocker, ignore_errors=True)
    blocker.write_text("a file where the compaction's work folder must go")
    try:
        result = run_cli("compact", "--lake", str(lake))
    finally:
        blocker.unlink()
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: writing ") and "the next compact removes what this one left" in line
    assert views(lake) == before and not list(lake.rglob("compacted-*"))
