"""One writer a lake: a kernel flock on the lock file beside it, freed by the OS when its holders die."""

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from etl.errors import LakeError
from etl.lake.paths import lock_path_for


@contextlib.contextmanager
def lake_lock(lake_dir: Path) -> Iterator[int]:
    """Hold the lake's single-writer lock (its descriptor): a kernel flock, freed by the OS when its holders
    die."""
    lock_path = lock_path_for(lake_dir)
    try:
        lake_dir.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise LakeError(f"cannot create the lake's lock file {lock_path}: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown"
            raise LakeError(
                f"{lake_dir} is being written by another run ({holder}); wait for it to finish"
            ) from None
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": dt.datetime.now(dt.UTC).isoformat(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        yield fd
    finally:
        os.close(fd)
