"""market-voices-etl: Yahoo Finance → 10-symbol Arrow batches, each staged whole → Parquet lake → DuckDB."""

import os

# Arrow reads this once, when it is first imported, so it is set here, before any module imports it.
# Its default mimalloc pool keeps freed pages that a streaming job never reuses (~20 MB of RSS at 257
# symbols); malloc gives them back. A caller's own setting wins.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


def _limit_malloc_arenas() -> None:
    """glibc gives each fetch thread a malloc arena of its own, each keeping its freed pages; two are
    plenty."""
    import ctypes

    try:
        ctypes.CDLL(None).mallopt(-8, 2)  # M_ARENA_MAX (malloc.h)
    except (OSError, AttributeError):  # not glibc: its allocator has no such knob
        pass


_limit_malloc_arenas()
