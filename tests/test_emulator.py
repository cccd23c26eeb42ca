"""The emulator holds to Yahoo's recorded structure, serves unmodified yfinance, and its knobs inject faults."""

import json

import pytest
import requests
import yfinance as yf

from conftest import SHARED_DATA_DIR
from etl.emulator import Emulator, EmulatorConfig
from etl.source.session import new_session

FIXTURES = SHARED_DATA_DIR / "yahoo-fixtures"


def recorded(name: str) -> dict:
    """A recorded Yahoo body: raw (yfinance-rs) or inside a request/response record (node-yahoo-finance2)."""
    if not FIXTURES.is_dir():
        pytest.skip(f"recorded Yahoo responses not found at {FIXTURES} (../shared is absent)")
    body = json.loads(next(FIXTURES.rglob(name)).read_text())
    return body["response"]["bodyJson"] if "response" in body else body


def assert_same_shape(ours, theirs, path="$"):
    """Every key Yahoo sends is there, with the same JSON type, all the way down (lists: first item)."""
    if isinstance(theirs, bool) or theirs is None:
        assert ours is None or isinstance(ours, type(theirs)) or theirs is None, path
    elif isinstance(theirs, (int, float)):
        assert isinstance(ours, (int, float)) and not isinstance(ours, bool), f"{path}: {ours!r}"
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict), path
        for key, value in theirs.items():
            assert key in ours, f"{path}.{key} missing"
            assert_same_shape(ours[key], value, f"{path}.{key}")
    elif isinstance(theirs, list):
        assert isinstance(ours, list), path
        if theirs and ours:
            assert_same_shape(ours[0], theirs[0], f"{path}[0]")
    else:
        assert isinstance(ours, type(theirs)), f"{path}: {ours!r}"


def handshake(emu) -> tuple[requests.Session, str]:
    session, _ = new_session(emu.url)
    session.get("https://fc.yahoo.com")
    crumb = session.get("https://query1.finance.yahoo.com/v1/test/getcrumb").text
    return session, crumb


@pytest.fixture
def emu():
    with Emulator(EmulatorConfig(delisted=frozenset({"GONE"}))) as emulator:
        yield emulator


def test_chart_has_yahoos_structure(emu):
    theirs = recorded("history_chart_AAPL.json")
    ours = requests.get(f"{emu.url}/v8/finance/chart/AAPL", params={"range": "6mo", "interval": "1d"}).json()
    result = theirs["chart"]["result"][0]
    without_events = {**theirs, "chart": {**theirs["chart"], "result": [{k: v for k, v in result.items() if k != "events"}]}}
    assert_same_shape(ours, without_events)
    assert ours["chart"]["result"][0]["meta"].keys() >= result["meta"].keys()


@pytest.mark.parametrize(("fixture", "symbols"), [("quote_v7_AAPL.json", "AAPL"), ("quote_v7_AAPL-MSFT.json", "AAPL,MSFT")])
def test_quote_has_yahoos_structure_for_the_fields_we_serve(emu, fixture, symbols):
    session, crumb = handshake(emu)
    ours = session.get("https://query1.finance.yahoo.com/v7/finance/quote", params={"symbols": symbols, "crumb": crumb}).json()
    theirs = recorded(fixture)
    served = ours["quoteResponse"]["result"][0].keys()
    trimmed = [{k: v for k, v in q.items() if k in served} for q in theirs["quoteResponse"]["result"]]
    assert len(trimmed[0]) >= 35
    assert_same_shape(ours, {"quoteResponse": {"result": trimmed, "error": None}})
    assert [q["symbol"] for q in ours["quoteResponse"]["result"]] == symbols.split(",")


def test_unknown_symbol_quote_is_an_empty_result_like_yahoos(emu):
    session, crumb = handshake(emu)
    ours = session.get("https://query1.finance.yahoo.com/v7/finance/quote", params={"symbols": "GONE", "crumb": crumb})
    assert ours.json() == recorded("quote_v7_GS2C.json")


def test_delisted_chart_is_yahoos_404(emu):
    answer = requests.get(f"{emu.url}/v8/finance/chart/GONE", params={"range": "1y", "interval": "1d"})
    assert answer.status_code == 404
    assert answer.json() == {"chart": {"result": None, "error": {
        "code": "Not Found", "description": "No data found, symbol may be delisted"}}}


@pytest.mark.parametrize("module", ["price", "summaryDetail", "quoteType"])
def test_quote_summary_modules_have_yahoos_envelope_and_types(emu, module):
    session, crumb = handshake(emu)
    ours = session.get(f"https://query2.finance.yahoo.com/v10/finance/quoteSummary/AAPL",
                       params={"modules": module, "crumb": crumb, "formatted": "false"}).json()
    theirs = recorded(f"quoteSummary-{module}-AAPL.json")
    served = ours["quoteSummary"]["result"][0][module].keys()
    trimmed = {k: v for k, v in theirs["quoteSummary"]["result"][0][module].items() if k in served}
    assert len(trimmed) >= 8
    assert_same_shape(ours, {"quoteSummary": {"result": [{module: trimmed}], "error": None}})


def test_quote_needs_the_crumb_of_its_cookie(emu):
    session, crumb = handshake(emu)
    url = "https://query1.finance.yahoo.com/v7/finance/quote"
    assert session.get(url, params={"symbols": "AAPL"}).status_code == 401
    assert session.get(url, params={"symbols": "AAPL", "crumb": "x" + crumb[1:]}).status_code == 401
    assert requests.get(f"{emu.url}/v7/finance/quote", params={"symbols": "AAPL", "crumb": crumb}).status_code == 401
    assert session.get(url, params={"symbols": "AAPL", "crumb": crumb}).status_code == 200
    assert session.get("https://query1.finance.yahoo.com/v1/test/getcrumb").text == crumb


def test_unmodified_yfinance_history_and_info(emu, tmp_path):
    yf.set_tz_cache_location(str(tmp_path))
    session, _ = new_session(emu.url)
    ticker = yf.Ticker("MSFT", session=session)
    history = ticker.history(period="1y", auto_adjust=False)
    chart = requests.get(f"{emu.url}/v8/finance/chart/MSFT", params={"range": "1y", "interval": "1d"}).json()
    closes = chart["chart"]["result"][0]["indicators"]["quote"][0]["close"]
    assert 245 <= len(history) <= 262
    assert history["Close"].round(4).tolist() == closes
    info = ticker.info
    assert info["longName"] == "MSFT Synthetic Inc." and info["marketCap"] > 0


def test_yf_download_survives_a_delisted_symbol(emu, tmp_path):
    yf.set_tz_cache_location(str(tmp_path))
    session, _ = new_session(emu.url)
    frame = yf.download(["KO", "GONE", "PEP"], period="1mo", threads=True, group_by="ticker",
                        session=session, progress=False, auto_adjust=False)
    assert frame["KO"]["Close"].notna().sum() > 15 and frame["PEP"]["Close"].notna().sum() > 15
    assert frame["GONE"]["Close"].notna().sum() == 0


def test_quote_agrees_with_the_chart(emu):
    session, crumb = handshake(emu)
    quote = session.get("https://query1.finance.yahoo.com/v7/finance/quote",
                        params={"symbols": "NVDA", "crumb": crumb}).json()["quoteResponse"]["result"][0]
    bars = requests.get(f"{emu.url}/v8/finance/chart/NVDA", params={"range": "5d", "interval": "1d"}).json()
    ohlcv = bars["chart"]["result"][0]["indicators"]["quote"][0]
    assert quote["regularMarketPrice"] == ohlcv["close"][-1]
    assert quote["regularMarketPreviousClose"] == ohlcv["close"][-2]
    assert (quote["regularMarketOpen"], quote["regularMarketVolume"]) == (ohlcv["open"][-1], ohlcv["volume"][-1])
    assert quote["marketCap"] == int(quote["regularMarketPrice"] * quote["sharesOutstanding"])


def test_a_bar_is_the_same_whatever_range_asks_for_it(emu):
    def bars(period):
        result = requests.get(f"{emu.url}/v8/finance/chart/JPM", params={"range": period, "interval": "1d"}).json()
        result = result["chart"]["result"][0]
        return dict(zip(result["timestamp"][:-1], result["indicators"]["quote"][0]["close"][:-1]))

    month, year = bars("1mo"), bars("1y")
    assert month and all(year[t] == close for t, close in month.items())
    assert all(a < b for a, b in zip(list(year), list(year)[1:]))


def test_counts_by_endpoint_match_what_was_sent(emu):
    handshake(emu)
    for symbol in ("A", "B", "C"):
        requests.get(f"{emu.url}/v8/finance/chart/{symbol}")
    requests.get(f"{emu.url}/nowhere")
    assert emu.counts() == {"cookie": 1, "getcrumb": 1, "chart": 3, "other": 1}
    stats = requests.get(f"{emu.url}/__emulator/stats").json()
    assert stats == {"total": 6, "by_endpoint": emu.counts()}
    requests.post(f"{emu.url}/__emulator/reset")
    assert emu.total_requests() == 0


def test_error_rate_answers_500():
    with Emulator(EmulatorConfig(error_rate=1.0)) as emu:
        answer = requests.get(f"{emu.url}/v8/finance/chart/AAPL")
    assert answer.status_code == 500 and answer.json()["chart"]["error"]["code"] == "Internal Server Error"


def test_rate_limit_answers_429_beyond_the_limit():
    with Emulator(EmulatorConfig(rate_limit_rps=5)) as emu:
        session = requests.Session()
        statuses = [session.get(f"{emu.url}/v8/finance/chart/AAPL").status_code for _ in range(8)]
    assert statuses[:5] == [200] * 5 and 429 in statuses[5:]


def test_null_fraction_sends_whole_bars_as_nulls():
    with Emulator(EmulatorConfig(null_fraction=0.2)) as emu:
        chart = requests.get(f"{emu.url}/v8/finance/chart/AAPL", params={"range": "1y"}).json()
    quote = chart["chart"]["result"][0]["indicators"]["quote"][0]
    missing = [i for i, close in enumerate(quote["close"]) if close is None]
    assert 20 < len(missing) < 90
    assert all(quote[k][i] is None for i in missing for k in ("open", "high", "low", "volume"))


def test_cookie_is_yahoos_a3_with_a_year_of_life(emu):
    session, _ = new_session(emu.url)
    answer = session.get("https://fc.yahoo.com")
    assert answer.headers["X-Emulator"] == "synthetic"
    a3 = next(c for c in session.cookies if c.name == "A3")
    assert a3.domain == ".yahoo.com" and a3.secure and a3.expires is not None
    assert "Max-Age=31557600" in answer.headers["Set-Cookie"]
