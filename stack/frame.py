"""Frame formats A and B: block layout, CRCs, and the on-air length rule.

Frame format A (every mode; EN 13757-4)::

    block 1   L C M M A A A A A A  CRC CRC       10 data bytes + CRC
    block 2.. 16 data bytes        CRC CRC       last block: 1..16 bytes + CRC

    L counts the bytes after L, excluding every CRC.

Frame format B (mode C only)::

    block 1   L C M M A A A A A A                10 bytes, no CRC of its own
    block 2   CI + up to 115 bytes  CRC CRC      CRC covers blocks 1 and 2 together
    block 3   the rest (L > 127)    CRC CRC      CRC covers block 3 only

    L counts the bytes after L, including the CRCs.

Every CRC is the EN 13757 CRC-16 sent high byte first.  The "no-CRC" form used by
receivers and by ``stack.link`` is the frame with all CRCs removed and L rewritten to
count the bytes after it (so for either format ``len(data) == data[0] + 1``).

References: EN 13757-4 (frame formats A and B); wmbus-reference.md sections 2.2-2.4.
"""

from __future__ import annotations

from .crc import crc16
from .errors import CrcError, FrameError

__all__ = [
    "FRAME_FORMATS",
    "on_air_length",
    "strip_crcs",
    "drop_crcs",
    "add_crcs",
    "detect_crc_format",
]

FRAME_FORMATS = ("A", "B")
_BLOCK1_LEN = 10  # L C M M A A A A A A  (EN 13757-4, block 1 of both formats)
_BLOCK_LEN_A = 16  # data bytes in blocks 2.. of format A
_BLOCK2_MAX_B = 126  # format B: blocks 1+2 cover frame bytes 0..125 (incl. L)
_MIN_L_A = 9  # a format-A frame holds at least block 1
_MIN_L_B = 12  # a format-B frame holds block 1, a CI and the CRC


def _check_format(frame_format: str) -> None:
    if frame_format not in FRAME_FORMATS:
        raise ValueError(f"frame format must be 'A' or 'B', not {frame_format!r}")


def _a_block_sizes(l_field: int) -> list[int]:
    """Data-byte counts of the blocks of a format-A frame with this L (without CRCs)."""
    rest = l_field + 1 - _BLOCK1_LEN
    sizes = [_BLOCK1_LEN]
    while rest > 0:
        sizes.append(min(rest, _BLOCK_LEN_A))
        rest -= _BLOCK_LEN_A
    return sizes


def on_air_length(l_field: int, frame_format: str) -> int:
    """Number of frame bytes on air (L included, CRCs included) for a given L-field.

    Parameters
    ----------
    l_field : int
        The first byte of the frame, as received.
    frame_format : {"A", "B"}

    Returns
    -------
    int
        Bytes to receive after the sync word, L included.

    Raises
    ------
    FrameError
        If ``l_field`` is too small for a frame of that format.
    """
    _check_format(frame_format)
    if frame_format == "A":
        if l_field < _MIN_L_A:
            raise FrameError(f"L-field {l_field} is below {_MIN_L_A}", layer="frame")
        return l_field + 1 + 2 * len(_a_block_sizes(l_field))
    if l_field < _MIN_L_B:
        raise FrameError(
            f"L-field {l_field} is below {_MIN_L_B} (format B)", layer="frame"
        )
    return l_field + 1


def _check_crc(block: bytes, crc_bytes: bytes, index: int, offset: int) -> None:
    expected = crc16(block)
    actual = int.from_bytes(crc_bytes, "big")
    if expected != actual:
        raise CrcError(index, expected, actual, offset=offset)


def _strip_a(frame: bytes) -> bytes:
    out = bytearray()
    pos = 0
    for index, size in enumerate(_a_block_sizes(frame[0])):
        block = frame[pos : pos + size]
        _check_crc(block, frame[pos + size : pos + size + 2], index, pos + size)
        out += block
        pos += size + 2
    return bytes(out)


def _strip_b(frame: bytes) -> bytes:
    end2 = min(len(frame) - 2, _BLOCK2_MAX_B)
    _check_crc(frame[:end2], frame[end2 : end2 + 2], 1, end2)
    out = bytearray(frame[:end2])
    if len(frame) > _BLOCK2_MAX_B + 2:
        block3 = frame[_BLOCK2_MAX_B + 2 : -2]
        _check_crc(block3, frame[-2:], 2, len(frame) - 2)
        out += block3
    out[0] = len(out) - 1
    return bytes(out)


def strip_crcs(frame: bytes, frame_format: str) -> bytes:
    """Check every block CRC of an on-air frame and return it in no-CRC form.

    Parameters
    ----------
    frame : bytes
        The frame from L to the last CRC, exactly ``on_air_length(frame[0], ...)`` long.
    frame_format : {"A", "B"}

    Returns
    -------
    bytes
        The frame without CRCs, L rewritten to count the bytes after it.

    Raises
    ------
    FrameError
        If the length disagrees with the L-field.
    CrcError
        On the first block whose CRC does not match (``block`` says which).
    """
    frame = bytes(frame)
    if not frame:
        raise FrameError("empty frame", layer="frame")
    expected = on_air_length(frame[0], frame_format)
    if len(frame) != expected:
        raise FrameError(
            f"L-field {frame[0]} means {expected} bytes in format {frame_format}, "
            f"got {len(frame)}",
            layer="frame",
        )
    return _strip_a(frame) if frame_format == "A" else _strip_b(frame)


def drop_crcs(frame: bytes, frame_format: str) -> bytes:
    """Remove the CRC positions of a frame without checking them.

    For showing a frame whose CRCs failed (a receiver's ``--all``): follows the block
    layout of the format for as many bytes as there are, even where a corrupted L
    disagrees with the length, and rewrites L to count the bytes after it.  Never
    raises for any bytes.
    """
    _check_format(frame_format)
    frame = bytes(frame)
    out = bytearray()
    if frame_format == "B":
        out += frame[: max(min(len(frame) - 2, _BLOCK2_MAX_B), 0)]
        if len(frame) > _BLOCK2_MAX_B + 2:
            out += frame[_BLOCK2_MAX_B + 2 : -2]
    else:
        pos, size = 0, _BLOCK1_LEN
        while pos < len(frame):
            out += frame[pos : min(pos + size, len(frame) - 2)]
            pos += size + 2
            size = _BLOCK_LEN_A
    if out:
        out[0] = (len(out) - 1) & 0xFF
    return bytes(out)


def add_crcs(data: bytes, frame_format: str) -> bytes:
    """Insert block CRCs into a no-CRC frame and set L for the frame format.

    Parameters
    ----------
    data : bytes
        The frame without CRCs; ``data[0]`` is ignored and recomputed.
    frame_format : {"A", "B"}

    Returns
    -------
    bytes
        The frame as sent on air.

    Raises
    ------
    FrameError
        If the frame is too short or too long for the format (L must fit one byte).
    """
    _check_format(frame_format)
    frame = bytearray(data)  # a copy: L is rewritten below
    if len(frame) < _BLOCK1_LEN + (frame_format == "B"):
        raise FrameError(f"a frame needs at least {_BLOCK1_LEN} bytes", layer="frame")
    n_crc_b = 2 if len(frame) <= _BLOCK2_MAX_B else 4
    l_field = len(frame) - 1 + (n_crc_b if frame_format == "B" else 0)
    if l_field > 255:
        raise FrameError(
            f"{len(frame)} bytes do not fit a format-{frame_format} frame (L would be "
            f"{l_field} > 255)",
            layer="frame",
        )
    frame[0] = l_field
    if frame_format == "A":
        out = bytearray()
        pos = 0
        for size in _a_block_sizes(l_field):
            block = bytes(frame[pos : pos + size])
            out += block + crc16(block).to_bytes(2, "big")
            pos += size
        return bytes(out)
    head = bytes(frame[:_BLOCK2_MAX_B])
    out = bytearray(head + crc16(head).to_bytes(2, "big"))
    if len(frame) > _BLOCK2_MAX_B:
        tail = bytes(frame[_BLOCK2_MAX_B:])
        out += tail + crc16(tail).to_bytes(2, "big")
    return bytes(out)


def detect_crc_format(frame: bytes) -> str | None:
    """Guess how a frame given by a user carries its CRCs.

    Returns ``"A"`` or ``"B"`` when the length fits that format and every CRC checks,
    ``None`` when the frame is in no-CRC form (``len == L + 1``) and no CRC layout
    checks.  A frame that fits neither raises.

    Raises
    ------
    FrameError
        If the length fits no form at all.
    """
    frame = bytes(frame)
    if not frame:
        raise FrameError("empty frame", layer="frame")
    for fmt in FRAME_FORMATS:
        try:
            strip_crcs(frame, fmt)
        except (FrameError, CrcError):
            continue
        return fmt
    if len(frame) == frame[0] + 1:
        return None
    fits = [f for f in FRAME_FORMATS if _length_fits(frame, f)]
    if fits:
        # Right length for a CRC layout, but no layout checks: report that CRC error.
        strip_crcs(frame, fits[0])
    raise FrameError(
        f"length {len(frame)} fits neither L-field {frame[0]} without CRCs "
        "nor frame format A or B with CRCs",
        layer="frame",
    )


def _length_fits(frame: bytes, frame_format: str) -> bool:
    try:
        return len(frame) == on_air_length(frame[0], frame_format)
    except FrameError:
        return False
