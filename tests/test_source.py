"""The yfinance adapter's contract against the emulator, and the retrying, counting session under it.

Every request goes to Yahoo's own URLs through the emulator's proxy, over TLS that it judges as Yahoo does.
"""

import ast
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import requests
import trustme
from curl_cffi.requests.exceptions import CertificateVerifyError, ConnectionError, SSLError, Timeout
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import browser
from etl.emulator import Emulator, EmulatorConfig
from etl.errors import UniverseError
from etl.source.session import RetryPolicy, current_batch, new_session
from etl.source.yahoo import YahooSource
from etl.universe import load_universe

QUERY1 = "https://query1.finance.yahoo.com"
QUERY2 = "https://query2.finance.yahoo.com"
FAST_RETRY = RetryPolicy(attempts=12, base_s=0.001, max_s=0.01)


@dataclass(frozen=True)
class WatchedRetry(RetryPolicy):
    """The job's retry policy, noting each wait the session asks it for (and waiting none): its retries."""

    waits: list[int] = field(default_factory=list, compare=False)

    def delay_s(self, attempt: int, retry_after: str | None) -> float:
        self.waits.append(attempt)
        return 0.0


@pytest.fixture
def source(emulator):
    source = YahooSource(proxy=emulator.proxy_url, ca_bundle=emulator.ca_path, history="1y", timeout_s=10)
    yield source
    source.close()


def job_session(emu, retry: RetryPolicy = FAST_RETRY):
    """The job's session and its counter, through the emulator's proxy and trusting its CA."""
    return new_session(proxy=emu.proxy_url, ca_bundle=emu.ca_path, retry=retry)


def answered(session) -> None:
    """A first answer from Yahoo (its cookie, never a fault): from now on the session retries what fails."""
    assert session.get("https://fc.yahoo.com").status_code == 404


@contextmanager
def in_batch(batch_no: int) -> Iterator[None]:
    """Requests made inside are for batch `batch_no`, as the fetching code marks them."""
    token = current_batch.set(batch_no)
    try:
        yield
    finally:
        current_batch.reset(token)


def closed_port_url() -> str:
    """A loopback URL on which nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


# The adapter


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
    # yfinance's handshake (cookie, crumb, perhaps its consent page) goes with the quote it was made for.
    assert (
        source.counter.for_batch(1) == source.counter.total - 2 >= 3 and source.counter.for_batch(None) == 0
    )
    assert source.counter.total == emulator.total_requests()


def test_the_handshake_cookie_is_yahoos_and_expires_in_a_year(emulator, source):
    assert not source.fetch_quotes(1, ("AAPL",)).is_error
    cookies = {c.name: c for c in source.session.cookies.jar}
    assert cookies["A3"].domain == ".yahoo.com" and cookies["A3"].secure
    days_left = (cookies["A3"].expires - time.time()) / 86400
    assert 364 < days_left < 366
    assert emulator.counts()["getcrumb"] >= 1


def test_a_proxy_that_refuses_connections_is_an_error_answer_naming_it():
    proxy = closed_port_url()
    source = YahooSource(proxy=proxy, ca_bundle=None, history="1y", timeout_s=10)
    try:
        answer = source.fetch_chart(1, "AAPL")
    finally:
        source.close()
    assert answer.error_type == "ConnectionError"
    assert answer.message.startswith("cannot connect to Yahoo (curl 7: Failed to connect to ")
    assert answer.message.endswith(f"; check the proxy {proxy}")
    assert source.counter.total == 0  # the tunnel never opened: no request reached Yahoo


# Yahoo's TLS edge: the job's session passes for Chrome, a script does not


def test_the_job_session_passes_yahoos_fingerprint_check_and_counts_every_request(emulator, source):
    assert not source.fetch_quotes(1, ("AAPL", "MSFT")).is_error
    assert not source.fetch_chart(2, "AAPL").is_error
    tls = emulator.tls_stats()
    assert tls["connections"] > 0 and tls["blocked_connections"] == 0 and "blocked" not in emulator.faults()
    assert source.counter.total == emulator.total_requests() >= 4  # cookie, crumb, quote, chart


def test_a_script_with_openssls_hello_is_refused_with_yahoos_429(emulator):
    # The negative control of the check above: the same request from plain `requests`, whose ClientHello
    # (Python's ssl) has no GREASE and no h2, as any script's.
    answer = requests.get(
        f"{QUERY1}/v8/finance/chart/AAPL", proxies={"https": emulator.proxy_url}, verify=str(emulator.ca_path)
    )
    assert answer.status_code == 429 and answer.text == "Too Many Requests\r\n"
    assert emulator.tls_stats()["blocked_connections"] == 1 == emulator.tls_stats()["connections"]
    assert emulator.faults() == {"blocked": 1}


def test_a_refused_client_gets_429s_even_as_chrome_and_the_session_does_not_retry_them():
    with Emulator(EmulatorConfig(refuse_all=True)) as emu:
        with browser(emu) as chrome:
            assert chrome.get(f"{QUERY1}/v1/test/getcrumb").status_code == 429
        session, counter = job_session(emu)
        answer = session.get(f"{QUERY1}/v1/test/getcrumb")
        assert answer.status_code == 429 and answer.text == "Too Many Requests\r\n"
        assert counter.total == 1  # Yahoo has never answered this session: a 429 is a refusal, not a pause
        assert emu.faults() == {"blocked": 2} and emu.total_requests() == 2
        assert emu.tls_stats()["blocked_connections"] == 2


@pytest.fixture
def other_ca_path(tmp_path):
    """The PEM of a CA that did not sign the emulator's certificate for Yahoo."""
    path = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def test_a_ca_bundle_that_did_not_sign_yahoos_certificate_is_a_certificate_error(emulator, other_ca_path):
    session, counter = new_session(proxy=emulator.proxy_url, ca_bundle=other_ca_path, retry=FAST_RETRY)
    with pytest.raises(CertificateVerifyError) as raised:
        session.get(f"{QUERY1}/v1/test/getcrumb")
    assert isinstance(raised.value, SSLError) and "curl: (60)" in str(raised.value)
    # The handshake failed before any request was written in the tunnel (the CONNECT is no request to Yahoo).
    assert counter.total == 0 == emulator.total_requests()
    assert emulator.tls_stats()["connections"] == 1


def test_a_refused_certificate_is_not_retried_even_once_yahoo_has_answered(emulator, other_ca_path):
    session, counter = job_session(emulator)
    answered(session)
    with pytest.raises(CertificateVerifyError):
        session.get(f"{QUERY1}/v1/test/getcrumb", verify=str(other_ca_path))  # a new host: a new tunnel
    assert emulator.tls_stats()["connections"] == 2  # fc's, and one attempt at query1's
    assert counter.total == 1 == emulator.total_requests()


# Retries and the request count


def test_counter_attributes_every_attempt_to_the_batch_being_fetched():
    with Emulator(EmulatorConfig(error_rate=1.0)) as emu:
        session, counter = job_session(emu, RetryPolicy(attempts=3, base_s=0.001))
        with in_batch(6):
            answered(session)
        with in_batch(7):
            assert session.get(f"{QUERY2}/v8/finance/chart/AAPL").status_code == 500
        assert counter.for_batch(6) == 1 and counter.for_batch(7) == 3
        assert counter.total == emu.total_requests() == 4


def test_passing_server_errors_are_retried_and_every_attempt_counted():
    with Emulator(EmulatorConfig(error_rate=0.5, seed=3)) as emu:
        session, counter = job_session(emu)
        answered(session)
        statuses = [session.get(f"{QUERY2}/v8/finance/chart/S{i}").status_code for i in range(20)]
        assert statuses == [200] * 20
        assert emu.faults()["500"] > 0
        assert counter.total == emu.total_requests() == 1 + 20 + emu.faults()["500"]


def test_a_hung_request_times_out_and_is_retried_with_every_attempt_counted():
    with Emulator(EmulatorConfig(stall_rate=0.5, stall_s=5.0, seed=5)) as emu:
        session, counter = job_session(emu)
        answered(session)  # before any answer, a timeout would be raised at once: Yahoo unreachable
        statuses = [session.get(f"{QUERY2}/v8/finance/chart/S{i}", timeout=0.2).status_code for i in range(6)]
        assert statuses == [200] * 6
        assert emu.faults()["stall"] > 0
        assert counter.total == emu.total_requests() == 1 + 6 + emu.faults()["stall"]


def test_a_timeout_before_any_answer_is_raised_at_once():
    with Emulator(EmulatorConfig(stall_rate=1.0, stall_s=5.0)) as emu:
        session, counter = job_session(emu)
        with pytest.raises(Timeout):
            session.get(f"{QUERY2}/v8/finance/chart/AAPL", timeout=0.2)
        assert counter.total == emu.total_requests() == 1


def test_a_refused_connection_is_raised_at_once_before_any_answer_and_retried_after_one(emulator):
    closed = closed_port_url()
    retry = WatchedRetry(attempts=3)
    session, counter = job_session(emulator, retry)
    refused = r"curl: \(7\) Failed to connect to query1\.finance\.yahoo\.com:443 over proxy 127\.0\.0\.1"
    with pytest.raises(ConnectionError, match=refused):
        session.get(f"{QUERY1}/v1/test/getcrumb", proxy=closed)
    assert retry.waits == [] and counter.total == 0  # Yahoo cannot be reached: nothing to wait for
    answered(session)
    with pytest.raises(ConnectionError, match=refused):  # the negative control: now a dropped route may pass
        session.get(f"{QUERY1}/v1/test/getcrumb", proxy=closed)
    assert retry.waits == [1, 2] and counter.total == 1


def test_the_last_answer_is_returned_when_retries_run_out():
    with Emulator(EmulatorConfig(error_rate=1.0)) as emu:
        session, counter = job_session(emu, RetryPolicy(attempts=3, base_s=0.001))
        answered(session)
        assert session.get(f"{QUERY2}/v8/finance/chart/AAPL").status_code == 500
        assert counter.total == emu.total_requests() == 1 + 3 and emu.faults() == {"500": 3}


def test_not_found_is_an_answer_not_retried(emulator):
    session, counter = job_session(emulator)
    answered(session)
    assert session.get(f"{QUERY2}/v8/finance/chart/DLSTD").status_code == 404
    assert counter.total == emulator.total_requests() == 2


@pytest.mark.parametrize(
    ("attempt", "retry_after", "low", "high"),
    [(1, None, 0.125, 0.25), (3, None, 0.5, 1.0), (10, None, 4.0, 8.0), (1, "3", 3, 3), (1, "60", 8, 8)],
)
def test_backoff_doubles_with_jitter_and_honours_retry_after(attempt, retry_after, low, high):
    assert low <= RetryPolicy().delay_s(attempt, retry_after) <= high


def assert_refused_for_its_reason(message: str, path, text: str) -> None:
    """A refused universe is refused for what is wrong with it, named: never a crash or a vague error."""
    values = [line.split("#", 1)[0] for line in text.split("\n")]
    if "\x00" in text:
        assert message == f"universe file {path} is binary, not text; pass a CSV or one symbol a line"
    elif not text.strip():
        assert message == f"universe file {path} is empty; add one symbol a line"
    elif not any(value.strip() for value in values):
        assert message.startswith(f"{path} lists no symbols (only comments or blank lines)")
    else:
        bad = re.fullmatch(rf"{re.escape(str(path))} line (\d+): (.+) is not a ticker symbol \(.+", message)
        assert bad, message
        assert ast.literal_eval(bad[2]) == values[int(bad[1]) - 1]  # the offending value, as written


NASTY = st.text(
    alphabet=st.sampled_from(list("AZaz09.-^=/?#%;:' \\\"\r\n\x00АÉ_&+")), min_size=1, max_size=18
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.one_of(
        NASTY,
        st.sampled_from(
            ["AAPL/../../admin?", "AAPL#x", "BRK.B", "^GSPC", "EURUSD=X", "%2e%2e", ".", "..", "-", "^", "A."]
        ),
    )
)
def test_any_string_is_refused_or_fetched_as_exactly_that_symbol(emulator, source, tmp_path_factory, text):
    path = tmp_path_factory.mktemp("u") / "u.txt"
    path.write_bytes(text.encode("utf-8", "surrogatepass") + b"\n")
    try:
        symbols = load_universe(path)
    except UniverseError as refused:
        assert_refused_for_its_reason(str(refused), path, text)
        return
    for symbol in symbols:
        answer = source.fetch_chart(1, symbol)
        assert not answer.is_error, (symbol, answer)
        assert answer.payload["meta"]["symbol"] == symbol  # the emulator saw /v8/finance/chart/<symbol>
