"""`python tests/leaky_collector.py collect ...`: collect with a leak put in on purpose, for the memory tests.

Each batch keeps 64 MB more, touched so that it counts in RSS, just before the job measures its memory: what a
real leak of that size would show the memory check, without depending on how much the first batch happens to
take on this machine.
"""

from etl import cli, run_steps
from etl.memory import check_memory

LEAK_MB = 64
_kept: list[bytearray] = []


def check_memory_after_a_leak(limit_mb: float):
    _kept.append(bytearray(b"x" * (LEAK_MB << 20)))
    return check_memory(limit_mb)


if __name__ == "__main__":
    run_steps.check_memory = check_memory_after_a_leak
    cli.main()
