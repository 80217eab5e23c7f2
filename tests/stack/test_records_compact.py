"""Compact frames (wmbus-reference.md 3.8): format signature, data CRC, expansion.

External truth: phy_vectors.json "compact_frame" (signature of a header layout, data
CRC of a full frame) and the vector pair v024 (full frame) / v025 (compact frame of a
later reading from the same meter), all read from ../shared.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stack.compact import (
    build_compact_apl,
    compact_data,
    expand_compact,
    format_signature,
    parse_compact_apl,
    record_layout,
)
from stack.crc import crc16
from stack.errors import CrcError, RecordError
from stack.records import make_record, parse_records
from tests.conftest import load_vectors


def _apl(vid: str) -> bytes:
    for vector in load_vectors():
        if vector["vid"] == vid:
            return bytes.fromhex(vector["expected"]["apl_hex_after_tpl_header"])
    pytest.skip(f"vector {vid} absent")


@pytest.fixture(scope="module")
def phy(shared):
    with (shared / "vectors" / "phy_vectors.json").open() as fh:
        entries = json.load(fh)["compact_frame"]
    layout = next(e for e in entries if "difvif_hex" in e)
    full = next(e for e in entries if "full_frame_hex" in e)
    return {
        "layout": bytes.fromhex(layout["difvif_hex"]),
        "signature": int(layout["format_signature"], 16),
        "full": bytes.fromhex(full["full_frame_hex"]),
        "data_crc": int(full["data_crc"], 16),
    }


def test_signature_of_reference_layout(phy):
    assert format_signature(phy["layout"]) == phy["signature"]


def test_data_crc_of_reference_full_frame(phy):
    signature, data_crc, data = compact_data(phy["full"])
    assert data_crc == phy["data_crc"] == crc16(phy["full"])
    assert signature == phy["signature"]  # same meter, same layout
    assert record_layout(phy["full"]) == phy["layout"]
    assert expand_compact(phy["layout"], data) == phy["full"]


def test_full_frame_v024_gives_the_layout(shared, phy):
    full = _apl("v024")
    assert record_layout(full) == phy["layout"]
    compact = _apl("v025")
    signature = int.from_bytes(compact[:2], "little")
    assert signature == format_signature(record_layout(full))


def test_compact_v025_expands_with_v024_layout(shared, phy):
    layout, compact = record_layout(_apl("v024")), _apl("v025")
    full = parse_compact_apl(compact, layout)
    assert full == phy["full"]  # the reference's full frame of that reading
    assert build_compact_apl(full) == compact  # and back, byte for byte
    records = parse_records(full)
    values = {(r.quantity, r.storage, r.function): r.value for r in records}
    # v025's expected values: total_m3, target_m3, flow temperature 127 (storage 1
    # minimum), minimum external temperature last month 22.
    assert values[("volume", 0, "instantaneous")] == 6.409
    assert values[("volume", 1, "instantaneous")] == 6.409
    assert values[("flow_temperature", 1, "minimum")] == 127
    assert values[("external_temperature", 1, "minimum")] == 22


def test_parse_compact_apl_rejects(shared):
    layout, compact = record_layout(_apl("v024")), bytearray(_apl("v025"))
    with pytest.raises(RecordError):
        parse_compact_apl(bytes(compact), layout + bytes.fromhex("0113"))  # signature
    corrupted = bytearray(compact)
    corrupted[6] ^= 0x01  # a data byte: the data CRC no longer matches
    with pytest.raises(CrcError) as info:
        parse_compact_apl(bytes(corrupted), layout)
    assert info.value.block == -1 and info.value.layer == "apl"
    with pytest.raises(RecordError):
        parse_compact_apl(bytes(compact[:-1]), layout)  # data too short
    with pytest.raises(RecordError):
        parse_compact_apl(bytes(compact) + b"\x00", layout)  # data too long
    with pytest.raises(RecordError):
        parse_compact_apl(bytes(compact[:3]), layout)


def test_expand_handles_lvar_and_manufacturer_data():
    records = [
        make_record("fabrication_number", "AB12"),
        make_record("volume", 2.5, storage=1),
        make_record("manufacturer_data", b"\x01\x02\x03"),
    ]
    full = b"".join(r.dif_vif + r.data for r in records)
    signature, data_crc, data = compact_data(full)
    layout = b"".join(r.dif_vif for r in records)
    assert layout == record_layout(full) and signature == format_signature(layout)
    assert data == b"".join(r.data for r in records)  # LVAR byte included
    assert expand_compact(layout, data) == full and data_crc == crc16(full)


def test_fillers_are_not_part_of_layout_or_crc():
    record = make_record("volume", 1.25)
    with_fillers = b"\x2f\x2f" + record.dif_vif + record.data + b"\x2f\x2f"
    signature, data_crc, data = compact_data(with_fillers)
    assert signature == format_signature(record.dif_vif)
    assert data_crc == crc16(record.dif_vif + record.data)
    expanded = expand_compact(b"\x2f" + record.dif_vif, data)
    assert expanded == record.dif_vif + record.data


@st.composite
def record_lists(draw):
    makers = [
        lambda: make_record(
            "volume",
            draw(st.integers(-(10**6), 10**6)) / 1000,
            storage=draw(st.integers(0, 40)),
        ),
        lambda: make_record(
            "energy", draw(st.integers(0, 10**9)), tariff=draw(st.integers(0, 3))
        ),
        lambda: make_record("error_flags", draw(st.integers(0, 0xFFFF))),
        lambda: make_record("date", "2024-09-30"),
        lambda: make_record("customer", draw(st.binary(max_size=15))),
        lambda: make_record(
            "fabrication_number", draw(st.text("0123456789ABC", max_size=12))
        ),
    ]
    indices = draw(st.lists(st.integers(0, len(makers) - 1), max_size=8))
    return [makers[i]() for i in indices]


@settings(max_examples=100, deadline=None)
@given(record_lists())
def test_compact_round_trip(records):
    full = b"".join(r.dif_vif + r.data for r in records)
    compact = build_compact_apl(full)
    layout = record_layout(full)
    assert parse_compact_apl(compact, layout) == full
    assert parse_records(expand_compact(layout, compact[4:])) == records
