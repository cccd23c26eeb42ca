"""DuckDB's way into a lake in a bucket: s3fs, handed the job's own listing, keeping small objects.

s3fs because DuckDB's httpfs extension is downloaded at run time, and these machines have no internet;
s3fs (botocore) reads the AWS chain itself: keys, AWS_PROFILE, ~/.aws, AWS_REGION, AWS_ENDPOINT_URL.
Imported only for a lake in a bucket.
"""

import io
import os
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import duckdb
import s3fs

from etl.lake.paths import Lake
from etl.lake.s3 import Listed, S3Store

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


def register_bucket(con: duckdb.DuckDBPyConnection, lake: Lake) -> dict[str, list[str]]:
    """Let DuckDB read the lake's bucket; each table's files, as listed now.

    The lake is listed once, by the job, and s3fs is handed that listing as its listings cache: DuckDB asks
    for a file's size and date several times a view, each a HEAD request otherwise (190 for a connection to
    a small lake). The connection sees the lake as it was listed; a run published later is the next one's.
    """
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    filesystem = LakeFileSystem(
        client_kwargs={"endpoint_url": endpoint} if endpoint else {},
        use_listings_cache=True,
        listings_expiry_time=None,
        skip_instance_cache=True,  # its listing and its objects are this connection's alone
    )
    files: dict[str, list[str]] = {}
    small: dict[str, str] = {}
    for listed in cast(S3Store, lake.store).list_objects(lake.key("")):
        name = lake.store.url(listed.key).removeprefix("s3://")
        filesystem.dircache.setdefault(name.rpartition("/")[0], []).append(_to_entry(name, listed))
        if listed.key.endswith(".parquet"):
            files.setdefault(listed.key.removeprefix(lake.key("")).partition("/")[0], []).append(
                f"s3://{name}"
            )
            if listed.size <= SMALL_OBJECT_BYTES:
                small[name] = listed.key
    _prefetch(filesystem, lake, small)
    con.register_filesystem(filesystem)
    return files


def _to_entry(name: str, listed: Listed) -> dict:
    """An object as s3fs lists it itself."""
    return {
        "name": name,
        "Key": name,
        "size": listed.size,
        "type": "file",
        "LastModified": listed.modified_at,
    }


def _prefetch(filesystem: LakeFileSystem, lake: Lake, small: dict[str, str]) -> None:
    """The small objects, fetched side by side: DuckDB reads every file's footer to bind the views, one round
    trip after another, and a run's manifest is a small object that compaction never merges."""
    with ThreadPoolExecutor(max_workers=PREFETCH_IN_FLIGHT) as pool:
        filesystem.small_objects.update(zip(small, pool.map(lake.store.get, small.values()), strict=True))
