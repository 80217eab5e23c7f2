"""Application layer: EN 13757-3 data records (DIF, DIFE, VIF, VIFE, data).

Wire format (EN 13757-3 clause 6; wmbus-reference.md section 4)::

    record  = DIF [DIFE x0..10] VIF [plain text] [VIFE x0..10] data
    DIF     = E  S  F F  C C C C      E extension, S storage LSB, FF function,
                                      CCCC data field coding
    DIFE    = E  U  T T  S S S S      U subunit bit, TT tariff bits, SSSS storage bits
    VIF     = E  V V V V V V V        primary code; 0xFB / 0xFD: the first VIFE is a
                                      code of the first / second extension table;
                                      0x7C / 0xFC: length byte + ASCII unit (reversed)
                                      follow the VIF; 0x7F / 0xFF: manufacturer VIF
    VIFE    = E  V V V V V V V        combinable codes (per hour, backward flow, 10^n)

    storage = S(DIF) | S(DIFE1) << 1 | S(DIFE2) << 5 ...   (up to 41 bits)
    tariff  = T(DIFE1) | T(DIFE2) << 2 ...   subunit = U(DIFE1) | U(DIFE2) << 1 ...

Special DIFs: 0x2F idle filler (skipped anywhere between records), 0x0F manufacturer
data to the end (one record ``manufacturer_data`` with ``value`` = the bytes), 0x1F the
same plus "more records follow" in the next telegram (modifier ``"more records
follow"``), 0x7F global readout request (record ``global_readout``, no VIF, no data).

Data field codings (DIF bits 0-3): 0 no data, 1/2/3/4/6/7 little-endian integers of
8/16/24/32/48/64 bit, 5 IEEE-754 float32, 8 selection for readout (no data), 9/A/B/C/E
BCD of 2/4/6/8/12 digits (least significant byte first), D variable length (LVAR byte
first: 0x00-0xBF that many ISO 8859-1 characters sent last character first; 0xC0-0xCF
positive and 0xD0-0xDF negative BCD of LVAR & 0x0F bytes; 0xE0-0xEF binary of
LVAR - 0xE0 bytes; 0xF0-0xF4 binary of 4 * (LVAR - 0xEC) bytes, 0xF5 48 bytes, 0xF6 64
bytes; 0xF7-0xFF reserved -> RecordError).

Values
------
- Measured numbers (kind ``num``): integers are signed two's complement; BCD with a
  high nibble F in its most significant byte is negative.  ``value = raw * 10**exp``
  computed in exact decimal, then rounded once to float: ``0C 13 48 55 00 00`` gives
  exactly ``5.548``.  Non-negative exponents keep an ``int``.  Multiplicative
  correction VIFEs (0x70-0x77, 0x7D) add to the exponent and the additive one
  (0x78-0x7B) adds ``10**(nn-3)`` of the VIF's unit; both also stay in ``modifiers``.
- Identifiers and bit fields (kind ``uint``: error flags, fabrication number,
  versions, manufacturer-specific VIF ...): unsigned integers, no exponent.
- Dates (VIF 0x6C, 0x6D, FD 0x30, FD 0x70 and date-valued VIFEs): type G (2 bytes)
  ``"2024-09-30"``, type F (4 bytes) ``"2024-09-30T21:18"``, type I (6 bytes)
  ``"2024-09-30T21:18:05"``, type J (3 bytes, time of day) ``"21:18:05"``; the
  quantity follows the VIF (0x6C ``date``, 0x6D ``date_time`` whatever the type).
  Years 0-80 are 2000-2080 and 81-99 are 1981-1999 unless type F's hundred-year
  bits are set (year = 1900 + 100 * hy + yy).
- Text (LVAR text) as ``str``; binary LVAR and compact-profile LVAR as ``bytes``
  (``int.from_bytes(value, "little")`` for a number); BCD LVAR as ``int``.
- ``None``: no data (coding 0 or 8), or an **invalid value**: BCD with a hex nibble
  A-F (other than a leading sign F), a date with its invalid bit set or with fields
  out of range (0xFFFF "no date").  Invalid values keep their bytes in ``data``;
  ``Record.is_invalid`` tells the two cases apart.

Units (one unit per VIF group; extension-table units converted by the exponent)::

    energy             Wh (MWh -> Wh), J (GJ -> J), cal (MCal -> cal)
    volume             m3, ft3, US gal          mass        kg (t -> kg)
    power              W (MW -> W), J/h (GJ/h -> J/h)
    volume_flow        m3/h, m3/min, m3/s       mass_flow   kg/h
    flow/return/external_temperature  °C or °F  temperature_difference  K or °F
    pressure bar   relative_humidity %   voltage V   current A   frequency Hz
    on/operating_time, averaging/actuality_duration, storage_interval,
    duration_since_readout, tariff_* ... : s, min, h, d (month, year where coded)
    hca_units, error_flags, fabrication_number, counters, versions ...: ""
    reactive_energy varh, reactive_power var, apparent_power VA, rf_level dBm
    credit / debit "currency";  "per hour"-type VIFEs append "/h" etc. to the unit

Unknown primary or extension codes are kept as ``unknown_vif_XX`` /
``unknown_vif_fdXX`` with the raw value; the plain-text VIF gives quantity
``plain_text_vif`` with the text as unit.  Anything malformed (truncated data, a DIFE
or VIFE chain running off the end or longer than 10, LVAR beyond the end, a reserved
DIF or LVAR) raises :class:`stack.errors.RecordError` with the byte offset.

Code layout: ``records_parse`` (reading), ``records_build`` (writing),
``records_dates`` (date types), ``compact`` (compact frames), ``vif_tables`` (the
code tables as data).  Import the public names from here.

References: EN 13757-3:2013/2018 clause 6 and annex A; wmbus-reference.md 4, 3.8.
"""

from __future__ import annotations

from stack.compact import (
    build_compact_apl,
    compact_data,
    expand_compact,
    format_signature,
    parse_compact_apl,
    record_layout,
)
from stack.records_build import build_record, build_records, make_record
from stack.records_dates import decode_date, encode_date
from stack.records_parse import (
    Record,
    RecordHeader,
    data_field_end,
    describe_record,
    parse_record_header,
    parse_records,
    parse_records_lenient,
)

__all__ = [
    "Record",
    "RecordHeader",
    "parse_records",
    "parse_records_lenient",
    "parse_record_header",
    "data_field_end",
    "build_record",
    "build_records",
    "make_record",
    "describe_record",
    "decode_date",
    "encode_date",
    "format_signature",
    "record_layout",
    "expand_compact",
    "compact_data",
    "build_compact_apl",
    "parse_compact_apl",
]
