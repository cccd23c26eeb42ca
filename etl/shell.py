"""The DuckDB shell on a lake: where its binary is, and the SQL that opens the lake's views in it."""

import importlib.util
from pathlib import Path

from etl.errors import ConfigError
from etl.lake.paths import Lake


def find_duckdb_shell() -> Path:
    """The duckdb-cli package's binary, run directly: its Python launcher quits the shell when Ctrl-C stops a
    query."""
    spec = importlib.util.find_spec("duckdb_cli")
    binary = Path(spec.origin).with_name("duckdb") if spec and spec.origin else None
    if binary is None or not binary.is_file():
        raise ConfigError(
            "the DuckDB shell is not installed; pip install 'market-voices-etl[shell]' (`make query` does)"
        )
    return binary


def to_init_sql(variables: dict) -> str:
    """sql/set_lake.sql, sql/set_files.sql, then the lake's views and macros (views.LAKE_SQL); the shell
    binds no parameters, so values go in as literals."""
    from etl.lake.views import LAKE_SQL
    from etl.queries import load_sql  # DuckDB is loaded by the commands that read, never by --help

    literals = {name: to_sql_literal(value) for name, value in variables.items()}
    statements = [load_sql("set_lake"), load_sql("set_files")]
    for name, literal in literals.items():
        statements = [statement.replace(f"${name}", literal) for statement in statements]
    statements += [load_sql(name) for name in LAKE_SQL]
    return "".join(statement.rstrip() + ";\n" for statement in statements)


def check_shell_lake(lake: Lake) -> None:
    """Refuses a lake the shell cannot open: in a bucket, or at a path its command line cannot carry."""
    if not lake.is_local:
        raise ConfigError(
            f"--lake {lake.url}: the shell opens a local lake only; query a lake in a bucket with "
            f"`python -m etl query --lake {lake.url} SQL`"
        )
    path = lake.root_url
    if "\0" in path or "\n" in path:
        raise ConfigError(
            f"--lake {path!r}: a path with a NUL or a newline cannot be handed to the DuckDB shell"
        )


def to_sql_literal(value: str | list) -> str:
    """A string, or a list of strings (or of lists of them), as a DuckDB literal with its quotes doubled."""
    if isinstance(value, list):
        return "[" + ", ".join(map(to_sql_literal, value)) + "]"
    return "'" + value.replace("'", "''") + "'"
