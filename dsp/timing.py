"""Per-packet chip timing: a chip clock that follows drift, and its smoothing.

Signal picture (one packet on one channel, fs = 500..800 kS/s, T samples per chip;
tone correlators Y_f(a, b) and soft chips as in ``dsp.fsk``)::

    |<- preamble pairs + sync: known chips ->|<- data chips: decided ->|
    t_0                                       t_K                     ...
    header search: carrier offset, deviation and t_K (``dsp.header``)
    tracking:      at each chip edge (decided chips differ) the window straddling
                   the edge measures the timing error; a 2nd-order loop corrects
                   the chip time t and the period T
    smoothing:     a line (or parabola) through the tracked chip times

Timing error detector: with the edge estimated at t but truly at t + e*T, the window
[t - T/2, t + T/2) holds (1/2 + e) of the earlier chip's tone, so
|Y_prev|^2 - |Y_next|^2 ~ (2 e) |A T|^2; normalised by the header's chip energy
|A T|^2 this gives 2e.  Runs of equal chips give no edge and no correction, so the
loop also keeps its period estimate through them.  Started at the detector's
chip-rate hypothesis (3 % apart, ``dsp.sync``), the loop locks onto the rest of the
rate error (up to 1.5 %; it copes with 2 %) within the header and follows any
sample-clock error; the receiver then runs it a second time with narrow gains from
the first pass's straight-line fit (``dsp.framing``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dsp.fsk import _interp_prefix, tone_prefix, window_sums
from dsp.kernels import kernel

__all__ = [
    "Track",
    "track_chips",
    "track_reference",
    "smooth_times",
    "correlate_chips",
    "TRACK_GAIN_PHASE",
    "TRACK_GAIN_RATE",
]

#: Loop gains: fraction of the measured edge error applied to the chip time, and
#: to the chip period, per edge.
TRACK_GAIN_PHASE = 0.15
TRACK_GAIN_RATE = 0.01
# Largest timing error one edge may report, chips (outliers at low SNR).
_MAX_EDGE_ERROR = 0.5


@kernel(
    "Tuple((i8, f8))(c16[::1], c16[::1], f8, f8, i8, f8, f8, i8[::1], f8, f8, f8, "
    "f8[::1], f8[::1], c16[::1], c16[::1])"
)
def _track_kernel(
    p_one,
    p_zero,
    f_one,
    f_zero,
    span_start,
    t0,
    period0,
    known,
    energy_ref,
    gain_phase,
    gain_rate,
    soft,
    times,
    y_one,
    y_zero,
):
    """Chip loop of ``track_chips``; returns (chips done, final period)."""
    t = t0
    period = period0
    prev = -1
    limit = p_one.shape[0] - 2
    n_known = known.shape[0]
    done = 0
    for k in range(soft.shape[0]):
        if t - 0.5 * period < 0.0 or t + 1.5 * period >= limit:
            break
        y1 = _interp_prefix(p_one, t + period) - _interp_prefix(p_one, t)
        y0 = _interp_prefix(p_zero, t + period) - _interp_prefix(p_zero, t)
        e1 = y1.real * y1.real + y1.imag * y1.imag
        e0 = y0.real * y0.real + y0.imag * y0.imag
        soft[k] = e1 - e0
        times[k] = t
        # the same correlators with their phase referenced to the chip start
        c1 = ((span_start + t) * f_one) % 1.0
        c0 = ((span_start + t) * f_zero) % 1.0
        y_one[k] = y1 * complex(np.cos(2.0 * np.pi * c1), np.sin(2.0 * np.pi * c1))
        y_zero[k] = y0 * complex(np.cos(2.0 * np.pi * c0), np.sin(2.0 * np.pi * c0))
        d = known[k] if k < n_known else (1 if e1 > e0 else 0)
        if prev >= 0 and d != prev:
            a = t - 0.5 * period
            b = t + 0.5 * period
            m1 = _interp_prefix(p_one, b) - _interp_prefix(p_one, a)
            m0 = _interp_prefix(p_zero, b) - _interp_prefix(p_zero, a)
            mid = (m1.real * m1.real + m1.imag * m1.imag) - (
                m0.real * m0.real + m0.imag * m0.imag
            )
            # the earlier chip's tone filling more of the straddling window means the
            # edge lies later than t: a positive error (chips)
            err = 0.5 * mid / energy_ref
            if prev == 0:
                err = -err
            err = min(max(err, -0.5), 0.5)  # _MAX_EDGE_ERROR
            period += gain_rate * err * period
            t += gain_phase * err * period
        prev = d
        t += period
        done = k + 1
    return done, period


def track_reference(
    p_one,
    p_zero,
    f_one,
    f_zero,
    span_start,
    t0,
    period0,
    known,
    n_chips,
    energy_ref,
    gain_phase=TRACK_GAIN_PHASE,
    gain_rate=TRACK_GAIN_RATE,
) -> Track:
    """Plain-Python twin of ``track_chips`` (``window_sums`` for every correlator)."""
    soft, times, ones, zeros = [], [], [], []
    t, period, prev = float(t0), float(period0), None
    for k in range(n_chips):
        if t - period / 2 < 0 or t + 1.5 * period >= p_one.size - 2:
            break
        y1 = complex(window_sums(p_one, t, t + period))
        y0 = complex(window_sums(p_zero, t, t + period))
        soft.append(abs(y1) ** 2 - abs(y0) ** 2)
        times.append(t)
        ones.append(y1 * np.exp(2j * np.pi * f_one * (span_start + t)))
        zeros.append(y0 * np.exp(2j * np.pi * f_zero * (span_start + t)))
        d = int(known[k]) if k < len(known) else int(soft[-1] > 0)
        if prev is not None and d != prev:
            edge = (
                abs(window_sums(p_one, t - period / 2, t + period / 2)) ** 2
                - abs(window_sums(p_zero, t - period / 2, t + period / 2)) ** 2
            )
            err = float(
                np.clip(
                    (1 if prev == 1 else -1) * edge / energy_ref / 2,
                    -_MAX_EDGE_ERROR,
                    _MAX_EDGE_ERROR,
                )
            )
            period += gain_rate * err * period
            t += gain_phase * err * period
        prev = d
        t += period
    return Track(
        np.array(soft),
        np.array(times),
        np.array(ones, dtype=complex),
        np.array(zeros, dtype=complex),
        period,
    )


@dataclass(frozen=True, slots=True)
class Track:
    """Per-chip results of ``track_chips`` (m chips, m <= n_chips).

    Attributes
    ----------
    soft : numpy.ndarray of float64, shape (m,)
        Noncoherent soft chips |Y_one|^2 - |Y_zero|^2.
    times : numpy.ndarray of float64, shape (m,)
        Chip start times, samples relative to the span start.
    y_one, y_zero : numpy.ndarray of complex128, shape (m,)
        Tone correlators per chip, phase referenced to the chip start (for
        ``dsp.fsk.coherent_soft``).
    period : float
        Final samples per chip.
    """

    soft: npt.NDArray[np.float64]
    times: npt.NDArray[np.float64]
    y_one: npt.NDArray[np.complex128]
    y_zero: npt.NDArray[np.complex128]
    period: float


def track_chips(
    z: npt.NDArray[np.complex64],
    span_start: int,
    freq_one: float,
    freq_zero: float,
    start_time: float,
    period: float,
    known: npt.NDArray[np.uint8],
    n_chips: int,
    energy_ref: float,
    gain_phase: float = TRACK_GAIN_PHASE,
    gain_rate: float = TRACK_GAIN_RATE,
) -> Track:
    """Tone correlators and soft chips from a tracked chip clock.

    Parameters
    ----------
    z : numpy.ndarray of complex64, shape (n,)
        Channel samples; z[0] is absolute sample ``span_start``.
    span_start : int
        Absolute index of z[0].
    freq_one, freq_zero : float
        Tones of chip 1 and chip 0, cycles per sample.
    start_time : float
        Start of the first chip, samples relative to z[0].
    period : float
        Initial samples per chip.
    known : numpy.ndarray of uint8, shape (K,)
        Chips known in advance (header); decisions drive the loop after them.
    n_chips : int
        Chips to produce (header included).
    energy_ref : float
        |Y|^2 of a whole chip of the right tone (``HeaderFit.chip_energy``), > 0.

    Returns
    -------
    Track
        Fewer than ``n_chips`` chips when ``z`` ends first.

    Raises
    ------
    ValueError
        For a non-complex64 ``z`` or a non-positive period or energy.
    """
    if not (period > 0 and energy_ref > 0):
        raise ValueError("period and energy_ref must be positive")
    p_one = tone_prefix(z, freq_one, span_start)
    p_zero = tone_prefix(z, freq_zero, span_start)
    soft = np.zeros(n_chips)
    times = np.zeros(n_chips)
    y_one = np.zeros(n_chips, dtype=np.complex128)
    y_zero = np.zeros(n_chips, dtype=np.complex128)
    done, final = _track_kernel(
        p_one,
        p_zero,
        float(freq_one),
        float(freq_zero),
        int(span_start),
        float(start_time),
        float(period),
        np.ascontiguousarray(known, dtype=np.int64),
        float(energy_ref),
        float(gain_phase),
        float(gain_rate),
        soft,
        times,
        y_one,
        y_zero,
    )
    return Track(soft[:done], times[:done], y_one[:done], y_zero[:done], float(final))


# Chips per degree of freedom of the smoothed chip clock: a straight line (constant
# chip rate) for short frames, a parabola (a slow drift) from 400 chips on.
_CHIPS_PER_TERM = 200


def smooth_times(
    times: npt.NDArray[np.float64], period: float
) -> npt.NDArray[np.float64]:
    """Chip start times with the loop's jitter removed: a least-squares line (or
    parabola, for long frames) through the tracked times.

    A meter's chip clock and the receiver's sample clock are crystals: over one
    frame the chip times lie on a straight line to far better than the loop's
    edge-by-edge jitter, which the fit averages over every chip.  That matters for
    coherent detection, whose chip-to-chip phase moves by 2 pi f dt with any timing
    change dt (0.6 rad per sample for mode S at 533 kS/s).

    Parameters
    ----------
    times : numpy.ndarray of float64, shape (m,)
        Chip start times from ``track_chips``, samples.
    period : float
        Samples per chip, used when fewer than two chips are given.

    Returns
    -------
    numpy.ndarray of float64, shape (m,)
    """
    m = times.size
    if m < 2:
        return times.copy()
    index = np.arange(m, dtype=np.float64)
    degree = 2 if m >= 2 * _CHIPS_PER_TERM else 1
    # centred, scaled abscissa keeps the fit well conditioned
    x = (index - index.mean()) / max(m, 1)
    coeffs = np.polyfit(x, times, degree)
    return np.polyval(coeffs, x)


@kernel(
    "void(c16[::1], c16[::1], f8, f8, i8, f8[::1], f8, f8[::1], c16[::1], c16[::1])"
)
def _correlate_kernel(
    p_one, p_zero, f_one, f_zero, span_start, times, last_period, soft, y_one, y_zero
):
    n = times.shape[0]
    for k in range(n):
        t = times[k]
        end = times[k + 1] if k + 1 < n else t + last_period
        y1 = _interp_prefix(p_one, end) - _interp_prefix(p_one, t)
        y0 = _interp_prefix(p_zero, end) - _interp_prefix(p_zero, t)
        soft[k] = (y1.real * y1.real + y1.imag * y1.imag) - (
            y0.real * y0.real + y0.imag * y0.imag
        )
        c1 = ((span_start + t) * f_one) % 1.0
        c0 = ((span_start + t) * f_zero) % 1.0
        y_one[k] = y1 * complex(np.cos(2.0 * np.pi * c1), np.sin(2.0 * np.pi * c1))
        y_zero[k] = y0 * complex(np.cos(2.0 * np.pi * c0), np.sin(2.0 * np.pi * c0))


def correlate_chips(
    z: npt.NDArray[np.complex64],
    span_start: int,
    freq_one: float,
    freq_zero: float,
    times: npt.NDArray[np.float64],
    last_period: float,
) -> Track:
    """Tone correlators over given chip windows [t_k, t_{k+1}) (the last one
    ``last_period`` long); times relative to z[0], inside z.

    Returns
    -------
    Track
        With ``times`` as given and ``period`` = ``last_period``.
    """
    p_one = tone_prefix(z, freq_one, span_start)
    p_zero = tone_prefix(z, freq_zero, span_start)
    times = np.ascontiguousarray(times, dtype=np.float64)
    n = times.size
    soft = np.zeros(n)
    y_one = np.zeros(n, dtype=np.complex128)
    y_zero = np.zeros(n, dtype=np.complex128)
    _correlate_kernel(
        p_one,
        p_zero,
        float(freq_one),
        float(freq_zero),
        int(span_start),
        times,
        float(last_period),
        soft,
        y_one,
        y_zero,
    )
    return Track(soft, times, y_one, y_zero, float(last_period))
