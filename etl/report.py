"""The run report: one self-contained HTML page with a run's per-batch charts, its worker processes, its
summary, a comparison, and the market on the lake's latest trading day (the brief's main sections)."""

import html
from pathlib import Path
from string import Template

import duckdb
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from etl import market_brief, summary
from etl.config import DEFAULT_BRIEF_TOP, DEFAULT_COST_PER_CALL, DEFAULT_FULL_SCALE, S3_SCHEME, split_s3_url
from etl.lake.files import write_document
from etl.lake.views import connect_lake
from etl.queries import fetch_dicts, load_sql
from etl.render import to_cell_text

# The brief's sections the report shows; the others are not asked of the lake.
_MARKET_SECTIONS = tuple(
    s for s in market_brief.SECTIONS if s.name in ("benchmarks", "sector_moves", "breadth", "movers")
)
MEMORY_LINES = (("rss_mb", "RSS"), ("uss_mb", "USS"), ("arrow_mb", "Arrow"))
# Plotly's JS goes in once, inline, so the page opens offline; the logo would link out to plotly.com.
CHART_CONFIG = {"displaylogo": False, "responsive": True}

PAGE = Template("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Run report $run_id</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.5em; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 0.5em 1em; }
table { border-collapse: collapse; } th, td { padding: 2px 10px; border-bottom: 1px solid #ddd; }
th { text-align: left; font-weight: normal; font-family: monospace; } td { text-align: right; }
</style>
<script>$plotly_js</script>
</head>
<body>
<h1>Run report <code>$run_id</code></h1>
<p>status $status, $n_symbols symbols in $batches_done batches, memory limit $memory_limit.</p>
<div class="charts">$charts</div>
<h2>Worker processes</h2>
$workers
<h2>Comparison with another run</h2>
$comparison
<h2>Performance summary</h2>
$summary_table
$market
</body>
</html>
""")


def write_report(lake: str, run_id: str | None, compare_run: str | None, out_path: Path | None) -> Path:
    """Write the report of run_id (None: the latest) against compare_run (None: the run before) to
    out_path."""
    con = connect_lake(lake)
    figures = summary.run_summary(
        con, run_id, cost_per_call=DEFAULT_COST_PER_CALL, full_scale=DEFAULT_FULL_SCALE
    )
    run_id = figures["run_id"]
    batches = fetch_batches(con, run_id)
    charts = [chart_memory(batches), chart_time(batches), chart_calls(batches), chart_success(batches)]
    before = compare_run or fetch_previous_run(con, run_id)
    comparison = (
        to_comparison(con, before, run_id, batches) if before else "<p>No earlier run to compare with.</p>"
    )
    workers = to_table(fetch_dicts(con, load_sql("report_workers"), {"run_id": run_id}))
    out_path = out_path or default_report_path(lake)
    write_document(out_path, to_page(figures, batches, charts, comparison, workers, to_market(con)))
    return out_path


def to_market(con: duckdb.DuckDBPyConnection) -> str:
    """The market on the lake's latest trading day: the benchmarks, a chart of the sectors' moves, breadth
    and the top movers, from the same macros as `etl brief`."""
    day = market_brief.latest_trading_day(con)
    if day is None:
        return "<h2>Market</h2><p>No stock has a bar in the lake yet.</p>"
    brief = market_brief.market_brief(con, day, DEFAULT_BRIEF_TOP, _MARKET_SECTIONS)
    parts = [
        f'<h2 id="market">Market on {day.isoformat()}</h2>',
        "<h3>Benchmarks</h3>",
        to_table(brief["benchmarks"]["rows"]),
    ]
    parts += [to_div(chart_sectors(brief["sector_moves"]["rows"]))]
    parts += ["<h3>Breadth</h3>", to_table(brief["breadth"]["rows"])]
    parts += ["<h3>Top movers</h3>", to_table(brief["movers"]["rows"])]
    return "\n".join(parts)


def chart_sectors(sectors: list[dict]) -> go.Figure:
    """Each sector's equal-weighted and cap-weighted change, largest mean on top."""
    names = [row["sector"] for row in reversed(sectors)]
    fig = go.Figure()
    for column, label in (("mean_change_pct", "equal-weighted"), ("cap_weighted_change_pct", "cap-weighted")):
        values = [row[column] for row in reversed(sectors)]
        fig.add_bar(y=names, x=values, name=label, orientation="h")
    styled(fig, "Sector moves", "", barmode="group")
    return fig.update_layout(xaxis_title="change, %", height=120 + 40 * len(sectors))


def to_comparison(
    con: duckdb.DuckDBPyConnection, before: str, after: str, after_batches: dict[str, list]
) -> str:
    """Both runs' RSS in one chart beside the table of sql/compare.sql."""
    rows = summary.compare_runs(
        con, before, after, cost_per_call=DEFAULT_COST_PER_CALL, full_scale=DEFAULT_FULL_SCALE
    )
    chart = chart_rss_compare(before, fetch_batches(con, before), after, after_batches)
    caption = f"<p>before <code>{html.escape(before)}</code>, after <code>{html.escape(after)}</code></p>"
    return f'<div class="charts"><div>{to_div(chart)}</div><div>{caption}{to_table(rows)}</div></div>'


def to_page(
    figures: dict,
    batches: dict[str, list],
    charts: list[go.Figure],
    comparison: str,
    workers: str,
    market: str,
) -> str:
    """The whole page: Plotly's JS once, the charts, the worker processes' table (sql/report_workers.sql),
    the comparison, the summary table and the market section."""
    return PAGE.substitute(
        run_id=html.escape(figures["run_id"]),
        status=html.escape(figures["status"]),
        n_symbols=figures["n_symbols"],
        batches_done=figures["batches_done"],
        memory_limit=to_limit_text(batches),
        plotly_js=get_plotlyjs(),
        charts="\n".join(to_div(chart) for chart in charts),
        summary_table=to_table([{"metric": k, "value": v} for k, v in figures.items()]),
        comparison=comparison,
        workers=workers,
        market=market,
    )


def default_report_path(lake: str | Path) -> Path:
    """`<lake>-report.html` beside a local lake, never inside it: the lake holds data only; for a lake in a
    bucket, `<prefix>-report.html` in the current folder, as a page is for people, not for the store."""
    if str(lake).startswith(S3_SCHEME):
        return Path(f"{split_s3_url(str(lake))[2]}-report.html")
    lake_dir = Path(lake)
    lake_dir = lake_dir if lake_dir.name not in ("", "..") else lake_dir.resolve()
    return lake_dir.parent / f"{lake_dir.name}-report.html"


def fetch_batches(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, list]:
    """The run's batches (sql/report_batches.sql) as one list per column."""
    rows = fetch_dicts(con, load_sql("report_batches"), {"run_id": run_id})
    columns = (
        "batch_no",
        "rss_mb",
        "uss_mb",
        "arrow_mb",
        "memory_limit_mb",
        "fetch_s",
        "write_s",
        "api_calls",
        "n_ok",
        "n_failed",
    )
    return {name: [row[name] for row in rows] for name in columns}


def fetch_previous_run(con: duckdb.DuckDBPyConnection, run_id: str) -> str | None:
    """The run that started last before run_id, if any."""
    return fetch_dicts(con, load_sql("report_previous_run"), {"run_id": run_id})[0]["run_id"]


def chart_memory(batches: dict[str, list]) -> go.Figure:
    """RSS, USS and Arrow memory after each batch against the run's memory limit."""
    x = batches["batch_no"]
    fig = go.Figure(
        [go.Scatter(x=x, y=batches[col], name=name, mode="lines+markers") for col, name in MEMORY_LINES]
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=batches["memory_limit_mb"],
            name=f"limit {to_limit_text(batches)}",
            mode="lines",
            line={"dash": "dash", "color": "crimson"},
        )
    )
    # Arrow's pool holds a few MB, the limit is thousands: on a log axis every line stays readable.
    return styled(fig, "Memory per batch (MB)", "MB", yaxis={"type": "log", "dtick": 1})


def chart_time(batches: dict[str, list]) -> go.Figure:
    """Seconds per batch, fetching and writing stacked."""
    x = batches["batch_no"]
    fig = go.Figure([go.Bar(x=x, y=batches[col], name=col) for col in ("fetch_s", "write_s")])
    return styled(fig, "Time per batch (s)", "s", barmode="stack")


def chart_calls(batches: dict[str, list]) -> go.Figure:
    """HTTP requests sent for each batch."""
    fig = go.Figure([go.Bar(x=batches["batch_no"], y=batches["api_calls"], name="api_calls")])
    return styled(fig, "API calls per batch", "requests")


def chart_success(batches: dict[str, list]) -> go.Figure:
    """Symbols that ended ok and that did not, per batch."""
    x = batches["batch_no"]
    fig = go.Figure(
        [
            go.Bar(x=x, y=batches["n_ok"], name="n_ok", marker_color="seagreen"),
            go.Bar(x=x, y=batches["n_failed"], name="n_failed", marker_color="crimson"),
        ]
    )
    return styled(fig, "Success per batch", "symbols", barmode="stack")


def chart_rss_compare(before: str, before_batches: dict, after: str, after_batches: dict) -> go.Figure:
    """Both runs' RSS after each batch, one line each."""
    fig = go.Figure(
        [
            go.Scatter(x=b["batch_no"], y=b["rss_mb"], name=f"{side} {run_id}", mode="lines+markers")
            for side, run_id, b in (("before", before, before_batches), ("after", after, after_batches))
        ]
    )
    return styled(fig, "RSS per batch: two runs (MB)", "MB")


def to_limit_text(batches: dict[str, list]) -> str:
    """The run's memory limit as the page shows it: `2048 MB`."""
    limit = batches["memory_limit_mb"][0] if batches["memory_limit_mb"] else None
    return "unknown" if limit is None else f"{limit:g} MB"


def styled(fig: go.Figure, title: str, y_title: str, **layout) -> go.Figure:
    """The house look of every chart: a title, batch numbers along x, a legend on top."""
    fig.update_layout(
        title=title,
        xaxis_title="batch",
        yaxis_title=y_title,
        height=340,
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 60, "b": 40},
        **layout,
    )
    # Plotly lists stacked bars top first; keep the legend in the order the traces are named.
    fig.update_layout(legend={"orientation": "h", "y": 1.12, "traceorder": "normal"})
    return fig


def to_div(fig: go.Figure) -> str:
    """A chart as a <div> and the script that draws it, without Plotly's JS (the page has it once)."""
    return pio.to_html(fig, full_html=False, include_plotlyjs=False, config=CHART_CONFIG)


def to_table(rows: list[dict]) -> str:
    """Rows as an HTML table; the first column names the row."""
    if not rows:
        return "<p>(none)</p>"
    header = "".join(f"<th>{html.escape(name)}</th>" for name in rows[0])
    return f"<table><tr>{header}</tr>{''.join(to_row(row) for row in rows)}</table>"


def to_row(row: dict) -> str:
    """One table row: its first cell is a heading, the rest are figures."""
    first, *rest = (html.escape(to_cell_text(value)) for value in row.values())
    return f"<tr><th>{first}</th>{''.join(f'<td>{cell}</td>' for cell in rest)}</tr>"
