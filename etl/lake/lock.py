"""One writer a lake: a kernel flock beside a local lake, a renewed lease object beside a lake in a bucket.

The lease: `.<lake>.lock` is created with a create-only put, naming its holder and when its lease
expires, and renewed every quarter lease by a compare-and-swap on its ETag. A second writer meets it
and is refused at once, naming the holder; a holder killed with `kill -9` stops renewing, and once its
lease has expired the next writer takes the object over (again by compare-and-swap, so only one can)
and resumes the run. 60 s by default: three renewals in a row may fail (each retried by the store
client for up to 15 s) before the lease is at risk, and a killed run's successor waits at most a
minute. Expiry is judged by the clocks of the machines that write, which must agree (NTP) to well
under the lease.
"""

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from etl.config import LOCK_RECORD_WAIT_S
from etl.errors import ConfigError, LakeError
from etl.lake.paths import Lake
from etl.lake.store import LeaseLost, ObjectExists, StoreError

if TYPE_CHECKING:
    from etl.lake.s3 import S3Store

log = logging.getLogger(__name__)


class LakeLock(Protocol):
    """The single-writer lock a run holds while it writes."""

    pass_fds: tuple[int, ...]  # what a child that writes under the same lock must inherit

    def check(self) -> None:
        """Raise LakeError if the lock was lost: nothing more may be written."""
        ...


@contextlib.contextmanager
def lake_lock(lake: Lake, *, lease_s: float) -> Iterator[LakeLock]:
    """Hold the lake's single-writer lock while the block runs."""
    if lake.is_local:
        with _flock(lake) as lock:
            yield lock
        return
    lease = LeaseLock(lake, lease_s)
    lease.acquire()
    try:
        yield lease
    finally:
        lease.release()


class _FileLock:
    def __init__(self, fd: int) -> None:
        self.pass_fds: tuple[int, ...] = (fd,)

    def check(self) -> None:
        """A kernel flock is held until the process ends: never lost."""


def _holder() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "since": dt.datetime.now(dt.UTC).isoformat()}


def _holders_record(fd: int) -> bytes:
    """The flock holder's record, read again for a moment while it is empty, torn, or still the previous
    holder's: a run that won a race for the flock truncates the file and writes its own after taking it."""
    deadline = time.monotonic() + LOCK_RECORD_WAIT_S
    while True:
        record = os.pread(fd, 4096, 0)
        if _names_a_live_holder(record) or time.monotonic() > deadline:
            return record
        time.sleep(0.01)


def _names_a_live_holder(record: bytes) -> bool:
    try:
        held = json.loads(record)
        if held["host"] != socket.gethostname():
            return True  # another host's pid cannot be checked here
        os.kill(held["pid"], 0)
    except (ValueError, KeyError, TypeError, ProcessLookupError):
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _describe(record: bytes) -> str:
    """Who holds the lock, from its record: `pid 4242 on host-1 since ...`."""
    try:
        held = json.loads(record)
        return f"pid {held['pid']} on {held['host']} since {held['since']}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"


@contextlib.contextmanager
def _flock(lake: Lake) -> Iterator[_FileLock]:
    lock_path = Path(lake.store.url(lake.lock_key))
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise LakeError(f"cannot create the lake's lock file {lock_path}: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LakeError(
                f"{lake.url} is being written by another run ({_describe(_holders_record(fd))}); "
                "wait for it to finish"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_holder()).encode(), 0)
        yield _FileLock(fd)
    finally:
        os.close(fd)


class LeaseLock:
    """The lease object beside a lake in a bucket, renewed by a thread of its own while the run lives."""

    pass_fds: tuple[int, ...] = ()

    def __init__(self, lake: Lake, lease_s: float) -> None:
        self.store = cast("S3Store", lake.store)  # lake_lock sends only lakes in a bucket here
        self.key, self.lake_url, self.lease_s = lake.lock_key, lake.url, lease_s
        self.token = uuid.uuid4().hex
        self.holder = _holder()
        self.expires_at = dt.datetime.now(dt.UTC)
        self.lost: str | None = None
        self._e_tag = ""
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew_until_stopped, daemon=True)

    def acquire(self) -> None:
        """Take the lease, or take over an expired one; refuse at once if another run holds it."""
        try:
            try:
                self._put(lambda data: self.store.create(self.key, data))
            except ObjectExists:
                self._take_over()
        except StoreError as exc:  # nothing is fetched or written yet: bad input, as for a bad folder
            raise ConfigError(f"--lake {self.lake_url}: {exc}") from exc
        self._renewer.start()

    def check(self) -> None:
        if self.lost:
            raise LakeError(self.lost)

    def release(self) -> None:
        """Stop renewing; remove the lease object if it is still this run's."""
        self._stop.set()
        self._renewer.join()
        if self.lost is None:
            with contextlib.suppress(StoreError, FileNotFoundError):  # an expired lease frees itself
                self.store.delete([self.key])

    def _take_over(self) -> None:
        data, e_tag = self.store.get_with_tag(self.key)
        held = json.loads(data)
        if held.get("token") != self.token:  # not this run's own create, retried after its answer was lost
            if dt.datetime.fromisoformat(held["expires_at"]) > dt.datetime.now(dt.UTC):
                raise LakeError(
                    f"{self.lake_url} is being written by another run ({_describe(data)}, lease until "
                    f"{held['expires_at']}); wait for it to finish, or for its lease to expire"
                )
            log.info("taking over the expired lease of pid %s on %s", held["pid"], held["host"])
        self._put(lambda data: self.store.replace(self.key, data, e_tag))

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self.lease_s / 4):
            try:
                self._put(lambda data: self.store.replace(self.key, data, self._e_tag))
            except LeaseLost as exc:
                try:
                    if self._still_mine():
                        continue
                except StoreError:
                    continue  # the store is unreachable: judged at the next renewal
                self.lost = f"the lease on {self.lake_url} was taken by another run ({exc}); stopping"
                return
            except StoreError as exc:
                if dt.datetime.now(dt.UTC) >= self.expires_at:
                    self.lost = f"the lease on {self.lake_url} expired: renewing it failed ({exc}); stopping"
                    return
                log.warning("renewing the lake's lease failed (%s); retrying", exc)

    def _still_mine(self) -> bool:
        """After a failed swap: whether the lease still holds this run's token (a renewal sent again after its
        answer was lost had landed); if so, its ETag is taken up."""
        try:
            data, e_tag = self.store.get_with_tag(self.key)
        except FileNotFoundError:
            return False
        if json.loads(data).get("token") != self.token:
            return False
        self._e_tag = e_tag
        return True

    def _put(self, put: Callable[[bytes], str]) -> None:
        """Write the lease, expiring a lease from now; the run holds it until then once the put is done."""
        expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.lease_s)
        record = self.holder | {"token": self.token, "expires_at": expires_at.isoformat()}
        self._e_tag = put(json.dumps(record).encode())
        self.expires_at = expires_at
