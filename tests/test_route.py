"""How collect reaches Yahoo: over TLS through a proxy (--proxy or HTTPS_PROXY), trusting --ca-bundle, and
what it says when the route or Yahoo refuses it: one line, exit 3, nothing collected before lost."""

import os
import socket
import threading
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest
import trustme

from conftest import run_cli, write_universe, yahoo_route
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


def test_a_run_leaves_nothing_in_the_temp_folder(emulator, collected):
    assert list(Path(os.environ["TMPDIR"]).iterdir()) == []


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
