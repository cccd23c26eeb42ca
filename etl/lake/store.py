"""Where the lake's objects live, a local folder or an S3 bucket, behind the same four operations.

Keys are `/`-separated and relative to the lake's parent (a folder, or a prefix of a bucket), so the
lake, its staging and its lock sit side by side whatever holds them: `lake/bars/...`,
`.lake.staging/...`, `.lake.lock`. The job's own writes here (staging, lock) are create-only and whole:
an object appears complete or not at all; the Delta tables are written by deltalake (etl/lake/delta.py).
Writing the same bytes again is not an error (a put whose answer was lost and that was retried).
"""

import contextlib
import os
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from etl.errors import LakeError
from etl.lake.files import fsync_path, make_dirs

# What a failed write leaves behind, as its one-line error tells the user: a run's, or a compaction's.
RUN_CUT_SHORT = (
    "every table is at its last committed version, earlier runs are untouched, and a rerun resumes after "
    "this run's last committed batch or finishes its publishing"
)
COMPACTION_CUT_SHORT = (
    "every table is at its last committed version, and the next compact removes what this one left"
)
# Requests to a bucket made side by side, each a round trip: a batch's parts, the parts a merge reads.
REQUESTS_IN_FLIGHT = 8


class StoreError(LakeError):
    """An operation on the store failed: the message names the object and the cause."""


class ObjectExists(StoreError):
    """A create-only write found another object under its key."""


class LeaseLost(StoreError):
    """A compare-and-swap found the object changed: another writer holds it now."""


class Store(Protocol):
    """The operations the lake is written and read through."""

    def url(self, key: str) -> str:
        """The key as readers name it: an absolute path, or `s3://bucket/...`."""
        ...

    def put_new(self, key: str, data: bytes) -> None:
        """Create the object whole; ObjectExists if another one, of other bytes, is there."""
        ...

    def get(self, key: str) -> bytes:
        """The object's bytes; FileNotFoundError if there is none."""
        ...

    def list_keys(self, prefix: str) -> list[str]:
        """The keys under `prefix` (a folder's, ending in `/`), at any depth, sorted."""
        ...

    def delete(self, keys: list[str]) -> None:
        """Remove these objects; one already gone is no error."""
        ...


class LocalStore:
    """A folder: each object written to a pending file outside the lake, fsynced, and hard-linked into place
    (a link never replaces a file), its folder fsynced."""

    def __init__(self, root: Path, pending_dir: Path) -> None:
        self.root = root
        self.pending_dir = pending_dir

    def path(self, key: str) -> Path:
        return self.root / key

    def url(self, key: str) -> str:
        return str(self.path(key))

    def put_new(self, key: str, data: bytes) -> None:
        final = self.path(key)
        pending = self.pending_dir / f"{uuid.uuid4().hex}.pending"
        with _os_errors("writing", final):
            make_dirs(self.pending_dir)
            try:
                pending.write_bytes(data)
                fsync_path(pending)
                make_dirs(final.parent)
                os.link(pending, final)
            except FileExistsError:
                require_same_bytes(self, key, data)
                return
            finally:
                pending.unlink(missing_ok=True)
            fsync_path(final.parent)

    def get(self, key: str) -> bytes:
        path = self.path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise StoreError(f"reading {path} failed ({exc.strerror or exc})") from exc

    def list_keys(self, prefix: str) -> list[str]:
        # os.walk, not Path.rglob: a run's staging holds tens of thousands of parts, and rglob's Path objects
        # took seconds to list and discard them.
        keys: list[str] = []
        for folder, _, names in os.walk(self.path(prefix)):  # nothing, where there is no such folder
            under = os.path.relpath(folder, self.root)
            keys += (name if under == "." else f"{under}/{name}" for name in names)
        return sorted(keys)

    def delete(self, keys: list[str]) -> None:
        folders: set[str] = set()
        for key in keys:
            path = self.path(key)
            with _os_errors("removing", path):
                path.unlink(missing_ok=True)
            folder = key.rpartition("/")[0]
            while folder and folder not in folders:  # a folder already there brings its parents along
                folders.add(folder)
                folder = folder.rpartition("/")[0]
        # A folder is only a prefix of keys, as in a bucket: one that held nothing else goes with them.
        for folder in sorted(folders, key=lambda name: name.count("/"), reverse=True):
            with contextlib.suppress(OSError):  # not empty: it holds other keys
                self.path(folder).rmdir()


def fetch_in_order(store: Store, keys: list[str]) -> Iterator[bytes]:
    """The objects' bytes in order, a few fetched ahead: a round trip each to a bucket, and the reader holds
    no more than REQUESTS_IN_FLIGHT at once."""
    with ThreadPoolExecutor(max_workers=REQUESTS_IN_FLIGHT) as pool:
        ahead: deque[Future[bytes]] = deque()
        for key in keys:
            ahead.append(pool.submit(store.get, key))
            if len(ahead) >= REQUESTS_IN_FLIGHT:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()


def put_all(store: Store, objects: dict[str, bytes]) -> None:
    """Create the objects at once: a round trip to a bucket each, made side by side, not one after another."""
    with ThreadPoolExecutor(max_workers=REQUESTS_IN_FLIGHT) as pool:
        for done in [pool.submit(store.put_new, key, data) for key, data in objects.items()]:
            done.result()  # the first failure, raised here


def require_same_bytes(store: Store, key: str, data: bytes) -> None:
    """A create-only write met an object: the same bytes are this write done before, others are refused."""
    try:
        same = store.get(key) == data
    except (FileNotFoundError, IsADirectoryError):
        same = False
    if not same:
        raise ObjectExists(f"{store.url(key)} already exists; a published object is never replaced")


@contextlib.contextmanager
def _os_errors(doing: str, path: Path) -> Iterator[None]:
    """A full disk or a failing device, as one line naming the file."""
    try:
        yield
    except OSError as exc:
        raise StoreError(f"{doing} {path} failed ({exc.strerror or exc})") from exc


@contextlib.contextmanager
def failures_leave(consequence: str) -> Iterator[None]:
    """A failure of the store as one line that ends with what it leaves behind."""
    try:
        yield
    except StoreError as exc:
        raise LakeError(f"{exc}; {consequence}") from exc
