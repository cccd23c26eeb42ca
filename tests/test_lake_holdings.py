"""What the lake holds, read by DuckDB in a child process: a lake it cannot read is the child's one line."""

import sys

import pytest

from etl.errors import LakeError
from etl.lake.holdings import read_refetch_from
from etl.lake.paths import open_lake


def test_a_new_lake_holds_nothing_and_starts_no_child(tmp_path, monkeypatch):
    # No interpreter to start a child with: a reader that started one would fail here.
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    assert read_refetch_from(open_lake(tmp_path / "lake"), revision_days=5) == {}


def test_the_no_child_check_catches_a_reader_that_starts_one(tmp_path, monkeypatch):
    """The control of the test above: on a lake with a runs table, the child is started, and fails."""
    (tmp_path / "lake" / "runs" / "_delta_log").mkdir(parents=True)
    (tmp_path / "lake" / "runs" / "_delta_log" / "00000000000000000000.json").write_text("{}")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    with pytest.raises(FileNotFoundError):
        read_refetch_from(open_lake(tmp_path / "lake"), revision_days=5)


def test_a_lake_the_reader_cannot_read_is_one_line_naming_the_table(tmp_path):
    lake_dir = tmp_path / "lake"
    for table in ("quotes", "runs"):  # quotes: the first table the reader opens
        (lake_dir / table / "_delta_log").mkdir(parents=True)
        (lake_dir / table / "_delta_log" / "00000000000000000000.json").write_text("not a Delta log")
    with pytest.raises(LakeError) as caught:
        read_refetch_from(open_lake(lake_dir), revision_days=5)
    message = str(caught.value)
    assert message.startswith(f"cannot read what the lake at {lake_dir} holds (")
    assert f"the Delta table {lake_dir}/quotes" in message and message.endswith("; --full-refresh ignores it")
    assert "\n" not in message and "Traceback" not in message
