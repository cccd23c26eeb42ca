"""The command line: the only module that parses arguments, prints for people and exits."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import logging
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from etl.config import (
    COMPACTABLE,
    DEFAULT_CONCURRENCY,
    DEFAULT_LAKE_DIR,
    DEFAULT_UNIVERSE_PATH,
    DEMO_LAKE_DIR,
    ROW_GROUP_ROWS,
    Settings,
    to_redacted_url,
)
from etl.errors import ConfigError, EtlError, MemoryLimitError, SourceError
from etl.plan import plan_batches
from etl.settings_file import load_settings_file
from etl.universe import load_universe

if TYPE_CHECKING:  # etl.metrics loads pyarrow and, through etl.fetch, yfinance: too slow for --help
    from etl.metrics import BatchMetrics, RunRecord

# A run that ended early still published what it collected; its status says why it is an error.
_STOPPED = {"memory_limit": MemoryLimitError, "below_min_success": EtlError, "source_outage": SourceError}
log = logging.getLogger("etl")
# ctx.meta key: where the settings click fell back on (its default_map) were read.
_SETTINGS_FILE_LABEL = "etl.settings_file"

universe_option = click.option(
    "--universe",
    type=click.Path(path_type=Path),
    default=DEFAULT_UNIVERSE_PATH,
    show_default=True,
    help="CSV with a `symbol` column, or one symbol a line.",
)
format_option = click.option(
    "--format", "output_format", default="table", show_default=True, help="table, markdown or json."
)
cost_option = click.option(
    "--cost-per-call", default=0.001, show_default=True, help="Estimated USD per API call, for the summary."
)
full_scale_option = click.option(
    "--full-scale",
    default=5000,
    show_default=True,
    help="Universe size for the summary's full-scale estimate.",
)
# Eager, so the file is read before any other option falls back on it.
config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    envvar="ETL_CONFIG",
    is_eager=True,
    expose_value=False,
    callback=lambda ctx, _, path: _read_settings(ctx, path),
    help="TOML file of settings (default: ./etl.toml, else [tool.etl] in ./pyproject.toml).",
)


def lake_option(default: Path):
    return click.option(
        "--lake",
        type=click.Path(path_type=Path),
        default=default,
        show_default=True,
        help="The lake's folder.",
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def app() -> None:
    """Collect Yahoo Finance data into a Parquet lake, and read it back."""


@app.command()
@universe_option
@lake_option(DEFAULT_LAKE_DIR)
@click.option(
    "--batch-size", default=10, show_default=True, help="Symbols per batch: the unit of fetching and writing."
)
@click.option(
    "--history", default="1y", show_default=True, help="Daily bars for this Yahoo period (1mo, 1y, 5y, max…)."
)
@click.option(
    "--proxy",
    help="Tunnel every Yahoo request through this HTTP(S) or SOCKS proxy "
    "(default: HTTPS_PROXY / ALL_PROXY / NO_PROXY, as for curl).",
)
@click.option(
    "--ca-bundle",
    type=click.Path(path_type=Path),
    help="PEM file of the CAs to trust for Yahoo's TLS, e.g. a TLS-inspecting proxy's"
    " (default: the usual store).",
)
@click.option(
    "--memory-limit-mb", default=2048.0, show_default=True, help="Stop cleanly above this RSS after gc."
)
@click.option(
    "--concurrency", default=DEFAULT_CONCURRENCY, show_default=True, help="Requests in flight at once."
)
@click.option(
    "--min-success", default=0.95, show_default=True, help="Exit 1 when fewer symbols than this share end ok."
)
@click.option(
    "--timeout-s", default=30.0, show_default=True, help="Give up on a request after this long (then retry)."
)
@click.option(
    "--resume", is_flag=True, help="Continue the unfinished run of this plan; fail if there is none."
)
@click.option(
    "--revision-days",
    default=5,
    show_default=True,
    help="Refetch a symbol's latest N trading days in the lake (Yahoo revises them); newer bars always.",
)
@click.option(
    "--full-refresh", is_flag=True, help="Ignore what the lake holds: fetch --history for every symbol."
)
@click.option(
    "--quiet", is_flag=True, help="No progress bar or per-batch lines; errors and the result still print."
)
@config_option
@click.option(
    "--show-config",
    is_flag=True,
    help="Print each setting, its value and where it came from; collect nothing.",
)
def collect(
    universe,
    lake,
    batch_size,
    history,
    proxy,
    ca_bundle,
    memory_limit_mb,
    concurrency,
    min_success,
    timeout_s,
    resume,
    revision_days,
    full_refresh,
    quiet,
    show_config,
) -> None:
    """Collect quotes and daily bars for a universe into the lake; `summary` then reports on the run.

    Every option can also come from ETL_<NAME> (ETL_BATCH_SIZE=20) or etl.toml (batch_size = 20).

    Example: python -m etl collect --universe data/universe/default.csv --lake data/lake
    """
    if show_config:
        click.echo(_describe_settings(click.get_current_context()))
        return
    _collect(
        _settings(
            universe_path=universe,
            lake_dir=lake,
            batch_size=batch_size,
            history=history,
            proxy=proxy,
            ca_bundle=ca_bundle,
            memory_limit_mb=memory_limit_mb,
            concurrency=concurrency,
            min_success=min_success,
            timeout_s=timeout_s,
            resume=resume,
            revision_days=revision_days,
            full_refresh=full_refresh,
        ),
        quiet=quiet,
    )


@app.command()
@click.option("--latency-ms", default=100.0, show_default=True, help="The emulator's delay per request.")
@lake_option(DEMO_LAKE_DIR)
@universe_option
@format_option
@config_option
def demo(latency_ms, lake, universe, output_format) -> None:
    """Run the collect job offline against the built-in Yahoo emulator (synthetic data), then print its
    summary.

    Example: python -m etl demo --latency-ms 100
    """
    from etl.emulator import Emulator, EmulatorConfig  # only the commands that serve Yahoo load the emulator

    with _errors_to_exit():
        _check_format(output_format)
    with Emulator(EmulatorConfig(latency_ms=latency_ms)) as emulator:
        log.info(
            "Yahoo emulator (synthetic data): HTTPS proxy %s, CA %s", emulator.proxy_url, emulator.ca_path
        )
        run = _collect(
            _settings(
                universe_path=universe, lake_dir=lake, proxy=emulator.proxy_url, ca_bundle=emulator.ca_path
            )
        )
        log.info("Yahoo emulator's TLS check: %s", _describe_tls(emulator.tls_stats()))
    _print_summary(lake, run.run_id, None, 0.001, 5000, output_format)


@app.command("summary")
@lake_option(DEFAULT_LAKE_DIR)
@click.option("--run", "run_id", help="Run id (default: the latest run).")
@click.option("--compare", nargs=2, help="Two run ids: before and after.")
@cost_option
@full_scale_option
@format_option
@click.option(
    "--json", "as_json", is_flag=True, help="Same as --format json, for scripts (wins over --format)."
)
@config_option
def summary_command(lake, run_id, compare, cost_per_call, full_scale, output_format, as_json) -> None:
    """Print the performance summary of a run, or compare two runs.

    Example: python -m etl summary --lake data/demo --compare RUN_A RUN_B --format markdown
    """
    _print_summary(lake, run_id, compare, cost_per_call, full_scale, "json" if as_json else output_format)


@app.command("report")
@lake_option(DEFAULT_LAKE_DIR)
@click.option("--run", "run_id", help="Run id (default: the latest run).")
@click.option("--compare", "compare_run", help="Run id to compare with (default: the run before).")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="HTML file to write (default: <lake>-report.html beside the lake).",
)
@config_option
def report_command(lake, run_id, compare_run, out_path) -> None:
    """Write a run's charts, summary and comparison with another run as one HTML page that opens offline.

    Example: python -m etl report --lake data/demo --out data/demo-report.html
    """
    from etl import report  # plotly and DuckDB are loaded by the commands that read, never by collect

    with _errors_to_exit():
        click.echo(report.write_report(lake, run_id, compare_run, out_path))


@app.command()
@click.argument("sql")
@lake_option(DEFAULT_LAKE_DIR)
@format_option
@config_option
def query(sql, lake, output_format) -> None:
    """Run one SQL statement against the lake's views (quotes, bars, bars_all, runs, batches, failures).

    Example: python -m etl query "select symbol, max(close) from bars group by symbol limit 5"
    """
    from etl import summary  # DuckDB is loaded by the commands that read, never by collect

    with _errors_to_exit():
        _check_format(output_format)
        con = summary.connect_lake(lake)
        click.echo(_render_rows(summary.fetch_dicts(con, sql), output_format))


@app.command()
@lake_option(DEFAULT_LAKE_DIR)
@config_option
def shell(lake) -> None:
    """Open the DuckDB shell on the lake's views and macros (latest_quotes(), movers(day, n), ...).

    Example: python -m etl shell --lake data/demo
    """
    from etl import summary  # DuckDB is loaded by the commands that read, never by collect

    with _errors_to_exit():
        _check_shell_path(lake)
        con = summary.connect_lake(lake)  # refuses a lake with no run, as `query` does
        init_sql = _shell_init_sql(summary.lake_variables(con, lake))
        binary = _duckdb_shell_path()
    # -cmd rather than -init FILE: once exec'd, nothing would be left to delete a temp file.
    os.execv(binary, [str(binary), "-cmd", init_sql])


@app.command()
@lake_option(DEFAULT_LAKE_DIR)
@click.option(
    "--table",
    "tables",
    multiple=True,
    type=click.Choice(COMPACTABLE),
    help="A table to compact (default: all but runs); repeat for more.",
)
@click.option(
    "--keep-minutes",
    default=60.0,
    show_default=True,
    help="Keep replaced files this long for readers that listed them; a later compact removes them.",
)
@config_option
def compact(lake, tables, keep_minutes) -> None:
    """Rewrite each partition's small files as one with full row groups; readers never see a row twice or miss
    one.

    Example: python -m etl compact --lake data/lake --table bars
    """
    from etl.lake.compact import compact_lake
    from etl.lake.holdings import require_completed_run

    with _errors_to_exit():
        require_completed_run(lake)
        done = compact_lake(
            lake, tables or COMPACTABLE, keep_minutes=keep_minutes, row_group_rows=ROW_GROUP_ROWS
        )
    for folder in done:
        click.echo(f"{folder.folder}: {folder.files} files into 1, {folder.rows:,} rows")
    click.echo(f"compacted {len(done)} folders" if done else "nothing to compact: no folder holds two files")


@app.command()
@click.option("--port", default=8765, show_default=True, help="Port on 127.0.0.1 (0: any free port).")
@click.option("--latency-ms", default=0.0, show_default=True, help="Delay per request.")
@click.option(
    "--error-rate", default=0.0, show_default=True, help="Fraction of data requests answered HTTP 500."
)
@click.option("--rate-limit-rps", type=float, help="Above this many requests a second: HTTP 429.")
@click.option("--delisted", default="", help="Comma-separated symbols answered as delisted.")
@click.option("--null-fraction", default=0.0, show_default=True, help="Fraction of bars sent as nulls.")
@click.option(
    "--stall-rate", default=0.0, show_default=True, help="Fraction of data requests left hanging (timeouts)."
)
@click.option(
    "--stall-s", default=5.0, show_default=True, help="How long a hanging request waits before its answer."
)
@click.option("--seed", default=7, show_default=True, help="Seed of the synthetic data.")
@click.option(
    "--as-of",
    type=click.DateTime(["%Y-%m-%dT%H:%M"]),
    help="Fix the market's clock at this UTC time (YYYY-MM-DDTHH:MM), e.g. to play the next day.",
)
@click.option(
    "--refuse-all-clients",
    is_flag=True,
    help="Answer every request 429, whatever the client's TLS fingerprint: Yahoo refusing outright.",
)
@click.option(
    "--ca-path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the emulator's CA here, for --ca-bundle (default: a temporary file, removed at exit).",
)
def emulator(
    port,
    latency_ms,
    error_rate,
    rate_limit_rps,
    delisted,
    null_fraction,
    stall_rate,
    stall_s,
    seed,
    as_of,
    refuse_all_clients,
    ca_path,
) -> None:
    """Serve the Yahoo Finance emulator (synthetic data) as an HTTPS proxy until interrupted.

    It prints the --proxy and --ca-bundle that collect then takes.

    Example: python -m etl emulator --port 8765 --latency-ms 100 --delisted ZZZZ
    """
    from etl.emulator import EmulatorConfig, serve

    config = EmulatorConfig(
        seed=seed,
        latency_ms=latency_ms,
        error_rate=error_rate,
        rate_limit_rps=rate_limit_rps,
        delisted=frozenset(s for s in delisted.upper().split(",") if s),
        null_fraction=null_fraction,
        stall_rate=stall_rate,
        stall_s=stall_s,
        as_of=as_of and as_of.replace(tzinfo=dt.UTC),
        refuse_all=refuse_all_clients,
        ca_path=ca_path,
    )
    serve(host="127.0.0.1", port=port, config=config)


def _describe_tls(stats: dict) -> str:
    return (
        f"{stats['connections']} TLS connections,"
        f" {stats['blocked_connections']} refused for their ClientHello, "
        f"{len(stats['fingerprints'])} distinct fingerprint(s)"
    )


def _settings(**values) -> Settings:
    with _errors_to_exit():
        return Settings(**{k: v for k, v in values.items() if v is not None})


def _collect(settings: Settings, quiet: bool = False) -> RunRecord:
    """Run the job; print its outcome in one line; a run that stopped early is an error after publishing."""
    from etl import (
        pipeline,
    )  # yfinance, pandas and pyarrow are loaded by the commands that collect, not by --help

    with _errors_to_exit():
        with _progress(settings, quiet) as on_batch:
            run = pipeline.collect(settings, on_batch=on_batch)
        click.echo(
            f"run {run.run_id} {run.status}: {run.n_symbols} symbols, {run.api_calls} API calls, "
            f"{(run.finished_at - run.started_at).total_seconds():.2f} s into {settings.lake_dir}"
        )
        if run.status in _STOPPED:
            raise _STOPPED[run.status](run.message)
    return run


def _print_summary(
    lake: Path, run_id, compare, cost_per_call: float, full_scale: int, output_format: str
) -> None:
    from etl import summary  # DuckDB is loaded by the commands that read, never by collect

    with _errors_to_exit():
        _check_format(output_format)
        con = summary.connect_lake(lake)
        if compare:
            rows = summary.compare_runs(con, *compare, cost_per_call=cost_per_call, full_scale=full_scale)
            click.echo(_render_rows(rows, output_format))
        else:
            figures = summary.run_summary(con, run_id, cost_per_call=cost_per_call, full_scale=full_scale)
            click.echo(_render_summary(figures, output_format))


def _duckdb_shell_path() -> Path:
    """The duckdb-cli package's binary, run directly: its Python launcher quits the shell when Ctrl-C stops a
    query."""
    spec = importlib.util.find_spec("duckdb_cli")
    binary = Path(spec.origin).with_name("duckdb") if spec and spec.origin else None
    if binary is None or not binary.is_file():
        raise ConfigError("the DuckDB shell (package duckdb-cli) is not installed; run `make install`")
    return binary


def _shell_init_sql(variables: dict) -> str:
    """sql/set_lake.sql, sql/set_compactions.sql, sql/views.sql; the shell binds no parameters, so values go
    in as literals."""
    from etl.summary import load_sql

    literals = {name: _sql_literal(value) for name, value in variables.items()}
    statements = [load_sql("set_lake"), load_sql("set_compactions")]
    for name, literal in literals.items():
        statements = [statement.replace(f"${name}", literal) for statement in statements]
    return "".join(statement.rstrip() + ";\n" for statement in statements) + load_sql("views")


def _check_shell_path(lake: Path) -> None:
    path = str(lake.resolve())
    if "\0" in path or "\n" in path:
        raise ConfigError(
            f"--lake {path!r}: a path with a NUL or a newline cannot be handed to the DuckDB shell"
        )


def _sql_literal(value: str | list[str]) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(map(_sql_literal, value)) + "]"
    return "'" + value.replace("'", "''") + "'"


@dataclass
class _Tally:
    """The run's figures so far, for the progress bar and the per-batch line."""

    n_batches: int
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    batch_no: int = 0
    n_ok: int = 0
    n_failed: int = 0
    rss_mb: float = 0.0

    def add(self, m: BatchMetrics) -> _Tally:
        self.done, self.batch_no, self.rss_mb = self.done + 1, m.batch_no, m.rss_mb_after
        self.n_ok, self.n_failed = self.n_ok + m.n_ok, self.n_failed + m.n_failed
        return self

    def describe(self) -> str:
        # By batch_no, not batches done: a resumed run starts past the batches committed before.
        eta_s = int((time.monotonic() - self.started) / self.done * (self.n_batches - self.batch_no))
        return (
            f"{self.n_ok} ok, {self.n_failed} failed so far, RSS {self.rss_mb:.0f} MB, "
            f"ETA {eta_s // 60}:{eta_s % 60:02d}"
        )


@contextmanager
def _progress(settings: Settings, quiet: bool):
    """The pipeline's on_batch: a bar on a terminal, else one log line a batch; nothing with --quiet."""
    if quiet:
        yield lambda m: None
        return
    # The pipeline does not say how many batches there are; counting them again costs ~7 ms at 10,000 symbols.
    tally = _Tally(len(plan_batches(load_universe(settings.universe_path), settings.batch_size)))
    if not sys.stderr.isatty():
        yield lambda m: _log_batch(m, tally.add(m))
        return
    with click.progressbar(
        length=tally.n_batches,
        label="batches",
        file=sys.stderr,
        show_pos=True,
        show_eta=False,
        item_show_func=lambda t: t and t.describe(),
    ) as bar:
        yield lambda m: bar.update(m.batch_no - bar.pos, tally.add(m))


def _log_batch(m: BatchMetrics, tally: _Tally) -> None:
    log.info(
        "batch %d/%d: %d/%d ok, %d calls, fetch %.2fs, write %.3fs; %s",
        m.batch_no,
        tally.n_batches,
        m.n_ok,
        m.n_symbols,
        m.api_calls,
        m.fetch_s,
        m.write_s,
        tally.describe(),
    )


def _setting_names() -> set[str]:
    """What ETL_<NAME> and a settings file may set: collect's options, by name."""
    return {p.name for p in collect.params if isinstance(p, click.Option)} - {"config_path", "show_config"}


def _configurable(command: click.Command) -> list[click.Parameter]:
    """A command's options that settings set; not demo's --lake, so its synthetic data stays out of a real
    lake."""
    names = _setting_names()
    return [p for p in command.params if p.name in names and (command.name, p.name) != ("demo", "lake")]


def _read_settings(ctx: click.Context, config_path: Path | None) -> None:
    """Hand the settings file to click as the defaults it falls back on after flags and ETL_<NAME>
    (default_map)."""
    with _errors_to_exit():
        settings_file = load_settings_file(config_path, _setting_names())
    if settings_file is not None:
        names = {p.name for p in _configurable(ctx.command)}
        ctx.default_map = {k: v for k, v in settings_file.values.items() if k in names}
        ctx.meta[_SETTINGS_FILE_LABEL] = settings_file.label


def _origin(ctx: click.Context, param: click.Parameter) -> str:
    """Where an option's value came from: flag, env ETL_<NAME>, the settings file, or default."""
    source = ctx.get_parameter_source(param.name)
    if source is ParameterSource.COMMANDLINE:
        return "flag"
    if source is ParameterSource.ENVIRONMENT:
        return f"env {param.envvar}"
    if source is ParameterSource.DEFAULT_MAP:
        return ctx.meta[_SETTINGS_FILE_LABEL]
    return "default"


def _describe_settings(ctx: click.Context) -> str:
    """For --show-config: each setting, its value and where it came from, a line each."""
    rows = [
        {"setting": p.name, "value": _shown(p.name, ctx.params[p.name]), "from": _origin(ctx, p)}
        for p in _configurable(ctx.command)
    ]
    return _render_rows(rows, "table")


def _shown(name: str, value) -> str:
    """A setting's value as --show-config prints it: a proxy's credentials are never shown."""
    if value is None:
        return ""
    return to_redacted_url(value) if name == "proxy" else str(value)


def _describe_click_error(exc: click.ClickException) -> str:
    """click's message; a bad value from ETL_<NAME> or the settings file names that place, not the flag."""
    ctx, param = getattr(exc, "ctx", None), getattr(exc, "param", None)
    origin = _origin(ctx, param) if ctx is not None and param is not None else "flag"
    if origin in ("flag", "default"):
        return exc.format_message().rstrip(".")
    if origin.startswith("env "):
        return f"{origin}: {exc.message.rstrip('.')}; fix or unset it"
    assert param is not None  # origin is "flag" when click names no parameter
    return f"{origin}: {param.name}: {exc.message.rstrip('.')}; fix or remove it"


def _read_settings_from_env() -> None:
    """ETL_<NAME> sets the option of that name on every command that shares it (ETL_LAKE for summary too)."""
    for command in app.commands.values():
        for param in _configurable(command):
            param.envvar = f"ETL_{param.name.upper()}"


@contextmanager
def _errors_to_exit():
    """Turns an EtlError into one `error: ...` line on stderr and the error's exit code."""
    try:
        yield
    except EtlError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)


def _check_format(output_format: str) -> None:
    if output_format not in ("table", "markdown", "json"):
        raise ConfigError(f"--format {output_format!r} is not one of table, markdown, json")


def _render_summary(figures: dict, output_format: str) -> str:
    if output_format == "json":
        return json.dumps(figures, default=str, indent=2)
    return _render_rows([{"metric": k, "value": v} for k, v in figures.items()], output_format)


def _render_rows(rows: list[dict], output_format: str) -> str:
    if output_format == "json":
        return json.dumps(rows, default=str, indent=2)
    if not rows:
        return "(no rows)"
    header = list(rows[0])
    cells = [[_cell(row[k]) for k in header] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    lines = [[h.ljust(w) for h, w in zip(header, widths, strict=True)], ["-" * w for w in widths]]
    lines += [
        [c.rjust(w) if _is_number(c) else c.ljust(w) for c, w in zip(row, widths, strict=True)]
        for row in cells
    ]
    if output_format == "markdown":
        return "\n".join("| " + " | ".join(line) + " |" for line in lines)
    return "\n".join("  ".join(line).rstrip() for line in lines)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.4g}"
    return "" if value is None else str(value)


def _is_number(text: str) -> bool:
    return text.replace(",", "").replace(".", "", 1).lstrip("-").isdigit()


def main() -> None:
    """Console entry point: logs to stderr, results to stdout."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        app.main(prog_name="python -m etl", standalone_mode=False)
    except click.ClickException as exc:
        # A malformed option is bad input like any other: one line, exit 2, not click's usage block.
        ctx = getattr(exc, "ctx", None)  # a UsageError's, absent from other ClickExceptions
        command = ctx.command_path if ctx else "python -m etl"
        click.echo(f"error: {_describe_click_error(exc)}; see `{command} --help`", err=True)
        sys.exit(exc.exit_code)
    except click.Abort:
        sys.exit(130)


_read_settings_from_env()
