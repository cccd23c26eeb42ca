"""The emulator's front door: an HTTPS proxy that tunnels to Yahoo's hosts only, judges each client's
ClientHello as Yahoo does, speaks TLS with Yahoo's names inside the tunnel, and serves the `/__emulator/`
control paths over plain HTTP."""

import json
import logging
import re
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from etl.emulator import tls
from etl.emulator.config import EmulatorConfig
from etl.emulator.routes import YahooHandler
from etl.emulator.state import State

log = logging.getLogger(__name__)

# What the tunnel may open: Yahoo's hosts on 443, as a client configured for Yahoo asks for them.
_YAHOO_TARGET = re.compile(r"(?:[a-z0-9-]+\.)*yahoo\.com:443")


class ProxyHandler(BaseHTTPRequestHandler):
    """The proxy's side of a connection: CONNECT to a Yahoo host opens the tunnel, and the control paths."""

    protocol_version = "HTTP/1.1"
    # Unbuffered, so reading the CONNECT request can never take the first bytes of the ClientHello.
    rbufsize = 0
    server: "ProxyServer"

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
            YahooHandler(tunnel, self.client_address, self.server, state=self.server.state, refused=refused)
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


class ProxyServer(ThreadingHTTPServer):
    """The proxy's listening socket, a thread a connection, and what every tunnel shares: state and TLS."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, config: EmulatorConfig, tls_context: ssl.SSLContext) -> None:
        super().__init__((config.host, config.port), ProxyHandler)
        self.state = State(config)
        self.tls_context = tls_context

    def handle_error(self, request, client_address) -> None:
        """A client that hung up (killed, timed out) is no server error; anything else is printed as usual."""
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError)):
            super().handle_error(request, client_address)
