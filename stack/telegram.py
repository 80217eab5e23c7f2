"""A whole telegram: DLL -> [ELL] -> [AFL] -> TPL -> records, decrypting on the way.

``decode_telegram`` is the one entry point for received bytes.  Its contract:

- Bytes that are not a trustworthy frame (bad CRC, L-field disagreeing with the length,
  no complete link header) raise a ``DecodeError`` (``CrcError``, ``FrameError``).
- Once the link header stands, everything later that fails (missing or wrong key, MAC
  mismatch, a malformed TPL, unparsable records) does not raise: the ``Telegram`` comes
  back with its link header, ``error`` set to the exception, and no records that were
  not checked.  A receiver can still show which meter sent it.

Security checks, in order (wmbus-reference.md 3.2-3.6): ELL AES-CTR with its payload
CRC, the AFL MAC (mode 7, before decryption), then TPL mode 5/7 AES-CBC whose plaintext
must start with 2F 2F.  A payload that the header calls encrypted but that is already
clear text is accepted with a warning when no key is configured, and refused
(``NotEncryptedError``) when one is.

References: EN 13757-3/-4/-7, OMS; wmbus-reference.md section 5 (receive checklist).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .afl import AFL_CI, AflHeader, mac_input, parse_afl_header
from .crc import crc16
from .ell import ELL_CIS, EllHeader, parse_ell_header
from .errors import (
    AuthenticationError,
    CrcError,
    DecryptionError,
    FrameError,
    KeyMissingError,
    NotEncryptedError,
    UnsupportedError,
    WmbusError,
)
from .frame import detect_crc_format, strip_crcs
from .keyring import KeyRing
from .link import LinkHeader, parse_link_header
from .records import Record, expand_compact, parse_records_lenient, record_layout
from .security import (
    aes_cmac,
    ctr_crypt,
    decrypt_cbc,
    derive_key,
    ell_counter_block,
    mode5_iv,
)
from .summary import telegram_to_dict
from .transport import TplHeader, parse_tpl_header

__all__ = ["Telegram", "FormatCache", "decode_telegram", "is_from_meter"]

_CHECK_BYTES = (
    b"\x2f\x2f"  # plaintext of modes 5/7 starts with two fillers (EN 13757-7)
)
_ELL_V = 0x86
# Mode 7 key derivation constants (OMS vol. 2, EN 13757-7 KDF-A): DC byte per key.
_DC_ENC_FROM_METER, _DC_MAC_FROM_METER = 0x00, 0x01
_DC_ENC_TO_METER, _DC_MAC_TO_METER = 0x10, 0x11


class FormatCache:
    """Record layouts of full frames, per meter, so that later compact frames decode.

    A compact frame (CI 0x79/0x7B/0x73) carries only data bytes and a signature (the
    CRC-16 of the DIF/VIF headers of the equivalent full frame).  Decoding it needs the
    headers from an earlier full frame of the same meter; ``decode_telegram`` stores
    them here as it decodes full frames.

    Parameters
    ----------
    max_per_meter : int
        Layouts kept per meter (oldest dropped first).
    """

    def __init__(self, max_per_meter: int = 8) -> None:
        self._layouts: dict[tuple[int, str], dict[int, bytes]] = {}
        self._max = max_per_meter

    def remember(self, meter: tuple[int, str], layout: bytes) -> int:
        """Store a layout (concatenated DIF/VIF headers); return its signature."""
        signature = crc16(layout)
        known = self._layouts.setdefault(meter, {})
        known.pop(signature, None)
        known[signature] = layout
        while len(known) > self._max:
            known.pop(next(iter(known)))
        return signature

    def lookup(self, meter: tuple[int, str], signature: int) -> bytes | None:
        return self._layouts.get(meter, {}).get(signature)

    def __len__(self) -> int:
        return sum(len(v) for v in self._layouts.values())


@dataclass(frozen=True, slots=True)
class Telegram:
    """A decoded telegram.

    Attributes
    ----------
    frame : bytes
        The link-layer bytes in no-CRC form (L counts the bytes after it), as received.
    crc_format : {"A", "B"} or None
        The frame format whose block CRCs were checked; None when the bytes came
        without CRCs (a receiver had already checked and removed them).
    link, ell, afl, tpl
        The headers present (None where a layer is absent or was not reached).
    payload : bytes
        Application bytes after the TPL header; decrypted if ``decrypted``.
    records : tuple of Record
    encrypted : bool
        Some part was encrypted on air (ELL or TPL).
    decrypted : bool
        And it was decrypted and verified.
    error : WmbusError or None
        Why decoding stopped early, if it did.
    warnings : tuple of str
        Things a user should know that did not stop decoding.
    compact_signature : int or None
        Format signature of a compact frame.
    """

    frame: bytes
    link: LinkHeader
    crc_format: str | None = None
    ell: EllHeader | None = None
    afl: AflHeader | None = None
    tpl: TplHeader | None = None
    payload: bytes = b""
    records: tuple[Record, ...] = ()
    encrypted: bool = False
    decrypted: bool = False
    predecrypted: bool = False
    error: WmbusError | None = None
    warnings: tuple[str, ...] = ()
    compact_signature: int | None = None

    @property
    def ci(self) -> int | None:
        """CI of the transport layer (after any ELL/AFL), or of the last layer seen."""
        if self.tpl is not None:
            return self.tpl.ci
        if len(self.frame) > 10:
            return self.frame[10]
        return None

    @property
    def security_mode(self) -> int:
        return self.tpl.security_mode if self.tpl else 0

    @property
    def access_number(self) -> int | None:
        if self.tpl is not None and self.tpl.access_number is not None:
            return self.tpl.access_number
        return self.ell.access_number if self.ell else None

    @property
    def status(self) -> int | None:
        return self.tpl.status if self.tpl else None

    @property
    def meter(self) -> tuple[int, str]:
        """(manufacturer code, id) of the meter: long TPL address if any, else DLL."""
        return _identity(self.link, self.ell, self.tpl)

    def to_dict(self) -> dict:
        """A JSON-ready dict (the format of ``wmbus decode --json``)."""
        return telegram_to_dict(self)


def is_from_meter(c_field: int) -> bool:
    """True for frames a meter sends (SND_NR, SND_IR, ACC_NR, ACC_DMD, RSP_UD)."""
    function = c_field & 0x0F
    if c_field & 0x40:
        return function in (0x4, 0x6, 0x7, 0x8)
    return function == 0x8


def _identity(
    link: LinkHeader, ell: EllHeader | None, tpl: TplHeader | None
) -> tuple[int, str]:
    if tpl is not None and tpl.address is not None:
        return tpl.address[0], tpl.address[1]
    if ell is not None and ell.address is not None:
        return int.from_bytes(ell.address[0:2], "little"), ell.address[2:6][::-1].hex()
    return link.manufacturer_code, link.id


def _strip_for(data: bytes, crc: str | None) -> tuple[bytes, str | None]:
    """(no-CRC frame, frame format whose CRCs were checked or None)."""
    if crc in (None, "none"):
        if len(data) < 1 or data[0] != len(data) - 1:
            raise FrameError(
                f"L-field {data[0] if data else None} disagrees with "
                f"{len(data) - 1} bytes after it (CRCs inside? try crc='auto')",
                layer="frame",
            )
        return data, None
    if crc == "auto":
        # Note: a format-B frame has the length of a CRC-less frame (its L counts the
        # CRCs), so a B frame whose CRC fails cannot be told from a CRC-less frame here.
        fmt = detect_crc_format(data)
        return (data if fmt is None else strip_crcs(data, fmt)), fmt
    if crc in ("A", "B"):
        return strip_crcs(data, crc), crc
    raise ValueError(f"crc must be 'auto', 'A', 'B' or 'none', not {crc!r}")


def _as_keyring(keys: KeyRing | bytes | str | None) -> KeyRing | None:
    if keys is None or isinstance(keys, KeyRing):
        return keys
    return KeyRing.single(keys)


def decode_telegram(
    data: bytes,
    keys: KeyRing | bytes | str | None = None,
    *,
    crc: str | None = None,
    formats: FormatCache | None = None,
) -> Telegram:
    """Decode one telegram.

    Parameters
    ----------
    data : bytes
        The frame, from L on.
    keys : KeyRing, bytes, str or None
        Keys by meter id; a single key (bytes or hex) is used for every meter.
    crc : {None, "none", "auto", "A", "B"}
        Whether ``data`` still holds its block CRCs: None/"none" means no CRCs
        (L = len - 1), "A"/"B" a frame in that format, "auto" decides by checking.
    formats : FormatCache or None
        Layouts of earlier full frames, for compact frames; updated as frames decode.

    Returns
    -------
    Telegram

    Raises
    ------
    FrameError, CrcError
        If the frame itself cannot be trusted (see the module docstring).
    ValueError
        For a ``crc`` argument outside the choices.
    """
    frame, crc_format = _strip_for(bytes(data), crc)
    link = parse_link_header(frame)
    work = _Work(frame, link, _as_keyring(keys), formats, crc_format)
    try:
        work.run()
    except WmbusError as exc:
        work.error = exc
    return work.result()


@dataclass
class _Work:
    """Mutable state while one telegram is decoded."""

    frame: bytes
    link: LinkHeader
    keys: KeyRing | None
    formats: FormatCache | None
    crc_format: str | None = None
    buf: bytearray = field(init=False)
    ell: EllHeader | None = None
    afl: AflHeader | None = None
    tpl: TplHeader | None = None
    payload: bytes = b""
    records: list[Record] = field(default_factory=list)
    encrypted: bool = False
    decrypted: bool = False
    predecrypted: bool = False
    error: WmbusError | None = None
    warnings: list[str] = field(default_factory=list)
    compact_signature: int | None = None

    def __post_init__(self) -> None:
        self.buf = bytearray(self.frame)

    def result(self) -> Telegram:
        return Telegram(
            frame=self.frame,
            link=self.link,
            crc_format=self.crc_format,
            ell=self.ell,
            afl=self.afl,
            tpl=self.tpl,
            payload=self.payload,
            records=tuple(self.records),
            encrypted=self.encrypted,
            decrypted=self.decrypted,
            predecrypted=self.predecrypted,
            error=self.error,
            warnings=tuple(self.warnings),
            compact_signature=self.compact_signature,
        )

    @property
    def meter_id(self) -> str:
        return _identity(self.link, self.ell, self.tpl)[1]

    def run(self) -> None:
        pos = 10
        if pos < len(self.buf) and (
            self.buf[pos] in ELL_CIS or self.buf[pos] == _ELL_V
        ):
            pos = self._ell(pos)
        if pos < len(self.buf) and self.buf[pos] == AFL_CI:
            self.afl = parse_afl_header(self.buf, pos)
            pos += self.afl.length
        if pos >= len(self.buf):
            return
        tpl_pos = pos
        tpl = self.tpl = parse_tpl_header(self.buf, pos)
        pos += tpl.length
        self._tpl_security(tpl, tpl_pos, pos)
        self.payload = bytes(self.buf[pos:])
        self._application(tpl)

    # -- keys ---------------------------------------------------------------------
    def _key(self) -> bytes | None:
        if self.keys is None:
            return None
        candidates = [self.meter_id, self.link.id]
        for meter_id in candidates:
            key = self.keys.get(meter_id)
            if key is not None:
                return key
        return None

    # -- ELL ------------------------------------------------------------------------
    def _ell(self, pos: int) -> int:
        ell = parse_ell_header(self.buf, pos)
        self.ell = ell
        if ell.session is None:
            return pos + ell.length
        crc_at = pos + ell.crc_offset
        if ell.encryption not in (0, 1):
            raise UnsupportedError(f"ELL encryption {ell.encryption}", layer="ell")
        if ell.encryption == 1:
            self.encrypted = True
            key = self._key()
            if key is None:
                raise KeyMissingError(self.meter_id, "ELL payload")
            address = ell.address or self.link.address
            counter = ell_counter_block(address[:2], address[2:], ell.cc, ell.session)
            self.buf[crc_at:] = ctr_crypt(key, counter, bytes(self.buf[crc_at:]))
        stored = int.from_bytes(self.buf[crc_at : crc_at + 2], "little")
        computed = crc16(self.buf[crc_at + 2 :])
        if stored != computed:
            if ell.encryption == 1:
                raise DecryptionError(
                    self.meter_id, "ELL payload CRC does not match after decryption"
                )
            raise CrcError(-1, computed, stored, layer="ell", offset=crc_at)
        self.decrypted = self.encrypted
        return pos + ell.length

    # -- TPL security ---------------------------------------------------------------
    def _tpl_security(self, tpl: TplHeader, tpl_pos: int, pos: int) -> None:
        mode = tpl.security_mode
        if mode == 0:
            return
        if mode not in (5, 7):
            self.encrypted = True
            raise UnsupportedError(f"security mode {mode}", layer="tpl", offset=tpl_pos)
        size = tpl.encrypted_blocks * 16
        if pos + size > len(self.buf):
            raise FrameError(
                f"CFG announces {size} encrypted bytes, "
                f"only {len(self.buf) - pos} follow",
                layer="tpl",
                offset=pos,
            )
        if size == 0:
            return
        region = bytes(self.buf[pos : pos + size])
        key = self._key()
        if key is None:
            if region.startswith(_CHECK_BYTES):
                self.predecrypted = True
                self.warnings.append(
                    f"header says security mode {mode} but the payload is clear text "
                    "(a pre-decrypted replay?)"
                )
                return
            self.encrypted = True
            raise KeyMissingError(self.meter_id)
        self.encrypted = True
        if mode == 5:
            # A security mode comes from CFG, and every header with CFG has ACC.
            assert tpl.access_number is not None
            plain = self._mode5(key, region, tpl.access_number)
        else:
            plain = self._mode7(key, region, tpl_pos)
        if not plain.startswith(_CHECK_BYTES):
            if region.startswith(_CHECK_BYTES):
                raise NotEncryptedError(self.meter_id, mode)
            raise DecryptionError(
                self.meter_id, "decrypted payload does not start with 2F2F"
            )
        self.buf[pos : pos + size] = plain
        self.decrypted = True

    def _address_for_security(self) -> bytes:
        if self.tpl is not None and self.tpl.address_bytes is not None:
            return self.tpl.address_bytes
        return self.link.address

    def _mode5(self, key: bytes, region: bytes, access_number: int) -> bytes:
        address = self._address_for_security()
        iv = mode5_iv(address[:2], address[2:], access_number)
        return decrypt_cbc(key, iv, region)

    def _mode7(self, key: bytes, region: bytes, tpl_pos: int) -> bytes:
        afl = self.afl
        if afl is None or afl.message_counter is None:
            raise FrameError(
                "security mode 7 needs an AFL with a message counter", layer="afl"
            )
        meter_id = self._address_for_security()[2:6]
        from_meter = is_from_meter(self.link.c_field)
        dc_mac = _DC_MAC_FROM_METER if from_meter else _DC_MAC_TO_METER
        dc_enc = _DC_ENC_FROM_METER if from_meter else _DC_ENC_TO_METER
        if afl.mac is not None:
            k_mac = derive_key(key, dc_mac, afl.message_counter, meter_id)
            mac = aes_cmac(k_mac, mac_input(afl, bytes(self.buf[tpl_pos:])))[
                : len(afl.mac)
            ]
            if mac != afl.mac:
                if region.startswith(_CHECK_BYTES):
                    raise NotEncryptedError(self.meter_id, 7)
                raise AuthenticationError(self.meter_id, mac, afl.mac)
        k_enc = derive_key(key, dc_enc, afl.message_counter, meter_id)
        return decrypt_cbc(k_enc, bytes(16), region)

    # -- application layer ----------------------------------------------------------
    def _application(self, tpl: TplHeader) -> None:
        content = tpl.content
        apl = self.payload
        if tpl.security_mode in (5, 7) and apl.startswith(_CHECK_BYTES):
            apl = apl[2:]
        if content == "records":
            complete = self._records(apl)
            if self.formats is not None and self.records and complete:
                self.formats.remember(self.meter_identity, record_layout(apl))
        elif content == "compact":
            self._compact(apl)
        elif content == "unknown":
            self.warnings.append(f"CI 0x{tpl.ci:02X} is not decoded")

    @property
    def meter_identity(self) -> tuple[int, str]:
        return _identity(self.link, self.ell, self.tpl)

    def _compact(self, apl: bytes) -> None:
        if len(apl) < 4:
            raise FrameError("a compact frame needs its 4-byte header", layer="apl")
        signature = int.from_bytes(apl[0:2], "little")
        data_crc = int.from_bytes(apl[2:4], "little")
        self.compact_signature = signature
        layout = (
            self.formats.lookup(self.meter_identity, signature)
            if self.formats
            else None
        )
        if layout is None:
            self.warnings.append(
                f"compact frame with format signature {signature:04X}: undecodable "
                "until a full frame of this meter with that format has been seen"
            )
            return
        full = expand_compact(layout, apl[4:])
        if crc16(full) != data_crc:
            raise CrcError(-1, crc16(full), data_crc, layer="apl")
        self._records(full)

    def _records(self, apl: bytes) -> bool:
        # The frame passed its CRCs and any key check, so the bytes are what the meter
        # sent; a part the generic EN 13757-3 parser cannot read is a vendor extension,
        # not an error of the telegram.  Keep the records before it and say where it is.
        records, problem = parse_records_lenient(apl)
        self.records = records
        if problem is not None:
            self.warnings.append(f"records not decoded from there on: {problem}")
        return problem is None
