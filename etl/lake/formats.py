"""A batch's staged parts: Arrow IPC in the table's schema (the lake's own files are Delta's)."""

import pyarrow as pa

from etl.schema import SCHEMA_VERSION, Table

PART_NAME = "part.arrow"


def file_schema(table: Table) -> pa.Schema:
    """The table's schema as written to every part: the schema version travels in its metadata."""
    return table.schema.with_metadata({"etl.schema_version": SCHEMA_VERSION, "etl.table": table.name})


def read_part(data: bytes, table: Table) -> pa.Table:
    """A staged part's rows, in the table's schema."""
    rows = pa.ipc.open_file(pa.BufferReader(data)).read_all()
    # A staged part is in the schema already; casting it anyway cost a publish of 10,000 batches seconds.
    return rows if rows.schema.equals(table.schema) else rows.cast(table.schema)
