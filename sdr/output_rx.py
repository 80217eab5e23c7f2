"""Output of received telegrams: JSON lines, rtl-wmbus lines, and readable text.

``jsonl`` - one JSON object per line: the radio metadata, then every key of
``wmbus decode --json`` (``Telegram.to_dict()``)::

    time_s       seconds from the first sample of the stream
    timestamp    UTC wall-clock time, ISO 8601 (only when the start time is known:
                 live streams, SigMF captures with core:datetime)
    sample       index of the first sample of the frame
    mode         "S1", "T1", "C1", "T2", "C2"      direction  "meter" / "other"
    frame_format "A" / "B"                          channel_hz channel centre, Hz (RF)
    cfo_hz       carrier offset from the channel, Hz
    rssi_dbfs    received power, dB full scale      snr_db     signal to noise, dB
    chip_errors  chips the line decoder corrected   crc_ok     every block CRC checked
    telegram     lower-case hex, CRCs removed, L counting the bytes after it
    frame        lower-case hex of the frame as on air (CRCs included)
    error, error_type  why decoding stopped (a CRC failure for crc_ok false)
    manufacturer, id, ..., records                  the decoded telegram

``rtlwmbus`` - the line rtl-wmbus prints (t1_c1_packet_decoder.h, s1_packet_decoder.h),
which wmbusmeters reads from a command's standard output::

    MODE;CRC_OK;3OUTOF6OK;TIMESTAMP;PACKET_RSSI;CURRENT_RSSI;ID;0x<hex>
    T1;1;1;2024-05-01 12:00:00.250;-41;-63;12345678;0x1e44...

    MODE         T1, C1 or S1 only: wmbusmeters drops lines starting otherwise, so
                 T2/C2 receptions are not written in this format
    CRC_OK       1, or 0 for a frame whose CRCs failed (written only with --all;
                 wmbusmeters ignores such lines)
    3OUTOF6OK    0 when a mode-T frame needed chip corrections (rtl-wmbus: a 6-chip
                 group was no 3-of-6 code word), else 1 (always 1 in modes C and S)
    TIMESTAMP    UTC ``YYYY-MM-DD HH:MM:SS.mmm`` (rtl-wmbus writes .000; wmbusmeters
                 parses ``%Y-%m-%d %H:%M:%S`` and ignores the rest).  Start time +
                 time_s; for a file without a SigMF core:datetime the start is
                 1970-01-01 00:00:00 UTC, so the clock shows time into the file
    PACKET_RSSI  rssi_dbfs rounded to an integer (wmbusmeters reads the field as
                 the RSSI in dBm only when it has fewer than 5 characters)
    CURRENT_RSSI the noise floor, rssi_dbfs - snr_db, rounded (rtl-wmbus: the level
                 once the frame has ended)
    ID           the A-field id as printed (bytes 4-7 little-endian, %08X)
    0x<hex>      lower-case, CRCs removed, L counting the bytes after it

``text`` - one line per telegram for people: time, mode, meter, values.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from sdr.reception import Reception
from stack.records import describe_record
from stack.telegram import Telegram

__all__ = [
    "OUTPUT_FORMATS",
    "RTLWMBUS_MODES",
    "UNKNOWN_START",
    "reception_to_dict",
    "format_reception_json",
    "format_reception_rtlwmbus",
    "format_reception_text",
    "ReceptionWriter",
]

#: Values of ``--output``.
OUTPUT_FORMATS: tuple[str, ...] = ("text", "jsonl", "rtlwmbus")

#: Modes wmbusmeters accepts at the start of an rtl-wmbus line.
RTLWMBUS_MODES: tuple[str, ...] = ("T1", "C1", "S1")

#: Start time of a stream whose wall clock is unknown (rtlwmbus format only).
UNKNOWN_START = datetime(1970, 1, 1, tzinfo=UTC)

# wmbusmeters reads PACKET_RSSI only when the field has fewer than 5 characters.
_RSSI_MIN, _RSSI_MAX = -999, 9999


def _number(value: float, digits: int) -> float | None:
    """Rounded for JSON; NaN and infinities (no estimate) become null."""
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def _wall_time(start_time: datetime, time_s: float) -> datetime:
    return (start_time + timedelta(seconds=float(time_s))).astimezone(UTC)


def _clock_text(stamp: datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS.mmm`` (milliseconds truncated, as strftime would)."""
    return stamp.strftime("%Y-%m-%d %H:%M:%S.") + f"{stamp.microsecond // 1000:03d}"


def reception_to_dict(
    reception: Reception, start_time: datetime | None = None
) -> dict[str, Any]:
    """The JSON-ready dict of one reception (keys in the module docstring).

    Parameters
    ----------
    reception : Reception
        From ``sdr.reception.decode_frame`` (via the pipeline).
    start_time : datetime, optional
        Wall-clock time (timezone-aware) of the stream's first sample; adds
        ``timestamp``.

    Returns
    -------
    dict
    """
    frame = reception.frame
    info: dict[str, Any] = {"time_s": _number(frame.time_s, 6)}
    if start_time is not None:
        stamp = _wall_time(start_time, frame.time_s)
        info["timestamp"] = stamp.isoformat(timespec="milliseconds").replace(
            "+00:00", "Z"
        )
    info.update(
        sample=int(frame.sample_index),
        mode=reception.mode,
        direction=reception.direction,
        frame_format=frame.frame_format,
        channel_hz=_number(frame.channel_hz, 1),
        cfo_hz=_number(frame.freq_offset_hz, 1),
        rssi_dbfs=_number(frame.rssi_dbfs, 2),
        snr_db=_number(frame.snr_db, 2),
        chip_errors=int(frame.chip_errors),
        crc_ok=reception.crc_ok,
        telegram=reception.data.hex(),
        frame=bytes(frame.data).hex(),
    )
    if reception.telegram is not None:
        info.update(reception.telegram.to_dict())
    else:
        error = reception.error
        info["error"] = str(error) if error is not None else None
        info["error_type"] = type(error).__name__ if error is not None else None
    return info


def format_reception_json(
    reception: Reception, start_time: datetime | None = None
) -> str:
    """One JSON object on one line (see ``reception_to_dict``)."""
    return json.dumps(
        reception_to_dict(reception, start_time),
        ensure_ascii=False,
        default=_json_default,
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    raise TypeError(f"cannot put {type(value).__name__} into JSON")


def _rssi_field(value_db: float) -> str:
    if not math.isfinite(value_db):
        return "0"
    return str(min(max(round(value_db), _RSSI_MIN), _RSSI_MAX))


def _meter_id_field(data: bytes) -> str:
    # rtl-wmbus prints bytes 4..7 as a little-endian uint32 with %08X.
    return data[4:8][::-1].hex().upper().rjust(8, "0")


def format_reception_rtlwmbus(
    reception: Reception, start_time: datetime = UNKNOWN_START
) -> str | None:
    """The rtl-wmbus line of a reception, or None for a mode that format cannot carry.

    Parameters
    ----------
    reception : Reception
        From ``sdr.reception.decode_frame`` (via the pipeline).
    start_time : datetime
        Wall-clock time (timezone-aware) of the stream's first sample; default
        ``UNKNOWN_START``.

    Returns
    -------
    str or None
        The line without its newline; None unless the mode is T1, C1 or S1.
    """
    if reception.mode not in RTLWMBUS_MODES:
        return None
    frame = reception.frame
    timestamp = _clock_text(_wall_time(start_time, frame.time_s))
    three_of_six_ok = 0 if frame.phy == "T" and frame.chip_errors > 0 else 1
    return ";".join(
        (
            reception.mode,
            "1" if reception.crc_ok else "0",
            str(three_of_six_ok),
            timestamp,
            _rssi_field(frame.rssi_dbfs),
            _rssi_field(frame.rssi_dbfs - frame.snr_db),
            _meter_id_field(reception.data),
            "0x" + reception.data.hex(),
        )
    )


def _radio_text(reception: Reception, start_time: datetime | None) -> str:
    frame = reception.frame
    when = f"{frame.time_s:10.6f} s"
    if start_time is not None:
        when = _clock_text(_wall_time(start_time, frame.time_s))
    mode = reception.mode
    if reception.direction == "other" and mode in RTLWMBUS_MODES:
        mode += " to meter"
    return (
        f"{when}  {mode} {frame.frame_format}  {frame.channel_hz / 1e6:.3f} MHz "
        f"{frame.freq_offset_hz / 1e3:+.1f} kHz  {frame.rssi_dbfs:.1f} dBFS  "
        f"SNR {frame.snr_db:.1f} dB"
    )


def _telegram_text(telegram: Telegram) -> str:
    info = telegram.to_dict()
    text = f"{info['manufacturer']} {info['id']} {info['device_type_name']}"
    if info["access_number"] is not None:
        text += f" #{info['access_number']}"
    if info["encrypted"]:
        text += " decrypted" if info["decrypted"] else " encrypted"
    if info["error"]:
        return f"{text}: error: {info['error']}"
    values = "; ".join(describe_record(record) for record in telegram.records)
    if not values and info["warnings"]:
        values = f"note: {info['warnings'][0]}"
    return f"{text}: {values}" if values else text


def format_reception_text(
    reception: Reception, start_time: datetime | None = None
) -> str:
    """One readable line: time, mode, channel, levels, meter and its values.

    Parameters
    ----------
    reception : Reception
        From ``sdr.reception.decode_frame`` (via the pipeline).
    start_time : datetime, optional
        Wall-clock time of the stream's first sample; without it the time is
        seconds into the stream.

    Returns
    -------
    str
        A single line (no newline).
    """
    head = _radio_text(reception, start_time)
    if reception.telegram is None:
        what = "CRC FAILED" if not reception.crc_ok else "not decoded"
        return f"{head}  {what} ({reception.error}): {reception.data.hex()}"
    return f"{head}  {_telegram_text(reception.telegram)}"


class ReceptionWriter:
    """Writes receptions to a text stream in one format, a line each, flushed.

    Parameters
    ----------
    stream : TextIO
        Where lines go (standard output for the CLI).
    output : {"text", "jsonl", "rtlwmbus"}
        The format.
    start_time : datetime, optional
        Wall-clock time (timezone-aware) of the stream's first sample.  The rtlwmbus
        format uses ``UNKNOWN_START`` when it is not given.

    Attributes
    ----------
    lines_written : int
        Lines written so far (rtlwmbus skips modes it cannot carry).

    Raises
    ------
    ValueError
        If ``output`` is not one of ``OUTPUT_FORMATS``.
    """

    def __init__(
        self, stream: TextIO, output: str, start_time: datetime | None = None
    ) -> None:
        if output not in OUTPUT_FORMATS:
            raise ValueError(f"unknown output {output!r}; valid: {OUTPUT_FORMATS}")
        self.stream = stream
        self.output = output
        self.start_time = start_time
        self.lines_written = 0

    def format(self, reception: Reception) -> str | None:
        """The line for one reception in this writer's format (None: not written)."""
        if self.output == "jsonl":
            return format_reception_json(reception, self.start_time)
        if self.output == "rtlwmbus":
            return format_reception_rtlwmbus(
                reception, self.start_time or UNKNOWN_START
            )
        return format_reception_text(reception, self.start_time)

    def write(self, reception: Reception) -> bool:
        """Write one reception's line and flush; return whether a line was written."""
        line = self.format(reception)
        if line is None:
            return False
        # Flushed per line: wmbusmeters and pipes read telegrams as they come.
        self.stream.write(line + "\n")
        self.stream.flush()
        self.lines_written += 1
        return True
