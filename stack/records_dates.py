"""EN 13757-3 annex A date and time types G, J, F and I <-> ISO 8601 strings.

Bit layout (byte 0 first; yy = year within the century, 7 bits)::

    G (2 bytes, date)       b0: yy[2:0] day(5)            b1: yy[6:3] month(4)
    J (3 bytes, time)       b0: second(6)  b1: minute(6)  b2: hour(5)
    F (4 bytes, date+time)  b0: IV . minute(6)            b1: SU hy(2) hour(5)
                            b2: yy[2:0] day(5)            b3: yy[6:3] month(4)
    I (6 bytes, date+time)  b0: . LY second(6)  b1: IV SU minute(6)
                            b2: weekday(3) hour(5)  b3: yy[2:0] day(5)
                            b4: yy[6:3] month(4)   b5: DST(2) week(6)

IV = time invalid (the value decodes as None), SU = summer time, hy = hundred years
(year = 1900 + 100 * hy + yy when hy > 0), LY = leap year.  With hy = 0 (and for G
and I) yy 0-80 means 2000-2080 and 81-99 means 1981-1999.  Fields out of range
(month 15, day 0 ...) are the "no date" codes (``FF FF``) and decode as None.

Verified against vectors v009, v019, v057, v058, v062, v086-v088 (type I, including
the weekday bits) and the type F / G records of most plain vectors.
"""

from __future__ import annotations

import datetime
import re

from stack.errors import RecordError

__all__ = ["decode_date", "encode_date"]


def _full_year(yy: int, hundreds: int) -> int | None:
    if yy > 99:
        return None
    if hundreds == 0:  # EN 13757-3 annex A: 0-80 -> 2000-2080, 81-99 -> 1981-1999
        return 2000 + yy if yy < 81 else 1900 + yy
    return 1900 + 100 * hundreds + yy


def _calendar(year: int | None, month: int, day: int) -> str | None:
    if year is None:
        return None
    try:
        return datetime.date(year, month, day).isoformat()
    except ValueError:
        return None


def _clock(hour: int, minute: int, second: int | None = None) -> str | None:
    if hour > 23 or minute > 59 or (second is not None and second > 59):
        return None
    return f"{hour:02d}:{minute:02d}" + (f":{second:02d}" if second is not None else "")


def _year_bits(low: int, high: int) -> int:
    # Year: 3 bits in bits 5-7 of the day byte, 4 bits in bits 4-7 of the month byte.
    return ((low & 0xE0) >> 5) | ((high & 0xF0) >> 1)


def decode_date(raw: bytes) -> str | None:
    """Decode an EN 13757-3 annex A date / time as an ISO 8601 string.

    Parameters
    ----------
    raw : bytes
        2 bytes (type G, date), 3 bytes (type J, time), 4 bytes (type F, date and
        time to the minute) or 6 bytes (type I, date and time to the second).

    Returns
    -------
    str or None
        ``"2024-09-30"``, ``"21:18:05"``, ``"2024-09-30T21:18"`` or
        ``"2024-09-30T21:18:05"``; None if the invalid bit is set or a field is out of
        range (``FF FF`` is the usual "no date").
    """
    if len(raw) == 2:  # G: day b0 0-4, month b1 0-3
        return _calendar(
            _full_year(_year_bits(raw[0], raw[1]), 0), raw[1] & 0x0F, raw[0] & 0x1F
        )
    if len(raw) == 3:  # J: second, minute, hour
        return _clock(raw[2] & 0x1F, raw[1] & 0x3F, raw[0] & 0x3F)
    if len(raw) == 4:  # F: minute (bit 7 invalid), hour (bits 5-6 hundred years)
        if raw[0] & 0x80:
            return None
        date = _calendar(
            _full_year(_year_bits(raw[2], raw[3]), (raw[1] >> 5) & 3),
            raw[3] & 0x0F,
            raw[2] & 0x1F,
        )
        clock = _clock(raw[1] & 0x1F, raw[0] & 0x3F)
    elif len(raw) == 6:  # I: second, minute (bit 7 invalid), hour, day, month, week
        if raw[1] & 0x80:
            return None
        date = _calendar(
            _full_year(_year_bits(raw[3], raw[4]), 0), raw[4] & 0x0F, raw[3] & 0x1F
        )
        clock = _clock(raw[2] & 0x1F, raw[1] & 0x3F, raw[0] & 0x3F)
    else:
        raise ValueError(f"a date has 2, 3, 4 or 6 bytes, not {len(raw)}")
    return f"{date}T{clock}" if date and clock else None


_DATE_RE = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:T(\d\d):(\d\d)(?::(\d\d))?)?")
_TIME_RE = re.compile(r"(\d\d):(\d\d):(\d\d)")


def encode_date(text: str) -> bytes:
    """Encode an ISO 8601 string as date type G, F, I or J (inverse of decode_date).

    Raises
    ------
    RecordError
        Not one of the four formats, not a valid date/time, or a year the type cannot
        carry (G, I: 1981-2080; F: 1981-2299).
    """
    match = _TIME_RE.fullmatch(text)
    if match:
        hour, minute, second = (int(g) for g in match.groups())
        if _clock(hour, minute, second) is None:
            raise RecordError(f"invalid time {text!r}")
        return bytes([second, minute, hour])
    match = _DATE_RE.fullmatch(text)
    if not match:
        raise RecordError(f"not an ISO date, date-time or time: {text!r}")
    year, month, day = (int(g) for g in match.groups()[:3])
    if _calendar(year, month, day) is None:
        raise RecordError(f"invalid date {text!r}")
    hour_s, minute_s, second_s = match.groups()[3:]
    if hour_s is None:
        yy, _ = _split_year(year, hundreds_allowed=False)
        return bytes([day | (yy & 7) << 5, month | (yy >> 3) << 4])
    hour, minute = int(hour_s), int(minute_s)
    seconds = int(second_s) if second_s is not None else None
    if _clock(hour, minute, seconds) is None:
        raise RecordError(f"invalid time of day in {text!r}")
    yy, hy = _split_year(year, hundreds_allowed=seconds is None)
    day_byte, month_byte = day | (yy & 7) << 5, month | (yy >> 3) << 4
    if seconds is None:
        return bytes([minute, hour | hy << 5, day_byte, month_byte])
    weekday = datetime.date(year, month, day).isoweekday()  # 1 = Monday
    return bytes([seconds, minute, hour | weekday << 5, day_byte, month_byte, 0])


def _split_year(year: int, *, hundreds_allowed: bool) -> tuple[int, int]:
    if 1981 <= year <= 2080:
        return year % 100, 0
    if hundreds_allowed and 2081 <= year <= 2299:
        hundreds = (year - 1900) // 100
        return year - 1900 - 100 * hundreds, hundreds
    raise RecordError(f"year {year} cannot be coded in this date type")
