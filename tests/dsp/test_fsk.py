"""2-FSK demodulation: tone correlators, coherent detection, soft line decoding.

Kernels are held equal to their plain twins; the detectors are checked on clean
chips from our own modulator (dsp.modulator) and on known sums.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.fsk import (
    coherent_soft,
    coherent_soft_reference,
    header_metric,
    header_metric_reference,
    tone_prefix,
    tone_prefix_reference,
    window_sums,
)
from dsp.linecode import CODE_3OF6, encode_3of6, encode_manchester, encode_nrz
from dsp.modulator import modulate
from dsp.softline import (
    CHIPS_PER_BYTE,
    decode_soft,
    decode_soft_3of6,
    decode_soft_manchester,
    decode_soft_nrz,
)
from dsp.timing import correlate_chips


def _noise(rng, n):
    return (rng.normal(size=n) + 1j * rng.normal(size=n)).astype(np.complex64)


@pytest.mark.parametrize("n", [0, 1, 255, 256, 257, 3001])
@pytest.mark.parametrize("freq", [0.0, 0.0831, -0.25, 0.4999])
def test_tone_prefix_matches_reference(rng, n, freq):
    z = _noise(rng, n)
    got = tone_prefix(z, freq, start=123_457)
    want = tone_prefix_reference(z, freq, start=123_457)
    assert got.shape == (n + 1,)
    # phasor recurrence re-anchored every 256 samples: 1e-9 relative is ample
    np.testing.assert_allclose(got, want, atol=1e-9 * max(n, 1), rtol=0)


def test_tone_prefix_phase_is_absolute(rng):
    """Prefix sums of two spans of one stream give the same correlator."""
    z = _noise(rng, 1000)
    whole = tone_prefix(z, 0.1, start=5000)
    part = tone_prefix(z[300:], 0.1, start=5300)
    a = whole[700] - whole[400]
    b = part[400] - part[100]
    assert a == pytest.approx(b, abs=1e-9)


def test_tone_prefix_rejects_other_dtypes():
    with pytest.raises(ValueError, match="complex64"):
        tone_prefix(np.zeros(4, dtype=np.complex128), 0.1)


def test_window_sums_interpolate_partial_samples():
    prefix = np.concatenate([[0], np.cumsum(np.arange(1, 11))]).astype(np.complex128)
    # whole samples 2..4 hold 3 + 4 + 5; half of sample 1 (value 2) adds 1
    assert window_sums(prefix, 2, 5) == pytest.approx(12)
    assert window_sums(prefix, 1.5, 5) == pytest.approx(13)
    np.testing.assert_allclose(window_sums(prefix, [0, 9], [1, 10]), [1, 10])


def test_a_tone_correlator_peaks_at_its_own_frequency():
    n = 64
    z = np.exp(2j * np.pi * 0.1 * np.arange(n)).astype(np.complex64)
    energies = [
        abs(window_sums(tone_prefix(z, f), 0, n)) ** 2
        for f in (0.05, 0.09, 0.1, 0.11, 0.15)
    ]
    assert int(np.argmax(energies)) == 2
    assert energies[2] == pytest.approx(n * n, rel=1e-6)


def test_header_metric_matches_reference(rng):
    z = _noise(rng, 600)
    p1, p0 = tone_prefix(z, 0.08), tone_prefix(z, -0.08)
    signs = np.where(rng.integers(0, 2, 34) == 1, 1.0, -1.0)
    ends = 400 + rng.uniform(-3, 3, 25)
    periods = 6 + rng.uniform(-0.2, 0.2, 25)
    got = header_metric(p1, p0, ends, periods, signs)
    want = header_metric_reference(p1, p0, ends, periods, signs)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-9)


def _chip_correlators(chips, sps=8.0, dev=0.125, noise=0.0, seed=0):
    """Modulate chips (dev in cycles/sample; h = 2 dev sps) and correlate each chip
    over its exact window."""
    iq = modulate(chips, 1.0, dev * sps, sps, start_phase_rad=0.7)
    if noise:
        iq = iq + noise * _noise(np.random.default_rng(seed), iq.size)
    iq = iq.astype(np.complex64)
    times = np.arange(chips.size) * sps
    return correlate_chips(iq, 0, dev, -dev, times, sps)


def test_coherent_soft_matches_reference_and_the_chips(rng):
    chips = rng.integers(0, 2, 400).astype(np.uint8)
    track = _chip_correlators(chips, noise=0.3)
    got = coherent_soft(track.y_one, track.y_zero, chips[:40])
    want = coherent_soft_reference(track.y_one, track.y_zero, chips[:40])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    assert np.array_equal(got > 0, chips == 1)


def test_coherent_manchester_matches_reference_and_the_bits(rng):
    bits = rng.integers(0, 2, 200).astype(np.uint8)
    known = np.tile(np.array([0, 1], dtype=np.uint8), 20)
    chips = np.concatenate([known, encode_manchester(bits)])
    track = _chip_correlators(chips, noise=0.3)
    got = coherent_soft(track.y_one, track.y_zero, known, manchester=True)
    want = coherent_soft_reference(track.y_one, track.y_zero, known, manchester=True)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    data = got[known.size :]
    assert np.array_equal(data[1::2] > data[0::2], bits == 1)


def test_coherent_beats_square_law_in_noise():
    """Same correlators, same noise: the coherent chips have fewer errors."""
    rng = np.random.default_rng(7)
    chips = rng.integers(0, 2, 4000).astype(np.uint8)
    # h = 1 (T/C-like); noise for about Ec/N0 = 6 dB
    track = _chip_correlators(
        chips, sps=8.0, dev=1 / 16, noise=0.25 * np.sqrt(8), seed=3
    )
    coherent = coherent_soft(track.y_one, track.y_zero, chips[:40])
    errors_coherent = np.count_nonzero((coherent[40:] > 0) != (chips[40:] == 1))
    errors_square = np.count_nonzero((track.soft[40:] > 0) != (chips[40:] == 1))
    assert errors_coherent < 0.8 * errors_square


def test_coherent_soft_rejects_bad_shapes():
    y = np.zeros(10, dtype=np.complex128)
    with pytest.raises(ValueError):
        coherent_soft(y, y[:5], np.zeros(3, np.uint8))
    with pytest.raises(ValueError):
        coherent_soft(y, y, np.zeros(1, np.uint8))


# -- soft line decoding --------------------------------------------------------------
def _soft(chips, rng, noise=0.0):
    return np.where(np.asarray(chips) == 1, 1.0, -1.0) + noise * rng.normal(
        size=len(chips)
    )


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=1, max_size=40))
def test_soft_decoders_invert_the_line_codes(data):
    rng = np.random.default_rng(len(data))
    bits = np.unpackbits(np.frombuffer(data, np.uint8))
    assert decode_soft_nrz(_soft(encode_nrz(bits), rng)) == (data, 0)
    assert decode_soft_manchester(_soft(encode_manchester(bits), rng)) == (data, 0)
    assert decode_soft_3of6(_soft(encode_3of6(data), rng)) == (data, 0)


def test_3of6_picks_the_nearest_code_word():
    word = [int(c) for c in f"{CODE_3OF6[0x9]:06b}"]  # 100101
    soft = np.array(_soft(word * 2, np.random.default_rng(0)))
    soft[0] = -0.1  # chip 1 of the high nibble weakly wrong: 000101 is no code word
    data, n_invalid = decode_soft_3of6(soft)
    assert data == bytes([0x99])
    assert n_invalid == 1


def test_manchester_counts_invalid_pairs():
    soft = np.array([-1, 1, 1, 1, -1, -1, 1, -1] * 2, dtype=float)  # 01 11 00 10
    data, n_invalid = decode_soft_manchester(soft)
    assert n_invalid == 4
    assert len(data) == 1


@pytest.mark.parametrize("code, per_byte", sorted(CHIPS_PER_BYTE.items()))
def test_decode_soft_checks_lengths(code, per_byte):
    with pytest.raises(ValueError, match="multiple"):
        decode_soft(np.zeros(per_byte + 1), code)
    assert decode_soft(np.ones(per_byte), code)[0] != b""
    with pytest.raises(ValueError, match="unknown line code"):
        decode_soft(np.zeros(8), "4b5b")
