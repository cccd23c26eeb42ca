"""DuckDB's way into a lake in a bucket: obstore, the job's own S3 client (etl/lake/s3.py), as the
connection's fsspec filesystem, handed the job's own listing and keeping small objects.

One S3 client for the job's writes and DuckDB's reads, with the same timeouts, retries and credentials
(a profile's through boto3's chain). DuckDB's own S3 reader, httpfs, is an extension downloaded at run time,
which a machine without internet cannot; fsspec is DuckDB's way to read through a client of Python's.
Imported only for a lake in a bucket.
"""

import datetime as dt
import io
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import duckdb
from obstore.fsspec import FsspecStore

from etl.lake.paths import Lake
from etl.lake.s3 import Listed, S3Store, store_options

# A lake object DuckDB reads is kept in memory for the connection up to this size: runs, batches, failures,
# a day's quotes. Larger ones (a year's bars) are read in ranges.
SMALL_OBJECT_BYTES = 1 << 20
PREFETCH_IN_FLIGHT = 16


class LakeFileSystem(FsspecStore):
    """obstore's fsspec store reading each small object once, and each object's size and date from the job's
    listing: the lake's objects are never replaced, and DuckDB opens one again for every view it binds (a
    run's manifest, for one, is read by most views)."""

    protocol = "s3"
    cachable = False  # its listing and its objects are this connection's alone

    def __init__(self) -> None:
        super().__init__(**store_options())
        self.small_objects: dict[str, bytes] = {}

    def _open(self, path, mode="rb", **kwargs):
        if mode != "rb" or self.info(path)["size"] > SMALL_OBJECT_BYTES:
            return super()._open(path, mode, **kwargs)
        if path not in self.small_objects:
            self.small_objects[path] = self.cat_file(path)
        return io.BytesIO(self.small_objects[path])

    async def _info(self, path: str, **kwargs) -> dict:
        # DuckDB names files by s3:// URL, the listing by bucket and key; obstore does not strip the scheme.
        return await super()._info(self._strip_protocol(path), **kwargs)

    def modified(self, path: str) -> dt.datetime:
        return self.info(path)["last_modified"]


class BucketReader:
    """DuckDB's way into the lake's bucket, for one connection, and the files it is to read.

    The lake is listed once, by the job, and the filesystem is handed that listing as its cache: DuckDB asks
    for a file's size and date several times a view, each a HEAD request otherwise (190 for a connection to
    a small lake). The connection sees the lake as it was listed; a run published later is the next one's.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
        self.lake = lake
        self.listed = cast(S3Store, lake.store).list_objects(lake.key(""))
        self.filesystem = self._register(con)

    def _register(self, con: duckdb.DuckDBPyConnection) -> LakeFileSystem:
        filesystem = LakeFileSystem()
        for listed in self.listed:
            name = self.lake.store.url(listed.key).removeprefix("s3://")
            filesystem.dircache.setdefault(name.rpartition("/")[0], []).append(_to_entry(name, listed))
        con.register_filesystem(filesystem)
        return filesystem

    def prefetch(self, urls: Iterable[str]) -> None:
        """Fetch the small files of these now, side by side."""
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


def _to_entry(name: str, listed: Listed) -> dict:
    """An object as the filesystem lists it itself."""
    return {"name": name, "size": listed.size, "type": "file", "last_modified": listed.modified_at}
