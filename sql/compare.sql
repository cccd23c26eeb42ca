-- Two runs side by side, before ($before_run) and after ($after_run), with the improvement in percent.
with both_runs as (
    select 'before' as side, * from run_summary($before_run, $cost_per_call, $full_scale)
    union all by name
    select 'after' as side, * from run_summary($after_run, $cost_per_call, $full_scale)
),

figures as (
    select
        side,
        processing_s::double as processing_s,
        symbols_per_s::double as symbols_per_s,
        success_rate::double as success_rate,
        peak_rss_mb::double as peak_rss_mb,
        memory_growth_mb::double as memory_growth_mb,
        api_calls::double as api_calls,
        api_calls_per_symbol::double as api_calls_per_symbol,
        est_cost_usd::double as est_cost_usd,
        full_scale_s::double as full_scale_s,
        full_scale_cost_usd::double as full_scale_cost_usd
    from both_runs
),

long as (
    unpivot figures on columns(* exclude (side)) into name metric value figure
),

-- which way is better for each figure, and the order to show them in
directions (metric, higher_is_better, position) as (
    values
        ('processing_s', false, 1),
        ('symbols_per_s', true, 2),
        ('success_rate', true, 3),
        ('peak_rss_mb', false, 4),
        ('memory_growth_mb', false, 5),
        ('api_calls', false, 6),
        ('api_calls_per_symbol', false, 7),
        ('est_cost_usd', false, 8),
        ('full_scale_s', false, 9),
        ('full_scale_cost_usd', false, 10)
),

side_by_side as (
    select
        metric,
        max(figure) filter (where side = 'before') as before,
        max(figure) filter (where side = 'after') as after
    from long
    group by metric
),

final as (
    select
        metric,
        before,
        after,
        round(
            100 * (case when higher_is_better then after - before else before - after end)
            / nullif(abs(before), 0),
            1
        ) as improvement_pct
    from side_by_side
    join directions using (metric)
    order by position
)

select metric, before, after, improvement_pct from final
