-- Each table's files: the Parquet files of its current Delta snapshot, as the job read its log when the
-- connection opened (etl/lake/delta.py). A table whose snapshot holds no file reads an empty file of its schema.
set variable lake_files = map($tables::varchar[], $files::varchar[][])
