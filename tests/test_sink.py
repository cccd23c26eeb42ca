"""The lake writer: batches committed whole in staging outside the lake, published into each Delta table as
one commit, resumable; on a local folder and in a bucket of the loopback S3 store alike."""

import datetime as dt

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, TableFeatures, write_deltalake

from conftest import lake_keys, open_staged_run, publish_staged, staging_keys
from etl.errors import ConfigError, LakeError, SchemaError
from etl.lake.delta import storage_options
from etl.lake.paths import open_lake
from etl.lake.staging import BatchCommitted, RunPlan, RunStaging
from etl.lake.views import connect_lake
from etl.schema import BARS, QUOTES, TABLES

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
    return open_staged_run(lake, plan, run_id, STARTED_AT, **kwargs)


def delta_table(lake, name: str) -> DeltaTable:
    return DeltaTable(lake.table_url(name), storage_options=storage_options())


def has_run(lake, name: str, run_id: str) -> bool:
    return delta_table(lake, name).transaction_version(run_id) is not None


def parquet_files(lake, name: str) -> list[pq.ParquetFile]:
    """The Parquet files of a table's current snapshot."""
    prefix = lake.table_url(name) + "/"
    return [
        pq.ParquetFile(pa.BufferReader(lake.store.get(lake.key(name, uri.removeprefix(prefix)))))
        for uri in delta_table(lake, name).file_uris()
    ]


def table_files(lake, name: str) -> list[str]:
    """The partition folders of a table's current files."""
    prefix = lake.table_url(name) + "/"
    return sorted(uri.removeprefix(prefix).rpartition("/")[0] for uri in delta_table(lake, name).file_uris())


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


def test_publish_commits_each_table_once_under_the_run_id(lake):
    staging = new_run(lake)
    commit(staging, 1, bars_batch("r1", "AAPL", every_day(dt.date(2025, 12, 30), 5)))
    published = publish_staged(staging)
    assert published == [lake.table_url(name) for name in TABLES]
    for name in TABLES:
        table = delta_table(lake, name)
        assert (table.version(), table.transaction_version("r1")) == (0, 1)
        assert table.history()[0]["run_id"] == "r1"
    assert table_files(lake, "bars") == ["year=2025/month=12", "year=2026/month=1"]
    assert staging_keys(lake.url) == []


def test_runs_is_committed_last(lake):
    # A log entry that is not JSON where runs' first commit goes: every table before it has the run's rows.
    put_object(lake, "runs/_delta_log/00000000000000000000.json", b"in the way")
    with pytest.raises(LakeError, match=r"runs"):
        publish_staged(new_run(lake))
    assert all(has_run(lake, name, "r1") for name in TABLES if name != "runs")


def test_files_read_back_with_duckdb_and_the_canonical_schema(lake):
    staging = new_run(lake)
    commit(staging, 1, bars_batch("r1", "AAPL", every_day(dt.date(2026, 3, 2), 3)))
    commit(staging, 2, bars_batch("r1", "MSFT", every_day(dt.date(2026, 3, 2), 3)))
    publish_staged(staging)
    rows = (
        connect_lake(lake)
        .execute("select symbol, count(*), any_value(year), any_value(month) from bars group by 1 order by 1")
        .fetchall()
    )
    assert rows == [("AAPL", 3, 2026, 3), ("MSFT", 3, 2026, 3)]
    (file,) = parquet_files(lake, "bars")
    assert file.schema_arrow.remove_metadata() == BARS.schema  # the partition columns are in the path only
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
    for i in range(50):
        commit(staging, i + 1, bars_batch("r1", f"S{i}", every_day(dt.date(2026, 1, 1), 30)))
    publish_staged(staging)
    (file,) = parquet_files(lake, "bars")
    sizes = [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)]
    assert sizes == [1000, 500]
    # Delta promises no order of rows within a file: every row is there once.
    assert sorted(file.read().column("symbol").to_pylist()) == sorted(
        f"S{i}" for i in range(50) for _ in range(30)
    )


def test_a_table_without_rows_is_a_typed_empty_table(lake):
    publish_staged(new_run(lake))
    quotes = delta_table(lake, "quotes")
    assert quotes.file_uris() == []
    assert pa.schema(quotes.schema().to_arrow()) == QUOTES.lake_schema
    assert connect_lake(lake).execute("select count(*) from quotes").fetchone() == (0,)


def test_a_run_published_again_writes_no_table_twice(lake):
    publish_staged(new_run(lake))
    versions = {name: delta_table(lake, name).version() for name in TABLES}
    other = new_run(lake, run_id="r2", plan=RunPlan(("XOM",), 10, "1y", "http://127.0.0.1:1"))
    commit(other, 1, bars_batch("r1", "XOM", every_day(dt.date(2026, 1, 2), 5)))
    assert publish_staged(other_as_r1(other)) == []
    assert {name: delta_table(lake, name).version() for name in TABLES} == versions
    assert connect_lake(lake).execute("select count(*) from bars").fetchone() == (0,)


def test_a_late_writer_never_puts_older_bars_over_newer(lake):
    """r1 started first but commits after r2: where both have a bar, r2's stays; r1's other bars go in."""
    newer = new_run(lake, run_id="r2")
    commit(newer, 1, priced(bars_batch("r2", "AAPL", every_day(dt.date(2026, 1, 5), 3)), 20.0))
    publish_staged(newer)
    older = new_run(lake, run_id="r1", plan=RunPlan(("MSFT",), 10, "1y", "http://127.0.0.1:1"))
    commit(older, 1, priced(bars_batch("r1", "AAPL", every_day(dt.date(2026, 1, 2), 5)), 10.0))
    publish_staged(older)
    bars = pl.read_delta(lake.table_url("bars"), storage_options=storage_options()).sort("date")
    assert bars.select("run_id", "close").rows() == [("r1", 10.0)] * 3 + [("r2", 20.0)] * 3
    revisions = connect_lake(lake).execute("select run_id, count(*) from bars_all group by 1 order by 1")
    assert revisions.fetchall() == [("r1", 5), ("r2", 3)]


def test_a_later_run_replaces_the_bars_it_fetched_again(lake):
    """The control of the test above: a newer run's bars do replace older ones."""
    older = new_run(lake, run_id="r1")
    commit(older, 1, priced(bars_batch("r1", "AAPL", every_day(dt.date(2026, 1, 2), 5)), 10.0))
    publish_staged(older)
    newer = new_run(lake, run_id="r2", plan=RunPlan(("MSFT",), 10, "1y", "http://127.0.0.1:1"))
    commit(newer, 1, priced(bars_batch("r2", "AAPL", every_day(dt.date(2026, 1, 5), 3)), 20.0))
    publish_staged(newer)
    changes = connect_lake(lake).execute(
        "select date, previous_run_id, run_id, previous_close, close from bar_changes order by date"
    )
    assert changes.fetchall() == [(day, "r1", "r2", 10.0, 20.0) for day in every_day(dt.date(2026, 1, 5), 2)]


def priced(batch: pa.RecordBatch, close: float) -> pa.RecordBatch:
    """The bars at another close (and high, so that they still hold together)."""
    columns = {name: batch.column(name) for name in batch.schema.names}
    n = batch.num_rows
    columns |= {
        "close": pa.array([close] * n),
        "adj_close": pa.array([close] * n),
        "high": pa.array([close] * n),
    }
    return pa.RecordBatch.from_pydict(columns, schema=BARS.schema)


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
    put_object(lake, "runs/_delta_log/00000000000000000000.json", b"in the way")  # after every data table
    with pytest.raises(LakeError):
        publish_staged(staging)
    lake.store.delete([lake.key("runs/_delta_log/00000000000000000000.json")])
    again = new_run(lake, run_id="r2")
    assert again.run_id == "r1"
    assert publish_staged(again) == [lake.table_url("runs")]  # the data tables are not written twice
    assert connect_lake(lake).execute("select count(*) from bars").fetchone() == (5,)
    assert staging_keys(lake.url) == []


def test_a_run_of_another_plan_cut_off_while_publishing_is_finished_by_the_next(lake):
    staging = new_run(lake)
    commit(staging, 1, bars_batch("r1", "AAPL", every_day(dt.date(2026, 1, 2), 5)))
    put_object(lake, "runs/_delta_log/00000000000000000000.json", b"in the way")
    with pytest.raises(LakeError):
        publish_staged(staging)
    lake.store.delete([lake.key("runs/_delta_log/00000000000000000000.json")])
    other = new_run(lake, run_id="r2", plan=RunPlan(("XOM",), 10, "1y", "http://127.0.0.1:1"))
    assert other.run_id == "r2"
    assert connect_lake(lake).execute("select run_id from runs").fetchall() == [("r1",)]
    assert has_run(lake, "bars", "r1") and delta_table(lake, "bars").version() == 0


def test_an_unfinished_run_of_another_plan_that_never_published_is_discarded_unpublished(lake):
    """The control of the test above: without a staged manifest, nothing of the old run reaches the lake."""
    commit(new_run(lake), 1, bars_batch("r1", "AAPL", every_day(dt.date(2026, 1, 2), 5)))
    new_run(lake, run_id="r2", plan=RunPlan(("XOM",), 10, "1y", "http://127.0.0.1:1"))
    assert lake_keys(lake.url) == []


def test_many_one_row_batches_land_in_one_row_group(lake):
    staging = new_run(lake)
    days = every_day(dt.date(2026, 1, 1), 31)  # one month: one partition
    for i, day in enumerate(days):
        commit(staging, i + 1, bars_batch("r1", "AAPL", [day]), bars_batch("r1", "AAPL", []))
    publish_staged(staging)
    (file,) = parquet_files(lake, "bars")
    assert file.num_row_groups == 1
    assert sorted(file.read().column("date").to_pylist()) == days


def test_a_table_another_tool_wrote_with_other_columns_is_refused_in_one_line_and_not_written(lake):
    write_deltalake(
        lake.table_url("dividends"),
        pa.table({"symbol": ["AAPL"], "paid": [0.24]}),
        storage_options=storage_options(),
    )
    staging = new_run(lake)
    commit(staging, 1, bars_batch("r1", "AAPL", every_day(dt.date(2026, 1, 2), 5)))
    with pytest.raises(LakeError) as caught:
        publish_staged(staging)
    message = str(caught.value)
    assert message.startswith(
        f"the Delta table {lake.table_url('dividends')} does not hold this job's dividends"
    )
    assert "ex_date date32" in message and "\n" not in message
    assert delta_table(lake, "dividends").version() == 0
    assert not has_run(lake, "dividends", "r1")


def test_a_table_with_reader_features_the_views_do_not_follow_is_refused(lake):
    """Deletion vectors: a reader of the files alone would show deleted rows."""
    publish_staged(new_run(lake))
    table = delta_table(lake, "splits")
    table.alter.add_feature([TableFeatures.DeletionVectors], allow_protocol_versions_increase=True)
    with pytest.raises(LakeError, match=r"needs reader features \['deletionVectors'\]"):
        connect_lake(lake)
