"""The Yahoo emulator: Yahoo's recorded structure, unmodified yfinance against it, deterministic data, fault
knobs, and its TLS edge: an HTTPS proxy for Yahoo's hosts that reads each ClientHello as Yahoo does."""

import datetime as dt
import json
import logging
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import requests
from curl_cffi import requests as curl_requests
from curl_cffi.requests.exceptions import ConnectionError as CurlConnectionError
from curl_cffi.requests.exceptions import RequestException
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import REPO_DIR, browser
from etl.emulator import Emulator, EmulatorConfig, actions, calendars, market, responses, routes, state, tls
from etl.emulator.instruments import instrument
from etl.emulator.tls import ClientHello, is_grease, parse_client_hello
from etl.source.session import YahooSession, new_session

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "data" / "yahoo-fixtures"
QUERY1 = "https://query1.finance.yahoo.com"
QUERY2 = "https://query2.finance.yahoo.com"
# Keys Yahoo sends only for a company that splits or pays, which the synthetic AAPL never does (and the
# emulator tells only in the chart and the quote: see test_emulator_events.py).
DIVIDEND_KEYS = {
    "dividendDate",
    "dividendRate",
    "dividendYield",
    "exDividendDate",
    "fiveYearAvgDividendYield",
    "lastDividendValue",
    "lastDividendDate",
    "lastSplitFactor",
    "lastSplitDate",
}


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
        assert isinstance(ours, (int, float)) and not isinstance(ours, bool), (
            f"{path}: {ours!r} is not a number"
        )
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


def in_new_process(emu, code: str, cache_dir: Path) -> dict:
    """Run `code` with unmodified yfinance in a process of its own, as a user's job starts: no cookie, crumb
    or time zone in memory, its sqlite caches under cache_dir. `session` is the job's session through the
    emulator; the code leaves its findings in `result`, which comes back through JSON."""
    prelude = (
        "import json\nfrom pathlib import Path\nimport yfinance as yf\n"
        "from etl.source.session import new_session\n"
        f"yf.set_tz_cache_location({str(cache_dir)!r})\n"
        f"session = new_session(proxy={emu.proxy_url!r}, ca_bundle=Path({str(emu.ca_path)!r}))[0]\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", prelude + code + "\nprint(json.dumps(result, default=str))"],
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    return json.loads(child.stdout.splitlines()[-1])


def job_session(emu) -> YahooSession:
    """The session the job gives yfinance, through the emulator's proxy and trusting its CA."""
    return new_session(proxy=emu.proxy_url, ca_bundle=emu.ca_path)[0]


def handshake(emu) -> tuple[curl_requests.Session, str]:
    """A browser holding Yahoo's cookie, and the crumb that goes with it."""
    session = browser(emu)
    session.get("https://fc.yahoo.com")
    return session, session.get(f"{QUERY1}/v1/test/getcrumb").text


def chart(emu, symbol: str, **params) -> curl_requests.Response:
    """Yahoo's chart of `symbol`, as a browser with no cookie asks for it."""
    with browser(emu) as session:
        return session.get(f"{QUERY2}/v8/finance/chart/{symbol}", params={"interval": "1d", **params})


def quotes(emu, symbols: str) -> dict:
    session, crumb = handshake(emu)
    return session.get(f"{QUERY1}/v7/finance/quote", params={"symbols": symbols, "crumb": crumb}).json()


# Yahoo's structure, held to its recorded answers


@pytest.mark.parametrize(
    ("fixture", "params"),
    [
        ("history_chart_AAPL.json", {"range": "6mo"}),
        ("history_chart_MSFT.json", {"range": "6mo"}),
        ("chart-AAPL-2020-01-01-to-2020-01-03.json", {"period1": 1577836800, "period2": 1578009600}),
    ],
)
def test_chart_has_yahoos_structure(emu, fixture, params):
    ours = chart(emu, "AAPL", **params).json()
    # The synthetic AAPL neither splits nor pays: events are held to Yahoo's in test_emulator_events.py.
    assert_same_shape(ours, recorded(fixture), skip={"events"})
    assert ours["chart"]["result"][0]["meta"]["range"] == params.get("range", "")


def test_empty_window_is_meta_without_timestamps_like_yahoos(emu):
    theirs = recorded("chart-AAPL-2025-02-01-to-2025-02-02-includePrePost-false-interval-1m.json")
    ours = chart(emu, "AAPL", period1=1738368000, period2=1738454400).json()  # a Saturday and a Sunday
    assert_same_shape(ours, theirs, skip={"previousClose", "scale"})  # sent with intraday data only
    result = ours["chart"]["result"][0]
    assert "timestamp" not in result and result["indicators"] == {"quote": [{}]}


@pytest.mark.parametrize(
    ("fixture", "symbols"),
    [
        ("quote_v7_AAPL.json", "AAPL"),
        ("quote_v7_AAPL-MSFT.json", "AAPL,MSFT"),
        ("quote-AAPL.json", "AAPL"),
        ("quote-AAPL-BABA.json", "AAPL,BABA"),
    ],
)
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


@pytest.mark.parametrize(
    "module",
    [
        "price",
        "summaryDetail",
        "quoteType",
        "financialData",
        "defaultKeyStatistics",
        "assetProfile",
    ],
)
def test_quote_summary_modules_have_yahoos_structure(emu, module):
    session, crumb = handshake(emu)
    ours = session.get(
        f"{QUERY2}/v10/finance/quoteSummary/AAPL",
        params={"modules": module, "crumb": crumb, "formatted": "false"},
    ).json()
    extended_hours = {
        f"{p}{k}"
        for p in ("preMarket", "postMarket")
        for k in ("Price", "Change", "ChangePercent", "Time", "Source")
    }
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
    assert answer.json() == {
        "chart": {
            "result": None,
            "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
        }
    }


def test_intraday_and_unknown_intervals_are_refused_with_yahoos_error(emu):
    for interval in ("1m", "7d"):
        answer = chart(emu, "AAPL", interval=interval)
        assert answer.status_code == 400
        assert answer.json()["chart"]["result"] is None
        assert answer.json()["chart"]["error"]["description"].startswith(
            f"Invalid input - interval={interval}"
        )


# Unmodified yfinance against the emulator


def test_yfinance_history_is_the_emulators_bars(emu, tmp_path):
    history = in_new_process(
        emu,
        'h = yf.Ticker("MSFT", session=session).history(period="1y", auto_adjust=False)\n'
        'result = {"days": [str(d.date()) for d in h.index], "close": h["Close"].tolist(),'
        ' "volume": h["Volume"].tolist()}',
        tmp_path / "yfinance",
    )
    assert emu.counts() == {
        "cookie": 1,
        "getcrumb": 1,
        "chart": 2,
    }  # the chart's first call looks up the time zone
    served = chart(emu, "MSFT", range="1y").json()["chart"]["result"][0]
    days = [str(dt.datetime.fromtimestamp(t, calendars.NEW_YORK).date()) for t in served["timestamp"]]
    assert 245 <= len(history["days"]) <= 256  # a year of NYSE sessions
    assert history["days"] == days
    assert history["close"] == served["indicators"]["quote"][0]["close"]
    assert history["volume"] == served["indicators"]["quote"][0]["volume"]


def test_yfinance_info_reads_quote_summary_quote_and_timeseries(emu, tmp_path):
    info = in_new_process(emu, 'result = yf.Ticker("NVDA", session=session).info', tmp_path / "yfinance")
    assert emu.counts() == {"cookie": 1, "getcrumb": 1, "quoteSummary": 1, "quote": 1, "timeseries": 1}
    assert info["longName"] == "NVDA Synthetic Inc."
    quote = quotes(emu, "NVDA")["quoteResponse"]["result"][0]
    assert info["marketCap"] == quote["marketCap"] > 0 and info["currentPrice"] == quote["regularMarketPrice"]


# One thread: yfinance's cookie-strategy switch after GONE's 404 races its other threads.
DOWNLOAD = (
    'frame = yf.download(["KO", "GONE", "PEP"], period="{period}", threads=False, group_by="ticker",'
    " session=session, progress=False, auto_adjust=False)\n"
    'result = {{s: int(frame[s]["Close"].notna().sum()) for s in ("KO", "GONE", "PEP")}}'
)


def test_yf_download_of_good_and_delisted_symbols_keeps_the_good_ones(emu, tmp_path):
    closes = in_new_process(emu, DOWNLOAD.format(period="1y"), tmp_path / "yfinance")
    assert closes["KO"] > 240 and closes["PEP"] > 240 and closes["GONE"] == 0
    assert "other" not in emu.counts()


def test_yfinance_falls_back_to_basic_cookies_when_there_is_no_consent_form(emu, tmp_path):
    # Without a cookie cache, yfinance's csrf strategy (tried after any HTTP error) must visit the consent
    # page. A cache location that cannot be a folder is yfinance's own way to run without one.
    (tmp_path / "a-file").write_text("")
    closes = in_new_process(emu, DOWNLOAD.format(period="1mo"), tmp_path / "a-file" / "yfinance")
    assert closes["KO"] > 15 and closes["PEP"] > 15
    assert emu.counts()["consent"] >= 1 and "other" not in emu.counts()


def test_yfinance_reuses_its_persisted_cookie_until_it_expires(emu, tmp_path):
    history = 'yf.Ticker("{}", session=session).history(period="5d")\nresult = {{}}'
    in_new_process(emu, history.format("KO"), tmp_path / "yfinance")
    emu.reset_counts()
    in_new_process(emu, history.format("PEP"), tmp_path / "yfinance")  # a new process, the same cache
    assert emu.counts() == {
        "getcrumb": 1,
        "chart": 2,
    }  # the A3 cookie's expiry was read and found a year away


# The cookie and crumb handshake


def test_cookie_is_yahoos_a1_a3_a1s_with_a_year_of_life(emu):
    session = job_session(emu)
    answer = session.get("https://fc.yahoo.com")
    cookies = {c.name: c for c in session.cookies.jar}
    assert sorted(cookies) == ["A1", "A1S", "A3"]
    a3 = cookies["A3"]
    assert a3.domain == ".yahoo.com" and a3.secure and a3.path == "/"
    assert 364.9 < (a3.expires - dt.datetime.now().timestamp()) / 86400 < 365.3
    assert a3.value.startswith("d=AQAB") and "&S=AQAAA" in a3.value
    assert answer.headers["X-Emulator"] == "synthetic"
    assert all("Max-Age=31557600" in line for line in answer.headers.get_list("Set-Cookie"))


def test_crumb_is_tied_to_the_cookie(emu):
    session, crumb = handshake(emu)
    other_session, other_crumb = handshake(emu)
    assert len(crumb) == 11 and crumb != other_crumb
    assert session.get(f"{QUERY1}/v1/test/getcrumb").text == crumb
    url = f"{QUERY1}/v7/finance/quote"
    assert session.get(url, params={"symbols": "AAPL", "crumb": crumb}).status_code == 200
    assert session.get(url, params={"symbols": "AAPL", "crumb": other_crumb}).status_code == 401
    assert session.get(url, params={"symbols": "AAPL"}).json() == {
        "finance": {"result": None, "error": {"code": "Unauthorized", "description": "Invalid Crumb"}}
    }
    with browser(emu) as cookieless:
        assert cookieless.get(url, params={"symbols": "AAPL", "crumb": crumb}).status_code == 401


def test_getcrumb_without_a_cookie_is_unauthorized(emu):
    with browser(emu) as session:
        answer = session.get(f"{QUERY1}/v1/test/getcrumb")
        forged = session.get(f"{QUERY1}/v1/test/getcrumb", cookies={"A3": "d=AQABBforged&S=AQAAAforged"})
    assert answer.status_code == 401
    assert answer.json()["finance"]["error"] == {"code": "Unauthorized", "description": "Invalid Cookie"}
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
        bars[k][-1] for k in ("open", "high", "low", "volume")
    ]
    assert quote["marketCap"] == int(quote["regularMarketPrice"] * quote["sharesOutstanding"])
    assert quote["longName"] == "NVDA Synthetic Inc."


def test_daily_bars_open_at_930_new_york_on_weekdays_only(emu):
    served = chart(emu, "JPM", range="2y").json()["chart"]["result"][0]
    opens = [dt.datetime.fromtimestamp(t, calendars.NEW_YORK) for t in served["timestamp"][:-1]]
    assert all(o.time() == dt.time(9, 30) and o.weekday() < 5 for o in opens)
    assert {dt.datetime.fromtimestamp(t, dt.UTC).hour for t in served["timestamp"][:-1]} == {13, 14}
    assert dt.date(2025, 12, 25) not in {o.date() for o in opens}  # NYSE holidays are closed


def test_a_bar_is_the_same_whatever_range_or_day_asks_for_it(emu):
    def bars(served: dict) -> dict:
        result = served["chart"]["result"][0]
        quote = result["indicators"]["quote"][0]
        return {
            t: tuple(quote[k][i] for k in ("open", "high", "low", "close", "volume"))
            for i, t in enumerate(result["timestamp"][:-1])
        }

    # A split changes every bar before it, as of its ex-date: a symbol that never splits.
    assert not actions.corporate_actions(7, "KO").splits
    month, year = bars(chart(emu, "KO", range="1mo").json()), bars(chart(emu, "KO", range="1y").json())
    assert month and all(year[t] == bar for t, bar in month.items())
    now = dt.datetime.now(calendars.NEW_YORK)
    later = bars(responses.chart_body(7, "KO", 0.0, {"range": "1y"}, now + dt.timedelta(days=40)))
    assert all(later[t] == bar for t, bar in year.items() if t in later) and len(set(year) & set(later)) > 200


def test_weekly_and_monthly_bars_are_made_of_the_daily_ones(emu):
    daily = chart(emu, "KO", range="3mo").json()["chart"]["result"][0]
    weekly = chart(emu, "KO", range="3mo", interval="1wk").json()["chart"]["result"][0]
    monthly = chart(emu, "KO", range="3mo", interval="1mo").json()["chart"]["result"][0]
    day_bars, week_bars = daily["indicators"]["quote"][0], weekly["indicators"]["quote"][0]
    assert weekly["meta"]["dataGranularity"] == "1wk" and 12 <= len(weekly["timestamp"]) <= 15
    assert week_bars["open"][0] == day_bars["open"][0] and week_bars["close"][-1] == day_bars["close"][-1]
    assert (
        sum(week_bars["volume"])
        == sum(day_bars["volume"])
        == sum(monthly["indicators"]["quote"][0]["volume"])
    )
    assert max(week_bars["high"]) == max(day_bars["high"]) and min(week_bars["low"]) == min(day_bars["low"])


@settings(max_examples=25, deadline=None)
@given(
    symbol=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ.-", min_size=1, max_size=6),
    seed=st.integers(0, 2**16),
    year=st.integers(1990, 2030),
)
def test_every_bar_is_a_consistent_candle(symbol, seed, year):
    """Any symbol of letters, dots and dashes: a stock, an ETF, a fund or a coin (`AB-USD`), each on its own
    calendar; none of them is a kind Yahoo sends volume 0 for."""
    bars = market.year_bars(seed, symbol, 0.0, year)
    assert len(bars) == len(calendars.sessions(year, instrument(symbol).calendar)[0])
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
    with caplog.at_level(logging.WARNING, logger=routes.__name__), browser(emu) as session:
        assert session.get(f"{QUERY1}/nowhere").status_code == 404
    assert "no route for GET /nowhere (host query1.finance.yahoo.com)" in caplog.text
    assert emu.counts() == {"cookie": 1, "getcrumb": 1, "chart": 4, "other": 1}
    assert emu.chart_requests() == {"A": 1, "B": 1, "C": 1, "GONE": 1}
    # A tunnel a host and a session: fc and query1 for the handshake, then one per chart and /nowhere.
    assert emu.tls_stats()["connections"] == 7 and emu.tls_stats()["blocked_connections"] == 0
    assert requests.get(f"{emu.proxy_url}/__emulator/stats").json() == {
        "total": 7,
        "by_endpoint": emu.counts(),
        "charts_by_symbol": emu.chart_requests(),
        "faults": {},
        "tls": emu.tls_stats(),
    }
    assert requests.post(f"{emu.proxy_url}/__emulator/reset").json()["total"] == 0
    assert (
        emu.total_requests() == 0
        and emu.chart_requests() == {}
        and emu.tls_stats()
        == {
            "connections": 0,
            "blocked_connections": 0,
            "fingerprints": {},
        }
    )


def test_error_rate_fails_data_requests_reproducibly():
    with Emulator(EmulatorConfig(error_rate=1.0)) as emu:
        session, crumb = handshake(emu)  # the handshake is not a data request
        answer = chart(emu, "AAPL")
        assert (
            session.get(f"{QUERY1}/v7/finance/quote", params={"symbols": "A", "crumb": crumb}).status_code
            == 500
        )
    assert answer.status_code == 500 and answer.json()["chart"]["error"]["code"] == "Internal Server Error"

    def failures(seed: int) -> list[int]:
        with Emulator(EmulatorConfig(seed=seed, error_rate=0.3)) as emu:
            return [chart(emu, "AAPL").status_code for _ in range(40)]

    assert failures(3) == failures(3) and 0 < failures(3).count(500) < 40


def test_rate_limit_answers_429_beyond_the_limit_in_a_trailing_second(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(state, "_clock", lambda: clock[0])
    with Emulator(EmulatorConfig(rate_limit_rps=5)) as emu:
        statuses = [chart(emu, "AAPL").status_code for _ in range(7)]
        limited = chart(emu, "AAPL")
        clock[0] += 1.5
        again = chart(emu, "AAPL").status_code
    assert statuses == [200] * 5 + [429] * 2 and again == 200
    assert limited.text.startswith("Too Many Requests") and limited.headers["Content-Type"].startswith(
        "text/plain"
    )


# The proxy in front of Yahoo's hosts


def test_plain_http_to_the_proxy_serves_the_control_paths_and_no_data(emu):
    answer = requests.get(f"{emu.proxy_url}/v8/finance/chart/AAPL")
    assert answer.status_code == 400 and "CONNECT" in answer.text
    assert requests.get(f"{emu.proxy_url}/__emulator/stats").status_code == 200
    assert emu.total_requests() == 0


def test_the_proxy_tunnels_to_yahoos_hosts_on_443_only(emu):
    with browser(emu) as session:
        for url in ("https://example.com/", "https://query1.finance.yahoo.com:8443/"):
            with pytest.raises(CurlConnectionError, match="CONNECT tunnel failed, response 403"):
                session.get(url)
        assert session.get("https://guce.yahoo.com/consent").status_code == 404  # any Yahoo host is Yahoo
    assert emu.tls_stats()["connections"] == 1 and emu.counts() == {"consent": 1}


# The ClientHello, read as the emulator reads it: hellos of real clients, captured on a loopback socket


@contextmanager
def accepted(connect) -> Iterator[socket.socket]:
    """The server's end of a loopback connection that `connect(port)` opens in a thread, hung up on at the
    end."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)
        client = threading.Thread(target=connect, args=(listener.getsockname()[1],), daemon=True)
        client.start()
        conn, _ = listener.accept()
        with conn:
            yield conn
        client.join(10)


def first_record(conn: socket.socket) -> bytes:
    conn.settimeout(10)
    header = recv_exactly(conn, 5)
    return header + recv_exactly(conn, int.from_bytes(header[3:5], "big"))


def hello_of(connect) -> bytes:
    """The first TLS record a client sends, its ClientHello (the handshake then fails: nothing answers it)."""
    with accepted(connect) as conn:
        return first_record(conn)


def recv_exactly(conn: socket.socket, n_bytes: int) -> bytes:
    data = b""
    while len(data) < n_bytes and (chunk := conn.recv(n_bytes - len(data))):
        data += chunk
    return data


def from_chrome(port: int) -> None:
    try:
        curl_requests.get(f"https://127.0.0.1:{port}/", impersonate="chrome", timeout=10)
    except RequestException:
        pass  # the socket hangs up after the hello


def from_the_job_session(port: int) -> None:
    try:
        new_session()[0].get(f"https://127.0.0.1:{port}/", timeout=10)
    except RequestException:
        pass


def from_python_ssl(port: int) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            ssl.create_default_context().wrap_socket(sock, server_hostname="query1.finance.yahoo.com")
    except OSError:  # ssl.SSLError included
        pass


def from_requests(port: int) -> None:
    try:
        requests.get(f"https://127.0.0.1:{port}/", timeout=10)
    except requests.RequestException:
        pass


@pytest.mark.parametrize("connect", [from_chrome, from_the_job_session])
def test_chromes_hello_has_grease_and_h2_and_is_a_browsers(connect):
    hello = parse_client_hello(hello_of(connect))
    assert hello is not None and hello.is_browser
    assert any(map(is_grease, hello.ciphers)) and any(map(is_grease, hello.extensions))
    assert hello.alpn == ("h2", "http/1.1")
    assert 0x1301 in hello.ciphers and 16 in hello.extensions  # TLS_AES_128_GCM_SHA256; ALPN


@pytest.mark.parametrize(("connect", "alpn"), [(from_python_ssl, ()), (from_requests, ("http/1.1",))])
def test_openssls_default_hello_has_no_grease_nor_h2_and_is_a_scripts(connect, alpn):
    hello = parse_client_hello(hello_of(connect))
    assert hello is not None and not hello.is_browser
    assert not any(map(is_grease, hello.ciphers)) and not any(map(is_grease, hello.extensions))
    assert hello.alpn == alpn and 0x1301 in hello.ciphers


def test_the_fingerprint_is_chromes_whatever_its_grease_and_extension_order():
    chrome = [parse_client_hello(hello_of(from_chrome)) for _ in range(3)]
    assert len({hello.fingerprint for hello in chrome}) == 1
    assert chrome[0].fingerprint != parse_client_hello(hello_of(from_python_ssl)).fingerprint


def test_peeking_at_the_hello_leaves_it_for_the_handshake():
    with accepted(from_chrome) as conn:
        peeked = tls.peek_client_hello(conn)
        record = first_record(conn)
    assert peeked is not None and peeked == parse_client_hello(record)


@pytest.mark.parametrize(
    "record",
    [
        b"",
        b"GET / HTTP/1.1\r\nHost: query1.finance.yahoo.com\r\n\r\n",
        b"\x15\x03\x03\x00\x02\x02\x28",  # an alert record
        b"\x16\x03\x03\x00\x04\x02\x00\x00\x00",  # a handshake record, but a ServerHello
    ],
    ids=["empty", "http", "alert", "server-hello"],
)
def test_bytes_that_are_no_client_hello_are_none(record):
    assert parse_client_hello(record) is None


def test_a_hello_cut_short_before_its_cipher_suites_is_none():
    record = hello_of(from_chrome)
    assert parse_client_hello(record) is not None and parse_client_hello(record[:60]) is None


@pytest.mark.parametrize(
    ("ciphers", "extensions", "alpn", "is_browser"),
    [
        ((0x2A2A, 0x1301), (0xEAEA, 16), ("h2", "http/1.1"), True),
        ((0x1301,), (0xEAEA, 16), ("h2", "http/1.1"), False),  # no GREASE cipher
        ((0x2A2A, 0x1301), (16,), ("h2", "http/1.1"), False),  # no GREASE extension
        ((0x2A2A, 0x1301), (0xEAEA, 16), ("http/1.1",), False),  # no h2
    ],
)
def test_a_browser_has_grease_in_ciphers_and_extensions_and_offers_h2(ciphers, extensions, alpn, is_browser):
    assert ClientHello(ciphers, extensions, alpn).is_browser is is_browser


@pytest.mark.parametrize(
    ("value", "grease"),
    [(0x0A0A, True), (0xFAFA, True), (0x1A1A, True), (0x0A1A, False), (0x1301, False), (0xCACB, False)],
)
def test_grease_is_rfc_8701s_reserved_values(value, grease):
    assert is_grease(value) is grease
