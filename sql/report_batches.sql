-- One row a batch of run $run_id for the report's charts: memory in MiB against the run's limit,
-- seconds fetching and writing, API calls, and symbols ok or failed.
with run as (
    select
        run_id,
        -- the --memory-limit-mb the run was collected with, in MiB like the memory columns
        json_extract(settings, '$.memory_limit_mb')::double as memory_limit_mb
    from runs
    where run_id = $run_id
),

run_batches as (
    select batches.*
    from batches
    semi join run using (run_id)
),

final as (
    select
        run_batches.batch_no,
        run_batches.rss_mb_after as rss_mb,
        run_batches.uss_mb_after as uss_mb,
        run_batches.arrow_mb_after as arrow_mb,
        run.memory_limit_mb,
        run_batches.fetch_s,
        run_batches.write_s,
        run_batches.api_calls,
        run_batches.n_ok,
        run_batches.n_failed
    from run_batches
    cross join run
)

select * from final
order by batch_no
