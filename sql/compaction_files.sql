-- Every file the lake's published compactions replaced, and every file they wrote, as absolute paths.
select
    coalesce(list(distinct $lake || '/' || replaced_file), []::varchar[]) as replaced,
    coalesce(list(distinct $lake || '/' || compacted_file), []::varchar[]) as written
from read_parquet($records)
