"""Chip-level parameters of each radio channel's modes, for detection and decoding.

One family per radio channel (``dsp.channel_plan``), built from the mode table
(``dsp.modes``, reference 1.1 and 1.3)::

    family  modes                       chips/s  deviation     detection pattern
    S       S1, S1-m, S2, T2 downlink   32 768   50 (75) kHz   8 x "01" + 18-chip sync
    TC      T1, T2, C1, C2 meter->other 100 000  50 kHz        12 x "01" + 0000111101
    C2      C2 other->meter (GFSK)      50 000   25 kHz        12 x "01" + 0000111101

T and C share the sync 0x543D, whose last 10 chips are T's sync word; the C frame
marker follows (``dsp.framing``).
"""

from __future__ import annotations

from dataclasses import dataclass

from dsp.modes import get_phy

__all__ = ["ChipFamily", "CHIP_FAMILIES"]

# Spacing of the carrier-offset hypotheses and of the detector's tones, Hz: a quarter
# of the 100 kcps chip rate; an eighth of the 50 kcps downlink's, whose GFSK preamble
# swings less than its nominal deviation and so tolerates less offset.
_TONE_STEP_HZ = 25_000.0
_TONE_STEP_C2_HZ = 12_500.0
# Preamble pairs in the detection pattern: every mode sends more (reference 1.3).
# 12 pairs + a 10-chip sync for T/C; 8 pairs + the 18-chip S sync, so that both
# patterns span 34 chips: a 2 % chip-rate error then moves the pattern's ends by only
# a third of a chip from the grid phase that fits its middle.
_PATTERN_PAIRS = {"S": 8, "TC": 12, "C2": 12}


def _spread(limit: float, step: float) -> tuple[float, ...]:
    """0, -step, +step, -2 step, ... out to +-limit (nominal first: ties go to it)."""
    n = int(round(limit / step))
    return (0.0, *(s * k * step for k in range(1, n + 1) for s in (-1.0, 1.0)))


# Chip-rate errors the detector tries, as fractions, 3 % apart: within 1.5 % of a
# hypothesis the pattern's ends stay a quarter chip from where it samples them.
# EN 13757-4 lets T meters be off by up to +-12 % (reference 1.1), S meters +-2 % and
# C meters +-100 ppm: +-6 % is generous for S and C2 and keeps their scan cheaper
# (C shares the T channel's hypotheses).
_RATE_ERRORS = {
    "S": _spread(0.06, 0.03),
    "TC": _spread(0.12, 0.03),
    "C2": _spread(0.06, 0.03),
}


@dataclass(frozen=True, slots=True)
class ChipFamily:
    """Chip-level parameters shared by the modes of one radio channel.

    Attributes
    ----------
    name : str
        Radio channel name ("S", "TC", "C2").
    chip_rate_hz : float
        Chips per second.
    deviation_hz : float
        Nominal tone offset from the carrier, Hz (a multiple of the tone step).
    deviations_hz : tuple of float
        Tone offsets the detector tries, Hz (multiples of the tone step).
    pattern : str
        Detection pattern, "0"/"1" chips, first chip first.
    max_errors : int
        Chips of the pattern that may be wrong in a match.
    sync_chips : int
        Length of the sync word at the end of the pattern, chips.
    max_sync_errors : int
        Chips of the sync word that may be wrong: fewer than half its distance from
        the preamble ("0101..."), so that the preamble alone never matches, even as
        a chip-rate hypothesis a few percent off sees it: slipping by a chip now and
        then (one chip repeated or left out).
    tone_step_hz : float
        Spacing of the carrier-offset hypotheses, Hz (divides the deviation).
    rate_errors : tuple of float
        Chip-rate errors the detector tries, fractions of the nominal rate (0 first).
    """

    name: str
    chip_rate_hz: float
    deviation_hz: float
    deviations_hz: tuple[float, ...]
    pattern: str
    max_errors: int
    sync_chips: int
    max_sync_errors: int
    tone_step_hz: float
    rate_errors: tuple[float, ...]

    @property
    def n_pattern(self) -> int:
        """Chips in the pattern."""
        return len(self.pattern)

    def chip_periods(self, sample_rate_hz: float) -> tuple[float, ...]:
        """Samples per chip of each chip-rate hypothesis at this rate, in the
        order of ``rate_errors``."""
        nominal = sample_rate_hz / self.chip_rate_hz
        return tuple(nominal / (1.0 + e) for e in self.rate_errors)


def _preamble_distance(sync: str, slips: bool) -> int:
    """Fewest chips in which ``sync`` differs from the "01" preamble at any phase
    (with ``slips``: also with one chip of it repeated or left out)."""
    n = len(sync)
    looks = []
    for ph in (0, 1):
        pre = ("01" * (n + 2))[ph:]
        looks.append(pre[:n])
        if slips:
            for i in range(n):
                looks.append((pre[: i + 1] + pre[i:])[:n])
                looks.append((pre[:i] + pre[i + 1 :])[:n])
    return min(sum(a != b for a, b in zip(sync, look, strict=True)) for look in looks)


def _family(
    name: str,
    mode: str,
    direction: str,
    max_errors: int,
    step_hz: float,
    extra_devs_hz: tuple[float, ...] = (),
) -> ChipFamily:
    phy = get_phy(mode, direction)
    sync = phy.sync_chips
    if phy.line_code == "nrz":  # C sync "010101" + T sync: keep the T-length tail
        sync = sync[-10:]
    pattern = "01" * _PATTERN_PAIRS[name] + sync
    dev = round(phy.deviation_hz / step_hz) * step_hz
    max_sync = (_preamble_distance(sync, slips=True) - 1) // 2
    return ChipFamily(
        name,
        phy.chip_rate_hz,
        dev,
        (dev, *extra_devs_hz),
        pattern,
        max_errors,
        len(sync),
        max_sync,
        step_hz,
        _RATE_ERRORS[name],
    )


# S: S1/S2/T2-downlink sync (18 chips); TC: T sync = tail of C sync (10 chips); C2
# downlink: the C sync at 50 kcps.  T and C meters deviate 50 / 45 kHz: one detector
# at 50 kHz serves both (5 kHz off a 10 us chip costs nothing measurable).  Mode S
# deviates 40..80 kHz (reference 1.1); its 30 us chips resolve tones 33 kHz apart,
# so a second detector at 75 kHz covers the upper part of that range.
CHIP_FAMILIES: dict[str, ChipFamily] = {
    "S": _family("S", "S1", "meter", 4, _TONE_STEP_HZ, (75_000.0,)),
    "TC": _family("TC", "T1", "meter", 4, _TONE_STEP_HZ),
    "C2": _family("C2", "C2", "other", 4, _TONE_STEP_C2_HZ),
}
