"""The command line: the only module that parses arguments, prints for people and exits."""

import json
import logging
import sys
from contextlib import contextmanager
from pathlib import Path

import typer

from etl import pipeline
from etl.config import DEFAULT_LAKE_DIR, DEMO_LAKE_DIR, Settings
from etl.emulator import Emulator, EmulatorConfig, serve
from etl.errors import ConfigError, EtlError, MemoryLimitError, SourceError
from etl.metrics import BatchMetrics, RunRecord
from etl.universe import DEFAULT_UNIVERSE_PATH

# A run that ended early still published what it collected; its status says why it is an error.
_STOPPED = {"memory_limit": MemoryLimitError, "source_outage": SourceError}

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Collect Yahoo Finance data into a Parquet lake.")
log = logging.getLogger("etl")

UniverseOpt = typer.Option(DEFAULT_UNIVERSE_PATH, "--universe", help="CSV with a `symbol` column, or one symbol a line.")
BatchSizeOpt = typer.Option(10, "--batch-size", help="Symbols per batch: the unit of fetching, writing and metrics.")
HistoryOpt = typer.Option("1y", "--history", help="Daily bars for this Yahoo period (1mo, 1y, 5y, max, ...).")
MemoryOpt = typer.Option(2048.0, "--memory-limit-mb", help="Stop cleanly when RSS stays above this after gc.")
CostOpt = typer.Option(0.001, "--cost-per-call", help="Estimated USD per API call, for the summary.")
ConcurrencyOpt = typer.Option(8, "--concurrency", help="Requests in flight at once.")
FullScaleOpt = typer.Option(5000, "--full-scale", help="Universe size for the summary's full-scale estimate.")
FormatOpt = typer.Option("table", "--format", help="table, markdown or json.")


@app.command()
def collect(
    universe: Path = UniverseOpt,
    lake: Path = typer.Option(DEFAULT_LAKE_DIR, "--lake", help="The lake's folder."),
    batch_size: int = BatchSizeOpt,
    history: str = HistoryOpt,
    yahoo_url: str = typer.Option(None, "--yahoo-url", envvar="ETL_YAHOO_URL",
                                  help="Send every Yahoo request to this base URL (an emulator)."),
    memory_limit_mb: float = MemoryOpt,
    concurrency: int = ConcurrencyOpt,
) -> None:
    """Collect quotes and daily bars for a universe into the lake; `summary` then reports on the run.

    Example: python -m etl collect --universe data/universe/default.csv --lake data/lake
    """
    settings = _settings(universe_path=universe, lake_dir=lake, batch_size=batch_size, history=history,
                         yahoo_url=yahoo_url, memory_limit_mb=memory_limit_mb, concurrency=concurrency)
    _collect(settings)


@app.command()
def demo(
    latency_ms: float = typer.Option(100.0, "--latency-ms", help="The emulator's delay per request."),
    lake: Path = typer.Option(DEMO_LAKE_DIR, "--lake", help="The demo lake's folder."),
    universe: Path = UniverseOpt,
    output_format: str = FormatOpt,
) -> None:
    """Run the collect job offline against the built-in Yahoo emulator (synthetic data), then print its summary.

    Example: python -m etl demo --latency-ms 100
    """
    with _errors_to_exit():
        _check_format(output_format)
    with Emulator(EmulatorConfig(latency_ms=latency_ms)) as emulator:
        log.info("Yahoo emulator (synthetic data) on %s", emulator.url)
        settings = _settings(universe_path=universe, lake_dir=lake, yahoo_url=emulator.url)
        run = _collect(settings)
    summary_command(lake=lake, run=run.run_id, compare=None, cost_per_call=CostOpt.default,
                    full_scale=FullScaleOpt.default, output_format=output_format)


@app.command("summary")
def summary_command(
    lake: Path = typer.Option(DEFAULT_LAKE_DIR, "--lake", help="The lake's folder."),
    run: str = typer.Option(None, "--run", help="Run id (default: the latest run)."),
    compare: tuple[str, str] | None = typer.Option(None, "--compare", help="Two run ids: before and after."),
    cost_per_call: float = CostOpt,
    full_scale: int = FullScaleOpt,
    output_format: str = FormatOpt,
) -> None:
    """Print the performance summary of a run, or compare two runs.

    Example: python -m etl summary --lake data/demo --compare RUN_A RUN_B --format markdown
    """
    from etl import summary  # DuckDB is loaded by the commands that read, never by collect

    with _errors_to_exit():
        _check_format(output_format)
        con = summary.connect_lake(lake)
        if compare:
            rows = summary.compare_runs(con, *compare, cost_per_call=cost_per_call, full_scale=full_scale)
            typer.echo(_render_rows(rows, output_format))
        else:
            figures = summary.run_summary(con, run, cost_per_call=cost_per_call, full_scale=full_scale)
            typer.echo(_render_summary(figures, output_format))


@app.command()
def query(
    sql: str = typer.Argument(..., help="One DuckDB statement; the views quotes, bars, runs, batches, failures exist."),
    lake: Path = typer.Option(DEFAULT_LAKE_DIR, "--lake", help="The lake's folder."),
    output_format: str = FormatOpt,
) -> None:
    """Run one SQL statement against the lake's views.

    Example: python -m etl query "select symbol, max(close) from bars group by symbol limit 5"
    """
    from etl import summary  # DuckDB is loaded by the commands that read, never by collect

    with _errors_to_exit():
        _check_format(output_format)
        con = summary.connect_lake(lake)
        typer.echo(_render_rows(summary.fetch_dicts(con, sql), output_format))


@app.command()
def emulator(
    port: int = typer.Option(8765, "--port", help="Port on 127.0.0.1 (0: any free port)."),
    latency_ms: float = typer.Option(0.0, "--latency-ms", help="Delay per request."),
    error_rate: float = typer.Option(0.0, "--error-rate", help="Fraction of data requests answered HTTP 500."),
    rate_limit_rps: float = typer.Option(None, "--rate-limit-rps", help="Above this many requests a second: 429."),
    delisted: str = typer.Option("", "--delisted", help="Comma-separated symbols answered as delisted."),
    null_fraction: float = typer.Option(0.0, "--null-fraction", help="Fraction of bars sent as nulls."),
    seed: int = typer.Option(7, "--seed", help="Seed of the synthetic data."),
) -> None:
    """Serve the Yahoo Finance emulator (synthetic data) until interrupted.

    Example: python -m etl emulator --port 8765 --latency-ms 100 --delisted ZZZZ
    """
    config = EmulatorConfig(
        seed=seed, latency_ms=latency_ms, error_rate=error_rate, rate_limit_rps=rate_limit_rps,
        delisted=frozenset(s for s in delisted.upper().split(",") if s), null_fraction=null_fraction,
    )
    serve(host="127.0.0.1", port=port, config=config)


def _settings(**values) -> Settings:
    with _errors_to_exit():
        return Settings(**{k: v for k, v in values.items() if v is not None})


def _collect(settings: Settings) -> RunRecord:
    """Run the job; print its outcome in one line; a run that stopped early is an error after publishing."""
    with _errors_to_exit():
        run = pipeline.collect(settings, on_batch=_log_batch)
        typer.echo(
            f"run {run.run_id} {run.status}: {run.n_symbols} symbols, {run.api_calls} API calls, "
            f"{(run.finished_at - run.started_at).total_seconds():.2f} s into {settings.lake_dir}"
        )
        if run.status in _STOPPED:
            raise _STOPPED[run.status](run.message)
    return run


def _log_batch(m: BatchMetrics) -> None:
    log.info(
        "batch %d: %d/%d ok, %d calls, fetch %.2fs, write %.3fs, RSS %.0f MB",
        m.batch_no, m.n_ok, m.n_symbols, m.api_calls, m.fetch_s, m.write_s, m.rss_mb_after,
    )


@contextmanager
def _errors_to_exit():
    """Turns an EtlError into one `error: ...` line on stderr and the error's exit code."""
    try:
        yield
    except EtlError as exc:
        raise typer.Exit(_fail(str(exc), exc.exit_code)) from None


def _fail(message: str, code: int) -> int:
    typer.echo(f"error: {message}", err=True)
    return code


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
    lines = [[h.ljust(w) for h, w in zip(header, widths)], ["-" * w for w in widths]]
    lines += [[c.rjust(w) if _is_number(c) else c.ljust(w) for c, w in zip(row, widths)] for row in cells]
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
    app()
