"""Channel plan and channelizer: filters, kernel == twin, streaming == whole, tones."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from dsp.channel import Channelizer, block_dc_reference, channelize_reference
from dsp.channel_plan import (
    MIN_SAMPLE_RATE_HZ,
    RADIO_CHANNELS,
    design_lowpass,
    plan_channels,
)

CONFIGS = [
    (2.4e6, 868.95e6),
    (2.0e6, 868.95e6),
    (1.6e6, 868.625e6),
    (1.2e6, 868.625e6),
    (2.048e6, 868.9e6),
    (1.6e6, 868.95e6),
]


def _noise(rng, n, scale=0.3):
    return (scale * (rng.normal(size=n) + 1j * rng.normal(size=n))).astype(np.complex64)


def _names(fs, fc):
    return [o.channel.name for o in plan_channels(fs, fc)]


def test_plan_covers_what_the_band_holds():
    # 2.4 MS/s at 868.95 MHz: S at -650 kHz, C2 at +575 kHz, both inside +-1.2 MHz
    assert _names(2.4e6, 868.95e6) == ["S", "TC", "C2"]
    # 1.6 MS/s at 868.625 MHz: S and T/C at -+325 kHz; C2 (+900 kHz) outside
    assert _names(1.6e6, 868.625e6) == ["S", "TC"]
    # 1.6 MS/s at 868.95 MHz: S at -650 kHz needs 820 kHz > 800 kHz of half band
    assert _names(1.6e6, 868.95e6) == ["TC", "C2"]
    assert _names(1.2e6, 868.95e6) == ["TC"]
    assert _names(1.2e6, 869.9e6) == ["C2"]
    assert _names(1.2e6, 870.5e6) == []


@pytest.mark.parametrize("fs, fc", CONFIGS)
def test_plan_rates_and_filters(fs, fc):
    for out in plan_channels(fs, fc):
        passband = out.channel.passband_hz
        assert out.sample_rate_hz == pytest.approx(fs / out.decimation)
        # at least three passbands per output rate (module docstring)
        assert out.sample_rate_hz >= 3 * passband - 1e-6
        assert out.sample_rate_hz < 2 * 4 * passband
        assert abs(out.offset_hz) + passband <= fs / 2
        freqs, resp = signal.freqz(out.taps, worN=8192, fs=fs)
        gain_db = 20 * np.log10(np.abs(resp) + 1e-12)
        inside = freqs <= passband
        # passband flat to a fraction of a dB, aliases of the passband >= 45 dB down
        assert np.all(np.abs(gain_db[inside]) < 0.5)
        alias = freqs >= out.sample_rate_hz - passband
        assert np.all(gain_db[alias] < -45)
        assert out.dc_block == (abs(out.offset_hz) < passband)


def test_design_lowpass_has_unit_dc_gain_and_rejects_bad_rates():
    taps = design_lowpass(2.4e6, 180e3, 600e3)
    assert taps.dtype == np.float32
    assert float(taps.sum()) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="transition"):
        design_lowpass(2.4e6, 300e3, 600e3)


@pytest.mark.parametrize("fs, fc", CONFIGS)
def test_kernel_matches_reference_in_random_chunks(fs, fc, rng):
    outs = plan_channels(fs, fc)
    x = _noise(rng, 20_011)
    chan = Channelizer(fs, outs)
    parts, pos = [], 0
    while pos < x.size:
        n = int(rng.integers(0, 2500))
        parts.append(chan.process(x[pos : pos + n]))
        pos += n
    for k, out in enumerate(outs):
        got = np.concatenate([p[k] for p in parts])
        want = channelize_reference(x, out, fs)
        if out.dc_block:
            want = block_dc_reference(want)
        assert got.size == want.size == x.size // out.decimation
        # float32 accumulation over <= 60 taps of values ~1: 1e-5 absolute
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("sizes", [[0, 0, 1, 1, 1], [1] * 37, [3, 5, 7, 11, 13]])
def test_edge_sizes_give_the_same_stream(sizes, rng):
    fs, fc = 2.4e6, 868.95e6
    x = _noise(rng, sum(sizes))
    whole = Channelizer(fs, plan_channels(fs, fc)).process(x)
    chan = Channelizer(fs, plan_channels(fs, fc))
    parts, pos = [], 0
    for n in sizes:
        parts.append(chan.process(x[pos : pos + n]))
        pos += n
    for k, ref in enumerate(whole):
        np.testing.assert_array_equal(np.concatenate([p[k] for p in parts]), ref)


@pytest.mark.parametrize("fs, fc", CONFIGS)
def test_a_tone_comes_out_at_its_offset_with_unit_amplitude(fs, fc):
    """A carrier at channel + 37 kHz appears in every channel at +37 kHz, at 0 dBFS."""
    n = 1 << 15
    t = np.arange(n) / fs
    for out in plan_channels(fs, fc):
        x = np.exp(2j * np.pi * (out.offset_hz + 37e3) * t).astype(np.complex64)
        z = Channelizer(fs, [out]).process(x)[0][200:]
        spectrum = np.abs(np.fft.fft(z * np.hanning(z.size)))
        peak_hz = np.fft.fftfreq(z.size, 1 / out.sample_rate_hz)[np.argmax(spectrum)]
        assert peak_hz - out.nco_error_hz == pytest.approx(
            37e3, abs=out.sample_rate_hz / z.size
        )
        assert np.mean(np.abs(z) ** 2) == pytest.approx(1.0, rel=0.02)


def test_dc_offset_is_removed_where_the_channel_holds_0_hz():
    fs, fc = 2.4e6, 868.95e6
    outs = plan_channels(fs, fc)
    x = np.full(240_000, 0.2 - 0.1j, dtype=np.complex64)
    for z in Channelizer(fs, outs).process(x):
        # T/C holds 0 Hz: blocked; S and C2 see it far outside their passband
        assert np.abs(z[-1000:]).max() < 1e-3


def test_nco_table_error_is_reported_for_odd_rates():
    outs = plan_channels(2_400_017.0, 868.95e6)
    s_chan = next(o for o in outs if o.channel.name == "S")
    # rounded to a 2**16-entry table: at most half a step of 2.4e6 / 65536 Hz
    assert 0 < abs(s_chan.nco_error_hz) <= 2_400_017.0 / 65536 / 2 + 1e-9
    assert all(o.nco_error_hz == 0 for o in plan_channels(2.4e6, 868.95e6))


def test_wrong_dtype_is_a_value_error():
    chan = Channelizer(2.4e6, plan_channels(2.4e6, 868.95e6))
    with pytest.raises(ValueError, match="complex64"):
        chan.process(np.zeros(10, dtype=np.complex128))
    with pytest.raises(ValueError, match="complex64"):
        chan.process(np.zeros((2, 5), dtype=np.complex64))


def test_constants_are_consistent():
    # the narrowest channel, the C2 downlink (+-130 kHz), just fits with its filter
    assert round(MIN_SAMPLE_RATE_HZ) == 273_000
    assert [c.channel_hz for c in RADIO_CHANNELS] == [868.3e6, 868.95e6, 869.525e6]
