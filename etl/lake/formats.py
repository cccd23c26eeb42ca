"""The lake's two file formats: Arrow IPC for a batch's staged parts, Parquet for the lake's own files."""

from pathlib import Path

import pyarrow as pa

from etl.schema import SCHEMA_VERSION, Table

PART_NAME = "part.arrow"


def file_schema(table: Table) -> pa.Schema:
    """The table's schema as written to every file: the schema version travels in the Parquet metadata."""
    return table.schema.with_metadata({"etl.schema_version": SCHEMA_VERSION, "etl.table": table.name})


def read_part(path: Path, table: Table) -> pa.Table:
    """A staged part's (Arrow IPC) or a lake file's (Parquet) rows, in the table's schema."""
    if path.suffix == ".parquet":
        # Imported here: the collector reads and writes only Arrow IPC, and pyarrow.parquet costs it 9 MB of
        # RSS. ParquetFile rather than read_table, which loads pyarrow.dataset (7 MB).
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).read().cast(table.schema)
    with pa.OSFile(str(path)) as source:
        return pa.ipc.open_file(source).read_all().cast(table.schema)
