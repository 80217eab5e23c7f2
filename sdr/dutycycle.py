"""Duty-cycle limiter for transmitting in the 868 MHz short-range-device band.

ETSI EN 300 220 (with ERC REC 70-03 Annexes 1 and 7 and EU decision 2006/771/EC as
amended) lets a licence-free transmitter in 863-870 MHz be on for at most a fraction
of the time in each sub-band, measured over an observation period of one hour::

    sub-band (MHz)      duty cycle   use                       wM-Bus
    863.000-865.000      0.1 %       non-specific SRD (check)
    865.000-868.000      1 %         non-specific SRD (check)
    868.000-868.600      1 %         non-specific SRD          S1/S2, T2 other->meter
    868.600-868.700      1 %         alarms (Annex 7, check)
    868.700-869.200      0.1 %       non-specific SRD          T1/T2, C1/C2 meter->other
    869.200-869.250      0.1 %       social alarms (check)
    869.250-869.300      0.1 %       alarms (check)
    869.300-869.400      1 %         alarms (check)
    869.400-869.650      10 %        non-specific SRD, 500 mW  C2 other->meter
    869.650-869.700      10 %        alarms (check)
    869.700-870.000      100 %       non-specific SRD, 5 mW (1 % at 25 mW, check)

"check" marks rows quoted from memory of those documents rather than a copy in hand.
Listen-before-talk with adaptive frequency agility can replace the duty cycle in
some sub-bands; a plain SDR transmitter does neither, so the duty cycle applies.
Frequencies outside this table (870-876 MHz is national only) are refused.

The limiter is conservative:

- each transmission is charged in full to every sub-band it puts power into
  (``measure_airtime`` finds those per 1024-sample segment);
- a past transmission counts against the hour until its *end* is an hour old;
- state lives in this process only: separate runs do not see each other's airtime.

Policy ``"refuse"`` raises ``DutyCycleError`` before anything is sent; ``"delay"``
waits (through the injected ``sleep``) until the airtime fits.  ``enabled=False``
lifts the limit entirely, for a shielded (conducted or screened-room) set-up only.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stack.errors import SinkError

__all__ = [
    "OBSERVATION_WINDOW_S",
    "POLICIES",
    "SUB_BANDS",
    "SubBand",
    "DutyCycleError",
    "DutyCycleLimiter",
    "find_sub_band",
    "sub_bands_between",
    "measure_airtime",
]

log = logging.getLogger(__name__)

#: Observation period over which the duty cycle is measured, s (EN 300 220-1).
OBSERVATION_WINDOW_S = 3600.0

#: What the limiter does when a transmission would exceed the duty cycle.
POLICIES = ("refuse", "delay")

# Segment length of the airtime analysis, samples; at 2.4 MS/s one segment is 0.43 ms.
_SEGMENT_SAMPLES = 1024
# A sub-band is "on" in a segment where its power is at least this fraction of the
# strongest segment's total (-25 dB).  The abrupt start and end of a burst splatter
# up to -31 dB of it into neighbouring bands for one segment (measured on T1, S1,
# C1, C2 bursts); that is unwanted emission, not use of those bands, so it must
# stay below the threshold, while a burst 20 dB weaker than another stays above.
_MIN_BAND_POWER = 10 ** (-25 / 10)
# Power share outside every sub-band that makes a transmission out of band (-20 dB).
_MAX_OUTSIDE_SHARE = 0.01
# Float slack on times, s; and how far past the freeing instant a delay sleeps, s.
_EPS_S = 1e-9
_MARGIN_S = 1e-6
# A delay re-checks after sleeping; a clock that does not advance must not hang us.
_MAX_DELAYS = 16


@dataclass(frozen=True, slots=True)
class SubBand:
    """One sub-band of the SRD table.

    Attributes
    ----------
    low_hz, high_hz : float
        Band edges, Hz; a frequency f belongs to the band if low_hz <= f < high_hz.
    duty_cycle : float
        Largest allowed on-time fraction over the observation window (0.001 = 0.1 %).
    use : str
        What the band is for, and how sure the table is ("check").
    """

    low_hz: float
    high_hz: float
    duty_cycle: float
    use: str

    @property
    def name(self) -> str:
        """The band as people write it, e.g. ``"868.70-869.20 MHz"``."""
        return f"{self.low_hz / 1e6:.2f}-{self.high_hz / 1e6:.2f} MHz"

    def budget_s(self, window_s: float = OBSERVATION_WINDOW_S) -> float:
        """Allowed airtime per window, s."""
        return self.duty_cycle * window_s


#: The table of the module docstring, sorted and contiguous from 863 to 870 MHz.
SUB_BANDS: tuple[SubBand, ...] = (
    SubBand(863.000e6, 865.000e6, 0.001, "non-specific SRD (check)"),
    SubBand(865.000e6, 868.000e6, 0.01, "non-specific SRD (check)"),
    SubBand(868.000e6, 868.600e6, 0.01, "non-specific SRD"),
    SubBand(868.600e6, 868.700e6, 0.01, "alarms (check)"),
    SubBand(868.700e6, 869.200e6, 0.001, "non-specific SRD"),
    SubBand(869.200e6, 869.250e6, 0.001, "social alarms (check)"),
    SubBand(869.250e6, 869.300e6, 0.001, "alarms (check)"),
    SubBand(869.300e6, 869.400e6, 0.01, "alarms (check)"),
    SubBand(869.400e6, 869.650e6, 0.10, "non-specific SRD, 500 mW"),
    SubBand(869.650e6, 869.700e6, 0.10, "alarms (check)"),
    SubBand(869.700e6, 870.000e6, 1.0, "non-specific SRD, 5 mW (check)"),
)

_TABLE_LOW_HZ = SUB_BANDS[0].low_hz
_TABLE_HIGH_HZ = SUB_BANDS[-1].high_hz


class DutyCycleError(SinkError):
    """A transmission would exceed the duty cycle of a sub-band.

    Attributes
    ----------
    band : SubBand
        The sub-band whose limit is hit.
    used_s : float
        Airtime already counted in the band within the window, s.
    requested_s : float
        Airtime the transmission needs in the band, s.
    wait_s : float
        Seconds until it would fit; ``math.inf`` if it never fits.
    """

    def __init__(
        self,
        band: SubBand,
        used_s: float,
        requested_s: float,
        wait_s: float,
        window_s: float = OBSERVATION_WINDOW_S,
    ):
        self.band = band
        self.used_s = used_s
        self.requested_s = requested_s
        self.wait_s = wait_s
        allowed = (
            f"{band.name} allows {band.duty_cycle:.1%} duty cycle "
            f"({band.budget_s(window_s):.3g} s per {window_s:g} s)"
        )
        if math.isinf(wait_s):
            text = f"{requested_s:.3f} s requested, more than that in any hour"
        else:
            text = (
                f"{used_s:.3f} s used, {requested_s:.3f} s requested; "
                f"that fits again in {wait_s:.0f} s"
            )
        super().__init__(
            f"duty cycle: {allowed}: {text} (the limiter may be disabled only in a "
            "shielded set-up)"
        )


def find_sub_band(freq_hz: float) -> SubBand | None:
    """The sub-band holding ``freq_hz`` (Hz), or None outside 863-870 MHz."""
    for band in SUB_BANDS:
        if band.low_hz <= freq_hz < band.high_hz:
            return band
    return None


def sub_bands_between(low_hz: float, high_hz: float) -> list[SubBand]:
    """Every sub-band that the emission ``low_hz``..``high_hz`` (Hz) touches.

    Raises
    ------
    SinkError
        If part of the range lies outside the table (863-870 MHz).
    """
    if low_hz > high_hz:
        low_hz, high_hz = high_hz, low_hz
    if low_hz < _TABLE_LOW_HZ or high_hz > _TABLE_HIGH_HZ:
        raise SinkError(
            f"duty cycle: {low_hz / 1e6:.4f}-{high_hz / 1e6:.4f} MHz reaches outside "
            f"the SRD sub-bands {_TABLE_LOW_HZ / 1e6:g}-{_TABLE_HIGH_HZ / 1e6:g} MHz "
            "the limiter knows; refusing to transmit there"
        )
    if low_hz == high_hz:
        # A bare carrier; exactly 870 MHz is the top band's closed upper edge.
        return [find_sub_band(low_hz) or SUB_BANDS[-1]]
    return [b for b in SUB_BANDS if b.low_hz < high_hz and low_hz < b.high_hz]


def _check_duration(duration_s: float) -> float:
    if not math.isfinite(duration_s) or duration_s < 0:
        raise ValueError(f"duration_s must be finite and >= 0, got {duration_s}")
    return float(duration_s)


class DutyCycleLimiter:
    """Sliding-window airtime accounting per SRD sub-band.

    Parameters
    ----------
    clock : callable returning float
        Monotonic time, s (``time.monotonic``; tests inject a fake).
    policy : {"refuse", "delay"}
        What ``acquire`` does when the airtime does not fit now.
    enabled : bool
        False lifts every limit (and out-of-band refusal): shielded set-ups only.
    window_s : float
        Observation window, s (EN 300 220: one hour).
    sleep : callable taking seconds
        How the "delay" policy waits (``time.sleep``; tests advance a fake clock).

    Raises
    ------
    ValueError
        Unknown policy or a window that is not positive.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        policy: str = "refuse",
        enabled: bool = True,
        window_s: float = OBSERVATION_WINDOW_S,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
        if not window_s > 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        self.clock = clock
        self.policy = policy
        self.enabled = enabled
        self.window_s = float(window_s)
        self._sleep = sleep
        # Per band: (end time s, duration s) of each counted transmission.
        self._events: dict[SubBand, list[tuple[float, float]]] = {}

    def __repr__(self) -> str:
        return (
            f"DutyCycleLimiter(policy={self.policy!r}, enabled={self.enabled}, "
            f"window_s={self.window_s:g})"
        )

    def _live(self, band: SubBand, now_s: float) -> list[tuple[float, float]]:
        """Events still inside the window, oldest end first; drops expired ones."""
        live = sorted(
            e
            for e in self._events.get(band, ())
            if e[0] > now_s - self.window_s + _EPS_S
        )
        self._events[band] = live
        return live

    def used_s(self, band: SubBand) -> float:
        """Airtime counted against ``band`` in the current window, s."""
        return sum(d for _, d in self._live(band, self.clock()))

    def _band_wait_s(self, band: SubBand, duration_s: float, now_s: float) -> float:
        budget_s = band.budget_s(self.window_s)
        if duration_s > budget_s + _EPS_S:
            return math.inf
        live = self._live(band, now_s)
        excess_s = sum(d for _, d in live) + duration_s - budget_s
        if excess_s <= _EPS_S:
            return 0.0
        # Oldest-ending first: how long until enough of the counted airtime expires.
        freed_s = 0.0
        for end_s, dur_s in live:
            freed_s += dur_s
            if freed_s >= excess_s - _EPS_S:
                return max(end_s + self.window_s - now_s + _MARGIN_S, 0.0)
        return math.inf  # not reached: duration_s <= budget_s frees up eventually

    def _worst(self, airtime: Mapping[SubBand, float]) -> tuple[SubBand | None, float]:
        """The band that makes us wait longest, and that wait, s."""
        now_s = self.clock()
        worst: tuple[SubBand | None, float] = (None, 0.0)
        for band, duration_s in airtime.items():
            wait_s = self._band_wait_s(band, _check_duration(duration_s), now_s)
            if wait_s > worst[1]:
                worst = (band, wait_s)
        return worst

    def check_airtime(self, airtime: Mapping[SubBand, float]) -> float:
        """Seconds to wait before ``airtime`` (band -> s) fits; 0 if it fits now.

        Returns ``math.inf`` if some band's need exceeds its whole budget.
        """
        if not self.enabled:
            return 0.0
        return self._worst(airtime)[1]

    def record_airtime(self, airtime: Mapping[SubBand, float]) -> None:
        """Count ``airtime`` (band -> s) as starting now."""
        if not self.enabled:
            return
        now_s = self.clock()
        for band, duration_s in airtime.items():
            duration_s = _check_duration(duration_s)
            if duration_s > 0:
                self._events.setdefault(band, []).append(
                    (now_s + duration_s, duration_s)
                )

    def _airtime_at(
        self, carrier_hz: float, duration_s: float, bandwidth_hz: float
    ) -> dict[SubBand, float]:
        half_hz = abs(bandwidth_hz) / 2
        bands = sub_bands_between(carrier_hz - half_hz, carrier_hz + half_hz)
        return {band: _check_duration(duration_s) for band in bands}

    def check(
        self, carrier_hz: float, duration_s: float, *, bandwidth_hz: float = 0.0
    ) -> float:
        """Seconds to wait before sending ``duration_s`` at ``carrier_hz``; 0 if now.

        Parameters
        ----------
        carrier_hz : float
            Carrier frequency, Hz.
        duration_s : float
            Airtime of the transmission, s.
        bandwidth_hz : float
            Occupied bandwidth around the carrier, Hz; every sub-band it touches is
            charged.  0 charges the band holding the carrier.

        Returns
        -------
        float
            Seconds; ``math.inf`` if the transmission is longer than the band's
            whole budget per window.

        Raises
        ------
        SinkError
            If the emission reaches outside the table (while enabled).
        ValueError
            If ``duration_s`` is negative or not finite.
        """
        if not self.enabled:
            return 0.0
        return self.check_airtime(
            self._airtime_at(carrier_hz, duration_s, bandwidth_hz)
        )

    def record(
        self, carrier_hz: float, duration_s: float, *, bandwidth_hz: float = 0.0
    ) -> None:
        """Count a transmission of ``duration_s`` at ``carrier_hz`` starting now.

        Parameters and exceptions as for ``check``.
        """
        if self.enabled:
            self.record_airtime(self._airtime_at(carrier_hz, duration_s, bandwidth_hz))

    def acquire(self, airtime: Mapping[SubBand, float]) -> float:
        """Apply the policy to ``airtime`` (band -> s) and count it.

        Returns
        -------
        float
            Seconds waited ("delay"); 0 when it fitted at once or the limiter is off.

        Raises
        ------
        DutyCycleError
            Policy "refuse" and the airtime does not fit now, or any policy and it
            can never fit.  Nothing is counted then.
        """
        if not self.enabled:
            return 0.0
        waited_s = 0.0
        for _ in range(_MAX_DELAYS):
            band, wait_s = self._worst(airtime)
            if band is None:
                self.record_airtime(airtime)
                return waited_s
            if self.policy == "refuse" or math.isinf(wait_s):
                raise DutyCycleError(
                    band, self.used_s(band), airtime[band], wait_s, self.window_s
                )
            log.info("duty cycle of %s reached: waiting %.1f s", band.name, wait_s)
            self._sleep(wait_s)
            waited_s += wait_s
        raise SinkError("duty cycle: the clock does not advance while waiting")


def _band_bins(
    n_bins: int, sample_rate_hz: float, center_freq_hz: float
) -> npt.NDArray[np.floating]:
    """Absolute frequency of each FFT bin, Hz, in ``np.fft.fft`` order."""
    return center_freq_hz + np.fft.fftfreq(n_bins, d=1.0 / sample_rate_hz)


def _segment_powers(iq: npt.NDArray[np.complex64]) -> npt.NDArray[np.float64]:
    """Hann-windowed power spectrum of each ``_SEGMENT_SAMPLES`` segment."""
    n_seg = -(-iq.size // _SEGMENT_SAMPLES)
    padded = np.zeros(n_seg * _SEGMENT_SAMPLES, dtype=np.complex64)
    padded[: iq.size] = iq
    segments = padded.reshape(n_seg, _SEGMENT_SAMPLES)
    spectra = np.fft.fft(segments * np.hanning(_SEGMENT_SAMPLES), axis=1)
    return np.abs(spectra) ** 2


def measure_airtime(
    iq: npt.ArrayLike, sample_rate_hz: float, center_freq_hz: float
) -> dict[SubBand, float]:
    """Airtime per sub-band of a baseband about to be transmitted.

    The baseband is cut into segments of 1024 samples; a sub-band is on during a
    segment where its power is at least -25 dB of the strongest segment's (so the
    splatter of a burst's abrupt edges does not count as use of the neighbouring
    bands).  Gaps between bursts cost nothing; each "on" segment costs its length.
    A burst 20 dB or more below the strongest may lose its partly filled first and
    last segments.

    Parameters
    ----------
    iq : array_like of complex, shape (n_samples,)
        The baseband.
    sample_rate_hz : float
        Sample rate, Hz.
    center_freq_hz : float
        RF frequency of 0 Hz in the baseband, Hz.

    Returns
    -------
    dict of SubBand to float
        Seconds per touched sub-band (bands with no airtime are left out).

    Raises
    ------
    SinkError
        If 1 % or more of the power lies outside 863-870 MHz.
    """
    samples = np.asarray(iq, dtype=np.complex64).ravel()
    if not samples.size:
        return {}
    powers = _segment_powers(samples)
    freqs_hz = _band_bins(_SEGMENT_SAMPLES, sample_rate_hz, center_freq_hz)
    masks = np.array(
        [(freqs_hz >= b.low_hz) & (freqs_hz < b.high_hz) for b in SUB_BANDS]
    )
    band_powers = powers @ masks.T.astype(np.float64)
    totals = powers.sum(axis=1)
    if not totals.max() > 0:
        return {}  # silence
    outside = totals.sum() - band_powers.sum()
    if outside >= _MAX_OUTSIDE_SHARE * totals.sum():
        raise SinkError(
            f"duty cycle: {outside / totals.sum():.0%} of the signal's power lies "
            f"outside the SRD sub-bands {_TABLE_LOW_HZ / 1e6:g}-"
            f"{_TABLE_HIGH_HZ / 1e6:g} MHz the limiter knows (centre "
            f"{center_freq_hz / 1e6:.4f} MHz, {sample_rate_hz / 1e6:g} MS/s); "
            "refusing to transmit there"
        )
    seg_lengths = np.full(powers.shape[0], _SEGMENT_SAMPLES, dtype=np.float64)
    seg_lengths[-1] = samples.size - _SEGMENT_SAMPLES * (powers.shape[0] - 1)
    on = band_powers >= _MIN_BAND_POWER * totals.max()
    seconds = (on * seg_lengths[:, None]).sum(axis=0) / sample_rate_hz
    return {b: float(s) for b, s in zip(SUB_BANDS, seconds, strict=True) if s > 0}
