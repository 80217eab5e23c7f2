"""Header search: a packet's carrier offset, deviation and timing from known chips.

Signal picture (one candidate on one channel, T samples per chip, tone correlators
as in ``dsp.fsk``)::

    |<- K known chips: "01" preamble pairs + sync word ->|
    t_K - K T                                          t_K  (detector's end +- 3/4 T)

    metric(cfo, dev, t_K) = sum_k s_k (|Y_{cfo+dev}(k)|^2 - |Y_{cfo-dev}(k)|^2)
    s_k = +1 for a known chip 1, -1 for a chip 0; Y_f(k) over chip k

A grid search of this noncoherent match: offset (+-15 kHz around the detector's
hypothesis in 2.5 kHz steps) x end time (eighth-chip steps), then the end time to a
quarter chip and the vertex of its parabola, then the deviation (0.75..1.25 of the
detector's), then the vertex of the offset's parabola.  The result seeds the chip
clock (``dsp.timing``) and the tone frequencies of every correlator after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dsp.fsk import header_metric, tone_prefix

__all__ = ["HeaderFit", "fit_header"]

# Header search grids: carrier offset around the detector's hypothesis, timing around
# the detector's sync end.  The chip period stays the detector's hypothesis (3 %
# apart, ``dsp.chipfamily``): the match of the header is nearly flat along a ridge of
# period and end time (a longer period with a later end loses < 1 % of it per 0.5 %),
# so the chip clock loop measures what is left of the rate (``track_chips``).
_CFO_SPAN_HZ = 15_000.0
_CFO_STEP_HZ = 2_500.0
_TIME_SPAN_CHIPS = 0.75
_TIME_STEP_CHIPS = 0.125
# Deviations tried around the detector's, as factors (mode S meters send 40..80 kHz).
_DEV_FACTORS = np.array([0.75, 0.875, 1.0, 1.125, 1.25])


@dataclass(frozen=True, slots=True)
class HeaderFit:
    """Result of the header search.

    Attributes
    ----------
    end_time : float
        Channel sample time where the last known chip ends (fractional samples).
    period : float
        Samples per chip.
    cfo_hz : float
        Carrier offset, Hz.
    deviation_hz : float
        Tone offset from the carrier that fits best, Hz.
    chip_energy : float
        Mean |Y|^2 of the right tone over the known chips (signal + noise).
    score : float
        Mean over known chips of (|Y_right|^2 - |Y_wrong|^2) / chip_energy: near 1
        for a clean header, near 0 for noise.
    """

    end_time: float
    period: float
    cfo_hz: float
    deviation_hz: float
    chip_energy: float
    score: float


def fit_header(
    z: npt.NDArray[np.complex64],
    z_start: int,
    known: npt.NDArray[np.uint8],
    end_guess: float,
    cfo_guess_hz: float,
    period_guess: float,
    deviation_hz: float,
    sample_rate_hz: float,
) -> HeaderFit:
    """Find carrier offset, deviation and timing from the known header chips.

    Grid search of the noncoherent match (``dsp.fsk.header_metric``): offset x end
    time, then the end time to a quarter chip and its parabola vertex, then the
    deviation, then the offset's parabola vertex.

    Parameters
    ----------
    z : numpy.ndarray of complex64
        Channel samples from absolute index ``z_start``, covering the header and one
        chip beyond ``end_guess`` on both sides.
    known : numpy.ndarray of uint8, shape (K,)
        Header chips (1 = upper tone), ending at ``end_guess``.
    end_guess : float
        Absolute sample time of the header end (detector), samples.
    cfo_guess_hz, period_guess, deviation_hz, sample_rate_hz : float
        Detector's offset, chip period (samples per chip) and deviation hypotheses;
        channel rate.

    Returns
    -------
    HeaderFit
        Times are absolute channel sample times.
    """
    signs = np.where(np.asarray(known) == 1, 1.0, -1.0)
    period0 = float(period_guess)
    offsets = np.arange(-_TIME_SPAN_CHIPS, _TIME_SPAN_CHIPS + 1e-9, _TIME_STEP_CHIPS)
    ends = end_guess - z_start + offsets * period0

    # A fixed-length tuple, so that ``header_metric(*prefixes(...), ends, ...)`` type
    # checks: mypy maps a star argument of unknown length onto every remaining
    # parameter and then counts the arguments after it as too many.
    def prefixes(
        cfo_hz: float, dev_hz: float = deviation_hz
    ) -> tuple[npt.NDArray[np.complex128], npt.NDArray[np.complex128]]:
        return (
            tone_prefix(z, (cfo_hz + dev_hz) / sample_rate_hz, z_start),
            tone_prefix(z, (cfo_hz - dev_hz) / sample_rate_hz, z_start),
        )

    periods = np.full_like(ends, period0)

    def best_end(
        cfo_hz: float, grid_ends: npt.NDArray[np.float64]
    ) -> tuple[float, float]:
        metric, _ = header_metric(
            *prefixes(cfo_hz), grid_ends, periods[: grid_ends.size], signs
        )
        i = int(np.argmax(metric))
        return float(metric[i]), float(grid_ends[i])

    # 1. carrier offset x timing
    cfos = cfo_guess_hz + np.arange(-_CFO_SPAN_HZ, _CFO_SPAN_HZ + 1.0, _CFO_STEP_HZ)
    trials = [best_end(c, ends) for c in cfos]
    pick = int(np.argmax([t[0] for t in trials]))
    cfo, end = float(cfos[pick]), trials[pick][1]
    # 2. timing: a finer grid, then the parabola vertex a quarter chip either side
    _, end = best_end(cfo, end + offsets * period0 * 0.5)
    quarter = 0.25 * period0
    around = header_metric(
        *prefixes(cfo), end + np.array([-quarter, 0.0, quarter]), periods[:3], signs
    )[0]
    end += quarter * _parabola_peak(*around)
    period = period0
    # 3. deviation: the best of a few around the detector's
    one = (np.array([end]), np.array([period]))
    devs = deviation_hz * _DEV_FACTORS
    vals = [header_metric(*prefixes(cfo, dev), *one, signs)[0][0] for dev in devs]
    deviation_hz = float(devs[int(np.argmax(vals))])
    # 4. fine offset: vertex of the parabola through three offsets half a step apart
    step = _CFO_STEP_HZ / 2
    vals = [
        header_metric(*prefixes(c, deviation_hz), *one, signs)[0][0]
        for c in (cfo - step, cfo, cfo + step)
    ]
    cfo += step * _parabola_peak(*vals)
    metric, right = header_metric(*prefixes(cfo, deviation_hz), *one, signs)
    energy = float(right[0]) / signs.size
    score = float(metric[0]) / signs.size / energy if energy > 0 else 0.0
    return HeaderFit(end + z_start, period, float(cfo), deviation_hz, energy, score)


def _parabola_peak(left: float, mid: float, right: float) -> float:
    """Offset (-1..1 steps) of the vertex of the parabola through three points."""
    den = left - 2.0 * mid + right
    if den >= 0:  # not a maximum: keep the middle
        return 0.0
    return float(np.clip(0.5 * (left - right) / den, -1.0, 1.0))
