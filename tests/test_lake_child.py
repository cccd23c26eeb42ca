"""The lake's child processes: an EtlError arrives as the child's own line, anything else as its whole log."""

import logging

import pytest

from etl.errors import LakeError
from etl.lake.child import run_child


def test_a_child_that_fails_with_an_etl_error_is_passed_on_as_its_own_line(tmp_path):
    with pytest.raises(LakeError) as caught:
        run_child("etl.lake.refetch", str(tmp_path / "nothing"), "5")
    assert str(caught.value) == (
        f"the lake at {tmp_path / 'nothing'} holds no completed run yet; "
        "run `make demo` or `make collect` first"
    )


def test_a_child_that_crashes_is_named_with_its_status_and_its_traceback_logged(caplog):
    with caplog.at_level(logging.ERROR, logger="etl.lake.child"), pytest.raises(LakeError) as caught:
        run_child("etl.lake.refetch")  # no arguments: an IndexError, not an EtlError
    assert str(caught.value) == "python -m etl.lake.refetch ended with exit status 1"
    assert "Traceback" in caplog.text and "IndexError" in caplog.text


def test_a_child_that_succeeds_gives_its_output():
    assert run_child("json.tool", "--help").startswith("usage:")
