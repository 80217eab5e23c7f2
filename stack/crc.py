"""CRC-16 of EN 13757 (wM-Bus).

Polynomial 0x3D65 (x^16+x^13+x^12+x^11+x^10+x^8+x^6+x^5+x^2+1), initial value 0x0000,
no reflection, final XOR 0xFFFF.  Check value over ASCII ``123456789`` is 0xC2B7.

The data-link layer sends the CRC high byte first (see ``stack.frame``); the ELL payload
CRC and the compact-frame signatures use the same CRC sent low byte first.

Reference: EN 13757-4 (data link layer CRC); wmbus-reference.md section 2.4.
"""

from __future__ import annotations

__all__ = ["crc16", "CRC16_POLY"]

CRC16_POLY = 0x3D65  # EN 13757-4, CRC polynomial


def _make_table(poly: int) -> tuple[int, ...]:
    # Byte-wise table for an MSB-first (non-reflected) CRC.
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ poly) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_TABLE = _make_table(CRC16_POLY)


def crc16(data: bytes | bytearray | memoryview) -> int:
    """Return the EN 13757 CRC-16 of ``data`` as an int in 0..0xFFFF.

    Examples
    --------
    >>> hex(crc16(b"123456789"))
    '0xc2b7'
    """
    crc = 0
    for byte in bytes(data):
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[(crc >> 8) ^ byte]
    return crc ^ 0xFFFF
