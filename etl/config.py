"""The run's settings: one frozen object, every default in one place."""

import json
import re
import ssl
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from etl.errors import ConfigError

# What the job reads at run time: a wheel carries sql/ and data/universe/ inside the package (pyproject.toml's
# force-include), a checkout keeps them at its top, where an editable install leaves them.
_PACKAGED_DIR = Path(__file__).resolve().parent / "packaged"
_CHECKOUT_DIR = Path(__file__).resolve().parents[1]
SQL_DIR = _PACKAGED_DIR / "sql" if _PACKAGED_DIR.is_dir() else _CHECKOUT_DIR / "sql"
UNIVERSE_DIR = _PACKAGED_DIR / "universe" if _PACKAGED_DIR.is_dir() else _CHECKOUT_DIR / "data" / "universe"
DEFAULT_UNIVERSE_PATH = UNIVERSE_DIR / "default.csv"

# Relative to the folder the job runs in, as for any command-line tool (make runs it from the checkout's top):
# a lake inside site-packages would be lost at the next upgrade.
DEFAULT_LAKE = "data/lake"
DEMO_LAKE = "data/demo"

# The periods Yahoo's chart endpoint accepts as `range` (yfinance passes them through unchanged).
HISTORY_PERIODS = ("1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max")

# Real Yahoo starts answering 429 when one client keeps many requests in flight; eight is what
# yfinance's own threaded download uses on a 4-core machine and what a browser opens per host.
DEFAULT_CONCURRENCY = 8

# DuckDB reads row groups under ~5,000 rows 5-10x slower; its own default is 122,880 rows.
ROW_GROUP_ROWS = 32_768

# The lake's Delta tables, as etl/schema.py defines them: spelled out so that `compact --help` lists them
# without loading pyarrow.
COMPACTABLE = (
    "quotes",
    "bars",
    "bar_revisions",
    "dividends",
    "splits",
    "symbols",
    "quarantine",
    "failures",
    "batches",
    "runs",
)
# A Delta file is cut at about this size: a writer holds one open file's row group a partition, not the run.
DELTA_TARGET_FILE_BYTES = 8_000_000
# A table's commit that failed (another tool's commit won the race, the store failed a put) is tried again
# on the new snapshot, this often at most, with backoff.
DELTA_COMMIT_ATTEMPTS = 5

# A lake in a bucket is named s3://BUCKET/PREFIX; S3's rule for bucket names (AWS, MinIO and R2 share it):
# 3-63 lowercase letters, digits, dots, hyphens.
S3_SCHEME = "s3://"
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")

# The source every run names in its manifest (runs.source_url): a proxy, the emulator among them, is a route
# to it, not another source.
LIVE_YAHOO_URL = "https://query1.finance.yahoo.com"

# The proxy schemes curl tunnels HTTPS through.
PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")

# The summary's estimates: what an API call would cost in USD, and the universe size to extrapolate to.
DEFAULT_COST_PER_CALL = 0.001
DEFAULT_FULL_SCALE = 5000
# The market brief's sections of the day's top symbols (movers, unusual volume, gaps): how many rows each.
DEFAULT_BRIEF_TOP = 5

# A real round trip to Yahoo, which the demo and the benchmark give each request to the emulator.
YAHOO_LATENCY_MS = 100.0
# Where `python -m etl emulator` listens by default.
DEFAULT_EMULATOR_PORT = 8765

# How long `compact` keeps the files no longer in a table's snapshot, for readers of an older snapshot.
DEFAULT_KEEP_MINUTES = 60.0

# A lake in a bucket: how long a writer's lease lasts unrenewed (etl/lake/lock.py says why 60 s), and how the
# store client waits for an answer and retries one that failed (5xx, SlowDown, a reset, a timeout).
DEFAULT_LOCK_LEASE_S = 60.0
# How long a writer refused a local lake's flock reads the holder's record again while the holder, which
# takes the flock first and writes its record after, is still writing it.
LOCK_RECORD_WAIT_S = 1.0
STORE_TIMEOUT_S = 30
STORE_CONNECT_TIMEOUT_S = 5
STORE_MAX_RETRIES = 6
STORE_RETRY_TIMEOUT_S = 60

# --max-rps: no cap of our own by default; the adaptive rate already backs off when Yahoo says 429.
DEFAULT_MAX_RPS: float | None = None

# `collect --ray`: the Ray namespace the job's actors are named in; how long to wait for a cluster to answer
# before calling the address wrong (a real one answers in well under a second); how often Ray reruns a batch
# whose worker died; and batches queued per CPU of the cluster, enough that a CPU never waits for the driver
# and few enough that the driver's memory does not grow with the universe.
RAY_NAMESPACE = "market-voices-etl"
RAY_CONNECT_TIMEOUT_S = 10
RAY_TASK_RETRIES = 3
RAY_BATCHES_PER_CPU = 2
# While its node has no limit (no 429, no --max-rps), a worker's requests skip the budget actor (about 1 ms a
# call) and tell it what they sent this often, learning whether another worker's 429 has limited the node.
RAY_BUDGET_REPORT_S = 0.25
# The driver's AWS settings its workers get through Ray's runtime environment: where the lake's store is,
# never a secret (Ray keeps a job's runtime environment in its cluster state, readable to whoever can list
# jobs). Workers take credentials from their own node, as any process on it does: role, environment, ~/.aws.
RAY_FORWARDED_ENV = (
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ALLOW_HTTP",
    "AWS_PROFILE",
)


@dataclass(frozen=True)
class Settings:
    """Everything a collect run needs to know, validated on construction.

    The defaults below are the CLI's too: its options read them as class attributes (`Settings.batch_size`).
    """

    universe_path: Path = DEFAULT_UNIVERSE_PATH
    # A folder, or an S3 URL (s3://bucket/prefix).
    lake: str = DEFAULT_LAKE
    batch_size: int = 10
    history: str = "1y"
    # Tunnel every Yahoo request through this proxy; None: HTTPS_PROXY / ALL_PROXY / NO_PROXY apply, as for
    # curl.
    proxy: str | None = None
    # Trust these CAs for Yahoo's TLS (a TLS-inspecting proxy, the emulator); None: the usual trust store.
    ca_bundle: Path | None = None
    memory_limit_mb: float = 2048.0
    concurrency: int = DEFAULT_CONCURRENCY
    min_success: float = 0.95
    row_group_rows: int = ROW_GROUP_ROWS
    timeout_s: float = 30.0
    # Continue this plan's unfinished run, and fail if there is none (a rerun resumes one anyway).
    resume: bool = False
    # Bars a symbol already has in the lake are fetched again for this many of its latest trading days,
    # since Yahoo revises recent bars and adjustments; full_refresh ignores the lake and fetches --history.
    revision_days: int = 5
    full_refresh: bool = False
    lock_lease_s: float = DEFAULT_LOCK_LEASE_S
    # A cap on requests a second, per machine (on a Ray cluster, per node); None: only the adaptive rate.
    max_rps: float | None = DEFAULT_MAX_RPS
    # The Ray cluster to run the batches on (`auto`, `ray://host:10001`, `host:6379`); None: this process.
    ray: str | None = None

    def __post_init__(self) -> None:
        _require(self.batch_size >= 1, f"--batch-size {self.batch_size} must be a whole number of at least 1")
        _require(
            self.history in HISTORY_PERIODS,
            f"--history {self.history!r} is not a Yahoo period; use one of {', '.join(HISTORY_PERIODS)}",
        )
        _require(self.memory_limit_mb > 0, f"--memory-limit-mb {self.memory_limit_mb} must be above 0")
        _require(0 <= self.min_success <= 1, f"--min-success {self.min_success} must be between 0 and 1")
        _require(1 <= self.concurrency <= 64, f"--concurrency {self.concurrency} must be between 1 and 64")
        _require(self.revision_days >= 0, f"--revision-days {self.revision_days} must be 0 or more")
        _require(self.timeout_s > 0, f"--timeout-s {self.timeout_s} must be above 0")
        _require(self.row_group_rows >= 1, f"row_group_rows {self.row_group_rows} must be at least 1")
        _require(self.lock_lease_s >= 1, f"--lock-lease-s {self.lock_lease_s} must be at least 1")
        if self.max_rps is not None:
            _require(self.max_rps > 0, f"--max-rps {self.max_rps:g} must be above 0; leave it out for no cap")
        _require(
            self.ray is None or _is_ray_address(self.ray),
            f"--ray {self.ray!r} is not a Ray address; use auto, ray://host:10001 or host:6379",
        )
        if self.lake.startswith(S3_SCHEME):
            split_s3_url(self.lake)
        else:
            _check_lake_folder(Path(self.lake))
        if self.proxy is not None:
            _require(
                _is_proxy_url(self.proxy),
                f"--proxy {to_redacted_url(self.proxy)!r} is not a proxy URL "
                f"like http://proxy.example.com:3128 ({', '.join(PROXY_SCHEMES)})",
            )
        if self.ca_bundle is not None:
            why = _unusable_ca_bundle(self.ca_bundle)
            _require(
                why is None,
                f"--ca-bundle {self.ca_bundle}: {why}; pass the PEM file of the CA that signs "
                "Yahoo's certificate on your route (your proxy's, or the emulator's)",
            )

    def to_json(self) -> str:
        """The settings as a JSON object, for the `runs` table; a proxy's credentials are never stored."""
        values = asdict(self) | {"proxy": self.proxy and to_redacted_url(self.proxy)}
        return json.dumps(
            {k: str(v) if isinstance(v, Path) else v for k, v in values.items()}, sort_keys=True
        )


def to_redacted_url(url: str) -> str:
    """The URL with any user and password replaced by ***, fit to print, log or store."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def _is_proxy_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme in PROXY_SCHEMES and bool(parts.hostname) and (parts.port or 0) >= 0
    except ValueError:  # a port that is not a number
        return False


def _is_ray_address(address: str) -> bool:
    """auto, a Ray Client URL, or a cluster's GCS host:port."""
    if address == "auto":
        return True
    try:
        parts = urlsplit(address if "://" in address else f"gcs://{address}")
        return parts.scheme in ("ray", "gcs") and bool(parts.hostname) and parts.port is not None
    except ValueError:  # a port that is not a number
        return False


def _unusable_ca_bundle(path: Path) -> str | None:
    """Why curl could not use this file as its CA certificates, or None; OpenSSL reads it as curl would."""
    try:
        ssl.create_default_context(cafile=str(path))
    except ssl.SSLError as exc:
        return f"not a PEM file of certificates (OpenSSL: {exc.reason or exc})"
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def split_s3_url(url: str) -> tuple[str, str, str]:
    """`s3://bucket/a/b/lake` as (bucket, the lake's parent prefix "a/b", its name "lake")."""
    bucket, _, prefix = url.removeprefix(S3_SCHEME).partition("/")
    parent, _, name = prefix.strip("/").rpartition("/")
    if not _BUCKET_NAME.fullmatch(bucket):
        raise ConfigError(
            f"--lake {url}: {bucket!r} is not an S3 bucket name (3-63 lowercase letters, digits, dots and "
            "hyphens); write s3://BUCKET/PREFIX"
        )
    if not name or name in (".", ".."):
        raise ConfigError(
            f"--lake {url}: give the lake a prefix of its own, like s3://{bucket}/lake: its staging and "
            "lock sit beside it"
        )
    return bucket, parent, name


def _check_lake_folder(lake_dir: Path) -> None:
    _require(
        not lake_dir.exists() or lake_dir.is_dir(),
        f"--lake {lake_dir} is a file; pass a folder (it is created if it does not exist)",
    )
    folder, why = _unwritable(lake_dir)
    _require(
        why is None, f"--lake {lake_dir}: cannot write in {folder} ({why}); pass a folder you may write to"
    )


def _unwritable(lake_dir: Path) -> tuple[Path, str | None]:
    """The folder that holds the lake, its staging and its lock (or would), and why it cannot be written."""
    folder = lake_dir.absolute().parent
    while not folder.exists():
        folder = folder.parent
    try:
        with tempfile.TemporaryFile(dir=folder):
            return folder, None
    except OSError as exc:
        return folder, exc.strerror or str(exc)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)
