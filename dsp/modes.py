"""Physical-layer parameters of every Wireless M-Bus mode and direction (EN 13757-4).

This module is the one source of PHY facts for the transmitter and the receiver.  A
burst on air looks like this (chips, left = first)::

    | preamble n x "01" | sync | [C: format marker] | line-coded frame | postamble |

    S / T2 downlink  Manchester  32.768 kcps   1 bit = 2 chips    30.5 us per chip
    T meter->other   3-of-6      100 kcps      1 byte = 12 chips  10.0 us per chip
    C                NRZ         100 / 50 kcps 1 bit = 1 chip     10.0 / 20.0 us

Chip polarity
-------------
``HIGH_FREQ_CHIP`` (= 1) is the chip sent at ``carrier + deviation``; chip 0 is sent
at ``carrier - deviation``.  This is the convention of the CC1101-based modules the
standard was written around (TI SWRA234: a "1" is the positive deviation) and of the
open receivers: rtl-wmbus slices ``angle(x[n] * conj(x[n-1])) >= 0`` to chip 1 and then
finds the sync word 0x543D, which it could not with the opposite sign.  The modulator
takes ``invert=True`` for radios that swap the two tones.

Sources: ../shared/docs/wmbus-reference.md sections 1.1 (rates, deviation, carriers),
1.3 (preamble, sync, C frame markers, postamble), 1.4-1.5 (line codes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from numbers import Integral, Real

import numpy as np
import numpy.typing as npt

__all__ = [
    "HIGH_FREQ_CHIP",
    "LINE_CODES",
    "DIRECTIONS",
    "Phy",
    "get_phy",
    "list_phys",
    "chips_from_str",
    "header_chips",
]

# Chip value sent at carrier + deviation (TI SWRA234 CC1101 convention; rtl-wmbus slices
# a positive discriminator output to 1).  See the module docstring.
HIGH_FREQ_CHIP: int = 1

# Information bits carried per chip (EN 13757-4 line codes): Manchester 1 bit / 2 chips,
# 3-of-6 4 bits / 6 chips, NRZ 1 bit / 1 chip.
_INFO_BITS_PER_CHIP: dict[str, float] = {
    "manchester": 0.5,
    "3of6": 4.0 / 6.0,
    "nrz": 1.0,
}
LINE_CODES: tuple[str, ...] = tuple(_INFO_BITS_PER_CHIP)

# "meter": meter -> other device (uplink); "other": other device -> meter (downlink).
DIRECTIONS: tuple[str, ...] = ("meter", "other")

# Sync words in chips, reference 1.3.  T: 10 chips after the "01" preamble (0x543D is
# the last three preamble pairs + this word).  S and T2 downlink: 18 chips (0x547696
# minus the leading "010101").  C: 0x543D, then a 16-chip frame-format marker.
_SYNC_T = "0000111101"
_SYNC_S = "000111011010010110"
_SYNC_C = "0101010000111101"
_MARKERS_C = (("A", "0101010011001101"), ("B", "0101010000111101"))  # 0x54CD / 0x543D

# Preamble lengths in "01" pairs, reference 1.3 (TI / EN 13757-4): S1 long >= 279,
# S1-m / S2 / T2 downlink short >= 15, T >= 19, C >= 16.
_PAIRS_S_LONG = 279
_PAIRS_S_SHORT = 15
_PAIRS_T = 19
_PAIRS_C = 16

# Postamble: 2..8 alternating chips after the last CRC in S and T (reference 1.3); the
# modulator pads it so that frame + postamble is a whole number of bytes (8 chips).
_POSTAMBLE_S_T = 2
# Mode C needs no trailer by the standard, but rtl_433 (and likely other receivers that
# slice on the last transition) loses ~4 % of C frames whose last chip is 1 without
# one; a short alternating trailer, as CC1101-class radios send, removes that loss.
_POSTAMBLE_C = 2

_S_RATE_CPS = 32_768.0
_T_C_RATE_CPS = 100_000.0
_C_DOWN_RATE_CPS = 50_000.0
_F_S_HZ = 868_300_000.0
_F_T_C_HZ = 868_950_000.0
_F_C_DOWN_HZ = 869_525_000.0


@dataclass(frozen=True, slots=True)
class Phy:
    """PHY parameters of one mode in one direction.

    Attributes
    ----------
    mode : str
        "S1", "S1-m", "S2", "T1", "T2", "C1" or "C2".
    direction : str
        "meter" (meter -> other device) or "other" (other device -> meter).
    carrier_hz : float
        Nominal carrier (centre) frequency, Hz.
    chip_rate_hz : float
        Chip rate, chips/s.
    deviation_hz : float
        Peak frequency deviation, Hz (tones at carrier +- deviation_hz).
    line_code : str
        "manchester", "3of6" or "nrz".
    preamble_pairs : int
        Number of "01" chip pairs before the sync word.
    sync_chips : str
        Sync word as a string of "0"/"1" chips, first chip first.
    frame_formats : tuple of str
        Allowed frame formats, ("A",) or ("A", "B").
    gaussian_bt : float or None
        Bandwidth-time product of the Gaussian pulse filter (GFSK); None = plain 2-FSK.
    postamble_min_chips : int
        Minimum number of alternating chips after the frame.
    format_markers : tuple of (str, str)
        Mode C only: (frame format, 16-chip marker sent after the sync word).
    """

    mode: str
    direction: str
    carrier_hz: float
    chip_rate_hz: float
    deviation_hz: float
    line_code: str
    preamble_pairs: int
    sync_chips: str
    frame_formats: tuple[str, ...]
    gaussian_bt: float | None = None
    postamble_min_chips: int = _POSTAMBLE_S_T
    format_markers: tuple[tuple[str, str], ...] = ()

    @property
    def info_bits_per_chip(self) -> float:
        """Information bits per chip: 0.5 (Manchester), 2/3 (3-of-6), 1.0 (NRZ)."""
        return _INFO_BITS_PER_CHIP[self.line_code]

    @property
    def bit_rate_bps(self) -> float:
        """Information bit rate, bit/s (use it for Eb in ``dsp.impair.add_awgn``)."""
        return self.chip_rate_hz * self.info_bits_per_chip

    @property
    def half_band_hz(self) -> float:
        """Half width of the occupied band, Hz: deviation + chip rate (generous)."""
        return self.deviation_hz + self.chip_rate_hz

    @property
    def min_sample_rate_hz(self) -> float:
        """Lowest complex sample rate, Hz: 2 samples per chip, both tones unaliased."""
        return max(
            2.0 * self.chip_rate_hz, 2.0 * (self.deviation_hz + self.chip_rate_hz / 2)
        )

    def with_overrides(self, **overrides: object) -> Phy:
        """A copy with some fields replaced, checked (e.g. ``deviation_hz=40e3``).

        Raises
        ------
        ValueError
            For a field that does not exist or cannot be overridden (mode, direction,
            line_code, sync_chips, frame_formats, format_markers), or an out-of-range
            value.
        """
        fixed = {
            "mode",
            "direction",
            "line_code",
            "sync_chips",
            "frame_formats",
            "format_markers",
        }
        unknown = set(overrides) - (set(self.__slots__) - fixed)
        if unknown:
            allowed = sorted(set(self.__slots__) - fixed)
            raise ValueError(
                f"cannot override {sorted(unknown)}; overridable: {allowed}"
            )
        new = replace(self, **overrides)  # type: ignore[arg-type]
        _check_phy(new)
        return new

    def marker_chips(self, frame_format: str) -> str:
        """Frame-format marker sent after the sync word ("" for modes S and T).

        Raises
        ------
        ValueError
            If ``frame_format`` is not allowed for this mode and direction.
        """
        if frame_format not in self.frame_formats:
            raise ValueError(
                f"frame format {frame_format!r} not allowed for mode {self.mode} "
                f"({self.direction}); choose one of {list(self.frame_formats)}"
            )
        return dict(self.format_markers).get(frame_format, "")


def _check_phy(phy: Phy) -> None:
    """Raise ValueError for physically meaningless values (after an override)."""
    for name in ("carrier_hz", "chip_rate_hz", "deviation_hz"):
        value = getattr(phy, name)
        if not isinstance(value, Real) or not 0 < float(value) < math.inf:
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    for name in ("preamble_pairs", "postamble_min_chips"):
        value = getattr(phy, name)
        if not isinstance(value, Integral) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    bt = phy.gaussian_bt
    if bt is not None and (not isinstance(bt, Real) or not 0 < float(bt) < math.inf):
        raise ValueError(f"gaussian_bt must be None or a positive number, got {bt!r}")


def _s_phy(mode: str, direction: str, pairs: int) -> Phy:
    # Mode S and the T2 downlink share one PHY: 868.3 MHz, Manchester, 32.768 kcps.
    return Phy(
        mode,
        direction,
        _F_S_HZ,
        _S_RATE_CPS,
        50_000.0,
        "manchester",
        pairs,
        _SYNC_S,
        ("A",),
    )


def _c_phy(mode: str, direction: str) -> Phy:
    if direction == "meter":
        carrier_hz, rate_cps, dev_hz, bt = _F_T_C_HZ, _T_C_RATE_CPS, 45_000.0, None
    else:  # C2 downlink: 869.525 MHz, 50 kcps, GFSK +-25 kHz (reference 1.1)
        carrier_hz, rate_cps, dev_hz, bt = _F_C_DOWN_HZ, _C_DOWN_RATE_CPS, 25_000.0, 0.5
    return Phy(
        mode,
        direction,
        carrier_hz,
        rate_cps,
        dev_hz,
        "nrz",
        _PAIRS_C,
        _SYNC_C,
        ("A", "B"),
        bt,
        _POSTAMBLE_C,
        _MARKERS_C,
    )


def _t_phy(mode: str) -> Phy:
    return Phy(
        mode,
        "meter",
        _F_T_C_HZ,
        _T_C_RATE_CPS,
        50_000.0,
        "3of6",
        _PAIRS_T,
        _SYNC_T,
        ("A",),
    )


_PHYS: dict[tuple[str, str], Phy] = {
    ("S1", "meter"): _s_phy("S1", "meter", _PAIRS_S_LONG),
    ("S1-m", "meter"): _s_phy("S1-m", "meter", _PAIRS_S_SHORT),
    ("S2", "meter"): _s_phy("S2", "meter", _PAIRS_S_SHORT),
    ("S2", "other"): _s_phy("S2", "other", _PAIRS_S_SHORT),
    ("T1", "meter"): _t_phy("T1"),
    ("T2", "meter"): _t_phy("T2"),
    ("T2", "other"): _s_phy("T2", "other", _PAIRS_S_SHORT),
    ("C1", "meter"): _c_phy("C1", "meter"),
    ("C2", "meter"): _c_phy("C2", "meter"),
    ("C2", "other"): _c_phy("C2", "other"),
}


def get_phy(mode: str, direction: str = "meter") -> Phy:
    """PHY parameters of ``mode`` in ``direction``.

    Parameters
    ----------
    mode : str
        "S1", "S1-m", "S2", "T1", "T2", "C1" or "C2".
    direction : str
        "meter" (meter -> other, the default) or "other" (other -> meter).

    Returns
    -------
    Phy

    Raises
    ------
    ValueError
        Unknown mode or direction, or a direction the mode does not have (S1, S1-m, T1
        and C1 are meter -> other only); the message names the valid choices.
    """
    phy = _PHYS.get((mode, direction))
    if phy is not None:
        return phy
    modes = sorted({key[0] for key in _PHYS})
    if mode not in modes:
        raise ValueError(f"unknown mode {mode!r}; choose one of {modes}")
    valid = [key[1] for key in _PHYS if key[0] == mode]
    raise ValueError(
        f"mode {mode} has no direction {direction!r}; choose one of {valid}"
    )


def list_phys() -> list[Phy]:
    """Every (mode, direction) PHY this module knows, in a stable order."""
    return list(_PHYS.values())


def chips_from_str(chips: str) -> npt.NDArray[np.uint8]:
    """Convert a string of "0"/"1" characters to a uint8 chip array of shape (n,).

    Raises
    ------
    ValueError
        If the string holds anything but "0" and "1".
    """
    if set(chips) - {"0", "1"}:
        raise ValueError(f"chip string may hold only '0' and '1', got {chips!r}")
    return np.frombuffer(chips.encode("ascii"), dtype=np.uint8) - np.uint8(ord("0"))


def header_chips(
    phy: Phy, frame_format: str = "A", preamble_pairs: int | None = None
) -> npt.NDArray[np.uint8]:
    """Chips sent before the line-coded frame: preamble, sync word, C frame marker.

    Parameters
    ----------
    phy : Phy
        Mode and direction (``dsp.modes.get_phy``).
    frame_format : str
        "A" or "B" (B only in mode C).
    preamble_pairs : int or None
        Number of "01" pairs; None takes ``phy.preamble_pairs``.

    Returns
    -------
    numpy.ndarray of uint8, shape (2 * pairs + len(sync) + len(marker),)

    Raises
    ------
    ValueError
        For a frame format the mode does not allow, or a negative ``preamble_pairs``.
    """
    marker = phy.marker_chips(frame_format)
    pairs = phy.preamble_pairs if preamble_pairs is None else preamble_pairs
    if not isinstance(pairs, Integral) or isinstance(pairs, bool) or pairs < 0:
        raise ValueError(f"preamble_pairs must be a non-negative int, got {pairs!r}")
    preamble = np.tile(np.array([0, 1], dtype=np.uint8), int(pairs))
    return np.concatenate(
        [preamble, chips_from_str(phy.sync_chips), chips_from_str(marker)]
    )
