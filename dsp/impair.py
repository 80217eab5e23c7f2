"""Channel model for tests and benchmarks: noise, offsets, clock errors, imbalance.

Every function takes a complex baseband ``iq`` (1-D, any complex dtype) and returns a
new complex64 array; the input is never modified.  Randomness comes only from the
``numpy.random.Generator`` passed in, so a fixed seed gives identical output.

Typical chain (the order a real receiver sees)::

    compose(bursts) -> scale_power -> shift_frequency (LO error) -> add_awgn
        -> apply_clock_offset (ADC clock) -> apply_iq_imbalance -> add_dc_offset

The meter's own chip-rate error is a modulator parameter
(``dsp.modulator.modulate(..., chip_rate_error_ppm=...)``); overlapping telegrams are
built with ``place_bursts`` / ``add_burst`` or ``dsp.modulator.compose``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = [
    "add_awgn",
    "noise_variance",
    "shift_frequency",
    "apply_clock_offset",
    "add_dc_offset",
    "apply_iq_imbalance",
    "scale_power",
    "place_bursts",
    "add_burst",
]

# Windowed-sinc interpolator for the clock offset: 32 taps, Kaiser beta 8.  Measured
# error on a unit tone: below -70 dB up to 0.4 * sample rate (it fails near Nyquist).
_SINC_TAPS = 32
_KAISER_BETA = 8.0
_BLOCK_SAMPLES = 1 << 15
# Fractional-delay resolution of the tabulated interpolator (rows of _sinc_table).
_TABLE_PHASES = 512


def _as_iq(iq: npt.ArrayLike) -> npt.NDArray[np.complexfloating]:
    arr = np.asarray(iq)
    if arr.ndim != 1:
        raise ValueError(f"iq must be a 1-D array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"iq must be complex (complex64), got dtype {arr.dtype}")
    return arr


def noise_variance(
    ebn0_db: float, bit_rate_bps: float, sample_rate_hz: float, signal_power: float
) -> float:
    """Complex noise variance E|n|^2 giving ``ebn0_db`` (definition in ``add_awgn``).

    Returns
    -------
    float
        signal_power / bit_rate_bps / 10**(ebn0_db / 10) * sample_rate_hz.
    """
    eb = signal_power / bit_rate_bps  # energy per information bit, (power units) * s
    n0 = eb / 10.0 ** (ebn0_db / 10.0)  # one-sided noise density, (power units) / Hz
    return n0 * sample_rate_hz


def add_awgn(
    iq: npt.ArrayLike,
    ebn0_db: float,
    bit_rate_bps: float,
    sample_rate_hz: float,
    rng: np.random.Generator,
    signal_power: float | None = None,
) -> npt.NDArray[np.complex64]:
    """Add complex white Gaussian noise at a given Eb/N0.

    Definition: Eb = signal power / information bit rate (``Phy.bit_rate_bps``: 16.384
    kbit/s for S, 66.67 kbit/s for T, 100 kbit/s for C1); N0 = complex noise variance
    / sample rate, so the noise variance is N0 * sample_rate_hz, split equally between
    I and Q.  The noise is white over the whole sampled band; a receiver's channel
    filter then sets the SNR it sees.

    Parameters
    ----------
    iq : array_like of complex, shape (n,)
        Signal.
    ebn0_db : float
        Eb/N0, dB.
    bit_rate_bps : float
        Information bit rate, bit/s.
    sample_rate_hz : float
        Sample rate of ``iq``, Hz.
    rng : numpy.random.Generator
        Source of the noise (seed it for repeatable output).
    signal_power : float or None
        Signal power, mean |x|^2 while the signal is on.  None measures mean(|iq|^2)
        over the whole array, which is too low when ``iq`` holds silence between
        bursts: pass 1.0 for our unit-amplitude modulator output.

    Returns
    -------
    numpy.ndarray of complex64, shape (n,)

    Raises
    ------
    ValueError
        Non-complex or non-1-D ``iq``, non-positive rates or signal power, or an
        all-zero signal with ``signal_power=None``.
    """
    arr = _as_iq(iq)
    if not (bit_rate_bps > 0 and sample_rate_hz > 0):
        raise ValueError("bit_rate_bps and sample_rate_hz must be positive")
    if signal_power is None:
        signal_power = float(np.mean(np.abs(arr) ** 2)) if arr.size else 0.0
    if not 0 < signal_power < math.inf:
        raise ValueError(
            f"signal power must be positive, got {signal_power!r}; pass "
            "signal_power= for a silent or empty array"
        )
    sigma = math.sqrt(
        noise_variance(ebn0_db, bit_rate_bps, sample_rate_hz, signal_power) / 2
    )
    noise = rng.normal(0.0, sigma, size=(arr.size, 2))
    return (arr + (noise[:, 0] + 1j * noise[:, 1])).astype(np.complex64)


def shift_frequency(
    iq: npt.ArrayLike,
    freq_offset_hz: float,
    sample_rate_hz: float,
    start_phase_rad: float = 0.0,
) -> npt.NDArray[np.complex64]:
    """Multiply by exp(j (2 pi freq_offset_hz n / sample_rate_hz + start_phase_rad)).

    A positive offset moves every component up by ``freq_offset_hz`` Hz.

    Raises
    ------
    ValueError
        Non-complex or non-1-D ``iq``, or a non-positive sample rate.
    """
    arr = _as_iq(iq)
    if not sample_rate_hz > 0:
        raise ValueError(f"sample_rate_hz must be positive, got {sample_rate_hz!r}")
    cycles = np.mod(np.arange(arr.size) * (freq_offset_hz / sample_rate_hz), 1.0)
    return (arr * np.exp(1j * (2 * np.pi * cycles + start_phase_rad))).astype(
        np.complex64
    )


def _sinc_table() -> npt.NDArray[np.float64]:
    """Interpolator weights: fractional delays 0, 1/P, ..., 1 as rows, taps as columns.

    Kaiser-windowed sinc, each row normalised to unit DC gain; between two rows the
    weights are blended linearly, keeping the delay error far below the window's own.
    """
    half = _SINC_TAPS // 2
    taps = np.arange(-half + 1, half + 1)
    frac = np.arange(_TABLE_PHASES + 1)[:, None] / _TABLE_PHASES
    dist = frac - taps  # distance of each tap from the wanted position, samples
    window = np.i0(
        _KAISER_BETA * np.sqrt(np.clip(1.0 - (dist / (half + 1)) ** 2, 0.0, None))
    )
    weights = np.sinc(dist) * window
    return weights / weights.sum(axis=1, keepdims=True)


def apply_clock_offset(
    iq: npt.ArrayLike, clock_offset_ppm: float
) -> npt.NDArray[np.complex64]:
    """Resample as a receiver whose sample clock runs ``clock_offset_ppm`` fast would.

    With eps = clock_offset_ppm * 1e-6, output sample m is the input interpolated at
    position m / (1 + eps) (32-tap Kaiser-windowed sinc, unit gain at DC); the input is
    taken as zero outside its ends.  A positive offset therefore yields n * (1 + eps)
    samples for the same duration, and a tone at f Hz appears at f / (1 + eps) Hz; chips
    look longer by the same factor.

    Returns
    -------
    numpy.ndarray of complex64, shape (ceil(n * (1 + eps)),)

    Raises
    ------
    ValueError
        Non-complex or non-1-D ``iq``, or an offset <= -1e6 ppm.
    """
    arr = _as_iq(iq).astype(np.complex128)
    ratio = 1.0 + clock_offset_ppm * 1e-6
    if not 0 < ratio < math.inf:
        raise ValueError(f"clock offset {clock_offset_ppm} ppm is not physical")
    if arr.size == 0 or clock_offset_ppm == 0:
        return arr.astype(np.complex64)
    n_out = math.ceil(
        arr.size * ratio - 1e-9
    )  # same duration: n / fs = n_out / (fs * ratio)
    half = _SINC_TAPS // 2
    padded = np.concatenate([np.zeros(half), arr, np.zeros(half + 2)])
    taps = np.arange(-half + 1, half + 1) + half  # column offsets into `padded`
    table = _sinc_table()
    out = np.empty(n_out, dtype=np.complex128)
    for lo in range(0, n_out, _BLOCK_SAMPLES):
        pos = np.arange(lo, min(lo + _BLOCK_SAMPLES, n_out)) / ratio
        base = np.floor(pos).astype(np.int64)
        phase = (pos - base) * _TABLE_PHASES
        row = np.minimum(phase.astype(np.int64), _TABLE_PHASES - 1)
        blend = (phase - row)[:, None]
        weights = (1.0 - blend) * table[row] + blend * table[row + 1]
        out[lo : lo + pos.size] = (padded[base[:, None] + taps] * weights).sum(axis=1)
    return out.astype(np.complex64)


def add_dc_offset(iq: npt.ArrayLike, dc_offset: complex) -> npt.NDArray[np.complex64]:
    """Add a constant ``dc_offset`` (units of ``iq``), as a zero-IF tuner does.

    Raises
    ------
    ValueError
        Non-complex or non-1-D ``iq``.
    """
    return (_as_iq(iq) + complex(dc_offset)).astype(np.complex64)


def apply_iq_imbalance(
    iq: npt.ArrayLike, gain_db: float, phase_deg: float
) -> npt.NDArray[np.complex64]:
    """Receiver IQ imbalance: the Q branch has extra gain and a phase error.

    Model: I' = I, Q' = g * Im(exp(-j phi) x) = g (Q cos phi - I sin phi), with
    g = 10**(gain_db / 20) and phi = phase_deg in degrees.  Equivalently
    y = mu x + nu conj(x) with mu = (1 + g e^{-j phi}) / 2, nu = (1 - g e^{j phi}) / 2:
    a tone at f gains an image at -f, |nu / mu| below it.

    Raises
    ------
    ValueError
        Non-complex or non-1-D ``iq``.
    """
    arr = _as_iq(iq).astype(np.complex128)
    gain = 10.0 ** (gain_db / 20.0)
    rotated = arr * np.exp(-1j * math.radians(phase_deg))
    return (arr.real + 1j * gain * rotated.imag).astype(np.complex64)


def scale_power(iq: npt.ArrayLike, gain_db: float) -> npt.NDArray[np.complex64]:
    """Scale the power by ``gain_db`` dB (amplitude by 10**(gain_db / 20)).

    Raises
    ------
    ValueError
        Non-complex or non-1-D ``iq``.
    """
    return (_as_iq(iq) * 10.0 ** (gain_db / 20.0)).astype(np.complex64)


def place_bursts(
    lengths: Sequence[int], gaps_samples: Sequence[int] | int, start_sample: int = 0
) -> list[int]:
    """Start samples for bursts laid end to end with gaps; a negative gap overlaps them.

    Parameters
    ----------
    lengths : sequence of int
        Burst lengths, samples.
    gaps_samples : int or sequence of int
        Gap after each burst before the next, samples (len(lengths) - 1 values, or one
        value for all).  -0.5 * length of the previous burst overlaps half of it.
    start_sample : int
        Start of the first burst, samples.

    Returns
    -------
    list of int
        Start sample of each burst.

    Raises
    ------
    ValueError
        A negative length, a wrong number of gaps, or a burst that would start before 0
        or before the previous burst's start.
    """
    gaps = (
        [int(gaps_samples)] * max(len(lengths) - 1, 0)
        if isinstance(gaps_samples, (int, np.integer))
        else [int(g) for g in gaps_samples]
    )
    if len(gaps) != max(len(lengths) - 1, 0):
        raise ValueError(f"need {max(len(lengths) - 1, 0)} gaps, got {len(gaps)}")
    if any(n < 0 for n in lengths) or start_sample < 0:
        raise ValueError("lengths and start_sample must be non-negative")
    starts = [int(start_sample)]
    for length, gap in zip(lengths[:-1], gaps, strict=True):
        nxt = starts[-1] + int(length) + gap
        if nxt < starts[-1]:
            raise ValueError(f"gap {gap} makes a burst start before the previous one")
        starts.append(nxt)
    return starts[: len(lengths)]


def add_burst(
    iq: npt.ArrayLike, burst_iq: npt.ArrayLike, start_sample: int, gain_db: float = 0.0
) -> npt.NDArray[np.complex64]:
    """Return ``iq`` plus ``burst_iq`` (scaled by ``gain_db``) from ``start_sample`` on.

    Use it for an interferer on top of a wanted telegram; bursts may overlap.

    Raises
    ------
    ValueError
        Non-complex or non-1-D arrays, or a burst that does not fit inside ``iq``.
    """
    out = _as_iq(iq).astype(np.complex64, copy=True)
    burst = _as_iq(burst_iq)
    if start_sample < 0 or start_sample + burst.size > out.size:
        raise ValueError(
            f"burst of {burst.size} samples at {start_sample} does not fit in "
            f"{out.size} samples"
        )
    out[start_sample : start_sample + burst.size] += (
        burst * 10.0 ** (gain_db / 20.0)
    ).astype(np.complex64)
    return out
