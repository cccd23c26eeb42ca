"""DuckDB's way into a lake in a bucket: its own httpfs where that loads, else s3fs, handed the job's own
listing and keeping small objects.

httpfs is DuckDB's faster S3 reader, but an extension downloaded at run time (`INSTALL httpfs`, once, on a
machine with internet); offline it does not load, and s3fs (botocore), registered as a filesystem, reads
instead. s3fs reads the AWS chain itself: keys, AWS_PROFILE, ~/.aws, AWS_REGION, AWS_ENDPOINT_URL.
Imported only for a lake in a bucket.
"""

import io
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import cast
from urllib.parse import urlsplit

import duckdb
import s3fs

from etl.lake.paths import Lake
from etl.lake.s3 import Listed, S3Store
from etl.queries import load_sql

# A lake object DuckDB reads is kept in memory for the connection up to this size: runs, batches, failures,
# a day's quotes. Larger ones (a year's bars) are read in ranges, as s3fs does.
SMALL_OBJECT_BYTES = 1 << 20
PREFETCH_IN_FLIGHT = 16


class LakeFileSystem(s3fs.S3FileSystem):
    """s3fs reading each small object once: the lake's objects are never replaced, and DuckDB opens one again
    for every view it binds (a run's manifest, for one, is read by most views)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.small_objects: dict[str, bytes] = {}

    def _open(self, path, mode="rb", **kwargs):
        if mode != "rb" or self.info(path)["size"] > SMALL_OBJECT_BYTES:
            return super()._open(path, mode, **kwargs)
        if path not in self.small_objects:
            self.small_objects[path] = self.cat_file(path)
        return io.BytesIO(self.small_objects[path])


class BucketReader:
    """DuckDB's way into the lake's bucket, for one connection, and the files it is to read.

    The lake is listed once, by the job; where s3fs reads, it is handed that listing as its cache: DuckDB asks
    for a file's size and date several times a view, each a HEAD request otherwise (190 for a connection to
    a small lake). The connection sees the lake as it was listed; a run published later is the next one's.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
        self.lake = lake
        self.listed = cast(S3Store, lake.store).list_objects(lake.key(""))
        self.filesystem = None if use_httpfs(con) else self._register_s3fs(con)

    def _register_s3fs(self, con: duckdb.DuckDBPyConnection) -> LakeFileSystem:
        filesystem = LakeFileSystem(
            client_kwargs={"endpoint_url": _endpoint()} if _endpoint() else {},
            use_listings_cache=True,
            listings_expiry_time=None,
            skip_instance_cache=True,  # its listing and its objects are this connection's alone
        )
        for listed in self.listed:
            name = self.lake.store.url(listed.key).removeprefix("s3://")
            filesystem.dircache.setdefault(name.rpartition("/")[0], []).append(_to_entry(name, listed))
        con.register_filesystem(filesystem)
        return filesystem

    def prefetch(self, urls: Iterable[str]) -> None:
        """Fetch the small files of these now, side by side, where s3fs reads (httpfs reads them itself)."""
        if self.filesystem is None:
            return
        sizes = {self.lake.store.url(listed.key): listed for listed in self.listed}
        small = {
            url.removeprefix("s3://"): sizes[url].key
            for url in urls
            if url in sizes and sizes[url].size <= SMALL_OBJECT_BYTES
        }
        self._prefetch(self.filesystem, small)

    def _prefetch(self, filesystem: LakeFileSystem, small: dict[str, str]) -> None:
        """DuckDB reads every file's footer to bind the views, one round trip after another: the small files
        (a run's manifest, a day's quotes) are fetched here side by side instead."""
        with ThreadPoolExecutor(max_workers=PREFETCH_IN_FLIGHT) as pool:
            fetched = pool.map(self.lake.store.get, small.values())
            filesystem.small_objects.update(zip(small, fetched, strict=True))


def use_httpfs(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether DuckDB reads the bucket itself: httpfs is installed, and the keys are in the environment (a
    profile's would need DuckDB's aws extension as well; s3fs reads those)."""
    key_id, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not (key_id and secret):
        return False
    try:
        con.execute(load_sql("load_httpfs"))
    except duckdb.Error:  # not installed, and offline it cannot be
        return False
    endpoint = urlsplit(_endpoint() or "https://s3.amazonaws.com")
    settings = {
        "key_id": key_id,
        "secret": secret,
        "session_token": os.environ.get("AWS_SESSION_TOKEN", ""),
        "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        "endpoint": endpoint.netloc,
        "use_ssl": endpoint.scheme == "https",
        # S3-compatible stores (MinIO, moto, Ceph) are addressed by path; AWS itself by virtual host.
        "url_style": "vhost" if endpoint.netloc.endswith("amazonaws.com") else "path",
    }
    con.execute(load_sql("set_s3"), {"settings": settings})
    con.execute(load_sql("s3_secret"))
    return True


def _endpoint() -> str | None:
    """An S3-compatible store's endpoint, as the AWS chain names it."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")


def _to_entry(name: str, listed: Listed) -> dict:
    """An object as s3fs lists it itself."""
    return {
        "name": name,
        "Key": name,
        "size": listed.size,
        "type": "file",
        "LastModified": listed.modified_at,
    }
