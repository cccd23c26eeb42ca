"""The yfinance adapter: the one module that reaches below yfinance's public API (pinned to yfinance 1.7.x).

yfinance does the Yahoo handshake (cookie, crumb, consent and its cookie-strategy fallback) and
sends every request through `YfData`. Its public API does not serve this job: `Ticker.info` costs
two requests a symbol and `Ticker.history` one more for a time-zone look-up, then a pandas frame
per symbol. So we ask `YfData` for the two endpoints we need, a batched `/v7/finance/quote` for a
whole batch and one `/v8/finance/chart` a symbol, and turn the JSON into Arrow ourselves.
tests/test_source.py holds this contract against the emulator.
"""

import datetime as dt
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast
from urllib.parse import quote as url_quote

import yfinance
from curl_cffi.requests import Response
from curl_cffi.requests.exceptions import RequestException
from yfinance.const import _BASE_URL_, _QUERY1_URL_
from yfinance.data import YfData

from etl.source.rate import Rate
from etl.source.session import current_batch, describe_failure, new_session
from etl.status import ErrorType

CHART_URL = _BASE_URL_ + "/v8/finance/chart/"
QUOTE_URL = _QUERY1_URL_ + "/v7/finance/quote"


@dataclass(frozen=True)
class Answer:
    """What Yahoo answered for one request: the JSON payload, or why there is none."""

    payload: dict | list | None
    error_type: str | None = None
    message: str | None = None
    done_at: float = 0.0

    @property
    def is_error(self) -> bool:
        return self.error_type is not None


class YahooSource:
    """Fetches quotes and daily bars from Yahoo through yfinance's session machinery."""

    def __init__(
        self,
        *,
        proxy: str | None,
        ca_bundle: Path | None,
        history: str,
        timeout_s: float,
        since: dict[str, dt.date] | None = None,
        rate: Rate | None = None,
    ) -> None:
        # yfinance reuses its cookie through its on-disk cache (without one it fetches a cookie before every
        # request). The run keeps its own, so it never sends one of another route (the emulator's, the
        # user's).
        self._cache_dir = tempfile.TemporaryDirectory(prefix="etl-yfinance-")
        _point_yfinance_caches_at(self._cache_dir.name)
        # Its warnings ("continuing without crumb") repeat what each Answer reports, once per request.
        logging.getLogger("yfinance").setLevel(logging.ERROR)
        self.session, self.counter = new_session(proxy=proxy, ca_bundle=ca_bundle, rate=rate)
        self._data = YfData(session=self.session)
        # YfData is a process-wide singleton: a cookie and crumb it holds belong to an earlier session's jar.
        self._data._cookie = self._data._crumb = None
        self._proxy = proxy
        self._history = history
        self._since = since or {}
        self._timeout_s = timeout_s

    def start_from(self, since: dict[str, dt.date]) -> None:
        """Where more symbols' bars start: a Ray worker's source, made once, learns them batch by batch."""
        self._since.update(since)

    def close(self) -> None:
        """Remove the run's yfinance cache; the process must not use the source after this."""
        self._cache_dir.cleanup()

    def fetch_chart(self, batch_no: int, symbol: str) -> Answer:
        """Daily bars of `symbol` from its `since` date, else for the configured history: Yahoo's
        `chart.result[0]`."""
        params = {**self._window(symbol), "interval": "1d", "includePrePost": "false", "events": "div,splits"}
        answer = self._get_json(batch_no, CHART_URL + url_quote(symbol, safe=""), params)
        if answer.is_error:
            return answer
        chart = cast(dict, answer.payload).get("chart") or {}
        results = chart.get("result") or []
        if not results:
            error = chart.get("error") or {}
            return Answer(
                None, ErrorType.NO_DATA, error.get("description", "no chart result"), answer.done_at
            )
        return Answer(results[0], done_at=answer.done_at)

    def _window(self, symbol: str) -> dict:
        since = self._since.get(symbol)
        if since is None:
            return {"range": self._history}
        # Midnight of the first day at UTC+4 (20:00 UTC the day before): Yahoo stamps a currency's daily bar
        # at its exchange's midnight, which in London's summer is 23:00 UTC the day before, and would be
        # missed from midnight UTC; and it is after the day before's bars of the Americas (New York opens at
        # 13:30 or 14:30 UTC), which are not fetched again.
        start = dt.datetime.combine(since, dt.time(), _FIRST_DAY_ZONE)
        return {"period1": int(start.timestamp()), "period2": int(time.time())}

    def fetch_quotes(self, batch_no: int, symbols: tuple[str, ...]) -> Answer:
        """One quote request for a whole batch: the list of Yahoo's quote objects it knows."""
        params = {"symbols": ",".join(symbols), "formatted": "false", "lang": "en-US", "region": "US"}
        answer = self._get_json(batch_no, QUOTE_URL, params)
        if answer.is_error:
            return answer
        results = (cast(dict, answer.payload).get("quoteResponse") or {}).get("result") or []
        return Answer(results, done_at=answer.done_at)

    def _get_json(self, batch_no: int, url: str, params: dict) -> Answer:
        current_batch.set(batch_no)
        try:
            response = self._data.get(url, params=params, timeout=self._timeout_s)
        except RequestException as exc:  # curl_cffi's own tree: not requests.RequestException
            return Answer(None, type(exc).__name__, describe_failure(exc, self._proxy), time.perf_counter())
        except yfinance.exceptions.YFException as exc:
            return Answer(None, type(exc).__name__, str(exc), time.perf_counter())
        done_at = time.perf_counter()
        if response.status_code == 404:
            return Answer(None, ErrorType.NO_DATA, _error_description(response), done_at)
        if response.status_code >= 400:
            return Answer(None, f"HTTP{response.status_code}", _error_description(response), done_at)
        try:
            return Answer(response.json(), done_at=done_at)
        except ValueError as exc:
            return Answer(None, ErrorType.BAD_JSON, f"unparseable answer from {url}: {exc}", done_at)


_FIRST_DAY_ZONE = dt.timezone(dt.timedelta(hours=4))


def _point_yfinance_caches_at(folder: str) -> None:
    """yfinance opens its caches once a process: forget them, so the next use opens the ones in `folder`."""
    yfinance.set_tz_cache_location(folder)  # every yfinance cache, despite the name
    yfinance.cache._CookieCacheManager._Cookie_cache = None
    yfinance.cache._TzCacheManager._tz_cache = None


def _error_description(response: Response) -> str:
    """Yahoo's own reason from an error body, else the status line."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code} {response.reason}"
    for envelope in body.values() if isinstance(body, dict) else ():
        error = (envelope or {}).get("error") if isinstance(envelope, dict) else None
        if error:
            return f"HTTP {response.status_code}: {error.get('description') or error.get('code')}"
    return f"HTTP {response.status_code} {response.reason}"
