"""What the universe says each symbol is lands in the `symbols` table, and quotes carry Yahoo's quoteType; a
lake written before either reads them as empty and null, and gains them at its next collect."""

import datetime as dt

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from conftest import run_collect
from etl.emulator import Emulator, EmulatorConfig
from etl.lake.views import connect_lake

AS_OF = dt.datetime(2026, 11, 24, 22, 0, tzinfo=dt.UTC)
UNIVERSE = """symbol,name,sector,industry,benchmark
^GSPC,S&P 500,,,true
AAPL,Apple Inc.,Information Technology,"Technology Hardware, Storage & Peripherals",false
XOM,ExxonMobil,Energy,Integrated Oil & Gas,false
"""


def collect(universe_text: str, tmp_path, lake_dir) -> None:
    universe = tmp_path / "universe.csv"
    universe.write_text(universe_text)
    with Emulator(EmulatorConfig(as_of=AS_OF)) as emulator:
        result = run_collect(emulator, universe, lake_dir, "--history", "1mo")
    assert result.returncode == 0, result.stderr


def rows(lake_dir, sql: str) -> list[tuple]:
    return connect_lake(lake_dir).execute(sql).fetchall()


def test_the_universe_lands_in_symbols_and_a_row_changes_only_when_the_universe_does(tmp_path, lake_dir):
    collect(UNIVERSE, tmp_path, lake_dir)
    first = rows(lake_dir, "select max(run_id) from runs")[0][0]
    assert rows(
        lake_dir, "select symbol, name, sector, industry, benchmark, run_id from symbols order by 1"
    ) == [
        (
            "AAPL",
            "Apple Inc.",
            "Information Technology",
            "Technology Hardware, Storage & Peripherals",
            False,
            first,
        ),
        ("XOM", "ExxonMobil", "Energy", "Integrated Oil & Gas", False, first),
        ("^GSPC", "S&P 500", None, None, True, first),
    ]
    collect(UNIVERSE.replace("Integrated Oil & Gas", "Oil & Gas Refining & Marketing"), tmp_path, lake_dir)
    second = rows(lake_dir, "select max(run_id) from runs")[0][0]
    # Told apart from "every run rewrites every row": only XOM's row changed, so only it names the second run.
    assert second != first
    assert rows(lake_dir, "select symbol, industry, run_id from symbols order by 1") == [
        ("AAPL", "Technology Hardware, Storage & Peripherals", first),
        ("XOM", "Oil & Gas Refining & Marketing", second),
        ("^GSPC", None, first),
    ]


def test_quotes_carry_yahoos_quote_type_and_a_lake_from_before_reads_it_as_null_then_gains_it(
    tmp_path, lake_dir
):
    collect(UNIVERSE, tmp_path, lake_dir)
    assert dict(rows(lake_dir, "select symbol, quote_type from quotes")) == {
        "AAPL": "EQUITY",
        "XOM": "EQUITY",
        "^GSPC": "INDEX",
    }
    as_before_symbols_and_quote_type(lake_dir)
    assert "quote_type" not in pa.schema(DeltaTable(str(lake_dir / "quotes")).schema().to_arrow()).names
    assert rows(lake_dir, "select count(*), count(quote_type) from quotes") == [(3, 0)]
    assert rows(lake_dir, "select count(*) from symbols") == [(0,)]

    collect(UNIVERSE, tmp_path, lake_dir)
    assert "quote_type" in pa.schema(DeltaTable(str(lake_dir / "quotes")).schema().to_arrow()).names
    # The old run's quotes read it as null, the new run's carry it; the symbols table is back.
    assert rows(lake_dir, "select count(*), count(quote_type) from quotes") == [(6, 3)]
    assert rows(lake_dir, "select count(*) from symbols") == [(3,)]


def as_before_symbols_and_quote_type(lake_dir) -> None:
    """The lake as the release before wrote it: quotes without quote_type, and no symbols table."""
    quotes = DeltaTable(str(lake_dir / "quotes")).to_pyarrow_table().drop_columns(["quote_type"])
    write_deltalake(
        str(lake_dir / "quotes"), quotes, mode="overwrite", schema_mode="overwrite", partition_by=["date"]
    )
    for path in sorted((lake_dir / "symbols").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    (lake_dir / "symbols").rmdir()
