"""Extended link layer (ELL), CI 0x8C-0x8F (EN 13757-4).

Layout after the CI byte::

    0x8C  ELL I    CC ACC                                    (2 bytes)
    0x8D  ELL II   CC ACC SN(4) PayloadCRC(2)                (8 bytes)
    0x8E  ELL III  CC ACC M(2) A(6)                          (10 bytes)
    0x8F  ELL IV   CC ACC M(2) A(6) SN(4) PayloadCRC(2)      (16 bytes)

SN (session number, 32-bit little endian): bits 0-3 session, 4-28 time, 29-31 encryption
(0 none, 1 AES-128-CTR).  PayloadCRC is the EN 13757 CRC-16 of every byte after it,
sent low byte first; with encryption it is encrypted too and is the only key check.

References: EN 13757-4 (ELL); wmbus-reference.md section 3.2.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import FrameError, UnsupportedError

__all__ = [
    "EllHeader",
    "ELL_CIS",
    "ELL_ENCRYPTION_NONE",
    "ELL_ENCRYPTION_AES_CTR",
    "parse_ell_header",
    "build_ell_header",
]

# Header length after the CI byte, per CI (EN 13757-4 ELL variants I..IV).
ELL_CIS: dict[int, int] = {0x8C: 2, 0x8D: 8, 0x8E: 10, 0x8F: 16}
_ELL_V = 0x86  # variable-length ELL V, not supported
_HAS_ADDRESS = (0x8E, 0x8F)
_HAS_SESSION = (0x8D, 0x8F)
ELL_ENCRYPTION_NONE = 0
ELL_ENCRYPTION_AES_CTR = 1


@dataclass(frozen=True, slots=True)
class EllHeader:
    """A parsed ELL header.

    Attributes
    ----------
    ci : int
    cc : int
        Communication control (0x80 bidirectional, 0x40 response delay,
        0x20 synchronous, 0x10 hop count, 0x08 priority, 0x04 accessibility,
        0x02 repeated access).
    access_number : int
    address : bytes or None
        8 bytes M(2) ID(4) version type, for CI 0x8E/0x8F.
    session : bytes or None
        SN as sent (4 bytes), for CI 0x8D/0x8F.
    payload_crc : int or None
        As found in the frame (possibly still encrypted).
    """

    ci: int
    cc: int
    access_number: int
    address: bytes | None = None
    session: bytes | None = None
    payload_crc: int | None = None

    @property
    def length(self) -> int:
        """Header length in bytes, CI included."""
        return 1 + ELL_CIS[self.ci]

    @property
    def encryption(self) -> int:
        """Encryption field of SN (bits 29-31): 0 none, 1 AES-128-CTR."""
        if self.session is None:
            return ELL_ENCRYPTION_NONE
        return int.from_bytes(self.session, "little") >> 29

    @property
    def crc_offset(self) -> int:
        """Offset of PayloadCRC from the CI byte (only for CI 0x8D/0x8F)."""
        return self.length - 2


def parse_ell_header(data: bytes | bytearray, offset: int) -> EllHeader:
    """Parse the ELL header whose CI byte is ``data[offset]``.

    Raises
    ------
    FrameError
        If the frame ends inside the header.
    UnsupportedError
        For ELL V (CI 0x86) or a CI that is no ELL.
    """
    ci = data[offset]
    if ci == _ELL_V:
        raise UnsupportedError("ELL V (CI 0x86)", layer="ell", offset=offset)
    if ci not in ELL_CIS:
        raise UnsupportedError(f"CI 0x{ci:02X} is no ELL", layer="ell", offset=offset)
    end = offset + 1 + ELL_CIS[ci]
    if end > len(data):
        raise FrameError(
            f"ELL header CI 0x{ci:02X} needs {ELL_CIS[ci]} bytes, frame ends after "
            f"{len(data) - offset - 1}",
            layer="ell",
            offset=offset,
        )
    body = bytes(data[offset + 1 : end])
    address = body[2:10] if ci in _HAS_ADDRESS else None
    session = payload_crc = None
    if ci in _HAS_SESSION:
        session = body[-6:-2]
        payload_crc = int.from_bytes(body[-2:], "little")
    return EllHeader(ci, body[0], body[1], address, session, payload_crc)


def build_ell_header(
    ci: int,
    cc: int,
    access_number: int,
    *,
    address: bytes | None = None,
    session: bytes | None = None,
    payload_crc: int = 0,
) -> bytes:
    """Build an ELL header (CI included); the payload CRC is usually filled in later.

    Raises
    ------
    ValueError
        If a field the CI needs is missing or has the wrong size.
    """
    if ci not in ELL_CIS:
        raise ValueError(f"ELL CI must be one of {[hex(c) for c in ELL_CIS]}")
    out = bytearray((ci, cc & 0xFF, access_number & 0xFF))
    if ci in _HAS_ADDRESS:
        if address is None or len(address) != 8:
            raise ValueError(f"ELL CI 0x{ci:02X} needs an 8-byte address")
        out += address
    if ci in _HAS_SESSION:
        if session is None or len(session) != 4:
            raise ValueError(f"ELL CI 0x{ci:02X} needs a 4-byte session number")
        out += session + payload_crc.to_bytes(2, "little")
    return bytes(out)
