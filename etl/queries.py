"""The job's SQL: the text of sql/*.sql, and one statement's rows from DuckDB, its error in one line.

The floor under every reader of the lake (its views, the summary, the brief, the bucket's reader).
"""

import duckdb

from etl.config import SQL_DIR
from etl.errors import LakeError


def load_sql(name: str) -> str:
    """The text of sql/<name>.sql."""
    return (SQL_DIR / f"{name}.sql").read_text()


def fetch_dicts(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> list[dict]:
    """Run one statement and return its rows as dicts."""
    try:
        cursor = con.execute(sql, params or {})
    except duckdb.Error as exc:
        raise LakeError(f"query failed: {exc}".splitlines()[0]) from exc
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
