"""What ``stack.encode.encode_telegram`` builds: ``TelegramSpec`` and its checks.

A ``TelegramSpec`` names one telegram layer by layer, as the frame carries it
(optional layers in brackets; the byte layout is in ``stack.encode``)::

    link   c_field, manufacturer, meter_id, version, device_type
    [ELL]  ell_ci (0x8C-0x8F), ell_cc, ell_access_number, ell_session, ell_encrypt,
           ell_address
    [AFL]  afl_counter, afl_mcl                     (AES-CMAC types only)
    TPL    ci, access_number, status, config_flags, tpl_address, security_mode (0/5/7),
           key, encrypted_blocks, config_ext
    APL    records, or payload; compact
    frame  frame_format (None, "A" or "B")

Every field is checked when the spec is constructed, so ``encode_telegram`` never
fails halfway for a bad field: ranges (one byte, 16 or 32 bits), the combinations the
standard allows (mode 5/7 needs a key and a TPL header, mode 7 an AFL counter, ELL
encryption an ELL with a session number), and CFG bits that the encoder owns.  Import
``TelegramSpec`` from ``stack.encode``.

References: EN 13757-3 (CI, records), EN 13757-4 (link, ELL), EN 13757-7 (TPL header,
CFG, security modes, AFL); wmbus-reference.md sections 2-3.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from .compact import compact_data
from .ell import ELL_CIS, ELL_ENCRYPTION_AES_CTR
from .errors import KeyFormatError
from .frame import FRAME_FORMATS
from .keyring import KEY_BYTES, parse_key
from .link import build_address, encode_manufacturer
from .records import Record, build_records
from .transport import CI_TABLE, ci_info

__all__ = ["Address", "TelegramSpec"]

# (manufacturer letters or code, meter id as 8 hex digits, version, device type)
Address = tuple[str | int, str, int, int]

# Shared with stack.encode (public names, not API: import the API from stack.encode).
MAX_BLOCKS = 0x0F  # CFG bits 7-4 (EN 13757-7): at most 15 encrypted blocks
SESSION_CIS = (0x8D, 0x8F)  # ELL II / IV carry SN and PayloadCRC (EN 13757-4)
ADDRESS_CIS = (0x8E, 0x8F)  # ELL III / IV carry M and A
SN_ENC_SHIFT = 29  # SN bits 29-31: ELL encryption (EN 13757-4)

_SECURITY_MODES = (0, 5, 7)  # the TPL modes this stack encrypts and decrypts
_CFG_MODE_BITS = 0x1F00  # CFG bits 12-8: security mode (EN 13757-7)
_CFG_BLOCK_BITS = 0x00F0  # CFG bits 7-4: number of encrypted blocks
# Full-frame CI -> compact-frame CI with the same header (EN 13757-7 CI list).
_COMPACT_CI = {0x78: 0x79, 0x7A: 0x7B, 0x72: 0x73}
# AFL authentication types computed with AES-CMAC-128 (EN 13757-7; 8 = GMAC is not).
_CMAC_AUTH_TYPES = (3, 4, 5, 6, 7)
_MCL_FIELDS = 0xF0  # MCL bits 4-7: KI present, MCR present, ML present, reserved
_MCL_COUNTER_ONLY = 0x20  # what build_afl_header writes: MCR, no KI, no ML


@dataclass(frozen=True, slots=True, kw_only=True)
class TelegramSpec:
    """Everything needed to build one telegram; checked when constructed.

    Parameters
    ----------
    manufacturer : str or int
        Three letters (``"KAM"``) or the raw 16-bit M-field value.
    meter_id : str
        8 hex digits as printed (``"12345678"``; sent as ``78 56 34 12``).
    version, device_type : int
        A-field version and device type (medium), 0..255.
    c_field : int
        Link C-field; 0x44 SND_NR by default.  Decides the mode-7 key direction.
    ell_ci : {None, 0x8C, 0x8D, 0x8E, 0x8F}
        Extended link layer variant, or None for none.
    ell_cc : int
        ELL communication control byte.
    ell_access_number : int or None
        ELL access number; None uses ``access_number``.
    ell_session : int
        ELL session number SN as a 32-bit value (0x8D/0x8F).  Bits 29-31 may be left 0:
        they are set to 1 (AES-CTR) when ``ell_encrypt`` is true.
    ell_encrypt : bool
        Encrypt with AES-128-CTR from the payload CRC on (0x8D/0x8F only, needs a key).
    ell_address : Address or None
        Address of ELL 0x8E/0x8F; None uses the link address.
    afl_counter : int or None
        AFL message counter MCR (32 bits); None for no AFL.  Needed for mode 7.
    afl_mcl : int
        AFL message control: authentication type in bits 0-3 (5 = 8-byte AES-CMAC),
        0x20 = counter present.
    ci : int
        TPL CI: 0x78/0x7A/0x72 (records), 0x79/0x7B/0x73 (compact), 0x8A/0x8B (no APL),
        0xA0-0xB7 (manufacturer payload), or another CI of ``stack.transport.CI_TABLE``.
    access_number, status : int
        TPL ACC and STS bytes.
    config_flags : int
        CFG bits other than those the encoder sets (security mode, and with mode 5/7
        the block count N), e.g. 0x8000 bidirectional, 0x2000 synchronous.
    tpl_address : Address or None
        Long TPL header address (CI 0x72/0x73/0x8B ...); None uses the link address.
    security_mode : {0, 5, 7}
        TPL security mode.
    key : bytes or str or None
        16-byte AES key (or 32 hex digits), for mode 5/7, the AFL MAC and ELL-CTR.
        Not shown in the repr.
    encrypted_blocks : int or None
        Number N of 16-byte blocks to encrypt (mode 5/7); None encrypts the whole
        padded APL, up to 15 blocks.  The plaintext beyond N blocks is sent in clear.
    config_ext : int
        Mode-7 CFG-extension byte; 0x10 = key derivation function 1.
    records : sequence of Record or None
        Application data as records (``stack.records.build_records``).
    payload : bytes or None
        Application data as raw bytes instead of ``records``.  With a compact CI and
        ``compact=False`` it is taken as already compact.
    compact : bool
        Send the compact form (signature, data CRC, data) of the records or payload;
        the CI becomes the compact sibling (0x7A -> 0x7B, 0x72 -> 0x73, 0x78 -> 0x79).
    frame_format : {None, "A", "B"}
        None: no-CRC form (L = len - 1), what receivers print; "A"/"B": with CRCs.

    Raises
    ------
    ValueError
        For any field out of range and any impossible combination (mode 5/7 without a
        key or with a headerless CI, mode 7 without ``afl_counter``, ELL encryption
        without a session-number ELL, a field given for a layer that does not use it).
    KeyFormatError
        If ``key`` is not 16 bytes or 32 hex digits (a ValueError too).
    RecordError
        If ``records`` cannot be built, or a ``payload`` to compact is no record list
        (a ValueError too).
    """

    manufacturer: str | int
    meter_id: str
    version: int = 0
    device_type: int = 0x07
    c_field: int = 0x44
    ell_ci: int | None = None
    ell_cc: int = 0
    ell_access_number: int | None = None
    ell_session: int = 0
    ell_encrypt: bool = False
    ell_address: Address | None = None
    afl_counter: int | None = None
    afl_mcl: int = 0x25
    ci: int = 0x7A
    access_number: int = 0
    status: int = 0
    config_flags: int = 0
    tpl_address: Address | None = None
    security_mode: int = 0
    key: bytes | str | None = dataclasses.field(default=None, repr=False)
    encrypted_blocks: int | None = None
    config_ext: int = 0x10
    records: Sequence[Record] | None = None
    payload: bytes | None = None
    compact: bool = False
    frame_format: str | None = None

    def __post_init__(self) -> None:
        # Normalise first (frozen: object.__setattr__), so that checks see final types.
        if self.key is not None:
            key = parse_key(self.key) if isinstance(self.key, str) else self.key
            object.__setattr__(self, "key", _check_key_bytes(key))
        if self.records is not None:
            object.__setattr__(self, "records", tuple(self.records))
        if self.payload is not None:
            if not isinstance(self.payload, bytes | bytearray | memoryview):
                kind = type(self.payload).__name__
                raise ValueError(f"payload must be bytes, not {kind}")
            object.__setattr__(self, "payload", bytes(self.payload))
        _check_link(self)
        _check_ell(self)
        _check_tpl(self)
        _check_security(self)
        _check_application(self)
        if self.frame_format not in (None, *FRAME_FORMATS):
            raise ValueError(
                f"frame_format must be None, 'A' or 'B', not {self.frame_format!r}"
            )

    @property
    def tpl_ci(self) -> int:
        """The CI actually sent: the compact sibling of ``ci`` when ``compact``."""
        return _COMPACT_CI.get(self.ci, self.ci) if self.compact else self.ci

    @property
    def link_address(self) -> bytes:
        """The 8 link address bytes as sent: M(2) ID(4) version type."""
        return pack_address(
            (self.manufacturer, self.meter_id, self.version, self.device_type)
        )

    @property
    def security_address(self) -> bytes:
        """Address that keys mode 5/7 (IV, KDF): long TPL header's, else the link's."""
        if ci_info(self.tpl_ci)[0] == "long" and self.tpl_address is not None:
            return pack_address(self.tpl_address)
        return self.link_address


# --- checks ---------------------------------------------------------------------------


def _check_int(name: str, value: object, top: int) -> None:
    # bool is an int subclass; True as an access number is a caller's mistake.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
        raise ValueError(f"{name} must be an integer in 0..{top}, not {value!r}")


def _check_key_bytes(key: object) -> bytes:
    # A key of the wrong type or size is a configuration error: KeyFormatError, and
    # never the key bytes in the message.
    if not isinstance(key, bytes | bytearray | memoryview):
        raise KeyFormatError(f"key must be bytes or hex text, not {type(key).__name__}")
    if len(key) != KEY_BYTES:
        raise KeyFormatError(f"key must be {KEY_BYTES} bytes, got {len(key)}")
    return bytes(key)


def pack_address(address: Address) -> bytes:
    """Check an `Address` and return its 8 bytes as sent: M(2) ID(4) version type.

    Raises
    ------
    ValueError
        ``address`` is not a 4-tuple, or a field is out of range (manufacturer
        letters, meter id digits, a byte).
    """
    if not isinstance(address, tuple) or len(address) != 4:
        raise ValueError(
            "an address is (manufacturer, meter id, version, device type), "
            f"not {address!r}"
        )
    manufacturer, meter_id, version, device_type = address
    if isinstance(manufacturer, str):
        m_code = encode_manufacturer(manufacturer)
    else:
        _check_int("manufacturer code", manufacturer, 0xFFFF)
        m_code = manufacturer
    if not isinstance(meter_id, str):
        raise ValueError(f"meter id must be 8 hex digits as text, not {meter_id!r}")
    _check_int("version", version, 0xFF)
    _check_int("device type", device_type, 0xFF)
    return build_address(m_code, meter_id, version, device_type)


def _check_link(spec: TelegramSpec) -> None:
    pack_address((spec.manufacturer, spec.meter_id, spec.version, spec.device_type))
    _check_int("c_field", spec.c_field, 0xFF)


def _check_ell(spec: TelegramSpec) -> None:
    ci = spec.ell_ci
    if ci is not None and ci not in ELL_CIS:
        raise ValueError(f"ell_ci must be None or one of 0x8C..0x8F, not {ci!r}")
    if spec.ell_encrypt and ci not in SESSION_CIS:
        raise ValueError("ell_encrypt needs ell_ci 0x8D or 0x8F (the ELLs with SN)")
    if spec.ell_encrypt and spec.key is None:
        raise ValueError("ell_encrypt needs a key")
    if spec.ell_address is not None:
        if ci not in ADDRESS_CIS:
            raise ValueError("ell_address is only sent with ell_ci 0x8E or 0x8F")
        pack_address(spec.ell_address)
    _check_int("ell_cc", spec.ell_cc, 0xFF)
    if spec.ell_access_number is not None:
        _check_int("ell_access_number", spec.ell_access_number, 0xFF)
    _check_int("ell_session", spec.ell_session, 0xFFFF_FFFF)
    if spec.ell_session and ci not in SESSION_CIS:
        raise ValueError("ell_session is only sent with ell_ci 0x8D or 0x8F")
    enc_bits = spec.ell_session >> SN_ENC_SHIFT
    wanted = ELL_ENCRYPTION_AES_CTR if spec.ell_encrypt else 0
    if enc_bits not in (0, wanted):
        raise ValueError(
            f"ell_session bits 29-31 say encryption {enc_bits}, but ell_encrypt is "
            f"{spec.ell_encrypt}"
        )


def _check_tpl(spec: TelegramSpec) -> None:
    _check_int("ci", spec.ci, 0xFF)
    if spec.ci not in CI_TABLE:
        raise ValueError(
            f"ci 0x{spec.ci:02X} is not a transport-layer CI (stack.transport.CI_TABLE)"
        )
    if spec.compact and spec.tpl_ci == spec.ci and ci_info(spec.ci)[1] != "compact":
        raise ValueError(f"CI 0x{spec.ci:02X} has no compact form (use 0x78/0x7A/0x72)")
    kind = ci_info(spec.tpl_ci)[0]
    _check_int("access_number", spec.access_number, 0xFF)
    _check_int("status", spec.status, 0xFF)
    _check_int("config_flags", spec.config_flags, 0xFFFF)
    if spec.tpl_address is not None:
        if kind != "long":
            raise ValueError(f"tpl_address needs a long-header CI, not 0x{spec.ci:02X}")
        pack_address(spec.tpl_address)
    if kind == "none" and spec.config_flags:
        raise ValueError(f"CI 0x{spec.ci:02X} has no TPL header to carry config_flags")
    owned = _CFG_MODE_BITS | (_CFG_BLOCK_BITS if spec.security_mode else 0)
    if spec.config_flags & owned:
        raise ValueError(
            f"config_flags 0x{spec.config_flags:04X} overlap bits 0x{owned:04X}, which "
            "the encoder sets from security_mode and the encrypted block count"
        )


def _check_security(spec: TelegramSpec) -> None:
    mode = spec.security_mode
    if mode not in _SECURITY_MODES:
        raise ValueError(f"security mode {mode!r} cannot be encoded; use 0, 5 or 7")
    if mode and spec.key is None:
        raise ValueError(f"security mode {mode} needs a key")
    if mode and ci_info(spec.tpl_ci)[0] == "none":
        raise ValueError(
            f"CI 0x{spec.tpl_ci:02X} has no TPL header, so it cannot be TPL-encrypted "
            f"(security mode {mode}); use a short/long header CI or ELL encryption"
        )
    if mode == 7 and spec.afl_counter is None:
        raise ValueError("security mode 7 needs an AFL: give afl_counter")
    if spec.encrypted_blocks is not None:
        if not mode:
            raise ValueError("encrypted_blocks needs security mode 5 or 7")
        _check_int("encrypted_blocks", spec.encrypted_blocks, MAX_BLOCKS)
    _check_int("config_ext", spec.config_ext, 0xFF)
    if spec.afl_counter is not None:
        _check_int("afl_counter", spec.afl_counter, 0xFFFF_FFFF)
        _check_int("afl_mcl", spec.afl_mcl, 0xFF)
        if spec.key is None:
            raise ValueError("an AFL needs a key to compute its MAC")
        if spec.afl_mcl & 0x0F not in _CMAC_AUTH_TYPES:
            raise ValueError(
                f"afl_mcl 0x{spec.afl_mcl:02X}: authentication type must be an "
                f"AES-CMAC type {_CMAC_AUTH_TYPES} (5 = 8-byte MAC)"
            )
        if spec.afl_mcl & _MCL_FIELDS != _MCL_COUNTER_ONLY:
            raise ValueError(
                f"afl_mcl 0x{spec.afl_mcl:02X}: bits 4-7 must be 0x20 (message counter "
                "present; key info and message length are not written)"
            )


def _check_application(spec: TelegramSpec) -> None:
    if spec.records is not None and spec.payload is not None:
        raise ValueError("give records or payload, not both")
    records = spec.records or ()
    if not all(isinstance(record, Record) for record in records):
        raise ValueError("records must be stack.records.Record objects")
    content = ci_info(spec.tpl_ci)[1]
    if content == "none" and (spec.records or spec.payload):
        raise ValueError(f"CI 0x{spec.tpl_ci:02X} carries no application data")
    if content == "manufacturer" and spec.records is not None:
        raise ValueError(
            f"CI 0x{spec.tpl_ci:02X} is manufacturer specific: give a raw payload"
        )
    # Records that cannot be built, or a payload to compact that is no record list,
    # fail here (RecordError) rather than halfway through encode_telegram.
    if spec.records is not None:
        build_records(spec.records)
    elif spec.compact and spec.payload is not None:
        compact_data(spec.payload)
