"""Chip timing: header search, tracked chip clock (kernel == twin), smoothing.

Signals are our modulator's bursts at a channel rate (dsp.modulator.modulate), with
known chips, carrier offset and chip-rate error, so the true chip times are known.
"""

from __future__ import annotations

import numpy as np
import pytest

from dsp.chipfamily import CHIP_FAMILIES
from dsp.fsk import measure_offset, tone_prefix, window_sums
from dsp.header import fit_header
from dsp.modulator import modulate
from dsp.timing import (
    correlate_chips,
    smooth_times,
    track_chips,
    track_reference,
)

RATE_HZ = 600_000.0  # a T/C channel at 2.4 MS/s / 4
FAMILY = CHIP_FAMILIES["TC"]
KNOWN = np.array([int(c) for c in FAMILY.pattern], dtype=np.uint8)
LEAD = 300  # samples of silence before the burst


def _burst(rng, n_data=400, cfo_hz=0.0, rate_error=0.0, noise=0.0, seed=1):
    """Header + random chips at RATE_HZ; returns (iq, chips, true chip period)."""
    chips = np.concatenate([KNOWN, rng.integers(0, 2, n_data).astype(np.uint8)])
    iq = modulate(
        chips,
        FAMILY.chip_rate_hz,
        FAMILY.deviation_hz,
        RATE_HZ,
        freq_offset_hz=cfo_hz,
        chip_rate_error_ppm=rate_error * 1e6,
    )
    iq = np.concatenate([np.zeros(LEAD), iq, np.zeros(LEAD)])
    if noise:
        gen = np.random.default_rng(seed)
        iq = iq + noise * (gen.normal(size=iq.size) + 1j * gen.normal(size=iq.size))
    period = RATE_HZ / (FAMILY.chip_rate_hz * (1 + rate_error))
    return iq.astype(np.complex64), chips, period


@pytest.mark.parametrize("cfo_hz", [-60e3, -12e3, 0.0, 31e3, 75e3])
def test_fit_header_finds_offset_and_timing(rng, cfo_hz):
    iq, _, period = _burst(rng, cfo_hz=cfo_hz, noise=0.1)
    true_end = LEAD + KNOWN.size * period
    # the detector is up to half a chip off in time and 12.5 kHz in offset
    guess_cfo = 25e3 * round(cfo_hz / 25e3)
    fit = fit_header(
        iq,
        0,
        KNOWN,
        true_end + 0.4 * period,
        guess_cfo,
        RATE_HZ / FAMILY.chip_rate_hz,
        FAMILY.deviation_hz,
        RATE_HZ,
    )
    assert fit.end_time == pytest.approx(true_end, abs=0.15 * period)
    assert fit.cfo_hz == pytest.approx(cfo_hz, abs=3e3)
    assert fit.period == pytest.approx(period)
    assert fit.score > 0.8


def test_fit_header_scores_noise_low(rng):
    noise = (rng.normal(size=4000) + 1j * rng.normal(size=4000)).astype(np.complex64)
    fit = fit_header(
        noise,
        0,
        KNOWN,
        2000,
        0.0,
        RATE_HZ / FAMILY.chip_rate_hz,
        FAMILY.deviation_hz,
        RATE_HZ,
    )
    assert fit.score < 0.35


def _track(iq, period, start, n_chips, **kw):
    dev = FAMILY.deviation_hz / RATE_HZ
    p1 = tone_prefix(iq, dev)
    energy = (period) ** 2  # unit amplitude over one chip
    return (
        track_chips(iq, 0, dev, -dev, start, period, KNOWN, n_chips, energy, **kw),
        p1,
        energy,
    )


def test_track_kernel_matches_reference(rng):
    iq, chips, period = _burst(rng, noise=0.3)
    track, _, energy = _track(iq, period, LEAD + 0.3, chips.size)
    dev = FAMILY.deviation_hz / RATE_HZ
    ref = track_reference(
        tone_prefix(iq, dev),
        tone_prefix(iq, -dev),
        dev,
        -dev,
        0,
        LEAD + 0.3,
        period,
        KNOWN,
        chips.size,
        energy,
    )
    assert track.soft.size == ref.soft.size == chips.size
    np.testing.assert_allclose(track.times, ref.times, rtol=0, atol=1e-9)
    np.testing.assert_allclose(track.soft, ref.soft, rtol=1e-9)
    np.testing.assert_allclose(track.y_one, ref.y_one, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(track.y_zero, ref.y_zero, rtol=1e-9, atol=1e-9)
    assert track.period == pytest.approx(ref.period)


@pytest.mark.parametrize("rate_error", [-0.03, -0.02, 0.02, 0.03])
def test_track_follows_a_chip_rate_error(rng, rate_error):
    """Started at the nominal period, the loop locks on a chip clock 2-3 % off."""
    iq, chips, period = _burst(rng, n_data=1500, rate_error=rate_error, noise=0.1)
    nominal = RATE_HZ / FAMILY.chip_rate_hz
    track, _, _ = _track(iq, nominal, LEAD, chips.size)
    true_times = LEAD + np.arange(track.times.size) * period
    late = slice(300, None)  # after the pull-in
    assert np.abs(track.times[late] - true_times[late]).max() < 0.15 * period
    assert track.period == pytest.approx(period, rel=0.003)
    assert np.array_equal(track.soft[late] > 0, chips[late] == 1)


def test_track_stops_where_the_samples_end(rng):
    iq, chips, period = _burst(rng, n_data=50)
    track, _, _ = _track(iq, period, LEAD, chips.size + 500)
    assert chips.size <= track.soft.size < chips.size + 500
    assert track.soft.size == track.times.size == track.y_one.size


def test_smooth_times_keeps_lines_and_removes_jitter(rng):
    line = 100.0 + 6.25 * np.arange(1000)
    np.testing.assert_allclose(smooth_times(line, 6.25), line)
    jitter = line + rng.normal(0, 0.5, line.size)
    assert np.abs(smooth_times(jitter, 6.25) - line).max() < 0.15
    assert smooth_times(np.array([3.0]), 6.0).tolist() == [3.0]


def test_correlate_chips_repeats_the_tracked_correlators(rng):
    iq, chips, period = _burst(rng, noise=0.2)
    track, _, _ = _track(iq, period, LEAD, chips.size)
    dev = FAMILY.deviation_hz / RATE_HZ
    again = correlate_chips(iq, 0, dev, -dev, track.times, track.period)
    # the tracked windows are [t_k, t_k + period_k); these are [t_k, t_k+1): the same
    # up to the loop's small corrections, so the chip decisions agree
    assert np.array_equal(again.soft > 0, track.soft > 0)


def test_track_rejects_bad_arguments(rng):
    iq, _, period = _burst(rng)
    with pytest.raises(ValueError):
        track_chips(iq, 0, 0.1, -0.1, 0.0, -1.0, KNOWN, 10, 1.0)
    with pytest.raises(ValueError):
        track_chips(
            iq.astype(np.complex128), 0, 0.1, -0.1, 10.0, period, KNOWN, 10, 1.0
        )


def test_correlate_chips_matches_window_sums(rng):
    iq, _, period = _burst(rng, noise=0.2)
    dev = FAMILY.deviation_hz / RATE_HZ
    times = LEAD + 0.37 + np.arange(100) * (period + 0.01)
    got = correlate_chips(iq, 5000, dev, -dev, times, period)
    ends = np.append(times[1:], times[-1] + period)
    p1, p0 = tone_prefix(iq, dev, 5000), tone_prefix(iq, -dev, 5000)
    y1 = window_sums(p1, times, ends) * np.exp(2j * np.pi * dev * (5000 + times))
    y0 = window_sums(p0, times, ends) * np.exp(-2j * np.pi * dev * (5000 + times))
    np.testing.assert_allclose(got.y_one, y1, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got.y_zero, y0, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got.soft, np.abs(y1) ** 2 - np.abs(y0) ** 2, rtol=1e-9)


@pytest.mark.parametrize("cfo_hz", [-70e3, -9e3, 0.0, 23e3])
def test_measure_offset_from_decided_chips(rng, cfo_hz):
    """The phase advance over hundreds of chips gives the offset to ~100 Hz."""
    iq, chips, period = _burst(rng, n_data=800, cfo_hz=cfo_hz, noise=0.3)
    dev = FAMILY.deviation_hz / RATE_HZ
    guess = cfo_hz + 4e3  # the header fit's error is a few kHz
    f1, f0 = (guess / RATE_HZ + dev), (guess / RATE_HZ - dev)
    times = LEAD + np.arange(chips.size) * period
    track = correlate_chips(iq, 0, f1, f0, times, period)
    got = measure_offset(track.y_one, track.y_zero, chips, period, guess / RATE_HZ)
    assert got * RATE_HZ == pytest.approx(cfo_hz, abs=300)
