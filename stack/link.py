"""Data link layer header: L C M A (EN 13757-4).

Block 1 of every frame, in no-CRC form::

    offset  0   1   2..3      4..7             8        9
            L   C   M (LE)    ID (BCD, LE)     version  device type

M packs three letters in 15 bits: ((c1-64) << 10) | ((c2-64) << 5) | (c3-64); bit 15 set
marks an address that is not registered with the FLAG association.  ID is printed as 8
hex digits, most significant byte first (bytes ``78 56 34 12`` -> ``"12345678"``); it is
kept as text because real meters send non-BCD ids.

References: EN 13757-4 (link layer); EN 13757-3 / OMS (device types);
wmbus-reference.md sections 2.1, 2.5-2.7.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import FrameError

__all__ = [
    "LinkHeader",
    "parse_link_header",
    "build_link_header",
    "decode_manufacturer",
    "encode_manufacturer",
    "parse_address",
    "build_address",
    "device_type_name",
    "c_field_name",
    "C_FIELDS",
    "DEVICE_TYPES",
    "LINK_HEADER_LEN",
]

LINK_HEADER_LEN = 10  # L C M M A A A A A A

# C-field function codes, EN 13757-4 (wmbus-reference.md 2.5).  Bit 0x20 is the frame
# count bit (FCB) of primary-station frames; bit 0x10 the FCV/ACD/DFC bit.
C_FIELDS: dict[int, str] = {
    0x00: "ACK",
    0x08: "RSP_UD",
    0x06: "CNF_IR",
    0x18: "RSP_UD",  # with ACD/DFC bit
    0x40: "SND_NKE",
    0x43: "SND_UD3",
    0x44: "SND_NR",
    0x46: "SND_IR",
    0x47: "ACC_NR",
    0x48: "ACC_DMD",
    0x53: "SND_UD",
    0x73: "SND_UD",  # FCB set
    0x5A: "REQ_UD1",
    0x7A: "REQ_UD1",  # FCB set
    0x5B: "REQ_UD2",
    0x7B: "REQ_UD2",  # FCB set
}

# Device type (medium), EN 13757-3 table / OMS; wmbus-reference.md 2.7.
DEVICE_TYPES: dict[int, str] = {
    0x00: "other",
    0x01: "oil",
    0x02: "electricity",
    0x03: "gas",
    0x04: "heat",
    0x05: "steam",
    0x06: "warm water",
    0x07: "water",
    0x08: "heat cost allocator",
    0x09: "compressed air",
    0x0A: "cooling load meter (outlet)",
    0x0B: "cooling load meter (inlet)",
    0x0C: "heat (inlet)",
    0x0D: "heat/cooling",
    0x0E: "bus/system component",
    0x0F: "unknown",
    0x10: "irrigation water",
    0x11: "water data logger",
    0x12: "gas data logger",
    0x13: "gas converter",
    0x14: "calorific value",
    0x15: "hot water",
    0x16: "cold water",
    0x17: "dual water",
    0x18: "pressure",
    0x19: "A/D converter",
    0x1A: "smoke detector",
    0x1B: "room sensor",
    0x1C: "gas detector",
    0x20: "breaker (electricity)",
    0x21: "valve (gas or water)",
    0x25: "customer unit (display device)",
    0x28: "waste water",
    0x29: "garbage",
    0x2A: "carbon dioxide",
    0x30: "communication controller",
    0x31: "OMS MUC",
    0x32: "unidirectional repeater",
    0x33: "bidirectional repeater",
    0x36: "radio converter (system side)",
    0x37: "radio converter (meter side)",
}
_RESERVED_NAME = "reserved/manufacturer specific"


@dataclass(frozen=True, slots=True)
class LinkHeader:
    """The decoded link-layer header (block 1).

    Attributes
    ----------
    length : int
        L-field in no-CRC form (bytes after L, CRCs excluded).
    c_field : int
    manufacturer : str
        Three letters (``"KAM"``); the raw code is ``manufacturer_code``.
    manufacturer_code : int
    id : str
        8 hex digits as people print them.
    version, device_type : int
    """

    length: int
    c_field: int
    manufacturer: str
    manufacturer_code: int
    id: str
    version: int
    device_type: int

    @property
    def device_type_name(self) -> str:
        return device_type_name(self.device_type)

    @property
    def c_field_name(self) -> str:
        return c_field_name(self.c_field)

    @property
    def address(self) -> bytes:
        """The 8 address bytes as sent, M(2) ID(4) version type (for IVs, counters)."""
        return build_address(
            self.manufacturer_code, self.id, self.version, self.device_type
        )


def device_type_name(code: int) -> str:
    """Name of a device type (medium) code; vendor codes give the reserved label."""
    return DEVICE_TYPES.get(code, _RESERVED_NAME)


def c_field_name(c_field: int) -> str:
    """Name of a C-field (``"SND_NR"``), or ``"C_xx"`` for codes without a name."""
    return C_FIELDS.get(c_field, f"C_{c_field:02X}")


def decode_manufacturer(code: int) -> str:
    """Three-letter manufacturer from the 16-bit M-field value (bit 15 ignored).

    Letters outside A..Z (codes the FLAG scheme cannot produce) are shown as ``?``
    rather than as arbitrary punctuation.
    """
    letters = ((code >> 10) & 0x1F, (code >> 5) & 0x1F, code & 0x1F)
    return "".join(chr(64 + v) if 1 <= v <= 26 else "?" for v in letters)


def encode_manufacturer(letters: str) -> int:
    """16-bit M-field value for three letters A..Z.

    Raises
    ------
    ValueError
        If ``letters`` is not exactly three letters A..Z.
    """
    text = letters.upper()
    if len(text) != 3 or not all("A" <= ch <= "Z" for ch in text):
        raise ValueError(f"manufacturer must be three letters A-Z, not {letters!r}")
    return (
        ((ord(text[0]) - 64) << 10) | ((ord(text[1]) - 64) << 5) | (ord(text[2]) - 64)
    )


def parse_address(addr: bytes) -> tuple[int, str, int, int]:
    """Split 8 address bytes M(2) ID(4) version type: (m_code, id, version, type)."""
    if len(addr) != 8:
        raise FrameError(f"an address has 8 bytes, got {len(addr)}", layer="link")
    return (
        int.from_bytes(addr[0:2], "little"),
        addr[2:6][::-1].hex(),
        addr[6],
        addr[7],
    )


def build_address(m_code: int, meter_id: str, version: int, device_type: int) -> bytes:
    """8 address bytes M(2) ID(4) version type, as sent.

    Raises
    ------
    ValueError
        If the id is not 8 hex digits or a field is out of range.
    """
    text = meter_id.strip().lower()
    if len(text) != 8:
        raise ValueError(f"meter id must have 8 hex digits, not {meter_id!r}")
    try:
        id_bytes = bytes.fromhex(text)[::-1]
    except ValueError:
        raise ValueError(f"meter id must have 8 hex digits, not {meter_id!r}") from None
    for name, value, top in (
        ("manufacturer code", m_code, 0xFFFF),
        ("version", version, 0xFF),
        ("device type", device_type, 0xFF),
    ):
        if not 0 <= value <= top:
            raise ValueError(f"{name} {value} is out of range 0..{top}")
    return m_code.to_bytes(2, "little") + id_bytes + bytes((version, device_type))


def parse_link_header(data: bytes) -> LinkHeader:
    """Parse block 1 of a frame in no-CRC form.

    Raises
    ------
    FrameError
        If fewer than 10 bytes are given or L disagrees with the length.
    """
    if len(data) < LINK_HEADER_LEN:
        raise FrameError(
            f"a link header needs {LINK_HEADER_LEN} bytes, got {len(data)}",
            layer="link",
        )
    if data[0] != len(data) - 1:
        raise FrameError(
            f"L-field {data[0]} disagrees with {len(data) - 1} bytes after it",
            layer="link",
            offset=0,
        )
    m_code, meter_id, version, device_type = parse_address(bytes(data[2:10]))
    return LinkHeader(
        length=data[0],
        c_field=data[1],
        manufacturer=decode_manufacturer(m_code),
        manufacturer_code=m_code,
        id=meter_id,
        version=version,
        device_type=device_type,
    )


def build_link_header(
    c_field: int,
    manufacturer: str | int,
    meter_id: str,
    version: int,
    device_type: int,
    length: int = 0,
) -> bytes:
    """Build block 1 (10 bytes); the frame builder usually fixes ``length`` later.

    ``manufacturer`` is three letters or the raw 16-bit code.
    """
    m_code = (
        manufacturer
        if isinstance(manufacturer, int)
        else encode_manufacturer(manufacturer)
    )
    if not 0 <= c_field <= 0xFF or not 0 <= length <= 0xFF:
        raise ValueError("C-field and L-field must fit one byte")
    return bytes((length, c_field)) + build_address(
        m_code, meter_id, version, device_type
    )
