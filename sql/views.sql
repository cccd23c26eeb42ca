-- Views over the lake's Delta tables (the lake's folder in the variable `lake`, see set_lake.sql).
-- Each table is read as its current Delta snapshot: the Parquet files its log lists when the connection
-- opened (set_files.sql), so the views show exactly what polars.read_delta or Spark shows, and never a file
-- that a commit or an optimize left outside the snapshot.
create or replace macro lake_table(name) as table
select *
from read_parquet(getvariable('lake_files')[name], hive_partitioning = true, union_by_name = true);

create or replace view runs as
select *
from lake_table('runs');

create or replace view batches as
select *
from lake_table('batches');

create or replace view failures as
select *
from lake_table('failures');

-- Rows that broke an invariant of their table (see etl/validate.py), with the reason and the row as JSON.
create or replace view quarantine as
select *
from lake_table('quarantine');

-- `date` is the partition: the UTC day the run collected the quote.
create or replace view quotes as
select *
from lake_table('quotes');

-- One current row per (symbol, date): each run MERGEs its bars, a row replaced only by a later run's.
-- `year` and `month` are the partitions.
create or replace view bars as
select *
from lake_table('bars');

-- Every bar every run fetched, revisions included, as the run fetched it (the bar_revisions table).
create or replace view bars_all as
select *
from lake_table('bar_revisions');

-- Which run changed which bar, and from what: each bar a run fetched that differs from the one the run
-- before it fetched (a bar's first fetch is no change).
create or replace view bar_changes as
with versions as (
    select
        *,
        lag(run_id) over bar as previous_run_id,
        lag(open) over bar as previous_open,
        lag(high) over bar as previous_high,
        lag(low) over bar as previous_low,
        lag(close) over bar as previous_close,
        lag(adj_close) over bar as previous_adj_close,
        lag(volume) over bar as previous_volume
    from bars_all
    window bar as (partition by symbol, date order by run_id)
),

final as (
    select
        symbol,
        date,
        run_id,
        previous_run_id,
        previous_open,
        open,
        previous_high,
        high,
        previous_low,
        low,
        previous_close,
        close,
        previous_adj_close,
        adj_close,
        previous_volume,
        volume
    from versions
    where
        previous_run_id is not null
        and (
            open is distinct from previous_open
            or high is distinct from previous_high
            or low is distinct from previous_low
            or close is distinct from previous_close
            or adj_close is distinct from previous_adj_close
            or volume is distinct from previous_volume
        )
)

select * from final;

-- Yahoo's dividends and splits, one current row per (symbol, ex_date), merged as bars are.
-- amount is as paid, in `currency` per share of the ex-date session; ratio is numerator / denominator.
create or replace view dividends as
select *
from lake_table('dividends');

create or replace view splits as
select *
from lake_table('splits');

-- What the universe file says each symbol is (name, GICS sector and sub-industry, benchmark), one current
-- row a symbol; run_id is the run that last changed it.
create or replace view symbols as
select *
from lake_table('symbols');

-- Bars back-adjusted for every split and dividend in the lake, computed here rather than trusted from
-- Yahoo: a bar's prices times adj_factor are in today's shares, net of the dividends paid since. Each
-- event scales every bar before its ex-date, so a bar's factor is the product of the steps of the events
-- after it: a suffix product per symbol over the events, newest first, found for each bar by an ASOF join
-- to the first event after its date (never a subquery per bar).
create or replace view bars_adjusted as
with split_suffix as (
    -- split_factor of a bar before this split: 1 / ratio of it and of every later split
    select
        symbol,
        ex_date,
        product(1 / ratio) over (
            partition by symbol order by ex_date desc rows between unbounded preceding and current row
        ) as split_factor
    from splits
),

split_adjusted as (
    -- a bar after the last split is in today's shares already
    select bars.*, coalesce(split_suffix.split_factor, 1) as split_factor
    from bars
    asof left join split_suffix
        on bars.symbol = split_suffix.symbol and bars.date < split_suffix.ex_date
),

dividends_in_todays_shares as (
    -- the amount per share of today, as the closes before the ex-date are once split-adjusted
    select dividends.symbol, dividends.ex_date, dividends.amount * coalesce(split_suffix.split_factor, 1) as amount
    from dividends
    asof left join split_suffix
        on dividends.symbol = split_suffix.symbol and dividends.ex_date < split_suffix.ex_date
),

dividend_steps as (
    -- 1 - amount / the close of the last bar before the ex-date, both in today's shares (so a split on
    -- the ex-date itself is counted once). A dividend with no bar before it in the lake has no close to
    -- divide by and no bar to adjust: it is left out, as is one at or above that close (a step not above 0).
    select
        dividends.symbol,
        dividends.ex_date,
        1 - dividends.amount / (previous.close * previous.split_factor) as step
    from dividends_in_todays_shares as dividends
    asof join split_adjusted as previous
        on dividends.symbol = previous.symbol and dividends.ex_date > previous.date
    where step > 0
),

dividend_suffix as (
    select
        symbol,
        ex_date,
        product(step) over (
            partition by symbol order by ex_date desc rows between unbounded preceding and current row
        ) as dividend_factor
    from dividend_steps
),

adjusted as (
    select
        split_adjusted.*,
        split_adjusted.split_factor * coalesce(dividend_suffix.dividend_factor, 1) as adj_factor
    from split_adjusted
    asof left join dividend_suffix
        on split_adjusted.symbol = dividend_suffix.symbol and split_adjusted.date < dividend_suffix.ex_date
),

final as (
    -- volume in today's shares: splits only, as a dividend changes no share count (a double: 3:2 halves)
    select
        symbol,
        date,
        open,
        high,
        low,
        close,
        volume,
        adj_factor,
        open * adj_factor as adj_open,
        high * adj_factor as adj_high,
        low * adj_factor as adj_low,
        close * adj_factor as adj_close,
        volume / split_factor as adj_volume
    from adjusted
)

select * from final;

-- The performance summary of one run (null: the latest); cost in USD per API call.
create or replace macro run_summary(rid, cost_per_call, full_scale) as table
with run as (
    select *
    from runs
    where run_id = coalesce(rid, (select max(run_id) from runs))
),

per_batch as (
    select
        count(*) as batches_done,
        sum(n_symbols) as symbols_done,
        sum(n_ok) as n_ok,
        max(rss_mb_after) as peak_rss_mb,
        max(uss_mb_after) as peak_uss_mb,
        max(arrow_mb_after) as peak_arrow_mb,
        -- growth: RSS after the last batch minus RSS after the first
        arg_max(rss_mb_after, batch_no) - arg_min(rss_mb_after, batch_no) as memory_growth_mb,
        sum(fetch_s) as fetch_s,
        sum(write_s) as write_s,
        sum(bar_rows) as bar_rows,
        sum(quote_rows) as quote_rows,
        count(*) filter (where gc_ran) as gc_runs
    from batches
    where run_id = (select run_id from run)
),

final as (
    select
        run.run_id,
        run.status,
        run.n_symbols,
        per_batch.symbols_done,
        per_batch.n_ok,
        per_batch.n_ok / nullif(per_batch.symbols_done, 0) as success_rate,
        epoch(run.finished_at - run.started_at) as processing_s,
        per_batch.symbols_done / nullif(processing_s, 0) as symbols_per_s,
        per_batch.peak_rss_mb,
        per_batch.peak_uss_mb,
        per_batch.peak_arrow_mb,
        per_batch.memory_growth_mb,
        run.api_calls,
        run.api_calls / nullif(per_batch.symbols_done, 0) as api_calls_per_symbol,
        run.api_calls * cost_per_call as est_cost_usd,
        per_batch.bar_rows,
        per_batch.quote_rows,
        per_batch.batches_done,
        per_batch.gc_runs,
        full_scale as full_scale_symbols,
        processing_s * full_scale / nullif(per_batch.symbols_done, 0) as full_scale_s,
        api_calls_per_symbol * full_scale as full_scale_api_calls,
        api_calls_per_symbol * full_scale * cost_per_call as full_scale_cost_usd
    from run, per_batch
)

select * from final;

-- Table macros for the questions people ask of the lake: `from latest_quotes()` and the like.

-- One symbol's current bars between two dates, both included, oldest first: prices and volume as traded
-- and adjusted for every split and dividend in the lake (bars_adjusted's columns).
create or replace macro symbol_bars(sym, from_date, to_date) as table
select *
from bars_adjusted
where symbol = sym and date between cast(from_date as date) and cast(to_date as date)
order by date;

-- The latest quote of every symbol: the latest run that quoted it wins (run ids sort by start time).
create or replace macro latest_quotes() as table
select *
from quotes
qualify row_number() over (partition by symbol order by run_id desc) = 1
order by symbol;

-- The day's n biggest movers: each symbol's adjusted close against its previous bar's, in percent. On
-- adjusted prices, so a split is never a move and neither is a dividend's drop on its ex-date.
create or replace macro movers(day, n) as table
with up_to_day as (
    -- a previous bar is never after the day, so later bars need not be read
    select symbol, date, close, adj_close
    from bars_adjusted
    where date <= cast(day as date)
),

with_previous as (
    select
        symbol,
        date,
        close,
        adj_close,
        lag(adj_close) over (partition by symbol order by date) as previous_adj_close
    from up_to_day
),

final as (
    -- a symbol's first bar has no previous close to move from; close is as traded, for the story
    select
        symbol,
        date,
        close,
        adj_close,
        previous_adj_close,
        (adj_close / previous_adj_close - 1) * 100 as change_pct
    from with_previous
    where date = cast(day as date) and previous_adj_close is not null
)

select *
from final
order by abs(change_pct) desc, symbol
limit n;

-- Symbols that failed in the last n runs: in how many of them, and how their last failure went.
create or replace macro failed_recently(n) as table
with recent_runs as (
    select run_id
    from runs
    order by run_id desc
    limit n
),

recent_failures as (
    select failures.*
    from failures
    semi join recent_runs using (run_id)
),

final as (
    select
        symbol,
        count(*) over (partition by symbol) as runs_failed,
        run_id as last_run_id,
        outcome as last_outcome,
        error_type as last_error_type,
        message as last_message
    from recent_failures
    qualify row_number() over (partition by symbol order by run_id desc) = 1
)

select *
from final
order by runs_failed desc, symbol;
