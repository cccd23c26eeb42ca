"""The emulator's HTTP server: Yahoo's routes, cookie and crumb handshake, knobs and request counters."""

import base64
import datetime as dt
import hashlib
import hmac
import json
import random
import re
import secrets
import socket
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from email.utils import format_datetime
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

from etl.emulator import responses
from etl.emulator.market import daily_series, market_now

COOKIE_MAX_AGE_S = 31_557_600  # what Yahoo gives its A1/A3 cookies: one year
_COOKIE = re.compile(r"d=AQABBA(?P<session_id>[\w-]+)&S=AQAAA(?P<signature>[\w-]+)")
_SYMBOL = re.compile(r"[A-Za-z0-9.\-^=]{1,20}")
_ROUTES = [
    (re.compile(r"/"), "cookie"),
    (re.compile(r"/v1/test/getcrumb"), "getcrumb"),
    (re.compile(r"/v8/finance/chart/(?P<symbol>[^/]*)"), "chart"),
    (re.compile(r"/v7/finance/quote"), "quote"),
    (re.compile(r"/v10/finance/quoteSummary/(?P<symbol>[^/]*)"), "quoteSummary"),
    (re.compile(r"/ws/fundamentals-timeseries/v1/finance/timeseries/(?P<symbol>[^/]*)"), "timeseries"),
    (re.compile(r"/(consent|v2/collectConsent|copyConsent)"), "consent"),
]
_DATA_ENDPOINTS = {"chart": "chart", "quote": "finance", "quoteSummary": "quoteSummary", "timeseries": "timeseries"}


@dataclass(frozen=True)
class EmulatorConfig:
    """The emulator's knobs: seed of the synthetic data and the faults to inject."""

    seed: int = 7
    latency_ms: float = 0.0
    error_rate: float = 0.0
    rate_limit_rps: float | None = None
    delisted: frozenset[str] = frozenset()
    null_fraction: float = 0.0


class _State:
    """What the server remembers across requests: counts, the cookie secret, the rate window, the fault dice."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        # Emulators of one seed accept each other's cookies, as Yahoo's servers do: yfinance keeps them a year.
        self.secret = hashlib.sha256(f"yahoo-emulator:{config.seed}".encode()).digest()
        self.dice = random.Random(config.seed)
        self.recent: deque[float] = deque()

    def admit(self, endpoint: str) -> str | None:
        """Count the request; say whether a fault answers it instead ('429', '500' or None)."""
        now = time.monotonic()
        with self.lock:
            self.counts[endpoint] += 1
            limit = self.config.rate_limit_rps
            if limit is not None:
                while self.recent and self.recent[0] <= now - 1.0:
                    self.recent.popleft()
                self.recent.append(now)
                if len(self.recent) > limit:
                    return "429"
            if endpoint in _DATA_ENDPOINTS and self.dice.random() < self.config.error_rate:
                return "500"
        return None

    def issue_cookie(self) -> str:
        """A cookie that proves itself, as Yahoo's do on any of its servers: a random id and its signature."""
        session_id = secrets.token_urlsafe(24)
        return f"d=AQABBA{session_id}&S=AQAAA{self._sign(session_id)}"

    def crumb_for(self, cookie: str | None) -> str | None:
        """The crumb Yahoo ties to a cookie it issued: the same cookie always gets the same crumb."""
        match = _COOKIE.fullmatch(cookie or "")
        if match is None or not hmac.compare_digest(match["signature"], self._sign(match["session_id"])):
            return None
        return self._sign("crumb:" + cookie)[:11]

    def _sign(self, text: str) -> str:
        digest = hmac.new(self.secret, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:22]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, delayed ACKs cost each answer 40 ms.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def log_message(self, format: str, *args) -> None:
        """Quiet: the counters say what was asked."""

    def _handle(self) -> None:
        url = urlsplit(self.path)
        path, params = unquote(url.path), dict(parse_qsl(url.query))
        if path.startswith("/__emulator/"):
            return self._control(path)
        endpoint, match = _route(path)
        state = self.server.state
        fault = state.admit(endpoint)
        if state.config.latency_ms:
            time.sleep(state.config.latency_ms / 1000)
        if fault == "429":
            return self._send(429, b"Too Many Requests\r\n", "text/plain;charset=utf-8")
        if fault == "500":
            return self._json(500, responses.error_body(_DATA_ENDPOINTS[endpoint], "Internal Server Error",
                                                        "Internal Server Error (emulated)"))
        getattr(self, f"_{endpoint}")(match, params)

    def _cookie(self, match, params) -> None:
        expires = format_datetime(dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=COOKIE_MAX_AGE_S), usegmt=True)
        attributes = f"Expires={expires}; Max-Age={COOKIE_MAX_AGE_S}; Domain=.yahoo.com; Path=/; SameSite=None; Secure"
        value = self.server.state.issue_cookie()
        headers = [("Set-Cookie", f"{name}={value}; {attributes}{'' if name == 'A1S' else '; HttpOnly'}")
                   for name in ("A1", "A3", "A1S")]
        self._send(404, b"<html><body>Not Found (Yahoo emulator)</body></html>", "text/html", headers)

    def _getcrumb(self, match, params) -> None:
        crumb = self.server.state.crumb_for(self._a3())
        if crumb is None:
            return self._json(401, responses.error_body("finance", "Unauthorized", "Invalid Cookie"))
        self._send(200, crumb.encode(), "text/plain;charset=utf-8")

    def _chart(self, match, params) -> None:
        symbol = match["symbol"]
        if params.get("interval", "1d") != "1d":
            return self._json(400, responses.error_body(
                "chart", "Bad Request", f"Invalid input - interval={params['interval']} is not supported by the emulator. Valid intervals: [1d]"))
        if params.get("range", "1y") not in responses.VALID_RANGES:
            return self._json(422, responses.error_body(
                "chart", "Unprocessable Entity", f"1d data not available for range={params['range']}"))
        series = self._series(symbol)
        if series is None:
            return self._json(404, responses.error_body("chart", "Not Found", "No data found, symbol may be delisted"))
        self._json(200, responses.chart_body(symbol, series, responses.window(series, params), params))

    def _quote(self, match, params) -> None:
        if not self._has_crumb(params):
            return self._json(401, responses.error_body("finance", "Unauthorized", "Invalid Crumb"))
        symbols = [s.strip() for s in params.get("symbols", "").split(",") if s.strip()]
        known = [(s, self._series(s)) for s in symbols]
        result = [responses.quote_object(s, series) for s, series in known if series is not None]
        self._json(200, {"quoteResponse": {"result": result, "error": None}})

    def _quoteSummary(self, match, params) -> None:
        if not self._has_crumb(params):
            return self._json(401, responses.error_body("finance", "Unauthorized", "Invalid Crumb"))
        symbol = match["symbol"]
        series = self._series(symbol)
        if series is None:
            return self._json(404, responses.error_body(
                "quoteSummary", "Not Found", f"Quote not found for symbol: {symbol}"))
        modules = [m for m in params.get("modules", "").split(",") if m]
        self._json(200, responses.summary_modules(symbol, series, modules))

    def _timeseries(self, match, params) -> None:
        series = self._series(match["symbol"])
        types = parse_qs(urlsplit(self.path).query).get("type", [])
        self._json(200, responses.timeseries_body(match["symbol"], series, types))

    def _consent(self, match, params) -> None:
        self._send(404, b"<html><body>No consent needed (Yahoo emulator)</body></html>", "text/html")

    def _other(self, match, params) -> None:
        print(f"Yahoo emulator: no route for {self.command} {self.path}", file=sys.stderr)
        self._send(404, b"Not Found", "text/plain")

    def _control(self, path: str) -> None:
        state = self.server.state
        if path == "/__emulator/reset" and self.command == "POST":
            with state.lock:
                state.counts.clear()
        with state.lock:
            stats = {"total": sum(state.counts.values()), "by_endpoint": dict(state.counts)}
        self._json(200, stats)

    def _series(self, symbol: str):
        config = self.server.state.config
        if not _SYMBOL.fullmatch(symbol) or symbol.upper() in config.delisted:
            return None
        now = market_now().replace(second=0, microsecond=0)
        return daily_series(config.seed, symbol, config.null_fraction, now)

    def _a3(self) -> str | None:
        morsel = SimpleCookie(self.headers.get("Cookie", "")).get("A3")
        return morsel.value if morsel else None

    def _has_crumb(self, params: dict) -> bool:
        crumb = self.server.state.crumb_for(self._a3())
        return crumb is not None and params.get("crumb") == crumb

    def _json(self, status: int, body: dict) -> None:
        self._send(status, json.dumps(body, separators=(",", ":")).encode(), "application/json;charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str, headers: list[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Emulator", "synthetic")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def _route(path: str):
    for pattern, endpoint in _ROUTES:
        match = pattern.fullmatch(path)
        if match:
            return endpoint, match
    return "other", None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], config: EmulatorConfig) -> None:
        super().__init__(address, _Handler)
        self.state = _State(config)


class Emulator:
    """The emulator on a loopback port in a background thread; a context manager."""

    def __init__(self, config: EmulatorConfig = EmulatorConfig(), host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port), config)
        self._thread = threading.Thread(target=self._server.serve_forever, name="yahoo-emulator", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def counts(self) -> dict[str, int]:
        with self._server.state.lock:
            return dict(self._server.state.counts)

    def total_requests(self) -> int:
        return sum(self.counts().values())

    def reset_counts(self) -> None:
        with self._server.state.lock:
            self._server.state.counts.clear()

    def __enter__(self) -> "Emulator":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve(host: str, port: int, config: EmulatorConfig) -> None:
    """Serve until interrupted (Ctrl-C)."""
    with Emulator(config, host, port) as emulator:
        print(f"Yahoo emulator (synthetic data) on {emulator.url}", file=sys.stderr, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
