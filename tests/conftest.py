"""Shared fixtures: isolated caches and temp folder, the Yahoo emulator as an HTTPS proxy, the CLI as a
subprocess."""

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO_DIR = Path(__file__).resolve().parents[1]
SHARED_DATA_DIR = REPO_DIR.parent / "shared" / "data"


# Proxy settings of the machine running the tests must not route a test's requests (tests set their own).
PROXY_VARIABLES = (
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
)
# ...except the live tests', which reach the real Yahoo the way the user's own runs do.
USERS_ROUTE = {
    name: value
    for name, value in os.environ.items()
    if name in PROXY_VARIABLES or name in ("ETL_PROXY", "ETL_CA_BUNDLE")
}

# The longest modules, collected first: `make test` hands each worker whole modules in collection order
# (--dist loadfile), and one of these taken last would run alone while the other worker sat idle.
LONGEST_MODULES = ("test_ray.py", "test_crash.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name not in LONGEST_MODULES)  # stable: each module keeps its order


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch) -> Path:
    """yfinance keeps cookie and time-zone caches under the user's cache folder: never the real one in tests.

    The temp folder is the test's own too, so whatever a run leaves there (it must leave nothing) can be seen.
    """
    cache_dir = tmp_path_factory.mktemp("xdg-cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_dir))
    monkeypatch.setenv("TMPDIR", str(tmp_path_factory.mktemp("tmp")))
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return cache_dir


def yahoo_route(emulator) -> list[str]:
    """The options that send collect's requests to the emulator: its proxy and its CA."""
    return ["--proxy", emulator.proxy_url, "--ca-bundle", str(emulator.ca_path)]


def browser(emulator):
    """A client as Yahoo lets through: curl_cffi impersonating Chrome, through the emulator's proxy."""
    from curl_cffi import requests as curl_requests

    return curl_requests.Session(impersonate="chrome", proxy=emulator.proxy_url, verify=str(emulator.ca_path))


@pytest.fixture
def emulator():
    """The Yahoo emulator with default knobs on a free loopback port."""
    from etl.emulator import Emulator, EmulatorConfig

    with Emulator(EmulatorConfig(delisted=frozenset({"DLSTD"}))) as emu:
        yield emu


@pytest.fixture
def lake_dir(tmp_path) -> Path:
    return tmp_path / "lake"


@pytest.fixture(scope="session")
def s3_store():
    """The loopback S3 store (moto in server mode, IAM enforced) on 127.0.0.1, one per test process."""
    from s3_store import LoopbackS3

    with LoopbackS3() as store:
        yield store


@pytest.fixture
def s3_lake_url(s3_store, monkeypatch) -> str:
    """A lake in a fresh bucket of the loopback store; this test and the CLI it runs use the writer's
    credentials."""
    for name, value in s3_store.env().items():
        monkeypatch.setenv(name, value)
    return f"s3://{s3_store.new_bucket()}/lake"


@pytest.fixture(params=["local", "s3"])
def lake_url(request, lake_dir) -> str:
    """The lake of an end-to-end test, run once on a local folder and once in a bucket of the loopback
    store."""
    return str(lake_dir) if request.param == "local" else request.getfixturevalue("s3_lake_url")


def lake_keys(lake_url: str, under: str = "") -> list[str]:
    """Every object of the lake (under a folder of it), named relative to the lake, in any store."""
    from etl.lake.paths import open_lake

    lake = open_lake(lake_url)
    return [key.removeprefix(lake.key("")) for key in lake.store.list_keys(lake.key(under))]


def copy_lake(source_dir: Path, lake_url: str) -> str:
    """A local lake's files (its Delta tables' logs and Parquet files) copied into the lake at lake_url, a
    folder or a bucket."""
    from etl.lake.paths import open_lake

    lake = open_lake(lake_url)
    for path in sorted(p for p in source_dir.rglob("*") if p.is_file()):
        lake.store.put_new(lake.key(path.relative_to(source_dir)), path.read_bytes())
    return lake_url


def run_record(run_id: str, started_at, **fields):
    """A `runs` row of placeholder figures; `fields` sets the ones a test looks at."""
    from etl import metrics
    from etl.status import RunStatus

    placeholders = {
        "finished_at": started_at,
        "status": RunStatus.SUCCEEDED,
        "message": None,
        "n_symbols": 1,
        "n_batches": 1,
        "batch_size": 10,
        "api_calls": 1,
        "source_url": "http://127.0.0.1:1",
        "settings": "{}",
    }
    return metrics.RunRecord(run_id=run_id, started_at=started_at, **(placeholders | fields))


def open_staged_run(lake, plan, run_id: str, started_at, **kwargs):
    """open_run as collect calls it, a leftover run cut off while it published finished in this process."""
    from functools import partial

    from etl.lake.publish import publish_run
    from etl.lake.staging import open_run

    finish = partial(publish_run, row_group_rows=1000)
    return open_run(lake, plan, new_run_id=run_id, started_at=started_at, finish=finish, **kwargs)


def publish_staged(staging, row_group_rows: int = 1000):
    """Publish a staged run as collect does once it has judged it, under a `runs` row of placeholder
    figures."""
    from etl import metrics, transform
    from etl.lake.publish import publish_run

    runs_record = metrics.to_runs_record(run_record(staging.run_id, staging.started_at))
    staging.commit_manifest(runs_record, transform.to_symbols(staging.run_id, []))
    return publish_run(staging, row_group_rows=row_group_rows)


class FakeClock:
    """A monotonic clock the test moves, so that no test depends on how fast the machine runs it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def hold_stalled_requests(monkeypatch) -> threading.Event:
    """The emulator (in this process) answers a stalled request once the event is set, not after stall_s: a
    run held mid-fetch (under the lake's lock) for as long as the test needs, which then ends as any run
    does."""
    from etl.emulator import routes

    release = threading.Event()
    monkeypatch.setattr(routes, "time", SimpleNamespace(sleep=release.wait))
    return release


def wait_for(event: Callable[[], object], what: str, *alive: subprocess.Popen, timeout_s: float = 60) -> None:
    """Poll until `event` holds; fail naming `what` if one of the `alive` children ends first (with what it
    printed, where piped), or after `timeout_s` rather than hang the suite."""
    deadline = time.monotonic() + timeout_s
    while not event():
        for child in alive:
            assert child.poll() is None, f"a child ended before {what}: {child.communicate()[1] or ''}"
        assert time.monotonic() < deadline, f"no {what} within {timeout_s:g} s"
        time.sleep(0.02)  # a poll for the event, not a wait for luck


def wait_for_lease_expiry(lake_url: str) -> None:
    """Until the lease a killed writer left beside a lake in a bucket has expired, by the lease's own record
    (a folder's flock dies with its writer)."""
    import datetime as dt
    import json
    import time

    from etl.lake.paths import open_lake

    lake = open_lake(lake_url)
    if lake.is_local:
        return
    try:
        expires_at = dt.datetime.fromisoformat(json.loads(lake.store.get(lake.lock_key))["expires_at"])
    except FileNotFoundError:
        return
    while dt.datetime.now(dt.UTC) <= expires_at:  # waits for the recorded expiry, not for luck
        time.sleep(0.05)


def staging_keys(lake_url: str) -> list[str]:
    """Every object of the lake's staging area, beside it."""
    from etl.lake.paths import open_lake

    lake = open_lake(lake_url)
    return lake.store.list_keys(lake.staging_key(""))


def write_universe(path: Path, symbols: list[str]) -> Path:
    """A one-symbol-a-line universe file."""
    path.write_text("\n".join(symbols) + "\n")
    return path


def cli_env(env: dict | None = None) -> dict:
    """The environment of a CLI a test starts: this one's, without the caller's own ETL_ settings, which
    must not leak into a test, and with `env` on top."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ETL_")} | (env or {})


def run_cli(
    *args: str,
    env: dict | None = None,
    timeout: float = 300,
    cwd: Path = REPO_DIR,
    entry: tuple[str, ...] = ("-m", "etl"),
) -> subprocess.CompletedProcess:
    """`python -m etl ARGS` as a user would run it, in `cwd` (where it looks for etl.toml), with the isolated
    cache; `entry` names a test's own wrapper of the CLI instead."""
    return subprocess.run(
        [sys.executable, *entry, *args],
        cwd=cwd,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli(
    *args: str, env: dict | None = None, entry: tuple[str, ...] = ("-m", "etl"), capture: bool = False
) -> subprocess.Popen:
    """`python -m etl ARGS` started as run_cli runs it, not awaited; `entry` names a wrapper of the CLI
    instead, `capture` keeps its output for communicate()."""
    pipe = subprocess.PIPE if capture else None
    return subprocess.Popen(
        [sys.executable, *entry, *args], cwd=REPO_DIR, env=cli_env(env), stdout=pipe, stderr=pipe, text=True
    )


def run_collect(
    emulator, universe: Path, lake_dir: Path, *options: str, cache_dir: Path | None = None, **run_options
) -> subprocess.CompletedProcess:
    """`python -m etl collect` of `universe` through the emulator into `lake_dir`.

    A module-scoped fixture runs before the per-test cache isolation: it passes a `cache_dir` of its own.
    """
    env = None if cache_dir is None else {"XDG_CACHE_HOME": str(cache_dir)}
    route = yahoo_route(emulator)
    where = ("--universe", str(universe), "--lake", str(lake_dir))
    return run_cli("collect", *route, *where, *options, env=env, **run_options)
