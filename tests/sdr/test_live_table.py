"""The live table of ``wmbus listen``: receptions of made-up meters in, rich text out.

The tables are rendered with ``rich.console.Console(record=True)`` and read back as
plain text; the expected cells come from the made-up telegrams (values from their
records as ``wmbus decode`` describes them, levels from the frames' metadata).
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from sdr.keys import keyring_from_options
from sdr.live_table import (
    LiveView,
    MeterTable,
    ReceiverStatus,
    StatusMeter,
    format_age,
    format_status,
    render_live,
)
from tests.sdr.test_output_rx import bad_crc_reception, reception
from tests.sdr.test_pipeline import KEY_A, telegram

# Made-up records: 5 current values and one of storage 1 (EN 13757-3 DIF/VIF):
# volume 1 m3 (04 13), flow 21.0 °C (02 5A), return 15.0 °C (02 5E), power 16 W
# (04 2B), error flags 0 (02 FD17), volume 2 m3 at storage 1 (44 13).
MANY_RECORDS = bytes.fromhex(
    "0413e8030000025ad200025e9600042b1000000002fd1700004413d0070000"
)
WIDTH = 160


def _text(renderable, width: int = WIDTH) -> str:
    console = Console(record=True, width=width, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def _rows(text: str) -> list[list[str]]:
    """Table body rows as lists of cell texts (a cell folded over lines is joined)."""
    rows: list[list[str]] = []
    for line in text.splitlines():
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        if cells[0]:
            rows.append(cells)
        else:  # the continuation of a folded cell
            rows[-1] = [
                f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)
            ]
    return rows


def test_rows_show_meter_values_level_count_and_age():
    table = MeterTable()
    assert table.update(reception(telegram(), rssi_dbfs=-41.44), 1000.0)
    encrypted = telegram(meter_id="27182818", security_mode=5, key=KEY_A)
    assert table.update(reception(encrypted, phy="C", rssi_dbfs=-70.06), 1003.0)
    rows = _rows(_text(table.render(now_s=1010.0)))
    assert rows == [  # most recently heard first
        [
            "27182818",
            "XYZ",
            "water",
            "C1",
            "encrypted, no key (give --key or --keys)",
            "-70.1 dBFS",
            "1",
            "7 s ago",
        ],
        [
            "31415926",
            "XYZ",
            "water",
            "T1",
            "volume 12345.678 m3; flow_temperature 21.0 °C",
            "-41.4 dBFS",
            "1",
            "10 s ago",
        ],
    ]


def test_a_meter_heard_again_counts_and_shows_the_latest():
    table = MeterTable()
    table.update(reception(telegram(access=1), rssi_dbfs=-50.0), 100.0)
    later = telegram(access=2, payload=bytes.fromhex("0c1399999999"))
    table.update(reception(later, phy="S", rssi_dbfs=-20.0), 160.0)
    (row,) = table.rows.values()
    assert (row.count, row.mode, row.rssi_dbfs, row.last_seen_s) == (
        2,
        "S1",
        -20.0,
        160.0,
    )
    assert row.values == "volume 99999.999 m3"
    assert _rows(_text(table.render(now_s=400.0)))[0][-2:] == ["2", "4 min ago"]


def test_a_telegram_that_cannot_be_decrypted_keeps_the_last_values():
    data = telegram(meter_id="27182818", security_mode=5, key=KEY_A)
    table = MeterTable()
    table.update(reception(data, keys=keyring_from_options(KEY_A, None)), 1.0)
    table.update(reception(data), 2.0)  # no key this time
    (row,) = table.rows.values()
    assert row.count == 2
    assert row.values == "volume 12345.678 m3; flow_temperature 21.0 °C"
    wrong = keyring_from_options("ff" * 16, None)
    fresh = MeterTable()
    fresh.update(reception(data, keys=wrong), 1.0)
    assert list(fresh.rows.values())[0].values.startswith("decryption failed: ")


def test_frames_not_from_a_meter_or_with_bad_crcs_are_not_rows():
    table = MeterTable()
    to_meter = reception(telegram(c_field=0x53), phy="S")  # T2, to the meter
    assert to_meter.mode == "T2"
    assert not table.update(to_meter, 1.0)
    assert not table.update(bad_crc_reception(), 1.0)
    assert table.rows == {}
    assert "no meter heard yet" in _text(table.render(now_s=1.0))


def test_only_current_values_and_at_most_four():
    table = MeterTable()
    table.update(reception(telegram(payload=MANY_RECORDS)), 1.0)
    (row,) = table.rows.values()
    assert row.values == (
        "volume 1.0 m3; flow_temperature 21.0 °C; return_temperature 15.0 °C; "
        "power 16 W; ..."
    )


def test_rows_beyond_the_limit_are_summed_up():
    table = MeterTable(max_rows=2)
    for index, meter_id in enumerate(("00000001", "00000002", "00000003")):
        table.update(reception(telegram(meter_id=meter_id)), float(index))
    text = _text(table.render(now_s=10.0))
    assert [row[0] for row in _rows(text)] == ["00000003", "00000002"]
    assert "and 1 more meter" in text


@pytest.mark.parametrize(
    ("age_s", "text"),
    [
        (0.0, "now"),
        (0.99, "now"),
        (1.0, "1 s ago"),
        (59.9, "59 s ago"),
        (60.0, "1 min ago"),
        (3599.0, "59 min ago"),
        (7200.0, "2 h ago"),
        (86400 * 3 + 5, "3 d ago"),
    ],
)
def test_format_age(age_s, text):
    assert format_age(age_s) == text


def _clock(*values: float):
    return iter(values).__next__


def test_status_meter_rates_between_readings():
    meter = StatusMeter(
        2.4e6,
        clock=_clock(10.0, 12.0, 13.0, 13.0),
        cpu_clock=_clock(1.0, 1.5, 2.5, 2.5),
    )
    first = meter.measure(4_800_000, 0, 5, 1)  # 2 s after the start, 0.5 s of CPU
    assert first == ReceiverStatus(2.4e6, 2.4e6, 0, 25.0, 5, 1, 2.0)
    second = meter.measure(6_000_000, 100, 6, 1)  # 1 s later, 1 s of CPU
    assert second == ReceiverStatus(1.2e6, 2.4e6, 100, 100.0, 6, 1, 3.0)
    same_time = meter.measure(6_000_000, 100, 6, 1)
    assert (same_time.samples_per_s, same_time.cpu_percent) == (0.0, 0.0)


def test_format_status_exact():
    status = ReceiverStatus(2.3988e6, 2.4e6, 4096, 31.6, 1, 2, 3723.9)
    assert format_status(status) == (
        "2.40 MS/s (100 % of 2.4 MS/s) | dropped 4096 samples | CPU 32 % | "
        "1 telegram, 2 CRC failed | up 1:02:03"
    )


def test_render_live_marks_drops():
    table = MeterTable()
    calm = render_live(table, ReceiverStatus(1.0, 1.0, 0, 0.0, 0, 0, 0.0), 0.0)
    dropping = render_live(table, ReceiverStatus(1.0, 1.0, 7, 0.0, 0, 0, 0.0), 0.0)
    assert calm.renderables[1].style == "dim"
    assert dropping.renderables[1].style == "bold red"
    assert "dropped 7 samples" in _text(dropping)
    assert _text(render_live(table, None, 0.0)) == _text(table.render(0.0))


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_view_draws_the_final_numbers(monkeypatch):
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    counts = [0, 0, 0, 0]
    stream = _Terminal()
    with LiveView(
        stream, 2.4e6, lambda: tuple(counts), wall_clock=lambda: 50.0
    ) as view:
        view.add(reception(telegram(meter_id="44445555")), 49.0)
        counts[:] = [240_000, 0, 1, 0]
        view.tick()
        counts[:] = [480_000, 12, 7, 3]  # after the last tick: drawn at the exit
    text = stream.getvalue()
    assert "44445555" in text and "1 s ago" in text
    assert text.rstrip().endswith("\x1b[?25h")  # the cursor is given back
    final = text[text.rindex("meters heard") :]
    assert "dropped 12 samples" in final and "7 telegrams, 3 CRC failed" in final
