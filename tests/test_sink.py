"""The lake writer: staging outside the lake, whole files published, partitions, row groups."""

import datetime as dt

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etl.errors import LakeError
from etl.schema import BARS, QUOTES, SCHEMA_VERSION, TABLES
from etl.sink import RunWriter, staging_dir_for

RUN_DATE = dt.date(2026, 11, 24)


def bars_batch(run_id: str, symbol: str, days: list[dt.date]) -> pa.RecordBatch:
    n = len(days)
    return pa.RecordBatch.from_pydict(
        {
            "run_id": [run_id] * n, "symbol": [symbol] * n, "date": days,
            "open": [1.0] * n, "high": [2.0] * n, "low": [0.5] * n, "close": [1.5] * n,
            "adj_close": [1.5] * n, "volume": [100] * n,
        },
        schema=BARS.schema,
    )


def every_day(start: dt.date, n: int) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range(n)]


def test_nothing_is_in_the_lake_until_published(lake_dir):
    writer = RunWriter(lake_dir, "r1", RUN_DATE, row_group_rows=1000)
    writer.write(BARS, bars_batch("r1", "AAPL", every_day(dt.date(2026, 1, 2), 5)))
    assert not lake_dir.exists() or not list(lake_dir.rglob("*.parquet"))
    staged = list(staging_dir_for(lake_dir).rglob("*.parquet"))
    assert staged and all(lake_dir not in path.parents for path in staged)


def test_publish_writes_one_file_per_table_and_partition(lake_dir):
    writer = RunWriter(lake_dir, "r1", RUN_DATE, row_group_rows=1000)
    writer.write(BARS, bars_batch("r1", "AAPL", every_day(dt.date(2025, 12, 30), 5)))
    published = writer.publish()
    relative = sorted(str(p.relative_to(lake_dir)) for p in published)
    assert relative == [
        "bars/year=2025/r1.parquet", "bars/year=2026/r1.parquet", "batches/r1.parquet",
        "failures/r1.parquet", "quarantine/r1.parquet", "quotes/date=2026-11-24/r1.parquet", "runs/r1.parquet",
    ]
    assert not staging_dir_for(lake_dir).joinpath("r1").exists()


def test_runs_manifest_is_published_last(lake_dir):
    writer = RunWriter(lake_dir, "r1", RUN_DATE, row_group_rows=1000)
    published = writer.publish()
    assert published[-1].parent.name == "runs"
    assert list(TABLES)[-1] == "runs"


def test_files_read_back_with_duckdb_and_the_canonical_schema(lake_dir):
    writer = RunWriter(lake_dir, "r1", RUN_DATE, row_group_rows=1000)
    writer.write(BARS, bars_batch("r1", "AAPL", every_day(dt.date(2026, 3, 2), 3)))
    writer.write(BARS, bars_batch("r1", "MSFT", every_day(dt.date(2026, 3, 2), 3)))
    writer.publish()
    glob = str(lake_dir / "bars" / "**" / "*.parquet")
    rows = duckdb.execute(
        f"select symbol, count(*), any_value(year) from read_parquet('{glob}', hive_partitioning=true) group by 1 order by 1"
    ).fetchall()
    assert rows == [("AAPL", 3, 2026), ("MSFT", 3, 2026)]
    file = pq.ParquetFile(lake_dir / "bars" / "year=2026" / "r1.parquet")
    assert file.schema_arrow.remove_metadata() == BARS.schema
    assert file.schema_arrow.metadata[b"etl.schema_version"] == SCHEMA_VERSION.encode()
    assert file.metadata.row_group(0).column(0).compression == "ZSTD"
    assert file.metadata.row_group(0).column(2).statistics.has_min_max


def test_batches_are_buffered_into_row_groups_of_the_configured_size(lake_dir):
    writer = RunWriter(lake_dir, "r1", RUN_DATE, row_group_rows=1000)
    for i in range(25):
        writer.write(BARS, bars_batch("r1", f"S{i}", every_day(dt.date(2026, 1, 1), 100)))
    writer.publish()
    file = pq.ParquetFile(lake_dir / "bars" / "year=2026" / "r1.parquet")
    sizes = [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)]
    assert sizes == [1000, 1000, 500]


def test_empty_tables_still_get_a_typed_file(lake_dir):
    RunWriter(lake_dir, "r1", RUN_DATE, row_group_rows=1000).publish()
    quotes = pq.read_table(lake_dir / "quotes" / "date=2026-11-24" / "r1.parquet")
    assert quotes.num_rows == 0
    assert quotes.schema.remove_metadata() == QUOTES.schema


def test_a_published_file_is_never_replaced(lake_dir):
    RunWriter(lake_dir, "r1", RUN_DATE, row_group_rows=1000).publish()
    before = (lake_dir / "runs" / "r1.parquet").read_bytes()
    with pytest.raises(LakeError, match="never replaced"):
        RunWriter(lake_dir, "r1", RUN_DATE, row_group_rows=1000).publish()
    assert (lake_dir / "runs" / "r1.parquet").read_bytes() == before


def test_discard_leaves_the_lake_untouched(lake_dir):
    RunWriter(lake_dir, "r0", RUN_DATE, row_group_rows=1000).publish()
    files_before = sorted(lake_dir.rglob("*"))
    writer = RunWriter(lake_dir, "r1", RUN_DATE, row_group_rows=1000)
    writer.write(BARS, bars_batch("r1", "AAPL", every_day(dt.date(2026, 1, 2), 5)))
    writer.discard()
    assert sorted(lake_dir.rglob("*")) == files_before
    assert not (staging_dir_for(lake_dir) / "r1").exists()


def test_many_one_row_batches_land_in_order_in_one_row_group(lake_dir):
    writer = RunWriter(lake_dir, "r1", RUN_DATE, row_group_rows=1000)
    days = every_day(dt.date(2026, 1, 1), 200)
    for day in days:
        writer.write(BARS, bars_batch("r1", "AAPL", [day]))
        writer.write(BARS, bars_batch("r1", "AAPL", []))
    writer.publish()
    file = pq.ParquetFile(lake_dir / "bars" / "year=2026" / "r1.parquet")
    assert file.num_row_groups == 1
    assert file.read().column("date").to_pylist() == days
