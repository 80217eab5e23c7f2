"""EN 13757-3 code tables for data records, as plain data.

Every table maps a code (the byte with its extension bit 7 masked off) to what it
means.  ``stack.records`` interprets them; nothing here has behaviour beyond
expanding the compact range rows into per-code dictionaries at import time.

A VIF table row is ``(first, last, quantity, unit, exponent_of_first, kind)``: codes
``first..last`` share the quantity and unit, and the decimal exponent grows by one per
code (``value = raw * 10**exponent``).  Units are normalised per VIF group so that a
quantity keeps one unit across a group: the extension tables' MWh, GJ, t, MW, GJ/h,
kVARh ... become Wh, J, kg, W, J/h, varh with the exponent shifted; ``unit_exp``
remembers that shift (the additive-offset VIFE is defined in the VIF's own unit).

``kind`` says how the data field is read:

- ``"num"``  a measured number: integers are signed (EN 13757-3 type B), BCD may be
  negative (high nibble F), the exponent and correction VIFEs apply.
- ``"uint"`` an identifier, bit field or counter of states: integers are unsigned and
  no exponent is applied (error flags, fabrication number, versions ...).
- ``"date"`` a date / time point: 2, 3, 4 and 6 byte integer codings are the date types
  G, J, F and I (EN 13757-3 annex A); other codings give the raw number.

Sources: EN 13757-3:2013/2018 tables 10 (primary VIF), 12 (0xFD extension),
14 (0xFB extension), 15/16 (combinable VIFE and its extension), table 4 (data field),
table 5 (LVAR); cross-read against wmbusmeters ``dvparser.h`` and m-bus-parser
``value_information.rs`` (facts only).  Rows marked *(check)* come from one secondary
source or an older edition only.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "VifEntry",
    "DATA_FIELD_LENGTHS",
    "CODING_NAMES",
    "FUNCTIONS",
    "PRIMARY_VIFS",
    "FB_VIFS",
    "FD_VIFS",
    "EF_VIFS",
    "EXTENSION_TABLES",
    "COMBINABLE_VIFES",
    "COMBINABLE_EXT_VIFES",
    "DURATION_UNITS",
    "LVAR_TEXT_MAX",
]


class VifEntry(NamedTuple):
    """Meaning of one VIF code.

    Attributes
    ----------
    quantity : str
        snake_case quantity name.
    unit : str
        Unit of the decoded value (after the exponent).
    exponent : int
        Decimal exponent: value = raw * 10**exponent.
    kind : str
        ``"num"``, ``"uint"`` or ``"date"`` (see module docstring).
    unit_exp : int
        Decimal exponent of the VIF's own unit in ``unit`` (MWh in Wh: 6).
    """

    quantity: str
    unit: str
    exponent: int
    kind: str = "num"
    unit_exp: int = 0


# fmt: off
# (the two tables below keep the standard's row layout)
# EN 13757-3 table 4: data field (DIF bits 0-3) -> data length in bytes.
# None: variable length (LVAR, 0xD) or special function (0xF).
DATA_FIELD_LENGTHS: dict[int, int | None] = {
    0x0: 0, 0x1: 1, 0x2: 2, 0x3: 3, 0x4: 4, 0x5: 4, 0x6: 6, 0x7: 8,
    0x8: 0, 0x9: 1, 0xA: 2, 0xB: 3, 0xC: 4, 0xD: None, 0xE: 6, 0xF: None,
}

# Our names for the data field codings (DIF bits 0-3), used by make_record(coding=...).
CODING_NAMES: dict[int, str] = {
    0x0: "none", 0x1: "int8", 0x2: "int16", 0x3: "int24", 0x4: "int32",
    0x5: "real32", 0x6: "int48", 0x7: "int64", 0x8: "selection", 0x9: "bcd2",
    0xA: "bcd4", 0xB: "bcd6", 0xC: "bcd8", 0xD: "lvar", 0xE: "bcd12",
    0xF: "special",
}
# fmt: on

# EN 13757-3 table 3: DIF bits 4-5, the function field.
FUNCTIONS: tuple[str, ...] = ("instantaneous", "maximum", "minimum", "error")

# nn = 0..3 of the time-unit VIF codes: seconds, minutes, hours, days.
DURATION_UNITS: tuple[str, ...] = ("s", "min", "h", "d")
# pp = 0..3 of the long-duration FD codes: hours, days, months, years.
_LONG_UNITS: tuple[str, ...] = ("h", "d", "month", "year")

# EN 13757-3 table 5: LVAR 0x00..0xBF is a text of that many characters.
LVAR_TEXT_MAX = 0xBF

_Row = tuple[int, int, str, str, int, str]


def _expand(
    rows: list[_Row],
    unit_exps: dict[int, int] | None = None,
) -> dict[int, VifEntry]:
    # Turn range rows into one entry per code; the exponent steps by one per code.
    table: dict[int, VifEntry] = {}
    for first, last, quantity, unit, exp0, kind in rows:
        for code in range(first, last + 1):
            shift = (unit_exps or {}).get(first, 0)
            table[code] = VifEntry(quantity, unit, exp0 + code - first, kind, shift)
    return table


def _durations(first: int, quantity: str, units: tuple[str, ...]) -> list[_Row]:
    # One row per code: the code selects the time unit, the exponent stays 0.
    return [
        (first + n, first + n, quantity, unit, 0, "num") for n, unit in enumerate(units)
    ]


# EN 13757-3 table 10: primary VIF codes (bit 7 = extension, masked off).
_PRIMARY_ROWS: list[_Row] = [
    (0x00, 0x07, "energy", "Wh", -3, "num"),  # E000 0nnn  10^(nnn-3) Wh
    (0x08, 0x0F, "energy", "J", 0, "num"),  # E000 1nnn  10^(nnn) J
    (0x10, 0x17, "volume", "m3", -6, "num"),  # E001 0nnn  10^(nnn-6) m3
    (0x18, 0x1F, "mass", "kg", -3, "num"),  # E001 1nnn  10^(nnn-3) kg
    *_durations(0x20, "on_time", DURATION_UNITS),  # E010 00nn
    *_durations(0x24, "operating_time", DURATION_UNITS),  # E010 01nn
    (0x28, 0x2F, "power", "W", -3, "num"),  # E010 1nnn  10^(nnn-3) W
    (0x30, 0x37, "power", "J/h", 0, "num"),  # E011 0nnn  10^(nnn) J/h
    (0x38, 0x3F, "volume_flow", "m3/h", -6, "num"),  # E011 1nnn
    (0x40, 0x47, "volume_flow", "m3/min", -7, "num"),  # E100 0nnn
    (0x48, 0x4F, "volume_flow", "m3/s", -9, "num"),  # E100 1nnn
    (0x50, 0x57, "mass_flow", "kg/h", -3, "num"),  # E101 0nnn
    (0x58, 0x5B, "flow_temperature", "°C", -3, "num"),  # E101 10nn
    (0x5C, 0x5F, "return_temperature", "°C", -3, "num"),  # E101 11nn
    (0x60, 0x63, "temperature_difference", "K", -3, "num"),  # E110 00nn
    (0x64, 0x67, "external_temperature", "°C", -3, "num"),  # E110 01nn
    (0x68, 0x6B, "pressure", "bar", -3, "num"),  # E110 10nn
    (0x6C, 0x6C, "date", "", 0, "date"),  # E110 1100  type G
    (0x6D, 0x6D, "date_time", "", 0, "date"),  # E110 1101  types F, I, J
    (0x6E, 0x6E, "hca_units", "", 0, "num"),  # E110 1110  heat cost allocator
    # 0x6F: reserved (0xEF announces a future third extension table)
    *_durations(0x70, "averaging_duration", DURATION_UNITS),  # E111 00nn
    *_durations(0x74, "actuality_duration", DURATION_UNITS),  # E111 01nn
    (0x78, 0x78, "fabrication_number", "", 0, "uint"),  # E111 1000
    (0x79, 0x79, "enhanced_identification", "", 0, "uint"),  # E111 1001
    (0x7A, 0x7A, "bus_address", "", 0, "uint"),  # E111 1010
    # 0x7B / 0x7D: extension tables, 0x7C plain text, 0x7E any, 0x7F manufacturer
]
PRIMARY_VIFS: dict[int, VifEntry] = _expand(_PRIMARY_ROWS)

# EN 13757-3 table 14: first extension table, VIF 0xFB then this code.
_FB_ROWS: list[_Row] = [
    (0x00, 0x01, "energy", "Wh", 5, "num"),  # E000 000n  10^(n-1) MWh
    (0x02, 0x03, "reactive_energy", "varh", 3, "num"),  # E000 001n  10^n kVARh
    (0x08, 0x09, "energy", "J", 8, "num"),  # E000 100n  10^(n-1) GJ
    (0x0C, 0x0F, "energy", "cal", 5, "num"),  # E000 11nn  10^(nn-1) MCal (2018)
    (0x10, 0x11, "volume", "m3", 2, "num"),  # E001 000n  10^(n+2) m3
    (0x14, 0x17, "reactive_power", "var", 0, "num"),  # E001 01nn 10^(nn-3) kVAR
    (0x18, 0x19, "mass", "kg", 5, "num"),  # E001 100n  10^(n+2) t
    (0x1A, 0x1B, "relative_humidity", "%", -1, "num"),  # E001 101n 10^(n-1) %
    (0x20, 0x20, "volume", "ft3", 0, "num"),  # E010 0000  feet^3
    (0x21, 0x21, "volume", "ft3", -1, "num"),  # E010 0001  0.1 feet^3
    (0x22, 0x22, "volume", "US gal", -1, "num"),  # older editions (check)
    (0x23, 0x23, "volume", "US gal", 0, "num"),  # older editions (check)
    (0x24, 0x24, "volume_flow", "US gal/min", -3, "num"),  # older (check)
    (0x25, 0x25, "volume_flow", "US gal/min", 0, "num"),  # older (check)
    (0x26, 0x26, "volume_flow", "US gal/h", 0, "num"),  # older (check)
    (0x28, 0x29, "power", "W", 5, "num"),  # E010 100n  10^(n-1) MW
    (0x2A, 0x2A, "phase_u_u", "°", -1, "num"),  # E010 1010  0.1 degree
    (0x2B, 0x2B, "phase_u_i", "°", -1, "num"),  # E010 1011  0.1 degree
    (0x2C, 0x2F, "frequency", "Hz", -3, "num"),  # E010 11nn  10^(nn-3) Hz
    (0x30, 0x31, "power", "J/h", 8, "num"),  # E011 000n  10^(n-1) GJ/h
    (0x34, 0x37, "apparent_power", "VA", 0, "num"),  # E011 01nn 10^(nn-3) kVA
    (0x58, 0x5B, "flow_temperature", "°F", -3, "num"),  # E101 10nn
    (0x5C, 0x5F, "return_temperature", "°F", -3, "num"),  # E101 11nn
    (0x60, 0x63, "temperature_difference", "°F", -3, "num"),  # E110 00nn
    (0x64, 0x67, "external_temperature", "°F", -3, "num"),  # E110 01nn
    # E110 1xxx: HCA rating factors (2018 / OMS); scale as sent (check)
    (0x68, 0x68, "resulting_rating_factor", "", 0, "num"),
    (0x69, 0x69, "thermal_output_rating_factor", "", 0, "num"),
    (0x6A, 0x6A, "thermal_coupling_rating_factor", "", 0, "num"),
    (0x6B, 0x6B, "thermal_coupling_rating_factor_room", "", 0, "num"),
    (0x6C, 0x6C, "thermal_coupling_rating_factor_heater", "", 0, "num"),
    (0x6D, 0x6D, "low_temperature_rating_factor", "", 0, "num"),
    (0x6E, 0x6E, "display_output_scaling_factor", "", 0, "num"),
    (0x70, 0x73, "temperature_limit", "°F", -3, "num"),  # E111 00nn
    (0x74, 0x77, "temperature_limit", "°C", -3, "num"),  # E111 01nn
    (0x78, 0x7F, "cumulative_max_power", "W", -3, "num"),  # E111 1nnn
]
# Decimal exponent of the table's own unit in ours (for the additive-offset VIFE).
_FB_UNIT_EXPS = {
    0x00: 6,
    0x02: 3,
    0x08: 9,
    0x0C: 6,
    0x14: 3,
    0x18: 3,
    0x28: 6,
    0x30: 9,
    0x34: 3,
}
FB_VIFS: dict[int, VifEntry] = _expand(_FB_ROWS, _FB_UNIT_EXPS)

# EN 13757-3 table 12: second extension table, VIF 0xFD then this code.
_FD_ROWS: list[_Row] = [
    (0x00, 0x03, "credit", "currency", -3, "num"),  # E000 00nn 10^(nn-3)
    (0x04, 0x07, "debit", "currency", -3, "num"),  # E000 01nn 10^(nn-3)
    (0x08, 0x08, "access_number", "", 0, "uint"),  # unique message id
    (0x09, 0x09, "device_type", "", 0, "uint"),  # formerly "medium"
    (0x0A, 0x0A, "manufacturer", "", 0, "uint"),
    (0x0B, 0x0B, "parameter_set", "", 0, "uint"),
    (0x0C, 0x0C, "model_version", "", 0, "uint"),
    (0x0D, 0x0D, "hardware_version", "", 0, "uint"),
    (0x0E, 0x0E, "firmware_version", "", 0, "uint"),  # metrology firmware
    (0x0F, 0x0F, "software_version", "", 0, "uint"),  # other software
    (0x10, 0x10, "customer_location", "", 0, "uint"),
    (0x11, 0x11, "customer", "", 0, "uint"),
    (0x12, 0x12, "access_code_user", "", 0, "uint"),
    (0x13, 0x13, "access_code_operator", "", 0, "uint"),
    (0x14, 0x14, "access_code_system_operator", "", 0, "uint"),
    (0x15, 0x15, "access_code_developer", "", 0, "uint"),
    (0x16, 0x16, "password", "", 0, "uint"),
    (0x17, 0x17, "error_flags", "", 0, "uint"),  # device-type specific bits
    (0x18, 0x18, "error_mask", "", 0, "uint"),
    (0x19, 0x19, "security_key", "", 0, "uint"),
    (0x1A, 0x1A, "digital_output", "", 0, "uint"),
    (0x1B, 0x1B, "digital_input", "", 0, "uint"),
    (0x1C, 0x1C, "baud_rate", "Bd", 0, "num"),
    (0x1D, 0x1D, "response_delay_time", "bit times", 0, "num"),
    (0x1E, 0x1E, "retry", "", 0, "num"),
    (0x1F, 0x1F, "remote_control", "", 0, "uint"),
    (0x20, 0x20, "first_storage_number", "", 0, "num"),  # cyclic storage
    (0x21, 0x21, "last_storage_number", "", 0, "num"),
    (0x22, 0x22, "storage_block_size", "", 0, "num"),
    (0x23, 0x23, "tariff_subunit_descriptor", "", 0, "uint"),  # 2018
    *_durations(0x24, "storage_interval", DURATION_UNITS),  # E010 01nn
    (0x28, 0x28, "storage_interval", "month", 0, "num"),
    (0x29, 0x29, "storage_interval", "year", 0, "num"),
    (0x2A, 0x2A, "operator_specific_data", "", 0, "uint"),
    (0x2B, 0x2B, "time_point_second", "s", 0, "num"),
    *_durations(0x2C, "duration_since_readout", DURATION_UNITS),  # E010 11nn
    (0x30, 0x30, "tariff_start", "", 0, "date"),
    *_durations(0x30, "tariff_duration", DURATION_UNITS)[1:],  # nn = 01..11
    *_durations(0x34, "tariff_period", DURATION_UNITS),  # E011 01nn
    (0x38, 0x38, "tariff_period", "month", 0, "num"),
    (0x39, 0x39, "tariff_period", "year", 0, "num"),
    (0x3A, 0x3A, "dimensionless", "", 0, "num"),  # "no VIF"
    (0x3B, 0x3B, "wmbus_data_container", "", 0, "uint"),
    *_durations(0x3C, "transmission_period", DURATION_UNITS),  # E011 11nn
    (0x40, 0x4F, "voltage", "V", -9, "num"),  # E100 nnnn 10^(nnnn-9) V
    (0x50, 0x5F, "current", "A", -12, "num"),  # E101 nnnn 10^(nnnn-12) A
    (0x60, 0x60, "reset_counter", "", 0, "num"),
    (0x61, 0x61, "cumulation_counter", "", 0, "num"),
    (0x62, 0x62, "control_signal", "", 0, "uint"),
    (0x63, 0x63, "day_of_week", "", 0, "num"),
    (0x64, 0x64, "week_number", "", 0, "num"),
    (0x65, 0x65, "day_change_time", "", 0, "uint"),
    (0x66, 0x66, "parameter_activation_state", "", 0, "uint"),
    (0x67, 0x67, "special_supplier_info", "", 0, "uint"),
    *_durations(0x68, "duration_since_cumulation", _LONG_UNITS),  # E110 10pp
    *_durations(0x6C, "battery_operating_time", _LONG_UNITS),  # E110 11pp
    (0x70, 0x70, "battery_change_date", "", 0, "date"),
    (0x71, 0x71, "rf_level", "dBm", 0, "num"),
    (0x72, 0x72, "daylight_saving", "", 0, "uint"),
    (0x73, 0x73, "listening_window", "", 0, "uint"),
    (0x74, 0x74, "remaining_battery_life", "d", 0, "num"),
    (0x75, 0x75, "meter_stop_count", "", 0, "num"),
    (0x76, 0x76, "manufacturer_data_container", "", 0, "uint"),
    # 0x77..0x7F reserved
]
FD_VIFS: dict[int, VifEntry] = _expand(_FD_ROWS)

# VIF 0xEF announces a third extension table that EN 13757-3 leaves reserved: the
# following code is kept (as unknown) so the VIFE chain is still read correctly.
EF_VIFS: dict[int, VifEntry] = {}

# VIF byte (with extension bit) -> table of the code in the first VIFE.
EXTENSION_TABLES: dict[int, dict[int, VifEntry]] = {
    0xFB: FB_VIFS,
    0xFD: FD_VIFS,
    0xEF: EF_VIFS,
}

# EN 13757-3 table 15: combinable (orthogonal) VIFE codes.  Value: (modifier text,
# effect, argument).  Effects on the record:
#   ""        none, only the modifier text is recorded
#   "scale"   decimal exponent += argument (multiplicative correction factor)
#   "offset"  value += 10**argument in the VIF's unit (additive correction constant)
#   "suffix"  unit += argument ("per hour" turns Wh into Wh/h)
#   "unit"    the value becomes a duration in unit argument (exponent 0)
#   "count"   the value becomes a plain count (unit "", exponent 0)
#   "date"    the value becomes a date / time point (decoded as types G/F/I/J)
#   "extend"  the next VIFE is read from COMBINABLE_EXT_VIFES
#   "vendor"  all following VIFEs are manufacturer specific
_Combinable = tuple[str, str, int | str | None]


def _limit_rows() -> dict[int, _Combinable]:
    # E100 u000 limit value, E100 u001 number of exceeds, E100 uf1b date of exceed,
    # E101 ufnn duration of exceed: u = lower/upper, f = first/last, b = begin/end.
    rows: dict[int, _Combinable] = {}
    for u_bit, limit in ((0, "lower"), (1, "upper")):
        base = 0x40 | u_bit << 3
        rows[base] = (f"{limit} limit value", "", None)
        rows[base | 1] = (f"number of exceeds of {limit} limit", "count", None)
        for f_bit, which in ((0, "first"), (1, "last")):
            for b_bit, edge in ((0, "begin"), (1, "end")):
                text = f"date of {edge} of {which} {limit} limit exceed"
                rows[base | f_bit << 2 | 2 | b_bit] = (text, "date", None)
            for nn, unit in enumerate(DURATION_UNITS):
                text = f"duration of {which} {limit} limit exceed [{unit}]"
                rows[0x50 | u_bit << 3 | f_bit << 2 | nn] = (text, "unit", unit)
    return rows


def _duration_of_rows() -> dict[int, _Combinable]:
    # E110 0fnn duration of first/last, E110 1u00 value during limit exceed,
    # E110 1f1b date of first/last begin/end (EN 13757-3 table 15).
    rows: dict[int, _Combinable] = {}
    for f_bit, which in ((0, "first"), (1, "last")):
        for nn, unit in enumerate(DURATION_UNITS):
            text = f"duration of {which} [{unit}]"
            rows[0x60 | f_bit << 2 | nn] = (text, "unit", unit)
        for b_bit, edge in ((0, "begin"), (1, "end")):
            rows[0x6A | f_bit << 2 | b_bit] = (
                f"date of {edge} of {which}",
                "date",
                None,
            )
    rows[0x68] = ("value during lower limit exceed", "", None)
    rows[0x6C] = ("value during upper limit exceed", "", None)
    rows[0x69] = ("leakage values", "", None)
    rows[0x6D] = ("overflow values", "", None)
    return rows


# E000 xxxx from a meter: record error codes, EN 13757-3:2013 table 18 (towards a
# meter the same codes are object actions, table 17; receiving is our main use).
_RECORD_ERRORS = {
    0x00: "none",
    0x01: "too many DIFEs",
    0x02: "storage number not implemented",
    0x03: "unit number not implemented",
    0x04: "tariff number not implemented",
    0x05: "function not implemented",
    0x06: "data class not implemented",
    0x07: "data size not implemented",
    0x0B: "too many VIFEs",
    0x0C: "illegal VIF group",
    0x0D: "illegal VIF exponent",
    0x0E: "VIF/DIF mismatch",
    0x0F: "unimplemented action",
    0x15: "no data available",
    0x16: "data overflow",
    0x17: "data underflow",
    0x18: "data error",
    0x1C: "premature end of record",
}

_PER_UNITS = (  # E010 0000..E011 1000: (modifier text, unit suffix)
    ("per second", "/s"),
    ("per minute", "/min"),
    ("per hour", "/h"),
    ("per day", "/d"),
    ("per week", "/week"),
    ("per month", "/month"),
    ("per year", "/year"),
    ("per revolution", "/revolution"),
    ("increment per input pulse on channel 0", "/pulse"),
    ("increment per input pulse on channel 1", "/pulse"),
    ("increment per output pulse on channel 0", "/pulse"),
    ("increment per output pulse on channel 1", "/pulse"),
    ("per litre", "/l"),
    ("per m3", "/m3"),
    ("per kg", "/kg"),
    ("per K", "/K"),
    ("per kWh", "/kWh"),
    ("per GJ", "/GJ"),
    ("per kW", "/kW"),
    ("per K*l", "/(K*l)"),
    ("per V", "/V"),
    ("per A", "/A"),
    ("multiplied by s", "*s"),
    ("multiplied by s/V", "*s/V"),
    ("multiplied by s/A", "*s/A"),
)

COMBINABLE_VIFES: dict[int, _Combinable] = {
    **{code: (f"reserved vife {code:02x}", "", None) for code in range(0x20)},
    **{
        code: (f"record error: {text}", "", None)
        for code, text in _RECORD_ERRORS.items()
    },
    0x12: ("average", "", None),
    0x13: ("inverse compact profile", "", None),
    0x14: ("relative deviation", "", None),
    0x1D: ("standard conform data content", "", None),
    0x1E: ("compact profile with register numbers", "", None),
    0x1F: ("compact profile", "", None),
    **{
        0x20 + i: (text, "suffix", suffix)
        for i, (text, suffix) in enumerate(_PER_UNITS)
    },
    0x39: ("start date of", "date", None),
    0x3A: ("uncorrected unit", "", None),  # value at metering conditions
    0x3B: ("forward flow", "", None),  # accumulation only of positive contributions
    0x3C: ("backward flow", "", None),  # abs value only of negative contributions
    0x3D: ("non-metric units", "", None),
    0x3E: ("value at base conditions", "", None),
    0x3F: ("obis declaration", "", None),
    **_limit_rows(),
    0x44: ("reserved vife 44", "", None),
    0x45: ("reserved vife 45", "", None),
    0x4C: ("reserved vife 4c", "", None),
    0x4D: ("reserved vife 4d", "", None),
    **_duration_of_rows(),
    **{
        0x70 + n: (f"correction factor 1e{n - 6}", "scale", n - 6) for n in range(8)
    },  # E111 0nnn multiplicative 10^(nnn-6)
    **{
        0x78 + n: (f"offset 1e{n - 3}", "offset", n - 3) for n in range(4)
    },  # E111 10nn additive 10^(nn-3) x VIF unit
    0x7C: ("combinable extension", "extend", None),  # E111 1100
    0x7D: ("correction factor 1e3", "scale", 3),  # E111 1101 (value, not unit)
    0x7E: ("future value", "", None),
    0x7F: ("manufacturer specific vifes follow", "vendor", None),
}

# EN 13757-3:2018 table 16: combinable VIFE extension (after VIFE 0xFC / 0x7C).
COMBINABLE_EXT_VIFES: dict[int, str] = {
    0x01: "at phase L1",
    0x02: "at phase L2",
    0x03: "at phase L3",
    0x04: "at neutral",
    0x05: "between phases L1 and L2",
    0x06: "between phases L2 and L3",
    0x07: "between phases L3 and L1",
    0x08: "at quadrant Q1",
    0x09: "at quadrant Q2",
    0x0A: "at quadrant Q3",
    0x0B: "at quadrant Q4",
    0x0C: "delta between import and export",
    0x0F: "accumulation of both directions",  # abs value, positive and negative
    0x11: "data presented with type C",
    0x12: "data presented with type D",
    0x13: "direction: to meter",
    0x14: "direction: from meter",
}
