-- What the old layout's published compactions did (compactions/<id>.parquet, etl migrate only): the files
-- they replaced, whose rows are in a compacted file, and the compacted files they wrote; both named relative
-- to the lake, as `bars/year=2026/<run_id>.parquet`.
with records as (
    select replaced_file, compacted_file
    from read_parquet($records)
),

final as (
    select
        coalesce(list(distinct replaced_file), []::varchar[]) as replaced,
        coalesce(list(distinct compacted_file), []::varchar[]) as compacted
    from records
)

select * from final
