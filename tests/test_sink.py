"""The lake writer: batches committed whole in staging outside the lake, merged and published, resumable."""

import datetime as dt

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etl import metrics
from etl.errors import ConfigError, LakeError, SchemaError
from etl.lake.paths import staging_dir_for
from etl.lake.publish import publish_run
from etl.lake.staging import RunPlan, RunStaging, open_run
from etl.schema import BARS, QUOTES, SCHEMA_VERSION, TABLES

STARTED_AT = dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)
PLAN = RunPlan(("AAPL", "MSFT"), 10, "1y", "http://127.0.0.1:1")


def bars_batch(run_id: str, symbol: str, days: list[dt.date]) -> pa.RecordBatch:
    n = len(days)
    return pa.RecordBatch.from_pydict(
        {
            "run_id": [run_id] * n,
            "symbol": [symbol] * n,
            "date": days,
            "open": [1.0] * n,
            "high": [2.0] * n,
            "low": [0.5] * n,
            "close": [1.5] * n,
            "adj_close": [1.5] * n,
            "volume": [100] * n,
        },
        schema=BARS.schema,
    )


def every_day(start: dt.date, n: int) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range(n)]


def new_run(lake_dir, run_id="r1", plan=PLAN, **kwargs):
    return open_run(lake_dir, plan, new_run_id=run_id, started_at=STARTED_AT, **kwargs)


def runs_row(run_id: str) -> pa.RecordBatch:
    return metrics.to_runs_record(
        metrics.RunRecord(
            run_id=run_id,
            started_at=STARTED_AT,
            finished_at=STARTED_AT,
            status="succeeded",
            message=None,
            n_symbols=2,
            n_batches=1,
            batch_size=10,
            api_calls=3,
            source_url="http://127.0.0.1:1",
            settings="{}",
        )
    )


def publish(staging, lake_dir, row_group_rows=1000):
    staging.commit_manifest(runs_row(staging.run_id))
    return publish_run(staging, lake_dir, row_group_rows=row_group_rows)


def commit(staging, batch_no, *batches):
    with staging.batch(batch_no) as parts:
        for batch in batches:
            parts.write(BARS, batch)


def test_nothing_is_in_the_lake_until_published(lake_dir):
    staging = new_run(lake_dir)
    commit(staging, 1, bars_batch("r1", "AAPL", every_day(dt.date(2026, 1, 2), 5)))
    assert not lake_dir.exists() or not list(lake_dir.rglob("*.parquet"))
    staged = list(staging_dir_for(lake_dir).rglob("part.*"))
    assert staged and all(lake_dir not in path.parents for path in staged)


def test_publish_writes_one_file_per_table_and_partition(lake_dir):
    staging = new_run(lake_dir)
    commit(staging, 1, bars_batch("r1", "AAPL", every_day(dt.date(2025, 12, 30), 5)))
    published = publish(staging, lake_dir)
    relative = sorted(str(p.relative_to(lake_dir)) for p in published)
    assert relative == [
        "bars/year=2025/r1.parquet",
        "bars/year=2026/r1.parquet",
        "batches/r1.parquet",
        "failures/r1.parquet",
        "quarantine/r1.parquet",
        "quotes/date=2026-11-24/r1.parquet",
        "runs/r1.parquet",
    ]
    assert not staging_dir_for(lake_dir).joinpath("r1").exists()


def test_runs_manifest_is_published_last(lake_dir):
    # A file already where the manifest goes makes its link fail: what was linked before it is in the lake.
    (lake_dir / "runs").mkdir(parents=True)
    (lake_dir / "runs" / "r1.parquet").write_bytes(b"in the way")
    with pytest.raises(LakeError, match=r"runs/r1\.parquet already exists"):
        publish(new_run(lake_dir), lake_dir)
    data_tables = {path.relative_to(lake_dir).parts[0] for path in lake_dir.rglob("r1.parquet")} - {"runs"}
    assert data_tables == set(TABLES) - {"runs"}


def test_files_read_back_with_duckdb_and_the_canonical_schema(lake_dir):
    staging = new_run(lake_dir)
    commit(staging, 1, bars_batch("r1", "AAPL", every_day(dt.date(2026, 3, 2), 3)))
    commit(staging, 2, bars_batch("r1", "MSFT", every_day(dt.date(2026, 3, 2), 3)))
    publish(staging, lake_dir)
    glob = str(lake_dir / "bars" / "**" / "*.parquet")
    rows = duckdb.execute(
        f"select symbol, count(*), any_value(year) from read_parquet('{glob}', hive_partitioning=true)"
        " group by 1 order by 1"
    ).fetchall()
    assert rows == [("AAPL", 3, 2026), ("MSFT", 3, 2026)]
    file = pq.ParquetFile(lake_dir / "bars" / "year=2026" / "r1.parquet")
    assert file.schema_arrow.remove_metadata() == BARS.schema
    assert file.schema_arrow.metadata[b"etl.schema_version"] == SCHEMA_VERSION.encode()
    assert file.metadata.row_group(0).column(0).compression == "ZSTD"
    assert file.metadata.row_group(0).column(2).statistics.has_min_max


def test_a_batch_of_another_schema_is_refused_at_write(lake_dir):
    staging = new_run(lake_dir)
    wrong = bars_batch("r1", "AAPL", every_day(dt.date(2026, 3, 2), 3)).rename_columns(
        [*BARS.schema.names[:-1], "shares"]
    )
    with pytest.raises(
        SchemaError, match=r"^bars rows with columns \[.*'shares'\] do not fit the lake's schema"
    ):
        commit(staging, 1, wrong)
    assert staging.committed() == set()


def test_batches_are_merged_into_row_groups_of_the_configured_size(lake_dir):
    staging = new_run(lake_dir)
    for i in range(25):
        commit(staging, i + 1, bars_batch("r1", f"S{i}", every_day(dt.date(2026, 1, 1), 100)))
    publish(staging, lake_dir)
    file = pq.ParquetFile(lake_dir / "bars" / "year=2026" / "r1.parquet")
    sizes = [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)]
    assert sizes == [1000, 1000, 500]
    assert file.read().column("symbol").to_pylist() == [f"S{i}" for i in range(25) for _ in range(100)]


def test_empty_tables_still_get_a_typed_file(lake_dir):
    publish(new_run(lake_dir), lake_dir)
    quotes = pq.read_table(lake_dir / "quotes" / "date=2026-11-24" / "r1.parquet")
    assert quotes.num_rows == 0
    assert quotes.schema.remove_metadata() == QUOTES.schema


def test_a_published_file_is_never_replaced(lake_dir):
    publish(new_run(lake_dir), lake_dir)
    before = (lake_dir / "runs" / "r1.parquet").read_bytes()
    other = new_run(lake_dir, run_id="r2", plan=RunPlan(("XOM",), 10, "1y", "http://127.0.0.1:1"))
    with pytest.raises(LakeError, match="never replaced"):
        publish(RunStaging(other.folder, "r1", STARTED_AT), lake_dir)
    assert (lake_dir / "runs" / "r1.parquet").read_bytes() == before


def test_a_batch_that_fails_midway_leaves_nothing_and_the_run_resumes_after_the_last_commit(lake_dir):
    staging = new_run(lake_dir)
    commit(staging, 1, bars_batch("r1", "AAPL", every_day(dt.date(2026, 1, 2), 5)))
    with pytest.raises(RuntimeError):
        with staging.batch(2) as parts:
            parts.write(BARS, bars_batch("r1", "MSFT", every_day(dt.date(2026, 1, 2), 5)))
            raise RuntimeError("killed")
    resumed = new_run(lake_dir, run_id="r2")
    assert (resumed.run_id, resumed.started_at, resumed.committed()) == ("r1", STARTED_AT, {1})
    assert not list(staging_dir_for(lake_dir).rglob("*.tmp"))


def test_a_rerun_of_another_plan_discards_the_unfinished_one(lake_dir):
    commit(new_run(lake_dir), 1, bars_batch("r1", "AAPL", every_day(dt.date(2026, 1, 2), 5)))
    other = new_run(lake_dir, run_id="r2", plan=RunPlan(("XOM",), 10, "1y", "http://127.0.0.1:1"))
    assert (other.run_id, other.committed()) == ("r2", set())
    assert [p.name for p in staging_dir_for(lake_dir).iterdir()] == ["r2"]


def test_resume_without_an_unfinished_run_is_refused(lake_dir):
    publish(new_run(lake_dir), lake_dir)
    with pytest.raises(ConfigError, match="--resume: no unfinished run"):
        new_run(lake_dir, run_id="r2", resume=True)


def test_a_publish_cut_off_midway_completes_on_the_next_attempt(lake_dir):
    staging = new_run(lake_dir)
    commit(staging, 1, bars_batch("r1", "AAPL", every_day(dt.date(2026, 1, 2), 5)))
    blocker = lake_dir / "runs" / "r1.parquet"
    blocker.mkdir(parents=True)  # linking the manifest fails, after every data file is in the lake
    with pytest.raises(LakeError):
        publish(staging, lake_dir)
    blocker.rmdir()
    again = new_run(lake_dir, run_id="r2")
    assert again.run_id == "r1"
    publish(again, lake_dir)
    (count,) = duckdb.execute(f"select count(*) from read_parquet('{lake_dir}/bars/**/*.parquet')").fetchone()
    assert count == 5 and (lake_dir / "runs" / "r1.parquet").is_file()
    assert not staging_dir_for(lake_dir).joinpath("r1").exists()


def test_many_one_row_batches_land_in_order_in_one_row_group(lake_dir):
    staging = new_run(lake_dir)
    days = every_day(dt.date(2026, 1, 1), 200)
    for i, day in enumerate(days):
        commit(staging, i + 1, bars_batch("r1", "AAPL", [day]), bars_batch("r1", "AAPL", []))
    publish(staging, lake_dir)
    file = pq.ParquetFile(lake_dir / "bars" / "year=2026" / "r1.parquet")
    assert file.num_row_groups == 1
    assert file.read().column("date").to_pylist() == days
