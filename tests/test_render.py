"""The tables, Markdown and JSON the CLI prints, and the one number format the CLI and the report share."""

import json

import pytest

from etl.render import render_rows, render_summary, to_cell_text

ROWS = [{"symbol": "AAPL", "close": 189.254, "bars": 250}, {"symbol": "BRK-B", "close": 0.5, "bars": None}]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (-0.0, "0"),
        (0.0, "0"),
        (1.23456, "1.235"),
        (99.99, "99.99"),
        (100.0, "100.0"),
        (5544.66, "5,544.7"),
        (-1234.5, "-1,234.5"),
        (0.000123, "0.000123"),
        (5000, "5000"),
        (None, ""),
        (True, "True"),
        ("AAPL", "AAPL"),
    ],
)
def test_a_figure_is_formatted_once_for_cli_and_report(value, text):
    assert to_cell_text(value) == text


def test_table_right_aligns_numbers_and_left_aligns_text():
    assert render_rows(ROWS, "table").splitlines() == [
        "symbol  close  bars",
        "------  -----  ----",
        "AAPL    189.3   250",
        "BRK-B     0.5",
    ]


def test_markdown_is_the_same_table_between_pipes():
    assert render_rows(ROWS, "markdown").splitlines() == [
        "| symbol | close | bars |",
        "| ------ | ----- | ---- |",
        "| AAPL   | 189.3 |  250 |",
        "| BRK-B  |   0.5 |      |",
    ]


def test_json_keeps_the_values_unformatted():
    assert json.loads(render_rows(ROWS, "json")) == ROWS


def test_no_rows_says_so_except_in_json():
    assert render_rows([], "table") == "(no rows)" == render_rows([], "markdown")
    assert render_rows([], "json") == "[]"


def test_summary_is_a_metric_value_table_or_one_json_object():
    figures = {"run_id": "r1", "memory_growth_mb": -0.0}
    assert render_summary(figures, "table").splitlines()[2:] == [
        "run_id            r1",
        "memory_growth_mb      0",
    ]
    assert json.loads(render_summary(figures, "json")) == figures
