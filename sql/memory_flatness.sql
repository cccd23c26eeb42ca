-- Is memory flat? RSS after the first tenth of the latest run's batches against RSS after its last batch.
with run as (
    select max(run_id) as run_id from runs
),

run_batches as (
    select batches.*
    from batches
    semi join run using (run_id)
),

marks as (
    select
        greatest(1, (max(batch_no) / 10)::integer) as tenth_batch,
        max(batch_no) as last_batch,
        max(rss_mb_after) as peak_rss_mb
    from run_batches
),

final as (
    select
        marks.tenth_batch,
        tenth.rss_mb_after as rss_mb_at_tenth,
        last.rss_mb_after as rss_mb_at_last,
        (last.rss_mb_after - tenth.rss_mb_after) / tenth.rss_mb_after as growth_ratio,
        marks.peak_rss_mb
    from marks
    join run_batches as tenth on tenth.batch_no = marks.tenth_batch
    join run_batches as last on last.batch_no = marks.last_batch
)

select * from final
