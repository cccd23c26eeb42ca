"""The HTTP session yfinance talks through: it routes every Yahoo host to one base URL and counts requests.

Routing happens in the transport adapter, below the session, so the session's cookie jar still sees
Yahoo's own https URLs: the cookies Yahoo (or the emulator) sets for `.yahoo.com` are stored, sent
back and expire exactly as they would against the real hosts.
"""

import contextvars
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from etl.source.rate import AdaptiveRate

# Plain requests identifies itself as a script, which Yahoo answers with 429s; yfinance's own
# requests fallback sends a browser's headers for the same reason.
BROWSER_HEADERS = {
    "User-Agent": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
    ),
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.5",
}

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


def to_routed_url(url: str, base_url: str) -> str:
    """Replace scheme and host of `url` with those of `base_url`, keeping path and query."""
    base = urlsplit(base_url)
    parts = urlsplit(url)
    path = base.path.rstrip("/") + parts.path
    return urlunsplit((base.scheme, base.netloc, path, parts.query, ""))


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


class RoutingAdapter(HTTPAdapter):
    """Counts every attempt where it is sent, retries what Yahoo says to retry, and routes to a base URL."""

    def __init__(self, counter: RequestCounter, base_url: str | None, pool_size: int, retry: RetryPolicy) -> None:
        super().__init__(pool_connections=8, pool_maxsize=pool_size)
        self.counter = counter
        self.base_url = base_url
        self.retry = retry
        self.rate = AdaptiveRate()

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        attempt = 1
        while True:
            self.rate.acquire()
            self.counter.add(current_batch.get())
            try:
                response = self._send_once(request, **kwargs)
            except (requests.ConnectionError, requests.Timeout):
                if attempt == self.retry.attempts:
                    raise
                wait_s = self.retry.delay_s(attempt, None)
            else:
                if response.status_code == 429:
                    self.rate.slow_down()
                else:
                    self.rate.speed_up()
                if response.status_code not in RETRY_STATUSES or attempt == self.retry.attempts:
                    return response
                wait_s = self.retry.delay_s(attempt, response.headers.get("Retry-After"))
                response.close()
            time.sleep(wait_s)
            attempt += 1

    def _send_once(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        if self.base_url is None:
            return super().send(request, **kwargs)
        routed = request.copy()
        routed.url = to_routed_url(request.url, self.base_url)
        routed.headers["X-Forwarded-Host"] = urlsplit(request.url).netloc
        response = super().send(routed, **kwargs)
        # The session reads cookies and redirects against the URL it asked for, not the routed one.
        response.url = request.url
        response.request = request
        return response


def new_session(base_url: str | None, *, pool_size: int = 10,
                retry: RetryPolicy = RetryPolicy()) -> tuple[requests.Session, RequestCounter]:
    """A requests session for yfinance that counts and retries every request, routed to `base_url` if given."""
    counter = RequestCounter()
    session = requests.Session()
    session.headers.update(BROWSER_HEADERS)
    adapter = RoutingAdapter(counter, base_url, pool_size, retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session, counter
