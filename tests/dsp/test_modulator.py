"""The modulator, checked with an independent FM discriminator written here.

Frames are made-up bytes (random from the seeded rng); the line code is verified
separately against the shared vectors in test_linecode.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.linecode import bytes_to_bits, decode_line
from dsp.modes import HIGH_FREQ_CHIP, get_phy, header_chips, list_phys
from dsp.modulator import (
    Burst,
    compose,
    frame_burst,
    frame_chips,
    modulate,
    modulate_frame,
)

RATES_HZ = [1.2e6, 1.6e6, 2.0e6, 2.4e6]
MODES = [
    ("S1", "meter", "A"),
    ("S1-m", "meter", "A"),
    ("T1", "meter", "A"),
    ("T2", "other", "A"),
    ("C1", "meter", "A"),
    ("C1", "meter", "B"),
    ("C2", "other", "A"),
    ("C2", "other", "B"),
]


def discriminate(iq: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    """Instantaneous frequency, Hz: element i is the mean over samples i .. i+1."""
    iq = iq.astype(np.complex128)
    return np.angle(iq[1:] * np.conj(iq[:-1])) * sample_rate_hz / (2 * np.pi)


def centre_freqs(iq, sample_rate_hz, chip_rate_hz, n_chips, start_sample=0):
    """Discriminator output over the sample interval holding each chip's centre."""
    freq = discriminate(iq, sample_rate_hz)
    centres_s = (np.arange(n_chips) + 0.5) / chip_rate_hz
    idx = start_sample + np.floor(centres_s * sample_rate_hz).astype(int)
    return freq[idx]


def slice_chips(freq_hz: np.ndarray) -> np.ndarray:
    return np.where(freq_hz > 0, HIGH_FREQ_CHIP, 1 - HIGH_FREQ_CHIP).astype(np.uint8)


def decode_burst_chips(chips, phy, frame_format, n_bytes) -> bytes:
    head = header_chips(phy, frame_format).size
    per_byte = {"manchester": 16, "3of6": 12, "nrz": 8}[phy.line_code]
    data, n_invalid = decode_line(
        chips[head : head + per_byte * n_bytes], phy.line_code
    )
    assert n_invalid == 0
    return data


# --- modes -------------------------------------------------------------------------


def test_phy_table_matches_reference():
    # Reference 1.1: carrier, chip rate, line code per mode and direction.
    expect = {
        ("S1", "meter"): (868.3e6, 32768, "manchester", 279),
        ("S2", "other"): (868.3e6, 32768, "manchester", 15),
        ("T1", "meter"): (868.95e6, 100e3, "3of6", 19),
        ("T2", "other"): (868.3e6, 32768, "manchester", 15),
        ("C1", "meter"): (868.95e6, 100e3, "nrz", 16),
        ("C2", "other"): (869.525e6, 50e3, "nrz", 16),
    }
    for (mode, direction), (carrier_hz, rate, code, pairs) in expect.items():
        phy = get_phy(mode, direction)
        assert (phy.carrier_hz, phy.chip_rate_hz, phy.line_code) == (
            carrier_hz,
            rate,
            code,
        )
        assert phy.preamble_pairs == pairs
    assert get_phy("C2", "other").gaussian_bt == 0.5
    assert get_phy("C2", "other").deviation_hz == 25e3
    assert get_phy("T1").bit_rate_bps == pytest.approx(100e3 * 4 / 6)
    assert get_phy("S1").bit_rate_bps == pytest.approx(16384)
    assert get_phy("C1").frame_formats == ("A", "B")
    assert get_phy("T1").frame_formats == ("A",)
    assert len(list_phys()) == 10


@pytest.mark.parametrize(
    ("mode", "direction"), [("T1", "other"), ("X9", "meter"), ("S1", "up")]
)
def test_get_phy_refuses_unknown(mode, direction):
    with pytest.raises(ValueError, match="choose one of"):
        get_phy(mode, direction)


def test_sync_words_match_reference_hex():
    # Reference 1.3: the decoders' hex views of preamble tail + sync (+ C marker).
    def tail(mode, fmt="A"):
        return header_chips(get_phy(mode), fmt)

    np.testing.assert_array_equal(
        tail("T1")[-16:], bytes_to_bits(bytes.fromhex("543D"))
    )
    np.testing.assert_array_equal(
        tail("S1")[-24:], bytes_to_bits(bytes.fromhex("547696"))
    )
    np.testing.assert_array_equal(
        tail("C1", "A")[-32:], bytes_to_bits(bytes.fromhex("543D54CD"))
    )
    np.testing.assert_array_equal(
        tail("C1", "B")[-32:], bytes_to_bits(bytes.fromhex("543D543D"))
    )
    assert tail("T1").size == 2 * 19 + 10
    np.testing.assert_array_equal(tail("T1")[:38], np.tile([0, 1], 19))


@pytest.mark.parametrize("n_bytes", [1, 2, 11, 12])
@pytest.mark.parametrize("mode", ["S1", "T1", "C1"])
def test_postamble_pads_to_byte_boundary(mode, n_bytes, rng):
    phy = get_phy(mode)
    frame = rng.bytes(n_bytes)
    chips = frame_chips(frame, phy)
    head = header_chips(phy).size
    per_byte = {"manchester": 16, "3of6": 12, "nrz": 8}[phy.line_code]
    post = chips[head + per_byte * n_bytes :]
    assert (per_byte * n_bytes + post.size) % 8 == 0
    # reference 1.3: 2..8 trailer chips for S and T; C needs none, but we send one
    # (whole bytes: 8 chips) because rtl_433 loses C frames ending on chip 1 without it
    if mode == "C1":
        assert post.size == 8
    assert 2 <= post.size <= 8
    assert np.all(np.diff(post.astype(int)) != 0)  # alternating
    assert post[0] != chips[head + per_byte * n_bytes - 1]


def test_frame_chips_refuses_bad_input():
    with pytest.raises(ValueError, match="frame format"):
        frame_chips(b"\x01", get_phy("T1"), "B")
    with pytest.raises(ValueError, match="empty"):
        frame_chips(b"", get_phy("C1"))
    with pytest.raises(ValueError, match="preamble_pairs"):
        frame_chips(b"\x01", get_phy("C1"), "A", preamble_pairs=-1)
    assert frame_chips(b"\x01", get_phy("S1"), preamble_pairs=15).size == (
        frame_chips(b"\x01", get_phy("S1-m")).size
    )


# --- modulate ---------------------------------------------------------------------


@pytest.mark.parametrize("sample_rate_hz", RATES_HZ)
@pytest.mark.parametrize("mode", ["S1-m", "T1", "C1"])
def test_tones_at_chip_centres(mode, sample_rate_hz, rng):
    phy = get_phy(mode)
    chips = rng.integers(0, 2, 300).astype(np.uint8)
    offset_hz = 12_345.0
    iq = modulate(
        chips,
        phy.chip_rate_hz,
        phy.deviation_hz,
        sample_rate_hz,
        freq_offset_hz=offset_hz,
        start_phase_rad=1.0,
    )
    assert abs(iq.size - chips.size / phy.chip_rate_hz * sample_rate_hz) <= 1
    assert iq.dtype == np.complex64
    np.testing.assert_allclose(np.abs(iq), 1.0, atol=1e-6)
    assert np.angle(iq[0]) == pytest.approx(1.0, abs=1e-6)
    sign = np.where(chips == HIGH_FREQ_CHIP, 1.0, -1.0)
    freq = centre_freqs(iq, sample_rate_hz, phy.chip_rate_hz, chips.size)
    np.testing.assert_allclose(freq, offset_hz + sign * phy.deviation_hz, atol=5.0)
    # Continuous phase: no sample-to-sample step beyond the extreme tone.
    assert np.max(np.abs(discriminate(iq, sample_rate_hz))) <= (
        phy.deviation_hz + offset_hz + 5.0
    )


def test_invert_swaps_tones(rng):
    chips = rng.integers(0, 2, 100).astype(np.uint8)
    fs = 1.6e6
    normal = centre_freqs(modulate(chips, 100e3, 50e3, fs), fs, 100e3, 100)
    swapped = centre_freqs(
        modulate(chips, 100e3, 50e3, fs, invert=True), fs, 100e3, 100
    )
    np.testing.assert_allclose(swapped, -normal, atol=5.0)


def test_chip_rate_error_stretches_timing(rng):
    chips = rng.integers(0, 2, 2000).astype(np.uint8)
    fs, rate = 1.2e6, 100e3
    ppm = 300.0
    iq = modulate(chips, rate, 50e3, fs, chip_rate_error_ppm=ppm)
    actual = rate * (1 + ppm * 1e-6)
    assert abs(iq.size - chips.size / actual * fs) <= 1
    # Sampled at the true rate every chip is right, up to the last one (no drift).
    np.testing.assert_array_equal(
        slice_chips(centre_freqs(iq, fs, actual, chips.size)), chips
    )


def gfsk_reference_freq(chips, rate_hz, dev_hz, bt, times_s):
    """Closed-form GFSK frequency: each chip's rectangle smoothed by a Gaussian."""
    sigma_s = math.sqrt(math.log(2)) / (2 * math.pi * bt) / rate_hz
    erf = np.vectorize(math.erf)
    edges_s = np.arange(chips.size + 1) / rate_hz
    cdf = 0.5 * (
        1 + erf((times_s[:, None] - edges_s[None, :]) / (sigma_s * math.sqrt(2)))
    )
    inside = cdf[:, :-1] - cdf[:, 1:]  # fraction of the Gaussian inside each chip
    return dev_hz * inside @ np.where(chips == HIGH_FREQ_CHIP, 1.0, -1.0)


@pytest.mark.parametrize("sample_rate_hz", [1.2e6, 2.4e6])
def test_gfsk_frequency_matches_closed_form(sample_rate_hz, rng):
    phy = get_phy("C2", "other")
    chips = rng.integers(0, 2, 120).astype(np.uint8)
    iq = modulate(
        chips,
        phy.chip_rate_hz,
        phy.deviation_hz,
        sample_rate_hz,
        gaussian_bt=phy.gaussian_bt,
    )
    freq = discriminate(iq, sample_rate_hz)
    mid_s = (np.arange(freq.size) + 0.5) / sample_rate_hz
    ref = gfsk_reference_freq(chips, phy.chip_rate_hz, phy.deviation_hz, 0.5, mid_s)
    # Ignore 3 chips at each end where the Gaussian tails are cut.
    keep = (mid_s > 3 / phy.chip_rate_hz) & (
        mid_s < (chips.size - 3) / phy.chip_rate_hz
    )
    np.testing.assert_allclose(freq[keep], ref[keep], atol=0.002 * phy.deviation_hz)
    # Gaussian shaping: no frequency step anywhere near a full 2-FSK jump.
    assert np.max(np.abs(np.diff(freq))) < 0.2 * phy.deviation_hz


def test_gfsk_long_run_reaches_full_deviation():
    chips = np.array([0] * 10 + [1] * 10, dtype=np.uint8)
    fs = 2.0e6
    iq = modulate(chips, 50e3, 25e3, fs, gaussian_bt=0.5)
    freq = centre_freqs(iq, fs, 50e3, chips.size)
    np.testing.assert_allclose(
        freq[[3, 5, 14, 16]], [-25e3, -25e3, 25e3, 25e3], atol=5.0
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"chips": [0, 1], "sample_rate_hz": 150e3}, "2 samples per chip"),
        ({"chips": [0, 1], "sample_rate_hz": 220e3, "deviation_hz": 120e3}, "aliases"),
        ({"chips": [0, 2]}, "0 and 1"),
        ({"chips": []}, "non-empty"),
        ({"chips": [0.0, 1.0]}, "integers"),
        ({"chips": [0, 1], "gaussian_bt": 0.0}, "gaussian_bt"),
        ({"chips": [0, 1], "chip_rate_hz": -1.0}, "chip_rate_hz"),
    ],
)
def test_modulate_refuses_bad_input(kwargs, match):
    args = {"chip_rate_hz": 100e3, "deviation_hz": 50e3, "sample_rate_hz": 1e6} | kwargs
    with pytest.raises(ValueError, match=match):
        modulate(args.pop("chips"), **args)


# --- whole frames -----------------------------------------------------------------


@pytest.mark.parametrize("sample_rate_hz", [1.2e6, 1.6e6, 2.4e6])
@pytest.mark.parametrize(("mode", "direction", "frame_format"), MODES)
def test_frame_round_trip_through_discriminator(
    mode, direction, frame_format, sample_rate_hz, rng
):
    phy = get_phy(mode, direction)
    frame = rng.bytes(int(rng.integers(12, 40)))
    iq = modulate_frame(
        frame, mode, direction, frame_format, sample_rate_hz, carrier_offset_hz=-20e3
    )
    expected = frame_chips(frame, phy, frame_format)
    assert abs(iq.size - expected.size / phy.chip_rate_hz * sample_rate_hz) <= 1
    freq = centre_freqs(iq, sample_rate_hz, phy.chip_rate_hz, expected.size) + 20e3
    chips = slice_chips(freq)
    np.testing.assert_array_equal(chips, expected)
    assert decode_burst_chips(chips, phy, frame_format, len(frame)) == frame


def test_modulate_frame_overrides_and_refusals():
    iq = modulate_frame(b"\x11\x22", "T1", sample_rate_hz=1.0e6, deviation_hz=40e3)
    assert np.max(np.abs(discriminate(iq, 1.0e6))) == pytest.approx(40e3, abs=5.0)
    with pytest.raises(ValueError, match="too low"):
        modulate_frame(b"\x11", "T1", sample_rate_hz=150e3)
    with pytest.raises(ValueError, match="frame format"):
        modulate_frame(b"\x11", "S1", frame_format="B")
    with pytest.raises(ValueError, match="cannot override"):
        modulate_frame(b"\x11", "C1", sync_chips="0101")
    with pytest.raises(ValueError, match="no direction"):
        modulate_frame(b"\x11", "C1", "other")


# --- compose ----------------------------------------------------------------------


def lowpass(iq: np.ndarray, cutoff_hz: float, sample_rate_hz: float) -> np.ndarray:
    """Hamming-windowed sinc FIR, 161 taps, zero delay ('same' convolution)."""
    taps = np.arange(-80, 81)
    h = 2 * cutoff_hz / sample_rate_hz * np.sinc(2 * cutoff_hz / sample_rate_hz * taps)
    h *= np.hamming(taps.size)
    return np.convolve(iq, h / h.sum(), mode="same")


def test_compose_three_channels_overlapping(rng):
    fs, centre_hz = 2.4e6, 868.95e6
    specs = [
        ("T1", "meter", "A", 4000),
        ("S1-m", "meter", "A", 1000),
        ("C2", "other", "B", 6000),
    ]
    frames = [rng.bytes(20) for _ in specs]
    bursts = [
        frame_burst(
            f,
            m,
            d,
            fmt,
            sample_rate_hz=fs,
            start_sample=start,
            carrier_offset_hz=15e3,
            gain_db=-3.0,
        )
        for f, (m, d, fmt, start) in zip(frames, specs, strict=True)
    ]
    assert [b.carrier_hz for b in bursts] == [868.965e6, 868.315e6, 869.54e6]
    mixed = compose(bursts, centre_hz, fs)
    assert mixed.size == max(b.stop_sample for b in bursts)
    for burst, frame, (mode, direction, fmt, start) in zip(
        bursts, frames, specs, strict=True
    ):
        phy = get_phy(mode, direction)
        n = np.arange(mixed.size)
        down = mixed * np.exp(-2j * np.pi * (burst.carrier_hz - centre_hz) / fs * n)
        down = lowpass(down, phy.deviation_hz + phy.chip_rate_hz, fs)
        seg = down[start : burst.stop_sample]
        expected = frame_chips(frame, phy, fmt)
        freq = centre_freqs(seg, fs, phy.chip_rate_hz, expected.size)
        # The other carriers are filtered out; this one sits at 0 Hz +- deviation.
        assert np.median(np.abs(freq)) == pytest.approx(phy.deviation_hz, rel=0.15)
        chips = slice_chips(freq)
        np.testing.assert_array_equal(chips, expected)
        assert decode_burst_chips(chips, phy, fmt, len(frame)) == frame
        power = np.mean(np.abs(mixed[start + 200 : start + 400]) ** 2)
        assert power > 0.3  # -3 dB burst is present (others may add)


def test_compose_mixes_to_the_right_frequency():
    fs, centre_hz = 2.4e6, 868.95e6
    tone = np.ones(4800, dtype=np.complex64)
    burst = Burst(tone, 100, 868.3e6, 80e3, fs)
    out = compose([burst], centre_hz, fs, n_samples=5000)
    assert out.size == 5000 and np.all(out[:100] == 0) and np.all(out[4900:] == 0)
    freq = discriminate(out[100:4900], fs)
    np.testing.assert_allclose(freq, -650e3, atol=1.0)


def test_compose_refuses_out_of_band_and_bad_bursts():
    fs = 1.2e6
    s1 = frame_burst(b"\x01\x02", "S1", sample_rate_hz=fs)
    with pytest.raises(ValueError, match="outside"):
        compose([s1], 868.95e6, fs)  # -650 kHz - 82.8 kHz is beyond -600 kHz
    assert compose([s1], 868.3e6, fs).size == s1.iq.size
    with pytest.raises(ValueError, match="sample rate|sampled"):
        compose([s1], 868.3e6, 2.4e6)
    with pytest.raises(ValueError, match="n_samples"):
        compose([s1], 868.3e6, fs, n_samples=10)
    late = Burst(s1.iq, -5, s1.carrier_hz, s1.half_band_hz, fs)
    with pytest.raises(ValueError, match="negative"):
        compose([late], 868.3e6, fs)
    assert compose([], 868.3e6, fs).size == 0


@settings(max_examples=25, deadline=None)
@given(
    chips=st.lists(st.integers(0, 1), min_size=1, max_size=200),
    sps=st.floats(2.0, 40.0),
    offset_hz=st.floats(-30e3, 30e3),
)
def test_any_sample_rate_keeps_length_and_chips(chips, sps, offset_hz):
    rate_hz, dev_hz = 32_768.0, 50e3
    fs = max(sps * rate_hz, 2.2 * (dev_hz + abs(offset_hz)))
    arr = np.array(chips, dtype=np.uint8)
    iq = modulate(arr, rate_hz, dev_hz, fs, freq_offset_hz=offset_hz)
    assert abs(iq.size - arr.size / rate_hz * fs) <= 1
    freq = centre_freqs(iq, fs, rate_hz, arr.size) - offset_hz
    np.testing.assert_allclose(np.abs(freq), dev_hz, atol=5.0)
    np.testing.assert_array_equal(slice_chips(freq), arr)
