-- Per symbol, the first trading date a new run must fetch: the lake's `revision_days`-th latest bar of it
-- (Yahoo revises recent bars and adjustments), or the day after its latest bar when revision_days is 0.
with ranked as (
    select
        symbol,
        date,
        row_number() over (partition by symbol order by date desc) as recency
    from bars
),

final as (
    select
        symbol,
        case
            when $revision_days = 0 then max(date) + interval 1 day
            else min(date) filter (where recency <= $revision_days)
        end::date as refetch_from
    from ranked
    group by symbol
)

select * from final
