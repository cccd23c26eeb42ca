"""DuckDB's way into a lake in a bucket: s3fs, handed the job's own listing, keeping small objects.

s3fs because DuckDB's httpfs extension is downloaded at run time, and these machines have no internet;
s3fs (botocore) reads the AWS chain itself: keys, AWS_PROFILE, ~/.aws, AWS_REGION, AWS_ENDPOINT_URL.
Imported only for a lake in a bucket.
"""

import io
import os
from typing import cast

import duckdb
import s3fs

from etl.lake.paths import Lake
from etl.lake.s3 import S3Store

# A lake object DuckDB reads is kept in memory for the connection up to this size: runs, batches, failures,
# a day's quotes. Larger ones (a year's bars) are read in ranges, as s3fs does.
SMALL_OBJECT_BYTES = 1 << 20


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
    for listed in cast(S3Store, lake.store).list_objects(lake.key("")):
        url = lake.store.url(listed.key)
        name = url.removeprefix("s3://")
        filesystem.dircache.setdefault(name.rpartition("/")[0], []).append(
            {
                "name": name,
                "Key": name,
                "size": listed.size,
                "type": "file",
                "LastModified": listed.modified_at,
            }
        )
        if listed.key.endswith(".parquet"):
            files.setdefault(listed.key.removeprefix(lake.key("")).partition("/")[0], []).append(url)
    con.register_filesystem(filesystem)
    return files
