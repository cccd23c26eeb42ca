"""The universe file: both forms, normalisation for Yahoo, and a one-line error for anything bad."""

import csv
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import SHARED_DATA_DIR
from etl.config import DEFAULT_UNIVERSE_PATH
from etl.errors import UniverseError
from etl.universe import Member, load_members, load_universe

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


BENCHMARKS = [
    "^GSPC",
    "^DJI",
    "^IXIC",
    "^RUT",
    "^VIX",
    "^TNX",
    "CL=F",
    "GC=F",
    "BTC-USD",
    "EURUSD=X",
    "DX-Y.NYB",
]


def test_default_universe_is_the_benchmarks_and_257_stocks_with_class_shares():
    members = load_members(DEFAULT_UNIVERSE_PATH)
    symbols = [m.symbol for m in members]
    assert len(symbols) == len(set(symbols)) == 268
    assert [m.symbol for m in members if m.benchmark] == BENCHMARKS
    stocks = [m for m in members if not m.benchmark]
    assert len(stocks) == 257 and {"BRK-B", "BF-B"} <= {m.symbol for m in stocks}
    assert all(m.name and m.sector and m.industry for m in stocks)
    assert all(m.name and m.sector is None for m in members if m.benchmark)
    assert DEFAULT_UNIVERSE_PATH.read_text().count("\n") == 269


def test_default_universe_is_sp500_members_with_their_gics_sector_and_sub_industry():
    if not CONSTITUENTS.exists():
        pytest.skip(f"S&P 500 constituents not found at {CONSTITUENTS} (../shared is absent)")
    with CONSTITUENTS.open() as f:
        gics = {
            row["Symbol"].replace(".", "-"): (row["GICS Sector"], row["GICS Sub-Industry"])
            for row in csv.DictReader(f)
        }
    stocks = [m for m in load_members(DEFAULT_UNIVERSE_PATH) if not m.benchmark]
    assert {m.symbol: (m.sector, m.industry) for m in stocks} == {m.symbol: gics[m.symbol] for m in stocks}


def test_a_universe_says_what_each_symbol_is_and_one_column_still_works(tmp_path):
    path = universe_file(
        tmp_path,
        "Symbol,Name,Sector,Industry,Benchmark\n"
        'brk.b,"Berkshire Hathaway",Financials,Multi-Sector Holdings,false\n'
        "^GSPC,S&P 500,,,TRUE\n"
        "AAPL,Apple,Information Technology,,\n",
        "u.csv",
    )
    assert load_members(path) == [
        Member("BRK-B", "Berkshire Hathaway", "Financials", "Multi-Sector Holdings", False),
        Member("^GSPC", "S&P 500", None, None, True),
        Member("AAPL", "Apple", "Information Technology", None, False),
    ]
    assert load_members(universe_file(tmp_path, "symbol\nAAPL\n", "one.csv")) == [Member("AAPL")]
    assert load_members(universe_file(tmp_path, "AAPL\n^VIX\n")) == [Member("AAPL"), Member("^VIX")]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("symbol,sector,weight\nAAPL,Tech,1\n", ["line 1", "'weight'"]),
        ("symbol,sector\nAAPL,Information Technology\nMSFT,  \n", ["line 3", "'MSFT'", "empty sector"]),
        ("symbol,sector\nAAPL,Information Technology\nMSFT\n", ["line 3", "'MSFT'", "empty sector"]),
        ("symbol,benchmark\nAAPL,false\n^GSPC,yes\n", ["line 3", "'yes'", "true or false"]),
    ],
)
def test_a_bad_member_is_one_line_naming_file_line_and_value(tmp_path, text, named):
    path = universe_file(tmp_path, text, "u.csv")
    with pytest.raises(UniverseError) as info:
        load_members(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert all(part in message for part in named), message


@given(st.text(max_size=40))
def test_any_line_is_refused_or_becomes_a_plain_ticker(tmp_path_factory, line):
    path = universe_file(tmp_path_factory.mktemp("u"), f"AAPL\n{line}\n".encode("utf-8", "surrogatepass"))
    try:
        symbols = load_universe(path)
    except UniverseError:
        return
    assert all(re.fullmatch(r"[A-Z0-9^][A-Z0-9.\-^=]{0,14}", s) and s != "^" for s in symbols)
