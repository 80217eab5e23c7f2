"""Authentication and fragmentation layer (AFL), CI 0x90 (EN 13757-7).

Layout::

    CI(0x90) AFL.LEN FC(2, LE) [MCL(1)] [KI(2)] [MCR(4, LE)] [ML(2)] [MAC(n)]

AFL.LEN counts the bytes after itself.  FC bits: 0-7 fragment id, 0x0200 KI present,
0x0400 MAC present, 0x0800 MCR present, 0x1000 ML present, 0x2000 MCL present,
0x4000 more fragments follow.  MCL bits 0-3 give the authentication type, which fixes
the MAC length (type 5 = AES-CMAC-128 truncated to 8 bytes, the OMS default).

The MAC is AES-CMAC over MCL || MCR || [ML] || every byte from the TPL CI to the end of
the frame, keyed with the ephemeral MAC key of security mode 7 (see ``stack.security``).

References: EN 13757-7 (AFL); wmbus-reference.md section 3.3.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import FrameError, UnsupportedError

__all__ = [
    "AflHeader",
    "AFL_CI",
    "MAC_LENGTHS",
    "parse_afl_header",
    "build_afl_header",
    "mac_input",
]

AFL_CI = 0x90
_FC_KI = 0x0200
_FC_MAC = 0x0400
_FC_MCR = 0x0800
_FC_ML = 0x1000
_FC_MCL = 0x2000
_FC_MORE = 0x4000
# Authentication type (MCL bits 0-3) -> MAC length in bytes, EN 13757-7 table.
MAC_LENGTHS: dict[int, int] = {0: 0, 3: 2, 4: 4, 5: 8, 6: 12, 7: 16, 8: 12}


@dataclass(frozen=True, slots=True)
class AflHeader:
    """A parsed AFL header (unfragmented messages only)."""

    fc: int
    mcl: int | None
    key_info: int | None
    message_counter: bytes | None  # MCR as sent, 4 bytes
    message_length: int | None
    mac: bytes | None
    length: int  # bytes including CI and LEN

    @property
    def auth_type(self) -> int:
        return (self.mcl or 0) & 0x0F


def _take(data: bytes | bytearray, pos: int, n: int, what: str) -> bytes:
    if pos + n > len(data):
        raise FrameError(f"AFL ends inside {what}", layer="afl", offset=pos)
    return bytes(data[pos : pos + n])


def parse_afl_header(data: bytes | bytearray, offset: int) -> AflHeader:
    """Parse the AFL whose CI byte is ``data[offset]``.

    Raises
    ------
    FrameError
        If the AFL runs past the frame or its fields disagree with AFL.LEN.
    UnsupportedError
        For fragmented messages or an unknown authentication type.
    """
    afl_len = _take(data, offset + 1, 1, "AFL.LEN")[0]
    end = offset + 2 + afl_len
    _take(data, offset, 2 + afl_len, "the length AFL.LEN gives")
    fc = int.from_bytes(_take(data, offset + 2, 2, "FC"), "little")
    if fc & _FC_MORE or fc & 0xFF:
        raise UnsupportedError("fragmented AFL message", layer="afl", offset=offset)
    pos = offset + 4
    fields: dict[str, bytes | None] = {}
    for bit, name, size in (
        (_FC_MCL, "mcl", 1),
        (_FC_KI, "ki", 2),
        (_FC_MCR, "mcr", 4),
        (_FC_ML, "ml", 2),
    ):
        fields[name] = _take(data, pos, size, name.upper()) if fc & bit else None
        pos += size if fc & bit else 0
    mcl = fields["mcl"][0] if fields["mcl"] else None
    mac = None
    if fc & _FC_MAC:
        auth = (mcl or 0) & 0x0F
        if auth not in MAC_LENGTHS or not MAC_LENGTHS[auth]:
            raise UnsupportedError(
                f"AFL authentication type {auth}", layer="afl", offset=offset
            )
        mac = _take(data, pos, MAC_LENGTHS[auth], "MAC")
        pos += len(mac)
    if pos != end:
        raise FrameError(
            f"AFL.LEN says {afl_len} bytes, fields take {pos - offset - 2}",
            layer="afl",
            offset=offset,
        )
    return AflHeader(
        fc=fc,
        mcl=mcl,
        key_info=int.from_bytes(fields["ki"], "little") if fields["ki"] else None,
        message_counter=fields["mcr"],
        message_length=int.from_bytes(fields["ml"], "little") if fields["ml"] else None,
        mac=mac,
        length=2 + afl_len,
    )


def build_afl_header(
    message_counter: int,
    *,
    mcl: int = 0x25,
    mac: bytes = b"\0" * 8,
    key_info: int | None = None,
    message_length: int | None = None,
) -> bytes:
    """Build an AFL header; pass a zero MAC first and patch it once the MAC is known.

    The default MCL 0x25 is authentication type 5 (AES-CMAC, 8 bytes) with the message
    counter present, what OMS mode 7 uses.
    """
    if MAC_LENGTHS.get(mcl & 0x0F) != len(mac):
        raise ValueError(
            f"MCL 0x{mcl:02X} needs a {MAC_LENGTHS.get(mcl & 0x0F)}-byte MAC"
        )
    fc = _FC_MCL | _FC_MCR | (_FC_MAC if mac else 0)
    body = bytearray(bytes((mcl,)))
    if key_info is not None:
        fc |= _FC_KI
        body += key_info.to_bytes(2, "little")
    body += message_counter.to_bytes(4, "little")
    if message_length is not None:
        fc |= _FC_ML
        body += message_length.to_bytes(2, "little")
    body += mac
    return bytes((AFL_CI, len(body) + 2)) + fc.to_bytes(2, "little") + bytes(body)


def mac_input(afl: AflHeader, tpl_to_end: bytes) -> bytes:
    """The bytes the AFL MAC covers: MCL || MCR || [ML] || TPL CI .. end of frame."""
    out = bytearray()
    if afl.mcl is not None:
        out.append(afl.mcl)
    if afl.message_counter is not None:
        out += afl.message_counter
    if afl.message_length is not None:
        out += afl.message_length.to_bytes(2, "little")
    return bytes(out) + bytes(tpl_to_end)
