"""What `python -m etl shell` hands the DuckDB shell: literals it cannot misread, and no path it cannot
carry."""

import pytest

from etl.errors import ConfigError
from etl.lake.paths import open_lake
from etl.shell import check_shell_lake, to_sql_literal


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("data/lake", "'data/lake'"),
        ("it's", "'it''s'"),
        (["a", "b'c"], "['a', 'b''c']"),
        ([], "[]"),
    ],
)
def test_values_become_quoted_literals(value, literal):
    assert to_sql_literal(value) == literal


def test_a_path_the_command_line_cannot_carry_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="cannot be handed to the DuckDB shell"):
        check_shell_lake(open_lake(tmp_path / "new\nline"))


def test_an_ordinary_path_passes(tmp_path):
    """Spaces, quotes and non-ASCII letters: a path the shell's command line carries is let through."""
    for name in ("lake", "my lake", "it's", "lac-été"):
        assert check_shell_lake(open_lake(tmp_path / name)) is None
