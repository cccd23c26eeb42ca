"""Yahoo's own recorded answers, replayed in place of the synthetic ones: a folder of node-yahoo-finance2
recordings (a request and its response a file, `chart-<SYM>-...json`, `quote-<SYM>.json`), read once."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from etl.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class RecordedChart:
    """A daily chart as Yahoo answered it: the request's query, and the body with its content type."""

    params: dict[str, str]
    body: bytes
    content_type: str


@dataclass(frozen=True)
class Recordings:
    """The recorded daily charts by symbol (in file-name order), and each symbol's recorded quote object."""

    charts: dict[str, list[RecordedChart]]
    quotes: dict[str, dict]

    def chart(self, symbol: str, params: dict[str, str]) -> RecordedChart | None:
        """The symbol's recorded chart of the period asked for, else its first one, whatever was asked."""
        recorded = self.charts.get(symbol, [])
        same = [c for c in recorded if all(c.params.get(k) == params.get(k) for k in ("period1", "period2"))]
        return next(iter(same or recorded), None)


def load_recordings(folder: Path) -> Recordings:
    """The daily charts (an intraday one is not replayed) and quotes recorded in `folder`."""
    charts: dict[str, list[RecordedChart]] = {}
    for path in sorted(folder.glob("chart-*.json")):
        found = _read(path, _daily_chart)
        if found is not None:
            charts.setdefault(found[0], []).append(found[1])
    answers = [_read(path, _quote_result) for path in folder.glob("quote-*.json")]
    quotes: dict[str, dict] = {}
    # A symbol's own answer last, so that it wins: quote-AAPL.json's AAPL over quote-AAPL-BABA.json's.
    for result in sorted(answers, key=len, reverse=True):
        quotes |= {quote["symbol"]: quote for quote in result}
    if not charts and not quotes:
        raise ConfigError(f"no node-yahoo-finance2 recordings (chart-*.json, quote-*.json) in {folder}")
    return Recordings(charts, quotes)


def _read(path: Path, take: Callable[[dict], T]) -> T:
    try:
        return take(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ConfigError(f"{path}: not a node-yahoo-finance2 recording of Yahoo's answer: {exc!r}") from exc


def _daily_chart(record: dict) -> tuple[str, RecordedChart] | None:
    url, response = urlsplit(record["request"]["url"]), record["response"]
    params = {key: values[-1] for key, values in parse_qs(url.query).items()}
    if params.get("interval", "1d") != "1d" or response["status"] != 200:
        return None
    # Yahoo's bytes, as far as the recording keeps them: its JSON, compact as Yahoo sends it.
    body = json.dumps(response["bodyJson"], separators=(",", ":"), ensure_ascii=False).encode()
    content_type = response["headers"].get("content-type", "application/json;charset=utf-8")
    return unquote(url.path.rsplit("/", 1)[-1]), RecordedChart(params, body, content_type)


def _quote_result(record: dict) -> list[dict]:
    return record["response"]["bodyJson"]["quoteResponse"]["result"]
