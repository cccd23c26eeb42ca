-- A lake in a bucket: each table's files as the job listed them when the connection opened (DuckDB's own
-- glob, through fsspec, would list the store again for every view). Empty for a local lake: its views glob.
set variable lake_files = map($tables::varchar[], $files::varchar[][])
