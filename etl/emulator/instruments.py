"""What Yahoo says a symbol is (its quoteType, exchange, time zone, names) and how the emulator draws its
prices: a kind of instrument's defaults, and the benchmarks' own values where Yahoo tells them apart.

The kinds follow Yahoo's symbols: `^GSPC` and `DX-Y.NYB` are indices, `EURUSD=X` a currency pair, `GC=F` a
future, `BTC-USD` a cryptocurrency, `VFIAX` (five letters ending in X) a mutual fund.
"""

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from etl.emulator.calendars import CME, CRYPTO, FX, NYSE, Calendar

# A stock's day: the sd of its log returns, which the candles' shapes are drawn for (etl/emulator/market.py).
STOCK_DAILY_SD = 0.015


class QuoteType(StrEnum):
    """Yahoo's quoteType."""

    EQUITY = "EQUITY"
    ETF = "ETF"
    INDEX = "INDEX"
    CURRENCY = "CURRENCY"
    CRYPTOCURRENCY = "CRYPTOCURRENCY"
    FUTURE = "FUTURE"
    MUTUALFUND = "MUTUALFUND"


# The kinds Yahoo quotes as listed shares, with a company's (or a fund's) figures.
SHARES = frozenset({QuoteType.EQUITY, QuoteType.ETF, QuoteType.MUTUALFUND})


@dataclass(frozen=True, kw_only=True)
class Instrument:
    """A symbol as Yahoo describes it, and the shape of its synthetic prices."""

    quote_type: QuoteType
    type_disp: str
    exchange: str
    full_exchange_name: str
    market: str  # Yahoo's `market` of the quote
    calendar: Calendar
    # Set for each symbol by instrument(); a future's short name is its commodity's, and it has no long name.
    short_name: str = ""
    long_name: str | None = None
    currency: str = "USD"
    quote_source: str = "Delayed Quote"
    delayed_by_min: int = 0
    alerts: bool = True  # triggerable, with a HIGH customPriceAlertConfidence
    price_hint: int = 2  # and the decimals of its prices
    pre_post: bool = False  # hasPrePostMarketData: Yahoo quotes its pre and post markets
    actions: bool = False  # pays dividends and splits
    # 2025's price level (None: 10..500, drawn from the seed) and a day's sd of log returns.
    level: float | None = None
    daily_sd: float = STOCK_DAILY_SD
    # How far a year's end strays from the level, for a market that comes back to it (a rate, a currency, the
    # VIX); None: a random walk that drifts up, as a stock's.
    yearly_sd: float | None = None
    log_volume: float | None = 14.5  # of a usual day's volume; None: Yahoo sends 0
    contract_months: str = "FGHJKMNQUVXZ"  # a future's listed months, by their CME codes
    supply: int | None = None  # a cryptocurrency's coins in circulation; None: drawn from the seed


_KINDS = {
    QuoteType.EQUITY: Instrument(
        quote_type=QuoteType.EQUITY, type_disp="Equity", exchange="NMS", full_exchange_name="NasdaqGS",
        market="us_market", calendar=NYSE,
        quote_source="Synthetic Real Time Price", pre_post=True, actions=True,
    ),
    QuoteType.ETF: Instrument(
        quote_type=QuoteType.ETF, type_disp="ETF", exchange="PCX", full_exchange_name="NYSEArca",
        market="us_market", calendar=NYSE,
        quote_source="Synthetic Real Time Price", pre_post=True, actions=True,
        daily_sd=0.012, log_volume=16.5,
    ),
    QuoteType.MUTUALFUND: Instrument(
        quote_type=QuoteType.MUTUALFUND, type_disp="Fund", exchange="NAS", full_exchange_name="Nasdaq",
        market="us_market", calendar=NYSE, daily_sd=0.01,
    ),
    QuoteType.INDEX: Instrument(
        quote_type=QuoteType.INDEX, type_disp="Index", exchange="SNP", full_exchange_name="SNP",
        market="us_market", calendar=NYSE,
        delayed_by_min=15, daily_sd=0.012, log_volume=20.0,
    ),
    QuoteType.CURRENCY: Instrument(
        quote_type=QuoteType.CURRENCY, type_disp="Currency", exchange="CCY", full_exchange_name="CCY",
        market="ccy_market", calendar=FX,
        price_hint=4, daily_sd=0.005, yearly_sd=0.08, log_volume=None,
    ),
    QuoteType.CRYPTOCURRENCY: Instrument(
        quote_type=QuoteType.CRYPTOCURRENCY, type_disp="Cryptocurrency", exchange="CCC",
        full_exchange_name="CCC", market="ccc_market", calendar=CRYPTO,
        quote_source="CoinMarketCap", daily_sd=0.04, log_volume=20.0,
    ),
    QuoteType.FUTURE: Instrument(
        quote_type=QuoteType.FUTURE, type_disp="Futures", exchange="CME", full_exchange_name="CME",
        market="us24_market", calendar=CME,
        delayed_by_min=10, alerts=False, daily_sd=0.018, log_volume=12.0,
    ),
}  # fmt: skip
_CHICAGO_OPTIONS = {"exchange": "WCB", "full_exchange_name": "Chicago Options"}
_CBOE = {"exchange": "CBO", "full_exchange_name": "Cboe Indices"}
# The market's benchmarks: Yahoo's names (its shortName and longName alike; a future's shortName, which the
# front contract completes) and exchanges, and prices at about their early-2025 levels.
_BENCHMARKS: dict[str, dict] = {
    "^GSPC": {"name": "S&P 500", "level": 6000.0, "daily_sd": 0.011, "log_volume": 22.0},
    "^DJI": {
        "name": "Dow Jones Industrial Average", "exchange": "DJI", "full_exchange_name": "DJI",
        "level": 44000.0, "daily_sd": 0.01, "log_volume": 19.9,
    },
    "^IXIC": {
        "name": "NASDAQ Composite", "exchange": "NIM", "full_exchange_name": "Nasdaq GIDS",
        "level": 19500.0, "daily_sd": 0.014, "log_volume": 22.7,
    },
    "^RUT": {"name": "Russell 2000", **_CHICAGO_OPTIONS, "level": 2300.0, "log_volume": 21.0},
    "^VIX": {
        "name": "CBOE Volatility Index", **_CBOE,
        "level": 16.0, "daily_sd": 0.05, "yearly_sd": 0.2, "log_volume": None,
    },
    "^TNX": {
        "name": "CBOE Interest Rate 10 Year T No", **_CBOE,
        "level": 4.3, "daily_sd": 0.015, "yearly_sd": 0.12, "log_volume": None, "price_hint": 3,
    },
    "^VXAPL": {
        "name": "CBOE EQUITY VIXON APPLE", **_CHICAGO_OPTIONS,
        "level": 24.0, "daily_sd": 0.05, "yearly_sd": 0.25, "log_volume": None,
    },
    "DX-Y.NYB": {
        "name": "US Dollar Index", "exchange": "NYB", "full_exchange_name": "ICE Futures",
        "level": 104.0, "daily_sd": 0.004, "yearly_sd": 0.07, "log_volume": None, "price_hint": 3,
    },
    "CL=F": {
        "name": "Crude Oil", "exchange": "NYM", "full_exchange_name": "NY Mercantile",
        "level": 70.0, "daily_sd": 0.022, "yearly_sd": 0.2, "log_volume": 12.7,
    },
    "GC=F": {
        "name": "Gold", "exchange": "CMX", "full_exchange_name": "COMEX",
        "level": 2600.0, "daily_sd": 0.01, "log_volume": 12.2, "contract_months": "GJMQVZ",
    },
    "BTC-USD": {
        "name": "Bitcoin USD", "level": 95000.0, "daily_sd": 0.03, "log_volume": 24.0,
        "supply": 19_825_500,
    },
    "EURUSD=X": {"level": 1.08},
}  # fmt: skip
_ETFS = frozenset({"SPY", "QQQ", "IWM", "DIA", "VOO", "VTI", "IVV", "EFA", "EEM", "TLT", "GLD", "XLF", "XLK"})
_INDEX_SYMBOLS = frozenset({"DX-Y.NYB"})  # an index without Yahoo's caret
_FUND = re.compile(r"[A-Z]{4}X")
# Short and long names of the symbols that are no benchmark, by kind.
_NAMES = {
    QuoteType.EQUITY: ("{} Synthetic", "{} Synthetic Inc."),
    QuoteType.ETF: ("{} Synthetic ETF", "{} Synthetic ETF Trust"),
    QuoteType.MUTUALFUND: ("{} Synthetic Fund", "{} Synthetic Fund Investor Shares"),
    QuoteType.INDEX: ("{} Synthetic Index", "{} Synthetic Index"),
    QuoteType.FUTURE: ("{} Synthetic", None),
}
_MONTH_CODES = "FGHJKMNQUVXZ"


def quote_type(symbol: str) -> QuoteType:
    """The kind of a symbol, as Yahoo's symbols tell it."""
    if symbol.startswith("^") or symbol in _INDEX_SYMBOLS:
        return QuoteType.INDEX
    if symbol.endswith("=X"):
        return QuoteType.CURRENCY
    if symbol.endswith("=F"):
        return QuoteType.FUTURE
    if symbol.endswith("-USD"):
        return QuoteType.CRYPTOCURRENCY
    if symbol in _ETFS:
        return QuoteType.ETF
    if _FUND.fullmatch(symbol):
        return QuoteType.MUTUALFUND
    return QuoteType.EQUITY


@cache
def instrument(symbol: str) -> Instrument:
    """The symbol's kind with its own names and money, and a benchmark's own values."""
    kind = quote_type(symbol)
    own, fields = dict(_BENCHMARKS.get(symbol, {})), _derived(symbol, kind)
    if "name" in own:
        name = own.pop("name")
        fields = {**fields, "short_name": name, "long_name": fields["long_name"] and name}
    return dataclasses.replace(_KINDS[kind], **fields, **own)


def _derived(symbol: str, kind: QuoteType) -> dict:
    """Names and money from the symbol: EURUSD=X is EUR/USD in USD, JPY=X USD/JPY in JPY, ETH-USD in USD."""
    if kind is QuoteType.CURRENCY:
        pair = symbol.removesuffix("=X")
        base, quote = (pair[:3], pair[3:]) if len(pair) == 6 else ("USD", pair)
        return {"short_name": f"{base}/{quote}", "long_name": f"{base}/{quote}", "currency": quote}
    if kind is QuoteType.CRYPTOCURRENCY:
        base, quote = symbol.rsplit("-", 1)
        return {"short_name": f"{base} {quote}", "long_name": f"{base} {quote}", "currency": quote}
    short, long = _NAMES[kind]
    bare = symbol.removeprefix("^").removesuffix("=F")
    return {"short_name": short.format(bare), "long_name": long and long.format(bare)}


@dataclass(frozen=True)
class Contract:
    """The contract a continuous future (GC=F) stands for on a day: its symbol (GCJ25), month and expiry."""

    symbol: str
    month: dt.date
    expiry: dt.date


def front_contract(symbol: str, day: dt.date) -> Contract:
    """The first listed month at least two months after `day`'s, expiring on its 28th: Yahoo's GC=F on
    2025-02-17 was GCJ25 (April), expiring 2025-04-28."""
    listed = {_MONTH_CODES.index(code) for code in instrument(symbol).contract_months}
    months = day.year * 12 + day.month - 1 + 2
    while months % 12 not in listed:
        months += 1
    year, month = divmod(months, 12)
    code = f"{symbol.removesuffix('=F')}{_MONTH_CODES[month]}{year % 100:02d}"
    return Contract(code, dt.date(year, month + 1, 1), dt.date(year, month + 1, 28))


def names(symbol: str, day: dt.date | None = None) -> dict:
    """shortName and longName, those Yahoo sends: a future has no long name, and its short name is that of its
    front contract on `day` ("Gold Apr 25"; None: the commodity's alone)."""
    found = instrument(symbol)
    short = found.short_name
    if found.quote_type is QuoteType.FUTURE and day is not None:
        short = f"{short} {front_contract(symbol, day).month:%b %y}"
    return {"shortName": short} | ({"longName": found.long_name} if found.long_name else {})
