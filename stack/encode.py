"""Building telegrams: the inverse of ``stack.telegram.decode_telegram``.

What ``encode_telegram`` emits, in no-CRC form (optional layers in brackets)::

    L C M(2) ID(4) ver type                                  link header (EN 13757-4)
    [ELL]  8C CC ACC
           8D CC ACC SN(4) PayloadCRC(2)   (AES-CTR from PayloadCRC on, if SN says so)
           8E CC ACC M(2) A(6)
           8F CC ACC M(2) A(6) SN(4) PayloadCRC(2)
    [AFL]  90 LEN FC(2) MCL MCR(4) MAC(n)                    (EN 13757-7)
    TPL    CI [ID(4) M(2) ver type] [ACC STS CFG(2) [CFG-ext]]
    APL    mode 0:    records (or compact: signature(2) data-CRC(2) data, or raw bytes)
           mode 5/7:  | 2F 2F APL 2F.. | (N x 16 bytes, AES-CBC)  rest of APL in clear

The build runs from the inside out, because every outer layer covers the inner bytes:

1. APL from ``Record``\\ s or raw bytes; the compact form on request.
2. TPL security: plaintext ``2F 2F + APL``, padded with 0x2F idle fillers to whole
   16-byte blocks (at most 15 blocks, CFG N is 4 bits; the rest is sent in clear).
   The fillers go before a trailing manufacturer-data record (DIF 0x0F/0x1F), which
   runs to the end of the APL, so that it keeps its bytes.
   Mode 5: AES-CBC, IV = M | A | ACC x 8 (A from the long TPL header if any, else DLL).
   Mode 7: AES-CBC, IV = 0, key Kenc from the KDF; CFG-ext byte (KDF 1 = 0x10).
3. AFL MAC: AES-CMAC(Kmac, MCL | MCR | TPL CI .. end), truncated; direction (DC) from
   the C-field.
4. ELL payload CRC over the plaintext after it; then AES-CTR from the CRC to the end.
5. Link header and L; block CRCs for frame format A or B.

What to build is a ``TelegramSpec`` (``stack.encode_spec``, re-exported here), whose
fields are all checked before this module builds anything.

References: EN 13757-3/-4/-7, OMS vol. 2; wmbus-reference.md sections 2-3.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .afl import MAC_LENGTHS, build_afl_header, mac_input, parse_afl_header
from .compact import compact_data
from .crc import crc16
from .ell import ELL_ENCRYPTION_AES_CTR, build_ell_header
from .encode_spec import (
    ADDRESS_CIS,
    MAX_BLOCKS,
    SESSION_CIS,
    SN_ENC_SHIFT,
    Address,
    TelegramSpec,
    pack_address,
)
from .frame import add_crcs
from .link import build_link_header, encode_manufacturer
from .records import build_record, build_records
from .security import (
    AES_BLOCK_BYTES,
    DC_KENC_METER,
    DC_KENC_OTHER,
    DC_KMAC_METER,
    DC_KMAC_OTHER,
    aes_cmac,
    ctr_crypt,
    derive_key,
    ell_counter_block,
    encrypt_cbc,
    mode5_iv,
)
from .telegram import is_from_meter
from .transport import build_tpl_header, ci_info, config_word

__all__ = ["Address", "TelegramSpec", "encode_telegram"]

_CHECK_BYTES = b"\x2f\x2f"  # EN 13757-7: plaintext of modes 5/7 starts with 2F 2F
_FILLER = b"\x2f"  # EN 13757-3 idle filler DIF, pads the last encrypted block
_MFCT_DIFS = (b"\x0f", b"\x1f")  # EN 13757-3: manufacturer data to the end of the APL
_MAX_L_FIELD = 255  # L is one byte
_BLOCK2_END_B = 126  # format B: one CRC up to frame byte 126, two beyond (EN 13757-4)


# --- building -------------------------------------------------------------------------


def encode_telegram(spec: TelegramSpec | None = None, /, **fields: Any) -> bytes:
    """Build a complete, valid telegram.

    Parameters
    ----------
    spec : TelegramSpec or None
        The telegram to build.
    **fields
        Fields of `TelegramSpec`: build a spec from them, or, with ``spec``, replace
        those fields of it.

    Returns
    -------
    bytes
        The frame in no-CRC form (L = len - 1), or with block CRCs for frame format
        "A"/"B" (as sent on air after the sync word).

    Raises
    ------
    ValueError
        For an invalid spec (see `TelegramSpec`), or a telegram too long for the frame
        format (L must fit one byte).  Nothing is returned in that case.
    KeyFormatError, RecordError
        For a malformed key or records (see `TelegramSpec`).
    TypeError
        For a keyword that is not a field of `TelegramSpec`.

    Examples
    --------
    >>> frame = encode_telegram(manufacturer="ABC", meter_id="00000001",
    ...                         payload=bytes.fromhex("0C1311223344"))
    >>> frame[0] == len(frame) - 1
    True
    """
    if spec is None:
        spec = TelegramSpec(**fields)
    elif fields:
        spec = dataclasses.replace(spec, **fields)
    tpl = _encode_tpl(spec)
    afl = _encode_afl(spec, tpl)
    after_link = _encode_ell(spec, afl + tpl)
    link = build_link_header(
        spec.c_field, spec.manufacturer, spec.meter_id, spec.version, spec.device_type
    )
    return _finish(link + after_link, spec.frame_format)


def _application_parts(spec: TelegramSpec) -> tuple[bytes, bytes]:
    """APL as (records, trailing manufacturer-data record); compact when asked.

    Manufacturer data (DIF 0x0F/0x1F) runs to the end of the APL, so idle fillers
    padding an encrypted block must go before it, or the receiver would read them as
    part of it.  Only ``records`` show where it starts; a raw payload is sent as given.
    """
    trailer = b""
    if spec.records is not None:
        records = tuple(spec.records)
        if records and build_record(records[-1])[:1] in _MFCT_DIFS:
            trailer = build_record(records[-1])
            records = records[:-1]
        full = build_records(records)
    else:
        full = spec.payload or b""
    is_compact_ci = ci_info(spec.tpl_ci)[1] == "compact"
    # A raw payload under a compact CI without ``compact`` is taken as already compact;
    # records are always full, so a compact CI compacts them.
    if not is_compact_ci or (spec.records is None and not spec.compact):
        return full, trailer
    signature, data_crc, data = compact_data(full + trailer)
    header = signature.to_bytes(2, "little") + data_crc.to_bytes(2, "little")
    return header + bytes(data), b""


def _block_count(n_plain: int, requested: int | None) -> int:
    if requested is not None:
        return requested
    return min(-(-n_plain // AES_BLOCK_BYTES), MAX_BLOCKS)


def _encode_tpl(spec: TelegramSpec) -> bytes:
    """TPL header + APL, the first N blocks encrypted for mode 5/7."""
    body, trailer = _application_parts(spec)
    mode = spec.security_mode
    if mode == 0:
        return _tpl_header(spec, spec.config_flags) + body + trailer
    n_plain = len(_CHECK_BYTES) + len(body) + len(trailer)
    n_blocks = _block_count(n_plain, spec.encrypted_blocks)
    size = n_blocks * AES_BLOCK_BYTES
    fillers = _FILLER * max(0, size - n_plain)
    plain = _CHECK_BYTES + body + fillers + trailer
    header = _tpl_header(spec, config_word(mode, n_blocks, spec.config_flags))
    return header + _encrypt_region(spec, plain[:size]) + plain[size:]


def _tpl_header(spec: TelegramSpec, config: int) -> bytes:
    address = None
    if ci_info(spec.tpl_ci)[0] == "long":
        address = _address_tuple(
            spec.tpl_address
            or (spec.manufacturer, spec.meter_id, spec.version, spec.device_type)
        )
    return build_tpl_header(
        spec.tpl_ci,
        access_number=spec.access_number,
        status=spec.status,
        config=config,
        config_ext=spec.config_ext if spec.security_mode == 7 else None,
        address=address,
    )


def _address_tuple(address: Address) -> tuple[int, str, int, int]:
    m_code = address[0]
    if isinstance(m_code, str):
        m_code = encode_manufacturer(m_code)
    return m_code, address[1], address[2], address[3]


def _encrypt_region(spec: TelegramSpec, region: bytes) -> bytes:
    if not region:
        return b""
    key = _key(spec)
    address = spec.security_address
    if spec.security_mode == 5:
        return encrypt_cbc(
            key, mode5_iv(address[:2], address[2:], spec.access_number), region
        )
    dc_enc = DC_KENC_METER if is_from_meter(spec.c_field) else DC_KENC_OTHER
    k_enc = derive_key(key, dc_enc, _counter_bytes(spec), address[2:6])
    return encrypt_cbc(k_enc, bytes(AES_BLOCK_BYTES), region)


def _key(spec: TelegramSpec) -> bytes:
    # The spec's checks guarantee a key wherever one is used; this keeps types honest.
    if not isinstance(spec.key, bytes):
        raise ValueError("this telegram needs a key")
    return spec.key


def _counter_bytes(spec: TelegramSpec) -> bytes:
    return (spec.afl_counter or 0).to_bytes(4, "little")


def _encode_afl(spec: TelegramSpec, tpl: bytes) -> bytes:
    """AFL header whose MAC covers MCL, MCR and the finished TPL bytes."""
    if spec.afl_counter is None:
        return b""
    mac_len = MAC_LENGTHS[spec.afl_mcl & 0x0F]
    blank = build_afl_header(spec.afl_counter, mcl=spec.afl_mcl, mac=bytes(mac_len))
    dc_mac = DC_KMAC_METER if is_from_meter(spec.c_field) else DC_KMAC_OTHER
    key = _key(spec)
    k_mac = derive_key(key, dc_mac, _counter_bytes(spec), spec.security_address[2:6])
    mac = aes_cmac(k_mac, mac_input(parse_afl_header(blank, 0), tpl))[:mac_len]
    return blank[:-mac_len] + mac


def _encode_ell(spec: TelegramSpec, inner: bytes) -> bytes:
    """ELL header + ``inner``; PayloadCRC over the plaintext, then AES-CTR if asked."""
    ci = spec.ell_ci
    if ci is None:
        return inner
    acc = spec.ell_access_number
    if acc is None:
        acc = spec.access_number
    address = None
    if ci in ADDRESS_CIS:
        address = spec.link_address
        if spec.ell_address is not None:
            address = pack_address(spec.ell_address)
    if ci not in SESSION_CIS:
        return build_ell_header(ci, spec.ell_cc, acc, address=address) + inner
    session_value = spec.ell_session
    if spec.ell_encrypt:
        session_value |= ELL_ENCRYPTION_AES_CTR << SN_ENC_SHIFT
    session = session_value.to_bytes(4, "little")
    header = build_ell_header(
        ci, spec.ell_cc, acc, address=address, session=session, payload_crc=crc16(inner)
    )
    if not spec.ell_encrypt:
        return header + inner
    # The counter block takes M/A of the ELL when it has them, else of the link.
    counter_address = address or spec.link_address
    counter = ell_counter_block(
        counter_address[:2], counter_address[2:], spec.ell_cc, session
    )
    key = _key(spec)
    return header[:-2] + ctr_crypt(key, counter, header[-2:] + inner)


def _finish(frame: bytes, frame_format: str | None) -> bytes:
    """Set L; add block CRCs for format A/B.  Refuses frames whose L exceeds 255."""
    l_field = len(frame) - 1
    if frame_format == "B":
        l_field += 2 if len(frame) <= _BLOCK2_END_B else 4
    if l_field > _MAX_L_FIELD:
        where = f"frame format {frame_format}" if frame_format else "a telegram"
        raise ValueError(
            f"{len(frame)} bytes do not fit {where}: L would be {l_field} > "
            f"{_MAX_L_FIELD}; send less application data"
        )
    if frame_format is not None:
        return add_crcs(frame, frame_format)  # sets L for the format
    return bytes((l_field,)) + frame[1:]
