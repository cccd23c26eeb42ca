"""Yahoo's quoteSummary modules and fundamentals time series of the synthetic companies, as raw numbers."""

import datetime as dt
import uuid
from typing import Any

from etl.emulator import calendars, market
from etl.emulator.responses import FIRST_TRADE, names

EXTENDED_HOURS_SOURCE = "FREE_REALTIME"


def _midnight_utc(day: dt.date) -> int:
    """Yahoo dates fiscal and short-interest events at midnight UTC."""
    return int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp())


def _day_of(epoch_s: int) -> dt.date:
    return dt.datetime.fromtimestamp(epoch_s, calendars.NEW_YORK).date()


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


def _books(company: market.Company) -> dict:
    """Yearly figures implied by the per-share ones."""
    revenue = company.revenue_per_share * company.shares
    gross, operating, profit = company.margins
    return {
        "revenue": revenue,
        "gross": revenue * gross,
        "ebitda": revenue * (operating + 0.04),
        "income": revenue * profit,
        "cash": revenue * 0.15,
        "debt": revenue * 0.25,
        "equity": company.book_value * company.shares,
    }


def financial_data(quote: dict, company: market.Company) -> dict:
    books, price_ = _books(company), quote["regularMarketPrice"]
    gross, operating, profit = company.margins
    return {
        "maxAge": 86400,
        "currentPrice": price_,
        "targetHighPrice": round(price_ * 1.3, 2),
        "targetLowPrice": round(price_ * 0.8, 2),
        "targetMeanPrice": round(price_ * 1.06, 2),
        "targetMedianPrice": round(price_ * 1.05, 2),
        "recommendationMean": 2.0,
        "recommendationKey": "buy",
        "numberOfAnalystOpinions": 12,
        "totalCash": int(books["cash"]),
        "totalCashPerShare": round(books["cash"] / company.shares, 3),
        "ebitda": int(books["ebitda"]),
        "totalDebt": int(books["debt"]),
        "quickRatio": 0.9,
        "currentRatio": 1.2,
        "totalRevenue": int(books["revenue"]),
        "debtToEquity": round(100 * books["debt"] / books["equity"], 3),
        "revenuePerShare": company.revenue_per_share,
        "returnOnAssets": round(profit / 2, 5),
        "returnOnEquity": round(books["income"] / books["equity"], 5),
        "grossProfits": int(books["gross"]),
        "freeCashflow": int(books["income"] * 0.9),
        "operatingCashflow": int(books["income"] * 1.2),
        "earningsGrowth": 0.05,
        "revenueGrowth": 0.04,
        "grossMargins": gross,
        "ebitdaMargins": round(operating + 0.04, 5),
        "operatingMargins": operating,
        "profitMargins": profit,
        "financialCurrency": "USD",
    }


def default_key_statistics(quote: dict, company: market.Company) -> dict:
    """The last split and dividend keys are left out, as Yahoo leaves them out for a company that never split
    nor paid: the emulator tells splits and dividends in the chart (and dividends in the quote)."""
    books, shares = _books(company), company.shares
    enterprise = quote["marketCap"] + books["debt"] - books["cash"]
    year_end = dt.date(_day_of(quote["regularMarketTime"]).year - 1, 12, 31)
    return {
        "maxAge": 1,
        "priceHint": 2,
        "enterpriseValue": int(enterprise),
        "forwardPE": quote["forwardPE"],
        "profitMargins": company.margins[2],
        "floatShares": int(shares * 0.98),
        "sharesOutstanding": shares,
        "sharesShort": int(shares * 0.01),
        "sharesShortPriorMonth": int(shares * 0.011),
        "sharesShortPreviousMonthDate": _midnight_utc(year_end),
        "dateShortInterest": _midnight_utc(year_end),
        "sharesPercentSharesOut": 0.01,
        "heldPercentInsiders": 0.02,
        "heldPercentInstitutions": 0.6,
        "shortRatio": 1.5,
        "shortPercentOfFloat": 0.0102,
        "beta": company.beta,
        "impliedSharesOutstanding": shares,
        "category": None,
        "bookValue": company.book_value,
        "priceToBook": quote["priceToBook"],
        "fundFamily": None,
        "legalType": None,
        "lastFiscalYearEnd": _midnight_utc(year_end),
        "nextFiscalYearEnd": _midnight_utc(year_end.replace(year=year_end.year + 1)),
        "mostRecentQuarter": _midnight_utc(year_end),
        "earningsQuarterlyGrowth": 0.05,
        "netIncomeToCommon": int(books["income"]),
        "trailingEps": company.eps,
        "forwardEps": company.eps_forward,
        "enterpriseToRevenue": round(enterprise / books["revenue"], 3),
        "enterpriseToEbitda": round(enterprise / books["ebitda"], 3),
        "52WeekChange": round(quote["fiftyTwoWeekChangePercent"] / 100, 6),
        "SandP52WeekChange": 0.12,
        "latestShareClass": None,
        "leadInvestor": None,
    }


def asset_profile(quote: dict, company: market.Company) -> dict:
    symbol = quote["symbol"]
    year = _day_of(quote["regularMarketTime"]).year
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
        "governanceEpochDate": _midnight_utc(dt.date(year, 1, 1)),
        "compensationAsOfEpochDate": _midnight_utc(dt.date(year - 1, 12, 31)),
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


def timeseries_body(symbol: str, company: market.Company, types: list[str], as_of: dt.date) -> dict:
    """`/ws/fundamentals-timeseries/...`: `.info` asks it for the trailing PEG ratio."""
    result = [
        {
            "meta": {"symbol": [symbol], "type": [name]},
            "timestamp": [_midnight_utc(as_of)],
            name: [
                {
                    "dataId": 14021,
                    "asOfDate": as_of.isoformat(),
                    "periodType": "TTM",
                    "currencyCode": "USD",
                    "reportedValue": {"raw": company.beta * 1.5, "fmt": f"{company.beta * 1.5:.2f}"},
                }
            ],
        }
        for name in types
    ]
    return {"timeseries": {"result": result, "error": None}}
