"""The lake's two file formats: Arrow IPC for a batch's staged parts, Parquet for the lake's own files."""

import pyarrow as pa

from etl.schema import SCHEMA_VERSION, Table

PART_NAME = "part.arrow"
_PARQUET_MAGIC = b"PAR1"


def file_schema(table: Table) -> pa.Schema:
    """The table's schema as written to every file: the schema version travels in the Parquet metadata."""
    return table.schema.with_metadata({"etl.schema_version": SCHEMA_VERSION, "etl.table": table.name})


def read_part(data: bytes, table: Table) -> pa.Table:
    """A staged part's (Arrow IPC) or a lake file's (Parquet) rows, in the table's schema."""
    if data.startswith(_PARQUET_MAGIC):
        # Imported here: the collector reads and writes only Arrow IPC, and pyarrow.parquet costs it 9 MB of
        # RSS. ParquetFile rather than read_table, which loads pyarrow.dataset (7 MB).
        import pyarrow.parquet as pq

        return _in_schema(pq.ParquetFile(pa.BufferReader(data)).read(), table)
    return _in_schema(pa.ipc.open_file(pa.BufferReader(data)).read_all(), table)


def _in_schema(rows: pa.Table, table: Table) -> pa.Table:
    # A staged part is in the schema already; casting it anyway cost a publish of 10,000 batches seconds.
    return rows if rows.schema.equals(table.schema) else rows.cast(table.schema)
