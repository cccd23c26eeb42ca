-- DuckDB's S3 reader, where it is installed (INSTALL httpfs, once, on a machine with internet).
load httpfs
