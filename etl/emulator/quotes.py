"""Yahoo's `/v7/finance/quote` objects for the synthetic market: the last session of the very bars the chart
serves, with the keys Yahoo sends for the instrument's kind. A key Yahoo leaves out of a kind is left out,
never sent as null: a currency, an index and a future have no marketCap, a future no longName and no
messageBoardId, a cryptocurrency no bid or ask."""

import datetime as dt
from typing import Any

import numpy as np

from etl.emulator import calendars, history, market, walk
from etl.emulator.calendars import OPEN_TIME, zone_at
from etl.emulator.history import Latest
from etl.emulator.instruments import SHARES, Instrument, QuoteType, front_contract, instrument, names

# The kinds whose bid and ask Yahoo sends with sizes of 0.
_UNSIZED = frozenset({QuoteType.INDEX, QuoteType.CURRENCY})


def quote_object(seed: int, symbol: str, latest: Latest, now: dt.datetime) -> dict:
    """One entry of `/v7/finance/quote`'s result."""
    found = instrument(symbol)
    own = _KIND_KEYS.get(found.quote_type)
    return {
        **_header(symbol, found, latest, now),
        **_regular_market(found, latest),
        **(_extended_hours(seed, symbol, latest, now) if found.pre_post else {}),
        **_trailing(latest),
        **(own(seed, symbol, latest) if own else {}),
        "symbol": symbol,
    }


def _header(symbol: str, found: Instrument, latest: Latest, now: dt.datetime) -> dict:
    """What the quote says of the instrument; the keys Yahoo leaves out of its kind are None here."""
    zone, offset = zone_at(now, found.calendar)
    shares = found.quote_type in SHARES
    fields = {
        "language": "en-US",
        "region": "US",
        "quoteType": found.quote_type.value,
        "typeDisp": found.type_disp,
        "quoteSourceName": found.quote_source,
        "triggerable": found.alerts,
        "customPriceAlertConfidence": "HIGH" if found.alerts else "NONE",
        "currency": found.currency,
        "exchange": found.exchange,
        "fullExchangeName": found.full_exchange_name,
        "financialCurrency": found.currency if shares else None,
        "market": found.market,
        "messageBoardId": _message_board(symbol, found.quote_type),
        "esgPopulated": False,
        "exchangeTimezoneName": found.calendar.zone.key,
        "exchangeTimezoneShortName": zone,
        "gmtOffSetMilliseconds": offset * 1000,
        "marketState": calendars.market_state(now, found.calendar),
        "hasPrePostMarketData": found.pre_post,
        "firstTradeDateMilliseconds": calendars.first_open(found.calendar) * 1000,
        "priceHint": found.price_hint,
        "sourceInterval": 15,
        "exchangeDataDelayedBy": found.delayed_by_min,
        "tradeable": False,
        "cryptoTradeable": found.quote_type is QuoteType.CRYPTOCURRENCY,
        "corporateActions": [],
        **names(symbol, latest.day),
        "displayName": found.short_name if shares else None,
    }
    return {key: value for key, value in fields.items() if value is not None}


def _message_board(symbol: str, kind: QuoteType) -> str | None:
    """Yahoo's message board of the symbol (finmb_INDEXVXAPL, finmb_EUR_X, finmb_BTC_CCC); a future has
    none."""
    if kind is QuoteType.INDEX:
        return f"finmb_INDEX{symbol.removeprefix('^')}"
    if kind is QuoteType.CURRENCY:
        return f"finmb_{symbol[:3]}_X"
    if kind is QuoteType.CRYPTOCURRENCY:
        return f"finmb_{symbol.split('-')[0]}_CCC"
    if kind is QuoteType.FUTURE:
        return None
    return f"finmb_{walk.stable_seed(symbol)}"


def _regular_market(found: Instrument, latest: Latest) -> dict:
    price, previous = latest.price, latest.previous_close
    fields: dict[str, Any] = {
        "regularMarketPrice": price,
        "regularMarketTime": latest.time,
        "regularMarketChange": round(price - previous, 6),
        "regularMarketChangePercent": round(100 * (price / previous - 1), 6),
        "regularMarketOpen": latest.open,
        "regularMarketDayHigh": latest.high,
        "regularMarketDayLow": latest.low,
        "regularMarketDayRange": f"{latest.low} - {latest.high}",
        "regularMarketVolume": latest.volume,
        "regularMarketPreviousClose": previous,
    }
    if found.quote_type is QuoteType.CRYPTOCURRENCY:
        return fields
    size = 0 if found.quote_type in _UNSIZED else 1
    return fields | {
        "bid": round(price * 0.999, found.price_hint),
        "ask": round(price * 1.001, found.price_hint),
        "bidSize": size,
        "askSize": size,
    }


def _extended_hours(seed: int, symbol: str, latest: Latest, now: dt.datetime) -> dict:
    """Yahoo quotes the post market once the session has closed, and the pre market before the next opens."""
    rng = np.random.default_rng([walk.stable_seed(seed, symbol, "extended"), latest.day.toordinal()])
    fields: dict[str, Any] = {}
    is_pre = calendars.market_state(now) == "PRE"
    for prefix, end, quoted in (
        ("postMarket", dt.time(20, 0), latest.closed),
        ("preMarket", OPEN_TIME, is_pre),
    ):
        if quoted:
            price = round(latest.price * (1 + rng.normal(0, 0.003)), 2)
            end_s = calendars.epoch(now.date() if prefix == "preMarket" else latest.day, end)
            fields |= {
                f"{prefix}ChangePercent": round(100 * (price / latest.price - 1), 6),
                f"{prefix}Price": price,
                f"{prefix}Change": round(price - latest.price, 6),
                f"{prefix}Time": min(int(now.timestamp()), end_s),
            }
    return fields


def _trailing(latest: Latest) -> dict:
    """52-week range and moving averages of the trailing year."""
    year, price = latest.year, latest.price
    high, low = float(year.high.max()), float(year.low.min())
    fields: dict[str, Any] = {
        "fiftyTwoWeekHigh": high,
        "fiftyTwoWeekLow": low,
        "fiftyTwoWeekRange": f"{low} - {high}",
        "fiftyTwoWeekChangePercent": round(100 * (price / float(year.close[0]) - 1), 6),
        "averageDailyVolume10Day": int(year.volume[-10:].mean()),
        "averageDailyVolume3Month": int(year.volume[-63:].mean()),
        "fiftyDayAverage": round(float(year.close[-50:].mean()), 4),
        "twoHundredDayAverage": round(float(year.close[-200:].mean()), 4),
    }
    for name, level in (
        ("fiftyTwoWeekHigh", high),
        ("fiftyTwoWeekLow", low),
        ("fiftyDayAverage", fields["fiftyDayAverage"]),
        ("twoHundredDayAverage", fields["twoHundredDayAverage"]),
    ):
        fields[f"{name}Change"] = round(price - level, 6)
        fields[f"{name}ChangePercent"] = round(price / level - 1, 6)
    return fields


def _per_share(seed: int, symbol: str, latest: Latest) -> dict:
    """Valuation of the synthetic company, and its dividends."""
    company, price = market.company(seed, symbol), latest.price
    eps_year = round((company.eps + company.eps_forward) / 2, 4)
    earnings = calendars.epoch(latest.day + dt.timedelta(days=7 + company.shares % 80), dt.time(16, 30))
    return {
        "sharesOutstanding": company.shares,
        "marketCap": int(price * company.shares),
        "epsTrailingTwelveMonths": company.eps,
        "epsForward": company.eps_forward,
        "epsCurrentYear": eps_year,
        "priceEpsCurrentYear": round(price / eps_year, 6),
        "trailingPE": round(price / company.eps, 6),
        "forwardPE": round(price / company.eps_forward, 6),
        "bookValue": company.book_value,
        "priceToBook": round(price / company.book_value, 6),
        **_dividends(seed, symbol, latest),
        "averageAnalystRating": "2.0 - Buy",
        "earningsTimestamp": earnings,
        "earningsTimestampStart": earnings,
        "earningsTimestampEnd": earnings,
        "earningsCallTimestampStart": earnings + 1800,
        "earningsCallTimestampEnd": earnings + 1800,
        "isEarningsDateEstimate": True,
    }


def _dividends(seed: int, symbol: str, latest: Latest) -> dict:
    """Yahoo's dividend keys: the trailing year's dividends (over the previous close), the last one a year
    ahead (over the price, in percent) and its payment date, 3 days after the ex-date at midnight UTC; for a
    symbol that has paid none in a year, zeros and no more, as Yahoo sends."""
    year_ago = latest.day - dt.timedelta(days=365)
    paid = history.adjusted_dividends(seed, symbol, year_ago + dt.timedelta(days=1), latest.day, latest.day)
    if not paid:
        return {"trailingAnnualDividendRate": 0.0, "trailingAnnualDividendYield": 0.0}
    trailing, (last_ex, last_amount) = round(sum(amount for _, amount in paid), 4), paid[-1]
    rate = round(4 * last_amount, 4)
    paid_on = dt.datetime.combine(last_ex + dt.timedelta(days=3), dt.time(0, 0), dt.UTC)
    return {
        "dividendDate": int(paid_on.timestamp()),
        "trailingAnnualDividendRate": trailing,
        "dividendRate": rate,
        "trailingAnnualDividendYield": round(trailing / latest.previous_close, 10),
        "dividendYield": round(100 * rate / latest.price, 2),
    }


def _coin(seed: int, symbol: str, latest: Latest) -> dict:
    """A cryptocurrency's supply and market cap, CoinMarketCap's as Yahoo relays them."""
    found = instrument(symbol)
    rng = np.random.default_rng(walk.stable_seed(seed, symbol, "supply"))
    supply = found.supply or int(rng.uniform(1e7, 1e10))
    base = symbol.rsplit("-", 1)[0]
    slug = found.short_name.removesuffix(f" {found.currency}").lower().replace(" ", "-")
    return {
        "circulatingSupply": supply,
        "lastMarket": found.quote_source,
        "volume24Hr": latest.volume,
        "volumeAllCurrencies": latest.volume,
        "fromCurrency": base,
        "toCurrency": f"{found.currency}=X",
        "coinMarketCapLink": f"https://coinmarketcap.com/currencies/{slug}",
        "startDate": calendars.first_open(found.calendar),
        "coinImageUrl": f"https://example.com/coins/{base.lower()}.png",
        "logoUrl": f"https://example.com/coins/{base.lower()}.png",
        "marketCap": int(latest.price * supply),
    }


def _contract(seed: int, symbol: str, latest: Latest) -> dict:
    """The front contract a continuous future follows (GCJ25.CMX), and its open interest."""
    contract, exchange = front_contract(symbol, latest.day), instrument(symbol).exchange
    expiry = dt.datetime.combine(contract.expiry, dt.time(), dt.UTC)
    return {
        "headSymbolAsString": symbol,
        "contractSymbol": False,
        "underlyingSymbol": f"{contract.symbol}.{exchange}",
        "underlyingExchangeSymbol": f"{contract.symbol}.{exchange}",
        "expireDate": int(expiry.timestamp()),
        "expireIsoDate": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
        # About a week's trading stays open, as in Yahoo's GC=F (393,731 open, 54,706 traded that day).
        "openInterest": int(7 * latest.year.volume[-63:].mean()),
    }


# The keys of a kind's own: a company's figures, a coin's supply, a future's contract (none for the others).
_KIND_KEYS = {
    **dict.fromkeys(SHARES, _per_share),
    QuoteType.CRYPTOCURRENCY: _coin,
    QuoteType.FUTURE: _contract,
}
