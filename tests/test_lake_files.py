"""The one atomic write of a local file (the report's page): whole under its name, or nothing left behind."""

import pytest

from etl.lake.files import pending_path, write_atomically


class Interrupted(Exception):
    """A failure inside the block, as a full disk or a bad batch would raise."""


def test_a_file_written_in_the_block_appears_whole_and_no_pending_file_is_left(tmp_path):
    final = tmp_path / "plan.json"
    with write_atomically(final) as pending:
        pending.write_text("x" * 100_000)
        assert not final.exists()
    assert final.read_text() == "x" * 100_000
    assert list(tmp_path.iterdir()) == [final]


def test_a_failure_in_the_block_leaves_neither_the_file_nor_a_pending_one(tmp_path):
    final = tmp_path / "report.html"
    with pytest.raises(Interrupted), write_atomically(final) as pending:
        pending.write_text("half a page")
        raise Interrupted
    assert list(tmp_path.iterdir()) == []


def test_a_pending_file_left_by_a_killed_write_is_replaced_and_a_named_one_is_used(tmp_path):
    final = tmp_path / "report.html"
    pending_path(final).write_text("left by a write that was killed")
    named = tmp_path / ".report.html.123.tmp"
    with write_atomically(final, pending=named) as pending:
        assert pending == named
        pending.write_text("<html>")
    assert final.read_text() == "<html>"
    with write_atomically(final) as pending:
        assert not pending.exists()
        pending.write_text("<html>2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
    assert final.read_text() == "<html>2"
