-- The years the bars of an old-layout lake fall in, from their dates (not their files' folders), for etl
-- migrate: it picks the current bars a year at a time. $files: every old bars file it reads.
with old_bars as (
    select date
    from read_parquet($files, hive_partitioning = false)
),

final as (
    select distinct year(date)::integer as year
    from old_bars
    order by year
)

select * from final
