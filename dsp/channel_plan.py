"""Channel plan: which wM-Bus channels an input holds, and how each is extracted.

Default tuning, 868.95 MHz at 2.4 MS/s, holds all three channels::

      |-------------------------- 2.4 MHz --------------------------|
            S 868.3                T/C 868.95          C2 869.525
            -650 kHz               0 kHz               +575 kHz

Each channel keeps a passband wide enough for its tones (carrier +- deviation), the
chip-rate main lobe and a meter carrier offset of +-80 kHz: 170 kHz (S), 180 kHz
(T/C), 130 kHz (C2), one-sided.  A channel is received when that passband lies
inside the sampled band.  Its output rate fs / D is the highest integer decimation
giving at least three (C2: four) times the passband, so the low-pass (Kaiser window,
50 dB) can have a wide transition band and few taps: aliases of the band edge stay
outside the passband after decimation.

The mixer is a table of exp(-2 pi j q k / P), with q / P the channel offset over
the sample rate (exact when both are whole numbers of Hz and P <= 2**16, otherwise
rounded to a 2**16-entry table: at most 20 Hz error at 2.4 MS/s, reported as
``ChannelOutput.nco_error_hz`` so that carrier offsets stay exact).

Sources: ../shared/docs/wmbus-reference.md 1.1 (channels, deviations); Kaiser's
window design formulas (Oppenheim & Schafer, Discrete-Time Signal Processing, 7.6).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

__all__ = [
    "RadioChannel",
    "RADIO_CHANNELS",
    "ChannelOutput",
    "plan_channels",
    "design_lowpass",
    "nco_table",
    "MIN_SAMPLE_RATE_HZ",
]

# Largest meter carrier offset the receiver must tolerate (issue 4: +-80 kHz).
_MAX_CFO_HZ = 80_000.0
# Output rate at least this many passbands: leaves a transition band of one passband
# or more.  The C2 downlink's narrow passband would allow a lower rate, but its
# filter would then need many more taps; it is rarely on air, so its rate is kept up.
_RATE_PER_PASSBAND = {"S": 3.0, "TC": 3.0, "C2": 4.0}
# Stop-band attenuation of the channel filters, dB.
_STOPBAND_DB = 50.0
# Largest exact NCO period; beyond it the offset is rounded to a table of this size.
_MAX_NCO_PERIOD = 1 << 16


@dataclass(frozen=True, slots=True)
class RadioChannel:
    """One wM-Bus radio channel and the receiver chains it carries.

    Attributes
    ----------
    name : str
        "S" (868.3 MHz), "TC" (868.95 MHz) or "C2" (869.525 MHz).
    channel_hz : float
        Nominal channel centre, Hz (EN 13757-4, reference 1.1).
    passband_hz : float
        One-sided passband kept around the centre, Hz: deviation + about half the
        chip rate + the largest carrier offset.
    phys : tuple of str
        Receiver chains on this channel ("S"; "T" and "C"; "C2").
    """

    name: str
    channel_hz: float
    passband_hz: float
    phys: tuple[str, ...]


# Passbands: S 50 kHz deviation + 33 kHz (32.768 kcps main lobe) + 80 kHz offset;
# T/C 50 + 50 + 80; C2 downlink 25 kHz GFSK + 25 + 80 (reference 1.1).
RADIO_CHANNELS: tuple[RadioChannel, ...] = (
    RadioChannel("S", 868_300_000.0, 50e3 + 40e3 + _MAX_CFO_HZ, ("S",)),
    RadioChannel("TC", 868_950_000.0, 50e3 + 50e3 + _MAX_CFO_HZ, ("T", "C")),
    RadioChannel("C2", 869_525_000.0, 25e3 + 25e3 + _MAX_CFO_HZ, ("C2",)),
)

# A channel's filter needs a transition band of at least this share of its passband
# (at decimation 1 the stop band starts at the input rate minus the passband).
_MIN_TRANSITION = 0.1

#: Lowest input rate the receiver accepts: the narrowest channel (C2 downlink) just
#: fits, centred.  A channel is received when its passband lies inside the sampled
#: band with room for its filter: S and T/C need 357 and 378 kS/s centred on them;
#: 868.625 MHz at 1.6 MS/s holds both, 868.95 MHz at 2.4 MS/s all three.
MIN_SAMPLE_RATE_HZ = (2.0 + _MIN_TRANSITION) * min(
    c.passband_hz for c in RADIO_CHANNELS
)


@dataclass(frozen=True, slots=True)
class ChannelOutput:
    """How one channel is extracted from the input stream.

    Attributes
    ----------
    channel : RadioChannel
    offset_hz : float
        Channel centre minus input centre frequency, Hz (exact).
    nco_error_hz : float
        Mixer frequency minus ``offset_hz``, Hz (0 when the NCO table is exact).  A
        carrier at ``channel_hz + x`` appears in the channel at ``x - nco_error_hz``.
    decimation : int
        Input samples per output sample.
    sample_rate_hz : float
        Output rate, Hz.
    taps : numpy.ndarray of float32
        Low-pass filter, unit gain at DC.
    dc_block : bool
        True when the passband holds the input's 0 Hz (a DC blocker runs).
    """

    channel: RadioChannel
    offset_hz: float
    nco_error_hz: float
    decimation: int
    sample_rate_hz: float
    taps: npt.NDArray[np.float32]
    dc_block: bool

    def input_time(self, channel_time: float) -> float:
        """Input sample time (samples) of a channel sample time (samples, may be
        fractional): the filter's group delay is removed."""
        delay = (self.taps.size - 1) / 2.0
        return channel_time * self.decimation + self.decimation - 1 - delay


def design_lowpass(
    sample_rate_hz: float, passband_hz: float, out_rate_hz: float
) -> npt.NDArray[np.float32]:
    """Kaiser-window low-pass keeping ``passband_hz`` and rejecting its aliases.

    Parameters
    ----------
    sample_rate_hz : float
        Input rate, Hz.
    passband_hz : float
        One-sided passband edge, Hz.
    out_rate_hz : float
        Rate after decimation, Hz; must exceed 2 * passband_hz.  The stop band starts
        at ``out_rate_hz - passband_hz``, the first frequency that folds into the
        passband.

    Returns
    -------
    numpy.ndarray of float32, shape (n_taps,)
        Taps with unit DC gain.

    Raises
    ------
    ValueError
        If the output rate leaves no transition band.
    """
    stop_hz = out_rate_hz - passband_hz
    if not stop_hz > passband_hz:
        raise ValueError(
            f"output rate {out_rate_hz:.0f} Hz leaves no transition band for a "
            f"{passband_hz:.0f} Hz passband"
        )
    n_taps, beta = _kaiser_order(_STOPBAND_DB, (stop_hz - passband_hz) / sample_rate_hz)
    cutoff = (passband_hz + stop_hz) / 2.0 / sample_rate_hz  # cycles per sample
    centred = np.arange(n_taps) - (n_taps - 1) / 2.0
    taps = 2.0 * cutoff * np.sinc(2.0 * cutoff * centred) * np.kaiser(n_taps, beta)
    return (taps / taps.sum()).astype(np.float32)


def _kaiser_order(atten_db: float, width_cycles: float) -> tuple[int, float]:
    """Taps and Kaiser beta for a stop band ``atten_db`` down after a transition
    ``width_cycles`` wide (cycles per sample): Kaiser's formulas, as in Oppenheim &
    Schafer, Discrete-Time Signal Processing, 7.6.  (Written here rather than taken
    from scipy.signal: that import alone costs ~70 MB of memory.)"""
    if atten_db > 50:
        beta = 0.1102 * (atten_db - 8.7)
    elif atten_db > 21:
        beta = 0.5842 * (atten_db - 21) ** 0.4 + 0.07886 * (atten_db - 21)
    else:
        beta = 0.0
    n_taps = int(np.ceil((atten_db - 7.95) / (2.285 * 2 * np.pi * width_cycles) + 1))
    return n_taps, beta


def nco_table(
    offset_hz: float, sample_rate_hz: float
) -> tuple[npt.NDArray[np.complex64], float]:
    """Mixer table exp(-2 pi j q k / P), k < P, and its frequency error, Hz.

    Parameters
    ----------
    offset_hz : float
        Frequency to mix down by, Hz.
    sample_rate_hz : float
        Input rate, Hz.

    Returns
    -------
    table : numpy.ndarray of complex64, shape (P,)
        One period of the mixer, P <= 2**16.
    error_hz : float
        Mixer frequency minus ``offset_hz``, Hz (0 when q / P is exact).
    """
    ratio = Fraction(offset_hz / sample_rate_hz).limit_denominator(_MAX_NCO_PERIOD)
    if abs(float(ratio) * sample_rate_hz - offset_hz) > 1e-6:
        ratio = Fraction(
            round(offset_hz / sample_rate_hz * _MAX_NCO_PERIOD), _MAX_NCO_PERIOD
        )
    period, step = ratio.denominator, ratio.numerator
    k = np.arange(period, dtype=np.int64)
    cycles = ((k * step) % period) / period  # exact integer reduction, then float
    table = np.exp(-2j * np.pi * cycles).astype(np.complex64)
    return table, float(ratio) * sample_rate_hz - offset_hz


def plan_channels(
    sample_rate_hz: float, center_freq_hz: float, names: tuple[str, ...] | None = None
) -> list[ChannelOutput]:
    """The radio channels whose passband lies inside the sampled band, and how to
    extract each.

    Parameters
    ----------
    sample_rate_hz : float
        Input rate, Hz.
    center_freq_hz : float
        Input centre frequency, Hz.
    names : tuple of str or None
        Radio channel names to consider ("S", "TC", "C2"); None for all.

    Returns
    -------
    list of ChannelOutput
        In the order of ``RADIO_CHANNELS``; channels outside the band are left out.
    """
    out = []
    for chan in RADIO_CHANNELS:
        if names is not None and chan.name not in names:
            continue
        offset_hz = chan.channel_hz - center_freq_hz
        if abs(offset_hz) + chan.passband_hz > sample_rate_hz / 2.0:
            continue
        if sample_rate_hz < (2.0 + _MIN_TRANSITION) * chan.passband_hz:
            continue  # no room for the channel filter's transition band
        min_rate_hz = _RATE_PER_PASSBAND[chan.name] * chan.passband_hz
        decim = max(1, int(sample_rate_hz // min_rate_hz))
        rate = sample_rate_hz / decim
        taps = design_lowpass(sample_rate_hz, chan.passband_hz, rate)
        _, nco_error = nco_table(offset_hz, sample_rate_hz)
        dc_block = abs(offset_hz) < chan.passband_hz
        out.append(
            ChannelOutput(chan, offset_hz, nco_error, decim, rate, taps, dc_block)
        )
    return out
