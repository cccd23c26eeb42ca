"""The test harness itself, not the product: the loopback S3 store and the fault proxy that the product's
tests run against. IAM refusals as real S3 gives them, conditional puts, s3fs and DuckDB reading what
obstore wrote, signatures intact through the proxy, faults that obstore's retries absorb or not, and nothing
left listening after either stops: if these fail, a product test's verdict means nothing.

Nothing here imports etl/. The product's own promises on a bucket are held by tests that run the product:
retries and resets (test_s3_lake.py::test_store_errors_and_resets_are_retried_and_the_run_completes),
credentials refused (test_s3_lake.py::test_bad_lake_input_is_one_line_before_any_fetch), the lease
(test_s3_lake.py), a downstream reader of the bucket
(test_readme.py::test_the_s3_example_reads_a_lake_in_the_loopback_store), crashes in a bucket
(test_crash.py). The obstore facts checked here (a reset conditional put is not resent) are the ones
etl/lake/s3.py's design rests on, kept so that an obstore upgrade that changes them is seen at once."""

import http.client
import io
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import obstore
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import s3fs
from obstore.exceptions import AlreadyExistsError, GenericError, PermissionDeniedError, PreconditionError
from obstore.store import S3Store

from fault_proxy import FAULT_KINDS, REQUEST_KINDS, FaultProxy, to_request_kind
from s3_store import LoopbackS3

# Fast backoff, so that a test that exhausts its retries takes milliseconds.
BACKOFF = {"init_backoff": timedelta(milliseconds=10), "max_backoff": timedelta(milliseconds=50)}


def retries(max_retries: int) -> dict:
    """obstore's retry_config with `max_retries` and the fast backoff."""
    return {"max_retries": max_retries, "backoff": BACKOFF, "retry_timeout": timedelta(seconds=5)}


@pytest.fixture
def store(s3_store):
    """The session's store (conftest.py): a process runs one at a time."""
    return s3_store


@pytest.fixture
def bucket(store) -> str:
    return store.new_bucket()


@pytest.fixture
def use_role(store, monkeypatch):
    """Point the AWS_* environment at the store (or a proxy in front of it) with the keys of a role."""

    def use(role: str, endpoint_url: str | None = None) -> None:
        for name, value in store.env(role, endpoint_url).items():
            monkeypatch.setenv(name, value)

    return use


@pytest.fixture
def proxy(store):
    with FaultProxy(store.endpoint_url, seed=0) as fault_proxy:
        yield fault_proxy


def counted(**counts: int) -> dict[str, int]:
    """A counts() dict: the counts given, zero for every other kind."""
    return dict.fromkeys(REQUEST_KINDS + FAULT_KINDS, 0) | counts


class TestStore:
    """IAM enforcement, conditional puts and the readers, straight to the store."""

    def test_a_second_create_only_put_is_already_exists(self, bucket, use_role):
        use_role("writer")
        lake = S3Store(bucket)
        obstore.put(lake, "runs/1.json", b"first", mode="create")
        with pytest.raises(AlreadyExistsError):
            obstore.put(lake, "runs/1.json", b"second", mode="create")
        assert bytes(obstore.get(lake, "runs/1.json").bytes()) == b"first"

    def test_an_update_with_a_stale_etag_is_a_precondition_error(self, bucket, use_role):
        use_role("writer")
        lake = S3Store(bucket)
        stale = obstore.put(lake, "manifest.json", b"v1", mode="create")["e_tag"]
        obstore.put(lake, "manifest.json", b"v2", mode={"e_tag": stale})
        with pytest.raises(PreconditionError):
            obstore.put(lake, "manifest.json", b"v3", mode={"e_tag": stale})
        assert bytes(obstore.get(lake, "manifest.json").bytes()) == b"v2"

    def test_the_reader_reads_and_lists_but_may_not_put(self, bucket, use_role):
        use_role("writer")
        obstore.put(S3Store(bucket), "bars/a.parquet", b"bars")
        use_role("reader")
        lake = S3Store(bucket)
        assert bytes(obstore.get(lake, "bars/a.parquet").bytes()) == b"bars"
        assert [meta["path"] for meta in obstore.list(lake).collect()] == ["bars/a.parquet"]
        with pytest.raises(PermissionDeniedError, match="(?s)403 Forbidden.*<Code>AccessDenied</Code>"):
            obstore.put(lake, "bars/b.parquet", b"bars")

    @pytest.mark.parametrize(
        ("role", "code"), [("wrong-secret", "SignatureDoesNotMatch"), ("unknown-key", "InvalidAccessKeyId")]
    )
    def test_bad_credentials_are_refused_on_every_request(self, bucket, use_role, role, code):
        use_role("writer")
        obstore.put(S3Store(bucket), "bars/a.parquet", b"bars")
        use_role(role)
        lake = S3Store(bucket)
        with pytest.raises(PermissionDeniedError, match=f"<Code>{code}</Code>"):
            obstore.put(lake, "bars/b.parquet", b"bars")
        with pytest.raises(PermissionDeniedError, match=f"<Code>{code}</Code>"):
            obstore.get(lake, "bars/a.parquet")
        # obstore reports a refused list as a generic error, with the same S3 code.
        with pytest.raises(GenericError, match=f"<Code>{code}</Code>"):
            obstore.list(lake).collect()

    @pytest.mark.parametrize(
        ("role", "message"),
        [
            ("reader", "Access Denied"),
            ("wrong-secret", "signature we calculated does not match"),
            ("unknown-key", "Access Key Id you provided does not exist"),
        ],
    )
    def test_s3fs_is_refused_as_obstore_is(self, bucket, use_role, role, message):
        use_role(role)
        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        with pytest.raises(PermissionError, match=message):
            fs.pipe(f"{bucket}/bars/a.parquet", b"bars")

    def test_s3fs_finds_the_store_from_the_environment_and_reads_what_obstore_wrote(self, bucket, use_role):
        use_role("writer")
        obstore.put(S3Store(bucket), "bars/a.parquet", b"bars")
        use_role("reader")
        # No endpoint passed: botocore reads AWS_ENDPOINT_URL; a new instance, not fsspec's cached one.
        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        assert fs.ls(f"{bucket}/bars") == [f"{bucket}/bars/a.parquet"]
        assert fs.cat(f"{bucket}/bars/a.parquet") == b"bars"

    def test_duckdb_reads_parquet_through_s3fs(self, bucket, use_role):
        use_role("writer")
        parquet = io.BytesIO()
        pq.write_table(pa.table({"symbol": ["MSFT", "AAPL"], "close": [1.5, 2.5]}), parquet)
        obstore.put(S3Store(bucket), "bars/part-0.parquet", parquet.getvalue(), mode="create")
        use_role("reader")
        db = duckdb.connect()
        db.register_filesystem(s3fs.S3FileSystem(skip_instance_cache=True))
        rows = db.sql(f"from read_parquet('s3://{bucket}/bars/*.parquet') order by symbol").fetchall()
        assert rows == [("AAPL", 2.5), ("MSFT", 1.5)]

    def test_a_second_store_runs_beside_the_first_with_buckets_of_its_own(self, store):
        with LoopbackS3() as second:
            assert second.endpoint_url != store.endpoint_url
            second.new_bucket("only-in-the-second")
            store.new_bucket("only-in-the-second")  # no clash: the first store never saw it
        assert store.new_bucket()  # the running one is untouched


class TestFaultProxy:
    """The proxy in front of the store: what passes through, what it breaks, what obstore's retries absorb."""

    def test_signed_requests_pass_through_unchanged(self, bucket, use_role, proxy):
        use_role("writer", proxy.url)
        lake = S3Store(bucket)
        obstore.put(lake, "bars/a.parquet", b"bars", mode="create")
        assert obstore.head(lake, "bars/a.parquet")["size"] == 4
        assert bytes(obstore.get(lake, "bars/a.parquet").bytes()) == b"bars"
        assert [meta["path"] for meta in obstore.list(lake).collect()] == ["bars/a.parquet"]
        obstore.delete(lake, "bars/a.parquet")
        assert proxy.counts() == counted(PUT=1, HEAD=1, GET=1, LIST=1, DELETE=1)

    def test_s3fs_requests_pass_through_unchanged(self, bucket, use_role, proxy):
        use_role("writer", proxy.url)
        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        fs.pipe(f"{bucket}/bars/a.parquet", b"bars")
        assert fs.cat(f"{bucket}/bars/a.parquet") == b"bars"
        assert proxy.counts()["PUT"] == 1 and proxy.counts()["GET"] >= 1

    def test_a_down_store_fails_a_put_after_its_retries_with_503(self, bucket, use_role, proxy):
        use_role("writer", proxy.url)
        proxy.down = True
        with pytest.raises(GenericError, match="after 2 retries.*503 Service Unavailable"):
            obstore.put(S3Store(bucket, retry_config=retries(2)), "bars/a.parquet", b"bars")
        assert proxy.counts() == counted(PUT=3, down=3)

    def test_retries_get_every_put_through_errors_and_resets(self, bucket, use_role, proxy):
        # Seed 0 draws at most 4 faults in a row for these 20 puts, within the 10 retries (seed 7 draws 22).
        use_role("writer", proxy.url)
        lake = S3Store(bucket, retry_config=retries(10))
        proxy.error_rate, proxy.reset_rate = 0.5, 0.2
        for number in range(20):
            obstore.put(lake, f"bars/{number}.parquet", b"bars")
        counts = proxy.counts()
        assert counts["error"] > 0 and counts["reset"] > 0
        assert counts["PUT"] == 20 + counts["error"] + counts["reset"]
        proxy.error_rate = proxy.reset_rate = 0.0
        assert len(obstore.list(lake).collect()) == 20

    def test_without_retries_the_same_faults_fail_puts(self, bucket, use_role, proxy):
        use_role("writer", proxy.url)
        lake = S3Store(bucket, retry_config=retries(0))
        proxy.error_rate, proxy.reset_rate = 0.5, 0.2
        failed = 0
        for number in range(20):
            try:
                obstore.put(lake, f"bars/{number}.parquet", b"bars")
            except GenericError:
                failed += 1
        assert failed == proxy.counts()["error"] + proxy.counts()["reset"] > 0

    @pytest.mark.parametrize(("mode", "attempts"), [("overwrite", 3), ("create", 1), ("update", 1)])
    def test_obstore_retries_a_reset_put_only_when_it_is_unconditional(
        self, bucket, use_role, proxy, mode, attempts
    ):
        # A conditional put is not idempotent to obstore: a lost connection is the caller's to resolve.
        use_role("writer", proxy.url)
        lake = S3Store(bucket, retry_config=retries(2))
        e_tag = obstore.put(lake, "manifest.json", b"v1")["e_tag"]
        proxy.reset_counts()
        proxy.reset_rate = 1.0
        with pytest.raises(GenericError, match="kind: Interrupted(?s:.*)Connection reset by peer"):
            obstore.put(lake, "manifest.json", b"v2", mode={"e_tag": e_tag} if mode == "update" else mode)
        assert proxy.counts() == counted(PUT=attempts, reset=attempts)

    def test_a_stalled_request_is_forwarded_once_the_stall_ends(self, bucket, use_role, proxy):
        use_role("writer", proxy.url)
        proxy.stall_rate, proxy.stall_s = 1.0, 0.01
        obstore.put(S3Store(bucket), "bars/a.parquet", b"bars", mode="create")
        assert proxy.counts() == counted(PUT=1, stall=1)

    def test_a_stall_past_the_clients_timeout_times_it_out(self, bucket, use_role, proxy):
        # The proxy's exit then ends the 60 s stall at once: the test takes milliseconds, not a minute.
        use_role("writer", proxy.url)
        proxy.stall_rate, proxy.stall_s = 1.0, 60.0
        # client_options replace those obstore took from the environment: AWS_ALLOW_HTTP's with them.
        lake = S3Store(
            bucket, retry_config=retries(0), client_options={"timeout": "100ms", "allow_http": True}
        )
        with pytest.raises(GenericError, match="kind: Timeout"):
            obstore.put(lake, "bars/a.parquet", b"bars")
        assert proxy.counts() == counted(PUT=1, stall=1)


class _EchoUpstream(BaseHTTPRequestHandler):
    """An upstream that answers chunked, echoing the body it got and whether it came with a Content-Length."""

    protocol_version = "HTTP/1.1"

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("X-Saw-Chunked", str("Transfer-Encoding" in self.headers))
        self.end_headers()
        self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def echo_upstream() -> Iterator[str]:
    """The echoing upstream on a free loopback port; its URL."""
    with ThreadingHTTPServer(("127.0.0.1", 0), _EchoUpstream) as upstream:
        thread = threading.Thread(target=upstream.serve_forever, args=(0.01,), daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{upstream.server_address[1]}"
        finally:
            upstream.shutdown()
            thread.join()


def port_of(url: str) -> int:
    return urlsplit(url).port or 80


def test_the_proxy_reframes_chunked_bodies_and_keeps_the_connection_alive():
    with echo_upstream() as upstream_url, FaultProxy(upstream_url) as proxy:
        client = http.client.HTTPConnection("127.0.0.1", port_of(proxy.url))
        connections = []
        for body in (b"first", b"second"):
            client.request("PUT", "/bucket/key", body=iter([body[:2], body[2:]]), encode_chunked=True)
            answer = client.getresponse()
            assert (answer.read(), answer.getheader("Content-Length")) == (body, str(len(body)))
            assert answer.getheader("X-Saw-Chunked") == "False"
            assert answer.getheader("Transfer-Encoding") is None
            connections.append(client.sock)  # None had the proxy closed it
        client.close()
    assert connections[0] is connections[1] is not None
    assert proxy.counts()["PUT"] == 2


def test_a_store_that_cannot_be_reached_is_a_502():
    with socket.create_server(("127.0.0.1", 0)) as closed:
        closed_url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    with FaultProxy(closed_url) as proxy:
        client = http.client.HTTPConnection("127.0.0.1", port_of(proxy.url))
        client.request("GET", "/bucket/key")
        answer = client.getresponse()
        assert answer.status == 502 and b"<Code>BadGateway</Code>" in answer.read()
        client.close()


@pytest.mark.parametrize(
    ("method", "target", "kind"),
    [
        ("GET", "/bucket?list-type=2&prefix=bars%2F", "LIST"),
        ("GET", "/bucket/?prefix=bars", "LIST"),
        ("GET", "/bucket/bars/a.parquet", "GET"),
        ("GET", "/bucket?location", "GET"),
        ("POST", "/bucket?delete", "DELETE"),
        ("POST", "/bucket/big?uploads", "POST"),
        ("PUT", "/bucket/big?partNumber=1&uploadId=x", "PUT"),
        ("DELETE", "/bucket/bars/a.parquet", "DELETE"),
        ("HEAD", "/bucket/bars/a.parquet", "HEAD"),
    ],
)
def test_requests_are_counted_by_s3_kind(method, target, kind):
    assert to_request_kind(method, target) == kind


AFTER_EXIT = """
import socket, sys, threading
sys.path.insert(0, sys.argv[1])
import obstore
from obstore.store import S3Store
from fault_proxy import FaultProxy
from s3_store import LoopbackS3
import os
with LoopbackS3() as s3, FaultProxy(s3.endpoint_url) as proxy:
    os.environ.update(s3.env("writer", proxy.url))
    # Leaves a kept-alive connection in obstore's pool, which the proxy's exit must close.
    obstore.put(S3Store(s3.new_bucket()), "bars/a.parquet", b"bars")
for url in (s3.endpoint_url, proxy.url):
    try:
        socket.create_connection(("127.0.0.1", int(url.rpartition(":")[2])), timeout=5).close()
        sys.exit(f"{url} still listens")
    except ConnectionRefusedError:
        pass
assert "fault-proxy" not in [thread.name for thread in threading.enumerate()]
print("closed")
"""


def test_after_exit_neither_server_listens():
    # In a process of its own: this one's session store must keep running.
    child = subprocess.run(
        [sys.executable, "-c", AFTER_EXIT, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0 and child.stdout == "closed\n", child.stderr[-2000:]
