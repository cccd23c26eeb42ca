"""The lake's file operations: the one atomic write, fsync, create-only publishing by a hard link."""

import contextlib
import os
import shutil
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


def pending_path(final: Path) -> Path:
    """Where write_atomically writes `final` until it is whole: `<name>.tmp` beside it."""
    return final.with_name(final.name + ".tmp")


@contextlib.contextmanager
def write_atomically(final: Path, *, pending: Path | None = None) -> Iterator[Path]:
    """Yield the pending path for the block to write `final` at, a file or a folder of files; when the block
    ends, every file and folder written is fsynced, renamed to `final` and its folder fsynced, so `final`
    appears whole or not at all. On any failure, the block's own too, the pending file or folder is removed.
    """
    pending = pending or pending_path(final)
    _remove(pending)  # a leftover of a write that was killed
    try:
        yield pending
        _fsync_tree(pending)
        os.replace(pending, final)
        fsync_path(final.parent)
    except BaseException:
        _remove(pending)
        raise


def _fsync_tree(path: Path) -> None:
    """fsync a file, or every file and folder of a folder, the folders after what they hold."""
    if not path.is_dir():
        fsync_path(path)
        return
    for folder, _, names in os.walk(path, topdown=False):
        for name in names:
            fsync_path(Path(folder, name))
        fsync_path(Path(folder))


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):  # cleaning up must not hide the error that made it necessary
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


# What a failed write leaves behind, as its one-line error tells the user: a run's, or a compaction's.
RUN_CUT_SHORT = (
    "nothing of this run is published, earlier runs are untouched, and a rerun resumes after this run's last "
    "committed batch"
)
COMPACTION_CUT_SHORT = "the views read the lake as before, and the next compact removes what this one left"


@contextlib.contextmanager
def disk_errors(path: Path, consequence: str = RUN_CUT_SHORT) -> Iterator[None]:
    """A full disk or a failing device, as one line naming the file and what the failure leaves."""
    try:
        yield
    except OSError as exc:
        raise LakeError(f"writing {path} failed ({exc.strerror or exc}); {consequence}") from exc


def link_into_lake(staged: Path, final: Path, *, consequence: str = RUN_CUT_SHORT) -> Path:
    """Publish a finished file under its lake path, never replacing one (a file linked before is skipped)."""
    with disk_errors(final, consequence):
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
