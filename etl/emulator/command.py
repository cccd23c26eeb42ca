"""`python -m etl emulator`: the emulator served in the foreground, its knobs as options."""

import datetime as dt
from pathlib import Path

import click

from etl.config import DEFAULT_EMULATOR_PORT
from etl.emulator.config import EmulatorConfig
from etl.options import with_options

# The defaults are EmulatorConfig's own, read as class attributes; the port is the one the README names.
_KNOBS = [
    click.option(
        "--port",
        default=DEFAULT_EMULATOR_PORT,
        show_default=True,
        help="Port on 127.0.0.1 (0: any free port).",
    ),
    click.option(
        "--latency-ms", default=EmulatorConfig.latency_ms, show_default=True, help="Delay per request."
    ),
    click.option(
        "--error-rate",
        default=EmulatorConfig.error_rate,
        show_default=True,
        help="Fraction of data requests answered HTTP 500.",
    ),
    click.option("--rate-limit-rps", type=float, help="Above this many requests a second: HTTP 429."),
    click.option("--delisted", default="", help="Comma-separated symbols answered as delisted."),
    click.option(
        "--null-fraction",
        default=EmulatorConfig.null_fraction,
        show_default=True,
        help="Fraction of bars sent as nulls.",
    ),
    click.option(
        "--stall-rate",
        default=EmulatorConfig.stall_rate,
        show_default=True,
        help="Fraction of data requests left hanging (timeouts).",
    ),
    click.option(
        "--stall-s",
        default=EmulatorConfig.stall_s,
        show_default=True,
        help="How long a hanging request waits before its answer.",
    ),
    click.option(
        "--seed", default=EmulatorConfig.seed, show_default=True, help="Seed of the synthetic data."
    ),
    click.option(
        "--as-of",
        type=click.DateTime(["%Y-%m-%dT%H:%M"]),
        help="Fix the market's clock at this UTC time (YYYY-MM-DDTHH:MM), e.g. to play the next day.",
    ),
    click.option(
        "--refuse-all-clients",
        is_flag=True,
        help="Answer every request 429, whatever the client's TLS fingerprint: Yahoo refusing outright.",
    ),
    click.option(
        "--recordings",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="Serve the daily charts and quotes recorded in this folder of node-yahoo-finance2 recordings"
        " (chart-SYM-*.json, quote-SYM.json) as Yahoo answered them; every other answer stays synthetic.",
    ),
    click.option(
        "--ca-path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write the emulator's CA here, for --ca-bundle (default: a temporary file, removed at exit).",
    ),
]


@click.command()
@with_options(_KNOBS)
def emulator(
    port: int,
    delisted: str,
    as_of: dt.datetime | None,
    refuse_all_clients: bool,
    **knobs,
) -> None:
    """Serve the Yahoo Finance emulator (synthetic data, or Yahoo's recorded answers) as an HTTPS proxy until
    interrupted.

    It prints the --proxy and --ca-bundle that collect then takes.

    Example: python -m etl emulator --port 8765 --latency-ms 100 --delisted ZZZZ
    """
    from etl.emulator.server import serve  # the server, trustme and numpy load when it serves, not for --help

    config = EmulatorConfig(
        delisted=frozenset(s for s in delisted.upper().split(",") if s),
        as_of=as_of and as_of.replace(tzinfo=dt.UTC),
        refuse_all=refuse_all_clients,
        **knobs,
    )
    serve(host="127.0.0.1", port=port, config=config)
