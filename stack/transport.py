"""Transport layer (TPL): CI dispatch, short and long headers, status and configuration.

Headers after the CI byte (EN 13757-7)::

    none    -
    short   ACC STS CFG(2, LE) [CFG-ext]
    long    ID(4) M(2) version type  ACC STS CFG(2, LE) [CFG-ext]

Configuration field (CFG, 16 bits, modes 5 and 7): bits 12-8 security mode, bits 7-4
number of encrypted 16-byte blocks, 15 bidirectional, 14 accessibility, 13 synchronous.
Mode 7 adds one CFG-extension byte (bits 4-5: key derivation function).

Status byte (STS): bits 0-1 application status (0 ok, 1 busy, 2 error, 3 abnormal),
2 power low, 3 permanent error, 4 temporary error, 5-7 manufacturer specific.

References: EN 13757-7 (transport layer, CI list); EN 13757-3;
wmbus-reference.md 3.1, 3.4.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import FrameError
from .link import build_address

__all__ = [
    "TplHeader",
    "CI_TABLE",
    "parse_tpl_header",
    "build_tpl_header",
    "ci_info",
    "status_flags",
    "config_word",
]

# CI -> (header kind, content), EN 13757-7 CI list (wmbus-reference.md 3.1).
# content: "records" (EN 13757-3 data records), "compact" (compact frame),
# "none" (no application data), "error", "alarm", "manufacturer" (vendor format).
CI_TABLE: dict[int, tuple[str, str]] = {
    0x51: ("none", "records"),  # command to device, no TPL header
    0x5A: ("short", "records"),  # command to device
    0x5B: ("long", "records"),
    0x6E: ("short", "error"),  # application error from device
    0x6F: ("long", "error"),
    0x70: ("none", "error"),
    0x71: ("none", "alarm"),
    0x72: ("long", "records"),  # response from device, full frame
    0x73: ("long", "compact"),
    0x74: ("short", "alarm"),
    0x75: ("long", "alarm"),
    0x78: ("none", "records"),
    0x79: ("none", "compact"),
    0x7A: ("short", "records"),
    0x7B: ("short", "compact"),
    0x80: ("long", "none"),  # transport layer to device, no APL
    0x8A: ("short", "none"),  # transport layer from device, no APL (e.g. ACC_NR)
    0x8B: ("long", "none"),
}
# Manufacturer-specific CIs carry a vendor payload with no standard TPL header.
for _ci in range(0xA0, 0xB8):
    CI_TABLE[_ci] = ("none", "manufacturer")

_HEADER_LEN = {"none": 0, "short": 4, "long": 12}
_MODES_WITH_CFG_EXT = (7,)  # OMS: mode 7 carries one CFG-extension byte
_STATUS_BITS = (
    (0x04, "power low"),
    (0x08, "permanent error"),
    (0x10, "temporary error"),
)
_APP_STATUS = {1: "busy", 2: "error", 3: "abnormal"}


@dataclass(frozen=True, slots=True)
class TplHeader:
    """A parsed TPL header.

    Attributes
    ----------
    ci : int
    kind : {"none", "short", "long"}
    content : str
        What follows the header (see ``CI_TABLE``), ``"unknown"`` for CIs not listed.
    access_number, status, config : int or None
        None for headerless CIs.
    config_ext : int or None
        The CFG-extension byte (mode 7).
    address : tuple or None
        Long header only: (manufacturer code, id, version, device type).
    length : int
        Header length in bytes, CI included.
    """

    ci: int
    kind: str
    content: str
    access_number: int | None = None
    status: int | None = None
    config: int | None = None
    config_ext: int | None = None
    address: tuple[int, str, int, int] | None = None
    length: int = 1

    @property
    def security_mode(self) -> int:
        """Security mode from CFG bits 12-8; 0 without a header."""
        return 0 if self.config is None else (self.config >> 8) & 0x1F

    @property
    def encrypted_blocks(self) -> int:
        """Number of encrypted 16-byte blocks (CFG bits 7-4)."""
        return 0 if self.config is None else (self.config >> 4) & 0x0F

    @property
    def address_bytes(self) -> bytes | None:
        """Long-header address in link-layer order: M(2) ID(4) version type."""
        return None if self.address is None else build_address(*self.address)


def ci_info(ci: int) -> tuple[str, str]:
    """(header kind, content) of a CI; ("none", "unknown") for CIs not in the table."""
    return CI_TABLE.get(ci, ("none", "unknown"))


def config_word(security_mode: int, encrypted_blocks: int, flags: int = 0) -> int:
    """Compose a CFG value from its parts (flags = the other bits, e.g. 0x8000)."""
    if not 0 <= security_mode <= 0x1F or not 0 <= encrypted_blocks <= 0x0F:
        raise ValueError("security mode must be 0..31 and encrypted blocks 0..15")
    return (flags & ~0x1FF0) | (security_mode << 8) | (encrypted_blocks << 4)


def status_flags(status: int) -> list[str]:
    """Names of the standard bits set in a TPL status byte (EN 13757-7)."""
    names = [_APP_STATUS[status & 3]] if status & 3 else []
    names += [name for bit, name in _STATUS_BITS if status & bit]
    if status & 0xE0:
        names.append(f"manufacturer status 0x{status & 0xE0:02X}")
    return names


def parse_tpl_header(data: bytes | bytearray, offset: int) -> TplHeader:
    """Parse the TPL header whose CI byte is ``data[offset]``.

    Raises
    ------
    FrameError
        If the frame ends inside the header.
    """
    ci = data[offset]
    kind, content = ci_info(ci)
    size = _HEADER_LEN[kind]
    pos = offset + 1
    if pos + size > len(data):
        raise FrameError(
            f"{kind} TPL header of CI 0x{ci:02X} needs {size} bytes, frame ends after "
            f"{len(data) - pos}",
            layer="tpl",
            offset=offset,
        )
    if kind == "none":
        return TplHeader(ci, kind, content)
    address = None
    if kind == "long":
        raw = bytes(data[pos : pos + 8])
        address = (
            int.from_bytes(raw[4:6], "little"),
            raw[0:4][::-1].hex(),
            raw[6],
            raw[7],
        )
        pos += 8
    acc, sts = data[pos], data[pos + 1]
    cfg = int.from_bytes(data[pos + 2 : pos + 4], "little")
    pos += 4
    cfg_ext = None
    if (cfg >> 8) & 0x1F in _MODES_WITH_CFG_EXT:
        if pos >= len(data):
            raise FrameError(
                "mode 7 CFG-extension byte missing", layer="tpl", offset=pos
            )
        cfg_ext = data[pos]
        pos += 1
    return TplHeader(ci, kind, content, acc, sts, cfg, cfg_ext, address, pos - offset)


def build_tpl_header(
    ci: int,
    *,
    access_number: int = 0,
    status: int = 0,
    config: int = 0,
    config_ext: int | None = None,
    address: tuple[int, str, int, int] | None = None,
) -> bytes:
    """Build a TPL header (CI included) for the header kind the CI implies.

    Raises
    ------
    ValueError
        If a long header lacks ``address``, or mode 7 lacks ``config_ext``.
    """
    kind, _ = ci_info(ci)
    out = bytearray((ci,))
    if kind == "none":
        return bytes(out)
    if kind == "long":
        if address is None:
            raise ValueError(f"CI 0x{ci:02X} has a long header: give its address")
        m_code, meter_id, version, device_type = address
        addr = build_address(m_code, meter_id, version, device_type)
        out += addr[2:6] + addr[0:2] + addr[6:8]
    out += bytes((access_number & 0xFF, status & 0xFF)) + (config & 0xFFFF).to_bytes(
        2, "little"
    )
    if (config >> 8) & 0x1F in _MODES_WITH_CFG_EXT:
        if config_ext is None:
            raise ValueError("security mode 7 needs a CFG-extension byte")
        out.append(config_ext & 0xFF)
    return bytes(out)
