"""Where the lake keeps things: which store holds it, its tables' keys, and its staging and lock beside it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from etl.config import S3_SCHEME, split_s3_url

if TYPE_CHECKING:
    from etl.lake.store import Store

# The `runs` table's folder (etl/schema.py names it so too), and the log beside every Delta table's files.
RUNS_DIR_NAME = "runs"
DELTA_LOG_DIR_NAME = "_delta_log"


@dataclass(frozen=True)
class Lake:
    """A lake: the store that holds it, and its name there; every key the job uses is made here."""

    url: str  # as the user named it: data/lake, s3://market/lake
    store: Store
    name: str

    @property
    def is_local(self) -> bool:
        return not self.url.startswith(S3_SCHEME)

    @property
    def root_url(self) -> str:
        """The lake's folder as readers name it: an absolute path, or s3://bucket/prefix."""
        return self.store.url(self.name)

    def key(self, *parts: str | Path) -> str:
        """A key inside the lake: `lake/bars/_delta_log/00000000000000000000.json`."""
        return "/".join((self.name, *map(str, parts)))

    def staging_key(self, *parts: str) -> str:
        """A key of the staging area beside the lake, never inside it: no glob over the lake lists it."""
        return "/".join((f".{self.name}.staging", *parts))

    @property
    def lock_key(self) -> str:
        """The single writer's lock, beside the lake."""
        return f".{self.name}.lock"

    def table_url(self, name: str) -> str:
        """A table's Delta table, as deltalake and every other reader names it."""
        return f"{self.root_url}/{name}"


def open_lake(location: str | Path | Lake) -> Lake:
    """The lake at a folder or an `s3://bucket/prefix` URL."""
    if isinstance(location, Lake):
        return location
    text = str(location)
    if text.startswith(S3_SCHEME):
        from etl.lake.s3 import S3Store  # obstore, only for a lake in a bucket

        bucket, parent, name = split_s3_url(text)
        return Lake(text, S3Store(bucket, parent), name)
    from etl.lake.store import LocalStore

    path = Path(os.path.abspath(text))
    return Lake(text, LocalStore(path.parent, path.parent / f".{path.name}.staging" / "pending"), path.name)
