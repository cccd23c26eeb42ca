"""The emulator's server: an HTTPS proxy for Yahoo's hosts that judges each client's ClientHello, then Yahoo's
routes, its cookie and crumb handshake, fault knobs and request counters inside the tunnel.

A client reaches it as it would reach Yahoo through a corporate proxy: `CONNECT query1.finance.yahoo.com:443`,
then TLS with Yahoo's name (SNI), a certificate for Yahoo's names signed by the emulator's own CA, and
HTTP/1.1 with Yahoo's Host header and `.yahoo.com` cookies.
Plain HTTP serves only the `/__emulator/` control paths.
"""

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import logging
import random
import re
import secrets
import shutil
import socket
import ssl
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import cast
from urllib.parse import parse_qs, unquote, urlsplit

from etl.emulator import calendars, fundamentals, history, market, quotes, responses, tls
from etl.emulator.config import EmulatorConfig
from etl.emulator.instruments import SHARES, quote_type
from etl.emulator.recordings import load_recordings

log = logging.getLogger(__name__)

COOKIE_MAX_AGE_S = 31_557_600  # what Yahoo gives its A1/A3 cookies: a year
# One key for every emulator, whatever its seed: Yahoo's servers all accept a Yahoo cookie, and yfinance
# keeps one for a year in a cache shared by every process of the user.
_COOKIE_KEY = b"market-voices-etl yahoo emulator"
_COOKIE = re.compile(r"d=AQABB(?P<session>[\w-]+)&S=AQAAA(?P<signature>[\w-]+)")
_SYMBOL = re.compile(r"[A-Z0-9.\-^=]{1,20}")
# What the tunnel may open: Yahoo's hosts on 443, as a client configured for Yahoo asks for them.
_YAHOO_TARGET = re.compile(r"(?:[a-z0-9-]+\.)*yahoo\.com:443")
# Yahoo's answer to a client it takes for a script, and to one over its rate limit.
TOO_MANY_REQUESTS = b"Too Many Requests\r\n"
_ROUTES = [
    (re.compile(r"/"), "cookie"),
    (re.compile(r"/v1/test/getcrumb"), "getcrumb"),
    (re.compile(r"/v8/finance/chart/(?P<symbol>[^/]*)"), "chart"),
    (re.compile(r"/v7/finance/quote"), "quote"),
    (re.compile(r"/v10/finance/quoteSummary/(?P<symbol>[^/]*)"), "quoteSummary"),
    (re.compile(r"/ws/fundamentals-timeseries/v1/finance/timeseries/(?P<symbol>[^/]*)"), "timeseries"),
    (re.compile(r"/consent|/v2/collectConsent|/copyConsent"), "consent"),
]
# The data endpoints, which error_rate fails, with the envelope of their error bodies.
_ENVELOPES = {"chart": "chart", "quote": "finance", "quoteSummary": "quoteSummary", "timeseries": "finance"}
_clock = time.monotonic  # the rate limiter's; tests stop it
_DEFAULT_CONFIG = EmulatorConfig()


class _State:
    """What the server keeps across requests: counts, the trailing second of requests, the fault dice."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.delisted = frozenset(symbol.upper() for symbol in config.delisted)
        self.recordings = load_recordings(config.recordings) if config.recordings else None
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.charts: Counter[str] = Counter()  # chart requests by symbol: what a resumed run fetched again
        self.faults: Counter[str] = Counter()
        self.dice = random.Random(config.seed)
        self.recent: deque[float] = deque()
        self.fingerprints: Counter[str] = Counter()
        self.blocked_connections = 0

    def judge(self, hello: tls.ClientHello | None) -> bool:
        """Count the connection by its fingerprint; True if it is to be refused, as Yahoo refuses scripts."""
        refused = self.config.refuse_all or hello is None or not hello.is_browser
        with self.lock:
            self.fingerprints[hello.fingerprint if hello else "not-a-client-hello"] += 1
            self.blocked_connections += refused
        return refused

    def admit(self, endpoint: str, refused: bool = False, symbol: str | None = None) -> str | None:
        """Count the request; the fault that answers it instead ("blocked", "429", "500", "stall"), if any."""
        now = _clock()
        with self.lock:
            self.counts[endpoint] += 1
            if symbol is not None:
                self.charts[symbol] += 1
            if refused:
                return self._fault("blocked")
            if self.config.rate_limit_rps is not None:
                while self.recent and self.recent[0] <= now - 1.0:
                    self.recent.popleft()
                self.recent.append(now)
                if len(self.recent) > self.config.rate_limit_rps:
                    return self._fault("429")
            if endpoint in _ENVELOPES and self.dice.random() < self.config.error_rate:
                return self._fault("500")
            if endpoint in _ENVELOPES and self.dice.random() < self.config.stall_rate:
                return self._fault("stall")
        return None

    def _fault(self, fault: str) -> str:
        self.faults[fault] += 1
        return fault

    def stats(self, reset: bool = False) -> dict:
        with self.lock:
            if reset:
                self.counts.clear()
                self.charts.clear()
                self.faults.clear()
                self.fingerprints.clear()
                self.blocked_connections = 0
            return {
                "total": sum(self.counts.values()),
                "by_endpoint": dict(self.counts),
                "charts_by_symbol": dict(self.charts),
                "faults": dict(self.faults),
                "tls": {
                    "connections": sum(self.fingerprints.values()),
                    "blocked_connections": self.blocked_connections,
                    "fingerprints": dict(self.fingerprints),
                },
            }


def issue_cookie() -> str:
    """A random session id with its signature, so that any emulator recognises the cookie as its own."""
    session = secrets.token_urlsafe(24)
    return f"d=AQABB{session}&S=AQAAA{_sign(session)[:22]}"


def crumb_for(cookie: str | None) -> str | None:
    """The crumb Yahoo ties to a cookie it issued (the same cookie always gets the same crumb), else None."""
    match = _COOKIE.fullmatch(cookie or "")
    if match is None or not hmac.compare_digest(match["signature"], _sign(match["session"])[:22]):
        return None
    return _sign("crumb:" + match["session"])[:11]


def _sign(text: str) -> str:
    digest = hmac.new(_COOKIE_KEY, text.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()


class _ProxyHandler(BaseHTTPRequestHandler):
    """The proxy's side of a connection: CONNECT to a Yahoo host opens the tunnel, and the control paths."""

    protocol_version = "HTTP/1.1"
    # Unbuffered, so reading the CONNECT request can never take the first bytes of the ClientHello.
    rbufsize = 0
    server: "_Server"

    def log_message(self, format: str, *args) -> None:
        """Quiet, as the Yahoo side is."""

    def do_CONNECT(self) -> None:
        if not _YAHOO_TARGET.fullmatch(self.path.lower()):
            self.close_connection = True
            return self.send_error(
                403, f"this proxy tunnels to Yahoo's hosts on port 443 only, not {self.path}"
            )
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True  # whatever happens in the tunnel, the proxy's part ends with it
        hello = tls.peek_client_hello(self.connection)
        refused = self.server.state.judge(hello)
        self.connection.settimeout(tls.HELLO_TIMEOUT_S)
        try:
            tunnel = self.server.tls_context.wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.info("Yahoo emulator: TLS handshake with %s failed: %s", self.client_address, exc)
            return
        tunnel.settimeout(None)
        try:
            _Handler(tunnel, self.client_address, self.server, refused=refused)
        finally:
            tunnel.close()

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/__emulator/stats" or (path == "/__emulator/reset" and self.command == "POST"):
            return self._json(200, self.server.state.stats(reset=path.endswith("reset")))
        body = (
            b"This is Yahoo's emulator, a proxy: reach https://query1.finance.yahoo.com through it"
            b" (CONNECT).\n"
        )
        self.send_response(400)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def _json(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _Handler(BaseHTTPRequestHandler):
    """Yahoo's side, inside a tunnel: every request of a refused connection is answered 429."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in one send when the request is done, not in a syscall each.
    wbufsize = 1 << 16
    server: "_Server"

    def __init__(self, request, client_address, server, *, refused: bool) -> None:
        self.refused = refused
        super().__init__(request, client_address, server)

    def setup(self) -> None:
        super().setup()
        # A large answer leaves in several segments; with Nagle on, delayed ACKs would hold its last one 40
        # ms.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args) -> None:
        """Quiet: the counters say what was asked, and unknown paths are logged where they are answered."""

    def do_POST(self) -> None:
        # Read the form away, or it would be parsed as the connection's next request.
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.do_GET()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        path, params = unquote(url.path), {k: v[-1] for k, v in parse_qs(url.query).items()}
        endpoint, match = _route(path)
        state = self.server.state
        fault = state.admit(
            endpoint, self.refused, match["symbol"] if endpoint == "chart" and match else None
        )
        if state.config.latency_ms:
            time.sleep(state.config.latency_ms / 1000)
        if fault == "stall":
            time.sleep(state.config.stall_s)
        if fault in ("429", "blocked"):
            return self._send(429, TOO_MANY_REQUESTS, "text/plain;charset=utf-8")
        if fault == "500":
            return self._json(
                500,
                responses.error_body(
                    _ENVELOPES[endpoint], "Internal Server Error", "Internal Server Error (emulated fault)"
                ),
            )
        getattr(self, f"_{endpoint}")(match, params)

    def _now(self) -> dt.datetime:
        return (self.server.state.config.as_of or dt.datetime.now(dt.UTC)).astimezone(calendars.NEW_YORK)

    def _cookie(self, match, params) -> None:
        expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=COOKIE_MAX_AGE_S)
        attributes = (
            f"Expires={format_datetime(expiry, usegmt=True)}; Max-Age={COOKIE_MAX_AGE_S}; "
            "Domain=.yahoo.com; Path=/; SameSite=None; Secure"
        )
        value = issue_cookie()
        cookies = [
            ("Set-Cookie", f"{name}={value}; {attributes}{'' if name == 'A1S' else '; HttpOnly'}")
            for name in ("A1", "A3", "A1S")
        ]
        self._send(404, b"<html><body>Not Found (Yahoo emulator)</body></html>", "text/html", cookies)

    def _getcrumb(self, match, params) -> None:
        crumb = crumb_for(self._a3())
        if crumb is None:
            return self._json(401, responses.error_body("finance", "Unauthorized", "Invalid Cookie"))
        self._send(200, crumb.encode(), "text/plain;charset=utf-8")

    def _chart(self, match, params) -> None:
        try:
            responses.check_chart_params(params)
        except responses.BadRequest as refusal:
            return self._json(refusal.status, refusal.body)
        symbol = self._known(match["symbol"])
        if symbol is None:
            return self._json(
                404, responses.error_body("chart", "Not Found", "No data found, symbol may be delisted")
            )
        state = self.server.state
        recorded = state.recordings.chart(symbol, params) if state.recordings else None
        if recorded:
            return self._send(200, recorded.body, recorded.content_type, origin="recorded")
        config = state.config
        self._json(200, responses.chart_body(config.seed, symbol, config.null_fraction, params, self._now()))

    def _quote(self, match, params) -> None:
        if not self._has_crumb(params):
            return self._json(401, responses.error_body("finance", "Unauthorized", "Invalid Crumb"))
        known = [self._known(s) for s in params.get("symbols", "").split(",")]
        result = [self._quote_of(symbol) for symbol in known if symbol]
        self._json(200, {"quoteResponse": {"result": result, "error": None}})

    def _quote_of(self, symbol: str) -> dict:
        """The symbol's recorded quote object, if there is one to replay; else the synthetic one."""
        state = self.server.state
        if state.recordings and symbol in state.recordings.quotes:
            return state.recordings.quotes[symbol]
        seed, now = state.config.seed, self._now()
        return quotes.quote_object(seed, symbol, history.latest(seed, symbol, now), now)

    def _quoteSummary(self, match, params) -> None:
        if not self._has_crumb(params):
            return self._json(401, responses.error_body("finance", "Unauthorized", "Invalid Crumb"))
        symbol = self._known(match["symbol"])
        if symbol is None:
            return self._json(
                404,
                responses.error_body(
                    "quoteSummary", "Not Found", f"Quote not found for ticker symbol: {match['symbol']}"
                ),
            )
        seed, now = self.server.state.config.seed, self._now()
        modules = [m for m in params.get("modules", "").split(",") if m]
        if quote_type(symbol) not in SHARES:
            # Yahoo's answer when it has none of the modules asked for: fundamentals.py tells a company's or a
            # fund's, not an index's, a currency's, a coin's or a future's.
            description = f"No fundamentals data found for any of the summaryTypes={','.join(modules)}"
            return self._json(404, responses.error_body("quoteSummary", "Not Found", description))
        quote = quotes.quote_object(seed, symbol, history.latest(seed, symbol, now), now)
        self._json(*fundamentals.summary_body(quote, market.company(seed, symbol), modules))

    def _timeseries(self, match, params) -> None:
        symbol, seed = self._known(match["symbol"]), self.server.state.config.seed
        if symbol is None:
            return self._json(200, {"timeseries": {"result": [], "error": None}})
        types = [t for value in parse_qs(urlsplit(self.path).query).get("type", []) for t in value.split(",")]
        as_of = calendars.last_session(self._now())
        self._json(200, fundamentals.timeseries_body(symbol, market.company(seed, symbol), types, as_of))

    def _consent(self, match, params) -> None:
        # No consent form to fill in (no csrfToken): yfinance goes back to its basic cookie strategy.
        self._send(404, b"<html><body>No consent needed (Yahoo emulator)</body></html>", "text/html")

    def _other(self, match, params) -> None:
        log.warning(
            "Yahoo emulator: no route for %s %s (host %s)", self.command, self.path, self.headers.get("Host")
        )
        self._send(404, b"Not Found", "text/plain")

    def _known(self, symbol: str) -> str | None:
        """The symbol as Yahoo names it, if the synthetic market lists it."""
        symbol = symbol.strip().upper()
        if not _SYMBOL.fullmatch(symbol) or symbol in self.server.state.delisted:
            return None
        return symbol

    def _a3(self) -> str | None:
        for pair in self.headers.get("Cookie", "").split(";"):
            name, _, value = pair.strip().partition("=")
            if name == "A3":
                return value
        return None

    def _has_crumb(self, params: dict) -> bool:
        crumb = crumb_for(self._a3())
        return crumb is not None and hmac.compare_digest(params.get("crumb", ""), crumb)

    def _json(self, status: int, body: dict) -> None:
        self._send(status, json.dumps(body, separators=(",", ":")).encode(), "application/json;charset=utf-8")

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Iterable[tuple[str, str]] = (),
        *,
        origin: str = "synthetic",
    ) -> None:
        """Send an answer; its X-Emulator header says whether it is made up ("synthetic") or Yahoo's
        ("recorded")."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "public, max-age=1, stale-while-revalidate=9")
        self.send_header("X-Emulator", origin)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def _route(path: str) -> tuple[str, re.Match | None]:
    for pattern, endpoint in _ROUTES:
        match = pattern.fullmatch(path)
        if match:
            return endpoint, match
    return "other", None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, config: EmulatorConfig, tls_context: ssl.SSLContext) -> None:
        super().__init__((config.host, config.port), _ProxyHandler)
        self.state = _State(config)
        self.tls_context = tls_context

    def handle_error(self, request, client_address) -> None:
        """A client that hung up (killed, timed out) is no server error; anything else is printed as usual."""
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError)):
            super().handle_error(request, client_address)


class Emulator:
    """The emulator on `config.host`/`config.port` (0: a free port) in a background thread.

    Clients reach it as an HTTPS proxy (`proxy_url`) and trust its CA (`ca_path`).
    """

    def __init__(self, config: EmulatorConfig = _DEFAULT_CONFIG) -> None:
        authority = tls.Authority()
        self._own_dir: Path | None
        if config.ca_path:
            self._own_dir, ca_target = None, config.ca_path
        else:
            self._own_dir = Path(tempfile.mkdtemp(prefix="etl-emulator-"))
            ca_target = self._own_dir / "yahoo-emulator-ca.pem"
        self.ca_path = authority.write_ca(ca_target)
        self._server = _Server(config, authority.server_context())
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="yahoo-emulator", daemon=True
        )

    @property
    def proxy_url(self) -> str:
        # A TCP server's address: (host, port), the host a str (typeshed allows bytes for other families).
        host, port = cast(tuple[str, int], self._server.server_address[:2])
        return f"http://{host}:{port}"

    def counts(self) -> dict[str, int]:
        """Requests by endpoint: cookie, getcrumb, chart, quote, quoteSummary, timeseries, consent, other."""
        return self._server.state.stats()["by_endpoint"]

    def chart_requests(self) -> dict[str, int]:
        """Chart requests by symbol, faulted ones included."""
        return self._server.state.stats()["charts_by_symbol"]

    def total_requests(self) -> int:
        return self._server.state.stats()["total"]

    def faults(self) -> dict[str, int]:
        """How many requests were answered by an injected fault, by fault: blocked, 429, 500, stall."""
        return self._server.state.stats()["faults"]

    def tls_stats(self) -> dict:
        """Tunnels opened, how many were refused for their ClientHello, and connections by fingerprint."""
        return self._server.state.stats()["tls"]

    def describe_tls(self) -> str:
        """tls_stats() in a line, for people."""
        stats = self.tls_stats()
        return (
            f"{stats['connections']} TLS connections,"
            f" {stats['blocked_connections']} refused for their ClientHello, "
            f"{len(stats['fingerprints'])} distinct fingerprint(s)"
        )

    def reset_counts(self) -> None:
        self._server.state.stats(reset=True)

    def __enter__(self) -> "Emulator":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)


def serve(host: str, port: int, config: EmulatorConfig = _DEFAULT_CONFIG) -> None:
    """Serve in the foreground until interrupted (Ctrl-C)."""
    replayed = f", and Yahoo's answers recorded in {config.recordings}" if config.recordings else ""
    with Emulator(dataclasses.replace(config, host=host, port=port)) as emulator:
        print(
            f"Yahoo emulator (synthetic data{replayed}): collect with --proxy {emulator.proxy_url} "
            f"--ca-bundle {emulator.ca_path}",
            file=sys.stderr,
            flush=True,
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
