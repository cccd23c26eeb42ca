"""The command line's options that several commands share, and collect's; each default is read from
etl/config.py."""

import math
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from etl.config import (
    COMPACTABLE,
    DEFAULT_BRIEF_TOP,
    DEFAULT_COST_PER_CALL,
    DEFAULT_FULL_SCALE,
    DEFAULT_KEEP_MINUTES,
    DEFAULT_LAKE,
    DEFAULT_UNIVERSE_PATH,
    DEMO_LAKE,
    YAHOO_LATENCY_MS,
    Settings,
)
from etl.setting_origin import read_settings

F = TypeVar("F", bound=Callable)

FORMATS = ("table", "markdown", "json")

universe_option = click.option(
    "--universe",
    type=click.Path(path_type=Path),
    default=DEFAULT_UNIVERSE_PATH,
    show_default=True,
    help="CSV with a `symbol` column, or one symbol a line.",
)
format_option = click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="How to print the result.",
)
cost_option = click.option(
    "--cost-per-call",
    default=DEFAULT_COST_PER_CALL,
    show_default=True,
    help="Estimated USD per API call, for the summary.",
)
full_scale_option = click.option(
    "--full-scale",
    default=DEFAULT_FULL_SCALE,
    show_default=True,
    help="Universe size for the summary's full-scale estimate.",
)
run_option = click.option("--run", "run_id", help="Run id (default: the latest run).")
brief_date_option = click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The trading day to brief, YYYY-MM-DD (default: the latest in the lake).",
)
brief_top_option = click.option(
    "--top",
    "top_n",
    type=click.IntRange(min=1),
    default=DEFAULT_BRIEF_TOP,
    show_default=True,
    help="Rows of the movers, unusual volume and gaps sections.",
)
brief_out_option = click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the brief to this file (whole, through a temporary file) and print its path, not the brief.",
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Same as --format json, for scripts (wins over --format)."
)
report_out_option = click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="HTML file to write (default: <lake>-report.html beside the lake).",
)
demo_latency_option = click.option(
    "--latency-ms", default=YAHOO_LATENCY_MS, show_default=True, help="The emulator's delay per request."
)
show_config_option = click.option(
    "--show-config",
    is_flag=True,
    help="Print each setting, its value and where it came from; collect nothing.",
)
# Eager, so the file is read before any other option falls back on it.
config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    envvar="ETL_CONFIG",
    is_eager=True,
    expose_value=False,
    callback=lambda ctx, _, path: read_settings(ctx, path),
    help="TOML file of settings (default: ./etl.toml, else [tool.etl] in ./pyproject.toml).",
)


def _lake_option(default: str) -> Callable[[F], F]:
    return click.option(
        "--lake",
        default=default,
        show_default=True,
        help="The lake: a folder, or s3://bucket/prefix (credentials and endpoint from the AWS environment).",
    )


lake_option = _lake_option(DEFAULT_LAKE)
# The demo's synthetic data goes to a lake of its own.
demo_lake_option = _lake_option(DEMO_LAKE)
compact_table_option = click.option(
    "--table",
    "tables",
    multiple=True,
    type=click.Choice(COMPACTABLE),
    help="A table to compact (default: all); repeat for more.",
)


def _finite_minutes(ctx: click.Context, param: click.Parameter, minutes: float) -> float:
    """A retention to vacuum by: a negative, infinite or NaN one is refused before anything is compacted."""
    if not math.isfinite(minutes) or minutes < 0:
        raise click.BadParameter(f"{minutes:g} is not a number of minutes of 0 or more", ctx, param)
    return minutes


keep_minutes_option = click.option(
    "--keep-minutes",
    default=DEFAULT_KEEP_MINUTES,
    show_default=True,
    type=float,
    callback=_finite_minutes,
    help="Vacuum only files out of every snapshot for this long (whole hours, rounded up).",
)
z_order_option = click.option(
    "--z-order", is_flag=True, help="Rewrite each table's files ordered by symbol (Delta's Z-order)."
)

lock_lease_option = click.option(
    "--lock-lease-s",
    default=Settings.lock_lease_s,
    show_default=True,
    help="A lake in a bucket: the writer's lease, renewed while it runs; a killed writer's expires.",
)


def with_options(options: list[Callable[[F], F]]) -> Callable[[F], F]:
    """One decorator for a list of options; the first listed is the first in --help."""

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


_COLLECT_OPTIONS = [
    click.option(
        "--batch-size",
        default=Settings.batch_size,
        show_default=True,
        help="Symbols per batch: the unit of fetching and writing.",
    ),
    click.option(
        "--history",
        default=Settings.history,
        show_default=True,
        help="Daily bars for this Yahoo period (1mo, 1y, 5y, max…).",
    ),
    click.option(
        "--proxy",
        help="Tunnel every Yahoo request through this HTTP(S) or SOCKS proxy "
        "(default: HTTPS_PROXY / ALL_PROXY / NO_PROXY, as for curl).",
    ),
    click.option(
        "--ca-bundle",
        type=click.Path(path_type=Path),
        help="PEM file of the CAs to trust for Yahoo's TLS, e.g. a TLS-inspecting proxy's"
        " (default: the usual store).",
    ),
    click.option(
        "--memory-limit-mb",
        default=Settings.memory_limit_mb,
        show_default=True,
        help="Stop cleanly above this RSS after gc.",
    ),
    click.option(
        "--concurrency", default=Settings.concurrency, show_default=True, help="Requests in flight at once."
    ),
    click.option(
        "--min-success",
        default=Settings.min_success,
        show_default=True,
        help="Exit 1 when fewer symbols than this share end ok.",
    ),
    click.option(
        "--timeout-s",
        default=Settings.timeout_s,
        show_default=True,
        help="Give up on a request after this long (then retry).",
    ),
    click.option(
        "--resume", is_flag=True, help="Continue the unfinished run of this plan; fail if there is none."
    ),
    click.option(
        "--revision-days",
        default=Settings.revision_days,
        show_default=True,
        help="Refetch a symbol's latest N trading days in the lake (Yahoo revises them); newer bars always.",
    ),
    click.option(
        "--full-refresh", is_flag=True, help="Ignore what the lake holds: fetch --history for every symbol."
    ),
    lock_lease_option,
    click.option(
        "--max-rps",
        type=float,
        default=Settings.max_rps,
        help="Cap on requests a second to Yahoo, per machine (per node on a Ray cluster) [default: no cap].",
    ),
    click.option(
        "--ray",
        metavar="ADDRESS",
        help="Run the batches on this Ray cluster: auto, ray://head:10001 or head:6379 (the ray extra).",
    ),
    click.option(
        "--quiet", is_flag=True, help="No progress bar or per-batch lines; errors and the result still print."
    ),
]
# collect's own options, which are also the settings ETL_<NAME> and etl.toml may give (but --quiet).
collect_options = with_options(_COLLECT_OPTIONS)
