"""`etl brief`: the market brief of a trading day as a table, Markdown, or the JSON contract of
docs/brief.schema.json; a day that is no trading day is one line naming the nearest; the report's market
section."""

import copy
import datetime as dt
import json

import jsonschema
import pytest

from conftest import REPO_DIR, run_cli, run_collect
from etl.emulator import Emulator, EmulatorConfig
from etl.lake.views import connect_lake
from etl.market_brief import BRIEF_VERSION, SECTIONS, brief_day, market_brief
from etl.render import render_brief

SCHEMA = json.loads((REPO_DIR / "docs" / "brief.schema.json").read_text())
# A Tuesday evening in New York: Monday 2026-11-23 and Tuesday are sessions, the weekend before is not.
AS_OF = dt.datetime(2026, 11, 24, 23, 0, tzinfo=dt.UTC)
UNIVERSE = """symbol,name,sector,industry,benchmark
^GSPC,S&P 500,,,true
BTC-USD,Bitcoin USD,,,true
AAPL,Apple Inc.,Information Technology,"Technology Hardware, Storage & Peripherals",false
MSFT,Microsoft,Information Technology,Systems Software,false
XOM,ExxonMobil,Energy,Integrated Oil & Gas,false
CVX,Chevron Corporation,Energy,Integrated Oil & Gas,false
JPM,JPMorgan Chase,Financials,Diversified Banks,false
"""


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    folder = tmp_path_factory.mktemp("brief")
    universe = folder / "universe.csv"
    universe.write_text(UNIVERSE)
    with Emulator(EmulatorConfig(as_of=AS_OF)) as emulator:
        result = run_collect(
            emulator, universe, folder / "lake", "--history", "1y", cache_dir=folder / "cache"
        )
    assert result.returncode == 0, result.stderr
    return folder / "lake"


def brief(lake, *args: str):
    return run_cli("brief", "--lake", str(lake), *args)


@pytest.fixture(scope="module")
def json_brief(lake) -> dict:
    result = brief(lake, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_json_brief_is_the_documented_contract_of_the_latest_trading_day(json_brief):
    document = json_brief
    jsonschema.validate(document, SCHEMA)
    assert list(document) == ["brief_version", "day", *(s.name for s in SECTIONS)]
    assert document["brief_version"] == BRIEF_VERSION and document["day"] == "2026-11-24"
    assert {row["symbol"] for row in document["benchmarks"]["rows"]} == {"^GSPC", "BTC-USD"}
    assert {row["sector"] for row in document["sector_moves"]["rows"]} == {
        "Information Technology",
        "Energy",
        "Financials",
    }
    breadth = document["breadth"]["rows"][0]
    assert breadth["advancers"] + breadth["decliners"] + breadth["unchanged"] == 5  # the stocks only


def test_the_schema_refuses_a_number_sent_as_text_and_a_missing_section(json_brief):
    """The negative control of the contract test: the schema is strict enough to catch a broken brief."""
    document = json_brief
    as_text = copy.deepcopy(document)
    as_text["benchmarks"]["rows"][0]["change_pct"] = str(as_text["benchmarks"]["rows"][0]["change_pct"])
    without = {k: v for k, v in document.items() if k != "gaps"}
    for broken in (as_text, without):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, SCHEMA)


@pytest.mark.parametrize(("output_format", "heading"), [("table", "{}"), ("markdown", "## {}")])
def test_the_table_and_markdown_briefs_have_every_section_in_the_scripts_order(lake, output_format, heading):
    # In this process: the command's own path is the JSON test's and the --out test's.
    day = dt.date(2026, 11, 23)
    text = render_brief(
        market_brief(connect_lake(lake), brief_day(connect_lake(lake), day), 5), output_format
    )
    lines = text.splitlines()
    assert lines[0].lstrip("# ") == "Market on 2026-11-23"
    positions = [lines.index(heading.format(section.title)) for section in SECTIONS]
    assert positions == sorted(positions)


def test_out_writes_the_brief_whole_and_prints_where(lake, tmp_path):
    out = tmp_path / "briefs" / "brief.md"
    result = brief(lake, "--format", "markdown", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert out.read_text().startswith("# Market on 2026-11-24\n")
    assert [p.name for p in out.parent.iterdir()] == ["brief.md"]


@pytest.mark.parametrize(
    ("day", "nearest"),
    [("2026-11-22", "2026-11-23"), ("2026-11-21", "2026-11-20"), ("2027-01-04", "2026-11-24")],
)
def test_a_day_no_stock_traded_is_one_line_naming_the_nearest_trading_day(lake, day, nearest):
    """A Sunday and a Saturday (BTC-USD has bars on both), and a day after the lake's last."""
    result = brief(lake, "--date", day)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and f"--date {day}" in result.stderr
    assert f"nearest trading day in the lake is {nearest}" in result.stderr


def test_a_date_that_is_no_date_and_a_lake_with_no_run_are_one_line(lake, tmp_path):
    result = brief(lake, "--date", "2026-11-31")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "'2026-11-31'" in result.stderr
    empty = run_cli("brief", "--lake", str(tmp_path / "nothing"))
    assert empty.returncode != 0 and empty.stderr.count("\n") == 1 and "nothing" in empty.stderr


def test_the_report_shows_the_market_of_the_latest_trading_day(lake, tmp_path):
    out = tmp_path / "report.html"
    result = run_cli("report", "--lake", str(lake), "--out", str(out))
    assert result.returncode == 0, result.stderr
    page = out.read_text()
    assert '<h2 id="market">Market on 2026-11-24</h2>' in page
    market = page[page.index('<h2 id="market">') :]
    assert "Sector moves" in market and "<th>^GSPC</th>" in market and "<h3>Top movers</h3>" in market
