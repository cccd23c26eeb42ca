-- The files the views skip (replaced by a published compaction) and the compacted files they read
-- (of published compactions only): absolute paths, from compaction_files.sql; see etl/lake/compact.py.
set variable compactions = {'replaced': $replaced::varchar[], 'written': $written::varchar[]}
