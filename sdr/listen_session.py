"""The running half of ``wmbus listen``: the stop rules, the meter filter, one session.

::

    StopControl   SIGINT, SIGTERM, SIGALRM (--duration) -> ``reason``; the loop stops
                  between two blocks; a wait for samples is left at once
    ListenSession source blocks --(stop check)--> run_pipeline --> emit:
                      --meters filter -> wall-clock time of the frame
                      -> ReceptionOutput (lines, MQTT) and the live table
                  tick after each block (the table's redraw), summary at the end

Signals are handled only while the loop runs, and only on the main thread (Python
delivers them there); elsewhere --duration is still checked between blocks.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sdr.cliutil import UsageError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from sdr.cli_receive import ReceptionOutput
    from sdr.pipeline import ReceivePipeline
    from sdr.reception import Reception
    from sdr.source import SampleSource

__all__ = [
    "parse_meter_ids",
    "reception_meter_ids",
    "meter_matches",
    "StopControl",
    "ListenSession",
]

_METER_ID_RE = re.compile(r"[0-9a-f]{8}|[0-9a-f]{0,7}\*")
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)


def parse_meter_ids(text: str | None) -> tuple[str, ...] | None:
    """The meter ids of ``--meters``, in lower case (None: no filter).

    Parameters
    ----------
    text : str or None
        Comma-separated ids of 8 hex digits, or prefixes ending in ``*``.

    Raises
    ------
    UsageError
        For an item that is neither, or no item at all.
    """
    if text is None:
        return None
    items = [item.strip().lower() for item in text.split(",") if item.strip()]
    bad = [item for item in items if not _METER_ID_RE.fullmatch(item)]
    if bad or not items:
        raise UsageError(
            f"--meters: {', '.join(bad) or 'no id'}: give meter ids of 8 hex digits "
            "(as printed on the meter), or a prefix ending in *, separated by commas"
        )
    return tuple(items)


def reception_meter_ids(reception: Reception) -> list[str]:
    """Meter ids (lower-case hex) a reception is about.

    The link-layer address; also the long transport header's address (the meter
    behind a gateway or repeater); for a frame whose CRCs failed (``--all``) the
    A-field as received.
    """
    telegram = reception.telegram
    if telegram is None:
        return [reception.data[4:8][::-1].hex()]
    ids = [telegram.link.id.lower()]
    if telegram.tpl is not None and telegram.tpl.address is not None:
        ids.append(telegram.tpl.address[1].lower())
    return ids


def meter_matches(reception: Reception, meters: tuple[str, ...] | None) -> bool:
    """Whether ``--meters`` (as ``parse_meter_ids`` gives it) lets a reception out."""
    if meters is None:
        return True
    return any(
        meter_id == wanted
        or (wanted.endswith("*") and meter_id.startswith(wanted[:-1]))
        for meter_id in reception_meter_ids(reception)
        for wanted in meters
    )


class _Stop(Exception):
    """Raised by the signal handler to leave a wait for samples."""


class StopControl:
    """Ctrl-C, SIGTERM and --duration turned into a clean stop of the receive loop.

    A context manager: on entry (main thread only) it handles SIGINT, SIGTERM and
    SIGALRM and arms a timer for ``duration_s``; on exit it puts the previous
    handlers back.  A signal only sets ``reason``; the loop checks ``stopped``
    between blocks, so the receiver is never cut off inside a block.  A wait for
    samples in ``blocks`` is left at once.

    Parameters
    ----------
    duration_s : float or None
        Stop after this many seconds (None: no limit).

    Attributes
    ----------
    reason : str or None
        ``"SIGINT"``, ``"SIGTERM"`` or ``"--duration"`` once a stop is asked for.
    """

    def __init__(self, duration_s: float | None = None) -> None:
        self.reason: str | None = None
        self._duration_s = duration_s
        self._deadline_s = None if duration_s is None else time.monotonic() + duration_s
        self._waiting = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopControl:
        if threading.current_thread() is threading.main_thread():
            for signum in _STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._on_signal)
            if self._duration_s is not None:
                signal.setitimer(signal.ITIMER_REAL, max(self._duration_s, 1e-3))
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._previous:
            signal.setitimer(signal.ITIMER_REAL, 0)
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
            self._previous.clear()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self.reason is None:
            alarm = signum == signal.SIGALRM
            self.reason = "--duration" if alarm else signal.Signals(signum).name
        if self._waiting:
            raise _Stop

    @property
    def stopped(self) -> bool:
        """Whether a stop was asked for (a signal, or the end of --duration)."""
        deadline_s = self._deadline_s
        if self.reason is None and deadline_s and time.monotonic() >= deadline_s:
            self.reason = "--duration"
        return self.reason is not None

    def blocks(self, source: SampleSource) -> Iterator[npt.NDArray[np.complex64]]:
        """The source's blocks until it ends or a stop is asked for."""
        while not self.stopped:
            self._waiting = True
            try:
                if self.reason is not None:  # a signal came just before the wait
                    return
                iq = source.read()
            except _Stop:
                return
            finally:
                self._waiting = False
            if not iq.size:
                return
            yield iq


class ListenSession:
    """One run of ``wmbus listen``: where receptions go, and the counts at the end.

    Parameters
    ----------
    source : SampleSource
        The open source.
    pipeline : ReceivePipeline
        Made for the source's rate and centre.
    output : ReceptionOutput
        The line writer and MQTT publisher.
    meters : tuple of str or None
        ``--meters`` (``parse_meter_ids``); None lets every reception out.
    view : LiveView or None
        The live table (``sdr.live_table``), on a terminal.

    Attributes
    ----------
    shown : int
        Receptions that passed the meter filter.
    start_wall_s : float
        Unix time the session began: the clock of a source that has none (stdin).
    """

    def __init__(
        self,
        source: SampleSource,
        pipeline: ReceivePipeline,
        output: ReceptionOutput,
        meters: tuple[str, ...] | None = None,
        view: Any = None,
    ) -> None:
        self.source, self.pipeline, self.output = source, pipeline, output
        self.meters, self.view = meters, view
        self.shown = 0
        self.start_wall_s = time.time()
        self._start_mono_s = time.monotonic()

    def stream(self, stop: StopControl) -> _StoppableStream:
        """The source as ``run_pipeline`` reads it: ending when ``stop`` says so."""
        return _StoppableStream(self.source, stop)

    def wall_time_s(self, reception: Reception) -> float:
        """Unix time of the frame's first sample, s."""
        frame = reception.frame
        stamp = self.source.time_of_sample(int(frame.sample_index))
        return self.start_wall_s + float(frame.time_s) if stamp is None else stamp

    def emit(self, reception: Reception) -> None:
        """Pass a reception through the filter to the lines, MQTT and the table."""
        if not meter_matches(reception, self.meters):
            return
        self.shown += 1
        wall_s = self.wall_time_s(reception)
        # The stream's start as this frame's clock places it (drops shift it).
        start = datetime.fromtimestamp(wall_s - float(reception.frame.time_s), UTC)
        self.output.emit(reception, start, wall_s)
        if self.view is not None:
            self.view.add(reception, wall_s)

    def tick(self, _samples_read: int) -> None:
        """After each block: let the live table redraw."""
        if self.view is not None:
            self.view.tick()

    def counts(self) -> tuple[int, int, int, int]:
        """(samples read, samples dropped, telegrams, CRC failed) so far."""
        counters = self.pipeline.counters
        source = self.source
        return (
            source.samples_read,
            source.dropped_samples,
            counters.telegrams,
            counters.crc_failed,
        )

    def stats(self) -> dict[str, Any]:
        """Counters for the MQTT statistics messages."""
        return {
            **self.pipeline.counters.as_dict(),
            "samples": self.source.samples_read,
            "dropped_samples": self.source.dropped_samples,
        }

    def summary(self, reason: str) -> str:
        """The samples line of the counts: ``stopped by SIGINT after 3.1 s: ...``."""
        source = self.source
        elapsed_s = time.monotonic() - self._start_mono_s
        line = (
            f"{reason} after {elapsed_s:.1f} s: {source.samples_read} samples, "
            f"{source.dropped_samples} dropped"
        )
        if source.drop_events:
            line += f" in {source.drop_events} losses"
        if self.meters is not None:
            line += f"; {self.shown} frames of the --meters written"
        return line

    def end_reason(self, stop: StopControl, failed: bool) -> str:
        """Why the session ended, for ``summary``."""
        if failed:
            return "failed"
        if stop.reason == "--duration":
            return "stopped at the end of --duration"
        if stop.reason is not None:
            return f"stopped by {stop.reason}"
        name = self.source.name
        return f"end of {'standard input' if name == '-' else name}"


class _StoppableStream:
    """What ``run_pipeline`` uses of a source: iteration and ``samples_read``."""

    def __init__(self, source: SampleSource, stop: StopControl) -> None:
        self.source, self.stop = source, stop

    @property
    def samples_read(self) -> int:
        return self.source.samples_read

    def __iter__(self) -> Iterator[npt.NDArray[np.complex64]]:
        return self.stop.blocks(self.source)
