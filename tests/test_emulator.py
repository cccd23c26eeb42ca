"""The Yahoo emulator: Yahoo's recorded structure, unmodified yfinance against it, deterministic data, fault knobs."""

import datetime as dt
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import requests
import yfinance as yf
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.emulator import Emulator, EmulatorConfig, market, responses, server
from etl.source.session import new_session

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "data" / "yahoo-fixtures"
QUERY1 = "https://query1.finance.yahoo.com"
QUERY2 = "https://query2.finance.yahoo.com"
# Keys Yahoo sends only for what the synthetic market never has: dividends, splits, a pre-market session.
DIVIDEND_KEYS = {"dividendDate", "dividendRate", "dividendYield", "exDividendDate", "fiveYearAvgDividendYield",
                 "lastDividendValue", "lastDividendDate", "lastSplitFactor", "lastSplitDate"}


def recorded(name: str) -> dict:
    """A recorded Yahoo body: raw (yfinance-rs) or inside a request/response record (node-yahoo-finance2)."""
    if not FIXTURES.is_dir():
        pytest.skip(f"recorded Yahoo responses not found at {FIXTURES}: ../shared/data is absent")
    body = json.loads(next(FIXTURES.rglob(name)).read_text())
    return body["response"]["bodyJson"] if "response" in body else body


def assert_same_shape(ours, theirs, path: str = "$", skip: set[str] = frozenset()) -> None:
    """Every key Yahoo sends is there with the same JSON type, all the way down (a list: its first item).

    A null in Yahoo's answer says the key may be null, so any value matches it; ints and floats are one
    JSON number (Yahoo sends 241 for a price of 241.0).
    """
    if theirs is None:
        return
    if isinstance(theirs, bool) or isinstance(theirs, str):
        assert type(ours) is type(theirs), f"{path}: {ours!r} is not like {theirs!r}"
    elif isinstance(theirs, (int, float)):
        assert isinstance(ours, (int, float)) and not isinstance(ours, bool), f"{path}: {ours!r} is not a number"
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict), f"{path}: {ours!r} is not an object"
        for key, value in theirs.items():
            if key not in skip:
                assert key in ours, f"{path}.{key} missing"
                assert_same_shape(ours[key], value, f"{path}.{key}", skip)
    else:
        assert isinstance(ours, list) and (ours or not theirs), f"{path}: {ours!r} is not a list like Yahoo's"
        if theirs:
            assert_same_shape(ours[0], theirs[0], f"{path}[0]", skip)


@pytest.fixture
def emu():
    with Emulator(EmulatorConfig(delisted=frozenset({"GONE"}))) as emulator:
        yield emulator


@pytest.fixture
def fresh_yfinance(tmp_path, monkeypatch):
    """yfinance as a new process finds it: empty cookie and time-zone caches of its own, no YfData singleton."""
    original = yf.cache._TzDBManager.get_location()
    # yfinance read XDG_CACHE_HOME once, at import: this covers subprocesses, forget_yfinance this one.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(yf.base, "_tz_info_fetch_ctr", 0)
    forget_yfinance(tmp_path / "yfinance")
    yield tmp_path / "yfinance"
    forget_yfinance(Path(original))


def forget_yfinance(cache_dir: Path) -> None:
    """Point yfinance's sqlite caches at `cache_dir` and drop every cookie, crumb and cache it holds in memory."""
    yf.set_tz_cache_location(str(cache_dir))
    yf.cache._TzCacheManager._tz_cache = None
    yf.cache._CookieCacheManager._Cookie_cache = None
    yf.cache._ISINCacheManager._isin_cache = None
    yf.data.SingletonMeta._instances.pop(yf.data.YfData, None)


def handshake(emu) -> tuple[requests.Session, str]:
    session, _ = new_session(emu.url)
    session.get("https://fc.yahoo.com")
    return session, session.get(f"{QUERY1}/v1/test/getcrumb").text


def chart(emu, symbol: str, **params) -> requests.Response:
    return requests.get(f"{emu.url}/v8/finance/chart/{symbol}", params={"interval": "1d", **params})


def quotes(emu, symbols: str) -> dict:
    session, crumb = handshake(emu)
    return session.get(f"{QUERY1}/v7/finance/quote", params={"symbols": symbols, "crumb": crumb}).json()


# Yahoo's structure, held to its recorded answers


@pytest.mark.parametrize(("fixture", "params"), [
    ("history_chart_AAPL.json", {"range": "6mo"}),
    ("history_chart_MSFT.json", {"range": "6mo"}),
    ("chart-AAPL-2020-01-01-to-2020-01-03.json", {"period1": 1577836800, "period2": 1578009600}),
])
def test_chart_has_yahoos_structure(emu, fixture, params):
    ours = chart(emu, "AAPL", **params).json()
    assert_same_shape(ours, recorded(fixture), skip={"events"})  # no dividends or splits in the synthetic market
    assert ours["chart"]["result"][0]["meta"]["range"] == params.get("range", "")


def test_empty_window_is_meta_without_timestamps_like_yahoos(emu):
    theirs = recorded("chart-AAPL-2025-02-01-to-2025-02-02-includePrePost-false-interval-1m.json")
    ours = chart(emu, "AAPL", period1=1738368000, period2=1738454400).json()  # a Saturday and a Sunday
    assert_same_shape(ours, theirs, skip={"previousClose", "scale"})  # sent with intraday data only
    result = ours["chart"]["result"][0]
    assert "timestamp" not in result and result["indicators"] == {"quote": [{}]}


@pytest.mark.parametrize(("fixture", "symbols"), [
    ("quote_v7_AAPL.json", "AAPL"), ("quote_v7_AAPL-MSFT.json", "AAPL,MSFT"), ("quote-AAPL.json", "AAPL"),
    ("quote-AAPL-BABA.json", "AAPL,BABA"),
])
def test_quote_has_yahoos_structure(emu, fixture, symbols):
    ours = quotes(emu, symbols)
    live = ours["quoteResponse"]["result"][0]["marketState"] == "REGULAR"
    post_market = {"postMarketPrice", "postMarketChange", "postMarketChangePercent", "postMarketTime"}
    assert_same_shape(ours, recorded(fixture), skip=DIVIDEND_KEYS | (post_market if live else set()))
    assert [q["symbol"] for q in ours["quoteResponse"]["result"]] == symbols.split(",")


def test_unknown_and_delisted_symbols_are_left_out_of_quotes_like_yahoo_does(emu):
    assert quotes(emu, "GONE") == recorded("quote_v7_GS2C.json") == recorded("quoteCombine-NONEXIST.json")
    theirs = recorded("quoteCombine-AAPL-NONEXIST.json")["quoteResponse"]["result"]
    ours = quotes(emu, "AAPL,GONE,NOT VALID")["quoteResponse"]["result"]
    assert [q["symbol"] for q in ours] == [q["symbol"] for q in theirs] == ["AAPL"]


@pytest.mark.parametrize("module", [
    "price", "summaryDetail", "quoteType", "financialData", "defaultKeyStatistics", "assetProfile",
])
def test_quote_summary_modules_have_yahoos_structure(emu, module):
    session, crumb = handshake(emu)
    ours = session.get(f"{QUERY2}/v10/finance/quoteSummary/AAPL",
                       params={"modules": module, "crumb": crumb, "formatted": "false"}).json()
    extended_hours = {f"{p}{k}" for p in ("preMarket", "postMarket")
                      for k in ("Price", "Change", "ChangePercent", "Time", "Source")}
    assert_same_shape(ours, recorded(f"quoteSummary-{module}-AAPL.json"), skip=DIVIDEND_KEYS | extended_hours)


def test_quote_summary_errors_are_yahoos(emu):
    session, crumb = handshake(emu)
    url = f"{QUERY2}/v10/finance/quoteSummary/"
    unknown = session.get(url + "GONE", params={"modules": "price", "crumb": crumb})
    assert unknown.status_code == 404
    assert_same_shape(unknown.json(), recorded("quoteSummary-assetProfile-QQQcomma-notfound.json"))
    assert unknown.json()["quoteSummary"]["error"]["description"] == "Quote not found for ticker symbol: GONE"
    no_module = session.get(url + "AAPL", params={"modules": "esgScores", "crumb": crumb})
    assert no_module.status_code == 404
    assert_same_shape(no_module.json(), recorded("quoteSummary-summaryDetail-WSKT.JK.json"))


def test_delisted_chart_is_yahoos_404(emu):
    answer = chart(emu, "GONE", range="1y")
    assert answer.status_code == 404
    assert answer.json() == {"chart": {"result": None, "error": {
        "code": "Not Found", "description": "No data found, symbol may be delisted"}}}


def test_intraday_and_unknown_intervals_are_refused_with_yahoos_error(emu):
    for interval in ("1m", "7d"):
        answer = requests.get(f"{emu.url}/v8/finance/chart/AAPL", params={"interval": interval})
        assert answer.status_code == 400
        assert answer.json()["chart"]["result"] is None
        assert answer.json()["chart"]["error"]["description"].startswith(f"Invalid input - interval={interval}")


# Unmodified yfinance against the emulator


def test_yfinance_history_is_the_emulators_bars(emu, fresh_yfinance):
    session, _ = new_session(emu.url)
    history = yf.Ticker("MSFT", session=session).history(period="1y", auto_adjust=False)
    assert emu.counts() == {"cookie": 1, "getcrumb": 1, "chart": 2}  # the chart's first call looks up the time zone
    served = chart(emu, "MSFT", range="1y").json()["chart"]["result"][0]
    days = [dt.datetime.fromtimestamp(t, market.NEW_YORK).date() for t in served["timestamp"]]
    assert 245 <= len(history) <= 256  # a year of NYSE sessions
    assert [d.date() for d in history.index] == days
    assert history["Close"].tolist() == served["indicators"]["quote"][0]["close"]
    assert history["Volume"].tolist() == served["indicators"]["quote"][0]["volume"]


def test_yfinance_info_reads_quote_summary_quote_and_timeseries(emu, fresh_yfinance):
    session, _ = new_session(emu.url)
    info = yf.Ticker("NVDA", session=session).info
    assert emu.counts() == {"cookie": 1, "getcrumb": 1, "quoteSummary": 1, "quote": 1, "timeseries": 1}
    assert info["longName"] == "NVDA Synthetic Inc."
    quote = quotes(emu, "NVDA")["quoteResponse"]["result"][0]
    assert info["marketCap"] == quote["marketCap"] > 0 and info["currentPrice"] == quote["regularMarketPrice"]


def test_yf_download_of_good_and_delisted_symbols_keeps_the_good_ones(emu, fresh_yfinance):
    session, _ = new_session(emu.url)
    # One thread: yfinance's cookie-strategy switch after GONE's 404 races its other threads.
    frame = yf.download(["KO", "GONE", "PEP"], period="1y", threads=False, group_by="ticker",
                        session=session, progress=False, auto_adjust=False)
    assert frame["KO"]["Close"].notna().sum() > 240 and frame["PEP"]["Close"].notna().sum() > 240
    assert frame["GONE"]["Close"].notna().sum() == 0
    assert "other" not in emu.counts()


def test_yfinance_falls_back_to_basic_cookies_when_there_is_no_consent_form(emu, fresh_yfinance):
    # Without a cookie cache, yfinance's csrf strategy (tried after any HTTP error) must visit the consent page.
    yf.cache._CookieCacheManager._Cookie_cache = yf.cache._CookieCacheDummy()
    session, _ = new_session(emu.url)
    frame = yf.download(["KO", "GONE", "PEP"], period="1mo", threads=False, group_by="ticker",
                        session=session, progress=False, auto_adjust=False)
    assert frame["KO"]["Close"].notna().sum() > 15 and frame["PEP"]["Close"].notna().sum() > 15
    assert emu.counts()["consent"] >= 1 and "other" not in emu.counts()


def test_yfinance_reuses_its_persisted_cookie_until_it_expires(emu, fresh_yfinance):
    yf.Ticker("KO", session=new_session(emu.url)[0]).history(period="5d")
    yf.data.SingletonMeta._instances.pop(yf.data.YfData)  # as a new process would start
    emu.reset_counts()
    yf.Ticker("PEP", session=new_session(emu.url)[0]).history(period="5d")
    assert emu.counts() == {"getcrumb": 1, "chart": 2}  # the A3 cookie's expiry was read and found a year away


# The cookie and crumb handshake


def test_cookie_is_yahoos_a1_a3_a1s_with_a_year_of_life(emu):
    session, _ = new_session(emu.url)
    answer = session.get("https://fc.yahoo.com")
    cookies = {c.name: c for c in session.cookies}
    assert sorted(cookies) == ["A1", "A1S", "A3"]
    a3 = cookies["A3"]
    assert a3.domain == ".yahoo.com" and a3.secure and a3.path == "/"
    assert 364.9 < (a3.expires - dt.datetime.now().timestamp()) / 86400 < 365.3
    assert a3.value.startswith("d=AQAB") and "&S=AQAAA" in a3.value
    assert answer.headers["X-Emulator"] == "synthetic" and "Max-Age=31557600" in answer.headers["Set-Cookie"]


def test_crumb_is_tied_to_the_cookie(emu):
    session, crumb = handshake(emu)
    other_session, other_crumb = handshake(emu)
    assert len(crumb) == 11 and crumb != other_crumb
    assert session.get(f"{QUERY1}/v1/test/getcrumb").text == crumb
    url = f"{QUERY1}/v7/finance/quote"
    assert session.get(url, params={"symbols": "AAPL", "crumb": crumb}).status_code == 200
    assert session.get(url, params={"symbols": "AAPL", "crumb": other_crumb}).status_code == 401
    assert session.get(url, params={"symbols": "AAPL"}).json() == {"finance": {"result": None, "error": {
        "code": "Unauthorized", "description": "Invalid Crumb"}}}
    assert requests.get(f"{emu.url}/v7/finance/quote", params={"symbols": "AAPL", "crumb": crumb}).status_code == 401


def test_getcrumb_without_a_cookie_is_unauthorized(emu):
    answer = requests.get(f"{emu.url}/v1/test/getcrumb")
    assert answer.status_code == 401
    assert answer.json()["finance"]["error"] == {"code": "Unauthorized", "description": "Invalid Cookie"}
    forged = requests.get(f"{emu.url}/v1/test/getcrumb", cookies={"A3": "d=AQABBforged&S=AQAAAforged"})
    assert forged.status_code == 401


# The synthetic market


def test_quote_agrees_with_the_chart(emu):
    before = chart(emu, "NVDA", range="5d").json()["chart"]["result"][0]
    quote = quotes(emu, "NVDA")["quoteResponse"]["result"][0]
    served = chart(emu, "NVDA", range="5d").json()["chart"]["result"][0]
    bars = served["indicators"]["quote"][0]
    # While the market is open the last trade's minute moves on, and may between two requests.
    assert quote["regularMarketTime"] in {before["timestamp"][-1], served["timestamp"][-1]}
    assert served["timestamp"][-1] == served["meta"]["regularMarketTime"]
    assert quote["regularMarketPrice"] == bars["close"][-1] == served["meta"]["regularMarketPrice"]
    assert quote["regularMarketPreviousClose"] == bars["close"][-2]
    assert [quote[f"regularMarket{k}"] for k in ("Open", "DayHigh", "DayLow", "Volume")] == [
        bars[k][-1] for k in ("open", "high", "low", "volume")]
    assert quote["marketCap"] == int(quote["regularMarketPrice"] * quote["sharesOutstanding"])
    assert quote["longName"] == "NVDA Synthetic Inc."


def test_daily_bars_open_at_930_new_york_on_weekdays_only(emu):
    served = chart(emu, "JPM", range="2y").json()["chart"]["result"][0]
    opens = [dt.datetime.fromtimestamp(t, market.NEW_YORK) for t in served["timestamp"][:-1]]
    assert all(o.time() == dt.time(9, 30) and o.weekday() < 5 for o in opens)
    assert {dt.datetime.fromtimestamp(t, dt.timezone.utc).hour for t in served["timestamp"][:-1]} == {13, 14}
    assert dt.date(2025, 12, 25) not in {o.date() for o in opens}  # NYSE holidays are closed


def test_a_bar_is_the_same_whatever_range_or_day_asks_for_it(emu):
    def bars(served: dict) -> dict:
        result = served["chart"]["result"][0]
        quote = result["indicators"]["quote"][0]
        return {t: tuple(quote[k][i] for k in ("open", "high", "low", "close", "volume"))
                for i, t in enumerate(result["timestamp"][:-1])}

    month, year = bars(chart(emu, "JPM", range="1mo").json()), bars(chart(emu, "JPM", range="1y").json())
    assert month and all(year[t] == bar for t, bar in month.items())
    now = dt.datetime.now(market.NEW_YORK)
    later = bars(responses.chart_body(7, "JPM", 0.0, {"range": "1y"}, now + dt.timedelta(days=40)))
    assert all(later[t] == bar for t, bar in year.items() if t in later) and len(set(year) & set(later)) > 200


def test_weekly_and_monthly_bars_are_made_of_the_daily_ones(emu):
    daily = chart(emu, "KO", range="3mo").json()["chart"]["result"][0]
    weekly = chart(emu, "KO", range="3mo", interval="1wk").json()["chart"]["result"][0]
    monthly = chart(emu, "KO", range="3mo", interval="1mo").json()["chart"]["result"][0]
    day_bars, week_bars = daily["indicators"]["quote"][0], weekly["indicators"]["quote"][0]
    assert weekly["meta"]["dataGranularity"] == "1wk" and 12 <= len(weekly["timestamp"]) <= 15
    assert week_bars["open"][0] == day_bars["open"][0] and week_bars["close"][-1] == day_bars["close"][-1]
    assert sum(week_bars["volume"]) == sum(day_bars["volume"]) == sum(monthly["indicators"]["quote"][0]["volume"])
    assert max(week_bars["high"]) == max(day_bars["high"]) and min(week_bars["low"]) == min(day_bars["low"])


@settings(max_examples=25, deadline=None)
@given(symbol=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ.-", min_size=1, max_size=6), seed=st.integers(0, 2**16),
       year=st.integers(1990, 2030))
def test_every_bar_is_a_consistent_candle(symbol, seed, year):
    bars = market.year_bars(seed, symbol, 0.0, year)
    assert 245 <= len(bars) <= 254
    assert np.all(bars.high >= np.maximum(bars.open, bars.close))
    assert np.all(bars.low <= np.minimum(bars.open, bars.close))
    assert np.all(bars.low > 0) and np.all(bars.volume == np.floor(bars.volume)) and np.all(bars.volume > 0)


def test_null_fraction_sends_whole_bars_as_nulls():
    with Emulator(EmulatorConfig(null_fraction=0.2)) as emu:
        result = chart(emu, "AAPL", range="1y").json()["chart"]["result"][0]
        price = quotes(emu, "AAPL")["quoteResponse"]["result"][0]["regularMarketPrice"]
    bars = result["indicators"]["quote"][0]
    missing = [i for i, close in enumerate(bars["close"]) if close is None]
    assert 20 < len(missing) < 90
    assert all(bars[k][i] is None for i in missing for k in ("open", "high", "low", "volume"))
    assert isinstance(price, float)  # a quote always has a price


# Knobs and counters


def test_counts_by_endpoint_are_what_was_sent(emu, caplog):
    handshake(emu)
    for symbol in ("A", "B", "C"):
        chart(emu, symbol)
    chart(emu, "GONE")
    with caplog.at_level(logging.WARNING, logger=server.__name__):
        assert requests.get(f"{emu.url}/nowhere").status_code == 404
    assert "no route for GET /nowhere" in caplog.text
    assert emu.counts() == {"cookie": 1, "getcrumb": 1, "chart": 4, "other": 1}
    assert requests.get(f"{emu.url}/__emulator/stats").json() == {"total": 7, "by_endpoint": emu.counts(), "faults": {}}
    assert requests.post(f"{emu.url}/__emulator/reset").json()["total"] == 0
    assert emu.total_requests() == 0


def test_error_rate_fails_data_requests_reproducibly():
    with Emulator(EmulatorConfig(error_rate=1.0)) as emu:
        session, crumb = handshake(emu)  # the handshake is not a data request
        answer = chart(emu, "AAPL")
        assert session.get(f"{QUERY1}/v7/finance/quote", params={"symbols": "A", "crumb": crumb}).status_code == 500
    assert answer.status_code == 500 and answer.json()["chart"]["error"]["code"] == "Internal Server Error"

    def failures(seed: int) -> list[int]:
        with Emulator(EmulatorConfig(seed=seed, error_rate=0.3)) as emu:
            return [chart(emu, "AAPL").status_code for _ in range(40)]

    assert failures(3) == failures(3) and 0 < failures(3).count(500) < 40


def test_rate_limit_answers_429_beyond_the_limit_in_a_trailing_second(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(server, "_clock", lambda: clock[0])
    with Emulator(EmulatorConfig(rate_limit_rps=5)) as emu:
        statuses = [chart(emu, "AAPL").status_code for _ in range(7)]
        limited = chart(emu, "AAPL")
        clock[0] += 1.5
        again = chart(emu, "AAPL").status_code
    assert statuses == [200] * 5 + [429] * 2 and again == 200
    assert limited.text.startswith("Too Many Requests") and limited.headers["Content-Type"].startswith("text/plain")
