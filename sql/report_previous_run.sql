-- The completed run that started last before run $run_id (null when it is the first): the report's default comparison.
with earlier as (
    select run_id
    from runs
    where run_id < $run_id
),

final as (
    select max(run_id) as run_id
    from earlier
)

select run_id from final
