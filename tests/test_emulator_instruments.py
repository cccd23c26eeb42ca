"""The emulator's kinds of instrument (indices, currencies, futures, cryptocurrencies) held to Yahoo's
recorded answers: their keys and absences, exchanges, time zones, calendars and volumes; and the replay of
those recordings through the emulator, yfinance and the job's own source."""

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from conftest import run_collect, write_universe
from etl import transform
from etl.config import DEFAULT_UNIVERSE_PATH
from etl.emulator import Emulator, EmulatorConfig, actions, calendars
from etl.emulator.recordings import load_recordings
from etl.errors import ConfigError
from etl.lake.views import connect_lake
from etl.source.yahoo import YahooSource
from etl.universe import load_members
from test_emulator import FIXTURES, QUERY1, assert_same_shape, chart, handshake, quotes, recorded

NODE_RECORDINGS = FIXTURES / "node-yahoo-finance2"
# The instant of the chart recordings (their Date header), and a moment after the quotes were recorded, on
# Presidents' Day: NYSE shut, CME open.
CHARTED_AT = dt.datetime(2025, 2, 20, 11, 47, 41, tzinfo=dt.UTC)
QUOTED_AT = dt.datetime(2025, 2, 17, 11, 0, tzinfo=dt.UTC)
SATURDAY = dt.datetime(2025, 2, 22, 15, 0, tzinfo=dt.UTC)
# The recorded charts' window: 2020-01-01 00:00 UTC to 2020-01-03 00:00 UTC.
RECORDED_PERIOD = {"period1": 1577836800, "period2": 1578009600}
RECORDED_CHARTS = {
    "BTC-USD": "chart-BTC-USD-2020-01-01-to-2020-01-03.json",
    "EURUSD=X": "chart-EURUSD=X-2020-01-01-to-2020-01-03.json",
    "GC=F": "chart-GC=F-2020-01-01-to-2020-01-03.json",
    "AAPL": "chart-AAPL-2020-01-01-to-2020-01-03.json",
}
RECORDED_QUOTES = {
    "BTC-USD": "quote-BTC-USD.json",
    "EURUSD=X": "quote-EURUSD=X.json",
    "GC=F": "quote-GC=F.json",
    "^VXAPL": "quote-^VXAPL.json",
}
# The default universe's benchmarks (tests/test_universe.py holds the list).
BENCHMARKS = [m.symbol for m in load_members(DEFAULT_UNIVERSE_PATH) if m.benchmark]
NO_VOLUME = {"EURUSD=X", "^VIX", "^TNX", "^VXAPL", "DX-Y.NYB"}
# Yahoo has no history of ^VXAPL (its 52-week range is "0.0 - 0.0"), so its quote lacks the keys made of one,
# which an index with a history (^GSPC) has.
INDEX_HISTORY_KEYS = {
    "firstTradeDateMilliseconds",
    "averageDailyVolume3Month",
    "averageDailyVolume10Day",
    "fiftyTwoWeekChangePercent",
    "fiftyTwoWeekHighChangePercent",
    "fiftyTwoWeekLowChangePercent",
    *(f"{average}{suffix}" for average in ("fiftyDayAverage", "twoHundredDayAverage")
      for suffix in ("", "Change", "ChangePercent")),
}  # fmt: skip
NEW_YORK, LONDON = ZoneInfo("America/New_York"), ZoneInfo("Europe/London")


def emulator_at(now: dt.datetime, **knobs):
    with Emulator(EmulatorConfig(as_of=now, **knobs)) as emu:
        yield emu


@pytest.fixture(scope="module")
def charted():
    yield from emulator_at(CHARTED_AT)


@pytest.fixture(scope="module")
def quoted():
    yield from emulator_at(QUOTED_AT)


@pytest.fixture(scope="module")
def saturday():
    yield from emulator_at(SATURDAY)


@pytest.fixture(scope="module")
def replaying():
    recorded("quote-BTC-USD.json")  # skips, saying why, where ../shared/data is absent
    yield from emulator_at(QUOTED_AT, recordings=NODE_RECORDINGS, delisted=frozenset({"GONE"}))


def served(emu, symbol: str, **params) -> dict:
    return chart(emu, symbol, **params).json()["chart"]["result"][0]


def quoted_by_symbol(emu, symbols: list[str]) -> dict[str, dict]:
    return {q["symbol"]: q for q in quotes(emu, ",".join(symbols))["quoteResponse"]["result"]}


def local_days(result: dict) -> list[dt.date]:
    """The dates of a chart's bars in its exchange's time zone, as the job reads them."""
    zone = ZoneInfo(result["meta"]["exchangeTimezoneName"])
    return [dt.datetime.fromtimestamp(stamp, zone).date() for stamp in result["timestamp"]]


def midnight_utc(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp())


# Each kind's answers have Yahoo's recorded structure and facts


@pytest.mark.parametrize("symbol", RECORDED_CHARTS)
def test_a_kinds_chart_is_yahoos_down_to_its_exchange_zone_and_hours(charted, symbol):
    theirs = recorded(RECORDED_CHARTS[symbol])
    ours = chart(charted, symbol, **RECORDED_PERIOD).json()
    assert_same_shape(ours, theirs)
    ours_result, theirs_result = ours["chart"]["result"][0], theirs["chart"]["result"][0]
    assert list(ours_result) == list(theirs_result) == ["meta", "timestamp", "indicators"]  # no events
    meta, yahoos = ours_result["meta"], theirs_result["meta"]
    assert set(meta) == set(yahoos)  # GC=F's has no longName
    facts = ["currency", "exchangeName", "fullExchangeName", "instrumentType", "exchangeTimezoneName"]
    facts += ["timezone", "gmtoffset", "hasPrePostMarketData", "priceHint"]
    assert {fact: meta[fact] for fact in facts} == {fact: yahoos[fact] for fact in facts}
    # At the recording's instant, today's trading period is Yahoo's to the second.
    assert meta["currentTradingPeriod"] == yahoos["currentTradingPeriod"]


@pytest.mark.parametrize("symbol", RECORDED_CHARTS)
def test_daily_bars_are_stamped_at_yahoos_local_times(charted, symbol):
    # 00:00 UTC for BTC-USD (New Year's Day too), 00:00 London for EURUSD=X (New Year's Day too), 00:00 New
    # York for GC=F (no bar on New Year's Day), 09:30 New York for AAPL. Yahoo also sends a bar stamped at
    # period2 itself, which the emulator's window (period1 <= stamp < period2) leaves out: one second more.
    theirs = recorded(RECORDED_CHARTS[symbol])["chart"]["result"][0]["timestamp"]
    window = {**RECORDED_PERIOD, "period2": RECORDED_PERIOD["period2"] + 1}
    assert served(charted, symbol, **window)["timestamp"] == theirs


def test_an_index_chart_is_a_us_chart_of_an_index_without_extended_hours(charted):
    ours = chart(charted, "^GSPC", **RECORDED_PERIOD).json()
    theirs = recorded("chart-AAPL-2020-01-01-to-2020-01-03.json")  # a chart is a chart, whatever the symbol
    assert_same_shape(ours, theirs)
    meta, aapls = ours["chart"]["result"][0]["meta"], theirs["chart"]["result"][0]["meta"]
    assert (meta["instrumentType"], meta["exchangeName"], meta["hasPrePostMarketData"]) == (
        "INDEX",
        "SNP",
        False,
    )
    assert (meta["shortName"], meta["longName"]) == ("S&P 500", "S&P 500")
    assert meta["currentTradingPeriod"] == aapls["currentTradingPeriod"]  # the US market's hours
    assert ours["chart"]["result"][0]["timestamp"] == theirs["chart"]["result"][0]["timestamp"]  # 09:30


@pytest.mark.parametrize("symbol", RECORDED_QUOTES)
def test_a_kinds_quote_has_yahoos_keys_and_leaves_out_those_yahoo_leaves_out(quoted, symbol):
    theirs = recorded(RECORDED_QUOTES[symbol])
    ours = quotes(quoted, symbol)
    assert_same_shape(ours, theirs)
    quote, yahoos = ours["quoteResponse"]["result"][0], theirs["quoteResponse"]["result"][0]
    # Not one key more: no marketCap for EURUSD=X, GC=F or ^VXAPL, no bid for BTC-USD, no longName for GC=F.
    assert set(quote) - set(yahoos) <= (INDEX_HISTORY_KEYS if symbol == "^VXAPL" else set())
    facts = ["quoteType", "typeDisp", "quoteSourceName", "exchange", "fullExchangeName", "market", "currency"]
    facts += ["exchangeTimezoneName", "exchangeTimezoneShortName", "gmtOffSetMilliseconds", "marketState"]
    facts += ["hasPrePostMarketData", "triggerable", "customPriceAlertConfidence", "exchangeDataDelayedBy"]
    facts += ["priceHint", "tradeable", "cryptoTradeable", "messageBoardId", "shortName", "longName"]
    # A future's front contract on the day (Gold Apr 25), a coin's currencies.
    facts += ["underlyingSymbol", "expireDate", "expireIsoDate", "fromCurrency", "toCurrency"]
    assert {fact: quote.get(fact) for fact in facts} == {fact: yahoos.get(fact) for fact in facts}


def test_a_symbol_is_of_the_kind_its_form_says(quoted):
    kinds = {
        "^GSPC": "INDEX",
        "DX-Y.NYB": "INDEX",
        "EURUSD=X": "CURRENCY",
        "JPY=X": "CURRENCY",
        "CL=F": "FUTURE",
        "BTC-USD": "CRYPTOCURRENCY",
        "SPY": "ETF",
        "VFIAX": "MUTUALFUND",
        "BRK-B": "EQUITY",
        "AAPL": "EQUITY",
    }
    served_quotes = quoted_by_symbol(quoted, list(kinds))
    assert {symbol: q["quoteType"] for symbol, q in served_quotes.items()} == kinds
    assert (served_quotes["JPY=X"]["currency"], served_quotes["JPY=X"]["shortName"]) == ("JPY", "USD/JPY")


def test_benchmarks_carry_yahoos_names_and_sit_near_their_levels(quoted):
    served_quotes = quoted_by_symbol(quoted, BENCHMARKS)
    names = {symbol: q["shortName"] for symbol, q in served_quotes.items()}
    assert (
        names["^DJI"] == "Dow Jones Industrial Average" and names["^TNX"] == "CBOE Interest Rate 10 Year T No"
    )
    assert names["CL=F"] == "Crude Oil Apr 25" and names["DX-Y.NYB"] == "US Dollar Index"
    levels = {"^GSPC": 6000, "^DJI": 44000, "^IXIC": 19500, "^VIX": 16, "^TNX": 4.3, "CL=F": 70, "GC=F": 2600}
    levels |= {"^RUT": 2300, "BTC-USD": 95000, "EURUSD=X": 1.08, "DX-Y.NYB": 104}
    for symbol, level in levels.items():
        assert level / 2 < served_quotes[symbol]["regularMarketPrice"] < level * 2, symbol


# What each kind has and has not


def test_only_shares_and_coins_have_a_market_cap(quoted):
    served_quotes = quoted_by_symbol(quoted, [*BENCHMARKS, "^VXAPL", "AAPL"])
    assert {symbol for symbol, q in served_quotes.items() if "marketCap" in q} == {"BTC-USD", "AAPL"}


def test_volume_is_zero_where_yahoo_sends_zero(quoted):
    served_quotes = quoted_by_symbol(quoted, [*BENCHMARKS, "^VXAPL"])
    for symbol, quote in served_quotes.items():
        volumes = served(quoted, symbol, range="1mo")["indicators"]["quote"][0]["volume"]
        assert (set(volumes) == {0}) is (symbol in NO_VOLUME), symbol
        assert (quote["regularMarketVolume"] == 0) is (symbol in NO_VOLUME), symbol


def test_only_shares_have_dividends_and_splits(quoted):
    for symbol in BENCHMARKS:
        assert actions.corporate_actions(7, symbol) == actions.Actions((), ()), symbol
        assert "events" not in served(quoted, symbol, range="10y"), symbol
    assert "dividends" in served(quoted, "GOOG", range="10y")["events"]  # a payer's, the same ten years
    served_quotes = quoted_by_symbol(quoted, [*BENCHMARKS, "GOOG"])
    assert [s for s, q in served_quotes.items() if "trailingAnnualDividendRate" in q] == ["GOOG"]


def test_there_are_no_fundamentals_of_an_index_a_currency_a_coin_or_a_future(quoted):
    session, crumb = handshake(quoted)
    for symbol in ("^GSPC", "EURUSD=X", "BTC-USD", "GC=F"):
        answer = session.get(
            f"{QUERY1}/v10/finance/quoteSummary/{symbol}", params={"modules": "price", "crumb": crumb}
        )
        assert answer.status_code == 404, symbol
        assert_same_shape(answer.json(), recorded("quoteSummary-summaryDetail-WSKT.JK.json"))


# Calendars


def test_each_kind_trades_on_its_own_calendar(charted):
    first, last = dt.date(2023, 12, 20), dt.date(2024, 4, 5)
    window = {"period1": midnight_utc(first), "period2": midnight_utc(last + dt.timedelta(days=1))}
    every_day = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    weekdays = [day for day in every_day if day.weekday() < 5]
    christmas, new_year, good_friday = dt.date(2023, 12, 25), dt.date(2024, 1, 1), dt.date(2024, 3, 29)
    cme = [day for day in weekdays if day not in (christmas, new_year, good_friday)]
    martin_luther_king, presidents = dt.date(2024, 1, 15), dt.date(2024, 2, 19)
    nyse = [day for day in cme if day not in (martin_luther_king, presidents)]
    expected = {
        "BTC-USD": every_day,
        "EURUSD=X": weekdays,
        "GC=F": cme,
        "CL=F": cme,
        "^GSPC": nyse,
        "AAPL": nyse,
    }
    assert {symbol: local_days(served(charted, symbol, **window)) for symbol in expected} == expected


def test_fx_bars_are_stamped_at_midnight_in_london_in_summer_too(charted):
    window = {
        "period1": midnight_utc(dt.date(2024, 7, 1)) - 3600,
        "period2": midnight_utc(dt.date(2024, 7, 7)),  # Monday's bar is stamped on Sunday, 23:00 UTC
    }
    stamps = served(charted, "EURUSD=X", **window)["timestamp"]
    moments = [dt.datetime.fromtimestamp(stamp, LONDON) for stamp in stamps]
    assert [m.date() for m in moments] == [dt.date(2024, 7, day) for day in (1, 2, 3, 4, 5)]  # the 4th too
    assert {m.time() for m in moments} == {dt.time(0, 0)}
    assert {dt.datetime.fromtimestamp(stamp, dt.UTC).hour for stamp in stamps} == {23}  # the day before
    # Weeks are London's too: each starts on its Monday, though the stamp is a Sunday's in UTC.
    summer = {"period1": midnight_utc(dt.date(2024, 6, 1)), "period2": midnight_utc(dt.date(2024, 9, 1))}
    weekly = served(charted, "EURUSD=X", interval="1wk", **summer)["timestamp"]
    mondays = {dt.datetime.fromtimestamp(stamp, LONDON).strftime("%a %H:%M") for stamp in weekly}
    assert len(weekly) == 13 and mondays == {"Mon 00:00"}


def test_a_saturday_clock_ends_crypto_on_saturday_and_the_rest_on_friday(saturday):
    last = {
        s: local_days(served(saturday, s, range="5d"))[-1] for s in ("BTC-USD", "EURUSD=X", "GC=F", "^GSPC")
    }
    friday = dt.date(2025, 2, 21)
    assert last == {"BTC-USD": dt.date(2025, 2, 22), "EURUSD=X": friday, "GC=F": friday, "^GSPC": friday}
    assert len(served(saturday, "BTC-USD", range="5d")["timestamp"]) == 5  # five days, the weekend's too
    states = {s: q["marketState"] for s, q in quoted_by_symbol(saturday, list(last)).items()}
    assert states == {"BTC-USD": "REGULAR", "EURUSD=X": "CLOSED", "GC=F": "CLOSED", "^GSPC": "CLOSED"}


def test_crypto_is_in_its_regular_session_every_minute_of_the_week():
    monday = dt.datetime(2025, 2, 17, tzinfo=dt.UTC)
    instants = [monday + dt.timedelta(minutes=minutes) for minutes in range(0, 7 * 24 * 60, 13)]
    instants += [monday + dt.timedelta(days=day, hours=23, minutes=59, seconds=30) for day in range(7)]
    assert {calendars.market_state(instant, calendars.CRYPTO) for instant in instants} == {"REGULAR"}


def test_on_presidents_day_the_nyse_is_shut_and_the_rest_trade(quoted):
    states = {
        s: q["marketState"] for s, q in quoted_by_symbol(quoted, ["AAPL", "^GSPC", *RECORDED_QUOTES]).items()
    }
    recorded_states = {
        s: recorded(name)["quoteResponse"]["result"][0]["marketState"] for s, name in RECORDED_QUOTES.items()
    }
    assert states == recorded_states | {"AAPL": "CLOSED", "^GSPC": "CLOSED"}
    assert {states[s] for s in ("BTC-USD", "EURUSD=X", "GC=F")} == {"REGULAR"}


# Replaying Yahoo's recorded answers


def recorded_headers(name: str) -> dict:
    return json.loads((NODE_RECORDINGS / name).read_text())["response"]["headers"]


@pytest.mark.parametrize("symbol", ["BTC-USD", "EURUSD=X", "GC=F"])
def test_replay_answers_a_recorded_daily_chart_with_yahoos_body(replaying, symbol):
    answer = chart(replaying, symbol, range="1y")  # whatever the window asked for
    theirs = recorded(RECORDED_CHARTS[symbol])
    assert answer.status_code == 200 and answer.json() == theirs
    assert answer.content == json.dumps(theirs, separators=(",", ":")).encode()
    assert answer.headers["Content-Type"] == recorded_headers(RECORDED_CHARTS[symbol])["content-type"]
    assert answer.headers["X-Emulator"] == "recorded"


def test_replay_picks_the_recording_of_the_period_and_leaves_the_rest_synthetic(replaying):
    yahoos_length = recorded_headers(RECORDED_CHARTS["BTC-USD"])["content-length"]
    assert len(chart(replaying, "BTC-USD").content) == int(yahoos_length)  # the recording kept Yahoo's bytes
    autumn = recorded("chart-AAPL-2020-08-31-to-2020-11-07.json")["chart"]["result"][0]
    assert served(replaying, "AAPL", period1=1598832000, period2=1604707200) == autumn  # its period's
    assert served(replaying, "AAPL", range="5d") == recorded(RECORDED_CHARTS["AAPL"])["chart"]["result"][0]
    assert chart(replaying, "AAPL", interval="1m").status_code == 400  # refused as ever, never replayed
    synthetic = chart(replaying, "^GSPC", range="5d")
    assert synthetic.headers["X-Emulator"] == "synthetic"
    assert synthetic.json()["chart"]["result"][0]["meta"]["exchangeName"] == "SNP"
    assert chart(replaying, "GONE").status_code == 404


def test_replay_quotes_the_recorded_objects_among_synthetic_ones_in_the_order_asked(replaying):
    asked = ["^GSPC", "BABA", "EURUSD=X", "AAPL", "GONE", "^VXAPL"]
    result = quotes(replaying, ",".join(asked))["quoteResponse"]["result"]
    assert [q["symbol"] for q in result] == ["^GSPC", "BABA", "EURUSD=X", "AAPL", "^VXAPL"]
    assert result[1] == recorded("quote-AAPL-BABA.json")["quoteResponse"]["result"][1]
    assert result[2] == recorded("quote-EURUSD=X.json")["quoteResponse"]["result"][0]
    assert result[3] == recorded("quote-AAPL.json")["quoteResponse"]["result"][0]  # its own file's
    assert result[0]["exchange"] == "SNP" and result[0]["quoteSourceName"] == "Delayed Quote"  # synthetic
    session, _ = handshake(replaying)
    without_crumb = session.get(f"{QUERY1}/v7/finance/quote", params={"symbols": "AAPL"})
    assert without_crumb.status_code == 401  # judged as ever


def test_the_jobs_source_reads_yahoos_recorded_answers_through_yfinance(replaying):
    source = YahooSource(proxy=replaying.proxy_url, ca_bundle=replaying.ca_path, history="1y", timeout_s=10)
    try:
        charts = {symbol: source.fetch_chart(1, symbol).payload for symbol in ("BTC-USD", "EURUSD=X", "GC=F")}
        quoted_objects = source.fetch_quotes(1, ("GC=F", "^VXAPL")).payload
    finally:
        source.close()
    assert charts["GC=F"] == recorded(RECORDED_CHARTS["GC=F"])["chart"]["result"][0]
    assert quoted_objects == [
        recorded(RECORDED_QUOTES[s])["quoteResponse"]["result"][0] for s in ("GC=F", "^VXAPL")
    ]
    dates = transform.to_bars("run", list(charts.items())).to_pydict()
    by_symbol = {
        s: [d for d, x in zip(dates["date"], dates["symbol"], strict=True) if x == s] for s in charts
    }
    new_year = [dt.date(2020, 1, day) for day in (1, 2, 3)]
    assert by_symbol == {"BTC-USD": new_year, "EURUSD=X": new_year, "GC=F": new_year[1:2]}


def write_recorded_quotes(path, *symbols_and_prices: tuple[str, float]) -> None:
    result = [{"symbol": symbol, "regularMarketPrice": price} for symbol, price in symbols_and_prices]
    path.write_text(
        json.dumps({"request": {}, "response": {"bodyJson": {"quoteResponse": {"result": result}}}})
    )


def test_a_symbols_own_quote_recording_wins_over_one_it_shares(tmp_path):
    write_recorded_quotes(tmp_path / "quote-AAPL.json", ("AAPL", 1.0))
    write_recorded_quotes(tmp_path / "quote-AAPL-BABA.json", ("AAPL", 2.0), ("BABA", 3.0))
    write_recorded_quotes(tmp_path / "quote-BABA-AAPL.json", ("BABA", 4.0), ("AAPL", 5.0))
    found = load_recordings(tmp_path).quotes
    assert found["AAPL"]["regularMarketPrice"] == 1.0 and found["BABA"]["regularMarketPrice"] in (3.0, 4.0)


def test_a_folder_of_no_recordings_is_refused_naming_it(tmp_path):
    with pytest.raises(ConfigError, match="no node-yahoo-finance2 recordings"):
        load_recordings(tmp_path)
    (tmp_path / "chart-X.json").write_text('{"response": {}}')
    with pytest.raises(ConfigError, match="chart-X.json: not a node-yahoo-finance2 recording"):
        load_recordings(tmp_path)


def test_a_collect_of_the_recordings_lands_yahoos_kinds_currencies_zones_and_closes(tmp_path):
    """The whole job over Yahoo's own recorded answers: what lands in the lake is what Yahoo sent."""
    symbols = ["BTC-USD", "EURUSD=X", "GC=F"]
    yahoos = {s: recorded(RECORDED_QUOTES[s])["quoteResponse"]["result"][0] for s in symbols}  # or skips
    universe = write_universe(tmp_path / "u.txt", symbols)
    with Emulator(EmulatorConfig(recordings=NODE_RECORDINGS, as_of=CHARTED_AT)) as emulator:
        result = run_collect(emulator, universe, tmp_path / "lake")
    assert result.returncode == 0, result.stderr
    con = connect_lake(tmp_path / "lake")
    landed = con.execute("select symbol, quote_type, currency, exchange_tz, price from quotes").fetchall()
    assert sorted(landed) == [
        (s, q["quoteType"], q["currency"], q["exchangeTimezoneName"], q["regularMarketPrice"])
        for s, q in sorted(yahoos.items())
    ]
    for symbol in symbols:
        theirs = recorded(RECORDED_CHARTS[symbol])["chart"]["result"][0]
        zone = ZoneInfo(theirs["meta"]["exchangeTimezoneName"])
        closes = theirs["indicators"]["quote"][0]["close"]
        days = [dt.datetime.fromtimestamp(t, zone).date() for t in theirs["timestamp"]]
        bars = con.execute("select date, close from bars where symbol = ? order by date", [symbol]).fetchall()
        assert bars == [(d, c) for d, c in zip(days, closes, strict=True) if c is not None], symbol
