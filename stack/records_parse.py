"""Parsing half of ``stack.records``: headers, data fields and the record stream.

The wire format, the value rules and the unit table are documented in
``stack.records`` (import everything from there); this module holds the code that
reads DIF/DIFE/VIF/VIFE headers (EN 13757-3 clause 6) and decodes data fields.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import NamedTuple

from stack import vif_tables as vt
from stack.errors import RecordError
from stack.records_dates import decode_date

__all__ = [
    "Record",
    "RecordHeader",
    "parse_records",
    "parse_records_lenient",
    "parse_record_header",
    "data_field_end",
    "describe_record",
]

MAX_EXTENSIONS = 10  # EN 13757-3 6.3/6.4: at most 10 DIFEs and 10 VIFEs per record
IDLE_FILLER = 0x2F  # EN 13757-3 table 6: DIF 0x2F, skipped
MFCT_DIFS = {0x0F: (), 0x1F: ("more records follow",)}  # EN 13757-3 table 6
GLOBAL_READOUT = 0x7F  # EN 13757-3 table 6: global readout request
COMPACT_PROFILES = {
    "compact profile",
    "compact profile with register numbers",
    "inverse compact profile",
}
BCD_CODINGS = {0x9, 0xA, 0xB, 0xC, 0xE}
INT_CODINGS = {0x1, 0x2, 0x3, 0x4, 0x6, 0x7}
DATE_LENGTHS = {2, 3, 4, 6}  # types G, J, F, I


@dataclass(frozen=True, slots=True)
class Record:
    """One decoded data record.

    Attributes
    ----------
    quantity : str
        What is measured, snake_case: ``"volume"``, ``"energy"``,
        ``"flow_temperature"``, ``"date_time"``, ``"error_flags"``,
        ``"manufacturer_data"`` ...
    value : int, float, str, bytes or None
        The value after the VIF exponent is applied; dates and times as ISO 8601
        strings; text as str; binary or manufacturer data as bytes; None for no
        data or an invalid value (see ``is_invalid``).
    unit : str
        Unit of ``value``: ``"m3"``, ``"Wh"``, ``"°C"``, ``"m3/h"`` ...; ``""`` if none.
    storage, tariff, subunit : int
        From the DIF/DIFE chain; storage 0 is the current value.
    function : str
        ``"instantaneous"``, ``"maximum"``, ``"minimum"`` or ``"error"`` (value
        during error state).
    modifiers : tuple of str
        Meanings of combinable VIFEs, e.g. ``("backward flow",)``.
    dif_vif : bytes
        The record header as sent (DIF, DIFEs, VIF, VIFEs); compact frames hash these.
    data : bytes
        The data field as sent.
    """

    quantity: str
    value: int | float | str | bytes | None
    unit: str = ""
    storage: int = 0
    tariff: int = 0
    subunit: int = 0
    function: str = "instantaneous"
    modifiers: tuple[str, ...] = ()
    dif_vif: bytes = b""
    data: bytes = b""

    @property
    def data_coding(self) -> str:
        """Name of the DIF data field coding (``"int32"``, ``"bcd8"`` ...) or ``""``."""
        if not self.dif_vif:
            return ""
        return vt.CODING_NAMES[self.dif_vif[0] & 0x0F]

    @property
    def is_invalid(self) -> bool:
        """True when data was sent but holds no valid value (bad BCD, bad date)."""
        return self.value is None and len(self.data) > 0

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict; bytes become lower-case hex strings."""
        value = self.value.hex() if isinstance(self.value, bytes) else self.value
        return {
            "quantity": self.quantity,
            "value": value,
            "unit": self.unit,
            "storage": self.storage,
            "tariff": self.tariff,
            "subunit": self.subunit,
            "function": self.function,
            "modifiers": list(self.modifiers),
            "dif_vif": self.dif_vif.hex(),
        }


@dataclass(frozen=True, slots=True)
class RecordHeader:
    """A parsed DIF/DIFE/VIF/VIFE header: everything but the data.

    Attributes
    ----------
    dif_vif : bytes
        The header bytes as sent.
    coding : int
        DIF data field coding, 0x0..0xF.
    storage, tariff, subunit : int
        From the DIF/DIFE chain.
    function : str
        ``"instantaneous"``, ``"maximum"``, ``"minimum"`` or ``"error"``.
    quantity, unit : str
        Meaning of the VIF after the combinable VIFEs.
    exponent : int
        Decimal exponent applied to numbers.
    kind : str
        ``"num"``, ``"uint"`` or ``"date"`` (see ``stack.vif_tables``).
    modifiers : tuple of str
        Meanings of the combinable VIFEs.
    offset_exp : int or None
        Additive correction ``10**offset_exp`` in ``unit``, if a VIFE asks for it.
    special : str
        ``""``, ``"manufacturer_data"`` (DIF 0x0F/0x1F) or ``"global_readout"`` (0x7F).
    """

    dif_vif: bytes
    coding: int
    storage: int
    tariff: int
    subunit: int
    function: str
    quantity: str
    unit: str
    exponent: int
    kind: str
    modifiers: tuple[str, ...]
    offset_exp: int | None = None
    special: str = ""


class VifMeaning(NamedTuple):
    # What a VIF plus its combinable VIFEs say about the value.
    quantity: str
    unit: str
    exponent: int
    kind: str
    offset_exp: int | None
    modifiers: tuple[str, ...]


# --------------------------------------------------------------------------- header


def parse_record_header(data: bytes, offset: int) -> tuple[RecordHeader, int]:
    """Parse the DIF...VIFE header of the record starting at ``data[offset]``.

    Parameters
    ----------
    data : bytes
        The application-layer bytes (or a compact-frame header layout).
    offset : int
        Index of the DIF (not an idle filler).

    Returns
    -------
    header : RecordHeader
    end : int
        Index of the first byte after the header (the data field).

    Raises
    ------
    RecordError
        Reserved DIF, DIFE or VIFE chain running off the end or longer than 10, VIF
        or plain-text unit missing.
    """
    dif = data[offset]
    if dif in MFCT_DIFS:
        special = _special_header(data, offset, "manufacturer_data", MFCT_DIFS[dif])
        return special, offset + 1
    if dif == GLOBAL_READOUT:
        return _special_header(data, offset, "global_readout", ()), offset + 1
    if dif & 0x0F == 0x0F:
        raise RecordError(f"reserved special DIF 0x{dif:02X}", offset=offset)
    storage, tariff, subunit, pos = _parse_difes(data, offset)
    vif, text, vifes, end = _read_vib(data, pos)
    meaning = _interpret_vib(vif, text, vifes)
    header = RecordHeader(
        dif_vif=bytes(data[offset:end]),
        coding=dif & 0x0F,
        storage=storage,
        tariff=tariff,
        subunit=subunit,
        function=vt.FUNCTIONS[(dif >> 4) & 3],
        quantity=meaning.quantity,
        unit=meaning.unit,
        exponent=meaning.exponent,
        kind=meaning.kind,
        modifiers=meaning.modifiers,
        offset_exp=meaning.offset_exp,
    )
    return header, end


def _special_header(
    data: bytes, offset: int, special: str, modifiers: tuple[str, ...]
) -> RecordHeader:
    return RecordHeader(
        bytes(data[offset : offset + 1]),
        0xF,
        0,
        0,
        0,
        "instantaneous",
        special,
        "",
        0,
        "uint",
        modifiers,
        None,
        special,
    )


def _parse_difes(data: bytes, offset: int) -> tuple[int, int, int, int]:
    # Storage LSB sits in the DIF; each DIFE adds 4 storage, 2 tariff, 1 subunit bits.
    dif = data[offset]
    storage, tariff, subunit = (dif >> 6) & 1, 0, 0
    pos, count, more = offset + 1, 0, dif & 0x80
    while more:
        if count == MAX_EXTENSIONS:
            raise RecordError("more than 10 DIFEs", offset=pos)
        if pos >= len(data):
            raise RecordError("DIFE chain runs past the end", offset=pos)
        dife = data[pos]
        storage |= (dife & 0x0F) << (1 + 4 * count)
        tariff |= ((dife >> 4) & 3) << (2 * count)
        subunit |= ((dife >> 6) & 1) << count
        more, pos, count = dife & 0x80, pos + 1, count + 1
    return storage, tariff, subunit, pos


def _read_vib(data: bytes, pos: int) -> tuple[int, str, bytes, int]:
    # VIF, then (plain-text VIF only) length + reversed ASCII, then the VIFE chain.
    if pos >= len(data):
        raise RecordError("VIF missing after DIF", offset=pos)
    vif, pos, text = data[pos], pos + 1, ""
    if vif & 0x7F == 0x7C:
        if pos >= len(data) or pos + 1 + data[pos] > len(data):
            raise RecordError("plain-text VIF runs past the end", offset=pos)
        length = data[pos]
        text = bytes(data[pos + 1 : pos + 1 + length])[::-1].decode("latin-1")
        pos += 1 + length
    start, more = pos, vif & 0x80
    while more:
        if pos - start == MAX_EXTENSIONS:
            raise RecordError("more than 10 VIFEs", offset=pos)
        if pos >= len(data):
            raise RecordError("VIFE chain runs past the end", offset=pos)
        more, pos = data[pos] & 0x80, pos + 1
    return vif, text, bytes(data[start:pos]), pos


def _interpret_vib(vif: int, text: str, vifes: bytes) -> VifMeaning:
    code = vif & 0x7F
    if vif in vt.EXTENSION_TABLES:
        ext = vifes[0] & 0x7F  # present: the extension bit of vif promised it
        entry = vt.EXTENSION_TABLES[vif].get(ext) or _unknown(f"{vif:02x}{ext:02x}")
        return interpret_vifes(entry, vifes[1:])
    if code == 0x7F:
        # Manufacturer VIF: its VIFEs are the manufacturer's, not table 15 codes.
        mods = tuple(f"manufacturer vife {b & 0x7F:02x}" for b in vifes)
        return VifMeaning("manufacturer_specific", "", 0, "uint", None, mods)
    if code == 0x7C:
        return interpret_vifes(vt.VifEntry("plain_text_vif", text, 0), vifes)
    if code == 0x7E:
        return interpret_vifes(vt.VifEntry("any_vif", "", 0), vifes)
    entry = vt.PRIMARY_VIFS.get(code) or _unknown(f"{code:02x}")
    return interpret_vifes(entry, vifes)


def _unknown(code_hex: str) -> vt.VifEntry:
    return vt.VifEntry(f"unknown_vif_{code_hex}", "", 0)


def interpret_vifes(entry: vt.VifEntry, vifes: bytes | list[int]) -> VifMeaning:
    """Fold the combinable VIFEs (EN 13757-3 table 15) into the VIF's meaning."""
    unit, exp, kind, offset = entry.unit, entry.exponent, entry.kind, None
    mods: list[str] = []
    codes = [b & 0x7F for b in vifes]
    i = 0
    while i < len(codes):
        text, effect, arg = vt.COMBINABLE_VIFES[codes[i]]
        i += 1
        if effect == "vendor":
            mods.append(text)
            mods.extend(f"manufacturer vife {c:02x}" for c in codes[i:])
            break
        if effect == "extend" and i < len(codes):
            ext = codes[i]
            i += 1
            text = vt.COMBINABLE_EXT_VIFES.get(
                ext, f"reserved extension vife {ext:02x}"
            )
        mods.append(text)
        if effect == "scale" and isinstance(arg, int):
            exp += arg
        elif effect == "offset" and isinstance(arg, int):
            offset = arg + entry.unit_exp
        elif effect == "suffix":
            unit += str(arg)
        elif effect in ("unit", "count", "date"):
            unit = str(arg) if effect == "unit" else ""
            exp, kind = 0, ("date" if effect == "date" else "num")
    return VifMeaning(entry.quantity, unit, exp, kind, offset, tuple(mods))


# ----------------------------------------------------------------------------- data


def data_field_end(header: RecordHeader, data: bytes, offset: int) -> int:
    """Return the index just past the data field that starts at ``data[offset]``.

    Raises
    ------
    RecordError
        The data (or the LVAR byte, or the LVAR's data) runs past the end, or the LVAR
        value is reserved.
    """
    if header.special == "manufacturer_data":
        return len(data)
    length = vt.DATA_FIELD_LENGTHS[header.coding] if not header.special else 0
    if length is None:  # LVAR: the first data byte gives the length
        if offset >= len(data):
            raise RecordError("LVAR byte missing", offset=offset)
        length = 1 + _lvar_size(data[offset], offset)
    if offset + length > len(data):
        raise RecordError(
            f"data field needs {length} bytes, only {len(data) - offset} left",
            offset=offset,
        )
    return offset + length


def _lvar_size(lvar: int, offset: int) -> int:
    # EN 13757-3 table 5 (C0-CF / D0-DF as wmbus-reference.md 4.3 allows).
    if lvar <= vt.LVAR_TEXT_MAX:
        return lvar
    if lvar <= 0xDF:
        return lvar & 0x0F
    if lvar <= 0xEF:
        return lvar - 0xE0
    if lvar <= 0xF4:
        return 4 * (lvar - 0xEC)
    if lvar in (0xF5, 0xF6):
        return 48 if lvar == 0xF5 else 64
    raise RecordError(f"reserved LVAR 0x{lvar:02X}", offset=offset)


def _decode_value(header: RecordHeader, raw: bytes) -> int | float | str | bytes | None:
    coding, signed = header.coding, header.kind != "uint"
    if header.special == "manufacturer_data":
        return raw
    if coding in (0x0, 0x8) or header.special:
        return None
    if header.kind == "date" and coding in INT_CODINGS and len(raw) in DATE_LENGTHS:
        return decode_date(raw)
    if coding == 0xD:
        return _decode_lvar(header, raw)
    number: int | float | None
    if coding == 0x5:
        number = struct.unpack("<f", raw)[0]
    elif coding in BCD_CODINGS:
        number = _decode_bcd(raw, signed)
    else:
        number = int.from_bytes(raw, "little", signed=signed)
    return scale_value(number, header.exponent, header.offset_exp)


def _decode_bcd(raw: bytes, signed: bool) -> int | None:
    digits = raw[::-1].hex()  # most significant digit first
    negative = signed and digits[:1] == "f"
    if negative:
        digits = digits[1:]
    if not digits.isdigit():  # a hex nibble A-F: invalid (EN 13757-3 annex B)
        return None
    return -int(digits) if negative else int(digits)


def _decode_lvar(header: RecordHeader, raw: bytes) -> int | float | str | bytes | None:
    lvar, body = raw[0], bytes(raw[1:])
    if lvar <= vt.LVAR_TEXT_MAX:
        if COMPACT_PROFILES.intersection(header.modifiers):
            return body  # a compact profile is binary despite its text-length LVAR
        return body[::-1].decode("latin-1")
    if lvar <= 0xDF:
        number = _decode_bcd(body, signed=False) if body else 0
        if number is not None and lvar >= 0xD0:
            number = -number
        return scale_value(number, header.exponent, header.offset_exp)
    return body


def scale_value(
    number: int | float | None, exponent: int, offset_exp: int | None
) -> int | float | None:
    """raw * 10**exponent (+ 10**offset_exp), exact in decimal, rounded once."""
    if number is None or (exponent == 0 and offset_exp is None):
        return number
    if isinstance(number, float) and not math.isfinite(number):
        return number
    with localcontext() as ctx:
        ctx.prec = 200  # enough for every 64-bit integer and float32 exactly
        exact = Decimal(number).scaleb(exponent)
        if offset_exp is not None:
            exact += Decimal(1).scaleb(offset_exp)
    if isinstance(number, int) and exponent >= 0 and (offset_exp or 0) >= 0:
        return int(exact)
    return float(exact)


# ---------------------------------------------------------------------------- parse


def _iter_records(data: bytes) -> Iterator[Record]:
    data = bytes(data)
    pos = 0
    while pos < len(data):
        if data[pos] == IDLE_FILLER:
            pos += 1
            continue
        header, start = parse_record_header(data, pos)
        end = data_field_end(header, data, start)
        raw = data[start:end]
        value = _decode_value(header, raw)
        yield Record(
            header.quantity,
            value,
            header.unit,
            header.storage,
            header.tariff,
            header.subunit,
            header.function,
            header.modifiers,
            header.dif_vif,
            raw,
        )
        pos = end


def parse_records(data: bytes) -> list[Record]:
    """Parse all data records of an application layer payload.

    Parameters
    ----------
    data : bytes
        The APL after the TPL header (a leading ``2F 2F`` and trailing fillers are
        skipped like any idle filler).

    Returns
    -------
    list of Record
        In wire order; manufacturer data (DIF 0x0F / 0x1F) is the last record.

    Raises
    ------
    RecordError
        The bytes are malformed; ``offset`` says where.

    Examples
    --------
    >>> parse_records(bytes.fromhex("0C1348550000"))[0].value
    5.548
    """
    return list(_iter_records(data))


def parse_records_lenient(data: bytes) -> tuple[list[Record], RecordError | None]:
    """Parse records up to the first malformed one.

    Returns
    -------
    records : list of Record
        Every record before the error (all of them when there is none).
    error : RecordError or None
        What stopped the parse.  Real telegrams sometimes end in a truncated record
        after the fillers; a caller can keep the good records and report the error.
    """
    records: list[Record] = []
    try:
        for record in _iter_records(data):
            records.append(record)
    except RecordError as exc:
        return records, exc
    return records, None


def describe_record(record: Record) -> str:
    """Return the one-line human label of a record; the only labelling rule we have.

    The form is ``quantity value unit (details)``, e.g.
    ``"volume 12.345 m3 (storage 1, tariff 2, maximum)"``.  The details, each only
    when it says something, are in this order: storage, tariff, subunit (when not
    0), the function (when not ``"instantaneous"``), then the VIFE modifiers.  The
    value is ``str(value)`` for numbers, dates and text, lower-case hex for bytes,
    ``"invalid"`` when data was sent but holds no value and ``"no data"`` when none
    was sent.  The CLI's text output prints exactly this (from the Records, not the
    JSON dicts), so library and CLI users see one form.

    Examples
    --------
    >>> describe_record(parse_records(bytes.fromhex("4C1348550000"))[0])
    'volume 5.548 m3 (storage 1)'
    """
    label = f"{record.quantity} {_value_text(record)}"
    if record.unit:
        label += f" {record.unit}"
    details = [
        f"{name} {getattr(record, name)}"
        for name in ("storage", "tariff", "subunit")
        if getattr(record, name)
    ]
    if record.function != "instantaneous":
        details.append(record.function)
    details.extend(record.modifiers)
    return label + (f" ({', '.join(details)})" if details else "")


def _value_text(record: Record) -> str:
    value = record.value
    if value is None:
        # Only the data bytes tell a broken value (bad BCD, no-date code) from a
        # record that carries none (DIF coding 0 or 8), so the label needs the Record.
        return "invalid" if record.is_invalid else "no data"
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    return str(value)  # str(float) is the shortest repr that round-trips
