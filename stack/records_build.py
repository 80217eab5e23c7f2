"""Building half of ``stack.records``: Record -> DIF/DIFE/VIF/VIFE + data bytes.

The encoder is the parser run backwards: it lists every VIB that decodes to the
record's quantity, unit and modifiers (``interpret_vifes`` is shared with the
parser, so both sides agree by construction), then picks the VIF exponent and data
coding that parse back to exactly ``record.value``.  See ``stack.records`` for the
value and unit rules.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterable
from decimal import Decimal, localcontext
from typing import NamedTuple

from stack import vif_tables as vt
from stack.errors import RecordError
from stack.records_dates import encode_date
from stack.records_parse import (
    BCD_CODINGS,
    COMPACT_PROFILES,
    GLOBAL_READOUT,
    INT_CODINGS,
    MAX_EXTENSIONS,
    Record,
    VifMeaning,
    interpret_vifes,
    parse_records,
    scale_value,
)

__all__ = ["build_record", "build_records", "make_record"]


class _Start(NamedTuple):
    # One way to begin a VIB: first byte (extension bit added later), an optional
    # table code carried in the first VIFE, and the entry it means.
    first: int
    ext_code: int | None
    entry: vt.VifEntry


def _index_quantities() -> dict[str, list[_Start]]:
    index: dict[str, list[_Start]] = {}
    for code, entry in vt.PRIMARY_VIFS.items():
        index.setdefault(entry.quantity, []).append(_Start(code, None, entry))
    for lead in (0xFB, 0xFD):
        for code, entry in vt.EXTENSION_TABLES[lead].items():
            index.setdefault(entry.quantity, []).append(_Start(lead, code, entry))
    index["any_vif"] = [_Start(0x7E, None, vt.VifEntry("any_vif", "", 0))]
    return index


_QUANTITY_STARTS = _index_quantities()
_MODIFIER_CODES = {text: code for code, (text, _, _) in vt.COMBINABLE_VIFES.items()}
_EXT_MODIFIER_CODES = {text: code for code, text in vt.COMBINABLE_EXT_VIFES.items()}
_CODING_BY_NAME = {name: code for code, name in vt.CODING_NAMES.items()}
_UNKNOWN_RE = re.compile(r"unknown_vif_(?:(fb|fd|ef)([0-7][0-9a-f])|([0-7][0-9a-f]))")
_HEX_SUFFIX_RE = re.compile(r"(?:manufacturer|reserved extension) vife ([0-7][0-9a-f])")


def _starts_for(quantity: str) -> list[_Start]:
    if quantity in _QUANTITY_STARTS:
        return _QUANTITY_STARTS[quantity]
    match = _UNKNOWN_RE.fullmatch(quantity)
    if match:
        lead, ext, primary = match.groups()
        entry = vt.VifEntry(quantity, "", 0)
        if primary is not None:
            return [_Start(int(primary, 16), None, entry)]
        return [_Start(int(lead, 16), int(ext, 16), entry)]
    raise RecordError(f"unknown quantity {quantity!r}")


def _modifier_codes(modifiers: Iterable[str], vendor: bool) -> list[int]:
    """VIFE codes (extension bits not yet set) for a list of modifier texts."""
    codes: list[int] = []
    for text in modifiers:
        hex_match = _HEX_SUFFIX_RE.fullmatch(text)
        if vendor or text.startswith("manufacturer vife "):
            if not (vendor and hex_match and text.startswith("manufacturer")):
                raise RecordError(f"modifier {text!r} is not allowed here")
            codes.append(int(hex_match.group(1), 16))
        elif text in _MODIFIER_CODES:
            codes.append(_MODIFIER_CODES[text])
            vendor = _MODIFIER_CODES[text] == 0x7F
        elif text in _EXT_MODIFIER_CODES:
            codes += [0x7C, _EXT_MODIFIER_CODES[text]]
        elif hex_match:
            codes += [0x7C, int(hex_match.group(1), 16)]
        else:
            raise RecordError(f"unknown modifier {text!r}")
    return codes


def _chain(codes: list[int]) -> bytes:
    # Every byte of an extension chain but the last carries bit 7.
    if len(codes) > MAX_EXTENSIONS:
        raise RecordError(f"{len(codes)} DIFEs/VIFEs needed, at most 10 allowed")
    return bytes(c | 0x80 if i < len(codes) - 1 else c for i, c in enumerate(codes))


class _Option(NamedTuple):
    # A concrete VIB for the record and the meaning it decodes to.
    vib: bytes
    meaning: VifMeaning


def _vib_options(record: Record) -> list[_Option]:
    """Every VIB that encodes the record's quantity, unit and modifiers."""
    quantity = record.quantity
    if quantity == "manufacturer_specific":
        if record.unit:
            raise RecordError("a manufacturer-specific VIF has no unit")
        codes = _modifier_codes(record.modifiers, vendor=True)
        meaning = VifMeaning(quantity, "", 0, "uint", None, tuple(record.modifiers))
        return [_Option(bytes([0xFF if codes else 0x7F]) + _chain(codes), meaning)]
    codes = _modifier_codes(record.modifiers, vendor=False)
    if quantity == "plain_text_vif":
        return [_plain_text_option(record, codes)]
    options = []
    for start in _starts_for(quantity):
        chain = ([start.ext_code] if start.ext_code is not None else []) + codes
        meaning = interpret_vifes(start.entry, codes)
        if meaning.unit == record.unit and meaning.modifiers == record.modifiers:
            first = start.first | (0x80 if chain else 0)
            options.append(_Option(bytes([first]) + _chain(chain), meaning))
    if not options:
        raise RecordError(
            f"no VIF encodes {quantity} in {record.unit!r} "
            f"with modifiers {record.modifiers}"
        )
    return options


def _plain_text_option(record: Record, codes: list[int]) -> _Option:
    suffix = interpret_vifes(vt.VifEntry("", "", 0), codes).unit
    text = record.unit[: len(record.unit) - len(suffix)]
    meaning = interpret_vifes(vt.VifEntry("plain_text_vif", text, 0), codes)
    if meaning.unit != record.unit or meaning.modifiers != record.modifiers:
        raise RecordError(f"plain-text unit {record.unit!r} does not fit the modifiers")
    try:
        body = text.encode("latin-1")[::-1]
    except UnicodeEncodeError as exc:
        raise RecordError(f"plain-text unit {text!r} is not ISO 8859-1") from exc
    if len(body) > 0xFF:
        raise RecordError("plain-text unit longer than 255 characters")
    first = 0xFC if codes else 0x7C
    return _Option(bytes([first, len(body)]) + body + _chain(codes), meaning)


def _build_dib(coding: int, record: Record) -> bytes:
    for name in ("storage", "tariff", "subunit"):
        number = getattr(record, name)
        if not isinstance(number, int) or number < 0:
            raise RecordError(f"{name} must be a non-negative int, not {number!r}")
    if record.function not in vt.FUNCTIONS:
        raise RecordError(f"unknown function {record.function!r}")
    difes: list[int] = []
    storage, tariff, subunit = record.storage >> 1, record.tariff, record.subunit
    while storage or tariff or subunit:
        difes.append((storage & 0xF) | (tariff & 3) << 4 | (subunit & 1) << 6)
        storage, tariff, subunit = storage >> 4, tariff >> 2, subunit >> 1
    dif = (
        coding
        | vt.FUNCTIONS.index(record.function) << 4
        | (record.storage & 1) << 6
        | (0x80 if difes else 0)
    )
    return bytes([dif]) + _chain(difes)


def _int_bytes(raw: int, kind: str, coding: int | None) -> tuple[int, bytes] | None:
    """Encode an integer in the requested (or the default) integer/BCD coding."""
    signed = kind != "uint"
    if coding is None:
        widths: tuple[int, ...] = (0x4, 0x6, 0x7)
        if kind == "uint":
            widths = (0x1, 0x2, 0x3, 0x4, 0x6, 0x7)
        elif kind == "date":  # 2, 3, 4 and 6 bytes would decode as date types
            widths = (0x1, 0x7)
        return next(filter(None, (_int_bytes(raw, kind, c) for c in widths)), None)
    if coding in BCD_CODINGS:
        body = _bcd_bytes(raw, vt.DATA_FIELD_LENGTHS[coding] or 0, signed)
        return (coding, body) if body is not None else None
    if coding == 0xD:
        return _lvar_bcd(raw)
    if coding not in INT_CODINGS:
        return None
    try:
        return coding, raw.to_bytes(
            vt.DATA_FIELD_LENGTHS[coding] or 0, "little", signed=signed
        )
    except OverflowError:
        return None


def _bcd_bytes(raw: int, size: int, signed: bool) -> bytes | None:
    digits = 2 * size
    if raw < 0:  # sign: high nibble F of the most significant byte
        if not signed or -raw >= 10 ** (digits - 1):
            return None
        return bytes.fromhex("f" + f"{-raw:0{digits - 1}d}")[::-1]
    if raw >= 10**digits:
        return None
    return bytes.fromhex(f"{raw:0{digits}d}")[::-1]


def _lvar_bcd(raw: int) -> tuple[int, bytes] | None:
    size = (len(str(abs(raw))) + 1) // 2
    if size > 9:  # LVAR C0-C9 / D0-D9: at most 18 digits
        return None
    body = _bcd_bytes(abs(raw), size, signed=False) or b""
    return 0xD, bytes([(0xD0 if raw < 0 else 0xC0) + size]) + body


def _encode_number(
    value: int | float, options: list[_Option], coding: int | None
) -> tuple[int, bytes, _Option]:
    """Choose VIF exponent and coding that give back exactly ``value``."""
    exact = (
        Decimal(value)
        if isinstance(value, int)
        else (Decimal(repr(value)) if math.isfinite(value) else None)
    )
    if exact is not None and coding != 0x5:
        # Largest exponent first (smallest raw); zero prefers the exponent nearest 0.
        key = (
            (lambda o: abs(o.meaning.exponent))
            if exact == 0
            else (lambda o: -o.meaning.exponent)
        )
        for option in sorted(options, key=key):
            got = _integer_for(exact, value, option, coding)
            if got is not None:
                return got[0], got[1], option
    # float32 only on request, or as the automatic fallback for measured numbers
    # (an error-flag bit field sent as a float would be nonsense).
    if coding == 0x5 or (coding is None and options[0].meaning.kind != "uint"):
        for option in sorted(options, key=lambda o: abs(o.meaning.exponent)):
            body = _real_for(value, option.meaning)
            if body is not None:
                return 0x5, body, option
    raise RecordError(f"{value!r} cannot be encoded exactly with these VIFs/codings")


def _integer_for(
    exact: Decimal, value: int | float, option: _Option, coding: int | None
) -> tuple[int, bytes] | None:
    meaning = option.meaning
    with localcontext() as ctx:
        ctx.prec = 200
        if meaning.offset_exp is not None:
            exact -= Decimal(1).scaleb(meaning.offset_exp)
        raw = exact.scaleb(-meaning.exponent)
    if raw != raw.to_integral_value():
        return None
    got = _int_bytes(int(raw), meaning.kind, coding)
    back = scale_value(int(raw), meaning.exponent, meaning.offset_exp)
    if got is None or back != value:
        return None
    return got


def _real_for(value: int | float, meaning: VifMeaning) -> bytes | None:
    try:
        scaled = (
            float(Decimal(value).scaleb(-meaning.exponent))
            if math.isfinite(value)
            else float(value)
        )
        body = struct.pack("<f", scaled)
    except (OverflowError, ValueError):
        return None
    number = struct.unpack("<f", body)[0]
    back = scale_value(number, meaning.exponent, meaning.offset_exp)
    same = back == value or (
        isinstance(back, float) and math.isnan(back) and math.isnan(value)
    )
    return body if same else None


def _encode_other(
    value: str | bytes, option: _Option, coding: int | None
) -> tuple[int, bytes]:
    if isinstance(value, str) and option.meaning.kind == "date":
        body = encode_date(value)
        if coding not in (None, {2: 0x2, 3: 0x3, 4: 0x4, 6: 0x6}[len(body)]):
            raise RecordError(f"date {value!r} does not fit coding {coding}")
        return {2: 0x2, 3: 0x3, 4: 0x4, 6: 0x6}[len(body)], body
    if coding not in (None, 0xD):
        raise RecordError("text and bytes values need the LVAR coding")
    if isinstance(value, str):
        try:
            body = value.encode("latin-1")[::-1]
        except UnicodeEncodeError as exc:
            raise RecordError(f"text {value!r} is not ISO 8859-1") from exc
        lvar = len(body)
    elif COMPACT_PROFILES.intersection(option.meaning.modifiers):
        body, lvar = value, len(value)
    else:
        body = value
        sizes = (
            {n: 0xE0 + n for n in range(16)}
            | {4 * (n - 0xEC): n for n in range(0xF0, 0xF5)}
            | {48: 0xF5, 64: 0xF6}
        )
        lvar = sizes.get(len(body), 0x100)
    if lvar > 0xFF or (isinstance(value, str) and lvar > vt.LVAR_TEXT_MAX):
        raise RecordError(f"{len(body)} bytes do not fit an LVAR")
    return 0xD, bytes([lvar]) + body


def _encode_fields(record: Record, coding: int | None) -> bytes:
    quantity, value = record.quantity, record.value
    if quantity == "manufacturer_data":
        if not isinstance(value, bytes):
            raise RecordError("manufacturer_data needs a bytes value")
        more = "more records follow" in record.modifiers
        return bytes([0x1F if more else 0x0F]) + value
    if quantity == "global_readout":
        return bytes([GLOBAL_READOUT])
    options = _vib_options(record)
    if value is None:
        if coding not in (None, 0x0, 0x8):
            raise RecordError("a None value has coding none or selection")
        option = min(options, key=lambda o: abs(o.meaning.exponent))
        code, body = coding or 0x0, b""
    elif isinstance(value, bool) or not isinstance(value, (int, float, str, bytes)):
        raise RecordError(f"cannot encode a value of type {type(value).__name__}")
    elif isinstance(value, (str, bytes)):
        option = options[0]
        code, body = _encode_other(value, option, coding)
    else:
        code, body, option = _encode_number(value, options, coding)
    return _build_dib(code, record) + option.vib + body


def build_record(record: Record) -> bytes:
    """Encode one record as DIF...VIFE + data.

    If ``record.dif_vif`` is set, ``dif_vif + data`` is returned verbatim (a parsed
    record re-encodes to its original bytes; clear both fields to re-encode from the
    other fields).  Otherwise the header and data are chosen from quantity, unit,
    modifiers, storage, tariff, subunit and function so that parsing gives ``value``
    back exactly: the largest VIF exponent that makes the value an integer, as a 32-bit
    (else 48/64-bit) integer; IEEE float32 only when no integer works; dates as types
    G/F/I/J; text and bytes as LVAR.

    Raises
    ------
    RecordError
        Unknown quantity or modifier, no VIF with the record's unit, a value that
        cannot be encoded exactly, storage/tariff/subunit needing more than 10 DIFEs.
    """
    if record.dif_vif:
        return bytes(record.dif_vif) + bytes(record.data)
    return _encode_fields(record, None)


def build_records(records: Iterable[Record]) -> bytes:
    """Encode records back to back (no fillers); manufacturer data must come last.

    Raises
    ------
    RecordError
        As :func:`build_record`, or a manufacturer-data record that is not the last.
    """
    parts = [build_record(r) for r in records]
    for index, part in enumerate(parts[:-1]):
        if part[:1] in (b"\x0f", b"\x1f"):
            raise RecordError(
                f"manufacturer data (record {index}) must be the last record"
            )
    return b"".join(parts)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return (
        type(a) is type(b)
        and a == b
        or (
            isinstance(a, (int, float))
            and isinstance(b, (int, float))
            and not isinstance(a, bool)
            and not isinstance(b, bool)
            and a == b
        )
    )


def _default_unit(quantity: str, modifiers: tuple[str, ...]) -> str:
    if quantity in ("manufacturer_data", "global_readout", "manufacturer_specific"):
        return ""
    if quantity == "plain_text_vif":
        raise RecordError("plain_text_vif needs its unit text")
    codes = _modifier_codes(modifiers, vendor=False)
    return interpret_vifes(_starts_for(quantity)[0].entry, codes).unit


def make_record(
    quantity: str,
    value: int | float | str | bytes | None,
    *,
    unit: str | None = None,
    storage: int = 0,
    tariff: int = 0,
    subunit: int = 0,
    function: str = "instantaneous",
    coding: str | int | None = None,
    modifiers: Iterable[str] = (),
) -> Record:
    """Build a record from its meaning, exactly as parse_records returns it.

    Parameters
    ----------
    quantity : str
        A quantity of the VIF tables (``"volume"``, ``"date"``, ``"date_time"``...).
    value : int, float, str, bytes or None
        In ``unit``; dates and times as ISO strings.
    unit : str, optional
        Selects the VIF group (``"Wh"`` or ``"J"`` for energy); default: the first.
    storage, tariff, subunit : int
        DIF/DIFE fields.
    function : str
        ``"instantaneous"``, ``"maximum"``, ``"minimum"`` or ``"error"``.
    coding : str or int, optional
        Data field coding by name (``"int16"``, ``"bcd8"``, ``"real32"``, ``"lvar"``,
        ``"selection"`` ...) or DIF nibble; default: chosen automatically.
    modifiers : iterable of str
        Combinable VIFE meanings, e.g. ``("backward flow",)``.

    Returns
    -------
    Record
        With ``dif_vif`` and ``data`` set; ``parse_records(build_records([r])) == [r]``.

    Raises
    ------
    RecordError
        The value cannot be represented exactly, or any reason of :func:`build_record`.
    """
    modifiers = tuple(modifiers)
    if isinstance(coding, str):
        if coding not in _CODING_BY_NAME or coding == "special":
            raise RecordError(f"unknown coding {coding!r}")
        coding = _CODING_BY_NAME[coding]
    elif coding is not None and coding not in range(0xF):
        raise RecordError(f"coding must be a DIF nibble 0x0..0xE, not {coding!r}")
    unit = _default_unit(quantity, modifiers) if unit is None else unit
    draft = Record(quantity, value, unit, storage, tariff, subunit, function, modifiers)
    parsed = parse_records(_encode_fields(draft, coding))
    got = parsed[0] if len(parsed) == 1 else None
    fields = (
        "quantity",
        "value",
        "unit",
        "storage",
        "tariff",
        "subunit",
        "function",
        "modifiers",
    )
    if got is None or not all(
        _same(getattr(draft, f), getattr(got, f)) for f in fields
    ):
        raise RecordError(
            f"{quantity} {value!r} cannot be represented exactly (decodes as {got})"
        )
    return got
