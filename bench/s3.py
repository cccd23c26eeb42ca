"""The benchmark's S3 rows: ours into a bucket of the loopback store beside ours into a folder.

The store is the tests' own (moto in server mode, tests/s3_store.py), and its requests are counted by the
tests' fault proxy with no faults set (tests/fault_proxy.py), passed through unchanged.
"""

import contextlib
import os
import sys
from collections.abc import Iterator

from bench.measure import REPO_DIR, Measurement

sys.path.insert(0, str(REPO_DIR / "tests"))  # the bench runs from a checkout, as the tests do
from fault_proxy import FaultProxy  # noqa: E402
from s3_store import LoopbackS3  # noqa: E402

STORE_REQUESTS = ("PUT", "GET", "HEAD", "LIST", "DELETE", "POST")


@contextlib.contextmanager
def loopback_bucket() -> Iterator[tuple[str, FaultProxy]]:
    """A lake's URL in a fresh bucket, and the proxy counting its requests; meanwhile this process's AWS
    environment points at it, so that the bench's own readers and in-process runs reach it too."""
    with LoopbackS3() as store, FaultProxy(store.endpoint_url) as counter:
        saved = dict(os.environ)
        os.environ.update(store.env(endpoint_url=counter.url))
        try:
            yield f"s3://{store.new_bucket()}/lake", counter
        finally:
            os.environ.clear()
            os.environ.update(saved)


def print_s3_table(local: Measurement, in_bucket: Measurement, requests: dict[str, int]) -> None:
    """The same run into a folder and into a bucket, and the store requests the bucket's run made."""
    print("| lake | symbols | latency ms | wall s | peak RSS MB | rows | missing | wall vs folder |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, r in (("folder", local), ("S3 bucket", in_bucket)):
        flag = "" if r.exit_code == 0 else f" (exit {r.exit_code})"
        print(
            f"| {label}{flag} | {r.symbols:,} | {r.latency_ms:g} | {r.wall_s:.2f} | {r.peak_rss_mb:.0f} | "
            f"{r.rows:,} | {r.missing} | {r.wall_s / local.wall_s:.2f}x |"
        )
    counted = ", ".join(f"{kind} {requests[kind]:,}" for kind in STORE_REQUESTS)
    print(
        f"store requests of the run into the bucket: {counted} ({sum(requests[k] for k in STORE_REQUESTS):,})"
    )
