-- One row a worker process of run $run_id (where its batches ran: a Ray node and process id, or this host's
-- name and the collect's process id): its batches and symbols, its batches' own time, when it worked, and
-- its memory after its batches, in MiB.
with run_batches as (
    select *
    from batches
    where run_id = $run_id
),

final as (
    select
        node_id,
        pid,
        count(*) as batches,
        sum(n_symbols) as symbols,
        sum(n_ok) as n_ok,
        sum(fetch_s) as fetch_s,
        sum(write_s) as write_s,
        min(started_at) as first_started_at,
        -- the end of its last batch's own work
        max(started_at + to_microseconds((1e6 * (fetch_s + write_s))::bigint)) as last_ended_at,
        max(rss_mb_after) as peak_rss_mb,
        max(uss_mb_after) as peak_uss_mb
    from run_batches
    group by node_id, pid
)

select * from final
order by first_started_at
