"""A loopback HTTP reverse proxy in front of the S3 store that fails requests on purpose: errors, resets,
stalls and outages, drawn from a seeded die and changeable while it runs.

    with LoopbackS3() as s3, FaultProxy(s3.endpoint_url, seed=1, error_rate=0.2) as proxy:
        os.environ.update(s3.env("writer", endpoint_url=proxy.url))
        ...
        proxy.down = True  # from now on every request is answered 503

Each request is forwarded as it came (method, path and query, headers with the client's Host, body), so
the client's SigV4 signature still holds at the store; only the hop-by-hop headers are the proxy's own.
Clients keep their HTTP/1.1 connections to the proxy alive across requests (the store closes its own after
each answer); every answer has a Content-Length, whatever framing the store used.

The faults, read at each request:
- `down`: every request is answered 503 ServiceUnavailable, without forwarding.
- `reset_rate`: the share of requests whose connection is reset (TCP RST) once the request has been read.
- `error_rate`: the share answered 500 InternalError or 503 SlowDown (half each), S3's XML error body.
- `stall_rate`, `stall_s`: the share of the other requests held `stall_s` seconds before being forwarded.

`counts()` counts every request read by its S3 kind (REQUEST_KINDS), faulted or not, and each fault injected
by its kind (FAULT_KINDS).
"""

import functools
import http.client
import random
import socket
import struct
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

# LIST: a GET on a bucket that asks for its keys; DELETE: also S3's bulk delete (POST ?delete).
REQUEST_KINDS = ("PUT", "GET", "HEAD", "LIST", "DELETE", "POST")
FAULT_KINDS = ("down", "reset", "error", "stall")
# The connection's own headers, not the request's: each hop sets them, and SigV4 never signs them.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
)
# Not forwarded either: the proxy has already answered 100 Continue, and it frames the body itself.
_NOT_FORWARDED = _HOP_BY_HOP | {"expect", "content-length"}
_LIST_PARAMETERS = frozenset({"list-type", "prefix", "delimiter"})
_ERRORS = (
    (500, "InternalError", "We encountered an internal error. Please try again."),
    (503, "SlowDown", "Please reduce your request rate."),
)
_UPSTREAM_TIMEOUT_S = 30
_POLL_S = 0.01


class FaultProxy:
    """The proxy on 127.0.0.1 and a free port, forwarding to `upstream_url` (plain http)."""

    def __init__(
        self,
        upstream_url: str,
        *,
        seed: int = 0,
        error_rate: float = 0.0,
        reset_rate: float = 0.0,
        stall_s: float = 0.0,
        stall_rate: float = 0.0,
        down: bool = False,
    ) -> None:
        upstream = urlsplit(upstream_url)
        self.upstream = (upstream.hostname or "127.0.0.1", upstream.port or 80)
        self.error_rate = error_rate
        self.reset_rate = reset_rate
        self.stall_s = stall_s
        self.stall_rate = stall_rate
        self.down = down
        self._dice = random.Random(seed)
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def __enter__(self) -> Self:
        self._server = _Server(self)
        # A short poll: stopping waits for the accept loop's next look at its flag.
        serve = functools.partial(self._server.serve_forever, poll_interval=_POLL_S)
        self._thread = threading.Thread(target=serve, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()  # ends the stalls under way
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()  # closes the port and joins the connections' threads
        self._thread.join()

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT, to pass as the clients' endpoint."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def counts(self) -> dict[str, int]:
        """Requests read by kind and faults injected by kind, zeros included."""
        with self._lock:
            return {kind: self._counts[kind] for kind in REQUEST_KINDS + FAULT_KINDS}

    def reset_counts(self) -> None:
        """Start counting from zero (the die goes on where it was)."""
        with self._lock:
            self._counts.clear()

    def _admit(self, kind: str) -> str | None:
        """Count a request of `kind`; the fault to inject into it (one of FAULT_KINDS), or None."""
        with self._lock:
            self._counts[kind] += 1
            fault = self._draw()
            if fault:
                self._counts[fault] += 1
            return fault

    def _draw_error(self) -> tuple[int, str, str]:
        """The status, S3 error code and message of an injected error."""
        with self._lock:
            return self._dice.choice(_ERRORS)

    def _stall(self) -> bool:
        """Hold the request `stall_s` seconds; True if the proxy stopped meanwhile."""
        return self._stopping.wait(self.stall_s)

    def _draw(self) -> str | None:
        if self.down:
            return "down"
        draw = self._dice.random()
        if draw < self.reset_rate:
            return "reset"
        if draw < self.reset_rate + self.error_rate:
            return "error"
        if self.stall_rate and self._dice.random() < self.stall_rate:
            return "stall"
        return None


def to_request_kind(method: str, target: str) -> str:
    """The S3 kind of a path-style request (one of REQUEST_KINDS) from its method, path and query."""
    path, _, query = target.partition("?")
    parameters = parse_qs(query, keep_blank_values=True).keys()
    if method == "POST" and "delete" in parameters:
        return "DELETE"
    if method == "GET" and "/" not in path.strip("/") and parameters & _LIST_PARAMETERS:
        return "LIST"
    return method


class _Server(ThreadingHTTPServer):
    """The listening socket and one thread a connection; it keeps the connections to close them at stop."""

    def __init__(self, proxy: FaultProxy) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.proxy = proxy
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        # Here, in the accepting thread, so that close_connections sees every connection accepted before it.
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake the threads waiting for a kept-alive connection's next request: their reads end."""
        with self._connections_lock:
            for connection in self._connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:  # already gone
                    pass

    def handle_error(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        # A client that drops its connection (or one the proxy reset) is a fault under test, not a bug.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """One client connection: each request read whole, then faulted or forwarded."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def do_request(self) -> None:
        body = self._read_body()
        proxy = self.server.proxy
        fault = proxy._admit(to_request_kind(self.command, self.path))
        if fault == "down":
            self._answer_error(503, "ServiceUnavailable", "The fault proxy is down.")
        elif fault == "reset":
            self._reset()
        elif fault == "error":
            self._answer_error(*proxy._draw_error())
        elif fault == "stall" and proxy._stall():
            self.close_connection = True  # stopped while stalled: the request goes nowhere
        else:
            self._forward(body)

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = do_request

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunks()
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _read_chunks(self) -> bytes:
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0], 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers, up to the empty line
            pass
        return b"".join(chunks)

    def _forward(self, body: bytes) -> None:
        upstream = http.client.HTTPConnection(*self.server.proxy.upstream, timeout=_UPSTREAM_TIMEOUT_S)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _NOT_FORWARDED:
                    upstream.putheader(name, value)
            if body or "Content-Length" in self.headers:
                upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body)
            answer = upstream.getresponse()
            answer_body = answer.read()
        except OSError as exc:
            self._answer_error(502, "BadGateway", f"The fault proxy could not reach the store: {exc}")
            return
        finally:
            upstream.close()
        self._answer(answer.status, answer.getheaders(), answer_body)

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        # A HEAD answer's Content-Length is the object's size, 204 and 304 have none: passed on as they are.
        bodiless = self.command == "HEAD" or status in (204, 304)
        framing = _HOP_BY_HOP if bodiless else _HOP_BY_HOP | {"content-length"}
        self.send_response_only(status)
        for name, value in headers:
            if name.lower() not in framing:
                self.send_header(name, value)
        if not bodiless:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not bodiless:
            self.wfile.write(body)

    def _answer_error(self, status: int, code: str, message: str) -> None:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
            f"<Resource>{escape(self.path)}</Resource><RequestId>fault-proxy</RequestId></Error>"
        ).encode()
        self._answer(status, [("Content-Type", "application/xml")], body)

    def _reset(self) -> None:
        """Close the connection with a TCP RST and no answer, as a crashed server or a middlebox would."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the counts say what the proxy did."""
