"""Channel model: measured statistics against the stated definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsp.impair import (
    add_awgn,
    add_burst,
    add_dc_offset,
    apply_clock_offset,
    apply_iq_imbalance,
    noise_variance,
    place_bursts,
    scale_power,
    shift_frequency,
)
from dsp.modes import get_phy
from dsp.modulator import modulate_frame


def tone(freq_hz: float, sample_rate_hz: float, n_samples: int) -> np.ndarray:
    return np.exp(2j * np.pi * freq_hz / sample_rate_hz * np.arange(n_samples)).astype(
        np.complex64
    )


def mean_freq_hz(iq: np.ndarray, sample_rate_hz: float) -> float:
    iq = iq.astype(np.complex128)
    return float(
        np.angle(np.sum(iq[1:] * np.conj(iq[:-1]))) * sample_rate_hz / (2 * np.pi)
    )


@pytest.mark.parametrize("ebn0_db", [0.0, 8.0, 15.0])
def test_awgn_variance_matches_ebn0_definition(ebn0_db, rng):
    fs = 2.4e6
    rate_bps = get_phy("T1").bit_rate_bps
    silent = np.zeros(400_000, dtype=np.complex64)
    noisy = add_awgn(silent, ebn0_db, rate_bps, fs, rng, signal_power=1.0)
    # Definition: Eb = P / Rb, N0 = Eb / (Eb/N0), noise variance = N0 * fs.
    expected = (1.0 / rate_bps) / 10 ** (ebn0_db / 10) * fs
    assert noise_variance(ebn0_db, rate_bps, fs, 1.0) == pytest.approx(expected)
    assert np.mean(np.abs(noisy) ** 2) == pytest.approx(expected, rel=0.02)
    assert np.var(noisy.real) == pytest.approx(expected / 2, rel=0.02)
    assert np.var(noisy.imag) == pytest.approx(expected / 2, rel=0.02)
    assert abs(np.mean(noisy)) < 0.01 * math.sqrt(expected)
    assert noisy.dtype == np.complex64


def test_awgn_measures_signal_power_by_default(rng):
    fs, rate_bps = 1.6e6, 16384.0
    signal = (2.0 * tone(10e3, fs, 200_000)).astype(np.complex64)  # power 4
    noise = add_awgn(signal, 10.0, rate_bps, fs, rng) - signal
    expected = 4.0 / rate_bps / 10.0 * fs
    assert np.mean(np.abs(noise) ** 2) == pytest.approx(expected, rel=0.02)


def test_awgn_is_deterministic_per_seed():
    iq = modulate_frame(b"\x10\x20\x30", "C1", sample_rate_hz=1.2e6)
    runs = [
        add_awgn(iq, 6.0, 100e3, 1.2e6, np.random.default_rng(seed), 1.0)
        for seed in (7, 7, 8)
    ]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])
    np.testing.assert_array_equal(
        iq, modulate_frame(b"\x10\x20\x30", "C1", sample_rate_hz=1.2e6)
    )  # input kept


@pytest.mark.parametrize(
    "kwargs",
    [
        {"iq": np.zeros(10)},
        {"iq": np.zeros((2, 5), np.complex64)},
        {"iq": np.zeros(10, np.complex64)},
        {"signal_power": -1.0},
        {"bit_rate_bps": 0.0},
    ],
)
def test_awgn_refuses_bad_input(kwargs, rng):
    args = {
        "iq": np.ones(10, np.complex64),
        "ebn0_db": 5.0,
        "bit_rate_bps": 1e5,
        "sample_rate_hz": 1e6,
        "rng": rng,
    } | kwargs
    with pytest.raises(ValueError):
        add_awgn(**args)


def test_shift_frequency_moves_a_tone():
    fs = 1.0e6
    shifted = shift_frequency(tone(20e3, fs, 10_000), -57e3, fs, start_phase_rad=0.5)
    assert mean_freq_hz(shifted, fs) == pytest.approx(-37e3, abs=0.5)
    assert np.angle(shifted[0]) == pytest.approx(0.5, abs=1e-6)
    np.testing.assert_allclose(np.abs(shifted), 1.0, atol=1e-6)


@pytest.mark.parametrize("ppm", [-80.0, 50.0, 250.0])
def test_clock_offset_changes_length_and_frequency(ppm):
    fs, n_samples = 1.0e6, 100_000
    out = apply_clock_offset(tone(100e3, fs, n_samples), ppm)
    assert out.size == pytest.approx(n_samples * (1 + ppm * 1e-6), abs=1.0)
    inner = out[100:-100]  # away from the zero-padded edges
    # A tone at f seen through a clock fast by eps appears at f / (1 + eps).
    assert mean_freq_hz(inner, fs) == pytest.approx(100e3 / (1 + ppm * 1e-6), abs=0.05)
    np.testing.assert_allclose(np.abs(inner), 1.0, atol=2e-3)


def test_clock_offset_zero_is_identity_and_refuses_nonsense():
    iq = tone(5e3, 1e6, 1000)
    np.testing.assert_array_equal(apply_clock_offset(iq, 0.0), iq)
    with pytest.raises(ValueError):
        apply_clock_offset(iq, -2e6)


def test_clock_offset_tracks_a_modulated_burst():
    # 1000 ppm over ~1600 chips is 1.6 chips of slip: the chips must still sit where a
    # receiver with the stretched clock expects them.
    fs = 1.2e6
    iq = modulate_frame(bytes(range(200)), "C1", sample_rate_hz=fs)
    out = apply_clock_offset(iq, 1000.0)
    freq = np.angle(out[1:] * np.conj(out[:-1])) * fs / (2 * np.pi)
    ref = np.angle(iq[1:] * np.conj(iq[:-1])) * fs / (2 * np.pi)
    centres = (np.arange(10, 1600) + 0.5) / 100e3
    at_out = freq[np.floor(centres * fs * 1.001).astype(int)]
    at_ref = ref[np.floor(centres * fs).astype(int)]
    np.testing.assert_array_equal(np.sign(at_out), np.sign(at_ref))


def test_dc_offset_and_power_scale(rng):
    iq = tone(30e3, 1e6, 100_000)
    assert np.mean(add_dc_offset(iq, 0.1 - 0.2j)) == pytest.approx(0.1 - 0.2j, abs=1e-3)
    scaled = scale_power(iq, -6.0)
    assert np.mean(np.abs(scaled) ** 2) == pytest.approx(10**-0.6, rel=1e-5)


@pytest.mark.parametrize(
    ("gain_db", "phase_deg"), [(0.5, 0.0), (0.0, 3.0), (-1.0, -5.0)]
)
def test_iq_imbalance_image_level(gain_db, phase_deg):
    fs, f_hz, n_samples = 1e6, 100e3, 10_000  # whole number of cycles: clean FFT bins
    out = apply_iq_imbalance(tone(f_hz, fs, n_samples), gain_db, phase_deg)
    spectrum = np.abs(np.fft.fft(out.astype(np.complex128))) / n_samples
    wanted, image = (
        spectrum[int(f_hz / fs * n_samples)],
        spectrum[-int(f_hz / fs * n_samples)],
    )
    g, phi = 10 ** (gain_db / 20), math.radians(phase_deg)
    mu = abs(1 + g * np.exp(-1j * phi)) / 2
    nu = abs(1 - g * np.exp(1j * phi)) / 2
    assert wanted == pytest.approx(mu, rel=1e-4)
    assert image == pytest.approx(nu, rel=1e-3, abs=1e-6)
    np.testing.assert_allclose(
        out.real, np.cos(2 * np.pi * f_hz / fs * np.arange(n_samples)), atol=1e-5
    )  # I branch untouched


def test_iq_imbalance_none_is_identity():
    iq = tone(1e3, 1e6, 500)
    np.testing.assert_allclose(apply_iq_imbalance(iq, 0.0, 0.0), iq, atol=1e-7)


def test_place_and_add_overlapping_bursts():
    assert place_bursts([100, 50, 80], [20, -25]) == [0, 120, 145]
    assert place_bursts([100, 100], -50, start_sample=10) == [10, 60]
    assert place_bursts([], 5) == []
    with pytest.raises(ValueError):
        place_bursts([100, 50], [1, 2])
    with pytest.raises(ValueError):
        place_bursts([10, 50], -20)
    base = np.zeros(200, dtype=np.complex64)
    one = np.ones(100, dtype=np.complex64)
    out = add_burst(add_burst(base, one, 0), one, 60, gain_db=20 * math.log10(2))
    np.testing.assert_allclose(
        out[[0, 59, 60, 99, 100, 159, 160]], [1, 1, 3, 3, 2, 2, 0], atol=1e-6
    )
    assert np.all(base == 0)
    with pytest.raises(ValueError, match="does not fit"):
        add_burst(base, one, 150)
