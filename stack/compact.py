"""Compact frames (CI 0x79 / 0x7B / 0x73): the APL without its record headers.

Wire format after the TPL header (wmbus-reference.md 3.8, EN 13757-3 annex)::

    sig_lo sig_hi  crc_lo crc_hi  data...

    sig  = CRC-16/EN13757 of the concatenated record headers (DIF, DIFEs, VIF, VIFEs,
           plain-text unit) of the equivalent full frame; idle fillers not included
    crc  = CRC-16/EN13757 of that full frame with headers and data interleaved
           (fillers not included)
    data = the records' data fields, back to back (an LVAR field keeps its LVAR byte)

A receiver must have seen a full frame with the same signature before ("the
layout"); :func:`record_layout` extracts it, :func:`expand_compact` interleaves a
compact frame's data back into a full APL.  Unlike wmbusmeters, a manufacturer-data
DIF (0x0F / 0x1F) is part of the layout like any other header, and its data is the
rest of the compact data.

Verified: layout ``02FF2004134413615B6167`` has signature 0xA8ED, sent ``ED A8``
(wmbus-reference.md 3.8; vectors v024/v025).
"""

from __future__ import annotations

from stack.crc import crc16
from stack.errors import CrcError, RecordError
from stack.records_parse import (
    IDLE_FILLER,
    data_field_end,
    parse_record_header,
    parse_records,
)

__all__ = [
    "format_signature",
    "record_layout",
    "expand_compact",
    "compact_data",
    "build_compact_apl",
    "parse_compact_apl",
]


def format_signature(dif_vif: bytes) -> int:
    """Return the format signature (CRC-16/EN13757) of concatenated record headers.

    Examples
    --------
    >>> hex(format_signature(bytes.fromhex("02FF2004134413615B6167")))
    '0xa8ed'
    """
    return crc16(dif_vif)


def record_layout(data: bytes) -> bytes:
    """Return the concatenated record headers of a full APL (fillers left out).

    Raises
    ------
    RecordError
        ``data`` is not a well-formed record sequence.
    """
    return b"".join(record.dif_vif for record in parse_records(data))


def expand_compact(layout: bytes, compact_data: bytes) -> bytes:
    """Interleave the headers of ``layout`` with the data of a compact frame.

    Parameters
    ----------
    layout : bytes
        Concatenated record headers (as from :func:`record_layout`).
    compact_data : bytes
        The data fields only (the compact frame after signature and data CRC).

    Returns
    -------
    bytes
        The equivalent full APL (no fillers).

    Raises
    ------
    RecordError
        The layout is malformed, or the data is shorter or longer than it needs
        (trailing 0x2F idle fillers excepted).
    """
    layout, compact_data = bytes(layout), bytes(compact_data)
    parts: list[bytes] = []
    pos = data_pos = 0
    while pos < len(layout):
        if layout[pos] == IDLE_FILLER:
            pos += 1
            continue
        header, end = parse_record_header(layout, pos)
        try:
            data_end = data_field_end(header, compact_data, data_pos)
        except RecordError as exc:
            raise RecordError(
                f"compact data too short for the layout ({exc})", offset=exc.offset
            ) from exc
        parts.append(layout[pos:end] + compact_data[data_pos:data_end])
        pos, data_pos = end, data_end
    # Modes 5/7 pad the encrypted APL to whole AES blocks with 0x2F idle fillers
    # (EN 13757-3); after the last record they are padding, not data.
    if compact_data[data_pos:].strip(bytes((IDLE_FILLER,))):
        raise RecordError(
            f"compact data has {len(compact_data) - data_pos} bytes "
            "more than the layout describes",
            offset=data_pos,
        )
    return b"".join(parts)


def compact_data(full_apl: bytes) -> tuple[int, int, bytes]:
    """Compress a full APL: (format signature, full-frame data CRC, data bytes).

    The data CRC is computed over the full APL re-assembled without idle fillers,
    which is what the receiver re-assembles with :func:`expand_compact`.

    Raises
    ------
    RecordError
        ``full_apl`` is not a well-formed record sequence.
    """
    records = parse_records(full_apl)
    layout = b"".join(r.dif_vif for r in records)
    full = b"".join(r.dif_vif + r.data for r in records)
    return format_signature(layout), crc16(full), b"".join(r.data for r in records)


def build_compact_apl(full_apl: bytes) -> bytes:
    """Return the compact APL ``sig(LE) crc(LE) data`` of a full APL."""
    signature, data_crc, data = compact_data(full_apl)
    return signature.to_bytes(2, "little") + data_crc.to_bytes(2, "little") + data


def parse_compact_apl(compact_apl: bytes, layout: bytes) -> bytes:
    """Check a compact APL against a known layout and return the full APL.

    Parameters
    ----------
    compact_apl : bytes
        ``sig(LE) crc(LE) data`` as received after the TPL header.
    layout : bytes
        The record headers of an earlier full frame from the same meter.

    Raises
    ------
    RecordError
        Shorter than 4 bytes, the signature is not the layout's (another layout is
        needed), or the data does not fit the layout.
    CrcError
        The re-assembled full APL does not match the data CRC (``block=-1``).
    """
    if len(compact_apl) < 4:
        raise RecordError(
            "compact APL shorter than signature and data CRC", offset=len(compact_apl)
        )
    signature = int.from_bytes(compact_apl[0:2], "little")
    data_crc = int.from_bytes(compact_apl[2:4], "little")
    if signature != format_signature(layout):
        raise RecordError(
            f"format signature {signature:04X} does not match the "
            f"layout ({format_signature(layout):04X})",
            offset=0,
        )
    full = expand_compact(layout, compact_apl[4:])
    if crc16(full) != data_crc:
        raise CrcError(-1, crc16(full), data_crc, layer="apl", offset=2)
    return full
