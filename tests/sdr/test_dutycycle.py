"""Duty-cycle limiter: the EN 300 220 sub-band table, sliding-hour accounting with a
simulated clock, the refuse / delay policies, the override, and airtime measurement of
real modulated bursts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.modes import get_phy
from dsp.modulator import compose, frame_burst
from sdr.dutycycle import (
    OBSERVATION_WINDOW_S,
    SUB_BANDS,
    DutyCycleError,
    DutyCycleLimiter,
    find_sub_band,
    measure_airtime,
    sub_bands_between,
)
from stack.errors import SinkError
from stack.frame import add_crcs

T1_HZ = get_phy("T1", "meter").carrier_hz
S1_HZ = get_phy("S1", "meter").carrier_hz
C2_DOWN_HZ = get_phy("C2", "other").carrier_hz


class FakeClock:
    """A monotonic clock that moves only when told; ``sleep`` advances it."""

    def __init__(self, start_s: float = 1000.0):
        self.now_s = start_s
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now_s += seconds


def make_limiter(
    policy: str = "refuse", **kwargs
) -> tuple[DutyCycleLimiter, FakeClock]:
    clock = FakeClock()
    return DutyCycleLimiter(clock, policy=policy, sleep=clock.sleep, **kwargs), clock


# --- the table ------------------------------------------------------------------------


def test_table_is_sorted_contiguous_863_to_870_mhz():
    assert SUB_BANDS[0].low_hz == 863e6 and SUB_BANDS[-1].high_hz == 870e6
    for lower, upper in zip(SUB_BANDS, SUB_BANDS[1:], strict=False):
        assert lower.high_hz == upper.low_hz
        assert lower.low_hz < lower.high_hz


@pytest.mark.parametrize(
    ("freq_hz", "low_hz", "high_hz", "duty"),
    [
        # The three sub-bands wM-Bus uses (EN 300 220 / ERC REC 70-03 Annex 1).
        (868.3e6, 868.0e6, 868.6e6, 0.01),
        (868.95e6, 868.7e6, 869.2e6, 0.001),
        (869.525e6, 869.4e6, 869.65e6, 0.10),
        # Edges: the lower edge belongs to the band, the upper to the next one.
        (868.0e6, 868.0e6, 868.6e6, 0.01),
        (868.6e6, 868.6e6, 868.7e6, 0.01),
        (869.2e6, 869.2e6, 869.25e6, 0.001),
    ],
)
def test_find_sub_band(freq_hz, low_hz, high_hz, duty):
    band = find_sub_band(freq_hz)
    assert (band.low_hz, band.high_hz, band.duty_cycle) == (low_hz, high_hz, duty)


def test_wmbus_carriers_fall_in_the_expected_sub_bands():
    assert find_sub_band(S1_HZ).duty_cycle == 0.01
    assert find_sub_band(T1_HZ).duty_cycle == 0.001
    assert find_sub_band(C2_DOWN_HZ).duty_cycle == 0.10


def test_budget_of_the_t1_band_is_3_6_s_per_hour():
    assert find_sub_band(T1_HZ).budget_s() == pytest.approx(3.6)
    assert find_sub_band(T1_HZ).name == "868.70-869.20 MHz"


@pytest.mark.parametrize("freq_hz", [433.92e6, 862.9e6, 870.0001e6, 915e6])
def test_outside_the_table_has_no_band(freq_hz):
    assert find_sub_band(freq_hz) is None


def test_sub_bands_between_spans_and_refuses_outside():
    names = [b.name for b in sub_bands_between(868.5e6, 868.8e6)]
    assert names == ["868.00-868.60 MHz", "868.60-868.70 MHz", "868.70-869.20 MHz"]
    assert sub_bands_between(869.9e6, 870.0e6)[-1].high_hz == 870e6
    with pytest.raises(SinkError, match="outside"):
        sub_bands_between(869.9e6, 870.1e6)


# --- accounting ---------------------------------------------------------------------


def test_fits_until_the_budget_then_waits_for_the_oldest_to_expire():
    limiter, clock = make_limiter()
    assert limiter.check(T1_HZ, 2.0) == 0.0
    limiter.record(T1_HZ, 2.0)  # ends at 1002
    clock.now_s += 100.0
    limiter.record(T1_HZ, 1.5)  # ends at 1101.5: 3.5 s used of 3.6 s
    clock.now_s += 10.0
    assert limiter.used_s(find_sub_band(T1_HZ)) == pytest.approx(3.5)
    assert limiter.check(T1_HZ, 0.1) == 0.0
    # 0.2 s more needs the first 2 s transmission (end 1002) to leave the hour.
    assert limiter.check(T1_HZ, 0.2) == pytest.approx(1002.0 + 3600.0 - clock.now_s)
    # Other bands are independent.
    assert limiter.check(S1_HZ, 30.0) == 0.0


def test_refuse_raises_with_the_facts_and_counts_nothing():
    limiter, clock = make_limiter()
    limiter.record(T1_HZ, 3.5)
    band = find_sub_band(T1_HZ)
    with pytest.raises(DutyCycleError) as info:
        limiter.acquire({band: 0.2})
    err = info.value
    assert isinstance(err, SinkError)
    assert err.band == band
    assert err.used_s == pytest.approx(3.5)
    assert err.requested_s == pytest.approx(0.2)
    assert err.wait_s == pytest.approx(3.5 + 3600.0, abs=1e-3)
    message = str(err)
    for text in (
        "868.70-869.20 MHz",
        "0.1%",
        "3.500 s used",
        "0.200 s requested",
        "3604",
    ):
        assert text in message
    assert limiter.used_s(band) == pytest.approx(3.5)
    assert clock.slept == []


def test_delay_sleeps_exactly_until_it_fits_then_counts():
    limiter, clock = make_limiter("delay")
    band = find_sub_band(T1_HZ)
    limiter.record(T1_HZ, 3.0)  # ends at 1003
    waited = limiter.acquire({band: 1.0})
    assert waited == pytest.approx(1003.0 + 3600.0 - 1000.0, abs=1e-3)
    assert clock.slept == [waited]
    assert limiter.used_s(band) == pytest.approx(1.0)  # the old 3 s have expired
    assert limiter.acquire({band: 1.0}) == 0.0
    assert limiter.used_s(band) == pytest.approx(2.0)


@pytest.mark.parametrize("policy", ["refuse", "delay"])
def test_longer_than_the_whole_budget_never_fits(policy):
    limiter, clock = make_limiter(policy)
    band = find_sub_band(T1_HZ)
    assert math.isinf(limiter.check(T1_HZ, 3.7))
    with pytest.raises(DutyCycleError, match="more than that in any hour") as info:
        limiter.acquire({band: 3.7})
    assert math.isinf(info.value.wait_s)
    assert clock.slept == []
    # The 10 % band takes it.
    assert limiter.check(C2_DOWN_HZ, 3.7) == 0.0


def test_disabled_limits_nothing_and_allows_any_frequency():
    limiter, clock = make_limiter(enabled=False)
    band = find_sub_band(T1_HZ)
    for _ in range(10):
        assert limiter.acquire({band: 3.0}) == 0.0
    assert limiter.check(433.92e6, 100.0) == 0.0
    limiter.record(433.92e6, 100.0)
    assert limiter.used_s(band) == 0.0


def test_enabled_refuses_frequencies_outside_the_table():
    limiter, _ = make_limiter()
    with pytest.raises(SinkError, match="outside"):
        limiter.check(433.92e6, 0.001)
    with pytest.raises(SinkError, match="outside"):
        limiter.record(870.05e6, 0.001, bandwidth_hz=200e3)


def test_bandwidth_charges_every_touched_band():
    limiter, _ = make_limiter()
    limiter.record(868.65e6, 0.5, bandwidth_hz=200e3)  # 868.55..868.75 MHz
    used = {b.name: limiter.used_s(b) for b in SUB_BANDS if limiter.used_s(b)}
    assert used == {
        "868.00-868.60 MHz": 0.5,
        "868.60-868.70 MHz": 0.5,
        "868.70-869.20 MHz": 0.5,
    }


def test_a_transmission_leaves_the_window_an_hour_after_its_end():
    limiter, clock = make_limiter()
    band = find_sub_band(T1_HZ)
    limiter.record(T1_HZ, 2.0)  # 1000 .. 1002
    clock.now_s = 1002.0 + OBSERVATION_WINDOW_S - 0.001
    assert limiter.used_s(band) == pytest.approx(2.0)
    clock.now_s = 1002.0 + OBSERVATION_WINDOW_S + 0.001
    assert limiter.used_s(band) == 0.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="policy"):
        DutyCycleLimiter(policy="ignore")
    with pytest.raises(ValueError, match="window"):
        DutyCycleLimiter(window_s=0)
    limiter, _ = make_limiter()
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="duration_s"):
            limiter.check(T1_HZ, bad)


def _max_airtime_in_any_window(events: list[tuple[float, float]], window_s: float):
    """Largest airtime inside any window [a, a + window_s]: independent brute force.

    The maximum is reached with the window's start at some event's start, or its end
    at some event's end; events are (start, duration).
    """
    starts = [s for s, _ in events] + [s + d - window_s for s, d in events]
    best = 0.0
    for a in starts:
        b = a + window_s
        best = max(best, sum(max(0.0, min(b, s + d) - max(a, s)) for s, d in events))
    return best


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 5000.0),  # idle time before the request, s
            st.floats(0.01, 3.6),  # requested airtime, s
        ),
        min_size=1,
        max_size=25,
    )
)
def test_delay_policy_never_exceeds_the_duty_cycle_in_any_hour(requests):
    limiter, clock = make_limiter("delay")
    band = find_sub_band(T1_HZ)
    events = []
    for idle_s, duration_s in requests:
        clock.now_s += idle_s
        limiter.acquire({band: duration_s})
        events.append((clock.now_s, duration_s))
        clock.now_s += duration_s  # the transmission itself takes its time
    assert _max_airtime_in_any_window(events, 3600.0) <= 3.6 + 1e-6


# --- airtime of real signals -------------------------------------------------------

RATE_HZ = 2.4e6
CENTER_HZ = 868.95e6
# A made-up telegram: L, C, M (2 bytes), then arbitrary data.
DATA = bytes([0x1E, 0x44, 0x2D, 0x2C]) + bytes(range(3, 30))


def _burst(mode, direction, start_sample):
    frame = add_crcs(DATA, "A")
    return frame_burst(
        frame, mode, direction, "A", sample_rate_hz=RATE_HZ, start_sample=start_sample
    )


def test_silence_costs_nothing():
    assert measure_airtime(np.zeros(50_000, np.complex64), RATE_HZ, CENTER_HZ) == {}
    assert measure_airtime(np.zeros(0, np.complex64), RATE_HZ, CENTER_HZ) == {}


def test_t1_burst_is_charged_to_the_0_1_percent_band_for_its_length():
    burst = _burst("T1", "meter", 3000)
    iq = compose([burst], CENTER_HZ, RATE_HZ, n_samples=burst.stop_sample + 5000)
    airtime = measure_airtime(iq, RATE_HZ, CENTER_HZ)
    duration_s = burst.iq.size / RATE_HZ
    assert list(airtime) == [find_sub_band(T1_HZ)]
    # Whole 1024-sample segments: at most one extra segment at each end.
    assert duration_s <= airtime[find_sub_band(T1_HZ)] <= duration_s + 2048 / RATE_HZ


def test_multi_mode_baseband_charges_each_band_its_own_burst_only():
    bursts = [
        _burst("T1", "meter", 0),
        _burst("S1", "meter", 200_000),
        _burst("C2", "other", 400_000),
    ]
    iq = compose(bursts, CENTER_HZ, RATE_HZ, n_samples=2_400_000)  # 1 s, mostly idle
    airtime = measure_airtime(iq, RATE_HZ, CENTER_HZ)
    for burst in bursts:
        band = find_sub_band(burst.carrier_hz)
        duration_s = burst.iq.size / RATE_HZ
        assert duration_s <= airtime[band] <= duration_s + 2048 / RATE_HZ
    # Far less than the 1 s the samples span.
    assert sum(airtime.values()) < 0.1


def test_a_burst_20_db_weaker_during_a_strong_one_is_still_charged():
    strong = _burst("T1", "meter", 0)
    weak = frame_burst(
        add_crcs(DATA, "A"),
        "C2",
        "other",
        "A",
        sample_rate_hz=RATE_HZ,
        start_sample=1000,
        gain_db=-20.0,
    )
    airtime = measure_airtime(
        compose([strong, weak], CENTER_HZ, RATE_HZ), RATE_HZ, CENTER_HZ
    )
    assert set(airtime) == {find_sub_band(T1_HZ), find_sub_band(C2_DOWN_HZ)}
    # Its edge segments, partly filled, may fall under the -25 dB threshold.
    duration_s = weak.iq.size / RATE_HZ
    assert airtime[find_sub_band(C2_DOWN_HZ)] >= duration_s - 1024 / RATE_HZ


def test_power_outside_the_table_is_refused():
    n = np.arange(20_000)
    tone = np.exp(2j * np.pi * (1.1e6 / RATE_HZ) * n).astype(np.complex64)  # 870.05 MHz
    with pytest.raises(SinkError, match="outside the SRD sub-bands"):
        measure_airtime(tone, RATE_HZ, CENTER_HZ)
    # The same tone from a centre at 868.0 MHz lands in 869.1 MHz: accepted.
    airtime = measure_airtime(tone, RATE_HZ, 868.0e6)
    assert list(airtime) == [find_sub_band(869.1e6)]
