"""The lake's child processes (the publisher, the holdings reader): their errors reach the user as one line.

A child's main reports an EtlError as `error: <message>` on stderr and exits with the error's code;
the parent passes that message on as a LakeError. A child that fails any other way (a bug, a signal)
has its stderr logged whole, never cut to a traceback's last line.
"""

import contextlib
import logging
import subprocess
import sys
from collections.abc import Iterator

from etl.errors import EtlError, LakeError

log = logging.getLogger(__name__)


def run_child(module: str, *args: str, pass_fds: tuple[int, ...] = ()) -> str:
    """`python -m <module> <args>`: its stdout; a failure as a LakeError with the child's own message."""
    child = subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, pass_fds=pass_fds
    )
    if child.returncode:
        raise LakeError(_to_message(module, child))
    return child.stdout


def _to_message(module: str, child: subprocess.CompletedProcess) -> str:
    stderr = child.stderr.strip()
    last_line = stderr.splitlines()[-1] if stderr else ""
    if last_line.startswith("error: "):
        return last_line.removeprefix("error: ")
    if stderr:
        log.error("python -m %s failed:\n%s", module, stderr)
    return f"python -m {module} ended with exit status {child.returncode}"


@contextlib.contextmanager
def errors_to_one_line() -> Iterator[None]:
    """In a child's main: an EtlError as one `error: ...` line on stderr, and the error's exit code."""
    try:
        yield
    except EtlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
