-- DuckDB's own S3 reader (httpfs), where its extension loads, given the credentials and endpoint of the job's
-- AWS environment (bound by sql/set_s3.sql). The secret lives in this connection's memory only (DuckDB's
-- default) and duckdb_secrets() redacts it; the variable is reset so that no query reads the keys back.
create or replace secret lake_s3 (
    type s3,
    key_id getvariable('s3').key_id,
    secret getvariable('s3').secret,
    session_token getvariable('s3').session_token,
    region getvariable('s3').region,
    endpoint getvariable('s3').endpoint,
    use_ssl getvariable('s3').use_ssl,
    url_style getvariable('s3').url_style
);
reset variable s3;
