-- Where the latest run's processing time went, from its own runs and batches tables, in seconds: from its
-- start to its first batch's requests being queued (lock, lake state, session), from then to the last answer
-- of any batch (batches overlap: the next ones are fetched while one is written), and from that answer to the
-- manifest's commit. The batches' own fetch and write seconds are summed beside them.
with run as (
    select run_id, started_at, finished_at
    from runs
    where run_id = (select max(run_id) from runs)
),

run_batches as (
    select batches.*
    from batches
    semi join run using (run_id)
),

spans as (
    select
        min(started_at) as first_queued_at,
        -- a batch's started_at is when its requests were queued, its fetch_s from then to its last answer
        max(started_at + to_microseconds((fetch_s * 1e6)::bigint)) as last_answer_at,
        sum(fetch_s) as fetch_s_summed,
        sum(write_s) as write_s_summed,
        count(*) as n_batches
    from run_batches
),

final as (
    select
        run.started_at,
        run.finished_at,
        epoch(run.finished_at - run.started_at) as processing_s,
        epoch(spans.first_queued_at - run.started_at) as before_first_batch_s,
        epoch(spans.last_answer_at - spans.first_queued_at) as fetching_s,
        epoch(run.finished_at - spans.last_answer_at) as after_last_answer_s,
        spans.fetch_s_summed,
        spans.write_s_summed,
        spans.n_batches
    from run
    cross join spans
)

select * from final
