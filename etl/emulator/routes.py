"""Yahoo's side of a tunnel: its routes, and each route's answer as Yahoo gives it, after the cookie and crumb
checks and the faults that the emulator's state decides; the proxy in front of it is proxy.py."""

import datetime as dt
import hmac
import json
import logging
import re
import socket
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

from etl.emulator import calendars, financials, fundamentals, history, market, quotes, responses
from etl.emulator.handshake import cookie_headers, crumb_for
from etl.emulator.instruments import SHARES, quote_type
from etl.emulator.state import ENVELOPES, State

log = logging.getLogger(__name__)

_SYMBOL = re.compile(r"[A-Z0-9.\-^=]{1,20}")
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


class YahooHandler(BaseHTTPRequestHandler):
    """Yahoo's side, inside a tunnel: every request of a refused connection is answered 429."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in one send when the request is done, not in a syscall each.
    wbufsize = 1 << 16

    def __init__(self, request, client_address, server, *, state: State, refused: bool) -> None:
        # The state comes with the tunnel, not through `server`: the proxy's server imports this handler.
        self.state, self.refused = state, refused
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
        state = self.state
        symbol = match["symbol"] if endpoint == "chart" and match else None
        fault = state.admit(endpoint, self.refused, symbol)
        if symbol is not None:
            state.charts_in_flight[self.client_address[1]] = symbol
        try:
            self._answer(endpoint, match, params, fault)
        finally:
            state.charts_in_flight.pop(self.client_address[1], None)

    def _answer(self, endpoint: str, match, params: dict, fault: str | None) -> None:
        state = self.state
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
                    ENVELOPES[endpoint], "Internal Server Error", "Internal Server Error (emulated fault)"
                ),
            )
        getattr(self, f"_{endpoint}")(match, params)

    def _now(self) -> dt.datetime:
        return (self.state.config.as_of or dt.datetime.now(dt.UTC)).astimezone(calendars.NEW_YORK)

    def _cookie(self, match, params) -> None:
        body = b"<html><body>Not Found (Yahoo emulator)</body></html>"
        self._send(404, body, "text/html", cookie_headers())

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
        state = self.state
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
        state = self.state
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
        seed, now = self.state.config.seed, self._now()
        modules = [m for m in params.get("modules", "").split(",") if m]
        if quote_type(symbol) not in SHARES:
            # Yahoo's answer when it has none of the modules asked for: fundamentals.py tells a company's or a
            # fund's, not an index's, a currency's, a coin's or a future's.
            description = f"No fundamentals data found for any of the summaryTypes={','.join(modules)}"
            return self._json(404, responses.error_body("quoteSummary", "Not Found", description))
        quote = quotes.quote_object(seed, symbol, history.latest(seed, symbol, now), now)
        self._json(*fundamentals.summary_body(quote, market.company(seed, symbol), modules))

    def _timeseries(self, match, params) -> None:
        symbol, seed = self._known(match["symbol"]), self.state.config.seed
        if symbol is None:
            return self._json(200, {"timeseries": {"result": [], "error": None}})
        types = [t for value in parse_qs(urlsplit(self.path).query).get("type", []) for t in value.split(",")]
        as_of = calendars.last_session(self._now())
        self._json(200, financials.timeseries_body(symbol, market.company(seed, symbol), types, as_of))

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
        if not _SYMBOL.fullmatch(symbol) or symbol in self.state.delisted:
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
