"""Rows and figures as people read them: a plain table, a Markdown table or JSON, numbers formatted once."""

import json


def render_rows(rows: list[dict], output_format: str) -> str:
    """Rows as a table (numbers right-aligned), a Markdown table, or a JSON list; the first row names the
    columns."""
    if output_format == "json":
        return json.dumps(rows, default=str, indent=2)
    if not rows:
        return "(no rows)"
    header = list(rows[0])
    cells = [[to_cell_text(row[k]) for k in header] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    lines = [[h.ljust(w) for h, w in zip(header, widths, strict=True)], ["-" * w for w in widths]]
    lines += [
        [c.rjust(w) if _is_number(c) else c.ljust(w) for c, w in zip(row, widths, strict=True)]
        for row in cells
    ]
    if output_format == "markdown":
        return "\n".join("| " + " | ".join(line) + " |" for line in lines)
    return "\n".join("  ".join(line).rstrip() for line in lines)


def render_summary(figures: dict, output_format: str) -> str:
    """A run's figures as a JSON object, or as a two-column table of metric and value."""
    if output_format == "json":
        return json.dumps(figures, default=str, indent=2)
    return render_rows([{"metric": k, "value": v} for k, v in figures.items()], output_format)


def render_brief(brief: dict, output_format: str) -> str:
    """The market brief as its JSON contract, or each section under its title as a table."""
    if output_format == "json":
        return json.dumps(brief, indent=2)
    sections = [value for value in brief.values() if isinstance(value, dict)]
    if output_format == "markdown":
        parts = [f"# Market on {brief['day']}"]
        parts += [f"## {s['title']}\n\n{render_rows(s['rows'], output_format)}" for s in sections]
    else:
        parts = [f"Market on {brief['day']}"]
        parts += [f"{s['title']}\n{render_rows(s['rows'], output_format)}" for s in sections]
    return "\n\n".join(parts)


def to_cell_text(value: object) -> str:
    """A figure as the CLI and the report show it: floats to 4 significant digits, or 1 decimal from 100 up;
    None as nothing."""
    if isinstance(value, float):
        value += 0.0  # SQL's round() leaves -0.0, which would print as "-0"
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.4g}"
    return "" if value is None else str(value)


def _is_number(text: str) -> bool:
    return text.replace(",", "").replace(".", "", 1).lstrip("-").isdigit()
