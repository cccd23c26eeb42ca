"""The session's request rate: unlimited until Yahoo answers 429, then halved, then won back slowly."""

import threading
import time
from collections import deque


class AdaptiveRate:
    """One rate for every thread of a session (additive increase, multiplicative decrease)."""

    def __init__(self, min_rps: float = 0.5) -> None:
        self._lock = threading.Lock()
        self._min_rps = min_rps
        self._rps: float | None = None  # None: no 429 seen yet, no limit
        self._next_at = 0.0
        self._sent: deque[float] = deque()

    @property
    def rps(self) -> float | None:
        return self._rps

    def acquire(self) -> None:
        """Wait for this request's turn."""
        with self._lock:
            now = time.monotonic()
            self._sent.append(now)
            while self._sent[0] <= now - 1.0:
                self._sent.popleft()
            if self._rps is None:
                return
            turn = max(now, self._next_at)
            self._next_at = turn + 1.0 / self._rps
        time.sleep(turn - now)

    def slow_down(self) -> None:
        """Yahoo said 429: half of what was sent in the last second, or half the limit if lower."""
        with self._lock:
            sent = float(len(self._sent))
            self._rps = max(self._min_rps, min(sent, self._rps or sent) / 2)

    def speed_up(self) -> None:
        """An answer came: about one more request a second for every second of answers."""
        with self._lock:
            if self._rps is not None:
                self._rps += 1.0 / self._rps
