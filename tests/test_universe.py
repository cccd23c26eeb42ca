"""The universe file: both forms, normalisation for Yahoo, and a one-line error for anything bad."""

import csv
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import SHARED_DATA_DIR
from etl.config import DEFAULT_UNIVERSE_PATH
from etl.errors import UniverseError
from etl.universe import load_universe

CONSTITUENTS = SHARED_DATA_DIR / "sp500-companies" / "constituents.csv"


def universe_file(tmp_path, text: str | bytes, name: str = "u.txt"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


@pytest.mark.parametrize(
    ("text", "symbols"),
    [
        ("AAPL\nmsft\n", ["AAPL", "MSFT"]),
        ("# header comment\n\n  aapl  \nMSFT # trailing\n", ["AAPL", "MSFT"]),
        ("BRK.B\nBF.B\nhei.a\n", ["BRK-B", "BF-B", "HEI-A"]),
        ("VOD.L\nRY.TO\n7203.T\n^GSPC\nEURUSD=X\n", ["VOD.L", "RY.TO", "7203.T", "^GSPC", "EURUSD=X"]),
        ("AAPL\nMSFT\naapl\nBRK.B\nBRK-B\n", ["AAPL", "MSFT", "BRK-B"]),
        ('symbol,name\nAAPL,Apple\n"BRK.B","Berkshire, Hathaway"\n', ["AAPL", "BRK-B"]),
        ("name,Symbol\nApple,aapl\n# skipped\nMicrosoft,MSFT\n", ["AAPL", "MSFT"]),
    ],
)
def test_symbols_are_read_and_normalised(tmp_path, text, symbols):
    assert load_universe(universe_file(tmp_path, text)) == symbols


@pytest.mark.parametrize(
    "bad",
    [
        "AA PL",
        "AAPL;DROP",
        "A/B",
        "A..B",
        "A?B",
        "A%20",
        "'AAPL'",
        '"X"',
        "A\rB",
        "АAPL",
        "X" * 16,
        "select * from bars",
        "AAPL/../../admin",
        ".",
        "-",
        "^",
        ".A",
        "=X",
    ],
)
def test_a_bad_symbol_is_one_line_naming_file_line_and_value(tmp_path, bad):
    path = universe_file(tmp_path, f"AAPL\n{bad}\n")
    with pytest.raises(UniverseError) as info:
        load_universe(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and "line 2" in message and repr(bad.split("#")[0]) in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is empty"),
        (b"  \n\n", "is empty"),
        (b"# only\n\n# comments\n", "lists no symbols"),
        (b"AAPL\x00\x01", "binary"),
        (b"\xff\xfeA\x00", "binary"),
        (b"\xe9t\xe9\n", "not UTF-8"),
        (b"ticker,name\nAAPL,Apple\n", "is not a ticker symbol"),
    ],
)
def test_unusable_files_are_one_line_errors(tmp_path, content, expected):
    with pytest.raises(UniverseError, match=expected) as info:
        load_universe(universe_file(tmp_path, content))
    assert "\n" not in str(info.value)


def test_missing_file_and_folder_are_named(tmp_path):
    with pytest.raises(UniverseError, match="does not exist"):
        load_universe(tmp_path / "nope.csv")
    with pytest.raises(UniverseError, match="is a folder"):
        load_universe(tmp_path)


def test_default_universe_has_257_unique_valid_symbols_with_class_shares():
    symbols = load_universe(DEFAULT_UNIVERSE_PATH)
    assert len(symbols) == len(set(symbols)) == 257
    assert {"BRK-B", "BF-B"} <= set(symbols)
    assert DEFAULT_UNIVERSE_PATH.read_text().count("\n") == 258


def test_default_universe_is_all_sp500_members():
    if not CONSTITUENTS.exists():
        pytest.skip(f"S&P 500 constituents not found at {CONSTITUENTS} (../shared is absent)")
    with CONSTITUENTS.open() as f:
        members = {row["Symbol"].replace(".", "-") for row in csv.DictReader(f)}
    assert set(load_universe(DEFAULT_UNIVERSE_PATH)) <= members


@given(st.text(max_size=40))
def test_any_line_is_refused_or_becomes_a_plain_ticker(tmp_path_factory, line):
    path = universe_file(tmp_path_factory.mktemp("u"), f"AAPL\n{line}\n".encode("utf-8", "surrogatepass"))
    try:
        symbols = load_universe(path)
    except UniverseError:
        return
    assert all(re.fullmatch(r"[A-Z0-9^][A-Z0-9.\-^=]{0,14}", s) and s != "^" for s in symbols)
