"""The HTTP session yfinance talks through: it routes every Yahoo host to one base URL and counts requests.

Routing happens in the transport adapter, below the session, so the session's cookie jar still sees
Yahoo's own https URLs: the cookies Yahoo (or the emulator) sets for `.yahoo.com` are stored, sent
back and expire exactly as they would against the real hosts.
"""

import contextvars
import threading
from collections import Counter
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

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


class RoutingAdapter(HTTPAdapter):
    """Counts every request where it is sent and, given a base URL, sends it there instead."""

    def __init__(self, counter: RequestCounter, base_url: str | None, pool_size: int) -> None:
        super().__init__(pool_connections=8, pool_maxsize=pool_size)
        self.counter = counter
        self.base_url = base_url

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        self.counter.add(current_batch.get())
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


def new_session(base_url: str | None, *, pool_size: int = 10) -> tuple[requests.Session, RequestCounter]:
    """A requests session for yfinance that counts every request and routes it to `base_url` if given."""
    counter = RequestCounter()
    session = requests.Session()
    session.headers.update(BROWSER_HEADERS)
    adapter = RoutingAdapter(counter, base_url, pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session, counter
