"""The adaptive request rate: no limit until a 429, then half the rate, then back up slowly; and --max-rps
held in a real run, as the emulator counts it."""

import random
import re
import time
from typing import NamedTuple

import pytest

from conftest import FakeClock, run_collect, write_universe
from etl.emulator import Emulator, EmulatorConfig
from etl.source.rate import HALVING_WINDOW_S, AdaptiveRate


def test_no_limit_until_yahoo_says_429():
    rate = AdaptiveRate(clock=FakeClock())  # a clock that never moves: any pacing would show as a wait
    waits = [rate.reserve() for _ in range(200)]
    assert rate.rps is None
    assert waits == [0.0] * 200  # 200 turns without a single wait


def test_a_429_halves_what_was_sent_in_the_last_second_and_answers_win_it_back():
    clock = FakeClock()
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
    clock = FakeClock()
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
    rate = AdaptiveRate(clock=FakeClock())
    rate.note_sent(39)
    rate.acquire()
    rate.slow_down()
    assert rate.rps == 20


def test_requests_older_than_the_window_do_not_count():
    clock = FakeClock()
    rate = AdaptiveRate(clock=clock)
    rate.note_sent(39)
    clock.advance(HALVING_WINDOW_S)  # those 39 are a second old now: another overload's
    rate.note_sent(9)
    rate.slow_down()
    assert rate.rps == 4.5


def test_the_rate_never_drops_below_its_floor():
    clock = FakeClock()
    rate = AdaptiveRate(min_rps=0.5, clock=clock)
    for _ in range(20):
        rate.slow_down()
        clock.advance(HALVING_WINDOW_S)
    assert rate.rps == 0.5


def test_max_rps_paces_from_the_first_request_and_caps_what_answers_win_back():
    rate = AdaptiveRate(max_rps=5, clock=FakeClock())
    waits = [rate.reserve() for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])  # one turn every 0.2 s
    rate.slow_down()
    assert rate.rps == 2.5
    for _ in range(100):
        rate.speed_up()
    assert rate.rps == 5


def test_max_rps_banks_no_turns_across_a_pause():
    clock = FakeClock()
    rate = AdaptiveRate(max_rps=5, clock=clock)
    [rate.reserve() for _ in range(5)]
    clock.advance(10)  # the machine paused long past the turns taken: they are not owed as a burst
    assert [rate.reserve() for _ in range(3)] == pytest.approx([0.0, 0.2, 0.4])


def test_max_rps_turns_never_put_more_than_n_in_any_second():
    clock, dice = FakeClock(), random.Random(5)
    rate = AdaptiveRate(max_rps=4, clock=clock)
    turns = []
    for _ in range(300):
        clock.advance(dice.choice([0.0, 0.0, 0.0, 0.01, 0.3, 1.7]))  # threads asking at once, and pauses
        turns.append(clock() + rate.reserve())
    # (t - 1, t]: the trailing second of each turn, as the emulator counts; 1e-9 absorbs the float sums.
    assert max(sum(t - 1 + 1e-9 < u <= t for u in turns) for t in turns) == 4


def test_the_rate_is_timed_by_the_monotonic_clock_unless_told_otherwise():
    # The product's clock, which a step of the wall clock (NTP, a suspended laptop's resume) never moves.
    assert AdaptiveRate()._clock is time.monotonic


# --max-rps in a real run. The meter is the emulator's own rate limit: it answers 429 to a request that
# arrives when more than its limit arrived in the trailing second (its clock, at arrival), so no 429 means
# no second at the emulator held more than the limit: an upper bound, which slowness cannot break.
MAX_RPS = 2
# Requests leave 1/MAX_RPS s apart, but each reaches the emulator after a connect, a TLS handshake and thread
# switches of its own, so a second there can catch requests sent in the second before. The README promises
# "at most N requests a second" and documents no burst: this allowance is the test's, for delivery only (3
# at 2 rps is 1.5 s of delay). A slower or paused machine delays the client too, whose pacing owes no turns
# after a pause (see above); only the emulator stalling alone for over 1.5 s, the client running on, could
# bunch its arrivals past the meter.
DELIVERY_ALLOWANCE = 3
RATE_SYMBOLS = ["AAPL", "MSFT", "KO", "PEP", "XOM", "JNJ", "WMT", "CVX"]  # 8: one a fetch thread


class Metered(NamedTuple):
    """A metered run: what the CLI said and what the emulator counted."""

    returncode: int
    stderr: str
    requests: int  # as the emulator counted them
    over_limit: int  # requests the meter answered 429: each arrived in a second already at its limit
    run_s: float  # the run's own span, started to finished, from its one-line result


def metered_collect(tmp_path, *options: str) -> Metered:
    """collect through an emulator metering every trailing second."""
    universe = write_universe(tmp_path / "u.txt", RATE_SYMBOLS)
    with Emulator(EmulatorConfig(rate_limit_rps=MAX_RPS + DELIVERY_ALLOWANCE)) as meter:
        result = run_collect(meter, universe, tmp_path / "lake", *options)
        requests, over_limit = meter.total_requests(), meter.faults().get("429", 0)
    run_s = re.search(r"API calls, ([0-9.]+) s into", result.stdout)
    return Metered(result.returncode, result.stderr, requests, over_limit, float(run_s[1]) if run_s else 0.0)


def test_max_rps_holds_in_every_second_of_a_real_run(tmp_path):
    run = metered_collect(tmp_path, "--max-rps", str(MAX_RPS))
    assert run.over_limit == 0  # no second at the emulator held more than MAX_RPS + DELIVERY_ALLOWANCE
    assert run.returncode == 0, run.stderr
    assert run.requests == 2 + 1 + len(RATE_SYMBOLS)  # the meter saw them all: cookie, crumb, a quote, charts
    # The finer bound, over the whole run: its requests were turns 1/MAX_RPS s apart, all between its start
    # and its end, so it lasted at least (requests - 1) / MAX_RPS, and a slower machine only lengthens it
    # (0.05 s for the two decimals of the result; a cap paced twice too fast ran 2.56 s of the 5 here).
    assert run.run_s >= (run.requests - 1) / MAX_RPS - 0.05


def test_without_max_rps_the_same_run_overruns_the_meter(tmp_path):
    # The control: the meter can fail. It is timing-dependent, in one direction only: the uncapped run sends
    # its 8 charts at once (8 threads) right after the quote, and any 6 of its 11 requests within a second
    # overrun the meter. Here (2 cores, load 4) all 11 reached the emulator within 60 ms, the 8 charts within
    # 20 ms: a machine some 15 times slower would fail this control, never let a broken cap pass the test
    # above.
    assert metered_collect(tmp_path).over_limit > 0
