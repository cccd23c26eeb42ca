-- The manifests of an old-layout lake's completed runs, each run once, for etl migrate: a run's own
-- runs/<run_id>.parquet and a compaction's runs/compacted-<id>.parquet hold the same row, and both stay on
-- disk. $files, $run_ids, $hive: as in migrate_rows.sql.
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
    qualify row_number() over (partition by run_id order by run_id) = 1
)

select * from final
