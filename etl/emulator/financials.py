"""The synthetic company's books as Yahoo tells them: quoteSummary's financialData and defaultKeyStatistics,
and the fundamentals time series, each figure in proportion to market.Company's per-share ones so that the
ratios between them look like a real company's."""

import datetime as dt

from etl.emulator import calendars, market


def midnight_utc(day: dt.date) -> int:
    """Yahoo dates fiscal and short-interest events at midnight UTC."""
    return int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp())


def day_of(epoch_s: int) -> dt.date:
    """The day in New York of an epoch second, as the year of a quote's regularMarketTime is read."""
    return dt.datetime.fromtimestamp(epoch_s, calendars.NEW_YORK).date()


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
    year_end = dt.date(day_of(quote["regularMarketTime"]).year - 1, 12, 31)
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
        "sharesShortPreviousMonthDate": midnight_utc(year_end),
        "dateShortInterest": midnight_utc(year_end),
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
        "lastFiscalYearEnd": midnight_utc(year_end),
        "nextFiscalYearEnd": midnight_utc(year_end.replace(year=year_end.year + 1)),
        "mostRecentQuarter": midnight_utc(year_end),
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


def timeseries_body(symbol: str, company: market.Company, types: list[str], as_of: dt.date) -> dict:
    """`/ws/fundamentals-timeseries/...`: `.info` asks it for the trailing PEG ratio."""
    result = [
        {
            "meta": {"symbol": [symbol], "type": [name]},
            "timestamp": [midnight_utc(as_of)],
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
