"""Transmit side: link-layer frame bytes -> chips -> continuous-phase 2-FSK baseband.

Signal picture::

    frame (bytes, CRCs in) --frame_chips--> chips (uint8 0/1, one per 1/chip_rate_hz)
        --modulate--> iq (complex64, |iq| = 1, any sample_rate_hz, centred on carrier)
        --Burst / compose--> one complex64 baseband at center_freq_hz, many carriers

Chip k occupies the time [k, k+1) / chip_rate_hz exactly; sample n is taken at
n / sample_rate_hz.  The phase is the closed-form integral of the instantaneous
frequency evaluated at each sample time, so there is no accumulated timing drift for
any ratio of sample rate to chip rate (1.6 MS/s / 32.768 kcps = 48.83 samples per chip
works as well as 2.0 MS/s / 100 kcps = 20)::

    freq(t) = freq_offset_hz + deviation_hz * sum_k s_k * p(t - (k + 1/2) T)
    phase(t) = start_phase_rad + 2 pi * integral_0^t freq
    s_k = +1 for chip HIGH_FREQ_CHIP (dsp.modes), -1 otherwise (swapped by invert=True)
    p = rectangle of one chip (2-FSK), or that rectangle convolved with a Gaussian of
        standard deviation sqrt(ln 2) / (2 pi BT) chips (GFSK, gaussian_bt = BT)

Between chips the frequency is continuous (GFSK) or steps (2-FSK), the phase always is
continuous.  Before the first and after the last chip the burst ends: GFSK tails outside
[0, n_chips) are cut.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from dsp.linecode import encode_line
from dsp.modes import HIGH_FREQ_CHIP, Phy, get_phy, header_chips

__all__ = [
    "DEFAULT_SAMPLE_RATE_HZ",
    "frame_chips",
    "modulate",
    "modulate_frame",
    "Burst",
    "frame_burst",
    "compose",
]

# rtl_433's usual rate for 868 MHz wM-Bus (1.6 MS/s covers T/C at 868.95 MHz alone).
DEFAULT_SAMPLE_RATE_HZ = 1_600_000.0

# Samples processed per block in the GFSK phase computation (bounds memory).
_BLOCK_SAMPLES = 1 << 14
# Resolution of the tabulated Gaussian phase step, in chips.
_STEP_GRID_CHIPS = 1.0 / 4096


def _postamble(
    n_data_chips: int, last_chip: int, min_chips: int
) -> npt.NDArray[np.uint8]:
    """Alternating chips, at least ``min_chips``, ending the burst on a byte boundary.

    Reference 1.3/1.5: S and T send 2..8 postamble chips; with 3-of-6 an odd byte count
    leaves 12 * N = 4 (mod 8) chips, which the postamble fills up to a whole byte.  The
    first postamble chip is the complement of the last data chip, so no long run forms.
    """
    n_chips = min_chips + (-(n_data_chips + min_chips)) % 8
    return ((1 - last_chip + np.arange(n_chips)) % 2).astype(np.uint8)


def frame_chips(
    frame: bytes, phy: Phy, frame_format: str = "A", preamble_pairs: int | None = None
) -> npt.NDArray[np.uint8]:
    """All chips of a burst: preamble, sync (+ C marker), line-coded frame, postamble.

    Parameters
    ----------
    frame : bytes
        On-air frame bytes, block CRCs already inserted (``stack.frame``).
    phy : Phy
        Mode and direction.
    frame_format : str
        "A" or "B" (B only in mode C).
    preamble_pairs : int or None
        Override of the number of "01" preamble pairs.

    Returns
    -------
    numpy.ndarray of uint8, shape (n_chips,)

    Raises
    ------
    ValueError
        Empty frame, a frame format the mode does not allow, or bad ``preamble_pairs``.
    """
    if len(frame) == 0:
        raise ValueError("frame is empty; pass the on-air bytes including CRCs")
    head = header_chips(phy, frame_format, preamble_pairs)
    data = encode_line(bytes(frame), phy.line_code)
    post = _postamble(data.size, int(data[-1]), phy.postamble_min_chips)
    return np.concatenate([head, data, post])


def _check_chips(chips: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    arr = np.asarray(chips)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"chips must be a non-empty 1-D array, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        raise ValueError(f"chips must be integers 0/1, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() > 1:
        raise ValueError("chips may hold only 0 and 1")
    return arr.astype(np.uint8, copy=False)


def _check_rates(
    chip_rate_hz: float,
    deviation_hz: float,
    sample_rate_hz: float,
    freq_offset_hz: float,
) -> None:
    for name, value in (
        ("chip_rate_hz", chip_rate_hz),
        ("deviation_hz", deviation_hz),
        ("sample_rate_hz", sample_rate_hz),
    ):
        if not 0 < value < math.inf:
            raise ValueError(f"{name} must be positive and finite, got {value!r}")
    if sample_rate_hz < 2 * chip_rate_hz:
        raise ValueError(
            f"sample rate {sample_rate_hz:.0f} Hz is below 2 samples per chip at "
            f"{chip_rate_hz:.0f} chips/s; use at least {2 * chip_rate_hz:.0f} Hz"
        )
    top_hz = abs(deviation_hz) + abs(freq_offset_hz)
    if top_hz >= sample_rate_hz / 2:
        raise ValueError(
            f"tone at {top_hz:.0f} Hz (deviation + offset) aliases at sample rate "
            f"{sample_rate_hz:.0f} Hz; use more than {2 * top_hz:.0f} Hz"
        )


def _gauss_step_table(
    sigma_chips: float, span_chips: int
) -> tuple[np.ndarray, np.ndarray]:
    """Tabulate Q(x), the integral of the GFSK frequency pulse, in chips.

    The pulse is a one-chip rectangle centred at 0 convolved with a unit-area Gaussian
    of standard deviation ``sigma_chips``; with G(z) = z Phi(z) + phi(z) (the integral
    of the normal CDF), Q(x) = sigma * (G((x + 1/2) / sigma) - G((x - 1/2) / sigma)),
    rising from 0 to 1 chip.  Tabulated once per call (math.erf), then linearly
    interpolated: the interpolation error is below 1e-8 chip at this grid.
    """
    grid = np.arange(
        -span_chips - 1.0, span_chips + 1.0 + _STEP_GRID_CHIPS, _STEP_GRID_CHIPS
    )
    erf = np.frompyfunc(math.erf, 1, 1)

    def g_int(z: np.ndarray) -> np.ndarray:
        cdf = 0.5 * (1.0 + np.asarray(erf(z / math.sqrt(2.0)), dtype=np.float64))
        return z * cdf + np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)

    values = sigma_chips * (
        g_int((grid + 0.5) / sigma_chips) - g_int((grid - 0.5) / sigma_chips)
    )
    return grid, values


def _chip_phase(
    time_chips: npt.NDArray[np.float64],
    signs: npt.NDArray[np.float64],
    gaussian_bt: float | None,
) -> npt.NDArray[np.float64]:
    """Integral of sum_k s_k p(t - k - 1/2) from 0 to t; t and the result in chips."""
    n_chips = signs.size
    prefix = np.concatenate([[0.0], np.cumsum(signs)])
    chip = np.minimum(np.floor(time_chips).astype(np.int64), n_chips - 1)
    if gaussian_bt is None:
        # Rectangular pulse: whole chips before this one, plus the elapsed part of it.
        return prefix[chip] + signs[chip] * (time_chips - chip)
    sigma = math.sqrt(math.log(2.0)) / (2.0 * math.pi * gaussian_bt)
    span = int(math.ceil(6.0 * sigma)) + 1  # beyond 6 sigma Q is 0 or 1 to < 1e-8
    grid, table = _gauss_step_table(sigma, span)
    offsets = np.arange(-span, span + 1)
    out = np.empty_like(time_chips)
    for lo in range(0, time_chips.size, _BLOCK_SAMPLES):
        t_blk, k_blk = (
            time_chips[lo : lo + _BLOCK_SAMPLES],
            chip[lo : lo + _BLOCK_SAMPLES],
        )
        near = k_blk[:, None] + offsets
        valid = (near >= 0) & (near < n_chips)
        near_c = np.clip(near, 0, n_chips - 1)
        step = np.interp(
            t_blk[:, None] - near_c - 0.5, grid, table, left=0.0, right=1.0
        )
        # Chips more than `span` before this one have completed their step (Q = 1).
        done = prefix[np.clip(k_blk - span, 0, n_chips)]
        out[lo : lo + _BLOCK_SAMPLES] = done + np.where(
            valid, signs[near_c] * step, 0.0
        ).sum(1)
    return out


def modulate(
    chips: npt.ArrayLike,
    chip_rate_hz: float,
    deviation_hz: float,
    sample_rate_hz: float,
    *,
    gaussian_bt: float | None = None,
    freq_offset_hz: float = 0.0,
    start_phase_rad: float = 0.0,
    chip_rate_error_ppm: float = 0.0,
    invert: bool = False,
) -> npt.NDArray[np.complex64]:
    """Continuous-phase 2-FSK (or GFSK) modulation of a chip sequence.

    Parameters
    ----------
    chips : array_like of int, shape (n_chips,)
        0/1 chips; chip ``HIGH_FREQ_CHIP`` is sent at +deviation_hz.
    chip_rate_hz : float
        Nominal chip rate, chips/s.
    deviation_hz : float
        Peak frequency deviation, Hz.
    sample_rate_hz : float
        Output complex sample rate, Hz; any value >= 2 * chip_rate_hz that keeps
        deviation_hz + |freq_offset_hz| below sample_rate_hz / 2.
    gaussian_bt : float or None
        Gaussian filter bandwidth-time product (e.g. 0.5); None = rectangular 2-FSK.
    freq_offset_hz : float
        Carrier offset added to the baseband, Hz.
    start_phase_rad : float
        Phase of the first sample, rad.
    chip_rate_error_ppm : float
        Meter clock error: actual chip rate = chip_rate_hz * (1 + ppm * 1e-6).
    invert : bool
        Swap the tones (chip HIGH_FREQ_CHIP at -deviation_hz).

    Returns
    -------
    numpy.ndarray of complex64, shape (ceil(n_chips * sample_rate_hz / actual_rate),)
        Unit-amplitude baseband; sample n at time n / sample_rate_hz.

    Raises
    ------
    ValueError
        Empty or non-0/1 chips, non-positive rates, fewer than 2 samples per chip, a
        tone that would alias, a non-positive ``gaussian_bt``, or a chip-rate error
        <= -1e6 ppm.
    """
    arr = _check_chips(chips)
    _check_rates(chip_rate_hz, deviation_hz, sample_rate_hz, freq_offset_hz)
    if gaussian_bt is not None and not 0 < gaussian_bt < math.inf:
        raise ValueError(f"gaussian_bt must be None or positive, got {gaussian_bt!r}")
    actual_rate_hz = chip_rate_hz * (1.0 + chip_rate_error_ppm * 1e-6)
    if not actual_rate_hz > 0:
        raise ValueError(
            f"chip_rate_error_ppm {chip_rate_error_ppm} leaves no chip rate"
        )
    # 1e-9 guards against n_chips * ratio landing a hair above an integer by rounding.
    n_samples = math.ceil(arr.size * sample_rate_hz / actual_rate_hz - 1e-9)
    sample_idx = np.arange(n_samples, dtype=np.float64)
    time_chips = sample_idx * (
        actual_rate_hz / sample_rate_hz
    )  # multiply, never accumulate
    high = (arr == HIGH_FREQ_CHIP) != bool(invert)
    signs = np.where(high, 1.0, -1.0)
    phase_rad = (2.0 * math.pi * deviation_hz / actual_rate_hz) * _chip_phase(
        time_chips, signs, gaussian_bt
    )
    phase_rad += (
        2.0 * math.pi * freq_offset_hz / sample_rate_hz * sample_idx + start_phase_rad
    )
    return np.exp(1j * phase_rad).astype(np.complex64)


def modulate_frame(
    frame: bytes,
    mode: str,
    direction: str = "meter",
    frame_format: str = "A",
    sample_rate_hz: float = DEFAULT_SAMPLE_RATE_HZ,
    carrier_offset_hz: float = 0.0,
    *,
    start_phase_rad: float = 0.0,
    chip_rate_error_ppm: float = 0.0,
    invert: bool = False,
    **overrides: object,
) -> npt.NDArray[np.complex64]:
    """Modulate one on-air frame for a mode, centred on its own carrier (+ offset).

    Parameters
    ----------
    frame : bytes
        On-air bytes with block CRCs (``stack.frame``).
    mode, direction : str
        As for ``dsp.modes.get_phy``.
    frame_format : str
        "A" or "B" (B only in mode C).
    sample_rate_hz : float
        Output sample rate, Hz; at least ``phy.min_sample_rate_hz``.
    carrier_offset_hz : float
        Offset from the mode's carrier, Hz (meter crystal error).
    start_phase_rad, chip_rate_error_ppm, invert
        As for ``modulate``.
    **overrides
        ``Phy`` fields to replace: deviation_hz, chip_rate_hz, preamble_pairs,
        gaussian_bt, postamble_min_chips, carrier_hz.

    Returns
    -------
    numpy.ndarray of complex64, shape (n_samples,)

    Raises
    ------
    ValueError
        Unknown mode/direction/override, a disallowed frame format, an empty frame, or a
        sample rate too low for the mode (the message gives the minimum).
    """
    phy = get_phy(mode, direction).with_overrides(**overrides)
    _check_mode_rate(phy, sample_rate_hz)
    chips = frame_chips(frame, phy, frame_format)
    return modulate(
        chips,
        phy.chip_rate_hz,
        phy.deviation_hz,
        sample_rate_hz,
        gaussian_bt=phy.gaussian_bt,
        freq_offset_hz=carrier_offset_hz,
        start_phase_rad=start_phase_rad,
        chip_rate_error_ppm=chip_rate_error_ppm,
        invert=invert,
    )


def _check_mode_rate(phy: Phy, sample_rate_hz: float) -> None:
    if not sample_rate_hz >= phy.min_sample_rate_hz:
        raise ValueError(
            f"sample rate {sample_rate_hz:.0f} Hz too low for mode {phy.mode} "
            f"({phy.direction}): needs at least {phy.min_sample_rate_hz:.0f} Hz"
        )


@dataclass(frozen=True, slots=True, eq=False)
class Burst:
    """One modulated telegram, to be placed into a wider baseband by ``compose``.

    Attributes
    ----------
    iq : numpy.ndarray of complex64, shape (n,)
        Baseband centred on ``carrier_hz``, at ``sample_rate_hz``.
    start_sample : int
        Index of ``iq[0]`` in the composed baseband, samples.
    carrier_hz : float
        Absolute carrier frequency (including any offset), Hz.
    half_band_hz : float
        Half width of the occupied band around the carrier, Hz.
    sample_rate_hz : float
        Sample rate of ``iq``, Hz; must equal the composer's.
    gain_db : float
        Amplitude scaling applied when composing, dB (power).
    mode, direction, frame_format : str
        Metadata for ground-truth annotations ("" when unknown).
    data : bytes
        The on-air frame, for annotations.
    """

    iq: npt.NDArray[np.complex64]
    start_sample: int
    carrier_hz: float
    half_band_hz: float
    sample_rate_hz: float
    gain_db: float = 0.0
    mode: str = ""
    direction: str = ""
    frame_format: str = ""
    data: bytes = b""

    @property
    def stop_sample(self) -> int:
        """One past the last sample of the burst in the composed baseband."""
        return self.start_sample + int(self.iq.size)


def frame_burst(
    frame: bytes,
    mode: str,
    direction: str = "meter",
    frame_format: str = "A",
    *,
    sample_rate_hz: float,
    start_sample: int = 0,
    carrier_offset_hz: float = 0.0,
    gain_db: float = 0.0,
    **kwargs: Any,
) -> Burst:
    """Modulate a frame (``modulate_frame``) and wrap it as a ``Burst`` at its carrier.

    ``carrier_offset_hz`` moves the burst's carrier (so ``compose`` checks the real
    band); ``kwargs`` go to ``modulate_frame`` (overrides, invert, chip-rate error...).

    Raises
    ------
    ValueError
        As ``modulate_frame``.
    """
    phy = get_phy(mode, direction)
    phy = phy.with_overrides(**{k: v for k, v in kwargs.items() if k in Phy.__slots__})
    iq = modulate_frame(frame, mode, direction, frame_format, sample_rate_hz, **kwargs)
    return Burst(
        iq,
        int(start_sample),
        phy.carrier_hz + carrier_offset_hz,
        phy.half_band_hz,
        float(sample_rate_hz),
        float(gain_db),
        mode,
        direction,
        frame_format,
        bytes(frame),
    )


def _check_burst(burst: Burst, center_freq_hz: float, sample_rate_hz: float) -> None:
    if not math.isclose(burst.sample_rate_hz, sample_rate_hz, rel_tol=1e-12):
        raise ValueError(
            f"burst at {burst.carrier_hz:.0f} Hz is sampled at "
            f"{burst.sample_rate_hz:.0f} Hz, the composed baseband at "
            f"{sample_rate_hz:.0f} Hz; they must be equal"
        )
    low_hz = burst.carrier_hz - burst.half_band_hz - center_freq_hz
    high_hz = burst.carrier_hz + burst.half_band_hz - center_freq_hz
    if low_hz < -sample_rate_hz / 2 or high_hz > sample_rate_hz / 2:
        raise ValueError(
            f"burst at {burst.carrier_hz:.0f} Hz occupies {low_hz:+.0f}..{high_hz:+.0f}"
            f" Hz around the centre {center_freq_hz:.0f} Hz, outside"
            f" +-{sample_rate_hz / 2:.0f} Hz (sample rate {sample_rate_hz:.0f} Hz)"
        )
    if burst.start_sample < 0:
        raise ValueError(f"burst start_sample {burst.start_sample} is negative")


def compose(
    bursts: Sequence[Burst],
    center_freq_hz: float,
    sample_rate_hz: float,
    n_samples: int | None = None,
) -> npt.NDArray[np.complex64]:
    """Mix each burst to its carrier relative to ``center_freq_hz`` and add them up.

    Parameters
    ----------
    bursts : sequence of Burst
        Bursts sampled at ``sample_rate_hz``; they may overlap in time and frequency.
    center_freq_hz : float
        Centre (tuning) frequency of the composed baseband, Hz.
    sample_rate_hz : float
        Complex sample rate, Hz; the band is -sample_rate_hz/2 .. +sample_rate_hz/2.
    n_samples : int or None
        Output length; None = up to the end of the last burst.

    Returns
    -------
    numpy.ndarray of complex64, shape (n_samples,)
        Zeros where no burst is; the mixing phase follows the absolute sample index.

    Raises
    ------
    ValueError
        A burst whose band (carrier +- half_band_hz) falls outside +-sample_rate_hz/2,
        whose sample rate differs, that starts before 0 or ends after ``n_samples``.
    """
    for burst in bursts:
        _check_burst(burst, center_freq_hz, sample_rate_hz)
    end = max((b.stop_sample for b in bursts), default=0)
    total = end if n_samples is None else int(n_samples)
    if total < end:
        raise ValueError(f"bursts end at sample {end}, beyond n_samples={total}")
    out = np.zeros(total, dtype=np.complex128)
    for burst in bursts:
        idx = np.arange(burst.start_sample, burst.stop_sample, dtype=np.float64)
        # Cycles modulo 1 keep the phase argument small and exact over long files.
        cycles = np.mod(
            idx * ((burst.carrier_hz - center_freq_hz) / sample_rate_hz), 1.0
        )
        gain = 10.0 ** (burst.gain_db / 20.0)
        out[burst.start_sample : burst.stop_sample] += (
            gain * burst.iq * np.exp(2j * np.pi * cycles)
        )
    return out.astype(np.complex64)
