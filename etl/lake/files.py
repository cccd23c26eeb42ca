"""The lake's file operations: fsync, create-only publishing by a hard link, folders made durably."""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from etl.errors import LakeError


def fsync_path(path: Path) -> None:
    """Make a file's contents, or a folder's entries, durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def disk_errors(path: Path) -> Iterator[None]:
    """A full disk or a failing device, as one line naming the file."""
    try:
        yield
    except OSError as exc:
        raise LakeError(
            f"writing {path} failed ({exc.strerror or exc}); nothing of this run is published, earlier runs "
            "are untouched, and a rerun resumes after this run's last committed batch"
        ) from exc


def link_into_lake(staged: Path, final: Path) -> Path:
    """Publish a finished file under its lake path, never replacing one (a file linked before is skipped)."""
    with disk_errors(final):
        make_dirs(final.parent)
        try:
            os.link(staged, final)
        except FileExistsError as exc:
            if not os.path.samefile(staged, final):  # linked before this run was cut off: already published
                raise LakeError(f"{final} already exists; a published file is never replaced") from exc
        fsync_path(final.parent)
    return final


def make_dirs(folder: Path) -> None:
    """Make a folder and its missing parents, each made durable in its parent."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for new_folder in reversed(missing):
        new_folder.mkdir(exist_ok=True)
        fsync_path(new_folder.parent)
