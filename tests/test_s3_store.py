"""The loopback S3 store: IAM refusals as real S3 gives them, conditional puts, s3fs and DuckDB reading what
obstore wrote, and nothing left listening after it stops."""

import io
import socket
from urllib.parse import urlsplit

import duckdb
import obstore
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import s3fs
from obstore.exceptions import AlreadyExistsError, GenericError, PermissionDeniedError, PreconditionError
from obstore.store import S3Store

from s3_store import LoopbackS3


@pytest.fixture(scope="class")
def store():
    """One store a class: the tests outside the classes start their own, and a process runs one at a time."""
    with LoopbackS3() as s3:
        yield s3


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

    def test_a_second_store_in_the_same_process_is_refused(self, store):
        with pytest.raises(RuntimeError, match="already runs in this process"), LoopbackS3():
            pass
        assert store.new_bucket()  # the running one is untouched


def port_of(url: str) -> int:
    return urlsplit(url).port or 80


def test_after_exit_the_store_does_not_listen(monkeypatch):
    with LoopbackS3() as s3:
        for name, value in s3.env("writer").items():
            monkeypatch.setenv(name, value)
        obstore.put(S3Store(s3.new_bucket()), "bars/a.parquet", b"bars")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port_of(s3.endpoint_url)), timeout=5).close()
