-- The lake's trading days, for `etl brief`: the latest, and the one nearest $day (the earlier on a tie),
-- and whether $day is one. A trading day is one on which a stock has a bar: crypto has a bar every calendar
-- day and FX on holidays, neither of which makes a weekend or a holiday a day to brief. A stock is a symbol
-- its latest quote calls an equity, an ETF or a fund, or, quoted before quote_type was collected, any symbol
-- that is no benchmark.
with stocks as (
    select symbol
    from latest_quotes()
    anti join (select symbol from symbols where benchmark) using (symbol)
    where coalesce(quote_type, 'EQUITY') in ('EQUITY', 'ETF', 'MUTUALFUND')
),

trading_days as (
    select distinct date
    from bars
    semi join stocks using (symbol)
),

final as (
    select
        max(date) as latest,
        arg_min(date, (abs(date - cast($day as date)), date)) as nearest,
        coalesce(bool_or(date = cast($day as date)), false) as has_day
    from trading_days
)

select * from final
