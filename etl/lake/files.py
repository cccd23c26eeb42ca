"""The local disk's part of the lake: the one atomic write, fsync, durable folders; and the documents the
job writes for people (the run report, the brief), written whole the same way."""

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


def pending_path(final: Path) -> Path:
    """Where write_atomically writes `final` until it is whole: `<name>.tmp` beside it."""
    return final.with_name(final.name + ".tmp")


@contextlib.contextmanager
def write_atomically(final: Path, *, pending: Path | None = None) -> Iterator[Path]:
    """Yield the pending path for the block to write `final` at; when the block ends, the file is fsynced,
    renamed to `final` and its folder fsynced, so `final` appears whole or not at all. On any failure, the
    block's own too, the pending file is removed."""
    pending = pending or pending_path(final)
    pending.unlink(missing_ok=True)  # a leftover of a write that was killed
    try:
        yield pending
        fsync_path(pending)
        os.replace(pending, final)
        fsync_path(final.parent)
    except BaseException:
        with contextlib.suppress(OSError):  # cleaning up must not hide the error that made it necessary
            pending.unlink(missing_ok=True)
        raise


def make_dirs(folder: Path) -> None:
    """Make a folder and its missing parents, each made durable in its parent."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for new_folder in reversed(missing):
        new_folder.mkdir(exist_ok=True)
        fsync_path(new_folder.parent)


def write_document(out_path: Path, text: str) -> None:
    """Write a page or a brief whole, so a reader never sees half of it; one line when it cannot be."""
    pending = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        with write_atomically(out_path, pending=pending) as document:
            document.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise LakeError(f"cannot write {out_path}: {exc.strerror or exc}") from exc
