"""market-voices-etl: Yahoo Finance → 10-symbol Arrow batches → streaming Parquet lake → DuckDB summary."""
