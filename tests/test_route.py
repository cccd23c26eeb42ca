"""How collect reaches Yahoo: over TLS through a proxy (--proxy or HTTPS_PROXY), trusting --ca-bundle, and
what it says when the route or Yahoo refuses it: one line, exit 3, nothing collected before lost."""

import os
import selectors
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest
import trustme

from conftest import hold_stalled_requests, run_cli, start_cli, write_universe, yahoo_route
from etl.emulator import Emulator, EmulatorConfig

SYMBOLS = ["AAPL", "MSFT", "KO"]


def lake_files(lake_dir: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in lake_dir.rglob("*") if path.is_file()}


def runs(lake_dir: Path) -> list[tuple]:
    return duckdb.execute(
        f"select status, api_calls, settings from read_parquet('{lake_dir}/runs/*.parquet') "
        "order by started_at"
    ).fetchall()


def error_lines(result) -> list[str]:
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


@pytest.fixture
def collected(emulator, tmp_path, lake_dir):
    """A lake holding one good run, and its files' bytes: what a failed run must leave as it was."""
    universe = write_universe(tmp_path / "u.txt", SYMBOLS)
    result = run_cli("collect", *yahoo_route(emulator), "--universe", str(universe), "--lake", str(lake_dir))
    assert result.returncode == 0, result.stderr
    return universe, lake_files(lake_dir)


def test_every_request_goes_over_tls_passes_the_fingerprint_check_and_is_counted(
    emulator, collected, lake_dir
):
    ((status, api_calls, _),) = runs(lake_dir)
    assert status == "succeeded"
    assert api_calls == emulator.total_requests() == 2 + 1 + len(SYMBOLS)  # cookie, crumb, one quote, charts
    tls = emulator.tls_stats()
    assert tls["connections"] > 0 and tls["blocked_connections"] == 0 and "blocked" not in emulator.faults()
    assert len(tls["fingerprints"]) == 1  # one client, one ClientHello


def test_https_proxy_in_the_environment_is_the_route_without_any_option(emulator, tmp_path, lake_dir):
    universe = write_universe(tmp_path / "u.txt", SYMBOLS)
    result = run_cli(
        "collect",
        "--ca-bundle",
        str(emulator.ca_path),
        "--universe",
        str(universe),
        "--lake",
        str(lake_dir),
        env={"HTTPS_PROXY": emulator.proxy_url},
    )
    assert result.returncode == 0, result.stderr
    assert runs(lake_dir)[0][1] == emulator.total_requests() > 0


def test_a_proxys_credentials_are_never_printed_nor_stored(emulator, tmp_path, lake_dir):
    universe = write_universe(tmp_path / "u.txt", SYMBOLS)
    proxy = emulator.proxy_url.replace("http://", "http://etl:s3cret@")
    args = [
        "collect",
        "--proxy",
        proxy,
        "--ca-bundle",
        str(emulator.ca_path),
        "--universe",
        str(universe),
        "--lake",
        str(lake_dir),
    ]
    shown = run_cli(*args, "--show-config")
    assert "http://***@127.0.0.1" in shown.stdout
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert "***@127.0.0.1" in runs(lake_dir)[0][2]
    everything = shown.stdout + shown.stderr + result.stdout + result.stderr
    assert "s3cret" not in everything and not any(b"s3cret" in data for data in lake_files(lake_dir).values())


def folder_contents(folder: Path) -> dict[str, list[str]]:
    """Each entry of the folder, and the files under it if it is a folder."""
    return {
        entry.name: sorted(str(path.relative_to(entry)) for path in entry.rglob("*"))
        if entry.is_dir()
        else []
        for entry in folder.iterdir()
    }


def temp_folders_of_a_held_run(
    monkeypatch, tmp_path, lake_dir, watched: tuple[Path, ...], env: dict | None = None
) -> tuple[list[dict], list[dict]]:
    """The `watched` folders' contents while a collect waits for its first chart (its handshake done), and
    once it has ended."""
    release = hold_stalled_requests(monkeypatch)
    universe = write_universe(tmp_path / "u.txt", SYMBOLS)
    # The emulator's CA outside TMPDIR: the test's process's own temporary files are not the run's.
    config = EmulatorConfig(
        stall_first_chart=frozenset(SYMBOLS[:1]), stall_s=120, ca_path=tmp_path / "ca.pem"
    )
    with Emulator(config) as emulator:
        where = ["--universe", str(universe), "--lake", str(lake_dir), "--quiet"]
        run = start_cli("collect", *yahoo_route(emulator), *where, env=env, capture=True)
        try:
            deadline = time.monotonic() + 60
            while not emulator.faults().get("stall"):  # until the run is fetching its first chart
                assert run.poll() is None and time.monotonic() < deadline, "the run never fetched a chart"
                time.sleep(0.01)  # a poll for the fact above, not a wait for luck
            during = [folder_contents(folder) for folder in watched]
        finally:
            release.set()
            _, stderr = run.communicate(timeout=120)
    assert run.returncode == 0, stderr
    return during, [folder_contents(folder) for folder in watched]


def test_a_run_keeps_yfinances_caches_in_a_folder_of_its_own_under_tmpdir_and_removes_it_when_it_ends(
    monkeypatch, tmp_path, lake_dir
):
    ([during], [after]) = temp_folders_of_a_held_run(
        monkeypatch, tmp_path, lake_dir, (Path(os.environ["TMPDIR"]),)
    )
    # Made and used: one folder, the run's own, holding the cookie of the handshake the run has done.
    assert [name.startswith("etl-yfinance-") for name in during] == [True], during
    (files,) = during.values()
    assert "cookies.db" in files, during
    assert after == {}  # and removed when the run ended, leaving nothing else either


def test_the_control_a_run_given_another_tmpdir_makes_its_folder_there_not_in_the_tests(
    monkeypatch, tmp_path, lake_dir
):
    # The assertion above can fail: the folder goes where TMPDIR says, so the test's TMPDIR is what it saw.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    watched = (Path(os.environ["TMPDIR"]), elsewhere)
    ([tests, other], after) = temp_folders_of_a_held_run(
        monkeypatch, tmp_path, lake_dir, watched, env={"TMPDIR": str(elsewhere)}
    )
    assert tests == {} and [name.startswith("etl-yfinance-") for name in other] == [True]
    assert after == [{}, {}]


def test_a_ca_bundle_that_does_not_sign_yahoos_certificate_is_an_outage_in_one_line(
    emulator, collected, tmp_path, lake_dir
):
    universe, before = collected
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    result = run_cli(
        "collect",
        "--proxy",
        emulator.proxy_url,
        "--ca-bundle",
        str(other_ca),
        "--universe",
        str(universe),
        "--lake",
        str(lake_dir),
        "--full-refresh",
    )
    assert result.returncode == 3
    (line,) = error_lines(result)
    assert "Yahoo's TLS certificate is not trusted" in line and "--ca-bundle" in line
    assert_earlier_run_kept(lake_dir, before)


def test_a_proxy_that_refuses_connections_is_an_outage_naming_it(collected, lake_dir):
    universe, before = collected
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    result = run_cli("collect", "--proxy", closed, "--universe", str(universe), "--lake", str(lake_dir))
    assert result.returncode == 3
    (line,) = error_lines(result)
    assert "cannot connect to Yahoo" in line and f"check the proxy {closed}" in line
    assert_earlier_run_kept(lake_dir, before)


def test_a_failed_tls_handshake_is_an_outage_in_one_line(collected, lake_dir):
    universe, before = collected
    with not_tls_proxy() as proxy_url:
        result = run_cli(
            "collect", "--proxy", proxy_url, "--universe", str(universe), "--lake", str(lake_dir)
        )
    assert result.returncode == 3
    (line,) = error_lines(result)
    assert "the TLS handshake with Yahoo failed" in line and proxy_url in line
    assert_earlier_run_kept(lake_dir, before)


def test_yahoo_refusing_the_client_ends_the_run_after_its_first_batch(tmp_path, lake_dir):
    universe = write_universe(tmp_path / "u.txt", [f"S{i:03d}" for i in range(40)])
    with Emulator(EmulatorConfig(refuse_all=True)) as refusing:
        result = run_cli(
            "collect", *yahoo_route(refusing), "--universe", str(universe), "--lake", str(lake_dir)
        )
        assert refusing.faults()["blocked"] == refusing.total_requests()
    assert result.returncode == 3
    (line,) = error_lines(result)
    assert "Yahoo is refusing this client" in line and "--proxy" in line and "fingerprint" in line
    n_batches = duckdb.execute(
        f"select count(*) from read_parquet('{lake_dir}/batches/**/*.parquet')"
    ).fetchone()
    assert n_batches == (1,)  # of 4: the first batch told, and no more requests were spent
    assert runs(lake_dir)[0][0] == "source_outage"


def route_by_environment(emulator, tmp_path, lake_dir, env: dict[str, str], *options: str):
    """collect with the proxy variables `env` (and no --proxy unless in `options`); the emulator's CA, so
    that no answer but the emulator's is trusted: a run that went past every proxy to a real Yahoo would
    fail its TLS handshake before sending a request, and a short timeout ends one that hangs."""
    universe = write_universe(tmp_path / "u.txt", SYMBOLS)
    where = ["--universe", str(universe), "--lake", str(lake_dir), "--timeout-s", "5", *options]
    return run_cli("collect", "--ca-bundle", str(emulator.ca_path), *where, env=env)


def test_a_socks5h_proxy_in_all_proxy_carries_the_run_and_resolves_yahoos_names_itself(
    emulator, tmp_path, lake_dir
):
    with socks5_relay(emulator) as socks:
        result = route_by_environment(emulator, tmp_path, lake_dir, {"ALL_PROXY": socks.url})
    assert result.returncode == 0, result.stderr
    assert runs(lake_dir)[0][1] == emulator.total_requests() == 2 + 1 + len(SYMBOLS)
    # socks5h: the client sent Yahoo's names, not addresses it had resolved (DNS beyond the proxy)...
    assert {kind for kind, _, _ in socks.asked} == {SOCKS_DOMAIN}
    assert all(host.endswith(".yahoo.com") and port == 443 for _, host, port in socks.asked)
    # ...and each became a tunnel of the emulator, which opens one to a Yahoo name only (403 to an address).
    assert emulator.tls_stats()["connections"] == len(socks.asked)


def test_no_proxy_naming_yahoos_hosts_takes_the_run_past_the_proxy(emulator, tmp_path, lake_dir):
    with socks5_relay(emulator) as socks:
        env = {"ALL_PROXY": socks.url, "NO_PROXY": ".yahoo.com"}
        result = route_by_environment(emulator, tmp_path, lake_dir, env)
    assert socks.connections == [] and emulator.total_requests() == 0
    # Straight to Yahoo, which this machine cannot reach (its name does not resolve offline): an outage.
    assert result.returncode == 3
    (line,) = error_lines(result)
    assert "cannot connect to Yahoo" in line and "HTTPS_PROXY / ALL_PROXY" in line


def test_an_explicit_socks5h_proxy_carries_the_run_whatever_no_proxy_says(emulator, tmp_path, lake_dir):
    with socks5_relay(emulator) as socks:
        env = {"NO_PROXY": ".yahoo.com"}
        result = route_by_environment(emulator, tmp_path, lake_dir, env, "--proxy", socks.url)
    assert result.returncode == 0, result.stderr
    assert len(socks.asked) == emulator.tls_stats()["connections"] > 0
    assert runs(lake_dir)[0][1] == emulator.total_requests() == 2 + 1 + len(SYMBOLS)


def assert_earlier_run_kept(lake_dir: Path, before: dict[Path, bytes]) -> None:
    """Every file of the earlier run is there unchanged; the failed run is recorded beside it."""
    after = lake_files(lake_dir)
    assert {path: after.get(path) for path in before} == before
    assert [status for status, _, _ in runs(lake_dir)] == ["succeeded", "source_outage"]


@contextmanager
def not_tls_proxy():
    """A proxy on loopback that opens the tunnel, then answers the ClientHello with bytes that are not TLS."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def answer() -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except OSError:
                return
            with client:
                request = b""
                while b"\r\n\r\n" not in request and (chunk := client.recv(4096)):
                    request += chunk
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\nthis is no TLS server\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        server.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the thread on Linux
        server.close()
        thread.join(timeout=5)


SOCKS_IPV4, SOCKS_DOMAIN = 1, 3  # RFC 1928's address types (and 4, IPv6)


@dataclass
class Socks:
    """What the SOCKS relay was asked: its clients' connections and the addresses they asked for."""

    url: str
    connections: list[tuple[str, int]] = field(default_factory=list)  # each client's address, as accepted
    asked: list[tuple[int, str, int]] = field(default_factory=list)  # (address type, host, port)


@contextmanager
def socks5_relay(emulator: Emulator) -> Iterator[Socks]:
    """A SOCKS5 proxy on loopback (no auth, CONNECT only) that carries each connection on through the
    emulator's HTTPS proxy, so the emulator gets the very address the client asked SOCKS for; stopped,
    with every connection it opened, when the block ends."""
    socks = Socks(url="")
    opened: list[socket.socket] = []

    class Relay(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            socks.connections.append(self.client_address)  # before anything is read: every connection counts
            opened.append(self.request)
            target = socks5_target(self.request)
            socks.asked.append(target)
            upstream = tunnel_through(emulator, target[1], target[2])
            if upstream is None:
                return self.request.sendall(b"\x05\x02\x00\x01" + bytes(6))  # not allowed
            opened.append(upstream)
            self.request.sendall(b"\x05\x00\x00\x01" + bytes(6))  # succeeded
            with upstream:
                pump(self.request, upstream)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Relay)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    socks.url = f"socks5h://127.0.0.1:{server.server_address[1]}"
    try:
        yield socks
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        for sock in opened:
            sock.close()


def socks5_target(client: socket.socket) -> tuple[int, str, int]:
    """The greeting (answered: no authentication) and the CONNECT request: the address asked for."""
    _, n_methods = recv_exactly(client, 2)
    recv_exactly(client, n_methods)
    client.sendall(b"\x05\x00")
    _, command, _, kind = recv_exactly(client, 4)
    assert command == 1, f"SOCKS command {command}: only CONNECT is served"
    if kind == SOCKS_DOMAIN:
        host = recv_exactly(client, recv_exactly(client, 1)[0]).decode()
    else:
        raw = recv_exactly(client, 4 if kind == SOCKS_IPV4 else 16)
        host = socket.inet_ntop(socket.AF_INET if kind == SOCKS_IPV4 else socket.AF_INET6, raw)
    return kind, host, int.from_bytes(recv_exactly(client, 2), "big")


def tunnel_through(emulator: Emulator, host: str, port: int) -> socket.socket | None:
    """A tunnel to host:port through the emulator's proxy (CONNECT), or None if it refused one."""
    proxy_host, proxy_port = emulator.proxy_url.removeprefix("http://").rsplit(":", 1)
    upstream = socket.create_connection((proxy_host, int(proxy_port)), timeout=10)
    upstream.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    answer = b""
    # The proxy sends nothing after its answer until the client's ClientHello, so this reads no TLS.
    while b"\r\n\r\n" not in answer and (chunk := upstream.recv(1)):
        answer += chunk
    if not answer.startswith(b"HTTP/1.1 200"):
        upstream.close()
        return None
    upstream.settimeout(None)
    return upstream


def pump(a: socket.socket, b: socket.socket) -> None:
    """Bytes both ways until either side hangs up."""
    with selectors.DefaultSelector() as selector:
        selector.register(a, selectors.EVENT_READ, (a, b))
        selector.register(b, selectors.EVENT_READ, (b, a))
        while True:
            for key, _ in selector.select():
                source, sink = key.data
                try:
                    data = source.recv(65536)
                    if not data:
                        return
                    sink.sendall(data)
                except OSError:  # reset by either side, or closed as the relay stops
                    return


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "the SOCKS client hung up mid-request"
        data += chunk
    return data
