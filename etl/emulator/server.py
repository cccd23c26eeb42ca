"""The emulator's server: an HTTPS proxy for Yahoo's hosts that judges each client's ClientHello, then Yahoo's
routes, its cookie and crumb handshake, fault knobs and request counters inside the tunnel.

A client reaches it as it would reach Yahoo through a corporate proxy: `CONNECT query1.finance.yahoo.com:443`,
then TLS with Yahoo's name (SNI), a certificate for Yahoo's names signed by the emulator's own CA, and
HTTP/1.1 with Yahoo's Host header and `.yahoo.com` cookies.
Plain HTTP serves only the `/__emulator/` control paths.
Its parts: the proxy (proxy.py), Yahoo's routes (routes.py), the cookie and crumb handshake (handshake.py),
and the counters and fault dice (state.py).
"""

import dataclasses
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import cast

from etl.emulator import tls
from etl.emulator.config import EmulatorConfig
from etl.emulator.proxy import ProxyServer

_DEFAULT_CONFIG = EmulatorConfig()


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
        self._server = ProxyServer(config, authority.server_context())
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

    def charts_in_flight(self) -> dict[int, str]:
        """The chart requests being answered now, by the client's port: the symbol each asks for."""
        return dict(self._server.state.charts_in_flight)

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
