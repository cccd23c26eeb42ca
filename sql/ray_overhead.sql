-- The latest run's batches on Ray: how many, on how many worker processes, when they ran, and Ray's
-- overhead per batch.
-- The overhead is, in each worker process (node_id, pid), the gap between the end of a batch's own work
-- (started_at + fetch_s + write_s) and the start of that process's next batch: the result's way back to the
-- driver and the next task's way to the worker (up to 2 a CPU are queued, so a worker never waits for the
-- driver to submit), plus the batch's commit record and memory check, which write_s leaves out. A worker's
-- start-up comes before its first batch and is in no gap.
with run as (
    select max(run_id) as run_id from runs
),

run_batches as (
    select batches.*
    from batches
    semi join run using (run_id)
),

gaps as (
    select
        -- seconds
        epoch(lead(started_at) over per_worker - started_at) - fetch_s - write_s as gap_s
    from run_batches
    window per_worker as (partition by node_id, pid order by started_at)
),

final as (
    select
        (select count(*) from run_batches) as batches,
        (select count(distinct (node_id, pid)) from run_batches) as workers,
        -- Unix seconds: when the first batch started, and when the last one's own work ended
        (select epoch(min(started_at)) from run_batches) as first_started_s,
        (select max(epoch(started_at) + fetch_s + write_s) from run_batches) as last_ended_s,
        count(gap_s) as gaps,
        1000 * avg(gap_s) as overhead_ms_mean,
        1000 * median(gap_s) as overhead_ms_median,
        1000 * quantile_cont(gap_s, 0.95) as overhead_ms_p95
    from gaps
)

select * from final
