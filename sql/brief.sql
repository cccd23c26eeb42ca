-- The facts a daily market brief is written from, as table macros over the views of sql/views.sql (loaded
-- after it): `from breadth('2026-08-03')` and the like. Every change is on adjusted closes (bars_adjusted):
-- the day's bar against the symbol's previous bar, in percent, so a split is never a move and neither is a
-- dividend's drop on its ex-date. `day` is a date, or text cast to one; a day with no bars (a holiday, a
-- weekend, a day to come) answers no rows, though a currency or a coin that trades on a stock holiday answers
-- for itself in the macros not confined to equities (benchmarks, unusual_volume, gaps).
--
-- Each macro asks bars_adjusted for the window of bars it needs, ending on the day (4 or 8 weeks, or 52 for
-- the 52-week range and the moving averages), so its windows and sorts are over that window, not the whole
-- history. bars_adjusted itself still reads every bar's close to find each dividend's step, and its
-- split_adjusted CTE, read twice, is materialized: the date filter stops there, above the Parquet scan.

-- The first three macros are the others' building blocks.

-- The adjusted bars of the `lookback` (an interval) up to and including the day, each with its change from
-- the symbol's previous bar in that window: a window holds the previous bar of any symbol that trades at
-- least once a `lookback`, the shortest one used being 4 weeks.
create or replace macro adjusted_bars_to(day, lookback) as table
with in_window as (
    select *
    from bars_adjusted
    where date > cast(cast(day as date) - lookback as date) and date <= cast(day as date)
),

with_previous as (
    select
        *,
        lag(adj_close) over (partition by symbol order by date) as previous_adj_close
    from in_window
),

final as (
    -- change in points of today's shares; a symbol's first bar in the window has none
    select
        *,
        adj_close - previous_adj_close as change,
        (adj_close / previous_adj_close - 1) * 100 as change_pct
    from with_previous
)

select * from final;

-- Each symbol's bar of the day with its range over the 52 weeks up to and including it (the adjusted highs
-- and lows of the 364 days ending on the day) and the moving averages of the adjusted closes of the 50 and
-- the 200 bars ending on it. An average is null for a symbol with fewer bars than it spans in those 52
-- weeks: 200 sessions take 40 of them, so such a symbol is new or did not trade for months.
create or replace macro day_ranges(day) as table
with year_bars as (
    select *
    from adjusted_bars_to(day, interval 52 weeks)
),

with_ranges as (
    select
        *,
        max(adj_high) over whole_year as high_52w,
        min(adj_low) over whole_year as low_52w,
        avg(adj_close) over last_50 as mean_50,
        count(adj_close) over last_50 as closes_50,
        avg(adj_close) over last_200 as mean_200,
        count(adj_close) over last_200 as closes_200
    from year_bars
    window
        whole_year as (partition by symbol),
        last_50 as (partition by symbol order by date rows between 49 preceding and current row),
        last_200 as (partition by symbol order by date rows between 199 preceding and current row)
    qualify date = cast(day as date)
),

final as (
    -- the day's own high is in its range: at the 52-week high when it is that high (a bar without a high
    -- is not)
    select
        * exclude (mean_50, closes_50, mean_200, closes_200),
        coalesce(adj_high = high_52w, false) as at_52w_high,
        coalesce(adj_low = low_52w, false) as at_52w_low,
        case when closes_50 = 50 then mean_50 end as ma50,
        case when closes_200 = 200 then mean_200 end as ma200
    from with_ranges
)

select * from final;

-- What each symbol is on the day: what the universe file says (symbols) and what its latest quote on or
-- before the day says, with that quote's market cap. A symbol is an equity when that quote's quote_type is
-- EQUITY; with no such quote, or one from before quote_type was collected (null), when the universe gives it
-- a sector and does not call it a benchmark.
create or replace macro symbols_on(day) as table
with quotes_to_day as (
    -- a run's quotes are dated by the UTC day it collected them, so the day after the session for a run in
    -- New York's evening (after 7 pm EST): a quote dated up to the day after counts as the day's. Of two
    -- runs on one day, the later
    select symbol, name, quote_type, market_cap
    from quotes
    where date <= cast(day as date) + 1
    qualify row_number() over (partition by symbol order by date desc, run_id desc) = 1
),

final as (
    select
        symbol,
        coalesce(symbols.name, quotes_to_day.name) as name,
        symbols.sector,
        symbols.industry,
        coalesce(symbols.benchmark, false) as benchmark,
        quotes_to_day.quote_type,
        quotes_to_day.market_cap,
        coalesce(
            quotes_to_day.quote_type = 'EQUITY', symbols.sector is not null and not symbols.benchmark, false
        ) as equity
    from symbols
    full join quotes_to_day using (symbol)
)

select * from final;

-- The market's benchmarks on the day (the symbols the universe marks benchmark=true that have a bar on it),
-- by symbol: the symbols table keeps no order of the universe file. close is as traded; change is in points
-- of the adjusted closes (an index's are its closes); the 52-week range is of the adjusted highs and lows.
create or replace macro benchmarks(day) as table
with benchmark_ranges as (
    select ranges.*, kinds.name, kinds.quote_type
    from day_ranges(day) as ranges
    join symbols_on(day) as kinds using (symbol)
    where kinds.benchmark
),

final as (
    select
        symbol,
        name,
        quote_type,
        close,
        change,
        change_pct,
        high_52w,
        low_52w,
        at_52w_high,
        at_52w_low
    from benchmark_ranges
)

select *
from final
order by symbol;

-- How each GICS sector's equities moved on the day, largest mean move first: the equal-weighted mean and the
-- mean weighted by market cap (of each symbol's latest quote on or before the day; a symbol without one is
-- left out of that mean only), and the sector's best and worst. Only equities with a change on the day
-- count (n_symbols): a symbol's first bar has none. An equity with no sector is in breadth, not here.
create or replace macro sector_moves(day) as table
with day_moves as (
    select symbol, change_pct
    from adjusted_bars_to(day, interval 4 weeks)
    where date = cast(day as date) and change_pct is not null
),

equity_moves as (
    select kinds.sector, day_moves.symbol, day_moves.change_pct, kinds.market_cap
    from day_moves
    join symbols_on(day) as kinds using (symbol)
    where kinds.equity and kinds.sector is not null
),

final as (
    -- a tie for best or worst goes to the first symbol alphabetically
    select
        sector,
        count(*) as n_symbols,
        count(*) filter (where change_pct > 0) as advancers,
        count(*) filter (where change_pct < 0) as decliners,
        avg(change_pct) as mean_change_pct,
        sum(change_pct * market_cap) / nullif(sum(market_cap), 0) as cap_weighted_change_pct,
        first(symbol order by change_pct desc, symbol) as best_symbol,
        max(change_pct) as best_change_pct,
        first(symbol order by change_pct asc, symbol) as worst_symbol,
        min(change_pct) as worst_change_pct
    from equity_moves
    group by sector
)

select *
from final
order by mean_change_pct desc, sector;

-- The market's breadth on the day, over the equities with a bar on it: how many rose, fell or did not move,
-- how many are at their 52-week high or low (see day_ranges), and the percentage of those with a 50-bar
-- (200-bar) moving average that closed above it. One row, or none on a day with no bars.
create or replace macro breadth(day) as table
with equity_ranges as (
    select ranges.*
    from day_ranges(day) as ranges
    join symbols_on(day) as kinds using (symbol)
    where kinds.equity
),

final as (
    select
        count(*) filter (where change_pct > 0) as advancers,
        count(*) filter (where change_pct < 0) as decliners,
        count(*) filter (where change_pct = 0) as unchanged,
        count(*) filter (where at_52w_high) as new_highs_52w,
        count(*) filter (where at_52w_low) as new_lows_52w,
        100 * count(*) filter (where adj_close > ma50) / nullif(count(ma50), 0) as pct_above_ma50,
        100 * count(*) filter (where adj_close > ma200) / nullif(count(ma200), 0) as pct_above_ma200
    from equity_ranges
    having count(*) > 0
)

select * from final;

-- The day's n heaviest volumes against each symbol's mean of its 20 bars before the day, largest ratio
-- first. Both are in today's shares (adj_volume: the volume as traded unless a split came after the day), so
-- a split's extra shares are not unusual volume. Left out: a symbol with fewer than 20 bars before the day in
-- the window, and one whose mean is 0 (Yahoo sends no volume for a currency, nor for some indices).
create or replace macro unusual_volume(day, n) as table
with recent_bars as (
    -- 20 sessions take 4 of these 8 weeks: room for holidays and a missing bar or two
    select symbol, date, adj_volume
    from adjusted_bars_to(day, interval 8 weeks)
),

with_mean as (
    select
        symbol,
        date,
        adj_volume as volume,
        avg(adj_volume) over prior_20 as avg_volume_20d,
        count(*) over prior_20 as prior_bars
    from recent_bars
    window prior_20 as (partition by symbol order by date rows between 20 preceding and 1 preceding)
    qualify date = cast(day as date)
),

final as (
    select symbol, volume, avg_volume_20d, volume / avg_volume_20d as volume_ratio
    from with_mean
    where prior_bars = 20 and avg_volume_20d > 0 and volume is not null
)

select *
from final
order by volume_ratio desc, symbol
limit n;

-- The day's n largest opening gaps: the adjusted open against the previous bar's adjusted close, in percent,
-- largest in absolute value first. open is as traded and previous_close is in the day's shares (the adjusted
-- close divided by the day's adj_factor), so that gap_pct is open against previous_close even across a split
-- or an ex-dividend open.
create or replace macro gaps(day, n) as table
with day_bars as (
    select symbol, open, adj_open, adj_factor, previous_adj_close
    from adjusted_bars_to(day, interval 4 weeks)
    where date = cast(day as date) and previous_adj_close is not null and adj_open is not null
),

final as (
    select
        symbol,
        previous_adj_close / adj_factor as previous_close,
        open,
        (adj_open / previous_adj_close - 1) * 100 as gap_pct
    from day_bars
)

select *
from final
order by abs(gap_pct) desc, symbol
limit n;

-- The dividends and splits that go ex on the day, by symbol: amount as paid, in currency, a share of the
-- ex-date session; ratio = numerator / denominator; null where the action has no such figure. An ex-date is
-- a session of its symbol's, so a day with no bars has none.
create or replace macro corporate_actions(day) as table
with day_dividends as (
    select
        symbol,
        'dividend' as action,
        amount,
        currency,
        null::double as numerator,
        null::double as denominator,
        null::double as ratio
    from dividends
    where ex_date = cast(day as date)
),

day_splits as (
    select
        symbol,
        'split' as action,
        null::double as amount,
        null::varchar as currency,
        numerator,
        denominator,
        ratio
    from splits
    where ex_date = cast(day as date)
),

final as (
    select * from day_dividends
    union all
    select * from day_splits
)

select *
from final
order by symbol, action;
