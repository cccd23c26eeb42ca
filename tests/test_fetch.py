"""Fetching batches: in plan order, an outcome for every symbol, and a wave of 'not found' distrusted."""

import pytest

from etl.emulator import Emulator, EmulatorConfig
from etl.fetch import WAVE_MIN_SYMBOLS, BatchFetcher
from etl.plan import plan_batches
from etl.source.yahoo import YahooSource
from etl.status import ErrorType, OutcomeKind

GONE = ("GONE1", "GONE2", "GONE3")


@pytest.fixture(scope="module")
def emu():
    with Emulator(EmulatorConfig(delisted=frozenset(GONE))) as emulator:
        yield emulator


def fetch_all(emu, symbols: list[str], batch_size: int, concurrency: int = 4) -> list:
    source = YahooSource(proxy=emu.proxy_url, ca_bundle=emu.ca_path, history="1mo", timeout_s=10)
    fetcher = BatchFetcher(source, concurrency, batch_size)
    try:
        return list(fetcher.fetch_all(plan_batches(symbols, batch_size)))
    finally:
        fetcher.close()
        source.close()


def outcomes(fetched) -> dict[str, tuple[OutcomeKind, str | None]]:
    return {o.symbol: (o.outcome, o.error_type) for o in fetched.outcomes}


def test_batches_come_back_in_plan_order_with_an_outcome_for_every_symbol(emu):
    symbols = ["AAPL", "MSFT", "KO", "PEP", "XOM", "GONE1", "JPM"]
    fetched = fetch_all(emu, symbols, batch_size=3, concurrency=8)  # later batches in flight early
    assert [f.batch.batch_no for f in fetched] == [1, 2, 3]
    assert [o.symbol for f in fetched for o in f.outcomes] == symbols
    assert outcomes(fetched[1])["GONE1"] == (OutcomeKind.NO_DATA, ErrorType.NO_DATA)
    ok = [s for f in fetched for s, (kind, _) in outcomes(f).items() if kind is OutcomeKind.OK]
    assert ok == [s for s in symbols if s != "GONE1"]
    charted = [symbol for f in fetched for symbol, _ in f.charts]
    quoted = [quote["symbol"] for f in fetched for quote in f.quotes]
    assert charted == quoted == ok  # an ok symbol has its bars and its quote, a gone one neither
    assert all(f.fetch_s > 0 for f in fetched)


def test_half_a_batch_not_found_at_once_is_a_wave_of_errors_not_delistings(emu):
    (fetched,) = fetch_all(emu, [*GONE, "AAPL", "MSFT"], batch_size=5)
    assert len(GONE) >= WAVE_MIN_SYMBOLS
    assert {s: outcomes(fetched)[s] for s in GONE} == {
        s: (OutcomeKind.ERROR, ErrorType.NO_DATA_WAVE) for s in GONE
    }
    assert outcomes(fetched)["AAPL"] == (OutcomeKind.OK, None)


def test_fewer_not_found_than_a_wave_stay_delistings(emu):
    # The negative control of the wave: two gone symbols of a batch of six are believed.
    (fetched,) = fetch_all(emu, ["GONE1", "GONE2", "AAPL", "MSFT", "KO", "PEP"], batch_size=6)
    assert (
        outcomes(fetched)["GONE1"] == outcomes(fetched)["GONE2"] == (OutcomeKind.NO_DATA, ErrorType.NO_DATA)
    )
