-- Every row of an old-layout table (one Parquet file a run) that a completed run wrote, for etl migrate: the
-- files are those the old views read ($files), the runs those with a manifest ($run_ids). $hive: whether
-- the files' folders carry a column the files do not (quotes' `date=...`).
with old_rows as (
    select *
    from read_parquet($files, hive_partitioning = $hive, union_by_name = true)
),

completed_runs as (
    select unnest($run_ids::varchar[]) as run_id
),

final as (
    select old_rows.*
    from old_rows
    semi join completed_runs using (run_id)
)

select * from final
