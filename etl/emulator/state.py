"""What the emulator keeps across requests and connections, under one lock, as every tunnel runs in a thread
of its own: the counts that tests and the bench read back, the trailing second of the rate limit, and the
seeded dice of the injected faults."""

import random
import threading
import time
from collections import Counter, deque

from etl.emulator import tls
from etl.emulator.config import EmulatorConfig
from etl.emulator.recordings import load_recordings

# The data endpoints, which error_rate fails, with the envelope of their error bodies.
ENVELOPES = {"chart": "chart", "quote": "finance", "quoteSummary": "quoteSummary", "timeseries": "finance"}
_clock = time.monotonic  # the rate limiter's; tests stop it


class State:
    """What the server keeps across requests: counts, the trailing second of requests, the fault dice."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.delisted = frozenset(symbol.upper() for symbol in config.delisted)
        self.recordings = load_recordings(config.recordings) if config.recordings else None
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.charts: Counter[str] = Counter()  # chart requests by symbol: what a resumed run fetched again
        # Chart requests being answered, by the client's port: which process is in the middle of a batch.
        self.charts_in_flight: dict[int, str] = {}
        self.faults: Counter[str] = Counter()
        self.dice = random.Random(config.seed)
        self.recent: deque[float] = deque()
        self.fingerprints: Counter[str] = Counter()
        self.blocked_connections = 0

    def judge(self, hello: tls.ClientHello | None) -> bool:
        """Count the connection by its fingerprint; True if it is to be refused, as Yahoo refuses scripts."""
        refused = self.config.refuse_all or hello is None or not hello.is_browser
        with self.lock:
            self.fingerprints[hello.fingerprint if hello else "not-a-client-hello"] += 1
            self.blocked_connections += refused
        return refused

    def admit(self, endpoint: str, refused: bool = False, symbol: str | None = None) -> str | None:
        """Count the request; the fault that answers it instead ("blocked", "429", "500", "stall"), if any."""
        now = _clock()
        with self.lock:
            self.counts[endpoint] += 1
            if symbol is not None:
                self.charts[symbol] += 1
            if refused:
                return self._fault("blocked")
            if symbol in self.config.stall_first_chart and self.charts[symbol] == 1:
                return self._fault("stall")
            if self.config.rate_limit_rps is not None:
                while self.recent and self.recent[0] <= now - 1.0:
                    self.recent.popleft()
                self.recent.append(now)
                if len(self.recent) > self.config.rate_limit_rps:
                    return self._fault("429")
            if endpoint in ENVELOPES and self.dice.random() < self.config.error_rate:
                return self._fault("500")
            if endpoint in ENVELOPES and self.dice.random() < self.config.stall_rate:
                return self._fault("stall")
        return None

    def _fault(self, fault: str) -> str:
        self.faults[fault] += 1
        return fault

    def stats(self, reset: bool = False) -> dict:
        with self.lock:
            if reset:
                self.counts.clear()
                self.charts.clear()
                self.faults.clear()
                self.fingerprints.clear()
                self.blocked_connections = 0
            return {
                "total": sum(self.counts.values()),
                "by_endpoint": dict(self.counts),
                "charts_by_symbol": dict(self.charts),
                "faults": dict(self.faults),
                "tls": {
                    "connections": sum(self.fingerprints.values()),
                    "blocked_connections": self.blocked_connections,
                    "fingerprints": dict(self.fingerprints),
                },
            }
