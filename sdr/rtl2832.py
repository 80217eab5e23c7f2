"""What an RTL2832U dongle can do: sample rates, tuners, their gains and ranges.

Shared by the in-process RTL-SDR source, the rtl_tcp client and the rtl_tcp test
server, so that an impossible setting is refused with one clear message before any
device (or server, which never answers a command) is asked.

Facts, from librtlsdr (osmocom rtl-sdr) and the tuner data sheets::

    sample rate   225 001 .. 300 000 S/s or 900 001 .. 3 200 000 S/s (the RTL2832U
                  resampler; librtlsdr refuses the rest with -EINVAL); above
                  2.4 MS/s USB transfers may drop samples
    tuner codes   0 unknown, 1 E4000, 2 FC0012, 3 FC0013, 4 FC2580, 5 R820T,
                  6 R828D (enum rtlsdr_tuner; rtl_tcp sends it in its header)
    gains         per tuner, in tenths of a dB (the tables librtlsdr reports)
    tuning range  R820T/R828D 24..1766 MHz, E4000 52..2200 MHz, FC0012 22..948.6
                  MHz, FC0013 22..1100 MHz, FC2580 146..924 MHz (data sheets)
"""

from __future__ import annotations

from dataclasses import dataclass

from stack.errors import SourceError

__all__ = [
    "TUNER_NAMES",
    "TUNER_R820T",
    "TunerInfo",
    "check_frequency",
    "check_sample_rate",
    "nearest_gain_tenth_db",
    "tuner_info",
]

#: rtlsdr_tuner codes (librtlsdr rtl-sdr.h, enum rtlsdr_tuner).
TUNER_NAMES: dict[int, str] = {
    0: "unknown",
    1: "E4000",
    2: "FC0012",
    3: "FC0013",
    4: "FC2580",
    5: "R820T",
    6: "R828D",
}
TUNER_R820T = 5

# Sample rates the RTL2832U resampler accepts, S/s (librtlsdr rtlsdr_set_sample_rate):
# lower bounds exclusive, upper bounds inclusive.
_RATE_BANDS_HZ = ((225_000, 300_000), (900_000, 3_200_000))

# rtl_tcp sends frequencies as an unsigned 32-bit number of Hz.
_MAX_FREQ_HZ = 2**32 - 1


@dataclass(frozen=True, slots=True)
class TunerInfo:
    """One tuner chip: its name, gain steps (tenths of dB) and tuning range (Hz)."""

    name: str
    gains_tenth_db: tuple[int, ...]
    min_freq_hz: float
    max_freq_hz: float


_R82XX_GAINS = (
    0, 9, 14, 27, 37, 77, 87, 125, 144, 157, 166, 197, 207, 229, 254,
    280, 297, 328, 338, 364, 372, 386, 402, 421, 434, 439, 445, 480, 496,
)  # fmt: skip
_FC0013_GAINS = (
    -99, -73, -65, -63, -60, -58, -54, 58, 61, 63, 65, 67, 68, 70, 71,
    179, 181, 182, 184, 186, 188, 191, 197,
)  # fmt: skip
# Gain tables as librtlsdr reports them (rtlsdr_get_tuner_gains), tenths of dB.
_TUNERS: dict[int, TunerInfo] = {
    1: TunerInfo(
        "E4000",
        (-10, 15, 40, 65, 90, 115, 140, 165, 190, 215, 240, 290, 340, 420),
        52e6,
        2200e6,
    ),
    2: TunerInfo("FC0012", (-99, -40, 71, 179, 192), 22e6, 948.6e6),
    3: TunerInfo("FC0013", _FC0013_GAINS, 22e6, 1100e6),
    4: TunerInfo("FC2580", (0,), 146e6, 924e6),
    5: TunerInfo("R820T", _R82XX_GAINS, 24e6, 1766e6),
    6: TunerInfo("R828D", _R82XX_GAINS, 24e6, 1766e6),
}


def tuner_info(tuner_type: int) -> TunerInfo | None:
    """The facts of a tuner code; None for 0 (unknown) or a code we do not know."""
    return _TUNERS.get(tuner_type)


def check_sample_rate(sample_rate_hz: float, where: str) -> int:
    """A sample rate the RTL2832U can run, as a whole number of S/s.

    Raises
    ------
    SourceError
        If the rate is not a whole number in one of the two supported bands; the
        message gives the bands and where (``where``) it was asked for.
    """
    rate = round(sample_rate_hz)
    if rate == sample_rate_hz and any(lo < rate <= hi for lo, hi in _RATE_BANDS_HZ):
        return rate
    raise SourceError(
        f"{where}: sample rate {sample_rate_hz:g} S/s not supported by the RTL2832U; "
        "use 225001-300000 or 900001-3200000 S/s (e.g. 2.4M or 1.6M)"
    )


def check_frequency(freq_hz: float, tuner: TunerInfo | None, where: str) -> int:
    """A frequency the tuner can reach, in whole Hz.

    Raises
    ------
    SourceError
        If it is not positive, does not fit the 32-bit rtl_tcp/librtlsdr field, or
        lies outside the tuner's range (when the tuner is known).
    """
    freq = round(freq_hz)
    if not 0 < freq <= _MAX_FREQ_HZ:
        raise SourceError(
            f"{where}: cannot tune to {freq_hz:g} Hz (must be 1 Hz .. 4.29 GHz)"
        )
    if tuner is not None and not tuner.min_freq_hz <= freq <= tuner.max_freq_hz:
        raise SourceError(
            f"{where}: the {tuner.name} tuner cannot tune to {freq / 1e6:g} MHz; it "
            f"covers {tuner.min_freq_hz / 1e6:g}-{tuner.max_freq_hz / 1e6:g} MHz"
        )
    return freq


def nearest_gain_tenth_db(
    gain_db: float, gains_tenth_db: tuple[int, ...] | list[int], where: str
) -> int:
    """The supported gain step nearest to ``gain_db``, in tenths of a dB.

    A request more than 1 dB outside the steps is refused rather than clipped: it
    is a typo (``--gain 496`` for 49.6 dB), not a wish for the maximum.

    Raises
    ------
    SourceError
        If no steps are known or the gain is out of their range.
    """
    if not gains_tenth_db:
        raise SourceError(f"{where}: the device reports no manual gain steps")
    steps = sorted(gains_tenth_db)
    low_db, high_db = steps[0] / 10, steps[-1] / 10
    if not low_db - 1.0 <= gain_db <= high_db + 1.0:
        raise SourceError(
            f"{where}: gain {gain_db:g} dB outside the tuner's {low_db:g}..{high_db:g}"
            " dB; give a gain in that range or 'auto'"
        )
    return min(steps, key=lambda step: abs(step - 10 * gain_db))
