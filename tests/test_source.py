"""The yfinance adapter's contract against the emulator, and the routing, counting session under it."""

import time

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.emulator import Emulator, EmulatorConfig
from etl.source.session import RetryPolicy, current_batch, new_session, to_routed_url
from etl.errors import UniverseError
from etl.source.yahoo import YahooSource
from etl.universe import load_universe


@pytest.mark.parametrize(
    ("url", "base", "routed"),
    [
        ("https://query1.finance.yahoo.com/v7/finance/quote?symbols=A,B", "http://127.0.0.1:9",
         "http://127.0.0.1:9/v7/finance/quote?symbols=A,B"),
        ("https://fc.yahoo.com", "http://127.0.0.1:9", "http://127.0.0.1:9"),
        ("https://query2.finance.yahoo.com/v8/finance/chart/AAPL", "http://h:1/yahoo/",
         "http://h:1/yahoo/v8/finance/chart/AAPL"),
    ],
)
def test_every_host_is_routed_with_path_and_query_kept(url, base, routed):
    assert to_routed_url(url, base) == routed


@pytest.fixture
def source(emulator):
    return YahooSource(base_url=emulator.url, history="1y", concurrency=2, timeout_s=10)


def test_one_quote_request_answers_a_whole_batch(emulator, source):
    answer = source.fetch_quotes(1, ("AAPL", "MSFT", "DLSTD"))
    assert not answer.is_error
    assert [q["symbol"] for q in answer.payload] == ["AAPL", "MSFT"]
    assert emulator.counts()["quote"] == 1


def test_chart_answer_is_yahoos_result(source):
    answer = source.fetch_chart(1, "BRK-B")
    assert not answer.is_error
    assert answer.payload["meta"]["symbol"] == "BRK-B"
    assert len(answer.payload["timestamp"]) == len(answer.payload["indicators"]["quote"][0]["close"]) > 200


def test_delisted_symbol_is_no_data_with_yahoos_reason(source):
    answer = source.fetch_chart(1, "DLSTD")
    assert answer.error_type == "NoData"
    assert "delisted" in answer.message


def test_requests_are_counted_per_batch_and_match_the_emulator(emulator, source):
    source.fetch_quotes(1, ("AAPL",))
    source.fetch_chart(2, "AAPL")
    source.fetch_chart(2, "MSFT")
    assert source.counter.for_batch(2) == 2
    assert source.counter.total == emulator.total_requests()


def test_the_handshake_cookie_is_yahoos_and_expires_in_a_year(emulator, source):
    assert not source.fetch_quotes(1, ("AAPL",)).is_error
    cookies = {c.name: c for c in source.session.cookies}
    assert cookies["A3"].domain == ".yahoo.com" and cookies["A3"].secure
    days_left = (cookies["A3"].expires - time.time()) / 86400
    assert 364 < days_left < 366
    assert emulator.counts()["getcrumb"] >= 1


def test_unreachable_source_is_an_error_answer_not_an_exception():
    source = YahooSource(base_url="http://127.0.0.1:9", history="1y", concurrency=1, timeout_s=2)
    answer = source.fetch_chart(1, "AAPL")
    assert answer.is_error and answer.error_type


def test_counter_attributes_requests_to_the_batch_being_fetched():
    session, counter = new_session("http://127.0.0.1:9", retry=RetryPolicy(attempts=3, base_s=0.001))
    token = current_batch.set(7)
    with pytest.raises(requests.ConnectionError):
        session.get("https://query1.finance.yahoo.com/v1/test/getcrumb", timeout=2)
    current_batch.reset(token)
    assert counter.for_batch(7) == 3 and counter.total == 3  # every attempt is a request


FAST_RETRY = RetryPolicy(attempts=12, base_s=0.001, max_s=0.01)


def test_passing_server_errors_are_retried_and_every_attempt_counted():
    with Emulator(EmulatorConfig(error_rate=0.5, seed=3)) as emu:
        session, counter = new_session(emu.url, retry=FAST_RETRY)
        statuses = [session.get(f"https://query2.finance.yahoo.com/v8/finance/chart/S{i}").status_code
                    for i in range(20)]
        assert statuses == [200] * 20
        assert counter.total == emu.total_requests() > 20


def test_a_hung_request_times_out_and_is_retried_with_every_attempt_counted():
    with Emulator(EmulatorConfig(stall_rate=0.5, stall_s=1.0, seed=5)) as emu:
        session, counter = new_session(emu.url, retry=FAST_RETRY)
        statuses = [session.get(f"https://query2.finance.yahoo.com/v8/finance/chart/S{i}", timeout=0.2).status_code
                    for i in range(6)]
        assert statuses == [200] * 6
        assert counter.total == emu.total_requests() > 6


def test_the_last_answer_is_returned_when_retries_run_out():
    with Emulator(EmulatorConfig(error_rate=1.0)) as emu:
        session, counter = new_session(emu.url, retry=RetryPolicy(attempts=3, base_s=0.001))
        assert session.get("https://query2.finance.yahoo.com/v8/finance/chart/AAPL").status_code == 500
        assert counter.total == emu.total_requests() == 3


def test_not_found_is_an_answer_not_retried(emulator):
    session, counter = new_session(emulator.url, retry=FAST_RETRY)
    assert session.get("https://query2.finance.yahoo.com/v8/finance/chart/DLSTD").status_code == 404
    assert counter.total == 1


@pytest.mark.parametrize(("attempt", "retry_after", "low", "high"),
                         [(1, None, 0.125, 0.25), (3, None, 0.5, 1.0), (10, None, 4.0, 8.0), (1, "3", 3, 3), (1, "60", 8, 8)])
def test_backoff_doubles_with_jitter_and_honours_retry_after(attempt, retry_after, low, high):
    assert low <= RetryPolicy().delay_s(attempt, retry_after) <= high


NASTY = st.text(alphabet=st.sampled_from(list("AZaz09.-^=/?#%;:' \\\"\r\n\x00АÉ_&+")), min_size=1, max_size=18)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(NASTY, st.sampled_from(["AAPL/../../admin?", "AAPL#x", "BRK.B", "^GSPC", "EURUSD=X", "%2e%2e",
                                               ".", "..", "-", "^", "A."])))
def test_any_string_is_refused_or_fetched_as_exactly_that_symbol(emulator, source, tmp_path_factory, text):
    path = tmp_path_factory.mktemp("u") / "u.txt"
    path.write_bytes(text.encode("utf-8", "surrogatepass") + b"\n")
    try:
        symbols = load_universe(path)
    except UniverseError:
        return
    for symbol in symbols:
        answer = source.fetch_chart(1, symbol)
        assert not answer.is_error, (symbol, answer)
        assert answer.payload["meta"]["symbol"] == symbol  # the emulator saw /v8/finance/chart/<symbol>
