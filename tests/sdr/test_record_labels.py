"""One label per record: the library (``describe_record``) and every text output agree.

A made-up telegram carries one record of each value kind the parser produces (float
from a decimal exponent and from real32, int, date, date-time, text, invalid BCD, no
data, manufacturer bytes) and of each detail (storage, tariff, subunit, function,
modifier).  The expected labels are written out by hand, so the test also fails when
both sides drift the same way.
"""

from __future__ import annotations

from sdr.live_table import MeterTable
from sdr.output import format_text
from sdr.output_rx import format_reception_text
from stack.records import build_records, describe_record, make_record
from stack.telegram import decode_telegram
from tests.sdr.test_output_rx import reception
from tests.sdr.test_pipeline import telegram

INVALID_BCD = bytes.fromhex("0c13ffffffff")  # BCD8 volume, every nibble F
NO_DATA = bytes.fromhex("0013")  # DIF coding 0: volume, no data field
MFCT_BYTES = bytes.fromhex("0f0a0b")  # DIF 0x0F: manufacturer data to the end

PAYLOAD = (
    build_records(
        [
            make_record("volume", 12.345, storage=1, tariff=2, function="maximum"),
            make_record(
                "volume", 0.5, subunit=1, function="error", modifiers=("backward flow",)
            ),
            make_record("power", 1.5, coding="real32"),
            make_record("date", "2026-10-31"),
            make_record("date_time", "2026-11-24T08:15"),
            make_record("error_flags", 0),
            make_record("customer", "AB12"),
        ]
    )
    + INVALID_BCD
    + NO_DATA
    + MFCT_BYTES
)
LABELS = [
    "volume 12.345 m3 (storage 1, tariff 2, maximum)",
    "volume 0.5 m3 (subunit 1, error, backward flow)",
    "power 1.5 W",
    "date 2026-10-31",
    "date_time 2026-11-24T08:15",
    "error_flags 0",
    "customer AB12",
    "volume invalid m3",
    "volume no data m3",
    "manufacturer_data 0a0b",
]


def test_library_labels():
    decoded = decode_telegram(telegram(payload=PAYLOAD))
    assert decoded.error is None
    assert [describe_record(r) for r in decoded.records] == LABELS


def test_decode_text_prints_the_library_labels():
    lines = format_text(decode_telegram(telegram(payload=PAYLOAD))).split("\n")
    assert lines[1:] == [f"  {label}" for label in LABELS]


def test_reception_line_prints_the_library_labels():
    line = format_reception_text(reception(telegram(payload=PAYLOAD)))
    assert line.endswith("XYZ 31415926 water #42: " + "; ".join(LABELS))


def test_live_table_prints_the_library_labels():
    # Four current records (storage, tariff and subunit 0): all of them fit.
    payload = (
        INVALID_BCD
        + NO_DATA
        + build_records([make_record("power", 1.5, coding="real32")])
        + MFCT_BYTES
    )
    table = MeterTable()
    assert table.update(reception(telegram(payload=payload)), 1.0)
    (row,) = table.rows.values()
    assert row.values == (
        "volume invalid m3; volume no data m3; power 1.5 W; manufacturer_data 0a0b"
    )


def test_live_table_falls_back_to_stored_values_with_their_details():
    payload = build_records(
        [make_record("volume", 12.345, storage=1, tariff=2, function="maximum")]
    )
    table = MeterTable()
    table.update(reception(telegram(payload=payload)), 1.0)
    (row,) = table.rows.values()
    assert row.values == "volume 12.345 m3 (storage 1, tariff 2, maximum)"
