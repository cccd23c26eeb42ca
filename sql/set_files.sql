-- A lake in a bucket: each table's files as the job listed them when the connection opened (DuckDB's own
-- glob, through fsspec, would list the store again for every view). A local lake's views glob instead. Either
-- way a table the lake holds no file of yet (added to the job after its last run) reads an empty file.
set variable lake_files = map($tables::varchar[], $files::varchar[][])
