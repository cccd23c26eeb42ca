"""market-voices-etl: Yahoo Finance → 10-symbol Arrow batches → streaming Parquet lake → DuckDB summary."""

import os

# Arrow reads this once, when it is first imported, so it is set here, before any module imports it.
# Its default mimalloc pool keeps freed pages that a streaming job never reuses (~20 MB of RSS at 257
# symbols); malloc gives them back. A caller's own setting wins.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
