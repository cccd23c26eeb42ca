"""Memory checks between batches: RSS and USS of the process (psutil) and Arrow's own allocations."""

import gc
from dataclasses import dataclass

import psutil
import pyarrow as pa

MB = 1024 * 1024


@dataclass(frozen=True)
class MemorySample:
    """One reading of the process's memory, in MiB."""

    rss_mb: float
    uss_mb: float
    arrow_mb: float


def rss_mb() -> float:
    """The process's RSS alone: a cheap read, where USS's read of smaps (about 5 ms) would be wasted."""
    return psutil.Process().memory_info().rss / MB


def sample_memory() -> MemorySample:
    """Read RSS, USS (what the process alone holds; costs a read of smaps) and Arrow's pool."""
    info = psutil.Process().memory_full_info()
    return MemorySample(info.rss / MB, info.uss / MB, pa.total_allocated_bytes() / MB)


@dataclass(frozen=True)
class MemoryCheck:
    """The outcome of a check after a batch: the reading kept, whether gc ran, whether the limit still
    holds."""

    sample: MemorySample
    gc_ran: bool
    limit_mb: float

    @property
    def over_limit(self) -> bool:
        return self.sample.rss_mb > self.limit_mb

    def describe(self) -> str:
        return (
            f"RSS {self.sample.rss_mb:.0f} MB stayed above --memory-limit-mb {self.limit_mb:.0f} after gc; "
            "stopped cleanly with every batch so far kept; raise the limit or lower --batch-size"
        )


def check_memory(limit_mb: float) -> MemoryCheck:
    """Measure; above the limit, collect garbage, hand Arrow's unused memory back and measure again."""
    sample = sample_memory()
    if sample.rss_mb <= limit_mb:
        return MemoryCheck(sample, gc_ran=False, limit_mb=limit_mb)
    gc.collect()
    pa.default_memory_pool().release_unused()
    return MemoryCheck(sample_memory(), gc_ran=True, limit_mb=limit_mb)
