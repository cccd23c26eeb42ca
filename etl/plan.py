"""The plan: the universe split into batches, the unit of fetching, writing, memory checks and metrics."""

from dataclasses import dataclass

from etl.errors import ConfigError


@dataclass(frozen=True)
class Batch:
    """Symbols fetched and written together; batch_no counts from 1."""

    batch_no: int
    symbols: tuple[str, ...]


def plan_batches(symbols: list[str], batch_size: int) -> list[Batch]:
    """Split symbols into batches of batch_size, in order; the last one may be short."""
    if batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size} must be a whole number of at least 1")
    return [
        Batch(batch_no=i // batch_size + 1, symbols=tuple(symbols[i : i + batch_size]))
        for i in range(0, len(symbols), batch_size)
    ]
