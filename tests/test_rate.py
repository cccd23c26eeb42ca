"""The adaptive request rate: no limit until a 429, then half the rate, then back up slowly."""

import time

from etl.source.rate import HALVING_WINDOW_S, AdaptiveRate


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_no_limit_until_yahoo_says_429():
    rate = AdaptiveRate()
    started = time.monotonic()
    for _ in range(200):
        rate.acquire()
    assert rate.rps is None
    assert time.monotonic() - started < 1.0  # 200 turns without a single wait


def test_a_429_halves_what_was_sent_in_the_last_second_and_answers_win_it_back():
    clock = Clock()
    rate = AdaptiveRate(clock=clock)
    for _ in range(40):
        rate.acquire()
    rate.slow_down()
    assert rate.rps == 20
    clock.advance(HALVING_WINDOW_S)
    rate.note_sent(20)  # a second at the halved rate
    rate.slow_down()
    assert rate.rps == 10
    for _ in range(10):
        rate.speed_up()
    assert 10.9 < rate.rps < 11.0


def test_the_429s_of_one_burst_halve_the_rate_once():
    clock = Clock()
    rate = AdaptiveRate(clock=clock)
    rate.note_sent(16)
    for _ in range(8):  # the 429s of the 8 requests in flight when Yahoo started refusing
        rate.slow_down()
        clock.advance(HALVING_WINDOW_S / 10)
    assert rate.rps == 8
    clock.advance(HALVING_WINDOW_S)
    rate.note_sent(8)  # a second at the halved rate, and still a 429
    rate.slow_down()
    assert rate.rps == 4


def test_requests_sent_without_a_turn_count_in_the_second_a_429_halves():
    rate = AdaptiveRate()
    rate.note_sent(39)
    rate.acquire()
    rate.slow_down()
    assert rate.rps == 20


def test_the_rate_never_drops_below_its_floor():
    clock = Clock()
    rate = AdaptiveRate(min_rps=0.5, clock=clock)
    for _ in range(20):
        rate.slow_down()
        clock.advance(HALVING_WINDOW_S)
    assert rate.rps == 0.5


def test_max_rps_paces_from_the_first_request_and_caps_what_answers_win_back():
    rate = AdaptiveRate(max_rps=5)
    waits = [rate.reserve() for _ in range(5)]
    assert waits[0] == 0 and 0.75 < waits[4] <= 0.8  # one turn every 0.2 s
    rate.slow_down()
    assert rate.rps == 2.5
    for _ in range(100):
        rate.speed_up()
    assert rate.rps == 5
