"""Ideal frame success of binary FSK against Eb/N0: the curves the measurements face.

Eb is the energy per *information* bit and N0 the one-sided noise density, as
``dsp.impair.add_awgn`` and ``sdr.transmit.render`` define them.  A line code sends
``r`` information bits per chip (NRZ 1, 3-of-6 2/3, Manchester 1/2), so a chip
carries Ec = r Eb.

Two detectors, both for orthogonal tones (modulation index h = 1 for T, ~3 for S;
C's h = 0.9 is nearly orthogonal, so C loses a little against these lines):

``ideal``
    Each information bit is one binary decision between two orthogonal signals of
    energy Eb, detected noncoherently: p = 0.5 exp(-Eb / 2 N0).  For NRZ that is
    chip-by-chip detection.  For Manchester it is the whole two-chip symbol ("01"
    against "10", orthogonal, energy 2 Ec = Eb) detected with one unknown phase.
    For 3-of-6 it is a reference level only: its 16 words of 6 chips are not an
    orthogonal set, and exact soft-decision word error has no closed form; a soft
    3-of-6 decoder lies between this line and the ``chip`` line.
``chip``
    Every chip decided alone (noncoherent, hard), and a bit right only if all its
    chips are: pc = 0.5 exp(-r Eb / 2 N0), the frame needs all ``n_bits / r`` chips.
    For NRZ it equals ``ideal``; for Manchester and 3-of-6 it is what a receiver
    that throws away soft information gets.

Coherent detection of orthogonal BFSK, p = Q(sqrt(Eb / N0)), is given too
(``coherent``): a receiver that tracks the carrier phase over the frame (ours does,
dsp.fsk.coherent_soft) can do better than the noncoherent line, by up to ~1 dB.
None of these lines bounds every receiver: a detector that uses the phase
continuity of the FSK signal over several chips (C has h = 0.9, whose tones are
slightly anti-correlated), or the redundancy of T's 3-of-6 words (a soft decoder),
can do better than even the coherent orthogonal line.

A frame of ``n_bits`` information bits (every on-air byte after the sync word, CRCs
included) succeeds when every bit is right: P = (1 - p) ** n_bits, the CRC taken as
a perfect error detector.  Preamble and sync detection are assumed perfect.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = [
    "INFO_BITS_PER_CHIP",
    "bit_error_noncoherent",
    "bit_error_coherent",
    "frame_success",
    "ebn0_for_success",
]

#: Information bits per chip of each line code (EN 13757-4 section 7).
INFO_BITS_PER_CHIP = {"nrz": 1.0, "3of6": 2.0 / 3.0, "manchester": 0.5}
_DETECTORS = ("ideal", "chip", "coherent")


def _linear(ebn0_db: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return 10.0 ** (np.asarray(ebn0_db, dtype=np.float64) / 10.0)


def bit_error_noncoherent(ebn0_db: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """0.5 exp(-Eb / 2 N0): noncoherent orthogonal BFSK, per decision of energy Eb.

    Parameters
    ----------
    ebn0_db : array_like of float
        Energy per decision over N0, dB.
    """
    return 0.5 * np.exp(-_linear(ebn0_db) / 2.0)


def bit_error_coherent(ebn0_db: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Q(sqrt(Eb / N0)) = 0.5 erfc(sqrt(Eb / 2 N0)): coherent orthogonal BFSK."""
    from scipy.special import erfc

    return 0.5 * erfc(np.sqrt(_linear(ebn0_db) / 2.0))


def frame_success(
    ebn0_db: npt.ArrayLike, n_bits: int, line_code: str, detector: str = "ideal"
) -> npt.NDArray[np.float64]:
    """Probability that all ``n_bits`` information bits of a frame are right.

    Parameters
    ----------
    ebn0_db : array_like of float
        Eb/N0 per information bit, dB.
    n_bits : int
        Information bits of the frame (8 per on-air byte after the sync word).
    line_code : {"nrz", "3of6", "manchester"}
    detector : {"ideal", "chip", "coherent"}
        See the module docstring.

    Returns
    -------
    numpy.ndarray of float64
        Same shape as ``ebn0_db``, values in [0, 1].

    Raises
    ------
    ValueError
        Unknown line code or detector, or a negative ``n_bits``.
    """
    if line_code not in INFO_BITS_PER_CHIP:
        raise ValueError(f"line code must be one of {list(INFO_BITS_PER_CHIP)}")
    if detector not in _DETECTORS:
        raise ValueError(f"detector must be one of {list(_DETECTORS)}")
    if n_bits < 0:
        raise ValueError(f"n_bits must be >= 0, got {n_bits}")
    if detector == "coherent":
        return (1.0 - bit_error_coherent(ebn0_db)) ** n_bits
    if detector == "ideal":
        return (1.0 - bit_error_noncoherent(ebn0_db)) ** n_bits
    rate = INFO_BITS_PER_CHIP[line_code]
    chip_db = np.asarray(ebn0_db, dtype=np.float64) + 10.0 * math.log10(rate)
    n_chips = int(round(n_bits / rate))
    return (1.0 - bit_error_noncoherent(chip_db)) ** n_chips


def ebn0_for_success(
    target: float, n_bits: int, line_code: str, detector: str = "ideal"
) -> float:
    """Eb/N0 (dB) at which ``frame_success`` reaches ``target`` (bisection, 1e-6 dB).

    Raises
    ------
    ValueError
        ``target`` outside (0, 1).
    """
    if not 0.0 < target < 1.0:
        raise ValueError(f"target must be in (0, 1), got {target}")
    low, high = -10.0, 40.0
    while high - low > 1e-6:
        mid = 0.5 * (low + high)
        if frame_success(mid, n_bits, line_code, detector) < target:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)
