"""Line codes of EN 13757-4: bytes <-> bits <-> chips.

Signal picture (left = first on air, bytes MSB first in every mode, reference 1.2)::

    byte 0x12 -> bits 0 0 0 1 0 0 1 0
    NRZ (mode C)          chips = bits                       1 chip per bit
    Manchester (mode S)   bit 1 -> "01", bit 0 -> "10"        2 chips per bit
    3-of-6 (mode T)       high nibble -> 6 chips, then low   12 chips per byte
                          0x12 -> 001101 001110

Arrays of bits and chips are 1-D ``uint8`` holding 0/1.  Decoders do not raise on bad
symbols: they decode what they can and return the number of invalid symbols, so the
caller (and finally the CRC) decides.  They raise ``ValueError`` only for misuse: values
other than 0/1, a wrong array shape or a length that is not a whole number of symbols.

3-of-6 and odd byte counts: N bytes are 12*N chips, which is not a multiple of 8 when N
is odd; the transmitter then pads to the byte boundary with the postamble (reference
1.5, done in ``dsp.modulator.frame_chips``), the decoder here only ever sees 12*N chips.

Sources: ../shared/docs/wmbus-reference.md 1.2, 1.4 (Manchester), 1.5 (3-of-6 table).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "bytes_to_bits",
    "bits_to_bytes",
    "encode_manchester",
    "decode_manchester",
    "encode_3of6",
    "decode_3of6",
    "encode_nrz",
    "decode_nrz",
    "encode_line",
    "decode_line",
    "CODE_3OF6",
]

# EN 13757-4 3-of-6 table (reference 1.5): nibble -> 6-bit code word, MSB sent first.
CODE_3OF6: tuple[int, ...] = (
    0x16,
    0x0D,
    0x0E,
    0x0B,
    0x1C,
    0x19,
    0x1A,
    0x13,
    0x2C,
    0x25,
    0x26,
    0x23,
    0x34,
    0x31,
    0x32,
    0x29,
)

# Inverse table over all 64 six-chip words; -1 marks a word that is not a code word.
_DECODE_3OF6 = np.full(64, -1, dtype=np.int16)
_DECODE_3OF6[list(CODE_3OF6)] = np.arange(16, dtype=np.int16)

# Chip weights of a 6-chip word, first chip = most significant.
_WEIGHTS_6 = np.array([32, 16, 8, 4, 2, 1], dtype=np.int16)

# Manchester pairs per reference 1.4: "01" = 1, "10" = 0.
_MANCHESTER_ONE = (0, 1)


def _as_binary(chips: npt.ArrayLike, what: str) -> npt.NDArray[np.uint8]:
    """Check a 1-D array of 0/1 values and return it as uint8."""
    arr = np.asarray(chips)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer) and arr.dtype != np.bool_:
        raise ValueError(f"{what} must be integers 0/1, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(f"{what} may hold only 0 and 1")
    return arr.astype(np.uint8, copy=False)


def bytes_to_bits(data: bytes) -> npt.NDArray[np.uint8]:
    """Unpack bytes to bits, MSB of each byte first.

    Parameters
    ----------
    data : bytes
        Any bytes-like object.

    Returns
    -------
    numpy.ndarray of uint8, shape (8 * len(data),)
        0/1 bits.
    """
    return np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8))


def bits_to_bytes(bits: npt.ArrayLike) -> bytes:
    """Pack bits (MSB of each byte first) to bytes.

    Parameters
    ----------
    bits : array_like of int, shape (8 * n,)
        0/1 values.

    Returns
    -------
    bytes
        ``n`` bytes.

    Raises
    ------
    ValueError
        If ``bits`` is not 1-D 0/1 data or its length is not a multiple of 8.
    """
    arr = _as_binary(bits, "bits")
    if arr.size % 8:
        raise ValueError(f"bit count must be a multiple of 8, got {arr.size}")
    return np.packbits(arr).tobytes()


def encode_manchester(bits: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """Manchester-encode bits: 1 -> chips "01", 0 -> chips "10" (EN 13757-4, mode S).

    Parameters
    ----------
    bits : array_like of int, shape (n,)
        0/1 bits.

    Returns
    -------
    numpy.ndarray of uint8, shape (2 * n,)
        Chips.

    Raises
    ------
    ValueError
        If ``bits`` is not 1-D 0/1 data.
    """
    arr = _as_binary(bits, "bits")
    chips = np.empty(2 * arr.size, dtype=np.uint8)
    chips[0::2] = 1 - arr  # first chip is the complement of the bit ...
    chips[1::2] = arr  # ... second chip equals it: "01" = 1
    return chips


def decode_manchester(chips: npt.ArrayLike) -> tuple[npt.NDArray[np.uint8], int]:
    """Decode Manchester chip pairs ("01" = 1, "10" = 0).

    Parameters
    ----------
    chips : array_like of int, shape (2 * n,)
        0/1 chips, starting on a pair boundary.

    Returns
    -------
    bits : numpy.ndarray of uint8, shape (n,)
        Decoded bits.  An invalid pair ("00" or "11") decodes to its second chip.
    n_invalid_pairs : int
        Number of invalid pairs.

    Raises
    ------
    ValueError
        If ``chips`` is not 1-D 0/1 data or has an odd length.
    """
    arr = _as_binary(chips, "chips")
    if arr.size % 2:
        raise ValueError(f"Manchester needs an even chip count, got {arr.size}")
    first, second = arr[0::2], arr[1::2]
    n_invalid = int(np.count_nonzero(first == second))
    return second.copy(), n_invalid


def encode_3of6(data: bytes) -> npt.NDArray[np.uint8]:
    """3-of-6 encode bytes: each nibble (high first) -> 6 chips, MSB first (mode T).

    Parameters
    ----------
    data : bytes
        Any bytes-like object of length N.

    Returns
    -------
    numpy.ndarray of uint8, shape (12 * N,)
        Chips.  Padding to a byte boundary is the modulator's job (postamble).
    """
    raw = np.frombuffer(bytes(data), dtype=np.uint8)
    nibbles = np.empty(2 * raw.size, dtype=np.uint8)
    nibbles[0::2] = raw >> 4
    nibbles[1::2] = raw & 0x0F
    words = np.asarray(CODE_3OF6, dtype=np.uint8)[nibbles]
    # Each code word is 6 bits in a byte: unpack all 8 and drop the two leading zeros.
    return np.unpackbits(words[:, None], axis=1)[:, 2:].reshape(-1)


def decode_3of6(chips: npt.ArrayLike) -> tuple[bytes, int]:
    """Decode 3-of-6 chips back to bytes.

    Parameters
    ----------
    chips : array_like of int, shape (12 * N,)
        0/1 chips, starting on a symbol boundary.

    Returns
    -------
    data : bytes
        N decoded bytes; a nibble whose 6-chip word is not in the table decodes to 0.
    n_invalid_symbols : int
        Number of 6-chip words not in the EN 13757-4 table.

    Raises
    ------
    ValueError
        If ``chips`` is not 1-D 0/1 data or its length is not a multiple of 12.
    """
    arr = _as_binary(chips, "chips")
    if arr.size % 12:
        raise ValueError(
            f"3-of-6 needs a multiple of 12 chips (one byte), got {arr.size}"
        )
    words = arr.reshape(-1, 6).astype(np.int16) @ _WEIGHTS_6
    nibbles = _DECODE_3OF6[words]
    n_invalid = int(np.count_nonzero(nibbles < 0))
    nibbles = np.where(nibbles < 0, 0, nibbles).astype(np.uint8)
    return (nibbles[0::2] << 4 | nibbles[1::2]).astype(np.uint8).tobytes(), n_invalid


def encode_nrz(bits: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """NRZ (mode C): chips are the bits.

    Raises
    ------
    ValueError
        If ``bits`` is not 1-D 0/1 data.
    """
    return _as_binary(bits, "bits").copy()


def decode_nrz(chips: npt.ArrayLike) -> tuple[npt.NDArray[np.uint8], int]:
    """NRZ (mode C): bits are the chips; no symbol can be invalid, so the count is 0.

    Raises
    ------
    ValueError
        If ``chips`` is not 1-D 0/1 data.
    """
    return _as_binary(chips, "chips").copy(), 0


def encode_line(data: bytes, line_code: str) -> npt.NDArray[np.uint8]:
    """Line-code bytes with "manchester", "3of6" or "nrz" (see ``dsp.modes.Phy``).

    Returns
    -------
    numpy.ndarray of uint8, shape (16 * N,), (12 * N,) or (8 * N,)
        Chips.

    Raises
    ------
    ValueError
        For an unknown ``line_code``.
    """
    if line_code == "3of6":
        return encode_3of6(data)
    if line_code == "manchester":
        return encode_manchester(bytes_to_bits(data))
    if line_code == "nrz":
        return encode_nrz(bytes_to_bits(data))
    raise ValueError(f"unknown line code {line_code!r}; choose manchester, 3of6 or nrz")


def decode_line(chips: npt.ArrayLike, line_code: str) -> tuple[bytes, int]:
    """Decode chips of a whole number of bytes; the inverse of ``encode_line``.

    Returns
    -------
    data : bytes
    n_invalid : int
        Invalid symbols (3-of-6 words or Manchester pairs).

    Raises
    ------
    ValueError
        For an unknown ``line_code``, non-0/1 chips, or a chip count that is not a whole
        number of bytes for the code (16, 12 or 8 chips per byte).
    """
    if line_code == "3of6":
        return decode_3of6(chips)
    if line_code == "manchester":
        bits, n_invalid = decode_manchester(chips)
    elif line_code == "nrz":
        bits, n_invalid = decode_nrz(chips)
    else:
        raise ValueError(
            f"unknown line code {line_code!r}; choose manchester, 3of6 or nrz"
        )
    return bits_to_bytes(bits), n_invalid
