"""The HTTP session yfinance talks through: curl_cffi impersonating Chrome, retrying, pacing and counting
requests.

Yahoo tells scripts from browsers by the TLS ClientHello and HTTP/2 settings, not the User-Agent, and
answers scripts with 429s. So the session is yfinance's own default, `curl_cffi` impersonating Chrome,
with none of our headers: curl sends the ones that match the fingerprint. Requests are counted where curl
writes them (its debug callback), so redirects and the resends curl makes on a dropped connection count too.
Every request goes to Yahoo's own URLs, directly or tunnelled through a proxy (`CONNECT host:443`).
"""

import contextvars
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from curl_cffi import CurlOpt
from curl_cffi.requests import Response, Session
from curl_cffi.requests.exceptions import (
    CertificateVerifyError,
    ConnectionError,
    ProxyError,
    RequestException,
    SSLError,
    Timeout,
)

from etl.config import to_redacted_url
from etl.source.rate import AdaptiveRate, Rate

# yfinance's own choice (yfinance/_http.py): the newest Chrome this curl_cffi can impersonate.
IMPERSONATE = "chrome"
_HEADER_OUT = 2  # curl_infotype CURLINFO_HEADER_OUT: a request's headers, as written to the wire
# A request line; a CONNECT opens a tunnel through the proxy and is no request to Yahoo.
_REQUEST_LINE = re.compile(rb"(?!CONNECT )[A-Z]+ \S+ HTTP/")

# curl's reason inside curl_cffi's message, without the pointer to libcurl's documentation.
_CURL_REASON = re.compile(
    r"curl: \((?P<code>\d+)\) (?P<reason>.*?)(?:\. See https://\S+ first for more details\.)?$", re.DOTALL
)

# The batch a request is made for; set by the fetching code, read when the request is counted.
current_batch: contextvars.ContextVar[int | None] = contextvars.ContextVar("current_batch", default=None)


class RequestCounter:
    """Thread-safe count of HTTP requests sent, in total and per batch."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_batch: Counter[int | None] = Counter()

    def add(self, batch_no: int | None) -> None:
        with self._lock:
            self._by_batch[batch_no] += 1

    def for_batch(self, batch_no: int | None) -> int:
        with self._lock:
            return self._by_batch[batch_no]

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._by_batch.values())


# Answers that say "not now" rather than "no": Yahoo's rate limit and its passing server errors.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter; yfinance itself retries none of these, 429 least of all."""

    attempts: int = 5
    base_s: float = 0.25
    max_s: float = 8.0

    def delay_s(self, attempt: int, retry_after: str | None) -> float:
        """How long to wait after the attempt-th failure; Yahoo's Retry-After wins when it sends one."""
        if retry_after and retry_after.strip().isdigit():
            return min(float(retry_after), self.max_s)
        return min(self.max_s, self.base_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


class YahooSession(Session):
    """yfinance's default session, plus the job's retries, adaptive rate and request count, for every fetch
    thread.

    Each thread gets its own curl handle (curl_cffi's default), so connections are reused per thread.
    """

    def __init__(
        self,
        counter: RequestCounter,
        *,
        proxy: str | None,
        ca_bundle: Path | None,
        retry: RetryPolicy,
        rate: Rate,
    ) -> None:
        options = {CurlOpt.VERBOSE: 1, CurlOpt.DEBUGFUNCTION: self._on_debug}
        if proxy:
            options[CurlOpt.NOPROXY] = (
                ""  # an explicit proxy carries every Yahoo request, whatever NO_PROXY says
            )
        super().__init__(
            impersonate=IMPERSONATE,
            proxy=proxy,
            # curl_cffi annotates verify as bool, yet takes a CA bundle's path too (set as CURLOPT_CAINFO).
            verify=str(ca_bundle) if ca_bundle else True,  # type: ignore[arg-type]
            curl_options=options,
        )
        self.counter = counter
        self.retry_policy = retry  # not `retry`: curl_cffi.Session has its own, left at 0
        self.rate = rate
        # Until Yahoo has answered anything but 429, a 429 means it refuses this client and a failed
        # connection means it cannot be reached: retrying either only delays the one-line outage by minutes.
        self._answered = False

    def _on_debug(self, info_type: int, data: bytes) -> None:
        if info_type == _HEADER_OUT and _REQUEST_LINE.match(data):
            self.counter.add(current_batch.get())

    def request(self, method, url, *args, **kwargs) -> Response:
        """One of yfinance's requests, retried while Yahoo says "not now"; the last answer when retries run
        out."""
        attempt = 1
        while True:
            self.rate.acquire()
            try:
                response = super().request(method, url, *args, **kwargs)
            except (ConnectionError, Timeout) as exc:
                # A certificate or handshake refused stays refused; a dropped connection or a timeout may
                # pass.
                if isinstance(exc, SSLError) or not self._answered or attempt == self.retry_policy.attempts:
                    raise
                wait_s = self.retry_policy.delay_s(attempt, None)
            else:
                if not self._worth_retrying(response.status_code) or attempt == self.retry_policy.attempts:
                    return response
                wait_s = self.retry_policy.delay_s(attempt, response.headers.get("Retry-After"))
            time.sleep(wait_s)
            attempt += 1

    def _worth_retrying(self, status: int) -> bool:
        if status == 429:
            # On a Ray node, another worker's answers count too: its budget's 429s are a rate, not refusal.
            if not (self._answered or self.rate.answered):
                return False
            self.rate.slow_down()
            return True
        self._answered = True
        self.rate.speed_up()
        return status in RETRY_STATUSES


def new_session(
    *,
    proxy: str | None = None,
    ca_bundle: Path | None = None,
    retry: RetryPolicy = RetryPolicy(),
    rate: Rate | None = None,
) -> tuple[YahooSession, RequestCounter]:
    """A session for yfinance that retries and counts every request, through `proxy` if given, paced by
    `rate` (default: an adaptive rate of its own)."""
    counter = RequestCounter()
    rate = rate or AdaptiveRate()
    return YahooSession(counter, proxy=proxy, ca_bundle=ca_bundle, retry=retry, rate=rate), counter


def describe_failure(exc: RequestException, proxy: str | None) -> str:
    """A request that got no answer, as one line: curl's reason and what to check."""
    match = _CURL_REASON.search(str(exc))
    reason = f"curl {match['code']}: {match['reason']}" if match else str(exc)
    route = f"the proxy {to_redacted_url(proxy)}" if proxy else "HTTPS_PROXY / ALL_PROXY, if set"
    if isinstance(exc, CertificateVerifyError):
        return (
            f"Yahoo's TLS certificate is not trusted ({reason}); behind a TLS-inspecting proxy, "
            f"pass its CA with --ca-bundle"
        )
    if isinstance(exc, SSLError):
        return f"the TLS handshake with Yahoo failed ({reason}); check {route} and --ca-bundle"
    if isinstance(exc, (ProxyError, ConnectionError)):
        return f"cannot connect to Yahoo ({reason}); check {route}"
    if isinstance(exc, Timeout):
        return f"no answer in time ({reason}); raise --timeout-s or check {route}"
    return reason
