"""The session's request rate: unlimited until Yahoo answers 429 (or capped by --max-rps), then halved, then
won back slowly."""

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

# The 429s of the requests already in flight when Yahoo first says 429 tell of the same overload: after a
# halving, the next comes no sooner than this, the window the halving measured.
HALVING_WINDOW_S = 1.0


class Rate(Protocol):
    """What the session paces its requests by: a rate of its own process, or its node's (etl/cluster.py)."""

    @property
    def answered(self) -> bool:
        """Whether Yahoo has answered anything but 429 to a request paced by this rate."""
        ...

    def acquire(self) -> None: ...

    def slow_down(self) -> None: ...

    def speed_up(self) -> None: ...


class AdaptiveRate:
    """One rate for every thread of a session (additive increase, multiplicative decrease), never above
    `max_rps`."""

    def __init__(
        self, min_rps: float = 0.5, max_rps: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._min_rps = min_rps
        self._max_rps = max_rps
        self._rps: float | None = max_rps  # None: no 429 seen yet and no cap, no limit
        self._next_at = 0.0
        self._halved_at = -HALVING_WINDOW_S
        self._sent: deque[float] = deque()
        self._answered = False

    @property
    def rps(self) -> float | None:
        return self._rps

    @property
    def answered(self) -> bool:
        return self._answered

    def acquire(self) -> None:
        """Wait for this request's turn."""
        time.sleep(self.reserve())

    def reserve(self) -> float:
        """Take the next turn: how many seconds to wait for it. Waiting is the caller's, so that a rate
        shared through one actor (etl/cluster.py) never sleeps while others ask."""
        with self._lock:
            now = self._clock()
            self._note_sent(now, 1)
            if self._rps is None:
                return 0.0
            turn = max(now, self._next_at)
            self._next_at = turn + 1.0 / self._rps
        return turn - now

    def note_sent(self, n: int) -> None:
        """`n` requests went out without taking a turn (a Ray node's workers while it has no limit): they
        count in the second a 429 halves."""
        with self._lock:
            self._note_sent(self._clock(), n)

    def _note_sent(self, now: float, n: int) -> None:
        self._sent.extend([now] * n)
        while self._sent and self._sent[0] <= now - HALVING_WINDOW_S:
            self._sent.popleft()

    def slow_down(self) -> None:
        """Yahoo said 429: half of what was sent in the last second, or half the limit if lower; once a
        window, so that a burst's 429s, answers to the rate before, halve it once, not to the floor."""
        with self._lock:
            now = self._clock()
            if now - self._halved_at < HALVING_WINDOW_S:
                return
            self._halved_at = now
            self._note_sent(now, 0)
            sent = float(len(self._sent))
            self._rps = max(self._min_rps, min(sent, self._rps or sent) / 2)

    def speed_up(self) -> None:
        """An answer came: about one more request a second for every second of answers, up to the cap."""
        with self._lock:
            self._answered = True
            if self._rps is not None:
                self._rps = min(self._rps + 1.0 / self._rps, self._max_rps or float("inf"))
