"""2-FSK demodulation to soft chips: tone correlators, noncoherent and coherent.

Signal picture (one packet on one channel, fs = 400..800 kS/s, T samples per chip,
tones f_one = cfo + dev and f_zero = cfo - dev in cycles/sample, chip 1 = upper tone)::

    prefix sums, absolute phase reference (z[0] is absolute sample ``start``):
        P_f[k] = sum_{m < k} z[m] exp(-2 pi j f (start + m))
    tone correlator over [a, b) (fractional sample times relative to z[0]; sample m
    covers [m, m + 1) and an edge sample counts in proportion):
        Y_f(a, b) = P_f(b) - P_f(a),      P_f(x) linearly interpolated
    the same, phase referenced to the window start:
        Y_f(a, b) * exp(2 pi j f (start + a))

    noncoherent soft chip (matched filter per tone, square law):
        s_k = |Y_one(chip k)|^2 - |Y_zero(chip k)|^2
    coherent soft chip (phase tracked across chips):
        s_k = Re((Y_one - Y_zero)(chip k) * exp(-j theta_k))

Why coherent works: the phase is continuous, so with correlators referenced to each
chip's start, chip k + 1 starts where chip k ended, theta_{k+1} = theta_k + 2 pi f T
with f the tone of chip k.  The two rotations exp(2 pi j f T) (after a 0 chip and
after a 1 chip) are measured on the known header chips, so neither the deviation nor
the carrier offset has to be known exactly; a decision-directed loop then follows the
phase through the data.  Coherent detection of orthogonal tones needs about 1 dB (T,
C) to 2 dB (S, whose Manchester pairs then combine coherently) less Eb/N0 than the
square law at the frame error rates that matter.  Where the phase model fails (the
GFSK downlink's memory, a loop slip), the noncoherent chips are still there to try.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from dsp.kernels import helper, kernel

__all__ = [
    "tone_prefix",
    "tone_prefix_reference",
    "window_sums",
    "header_metric",
    "header_metric_reference",
    "coherent_soft",
    "coherent_soft_reference",
    "measure_offset",
    "COHERENT_GAIN_PHASE",
    "COHERENT_GAIN_FREQ",
]

#: Phase loop gains: share of the measured phase error applied to the phase, and to
#: both rotations (a residual carrier offset), per chip.
COHERENT_GAIN_PHASE = 0.3
COHERENT_GAIN_FREQ = 0.003


@helper
def _interp_prefix(p, x):
    """Prefix sum at fractional sample time x (linear interpolation), held constant
    outside the span: a window reaching past either end sums what is inside."""
    last = p.shape[0] - 1
    if x <= 0.0:
        return p[0]
    if x >= last:
        return p[last]
    i = int(np.floor(x))
    frac = x - i
    return p[i] + frac * (p[i + 1] - p[i])


@kernel("void(c8[::1], i8, f8, c16[::1])")
def _prefix_kernel(z, start, freq_cycles, out):
    """out[k] = sum_{m < k} z[m] exp(-2 pi j f (start + m)); a phasor recurrence,
    re-anchored exactly every 256 samples so rounding cannot accumulate."""
    acc = 0j
    out[0] = acc
    rot = complex(
        np.cos(-2.0 * np.pi * freq_cycles), np.sin(-2.0 * np.pi * freq_cycles)
    )
    ph = 0j
    for k in range(z.shape[0]):
        if k % 256 == 0:
            cyc = ((start + k) * freq_cycles) % 1.0
            ph = complex(np.cos(-2.0 * np.pi * cyc), np.sin(-2.0 * np.pi * cyc))
        acc += complex(z[k].real, z[k].imag) * ph
        out[k + 1] = acc
        ph *= rot


def tone_prefix(
    z: npt.NDArray[np.complex64], freq_cycles: float, start: int = 0
) -> npt.NDArray[np.complex128]:
    """Prefix sums of ``z`` mixed down by one tone (module docstring).

    Parameters
    ----------
    z : numpy.ndarray of complex64, shape (n,)
        Channel samples; z[0] is absolute sample ``start``.
    freq_cycles : float
        Tone frequency, cycles per sample.
    start : int
        Absolute index of z[0]: the mixer phase is absolute, so that correlators over
        different spans of one stream agree.

    Returns
    -------
    numpy.ndarray of complex128, shape (n + 1,)
        P[0] = 0, P[k] = sum of the first k mixed samples.

    Raises
    ------
    ValueError
        If ``z`` is not a 1-D complex64 array.
    """
    if not isinstance(z, np.ndarray) or z.dtype != np.complex64 or z.ndim != 1:
        raise ValueError("z must be a 1-D complex64 numpy array")
    out = np.empty(z.size + 1, dtype=np.complex128)
    _prefix_kernel(np.ascontiguousarray(z), int(start), float(freq_cycles), out)
    return out


def tone_prefix_reference(
    z: npt.NDArray[np.complex64], freq_cycles: float, start: int = 0
) -> npt.NDArray[np.complex128]:
    """Plain-numpy twin of ``tone_prefix``: one complex exponential per sample."""
    n = np.arange(start, start + z.size, dtype=np.float64)
    mixed = z.astype(np.complex128) * np.exp(-2j * np.pi * np.mod(n * freq_cycles, 1.0))
    return np.concatenate([[0j], np.cumsum(mixed)])


def window_sums(
    prefix: npt.NDArray[np.complex128], a: npt.ArrayLike, b: npt.ArrayLike
) -> npt.NDArray[np.complex128]:
    """Sums over fractional sample intervals [a, b) from a prefix-sum array.

    Parameters
    ----------
    prefix : numpy.ndarray of complex128, shape (n + 1,)
        From ``tone_prefix``.
    a, b : array_like of float
        Interval bounds, samples relative to the prefix start, 0 <= a <= b <= n.

    Returns
    -------
    numpy.ndarray of complex128
        One sum per interval (the broadcast shape of a and b).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    idx = np.arange(prefix.size, dtype=np.float64)
    re = np.interp(b, idx, prefix.real) - np.interp(a, idx, prefix.real)
    im = np.interp(b, idx, prefix.imag) - np.interp(a, idx, prefix.imag)
    return re + 1j * im


# -- header metric -------------------------------------------------------------------
def header_metric_reference(p_one, p_zero, ends, periods, signs):
    """Plain-numpy twin of ``header_metric`` (same arguments and results)."""
    n_known = signs.size
    k = np.arange(n_known, -1, -1, dtype=np.float64)
    bounds = np.asarray(ends)[..., None] - k * np.asarray(periods)[..., None]
    y1 = window_sums(p_one, bounds[..., :-1], bounds[..., 1:])
    y0 = window_sums(p_zero, bounds[..., :-1], bounds[..., 1:])
    e1, e0 = np.abs(y1) ** 2, np.abs(y0) ** 2
    metric = ((e1 - e0) * signs).sum(axis=-1)
    right = np.where(signs > 0, e1, e0).sum(axis=-1)
    return metric, right


@kernel("void(c16[::1], c16[::1], f8[::1], f8[::1], f8[::1], f8[::1], f8[::1])")
def _metric_kernel(p_one, p_zero, ends, periods, signs, metric, right):
    n_known = signs.shape[0]
    for i in range(ends.shape[0]):
        m = 0.0
        r = 0.0
        for k in range(n_known):
            a = ends[i] - (n_known - k) * periods[i]
            b = a + periods[i]
            y1 = _interp_prefix(p_one, b) - _interp_prefix(p_one, a)
            y0 = _interp_prefix(p_zero, b) - _interp_prefix(p_zero, a)
            e1 = y1.real * y1.real + y1.imag * y1.imag
            e0 = y0.real * y0.real + y0.imag * y0.imag
            m += signs[k] * (e1 - e0)
            r += e1 if signs[k] > 0 else e0
        metric[i] = m
        right[i] = r


def header_metric(
    p_one: npt.NDArray[np.complex128],
    p_zero: npt.NDArray[np.complex128],
    ends: npt.ArrayLike,
    periods: npt.ArrayLike,
    signs: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Noncoherent match of known chips at trial timings.

    Parameters
    ----------
    p_one, p_zero : numpy.ndarray of complex128
        ``tone_prefix`` of the chip-1 and chip-0 tones over one span.
    ends, periods : array_like of float, shape (m,)
        Trial end time of the last known chip and samples per chip (relative to the
        prefix start); every chip window must lie inside the span.
    signs : numpy.ndarray of float64, shape (K,)
        +1 for a known chip 1, -1 for a chip 0.

    Returns
    -------
    metric : numpy.ndarray of float64, shape (m,)
        sum_k signs_k (|Y_one|^2 - |Y_zero|^2) over the known chips.
    right : numpy.ndarray of float64, shape (m,)
        sum_k |Y_right tone|^2 (signal + noise energy).
    """
    ends = np.ascontiguousarray(ends, dtype=np.float64).ravel()
    periods = np.ascontiguousarray(periods, dtype=np.float64).ravel()
    metric = np.empty(ends.size)
    right = np.empty(ends.size)
    _metric_kernel(
        p_one,
        p_zero,
        ends,
        periods,
        np.ascontiguousarray(signs, dtype=np.float64),
        metric,
        right,
    )
    return metric, right


# -- coherent detection --------------------------------------------------------------
@helper
def _rotations(y_one, y_zero, known):
    """Measured phase advance over a known 0 chip and over a known 1 chip."""
    acc0 = 0j
    acc1 = 0j
    for k in range(known.shape[0] - 1):
        a = y_one[k] if known[k] else y_zero[k]
        b = y_one[k + 1] if known[k + 1] else y_zero[k + 1]
        v = b * np.conj(a)
        if known[k]:
            acc1 += v
        else:
            acc0 += v
    r0 = acc0 / abs(acc0) if abs(acc0) > 0 else 1 + 0j
    r1 = acc1 / abs(acc1) if abs(acc1) > 0 else 1 + 0j
    return r0, r1


@kernel("void(c16[::1], c16[::1], i8[::1], f8, f8, b1, f8[::1])")
def _coherent_kernel(y_one, y_zero, known, gain_phase, gain_freq, pairs, soft):
    n_known = known.shape[0]
    n = y_one.shape[0]
    # Rotations from every chip: the known header, then the square-law decisions
    # (a few percent wrong at worst, which only adds noise to a long average).
    hard = np.empty(n, dtype=np.int64)
    for k in range(n):
        if k < n_known:
            hard[k] = known[k]
        else:
            hard[k] = 1 if abs(y_one[k]) > abs(y_zero[k]) else 0
    r0, r1 = _rotations(y_one, y_zero, hard)
    amp = 0.0
    for k in range(n_known):
        amp += abs(y_one[k]) if known[k] else abs(y_zero[k])
    amp = max(amp / max(n_known, 1), 1e-300)
    first = y_one[0] if known[0] else y_zero[0]
    ref = first / abs(first) if abs(first) > 0 else 1 + 0j  # exp(j theta_0)
    k = 0
    while k < n:
        if pairs and k >= n_known and k + 1 < n:
            # Manchester bit: "01" (1) or "10" (0).  Both advance the phase by
            # r0 * r1, whatever the bit, so a wrong decision cannot steer the loop.
            b1 = y_zero[k] + y_one[k + 1] * np.conj(r0)
            b0 = y_one[k] + y_zero[k + 1] * np.conj(r1)
            value = ((b1 - b0) * np.conj(ref)).real
            soft[k] = -0.5 * value
            soft[k + 1] = 0.5 * value
            y = b1 if abs(b1) > abs(b0) else b0
            err = (y * np.conj(ref)).imag / (2.0 * amp)
            step_count = 2
            advance = r0 * r1
        else:
            s1 = (y_one[k] * np.conj(ref)).real
            s0 = (y_zero[k] * np.conj(ref)).real
            soft[k] = s1 - s0
            # The loop follows the tone that is stronger by magnitude: after a slip
            # of half a turn the coherent decision would pick the noise-only tone
            # and hold the wrong phase; the stronger tone's error pulls it back.
            stronger = 1 if abs(y_one[k]) > abs(y_zero[k]) else 0
            d = known[k] if k < n_known else stronger
            y = y_one[k] if d else y_zero[k]
            err = (y * np.conj(ref)).imag / amp  # ~ phase error, rad, when small
            step_count = 1
            advance = r1 if d else r0
        err = min(max(err, -1.0), 1.0)
        ref = ref * advance
        step = complex(np.cos(gain_phase * err), np.sin(gain_phase * err))
        ref = ref * step / abs(ref)
        turn = complex(np.cos(gain_freq * err), np.sin(gain_freq * err))
        r0 = r0 * turn
        r1 = r1 * turn
        k += step_count


def coherent_soft(
    y_one: npt.NDArray[np.complex128],
    y_zero: npt.NDArray[np.complex128],
    known: npt.NDArray[np.uint8],
    gain_phase: float = COHERENT_GAIN_PHASE,
    gain_freq: float = COHERENT_GAIN_FREQ,
    manchester: bool = False,
) -> npt.NDArray[np.float64]:
    """Coherent soft chips from chip-start-referenced tone correlators.

    Parameters
    ----------
    y_one, y_zero : numpy.ndarray of complex128, shape (n,)
        Correlators of the chip-1 and chip-0 tones over each chip, phase referenced
        to the chip's start (``dsp.timing.track_chips``).
    known : numpy.ndarray of uint8, shape (K,)
        The first K chips, known (header): they give the two rotations and steer the
        loop; decisions steer it afterwards.  K >= 2.
    gain_phase, gain_freq : float
        Loop gains (module constants by default).
    manchester : bool
        Chips after the known ones are Manchester pairs: each pair is detected as
        one bit, "01" against "10" over both chips, and given as (-b/2, +b/2).

    Returns
    -------
    numpy.ndarray of float64, shape (n,)
        Re((Y_one - Y_zero) exp(-j theta)): positive for chip 1, linear in amplitude.

    Raises
    ------
    ValueError
        Mismatched shapes, fewer than 2 known chips, or more known chips than chips.
    """
    if y_one.shape != y_zero.shape or y_one.ndim != 1:
        raise ValueError("y_one and y_zero must be 1-D arrays of one shape")
    if not 2 <= len(known) <= y_one.size:
        raise ValueError("need at least 2 known chips, and no more than chips")
    soft = np.empty(y_one.size)
    _coherent_kernel(
        np.ascontiguousarray(y_one, dtype=np.complex128),
        np.ascontiguousarray(y_zero, dtype=np.complex128),
        np.ascontiguousarray(known, dtype=np.int64),
        float(gain_phase),
        float(gain_freq),
        bool(manchester),
        soft,
    )
    return soft


def coherent_soft_reference(
    y_one,
    y_zero,
    known,
    gain_phase=COHERENT_GAIN_PHASE,
    gain_freq=COHERENT_GAIN_FREQ,
    manchester=False,
):
    """Plain-Python twin of ``coherent_soft``: the phase and the two rotations are
    kept as angles (radians) instead of unit phasors."""
    n, n_known = len(y_one), len(known)
    hard = [int(c) for c in known] + [
        int(abs(y_one[k]) > abs(y_zero[k])) for k in range(n_known, n)
    ]
    right = [y_one[k] if c else y_zero[k] for k, c in enumerate(hard)]
    sums = {0: 0j, 1: 0j}
    for k in range(n - 1):
        sums[hard[k]] += right[k + 1] * np.conj(right[k])
    rot = {c: float(np.angle(v)) if abs(v) > 0 else 0.0 for c, v in sums.items()}
    amp = max(float(np.mean(np.abs(right[:n_known]))), 1e-300)
    theta = float(np.angle(right[0])) if abs(right[0]) > 0 else 0.0
    soft = np.empty(n)
    k = 0
    while k < n:
        turn = np.exp(-1j * theta)
        if manchester and k >= n_known and k + 1 < n:
            one = y_zero[k] + y_one[k + 1] * np.exp(-1j * rot[0])
            zero = y_one[k] + y_zero[k + 1] * np.exp(-1j * rot[1])
            value = ((one - zero) * turn).real
            soft[k], soft[k + 1] = -value / 2, value / 2
            strong = one if abs(one) > abs(zero) else zero
            err, advance, used = (strong * turn).imag / (2 * amp), rot[0] + rot[1], 2
        else:
            soft[k] = (y_one[k] * turn).real - (y_zero[k] * turn).real
            d = hard[k]
            err, advance, used = (
                ((y_one[k] if d else y_zero[k]) * turn).imag / amp,
                rot[d],
                1,
            )
        err = float(np.clip(err, -1.0, 1.0))
        theta += advance + gain_phase * err
        rot = {c: r + gain_freq * err for c, r in rot.items()}
        k += used
    return soft


def measure_offset(
    y_one: npt.NDArray[np.complex128],
    y_zero: npt.NDArray[np.complex128],
    chips: npt.NDArray[np.uint8],
    period: float,
    near: float,
) -> float:
    """Carrier offset from the phase advance over decided chips, cycles per sample.

    Over a chip of tone f the phase advances 2 pi f T, so the mean advance after a 0
    chip and after a 1 chip is 2 pi c T with c the carrier offset, whatever the
    deviation.  It is known modulo 1 / (2 T); the solution nearest ``near`` is
    returned.  With hundreds of chips this is far finer than the header's grid.

    Parameters
    ----------
    y_one, y_zero : numpy.ndarray of complex128, shape (n,)
        Correlators referenced to each chip's start (``dsp.timing.correlate_chips``).
    chips : numpy.ndarray of uint8, shape (n,)
        The chips (decided or known), 1 = tone of ``y_one``.
    period : float
        Samples per chip.
    near : float
        Offset it should be close to, cycles per sample.

    Returns
    -------
    float
        Offset, cycles per sample; ``near`` if a chip value never occurs.
    """
    chips = np.asarray(chips)
    right = np.where(chips == 1, y_one, y_zero)
    steps = right[1:] * np.conj(right[:-1])
    after = chips[:-1]
    sums = [steps[after == value].sum() for value in (0, 1)]
    if min(abs(v) for v in sums) == 0:
        return float(near)
    cycles = np.angle(sums[0] * sums[1]) / (2 * np.pi)  # = 2 c T (mod 1)
    base = cycles / (2 * period)
    wrap = 1.0 / (2 * period)
    return float(base + wrap * np.round((near - base) / wrap))
