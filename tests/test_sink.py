"""The lake writer: batches committed whole in staging outside the lake, merged and published, resumable;
on a local folder and in a bucket of the loopback S3 store alike."""

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import lake_keys, publish_staged, staging_keys
from etl.errors import ConfigError, LakeError, SchemaError
from etl.lake.paths import open_lake
from etl.lake.staging import BatchCommitted, RunPlan, RunStaging, open_run
from etl.schema import BARS, QUOTES, SCHEMA_VERSION, TABLES
from etl.summary import connect_lake

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


@pytest.fixture
def lake(lake_url):
    return open_lake(lake_url)


def new_run(lake, run_id="r1", plan=PLAN, **kwargs):
    return open_run(lake, plan, new_run_id=run_id, started_at=STARTED_AT, **kwargs)


def read_file(lake, name: str) -> pq.ParquetFile:
    return pq.ParquetFile(pa.BufferReader(lake.store.get(lake.key(name))))


def put_object(lake, name: str, data: bytes) -> None:
    lake.store.put_new(lake.key(name), data)


def commit(staging, batch_no, *batches):
    with staging.batch(batch_no) as parts:
        for batch in batches:
            parts.write(BARS, batch)


def test_nothing_is_in_the_lake_until_published(lake):
    staging = new_run(lake)
    commit(staging, 1, bars_batch("r1", "AAPL", every_day(dt.date(2026, 1, 2), 5)))
    assert lake_keys(lake.url) == []
    staged = staging_keys(lake.url)
    assert any(key.endswith("/part.arrow") for key in staged)
    assert all(not key.startswith(lake.key("")) for key in staged)


def test_publish_writes_one_file_per_table_and_partition(lake):
    staging = new_run(lake)
    commit(staging, 1, bars_batch("r1", "AAPL", every_day(dt.date(2025, 12, 30), 5)))
    published = publish_staged(staging)
    assert sorted(key.removeprefix(lake.key("")) for key in published) == [
        "bars/year=2025/r1.parquet",
        "bars/year=2026/r1.parquet",
        "batches/r1.parquet",
        "dividends/r1.parquet",
        "failures/r1.parquet",
        "quarantine/r1.parquet",
        "quotes/date=2026-11-24/r1.parquet",
        "runs/r1.parquet",
        "splits/r1.parquet",
    ]
    assert sorted(lake_keys(lake.url)) == sorted(key.removeprefix(lake.key("")) for key in published)
    assert staging_keys(lake.url) == []


def test_runs_manifest_is_published_last(lake):
    # An object where the manifest goes makes its create fail: what was created before it is in the lake.
    put_object(lake, "runs/r1.parquet", b"in the way")
    with pytest.raises(LakeError, match=r"runs/r1\.parquet already exists"):
        publish_staged(new_run(lake))
    data_tables = {name.partition("/")[0] for name in lake_keys(lake.url) if name.endswith("/r1.parquet")}
    assert data_tables == set(TABLES)


def test_files_read_back_with_duckdb_and_the_canonical_schema(lake):
    staging = new_run(lake)
    commit(staging, 1, bars_batch("r1", "AAPL", every_day(dt.date(2026, 3, 2), 3)))
    commit(staging, 2, bars_batch("r1", "MSFT", every_day(dt.date(2026, 3, 2), 3)))
    publish_staged(staging)
    rows = (
        connect_lake(lake)
        .execute("select symbol, count(*), any_value(year) from bars_all group by 1 order by 1")
        .fetchall()
    )
    assert rows == [("AAPL", 3, 2026), ("MSFT", 3, 2026)]
    file = read_file(lake, "bars/year=2026/r1.parquet")
    assert file.schema_arrow.remove_metadata() == BARS.schema
    assert file.schema_arrow.metadata[b"etl.schema_version"] == SCHEMA_VERSION.encode()
    assert file.metadata.row_group(0).column(0).compression == "ZSTD"
    assert file.metadata.row_group(0).column(2).statistics.has_min_max


def test_a_batch_of_another_schema_is_refused_at_write(lake):
    staging = new_run(lake)
    wrong = bars_batch("r1", "AAPL", every_day(dt.date(2026, 3, 2), 3)).rename_columns(
        [*BARS.schema.names[:-1], "shares"]
    )
    with pytest.raises(
        SchemaError, match=r"^bars rows with columns \[.*'shares'\] do not fit the lake's schema"
    ):
        commit(staging, 1, wrong)
    assert staging.committed() == set()


def test_batches_are_merged_into_row_groups_of_the_configured_size(lake):
    staging = new_run(lake)
    for i in range(25):
        commit(staging, i + 1, bars_batch("r1", f"S{i}", every_day(dt.date(2026, 1, 1), 100)))
    publish_staged(staging)
    file = read_file(lake, "bars/year=2026/r1.parquet")
    sizes = [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)]
    assert sizes == [1000, 1000, 500]
    assert file.read().column("symbol").to_pylist() == [f"S{i}" for i in range(25) for _ in range(100)]


def test_empty_tables_still_get_a_typed_file(lake):
    publish_staged(new_run(lake))
    quotes = read_file(lake, "quotes/date=2026-11-24/r1.parquet").read()
    assert quotes.num_rows == 0
    assert quotes.schema.remove_metadata() == QUOTES.schema


def test_a_published_file_is_never_replaced(lake):
    publish_staged(new_run(lake))
    before = lake.store.get(lake.key("runs/r1.parquet"))
    other = new_run(lake, run_id="r2", plan=RunPlan(("XOM",), 10, "1y", "http://127.0.0.1:1"))
    commit(other, 1, bars_batch("r1", "XOM", every_day(dt.date(2026, 1, 2), 5)))
    with pytest.raises(LakeError, match="never replaced"):
        publish_staged(other_as_r1(other))
    assert lake.store.get(lake.key("runs/r1.parquet")) == before


def other_as_r1(other: RunStaging) -> RunStaging:
    """Another run's staged batches published under the id of a run already in the lake."""
    staging = RunStaging(other.lake, "r1", STARTED_AT)
    staging.prefix = other.prefix
    return staging


def test_a_batch_that_fails_midway_leaves_nothing_and_the_run_resumes_after_the_last_commit(lake):
    staging = new_run(lake)
    commit(staging, 1, bars_batch("r1", "AAPL", every_day(dt.date(2026, 1, 2), 5)))
    before = staging_keys(lake.url)
    with pytest.raises(RuntimeError):
        with staging.batch(2) as parts:
            parts.write(BARS, bars_batch("r1", "MSFT", every_day(dt.date(2026, 1, 2), 5)))
            raise RuntimeError("killed")
    assert staging_keys(lake.url) == before
    resumed = new_run(lake, run_id="r2")
    assert (resumed.run_id, resumed.started_at, resumed.committed()) == ("r1", STARTED_AT, {1})


def test_a_batch_written_twice_is_committed_once(lake):
    """A batch retried after its first attempt committed (a doubled task, a lost answer) commits once."""
    staging = new_run(lake)
    commit(staging, 1, bars_batch("r1", "AAPL", every_day(dt.date(2026, 1, 2), 5)))
    parts_before = [key for key in staging_keys(lake.url) if "/parts/" in key]
    with pytest.raises(BatchCommitted, match="batch 1 was committed by another attempt"):
        commit(new_run(lake), 1, bars_batch("r1", "AAPL", every_day(dt.date(2026, 1, 2), 6)))
    assert [key for key in staging_keys(lake.url) if "/parts/" in key] == parts_before  # its parts are gone
    publish_staged(staging)
    assert connect_lake(lake).execute("select count(*) from bars_all").fetchone() == (5,)


def test_a_rerun_of_another_plan_discards_the_unfinished_one(lake):
    commit(new_run(lake), 1, bars_batch("r1", "AAPL", every_day(dt.date(2026, 1, 2), 5)))
    other = new_run(lake, run_id="r2", plan=RunPlan(("XOM",), 10, "1y", "http://127.0.0.1:1"))
    assert (other.run_id, other.committed()) == ("r2", set())
    assert {key.removeprefix(lake.staging_key("")).partition("/")[0] for key in staging_keys(lake.url)} == {
        "r2"
    }


def test_resume_without_an_unfinished_run_is_refused(lake):
    publish_staged(new_run(lake))
    with pytest.raises(ConfigError, match="--resume: no unfinished run"):
        new_run(lake, run_id="r2", resume=True)


def test_a_publish_cut_off_midway_completes_on_the_next_attempt(lake):
    staging = new_run(lake)
    commit(staging, 1, bars_batch("r1", "AAPL", every_day(dt.date(2026, 1, 2), 5)))
    put_object(lake, "runs/r1.parquet", b"in the way")  # the manifest's create fails, after every data file
    with pytest.raises(LakeError):
        publish_staged(staging)
    lake.store.delete([lake.key("runs/r1.parquet")])
    again = new_run(lake, run_id="r2")
    assert again.run_id == "r1"
    publish_staged(again)  # the data files already there are the same bytes: created before, not replaced
    assert connect_lake(lake).execute("select count(*) from bars").fetchone() == (5,)
    assert "runs/r1.parquet" in lake_keys(lake.url) and staging_keys(lake.url) == []


def test_many_one_row_batches_land_in_order_in_one_row_group(lake):
    staging = new_run(lake)
    days = every_day(dt.date(2026, 1, 1), 200)
    for i, day in enumerate(days):
        commit(staging, i + 1, bars_batch("r1", "AAPL", [day]), bars_batch("r1", "AAPL", []))
    publish_staged(staging)
    file = read_file(lake, "bars/year=2026/r1.parquet")
    assert file.num_row_groups == 1
    assert file.read().column("date").to_pylist() == days
