"""Yahoo's quoteSummary modules of the synthetic companies, as raw numbers: the ones told from the quote and
the profile here, the company's books (and the fundamentals time series) in financials.py."""

import datetime as dt
import uuid
from typing import Any

from etl.emulator import market
from etl.emulator.financials import day_of, default_key_statistics, financial_data, midnight_utc
from etl.emulator.responses import FIRST_TRADE, names

EXTENDED_HOURS_SOURCE = "FREE_REALTIME"


def _pick(quote: dict, *keys: str) -> dict:
    return {key: quote[key] for key in keys}


def price(quote: dict, company: market.Company) -> dict:
    """Yahoo gives this module's percent changes as fractions, unlike the quote's percents."""
    extended: dict[str, Any] = {}
    for prefix in ("preMarket", "postMarket"):
        if f"{prefix}Price" in quote:
            extended |= {
                f"{prefix}ChangePercent": quote[f"{prefix}ChangePercent"] / 100,
                **_pick(quote, f"{prefix}Change", f"{prefix}Time", f"{prefix}Price"),
                f"{prefix}Source": EXTENDED_HOURS_SOURCE,
            }
    return {
        "maxAge": 1,
        **extended,
        "regularMarketChangePercent": quote["regularMarketChangePercent"] / 100,
        **_pick(
            quote,
            "regularMarketChange",
            "regularMarketTime",
            "priceHint",
            "regularMarketPrice",
            "regularMarketDayHigh",
            "regularMarketDayLow",
            "regularMarketVolume",
            "regularMarketPreviousClose",
        ),
        "regularMarketSource": EXTENDED_HOURS_SOURCE,
        "regularMarketOpen": quote["regularMarketOpen"],
        "exchange": "NMS",
        "exchangeName": "NasdaqGS",
        "exchangeDataDelayedBy": 0,
        **_pick(quote, "marketState", "quoteType", "symbol"),
        "underlyingSymbol": None,
        **names(quote["symbol"]),
        "currency": "USD",
        "quoteSourceName": quote["quoteSourceName"],
        "currencySymbol": "$",
        "fromCurrency": None,
        "toCurrency": None,
        "lastMarket": None,
        "marketCap": quote["marketCap"],
    }


def summary_detail(quote: dict, company: market.Company) -> dict:
    """The trailing dividend keys are the quote's; the others (rate, yield, ex-date) are left out, as Yahoo
    leaves them out for a company that pays none: the emulator tells dividends in the chart and the quote."""
    return {
        "maxAge": 1,
        "priceHint": 2,
        "previousClose": quote["regularMarketPreviousClose"],
        "open": quote["regularMarketOpen"],
        "dayLow": quote["regularMarketDayLow"],
        "dayHigh": quote["regularMarketDayHigh"],
        **_pick(
            quote,
            "regularMarketPreviousClose",
            "regularMarketOpen",
            "regularMarketDayLow",
            "regularMarketDayHigh",
        ),
        "payoutRatio": 0.0,
        "beta": company.beta,
        **_pick(quote, "trailingPE", "forwardPE"),
        "volume": quote["regularMarketVolume"],
        "regularMarketVolume": quote["regularMarketVolume"],
        "averageVolume": quote["averageDailyVolume3Month"],
        "averageVolume10days": quote["averageDailyVolume10Day"],
        **_pick(
            quote,
            "averageDailyVolume10Day",
            "bid",
            "ask",
            "bidSize",
            "askSize",
            "marketCap",
            "fiftyTwoWeekLow",
            "fiftyTwoWeekHigh",
        ),
        "priceToSalesTrailing12Months": round(quote["regularMarketPrice"] / company.revenue_per_share, 6),
        **_pick(
            quote,
            "fiftyDayAverage",
            "twoHundredDayAverage",
            "trailingAnnualDividendRate",
            "trailingAnnualDividendYield",
        ),
        "currency": "USD",
        "fromCurrency": None,
        "toCurrency": None,
        "lastMarket": None,
        "coinMarketCapLink": None,
        "algorithm": None,
        "tradeable": False,
    }


def quote_type(quote: dict, company: market.Company) -> dict:
    symbol = quote["symbol"]
    return {
        "exchange": "NMS",
        "quoteType": "EQUITY",
        "symbol": symbol,
        "underlyingSymbol": symbol,
        **names(symbol),
        "firstTradeDateEpochUtc": FIRST_TRADE,
        "timeZoneFullName": "America/New_York",
        "timeZoneShortName": quote["exchangeTimezoneShortName"],
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{symbol}.synthetic.invalid")),
        "messageBoardId": quote["messageBoardId"],
        "gmtOffSetMilliseconds": quote["gmtOffSetMilliseconds"],
        "maxAge": 1,
    }


def asset_profile(quote: dict, company: market.Company) -> dict:
    symbol = quote["symbol"]
    year = day_of(quote["regularMarketTime"]).year
    officer = {
        "maxAge": 1,
        "name": "Jane Doe (synthetic)",
        "age": 50,
        "title": "CEO & Director",
        "yearBorn": year - 50,
        "fiscalYear": year - 1,
        "totalPay": {"raw": 1000000, "fmt": "1M", "longFmt": "1,000,000"},
        "exercisedValue": {"raw": 0, "fmt": None, "longFmt": "0"},
        "unexercisedValue": {"raw": 0, "fmt": None, "longFmt": "0"},
    }
    return {
        "address1": "1 Synthetic Way",
        "city": "Nowhere",
        "state": "NY",
        "zip": "10001",
        "country": "United States",
        "phone": "(555) 010-0100",
        "website": "https://example.com",
        "industry": "Synthetic Data",
        "industryKey": "synthetic-data",
        "industryDisp": "Synthetic Data",
        "sector": "Synthetic",
        "sectorKey": "synthetic",
        "sectorDisp": "Synthetic",
        "longBusinessSummary": (
            f"{symbol} Synthetic Inc. is made up: the market-voices-etl emulator serves it "
            "with deterministic synthetic prices. It is not a real company."
        ),
        "fullTimeEmployees": company.employees,
        "companyOfficers": [officer],
        "auditRisk": 5,
        "boardRisk": 5,
        "compensationRisk": 5,
        "shareHolderRightsRisk": 5,
        "overallRisk": 5,
        "governanceEpochDate": midnight_utc(dt.date(year, 1, 1)),
        "compensationAsOfEpochDate": midnight_utc(dt.date(year - 1, 12, 31)),
        "irWebsite": "https://example.com/investors",
        "executiveTeam": [],
        "maxAge": 86400,
    }


MODULES = {
    "price": price,
    "summaryDetail": summary_detail,
    "quoteType": quote_type,
    "financialData": financial_data,
    "defaultKeyStatistics": default_key_statistics,
    "assetProfile": asset_profile,
}


def summary_body(quote: dict, company: market.Company, modules: list[str]) -> tuple[int, dict]:
    """`/v10/finance/quoteSummary/{symbol}`: the requested modules; Yahoo's 404 when it has none of them."""
    served = {name: MODULES[name](quote, company) for name in modules if name in MODULES}
    if not served:
        description = f"No fundamentals data found for any of the summaryTypes={','.join(modules)}"
        return 404, {
            "quoteSummary": {"result": None, "error": {"code": "Not Found", "description": description}}
        }
    return 200, {"quoteSummary": {"result": [served], "error": None}}
