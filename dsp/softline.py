"""Soft-decision line decoding: soft chips -> bytes, nearest valid code word.

Signal picture: one float per chip, positive for chip 1 (upper tone), its size the
confidence (``dsp.timing``: |Y_one|^2 - |Y_zero|^2, the square-law statistic)::

    NRZ (C)          bit = chip                           sign of each soft chip
    Manchester (S)   bit = pair "01" (1) or "10" (0)      sign of soft[2k+1] - soft[2k]
    3-of-6 (T)       nibble = code word c maximising sum_i soft_i (2 c_i - 1)
                     over the 16 words of EN 13757-4 (reference 1.5)

For Manchester the pair difference is the log-likelihood comparison of "01" against
"10" (both chips vote); for 3-of-6 the correlation picks the valid code word nearest
to the received chips, so one weak chip no longer makes an invalid symbol.  The
error counts report what a hard decoder would have seen: 6-chip words that are not
code words, and Manchester pairs "00"/"11".
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from dsp.linecode import CODE_3OF6

__all__ = [
    "decode_soft",
    "decode_soft_nrz",
    "decode_soft_manchester",
    "decode_soft_3of6",
    "CHIPS_PER_BYTE",
]

#: Chips per byte of each line code (reference 1.4, 1.5).
CHIPS_PER_BYTE: dict[str, int] = {"nrz": 8, "manchester": 16, "3of6": 12}

# Code words as +-1 rows (first chip first) for the correlation decoder.
_WORDS = np.array(
    [[1.0 if (w >> (5 - i)) & 1 else -1.0 for i in range(6)] for w in CODE_3OF6]
)
_VALID = np.zeros(64, dtype=bool)
_VALID[list(CODE_3OF6)] = True
_WEIGHTS = 1 << np.arange(5, -1, -1)


def _check(soft: npt.ArrayLike, per_byte: int) -> npt.NDArray[np.float64]:
    arr = np.asarray(soft, dtype=np.float64)
    if arr.ndim != 1 or arr.size % per_byte:
        raise ValueError(
            f"need a 1-D array of a multiple of {per_byte} soft chips, "
            f"got shape {arr.shape}"
        )
    return arr


def decode_soft_nrz(soft: npt.ArrayLike) -> tuple[bytes, int]:
    """NRZ: each chip is a bit.  Returns (bytes, 0).

    Raises
    ------
    ValueError
        If ``soft`` is not 1-D or not a multiple of 8 chips.
    """
    arr = _check(soft, 8)
    return np.packbits(arr > 0).tobytes(), 0


def decode_soft_manchester(soft: npt.ArrayLike) -> tuple[bytes, int]:
    """Manchester ("01" = 1): returns (bytes, invalid pairs).

    Raises
    ------
    ValueError
        If ``soft`` is not 1-D or not a multiple of 16 chips.
    """
    arr = _check(soft, 16)
    first, second = arr[0::2], arr[1::2]
    bits = second > first
    n_invalid = int(np.count_nonzero((first > 0) == (second > 0)))
    return np.packbits(bits).tobytes(), n_invalid


def decode_soft_3of6(soft: npt.ArrayLike) -> tuple[bytes, int]:
    """3-of-6: nearest code word per 6 chips; returns (bytes, invalid hard words).

    Raises
    ------
    ValueError
        If ``soft`` is not 1-D or not a multiple of 12 chips.
    """
    arr = _check(soft, 12).reshape(-1, 6)
    nibbles = np.argmax(arr @ _WORDS.T, axis=1).astype(np.uint8)
    hard = ((arr > 0).astype(np.int64) * _WEIGHTS).sum(axis=1)
    n_invalid = int(np.count_nonzero(~_VALID[hard]))
    return (nibbles[0::2] << 4 | nibbles[1::2]).astype(np.uint8).tobytes(), n_invalid


def decode_soft(soft: npt.ArrayLike, line_code: str) -> tuple[bytes, int]:
    """Decode soft chips with "nrz", "manchester" or "3of6".

    Raises
    ------
    ValueError
        For an unknown line code or a chip count that is not whole bytes.
    """
    if line_code == "nrz":
        return decode_soft_nrz(soft)
    if line_code == "manchester":
        return decode_soft_manchester(soft)
    if line_code == "3of6":
        return decode_soft_3of6(soft)
    raise ValueError(f"unknown line code {line_code!r}; choose nrz, manchester or 3of6")
