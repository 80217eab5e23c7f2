"""The live view of ``wmbus listen`` on a terminal: meters heard and a status line.

::

    meters heard
    ID        Manufacturer  Type        Mode  Last values              RSSI        ...
    20261101  DME           cold water  S1    volume 1234.567 m3;      -12.9 dBFS  ...
                                              volume_flow 0.012 m3/h
    (columns go on with Count and Last seen: "2", "3 s ago")
    2.40 MS/s (100 % of 2.4 MS/s) | dropped 0 samples | CPU 23 % | 10 telegrams,
    0 CRC failed | up 0:01:23

One row per meter (manufacturer and id of the link header), for telegrams sent by
meters whose CRCs checked; frames sent to a meter (T2, C2, or from a gateway) and
frames with failed CRCs are counted in the status line only.  "Last values" are the
current readings (storage 0, tariff 0, sub-unit 0) with their units, as ``wmbus
decode`` names them; a meter we cannot decrypt says why instead.

``MeterTable`` and ``StatusMeter`` hold plain state and build rich renderables, so a
test renders them into a string with ``rich.console.Console(record=True)``;
``LiveView`` redraws them in place on a terminal (rich's ``Live``) at most twice a
second, driven by the receive loop (no drawing thread).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console, Group, JustifyMethod, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sdr.reception import Reception
from stack.errors import KeyMissingError, SecurityError
from stack.records import Record, describe_record
from stack.telegram import Telegram

__all__ = [
    "MeterRow",
    "MeterTable",
    "ReceiverStatus",
    "StatusMeter",
    "format_status",
    "format_age",
    "render_live",
    "Counts",
    "LiveView",
]

# Values shown per meter: the current readings of a heat meter already fill a line.
_MAX_VALUES = 4
# Rows drawn; the rest are summed up in the caption (most recently heard first).
_MAX_ROWS = 40
# Shortest time between two redraws of the live view, s.
_REDRAW_EVERY_S = 0.5


@dataclass
class MeterRow:
    """What the table shows of one meter.

    Attributes
    ----------
    manufacturer : str
        Three-letter manufacturer code (``"KAM"``).
    meter_id : str
        The 8 hex digits of the link-layer address.
    device_type : str
        Device type in words (``"cold water"``).
    mode : str
        Mode of the last telegram (``"T1"``, ``"C1"``, ``"S1"``).
    values : str
        The last readings with units, or why there are none.
    rssi_dbfs : float
        Level of the last telegram, dB full scale.
    count : int
        Telegrams heard from the meter.
    last_seen_s : float
        Unix time of the last telegram, s.
    """

    manufacturer: str
    meter_id: str
    device_type: str
    mode: str
    values: str
    rssi_dbfs: float
    count: int
    last_seen_s: float


def _current_values(records: Sequence[Record]) -> str:
    """Readings with units, current ones (storage 0, tariff 0, sub-unit 0) first."""
    current = [r for r in records if not (r.storage or r.tariff or r.subunit)]
    chosen = current or list(records)
    text = "; ".join(describe_record(r) for r in chosen[:_MAX_VALUES])
    return text + ("; ..." if len(chosen) > _MAX_VALUES else "")


def _why_no_values(telegram: Telegram) -> str:
    error = telegram.error
    if isinstance(error, KeyMissingError):
        return "encrypted, no key (give --key or --keys)"
    if isinstance(error, SecurityError):
        return f"decryption failed: {error}"
    if error is not None:
        return f"not decoded: {error}"
    return "no values"


class MeterTable:
    """Meters heard so far, one ``MeterRow`` each (see the module docstring).

    Parameters
    ----------
    max_rows : int
        Rows drawn by ``render``; meters heard longest ago are left out first.

    Attributes
    ----------
    rows : dict of (str, str) to MeterRow
        By (manufacturer, meter id).
    """

    def __init__(self, max_rows: int = _MAX_ROWS) -> None:
        self.rows: dict[tuple[str, str], MeterRow] = {}
        self.max_rows = max_rows

    def update(self, reception: Reception, wall_time_s: float) -> bool:
        """Account one reception; return whether it went into the table.

        Parameters
        ----------
        reception : Reception
            From the pipeline.
        wall_time_s : float
            Unix time of the telegram, s.
        """
        telegram = reception.telegram
        if telegram is None or not reception.crc_ok or reception.direction != "meter":
            return False
        link = telegram.link
        key = (link.manufacturer, link.id)
        records = telegram.records
        row = self.rows.get(key)
        if row is None:
            row = MeterRow(
                link.manufacturer, link.id, link.device_type_name, "", "", 0.0, 0, 0.0
            )
            self.rows[key] = row
        if records or not row.values:  # keep the last readings over a failed one
            row.values = (
                _current_values(records) if records else _why_no_values(telegram)
            )
        row.mode = reception.mode
        row.rssi_dbfs = float(reception.frame.rssi_dbfs)
        row.count += 1
        row.last_seen_s = float(wall_time_s)
        return True

    def render(self, now_s: float) -> Table:
        """The table, most recently heard meter first.

        Parameters
        ----------
        now_s : float
            Unix time now, s, for the "last seen" ages.
        """
        table = Table(title="meters heard", title_justify="left", expand=False)
        for name, justify in _COLUMNS:
            table.add_column(name, justify=justify, overflow="fold")
        ordered = sorted(self.rows.values(), key=lambda r: -r.last_seen_s)
        for row in ordered[: self.max_rows]:
            table.add_row(
                row.meter_id,
                row.manufacturer,
                row.device_type,
                row.mode,
                row.values,
                f"{row.rssi_dbfs:.1f} dBFS",
                str(row.count),
                format_age(now_s - row.last_seen_s),
            )
        hidden = len(ordered) - self.max_rows
        if hidden > 0:
            table.caption = f"and {hidden} more meter{'s' if hidden > 1 else ''}"
        elif not ordered:
            table.caption = "no meter heard yet"
        return table


_COLUMNS: tuple[tuple[str, JustifyMethod], ...] = (
    ("ID", "left"),
    ("Manufacturer", "left"),
    ("Type", "left"),
    ("Mode", "left"),
    ("Last values", "left"),
    ("RSSI", "right"),
    ("Count", "right"),
    ("Last seen", "right"),
)


def format_age(age_s: float) -> str:
    """``now``, ``12 s ago``, ``5 min ago``, ``3 h ago`` or ``2 d ago``."""
    if age_s < 1.0:
        return "now"
    for unit, size_s in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if age_s >= size_s:
            return f"{int(age_s // size_s)} {unit} ago"
    return f"{int(age_s)} s ago"


@dataclass(frozen=True, slots=True)
class ReceiverStatus:
    """One reading of the receiver's health for the status line.

    Attributes
    ----------
    samples_per_s : float
        Samples delivered per second since the previous reading.
    sample_rate_hz : float
        The stream's nominal rate, S/s.
    dropped_samples : int
        Samples lost before delivery, since the start.
    cpu_percent : float
        CPU time of this process (all threads) per wall time since the previous
        reading, percent (up to 100 per core).
    telegrams, crc_failed : int
        Frames whose CRCs checked, and failed, since the start.
    uptime_s : float
        Time since the start, s.
    """

    samples_per_s: float
    sample_rate_hz: float
    dropped_samples: int
    cpu_percent: float
    telegrams: int
    crc_failed: int
    uptime_s: float


class StatusMeter:
    """Turns cumulative counts into rates between two readings.

    Parameters
    ----------
    sample_rate_hz : float
        Nominal rate of the stream, S/s.
    clock : callable
        Monotonic time, s (``time.monotonic``).
    cpu_clock : callable
        CPU time of the process, s (``time.process_time``).
    """

    def __init__(
        self,
        sample_rate_hz: float,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.process_time,
    ) -> None:
        self.sample_rate_hz = float(sample_rate_hz)
        self._clock, self._cpu_clock = clock, cpu_clock
        self._start_s = clock()
        self._last = (self._start_s, cpu_clock(), 0)

    def measure(
        self, samples_read: int, dropped_samples: int, telegrams: int, crc_failed: int
    ) -> ReceiverStatus:
        """A reading now; rates cover the time since the previous reading."""
        now_s, cpu_s = self._clock(), self._cpu_clock()
        then_s, then_cpu_s, then_samples = self._last
        elapsed_s = now_s - then_s
        if elapsed_s > 0:
            self._last = (now_s, cpu_s, samples_read)
            rate = (samples_read - then_samples) / elapsed_s
            cpu_percent = 100.0 * (cpu_s - then_cpu_s) / elapsed_s
        else:  # two readings at once: nothing measurable in between
            rate = cpu_percent = 0.0
        return ReceiverStatus(
            rate,
            self.sample_rate_hz,
            dropped_samples,
            cpu_percent,
            telegrams,
            crc_failed,
            now_s - self._start_s,
        )


def format_status(status: ReceiverStatus) -> str:
    """The status line: rate against nominal, drops, CPU, telegrams, uptime."""
    share = 100.0 * status.samples_per_s / status.sample_rate_hz
    uptime_s = int(status.uptime_s)
    hours, rest = divmod(uptime_s, 3600)
    plural = "" if status.telegrams == 1 else "s"
    return (
        f"{status.samples_per_s / 1e6:.2f} MS/s ({share:.0f} % of "
        f"{status.sample_rate_hz / 1e6:g} MS/s) | dropped {status.dropped_samples} "
        f"samples | CPU {status.cpu_percent:.0f} % | {status.telegrams} "
        f"telegram{plural}, {status.crc_failed} CRC failed | up "
        f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
    )


def render_live(
    table: MeterTable, status: ReceiverStatus | None, now_s: float
) -> RenderableType:
    """The whole view: the table, then the status line (red while samples drop)."""
    if status is None:
        return table.render(now_s)
    style = "bold red" if status.dropped_samples else "dim"
    return Group(table.render(now_s), Text(format_status(status), style=style))


#: ``counts()`` of ``LiveView``: (samples read, samples dropped, telegrams, CRC failed).
Counts = Callable[[], tuple[int, int, int, int]]


class LiveView:
    """The table and status line redrawn in place on a terminal.

    Parameters
    ----------
    stream : TextIO
        The terminal (standard output).
    sample_rate_hz : float
        Nominal rate of the stream, S/s.
    counts : callable
        Returns (samples read, samples dropped, telegrams, CRC failed) so far.
    wall_clock : callable
        Unix time, s (``time.time``), for the ages.

    Attributes
    ----------
    table : MeterTable
        The meters heard.
    """

    def __init__(
        self,
        stream: TextIO,
        sample_rate_hz: float,
        counts: Counts,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.table = MeterTable()
        self._meter = StatusMeter(sample_rate_hz)
        self._counts = counts
        self._wall_clock = wall_clock
        self._last_draw_s = float("-inf")
        # Drawn only when the loop asks (no thread): the loop owns all the state.
        self._live = Live(
            console=Console(file=stream),
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )

    def __enter__(self) -> LiveView:
        self._live.start()
        self._draw()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._draw()  # the final numbers stay on the screen
        self._live.stop()

    def add(self, reception: Reception, wall_time_s: float) -> None:
        """Account one reception (drawn at the next ``tick``)."""
        self.table.update(reception, wall_time_s)

    def tick(self) -> None:
        """Redraw with fresh numbers, if the last redraw is 0.5 s old."""
        if time.monotonic() - self._last_draw_s >= _REDRAW_EVERY_S:
            self._draw()

    def _draw(self) -> None:
        self._last_draw_s = time.monotonic()
        status = self._meter.measure(*self._counts())
        view = render_live(self.table, status, self._wall_clock())
        self._live.update(view, refresh=True)
