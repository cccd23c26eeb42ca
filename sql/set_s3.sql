-- The AWS environment for sql/s3_secret.sql, as one struct.
set variable s3 = $settings
