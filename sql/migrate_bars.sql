-- The current bars of one year of an old-layout lake, for etl migrate: one row per (symbol, date), the latest
-- completed run's (run ids sort by start time). A year at a time ($year), so the window holds one year's
-- bars of every run, never the lake's; the date filter skips other years' row groups by their statistics.
-- $files, $run_ids, $hive: as in migrate_rows.sql.
with old_rows as (
    select *
    from read_parquet($files, hive_partitioning = $hive, union_by_name = true)
    where date >= make_date($year, 1, 1) and date < make_date($year + 1, 1, 1)
),

completed_runs as (
    select unnest($run_ids::varchar[]) as run_id
),

completed as (
    select old_rows.*
    from old_rows
    semi join completed_runs using (run_id)
),

final as (
    select *
    from completed
    qualify row_number() over (partition by symbol, date order by run_id desc) = 1
)

select * from final
