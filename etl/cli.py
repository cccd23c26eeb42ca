"""The command line: the only module that parses arguments, prints for people and exits; its commands are
thin calls into the library, their options are declared in etl/options.py."""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

import click

from etl import options
from etl.config import COMPACTABLE, DEFAULT_COST_PER_CALL, DEFAULT_FULL_SCALE, ROW_GROUP_ROWS, Settings
from etl.emulator.command import emulator
from etl.errors import EtlError, MemoryLimitError, SourceError
from etl.lake.files import write_document
from etl.lake.paths import open_lake
from etl.progress import show_progress
from etl.render import render_brief, render_rows, render_summary
from etl.setting_origin import describe_click_error, describe_settings, read_settings_from_env
from etl.status import RunStatus

if TYPE_CHECKING:  # etl.metrics loads pyarrow and, through etl.fetch, yfinance: too slow for --help
    from etl.cluster import Cluster
    from etl.metrics import RunRecord

# A run that ended early still published what it collected; its status says why it is an error.
_STOPPED = {
    RunStatus.MEMORY_LIMIT: MemoryLimitError,
    RunStatus.BELOW_MIN_SUCCESS: EtlError,
    RunStatus.SOURCE_OUTAGE: SourceError,
}
log = logging.getLogger("etl")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def app() -> None:
    """Collect Yahoo Finance data into a lake of Delta tables, and read it back."""


@app.command()
@options.universe_option
@options.lake_option
@options.collect_options
@options.config_option
@options.show_config_option
def collect(universe, lake, quiet, show_config, **settings) -> None:
    """Collect quotes and daily bars for a universe into the lake; `summary` then reports on the run.

    Every option can also come from ETL_<NAME> (ETL_BATCH_SIZE=20) or etl.toml (batch_size = 20).

    Example: python -m etl collect --universe data/universe/default.csv --lake data/lake
    """
    if show_config:
        click.echo(describe_settings(click.get_current_context()))
        return
    _collect(_settings(universe_path=universe, lake=lake, **settings), quiet=quiet)


@app.command()
@options.demo_latency_option
@options.demo_lake_option
@options.universe_option
@options.format_option
@options.config_option
def demo(latency_ms, lake, universe, output_format) -> None:
    """Run the collect job offline against the built-in Yahoo emulator (synthetic data), then print its
    summary.

    Example: python -m etl demo --latency-ms 100
    """
    from etl.emulator import Emulator, EmulatorConfig  # only the commands that serve Yahoo load the emulator

    with Emulator(EmulatorConfig(latency_ms=latency_ms)) as emulator:
        log.info(
            "Yahoo emulator (synthetic data): HTTPS proxy %s, CA %s", emulator.proxy_url, emulator.ca_path
        )
        run = _collect(
            _settings(universe_path=universe, lake=lake, proxy=emulator.proxy_url, ca_bundle=emulator.ca_path)
        )
        log.info("Yahoo emulator's TLS check: %s", emulator.describe_tls())
    _print_summary(lake, run.run_id, None, DEFAULT_COST_PER_CALL, DEFAULT_FULL_SCALE, output_format)


@app.command("summary")
@options.lake_option
@options.run_option
@click.option("--compare", nargs=2, help="Two run ids: before and after.")
@options.cost_option
@options.full_scale_option
@options.format_option
@options.json_option
@options.config_option
def summary_command(lake, run_id, compare, cost_per_call, full_scale, output_format, as_json) -> None:
    """Print the performance summary of a run, or compare two runs.

    Example: python -m etl summary --lake data/demo --compare RUN_A RUN_B --format markdown
    """
    _print_summary(lake, run_id, compare, cost_per_call, full_scale, "json" if as_json else output_format)


@app.command()
@options.lake_option
@options.brief_date_option
@options.brief_top_option
@options.format_option
@options.brief_out_option
@options.config_option
def brief(lake, day, top_n, output_format, out_path) -> None:
    """Print the market brief of a trading day: benchmarks, sector moves, breadth, movers, unusual volume,
    gaps and corporate actions, on adjusted closes; --format json is the script generator's contract.

    Example: python -m etl brief --lake data/demo --date 2026-12-04 --format json
    """
    from etl import market_brief  # DuckDB is loaded by the commands that read, never by collect
    from etl.lake.views import connect_lake

    con = connect_lake(lake)
    on = market_brief.brief_day(con, day.date() if day else None)
    text = render_brief(market_brief.market_brief(con, on, top_n), output_format)
    if out_path is None:
        click.echo(text)
        return
    write_document(out_path, text + "\n")
    click.echo(out_path)


@app.command("report")
@options.lake_option
@options.run_option
@click.option("--compare", "compare_run", help="Run id to compare with (default: the run before).")
@options.report_out_option
@options.config_option
def report_command(lake, run_id, compare_run, out_path) -> None:
    """Write a run's charts, summary and comparison with another run as one HTML page that opens offline.

    Example: python -m etl report --lake data/demo --out data/demo-report.html
    """
    from etl import report  # plotly and DuckDB are loaded by the commands that read, never by collect

    click.echo(report.write_report(lake, run_id, compare_run, out_path))


@app.command()
@click.argument("sql")
@options.lake_option
@options.format_option
@options.config_option
def query(sql, lake, output_format) -> None:
    """Run one SQL statement against the lake's views (quotes, bars, bars_all, runs, batches, failures).

    Example: python -m etl query "select symbol, max(close) from bars group by symbol limit 5"
    """
    from etl.lake.views import connect_lake  # DuckDB is loaded by the commands that read, never by collect
    from etl.queries import fetch_dicts

    click.echo(render_rows(fetch_dicts(connect_lake(lake), sql), output_format))


@app.command()
@options.lake_option
@options.config_option
def shell(lake) -> None:
    """Open the DuckDB shell on the lake's views and macros (latest_quotes(), movers(day, n), ...).

    Example: python -m etl shell --lake data/demo
    """
    import duckdb  # DuckDB is loaded by the commands that read, never by collect

    from etl import shell as duckdb_shell
    from etl.lake.views import lake_variables

    opened = open_lake(lake)
    duckdb_shell.check_shell_lake(opened)
    # Refuses a lake with no run, as `query` does; the shell reads the same snapshot the variables list.
    init_sql = duckdb_shell.to_init_sql(lake_variables(duckdb.connect(), opened))
    binary = duckdb_shell.find_duckdb_shell()
    # -cmd rather than -init FILE: once exec'd, nothing would be left to delete a temp file.
    os.execv(binary, [str(binary), "-cmd", init_sql])


@app.command()
@options.lake_option
@options.compact_table_option
@options.keep_minutes_option
@options.z_order_option
@options.lock_lease_option
@options.config_option
def compact(lake, tables, keep_minutes, z_order, lock_lease_s) -> None:
    """Optimize the lake's Delta tables (small files rewritten as few) and vacuum the files no snapshot of
    the last --keep-minutes needs; readers of an older snapshot keep reading until then.

    Example: python -m etl compact --lake data/lake --table bars --z-order
    """
    from etl.lake.compact import compact_lake
    from etl.lake.holdings import require_completed_run

    opened = open_lake(lake)
    require_completed_run(opened)
    done = compact_lake(
        opened,
        tables or COMPACTABLE,
        keep_minutes=keep_minutes,
        row_group_rows=ROW_GROUP_ROWS,
        lease_s=lock_lease_s,
        z_order=z_order,
    )
    for table in done:
        click.echo(
            f"{table.table}: {table.files_removed} files rewritten as {table.files_added}, "
            f"{table.files_vacuumed} files vacuumed"
        )


@app.command()
@options.lake_option
@options.lock_lease_option
@options.config_option
def migrate(lake, lock_lease_s) -> None:
    """Convert a lake of the layout before Delta (one Parquet file a run and table) into Delta tables, keeping
    every row and every run's bars.

    Example: python -m etl migrate --lake data/lake
    """
    from etl.lake.migrate import migrate_lake

    for table, rows in migrate_lake(open_lake(lake), lease_s=lock_lease_s, row_group_rows=ROW_GROUP_ROWS):
        click.echo(f"{table}: {rows:,} rows")


app.add_command(emulator)


def _settings(**values) -> Settings:
    return Settings(**{k: v for k, v in values.items() if v is not None})


def _collect(settings: Settings, quiet: bool = False) -> RunRecord:
    """Run the job; print its outcome in one line; a run that stopped early is an error after publishing."""
    # yfinance, pandas and pyarrow are loaded by the commands that collect, not by --help.
    from etl import pipeline

    cluster = _connect(settings.ray) if settings.ray else None
    try:
        with show_progress(settings, quiet) as on_batch:
            run = pipeline.collect(settings, on_batch=on_batch, cluster=cluster)
    finally:
        if cluster is not None:
            cluster.close()
    click.echo(
        f"run {run.run_id} {run.status}: {run.n_symbols} symbols, {run.api_calls} API calls, "
        f"{(run.finished_at - run.started_at).total_seconds():.2f} s into {settings.lake}"
    )
    if run.status in _STOPPED:
        raise _STOPPED[run.status](run.message)
    return run


def _connect(address: str) -> Cluster:
    # Ray is loaded by a run on a cluster only; importing etl.cluster where it is missing is a ConfigError.
    from etl.cluster import connect

    return connect(address)


def _print_summary(
    lake: str, run_id, compare, cost_per_call: float, full_scale: int, output_format: str
) -> None:
    from etl import summary  # DuckDB is loaded by the commands that read, never by collect
    from etl.lake.views import connect_lake

    con = connect_lake(lake)
    if compare:
        rows = summary.compare_runs(con, *compare, cost_per_call=cost_per_call, full_scale=full_scale)
        click.echo(render_rows(rows, output_format))
    else:
        figures = summary.run_summary(con, run_id, cost_per_call=cost_per_call, full_scale=full_scale)
        click.echo(render_summary(figures, output_format))


def main() -> None:
    """Console entry point: logs to stderr, results to stdout."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        app.main(prog_name="python -m etl", standalone_mode=False)
    except EtlError as exc:  # every command's, and a settings file's that click read for the options
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        # A malformed option is bad input like any other: one line, exit 2, not click's usage block.
        ctx = getattr(exc, "ctx", None)  # a UsageError's, absent from other ClickExceptions
        command = ctx.command_path if ctx else "python -m etl"
        click.echo(f"error: {describe_click_error(exc)}; see `{command} --help`", err=True)
        sys.exit(exc.exit_code)
    except click.Abort:
        sys.exit(130)


read_settings_from_env(app)
