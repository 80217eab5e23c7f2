"""Output formats of receptions: jsonl, rtlwmbus (as wmbusmeters reads it), text."""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from sdr.output_rx import (
    OUTPUT_FORMATS,
    ReceptionWriter,
    format_reception_json,
    format_reception_rtlwmbus,
    format_reception_text,
    reception_to_dict,
)
from sdr.reception import decode_frame
from stack.frame import add_crcs
from stack.security import KeyRing
from tests.sdr.test_pipeline import KEY_A, FakeFrame, telegram

START = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

# -- what wmbusmeters accepts (src/wmbus_rtlwmbus.cc, checkRTLWMBUSFrame), restated:
#   a whole line; at least 10 characters; starts with T1, C1 or S1; then ";1;"
#   (CRC_OK = 1); field 4 parses as %Y-%m-%d %H:%M:%S (anything may follow);
#   field 5 is read as the RSSI only when shorter than 5 characters; the telegram is
#   the hex after "0x" up to the end of the line (or ";0x"); L must equal len - 1
#   (otherwise it is patched with a warning).
_RTLWMBUS_RE = re.compile(
    r"(?P<mode>T1|C1|S1);(?P<crc>[01]);(?P<three>[01]);(?P<time>[^;]*);"
    r"(?P<rssi>[^;]*);(?P<current>[^;]*);(?P<id>[0-9A-F]{8});0x(?P<hex>[0-9a-f]+)\n"
)


def wmbusmeters_reads(line: str):
    """(rssi, timestamp, telegram bytes) as wmbusmeters would take them, or None."""
    match = _RTLWMBUS_RE.fullmatch(line)
    if match is None or len(line) < 10 or match["crc"] != "1":
        return None
    stamp = datetime.strptime(match["time"][:19], "%Y-%m-%d %H:%M:%S")
    rssi = float(match["rssi"]) if len(match["rssi"]) < 5 else 0.0
    payload = bytes.fromhex(match["hex"])
    assert payload[0] == len(payload) - 1, "L would be patched by wmbusmeters"
    return rssi, stamp, payload


def reception(data=None, phy="T", frame_format="A", keys=None, **meta):
    data = telegram() if data is None else data
    meta.setdefault("time_s", 12.25)
    meta.setdefault("sample_index", 29_400_000)
    meta.setdefault("rssi_dbfs", -41.4)
    meta.setdefault("snr_db", 22.2)
    meta.setdefault("freq_offset_hz", -12_345.67)
    frame = FakeFrame(add_crcs(data, frame_format), phy, frame_format, **meta)
    return decode_frame(frame, keys)


def bad_crc_reception():
    on_air = bytearray(add_crcs(telegram(), "A"))
    on_air[15] ^= 0x10
    return decode_frame(
        FakeFrame(
            bytes(on_air), "T", crc_ok=False, time_s=1.5, rssi_dbfs=-70.0, snr_db=3.0
        )
    )


# -- rtlwmbus ------------------------------------------------------------------------


def test_rtlwmbus_line_exact():
    data = telegram()
    line = format_reception_rtlwmbus(reception(data))
    assert line == f"T1;1;1;1970-01-01 00:00:12.250;-41;-64;31415926;0x{data.hex()}"
    rssi, stamp, payload = wmbusmeters_reads(line + "\n")
    assert (rssi, payload) == (-41.0, data)
    assert stamp == datetime(1970, 1, 1, 0, 0, 12)


@pytest.mark.parametrize(
    ("phy", "c_field", "mode"),
    [("T", 0x44, "T1"), ("C", 0x44, "C1"), ("S", 0x44, "S1"), ("T", 0x53, "T1")],
)
def test_rtlwmbus_modes_written(phy, c_field, mode):
    data = telegram(c_field=c_field)
    line = format_reception_rtlwmbus(reception(data, phy), START)
    assert line.startswith(f"{mode};1;1;2024-05-01 12:00:12.250;")
    assert wmbusmeters_reads(line + "\n")[2] == data


@pytest.mark.parametrize(("phy", "c_field"), [("S", 0x53), ("C2", 0x53), ("C2", 0x44)])
def test_rtlwmbus_skips_modes_wmbusmeters_refuses(phy, c_field):
    assert format_reception_rtlwmbus(reception(telegram(c_field=c_field), phy)) is None


def test_rtlwmbus_format_b_telegram_has_l_without_crcs():
    data = telegram(payload=bytes(range(0x10, 0x10 + 130)), ci=0xA0)  # L > 127
    line = format_reception_rtlwmbus(reception(data, "C", "B"))
    assert line.startswith("C1;1;1;")
    assert wmbusmeters_reads(line + "\n")[2] == data


def test_rtlwmbus_bad_crc_line_is_marked_and_ignored_by_wmbusmeters():
    line = format_reception_rtlwmbus(bad_crc_reception())
    assert line.startswith("T1;0;1;1970-01-01 00:00:01.500;-70;-73;31415926;0x")
    assert wmbusmeters_reads(line + "\n") is None
    hex_part = bytes.fromhex(line.split(";0x")[1])
    assert len(hex_part) == len(telegram()) and hex_part[0] == len(hex_part) - 1


def test_rtlwmbus_three_of_six_flag():
    assert format_reception_rtlwmbus(reception(chip_errors=2)).split(";")[2] == "0"
    assert (
        format_reception_rtlwmbus(reception(phy="C", chip_errors=2)).split(";")[2]
        == "1"
    )


@pytest.mark.parametrize(
    ("rssi_dbfs", "field"),
    [(-0.4, "0"), (-99.5, "-100"), (-1234.0, "-999"), (math.nan, "0"), (5.6, "6")],
)
def test_rtlwmbus_rssi_field_fits_wmbusmeters(rssi_dbfs, field):
    line = format_reception_rtlwmbus(reception(rssi_dbfs=rssi_dbfs))
    assert line.split(";")[4] == field and len(field) < 5


def test_rtlwmbus_timestamp_in_utc_from_any_zone():
    start = datetime(2024, 5, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    line = format_reception_rtlwmbus(reception(time_s=0.0015), start)
    assert line.split(";")[3] == "2024-05-01 12:00:00.001"


# -- jsonl ---------------------------------------------------------------------------


def _strict_json(text):
    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_jsonl_fields_exact():
    data = telegram()
    info = _strict_json(
        format_reception_json(reception(data, "C", "B", channel_hz=868.95e6))
    )
    assert {
        k: info[k]
        for k in (
            "time_s",
            "sample",
            "mode",
            "direction",
            "frame_format",
            "channel_hz",
            "cfo_hz",
            "rssi_dbfs",
            "snr_db",
            "chip_errors",
            "crc_ok",
            "telegram",
            "frame",
        )
    } == {
        "time_s": 12.25,
        "sample": 29_400_000,
        "mode": "C1",
        "direction": "meter",
        "frame_format": "B",
        "channel_hz": 868.95e6,
        "cfo_hz": -12345.7,
        "rssi_dbfs": -41.4,
        "snr_db": 22.2,
        "chip_errors": 0,
        "crc_ok": True,
        "telegram": data.hex(),
        "frame": add_crcs(data, "B").hex(),
    }
    assert "timestamp" not in info
    assert info["manufacturer"] == "XYZ" and info["id"] == "31415926"
    assert [(r["quantity"], r["value"], r["unit"]) for r in info["records"]] == [
        ("volume", 12345.678, "m3"),
        ("flow_temperature", 21.0, "°C"),
    ]
    assert info["error"] is None


def test_jsonl_merges_every_key_of_decode_json():
    r = reception(telegram(security_mode=5, key=KEY_A), keys=KeyRing.single(KEY_A))
    info = reception_to_dict(r)
    decoded = json.loads(json.dumps(r.telegram.to_dict()))
    assert {k: info[k] for k in decoded} == decoded
    assert info["decrypted"] is True


def test_jsonl_timestamp_when_start_known():
    info = reception_to_dict(reception(time_s=0.25), START)
    assert info["timestamp"] == "2024-05-01T12:00:00.250Z"


def test_jsonl_bad_crc():
    info = _strict_json(format_reception_json(bad_crc_reception()))
    assert info["crc_ok"] is False and info["error_type"] == "CrcError"
    assert "CRC error in block 2" in info["error"]
    assert "manufacturer" not in info
    assert len(bytes.fromhex(info["telegram"])) == len(telegram())


def test_jsonl_nan_estimates_become_null():
    info = _strict_json(format_reception_json(reception(snr_db=math.nan)))
    assert info["snr_db"] is None


# -- text ----------------------------------------------------------------------------


def test_text_line_exact():
    line = format_reception_text(reception(telegram(access=42), channel_hz=868.95e6))
    assert line == (
        " 12.250000 s  T1 A  868.950 MHz -12.3 kHz  -41.4 dBFS  SNR 22.2 dB  "
        "XYZ 31415926 water #42: volume 12345.678 m3; flow_temperature 21.0 °C"
    )


def test_text_with_wall_clock_and_downlink():
    line = format_reception_text(reception(telegram(c_field=0x53), "T"), START)
    assert line.startswith("2024-05-01 12:00:12.250  T1 to meter A")


def test_text_reports_missing_key_and_bad_crc():
    line = format_reception_text(reception(telegram(security_mode=5, key=KEY_A)))
    assert line.endswith(
        "XYZ 31415926 water #42 encrypted: error: payload is "
        "encrypted and no key is given for meter 31415926"
    )
    bad = format_reception_text(bad_crc_reception())
    assert "CRC FAILED (frame: CRC error in block 2" in bad
    assert "\n" not in bad


# -- writer --------------------------------------------------------------------------


class _CountingStream(io.StringIO):
    def __init__(self):
        super().__init__()
        self.flushes = 0

    def flush(self):
        self.flushes += 1
        super().flush()


@pytest.mark.parametrize("output", OUTPUT_FORMATS)
def test_writer_writes_and_flushes_each_line(output):
    stream = _CountingStream()
    writer = ReceptionWriter(stream, output, START)
    receptions = [reception(time_s=t) for t in (0.5, 1.5)]
    receptions.append(reception(telegram(c_field=0x53), "S"))  # a T2 downlink
    written = [writer.write(r) for r in receptions]
    lines = stream.getvalue().splitlines(keepends=True)
    expect_t2 = output != "rtlwmbus"
    assert written == [True, True, expect_t2]
    assert len(lines) == writer.lines_written == stream.flushes == 2 + expect_t2
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    if output == "rtlwmbus":
        assert all(wmbusmeters_reads(line) for line in lines)


def test_writer_rejects_unknown_output():
    with pytest.raises(ValueError, match="unknown output"):
        ReceptionWriter(io.StringIO(), "csv")


def test_writer_rtlwmbus_defaults_to_epoch_start():
    stream = io.StringIO()
    ReceptionWriter(stream, "rtlwmbus").write(replace(reception(), mode="C1"))
    assert stream.getvalue().startswith("C1;1;1;1970-01-01 00:00:12.250;")
