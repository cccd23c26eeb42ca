-- The current dividends or splits of an old-layout lake, for etl migrate: one row per (symbol, ex_date), the
-- latest completed run's. $files, $run_ids, $hive: as in migrate_rows.sql.
with old_rows as (
    select *
    from read_parquet($files, hive_partitioning = $hive, union_by_name = true)
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
    qualify row_number() over (partition by symbol, ex_date order by run_id desc) = 1
)

select * from final
