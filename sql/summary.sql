-- The performance summary of run $run_id (null: the latest run).
select *
from run_summary($run_id, $cost_per_call, $full_scale)
