"""The emulator's knobs, apart from its server, so that the `emulator` command reads its defaults from them
without loading it."""

import datetime as dt
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EmulatorConfig:
    """The emulator's knobs: seed of the synthetic data, the faults to inject, recorded answers to replay, and
    where to listen."""

    seed: int = 7
    latency_ms: float = 0.0
    error_rate: float = 0.0
    rate_limit_rps: float | None = None
    delisted: frozenset[str] = frozenset()
    null_fraction: float = 0.0
    # A share of data requests answered only after stall_s: a hung connection that the client must time out.
    stall_rate: float = 0.0
    stall_s: float = 5.0
    # Symbols whose first chart request stalls (for stall_s): a batch held in its middle, for a test to kill.
    stall_first_chart: frozenset[str] = frozenset()
    # The market's clock (None: the real one); a fixed instant makes every answer repeatable.
    as_of: dt.datetime | None = None
    # Answer every connection with 429s, whatever its ClientHello: Yahoo refusing this client outright.
    refuse_all: bool = False
    # A folder of node-yahoo-finance2 recordings whose daily charts and quotes are served as Yahoo recorded
    # them, in place of the synthetic ones (None: every answer synthetic).
    recordings: Path | None = None
    host: str = "127.0.0.1"
    port: int = 0
    # Where to write the CA's PEM for clients' --ca-bundle (None: a temporary folder the emulator removes).
    ca_path: Path | None = None
