"""The market brief's macros (sql/brief.sql) on a lake of one collect through the emulator, each checked
against the same facts computed here in polars from the lake's views (bars_adjusted, symbols and quotes, as
Arrow).

The day is one on which a member splits and others go ex-dividend: a macro on closes as traded would report
the split as a crash and each dividend as a drop, and the negative controls show that the comparisons here
would catch it.
"""

import csv
import dataclasses
import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from test_splits import evening
from test_views import publish_rows, shell

from conftest import run_collect
from etl import metrics
from etl.config import DEFAULT_UNIVERSE_PATH
from etl.emulator import Emulator, EmulatorConfig, market
from etl.emulator.actions import corporate_actions
from etl.lake.paths import open_lake
from etl.lake.views import connect_lake
from etl.queries import fetch_dicts
from etl.schema import BARS, QUOTES
from etl.universe import COLUMNS, Member, load_members

DAY = dt.date(2026, 8, 3)  # with the emulator's seed, PCG splits 2:1 and MSFT, CAT and WELL go ex-dividend
EVE = market.previous_session(DAY, 1)
LATE_EVENING = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(1), dt.UTC)  # 9 pm in New York
SATURDAY = dt.date(2026, 8, 1)
SECTORS = ("Utilities", "Information Technology", "Industrials", "Real Estate")
PER_SECTOR = 7
CURRENCY = "EURUSD=X"
BENCHMARKS = ("^GSPC", CURRENCY)
# What the day's quotes say each symbol is (publish_day_quotes): EQUITY but for these. AMD's says ETF, so on
# the day it is no equity, though its sector makes it one the day before; DUK's is from before quote_type.
QUOTE_TYPES = {"^GSPC": "INDEX", CURRENCY: "CURRENCY", "AMD": "ETF", "DUK": None}
NO_CAP = "NEE"  # quoted without a market cap: out of its sector's weighting
ALL = 100  # a top n that is every symbol
# The macros, with the arguments each takes after the day.
MACROS = {
    "benchmarks": (),
    "sector_moves": (),
    "breadth": (),
    "unusual_volume": (ALL,),
    "gaps": (ALL,),
    "corporate_actions": (),
}


def members() -> list[Member]:
    """The default universe's benchmarks named above and the first PER_SECTOR stocks of each of SECTORS."""
    default = load_members(DEFAULT_UNIVERSE_PATH)
    stocks = [
        member for sector in SECTORS for member in [m for m in default if m.sector == sector][:PER_SECTOR]
    ]
    return [m for m in default if m.symbol in BENCHMARKS] + stocks


def write_members(path: Path, rows: list[Member]) -> Path:
    """A universe CSV with every column the universe file may have."""
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, COLUMNS)
        writer.writeheader()
        writer.writerows(dataclasses.asdict(m) | {"benchmark": str(m.benchmark).lower()} for m in rows)
    return path


def publish_day_quotes(lake_dir: Path) -> None:
    """A run late on the evening of the day in New York, after the collect: its quotes, dated the day after
    (a quote's date is the UTC day its run started, and 9 pm EDT is 1 am UTC), typed as QUOTE_TYPES says
    and NO_CAP's without a market cap; and CURRENCY's bars with no volume, as Yahoo sends a currency's. Its
    run id sorts after the collect's, so that its bars replace the collect's."""
    run_id = metrics.new_run_id(dt.datetime.now(dt.UTC))
    con = connect_lake(lake_dir)
    quotes = con.sql(f"select {', '.join(QUOTES.schema.names)} from quotes").to_arrow_table().to_pylist()
    for row in quotes:
        row |= {"run_id": run_id, "quote_type": QUOTE_TYPES.get(row["symbol"], "EQUITY")}
        row["market_cap"] = None if row["symbol"] == NO_CAP else row["market_cap"]
    currency_bars = con.sql(
        f"select {', '.join(BARS.schema.names)} from bars where symbol = $symbol", params={"symbol": CURRENCY}
    )
    bars = [row | {"run_id": run_id, "volume": 0} for row in currency_bars.to_arrow_table().to_pylist()]
    publish_rows(open_lake(lake_dir), run_id, {QUOTES: quotes, BARS: bars}, started_at=LATE_EVENING)


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    """A year of the members' bars collected on the evening of DAY, and that evening's quotes."""
    folder = tmp_path_factory.mktemp("brief")
    universe = write_members(folder / "universe.csv", members())
    with Emulator(EmulatorConfig(as_of=evening(DAY))) as emulator:
        result = run_collect(
            emulator, universe, folder / "lake", "--history", "1y", cache_dir=folder / "cache"
        )
    assert result.returncode == 0, result.stderr
    publish_day_quotes(folder / "lake")
    return folder / "lake"


@pytest.fixture(scope="module")
def con(lake):
    """One connection for the module's queries: the lake does not change once the fixture has written it."""
    connection = connect_lake(lake)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def views(con) -> dict[str, pl.DataFrame]:
    """What the facts are computed from here: the adjusted bars, the universe's rows and the quotes."""
    names = ("bars_adjusted", "symbols", "quotes")
    return {name: pl.from_arrow(con.sql(f"from {name}").to_arrow_table()) for name in names}


@pytest.fixture(scope="module")
def days(views) -> dict[str, dt.date]:
    """The days the macros are checked on: DAY; the day before, which no quote is dated on or before; and the
    days of a stock's 20th and 21st bars (each side of the first with 20 bars before it), 49th and 50th, and
    199th and 200th (each side of a moving average's first)."""
    sessions = views["bars_adjusted"].filter(pl.col("symbol") == "AAPL")["date"].sort().to_list()
    bars = {f"bar {n}": sessions[n - 1] for n in (20, 21, 49, 50, 199, 200)}
    return {"day": DAY, "eve": EVE} | bars


# --- The same facts in polars -------------------------------------------------------------------------------


def as_traded(bars: pl.DataFrame) -> pl.DataFrame:
    """The negative control's bars: every adjusted figure replaced by the one as traded."""
    traded = (
        pl.col(name).cast(pl.Float64).alias(f"adj_{name}")
        for name in ("open", "high", "low", "close", "volume")
    )
    return bars.with_columns(*traded, adj_factor=pl.lit(1.0))


def kinds_on(views: dict[str, pl.DataFrame], day: dt.date) -> pl.DataFrame:
    """What each symbol is on the day: its universe row, and its latest quote dated up to the day after (an
    evening run's quotes are dated the next UTC day)."""
    quotes = (
        views["quotes"]
        .filter(pl.col("date") <= day + dt.timedelta(days=1))
        .sort("date", "run_id")
        .group_by("symbol")
        .last()
        .select("symbol", "quote_type", "market_cap")
    )
    kinds = views["symbols"].join(quotes, on="symbol", how="full", coalesce=True)
    by_universe = pl.col("sector").is_not_null() & ~pl.col("benchmark").fill_null(False)
    equity = (
        pl.when(pl.col("quote_type").is_null()).then(by_universe).otherwise(pl.col("quote_type") == "EQUITY")
    )
    return kinds.with_columns(equity=equity)


def day_facts(bars: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """Each symbol's bar of the day, with what the brief reads off the symbol's history up to it."""
    history = bars.filter(pl.col("date") <= day).sort("symbol", "date")
    facts = history.with_columns(
        previous_adj_close=pl.col("adj_close").shift(1).over("symbol"),
        ma50=pl.col("adj_close").rolling_mean(50).over("symbol"),
        ma200=pl.col("adj_close").rolling_mean(200).over("symbol"),
        avg_volume_20d=pl.col("adj_volume").shift(1).rolling_mean(20).over("symbol"),
    ).filter(pl.col("date") == day)
    year = history.filter(pl.col("date") > day - dt.timedelta(weeks=52)).group_by("symbol")
    ranges = year.agg(high_52w=pl.col("adj_high").max(), low_52w=pl.col("adj_low").min())
    return facts.join(ranges, on="symbol").with_columns(
        change=pl.col("adj_close") - pl.col("previous_adj_close"),
        change_pct=(pl.col("adj_close") / pl.col("previous_adj_close") - 1) * 100,
        # the previous close in the day's shares
        previous_close=pl.col("previous_adj_close") / pl.col("adj_factor"),
    )


def expected_benchmarks(views, bars, day) -> list[dict]:
    kinds = kinds_on(views, day).filter(pl.col("benchmark"))
    rows = day_facts(bars, day).join(kinds, on="symbol").sort("symbol")
    return rows.select(
        "symbol",
        "name",
        "quote_type",
        "close",
        "change",
        "change_pct",
        "high_52w",
        "low_52w",
        at_52w_high=(pl.col("adj_high") == pl.col("high_52w")).fill_null(False),
        at_52w_low=(pl.col("adj_low") == pl.col("low_52w")).fill_null(False),
    ).to_dicts()


def expected_sector_moves(views, bars, day) -> list[dict]:
    equities = kinds_on(views, day).filter(pl.col("equity") & pl.col("sector").is_not_null())
    moves = day_facts(bars, day).filter(pl.col("change_pct").is_not_null()).join(equities, on="symbol")
    rows = []
    for (sector,), sector_moves in moves.group_by("sector"):
        best = sector_moves.sort(["change_pct", "symbol"], descending=[True, False]).row(0, named=True)
        worst = sector_moves.sort(["change_pct", "symbol"]).row(0, named=True)
        capped = sector_moves.filter(pl.col("market_cap").is_not_null())
        weights = capped["market_cap"] / capped["market_cap"].sum()
        rows.append(
            {
                "sector": sector,
                "n_symbols": sector_moves.height,
                "advancers": (sector_moves["change_pct"] > 0).sum(),
                "decliners": (sector_moves["change_pct"] < 0).sum(),
                "mean_change_pct": sector_moves["change_pct"].mean(),
                "cap_weighted_change_pct": (capped["change_pct"] * weights).sum() if capped.height else None,
                "best_symbol": best["symbol"],
                "best_change_pct": best["change_pct"],
                "worst_symbol": worst["symbol"],
                "worst_change_pct": worst["change_pct"],
            }
        )
    return sorted(rows, key=lambda row: (-row["mean_change_pct"], row["sector"]))


def expected_breadth(views, bars, day) -> list[dict]:
    equities = kinds_on(views, day).filter(pl.col("equity")).select("symbol")
    facts = day_facts(bars, day).join(equities, on="symbol")
    if facts.is_empty():
        return []

    def pct_above(average: str) -> float | None:
        averaged = facts.filter(pl.col(average).is_not_null())
        above = (averaged["adj_close"] > averaged[average]).sum()
        return 100 * above / averaged.height if averaged.height else None

    change = facts["change_pct"]
    return [
        {
            "advancers": (change > 0).sum(),
            "decliners": (change < 0).sum(),
            "unchanged": (change == 0).sum(),
            "new_highs_52w": (facts["adj_high"] == facts["high_52w"]).sum(),
            "new_lows_52w": (facts["adj_low"] == facts["low_52w"]).sum(),
            "pct_above_ma50": pct_above("ma50"),
            "pct_above_ma200": pct_above("ma200"),
        }
    ]


def expected_unusual_volume(bars, day, n: int) -> list[dict]:
    facts = day_facts(bars, day).filter(pl.col("avg_volume_20d") > 0)
    ratios = facts.with_columns(volume_ratio=pl.col("adj_volume") / pl.col("avg_volume_20d"))
    top = ratios.sort(["volume_ratio", "symbol"], descending=[True, False]).head(n)
    return top.select(
        "symbol", pl.col("adj_volume").alias("volume"), "avg_volume_20d", "volume_ratio"
    ).to_dicts()


def expected_gaps(bars, day, n: int) -> list[dict]:
    facts = day_facts(bars, day).filter(pl.col("previous_adj_close").is_not_null())
    gaps = facts.with_columns(gap_pct=(pl.col("adj_open") / pl.col("previous_adj_close") - 1) * 100)
    top = gaps.sort([pl.col("gap_pct").abs(), pl.col("symbol")], descending=[True, False]).head(n)
    return top.select("symbol", "previous_close", "open", "gap_pct").to_dicts()


def approx_rows(rows: list[dict]) -> list[dict]:
    """Rows to compare with a macro's: floats to within 1e-9 of theirs, other values exactly."""
    return [
        {k: pytest.approx(v, rel=1e-9, abs=1e-9) if isinstance(v, float) else v for k, v in row.items()}
        for row in rows
    ]


def macro_rows(con, name: str, day, *args) -> list[dict]:
    placeholders = ", ".join(["$day", *(f"$arg{i}" for i in range(len(args)))])
    params = {"day": day} | {f"arg{i}": arg for i, arg in enumerate(args)}
    return fetch_dicts(con, f"from {name}({placeholders})", params)


# --- The day's events: the point of the day chosen ----------------------------------------------------------


def day_actions() -> list[dict]:
    """The members' splits and dividends that go ex on DAY, from the emulator's own schedule."""
    rows = []
    for member in members():
        actions = corporate_actions(EmulatorConfig.seed, member.symbol)
        none = {"numerator": None, "denominator": None, "ratio": None}
        for dividend in (d for d in actions.dividends if d.ex_date == DAY):
            rows.append({"symbol": member.symbol, "action": "dividend", "amount": dividend.amount} | none)
        for split in (s for s in actions.splits if s.ex_date == DAY):
            ratios = {"numerator": split.numerator, "denominator": split.denominator, "ratio": split.ratio}
            rows.append({"symbol": member.symbol, "action": "split", "amount": None} | ratios)
    return sorted(rows, key=lambda row: (row["symbol"], row["action"]))


def test_the_day_has_a_split_and_an_ex_dividend_among_the_members():
    actions = {row["action"] for row in day_actions()}
    assert actions == {"split", "dividend"}, f"no split and dividend among the members on {DAY}"
    stocks = [m.symbol for m in members() if not m.benchmark]
    assert len(stocks) == len(SECTORS) * PER_SECTOR
    splitters = {row["symbol"] for row in day_actions() if row["action"] == "split"}
    assert splitters <= set(stocks) and not splitters & {*QUOTE_TYPES, NO_CAP}  # equities on the day, capped


def test_corporate_actions_are_the_days_splits_and_dividends(con):
    rows = macro_rows(con, "corporate_actions", DAY)
    expected = [row | {"currency": "USD" if row["action"] == "dividend" else None} for row in day_actions()]
    assert rows == approx_rows(expected)


# --- Each macro against the same facts computed here --------------------------------------------------------


@pytest.mark.parametrize("which", ["day", "eve"])
def test_benchmarks_are_each_benchmarks_close_change_and_year_range(con, views, days, which):
    day = days[which]
    rows = macro_rows(con, "benchmarks", day)
    assert rows == approx_rows(expected_benchmarks(views, views["bars_adjusted"], day))
    assert [row["symbol"] for row in rows] == sorted(BENCHMARKS)
    quote_types = [row["quote_type"] for row in rows]
    assert quote_types == (["CURRENCY", "INDEX"] if which == "day" else [None, None])


@pytest.mark.parametrize("which", ["day", "eve"])
def test_sector_moves_are_each_sectors_equities_moves(con, views, days, which):
    day = days[which]
    rows = macro_rows(con, "sector_moves", day)
    assert rows == approx_rows(expected_sector_moves(views, views["bars_adjusted"], day))
    sizes = {row["sector"]: row["n_symbols"] for row in rows}
    # AMD is an ETF by the day's quote and an equity by its sector the day before, which no quote is dated by
    assert sizes == {sector: PER_SECTOR for sector in SECTORS} | (
        {"Information Technology": PER_SECTOR - 1} if which == "day" else {}
    )
    weighted = [row["cap_weighted_change_pct"] for row in rows]
    assert all(w is not None for w in weighted) if which == "day" else weighted == [None] * len(SECTORS)


def test_a_symbol_without_a_cap_is_left_out_of_the_weighting_only(con, views):
    (no_cap,) = kinds_on(views, DAY).filter(pl.col("symbol") == NO_CAP).to_dicts()
    assert no_cap["market_cap"] is None and no_cap["equity"]
    (sector,) = [row for row in macro_rows(con, "sector_moves", DAY) if row["sector"] == no_cap["sector"]]
    assert sector["n_symbols"] == PER_SECTOR and sector["cap_weighted_change_pct"] is not None


@pytest.mark.parametrize("which", ["day", "eve", "bar 49", "bar 50", "bar 199", "bar 200"])
def test_breadth_counts_the_equities_moves_extremes_and_averages(con, views, days, which):
    day = days[which]
    rows = macro_rows(con, "breadth", day)
    assert rows == approx_rows(expected_breadth(views, views["bars_adjusted"], day))
    (row,) = rows
    # each side of a moving average's first bar: none has it before, every equity from then on
    assert (row["pct_above_ma50"] is None) == (which == "bar 49")
    assert (row["pct_above_ma200"] is None) == (which in ("bar 49", "bar 50", "bar 199"))


@pytest.mark.parametrize("which", ["day", "bar 20", "bar 21"])
@pytest.mark.parametrize("n", [3, ALL])
def test_unusual_volume_is_the_days_volume_against_its_20_bars_before(con, views, days, which, n):
    day = days[which]
    rows = macro_rows(con, "unusual_volume", day, n)
    assert rows == approx_rows(expected_unusual_volume(views["bars_adjusted"], day, n))
    assert (rows == []) == (which == "bar 20")  # the 21st bar is the first with 20 before it
    assert CURRENCY not in {row["symbol"] for row in rows}  # no volume at all


@pytest.mark.parametrize("which", ["day", "eve"])
@pytest.mark.parametrize("n", [3, ALL])
def test_gaps_are_the_largest_opens_against_the_previous_close(con, views, days, which, n):
    day = days[which]
    rows = macro_rows(con, "gaps", day, n)
    assert rows == approx_rows(expected_gaps(views["bars_adjusted"], day, n))
    assert len(rows) == min(n, len(members()))


def test_a_gaps_previous_close_is_in_the_days_shares(con, views):
    """The eve's close as traded, divided by the day's split, less the day's dividend: what the day opened
    against."""
    gaps = {row["symbol"]: row for row in macro_rows(con, "gaps", DAY, ALL)}
    eve_closes = dict(
        views["bars_adjusted"].filter(pl.col("date") == EVE).select("symbol", "close").iter_rows()
    )
    for action in day_actions():
        symbol = action["symbol"]
        in_days_shares = eve_closes[symbol] / (action["ratio"] or 1) - (action["amount"] or 0)
        assert gaps[symbol]["previous_close"] == pytest.approx(in_days_shares, rel=1e-9), symbol
        gap = gaps[symbol]["open"] / gaps[symbol]["previous_close"] - 1
        assert gaps[symbol]["gap_pct"] == pytest.approx(gap * 100, rel=1e-9), symbol


# --- Negative controls: the same computation on closes as traded is caught ----------------------------------

EXPECTED = {
    "sector_moves": lambda views, bars: expected_sector_moves(views, bars, DAY),
    "breadth": lambda views, bars: expected_breadth(views, bars, DAY),
    "unusual_volume": lambda views, bars: expected_unusual_volume(bars, DAY, ALL),
    "gaps": lambda views, bars: expected_gaps(bars, DAY, ALL),
}


@pytest.mark.parametrize("name", EXPECTED)
def test_a_macro_on_closes_as_traded_would_fail_on_the_day(con, views, name):
    rows = macro_rows(con, name, DAY, *MACROS[name])
    assert rows == approx_rows(EXPECTED[name](views, views["bars_adjusted"]))
    assert rows != approx_rows(EXPECTED[name](views, as_traded(views["bars_adjusted"])))


def test_a_sector_with_a_dividend_alone_differs_as_traded(con, views):
    """Information Technology has an ex-dividend and no split on the day: the control does not rest on the
    split alone."""
    it = "Information Technology"
    it_symbols = {m.symbol for m in members() if m.sector == it}
    assert {row["action"] for row in day_actions() if row["symbol"] in it_symbols} == {"dividend"}
    rows = {row["sector"]: row for row in macro_rows(con, "sector_moves", DAY)}
    traded = {
        row["sector"]: row for row in expected_sector_moves(views, as_traded(views["bars_adjusted"]), DAY)
    }
    assert rows[it]["mean_change_pct"] != pytest.approx(traded[it]["mean_change_pct"], rel=1e-9, abs=1e-9)


# --- Days without bars, the day as text, the shell ----------------------------------------------------------


@pytest.mark.parametrize(
    "day", [SATURDAY, DAY + dt.timedelta(days=1)], ids=["saturday", "after the last bar"]
)
@pytest.mark.parametrize("name", MACROS)
def test_a_day_with_no_bars_answers_no_rows(con, views, day, name):
    assert views["bars_adjusted"].filter(pl.col("date") == day).is_empty()
    assert macro_rows(con, name, day.isoformat(), *MACROS[name]) == []


@pytest.mark.parametrize("name", MACROS)
def test_the_day_may_be_text(con, name):
    rows = macro_rows(con, name, DAY, *MACROS[name])
    assert rows and macro_rows(con, name, DAY.isoformat(), *MACROS[name]) == approx_rows(rows)


def test_the_shell_starts_with_the_brief_macros_loaded(lake, con):
    """Each macro in the DuckDB shell, whose DuckDB is not the Python package's, as in Python."""
    calls = {name: ", ".join([f"'{DAY}'", *map(str, args)]) for name, args in MACROS.items()}
    counts = "".join(f"select count(*) from {name}({call});\n" for name, call in calls.items())
    result = shell(lake, f".mode csv\n.headers off\n{counts}select sector from sector_moves('{DAY}');\n")
    assert result.returncode == 0 and not result.stderr, result.stderr
    sectors = [row["sector"] for row in macro_rows(con, "sector_moves", DAY)]
    expected = [str(len(macro_rows(con, name, DAY, *args))) for name, args in MACROS.items()]
    assert result.stdout.splitlines() == expected + sectors
