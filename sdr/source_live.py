"""The shared half of every live source: a reader thread and a bounded block queue.

A radio (or an rtl_tcp server) does not wait for us.  So each live backend reads on
its own thread, as fast as the device delivers, into a queue of at most
``queue_blocks`` blocks; ``read()`` takes from that queue.  When decoding falls
behind, the queue is full and the newest block is dropped and counted
(``dropped_samples``); the device is never stalled and nothing is hidden::

    device --_stream(emit)--> [reader thread] --put--> queue (bounded) --get--> read()
                                   |                      |full: drop + count
                                   |stamp: wall clock of the block's first sample
                                   |device gone: error after the queued blocks
                                   |reconnect=True: retry with backoff (bounded),
                                   |also after timeout_s of silence

A backend implements four hooks: ``_connect()`` opens and configures the device (again
after a loss), ``_stream(emit)`` delivers raw bytes until ``_stop`` is set and returns
or raises ``SourceError`` when the device stops, ``_interrupt()`` makes a blocked
``_stream`` return from another thread, and ``_disconnect()`` releases everything.

Timing: a block's wall-clock time is its arrival time minus its duration, so the
time of its first sample, give or take the driver's buffering (a few ms).  A
reconnect gap is counted as lost samples from the wall clock (an estimate: no device
says how much it missed while away).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from abc import abstractmethod
from collections import deque
from collections.abc import Callable

from dsp.convert import bytes_per_sample
from sdr.source import DEFAULT_CHUNK_SAMPLES, SampleSource
from stack.errors import SourceError

__all__ = [
    "DEFAULT_CENTER_FREQ_HZ",
    "DEFAULT_QUEUE_BLOCKS",
    "DEFAULT_SAMPLE_RATE_HZ",
    "LiveSource",
    "parse_gain",
]

log = logging.getLogger(__name__)

#: Centre of a live source when none is given: 868.95 MHz, the T1/C1 channel; at
#: 2.4 MS/s the S channel (868.3 MHz) lies inside too (wmbus-reference.md, "Modes").
DEFAULT_CENTER_FREQ_HZ = 868.95e6
#: 2.4 MS/s: the highest rate an RTL-SDR delivers over USB without losses.
DEFAULT_SAMPLE_RATE_HZ = 2.4e6
#: Blocks the queue holds: 64 blocks of up to 256 KiB is about 3.5 s at 2.4 MS/s cu8,
#: enough to ride out a decoding hiccup, small enough to bound memory.
DEFAULT_QUEUE_BLOCKS = 64

# Reconnect backoff: first wait, growth factor and longest wait, s.
_BACKOFF_FIRST_S = 0.25
_BACKOFF_FACTOR = 2.0
_BACKOFF_MAX_S = 8.0
# How long close() waits for the reader thread to leave the driver, s.
_JOIN_TIMEOUT_S = 3.0

_Block = tuple[bytes, float]


class _BlockBuffer:
    """A bounded FIFO of (raw bytes, first-sample time) with a final outcome."""

    def __init__(self, max_blocks: int):
        self._blocks: deque[_Block] = deque()
        self._max_blocks = max_blocks
        self._cond = threading.Condition()
        self._done = False
        self._error: SourceError | None = None

    def put(self, block: _Block) -> bool:
        """Queue a block; False (and nothing queued) when full or finished."""
        with self._cond:
            if self._done or len(self._blocks) >= self._max_blocks:
                return False
            self._blocks.append(block)
            self._cond.notify()
            return True

    def finish(self, error: SourceError | None) -> None:
        """No more blocks will come; ``error`` (None: a clean end) follows them."""
        with self._cond:
            if not self._done:
                self._done, self._error = True, error
            self._cond.notify_all()

    def get(self, timeout_s: float, keep_waiting: Callable[[], bool]) -> _Block | None:
        """The next block; None at a clean end.

        Raises the final error once the queued blocks are gone, or ``TimeoutError``
        after ``timeout_s`` without a block (unless ``keep_waiting()`` says so).
        """
        with self._cond:
            deadline = time.monotonic() + timeout_s
            while not self._blocks:
                if self._done:
                    if self._error is not None:
                        raise self._error
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if not keep_waiting():
                        raise TimeoutError
                    deadline = time.monotonic() + timeout_s
                    continue
                self._cond.wait(remaining)
            return self._blocks.popleft()


class LiveSource(SampleSource):
    """Base class of sources fed by a device on a reader thread (see module doc).

    Parameters
    ----------
    sample_rate_hz, center_freq_hz : float
        Sample rate (S/s) and RF centre (Hz).
    name : str
        Name in messages.
    sample_format : str
        Raw format the device delivers (``dsp.convert``).
    queue_blocks : int
        Blocks held between the reader thread and ``read()`` (>= 1).
    timeout_s : float
        Longest silence before ``read()`` gives up (the device is gone), or with
        ``reconnect`` abandons the silent stream and reconnects, s.
    reconnect : bool
        Reopen the device (reconnect to the server) after a loss instead of failing.
    max_reconnects : int
        Attempts per loss, after waits of 0.25, 0.5, 1, ... 8 s; a device that
        comes back gets the full number again at its next loss.
    chunk_samples : int
        Default block size of ``read()``, samples.
    clock : callable
        Wall-clock time in Unix seconds (``time.time``).

    Attributes
    ----------
    reconnects : int
        Successful reconnections so far.
    """

    def __init__(
        self,
        *,
        sample_rate_hz: float,
        center_freq_hz: float,
        name: str,
        sample_format: str,
        queue_blocks: int = DEFAULT_QUEUE_BLOCKS,
        timeout_s: float = 5.0,
        reconnect: bool = False,
        max_reconnects: int = 8,
        chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__(
            sample_rate_hz=sample_rate_hz,
            center_freq_hz=center_freq_hz,
            name=name,
            sample_format=sample_format,
            chunk_samples=chunk_samples,
        )
        if queue_blocks < 1 or not timeout_s > 0 or max_reconnects < 0:
            raise ValueError(
                "queue_blocks must be >= 1, timeout_s > 0 and max_reconnects >= 0"
            )
        self.timeout_s = float(timeout_s)
        self.reconnect = bool(reconnect)
        self.max_reconnects = int(max_reconnects)
        self.reconnects = 0
        self._clock = clock
        self._buffer = _BlockBuffer(int(queue_blocks))
        self._stop = threading.Event()
        # Set when read() has waited timeout_s in vain and reconnect is on: the
        # reader abandons the silent stream and reconnects.
        self._kick = threading.Event()
        self._reconnecting = False
        self._clean_end = False
        self._carry = b""
        self._gap_start_s: float | None = None
        self._current = memoryview(b"")
        self._current_time_s = 0.0
        self._thread: threading.Thread | None = None

    # --- hooks ------------------------------------------------------------------------

    @abstractmethod
    def _connect(self) -> None:
        """Open and configure the device (again after a loss); SourceError if not."""

    @abstractmethod
    def _stream(self, emit: Callable[[bytes | bytearray | memoryview], None]) -> None:
        """Pass raw bytes to ``emit`` while ``_streaming()`` says so.

        Return (or raise ``SourceError``) when the device stops on its own; set
        ``_clean_end`` first if that is a normal end of the stream.
        """

    def _interrupt(self) -> None:  # noqa: B027 - backends that poll need nothing
        """Make a ``_stream`` blocked in the driver return soon (another thread)."""

    @abstractmethod
    def _disconnect(self) -> None:
        """Release the device or connection; idempotent, never raises."""

    def _streaming(self) -> bool:
        """Whether ``_stream`` should go on (no close, no reconnect after silence)."""
        return not (self._stop.is_set() or self._kick.is_set())

    def _set_sample_format(self, sample_format: str) -> None:
        """Change the raw format before streaming (a device may tell it once open)."""
        self.sample_format = sample_format
        self._sample_size = bytes_per_sample(sample_format)

    # --- the reader thread ------------------------------------------------------------

    def _start(self) -> None:
        """Connect, then start reading; a subclass calls this last in ``__init__``."""
        try:
            self._connect()
        except BaseException:
            self._disconnect()
            raise
        self._thread = threading.Thread(
            target=self._run, name=f"reader {self.name}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        error: SourceError | None = None
        try:
            while not self._stop.is_set():
                error = self._stream_once()
                if error is None or not self.reconnect:
                    break
                error = self._reconnect_after(error)
                if error is not None:
                    break
        except Exception as exc:  # a bug must still end the stream, not hang it
            log.exception("%s: reader thread failed", self.name)
            error = SourceError(f"{self.name}: reader failed: {exc!r}")
        finally:
            self._buffer.finish(None if self._stop.is_set() else error)

    def _stream_once(self) -> SourceError | None:
        """Run ``_stream`` once; the error that ended it, or None for a clean end."""
        error: SourceError | None = None
        try:
            self._stream(self._emit)
        except SourceError as exc:
            error = exc
        except OSError as exc:
            error = SourceError(f"{self.name}: read failed: {exc}")
        if self._stop.is_set():
            return None
        if self._kick.is_set():
            return SourceError(f"{self.name}: no samples for {self.timeout_s:g} s")
        if error is None and not self._clean_end:
            error = SourceError(f"{self.name}: the device stopped delivering samples")
        return error

    def _reconnect_after(self, error: SourceError) -> SourceError | None:
        """Reconnect with bounded backoff; None on success, else the last error."""
        log.warning("%s; reconnecting", error)
        self._reconnecting = True
        self._kick.clear()
        self._gap_start_s = self._clock()
        wait_s = _BACKOFF_FIRST_S
        try:
            for attempt in range(1, self.max_reconnects + 1):
                if self._stop.wait(wait_s):
                    return None
                self._disconnect()
                self._carry = b""
                try:
                    self._connect()
                except SourceError as exc:
                    log.warning("%s (attempt %d)", exc, attempt)
                    error = exc
                    wait_s = min(wait_s * _BACKOFF_FACTOR, _BACKOFF_MAX_S)
                    continue
                self.reconnects += 1
                log.warning("%s: reconnected (attempt %d)", self.name, attempt)
                return None
            return SourceError(
                f"{error} (gave up after {self.max_reconnects} reconnect attempts)"
            )
        finally:
            self._reconnecting = False

    def _emit(self, data: bytes | bytearray | memoryview) -> None:
        """Queue whole samples of ``data`` (copied), stamped; count them if dropped."""
        if self._stop.is_set():
            return
        arrival_s = self._clock()
        raw = self._carry + bytes(data) if self._carry else bytes(data)
        n_whole = len(raw) - len(raw) % self._sample_size
        self._carry = raw[n_whole:]
        if not n_whole:
            return
        n_samples = n_whole // self._sample_size
        first_s = arrival_s - n_samples / self.sample_rate_hz
        if self._gap_start_s is not None:
            gap_s, self._gap_start_s = first_s - self._gap_start_s, None
            self._count_dropped(round(max(0.0, gap_s) * self.sample_rate_hz), "gap")
        if not self._buffer.put((raw[:n_whole] if self._carry else raw, first_s)):
            self._count_dropped(n_samples, "queue full, decoding is too slow")

    # --- the consumer side ------------------------------------------------------------

    def _read_raw(self, n_bytes: int) -> bytes | bytearray | memoryview:
        if not self._current:
            try:
                block = self._buffer.get(self.timeout_s, self._keep_waiting)
            except TimeoutError:
                error = SourceError(
                    f"{self.name}: no samples for {self.timeout_s:g} s; the device "
                    "stopped delivering (unplugged, or the server is stuck?)"
                )
                self._halt(error)
                raise error from None
            if block is None:
                return b""
            self._current, self._current_time_s = memoryview(block[0]), block[1]
        out, self._current = self._current[:n_bytes], self._current[n_bytes:]
        self._raw_time_s = self._current_time_s
        self._current_time_s += len(out) / self._sample_size / self.sample_rate_hz
        return out

    def _keep_waiting(self) -> bool:
        """After ``timeout_s`` of silence: wait on if reconnecting (or start to)."""
        if self._reconnecting or self._kick.is_set():
            return True
        if not self.reconnect or self._stop.is_set():
            return False
        self._kick.set()
        self._interrupt_quietly()
        return True

    def _halt(self, error: SourceError) -> None:
        """Stop the reader and make ``error`` final for every later read."""
        self._stop.set()
        self._buffer.finish(error)
        self._interrupt_quietly()

    def _interrupt_quietly(self) -> None:
        try:
            self._interrupt()
        except Exception as exc:  # closing must go on whatever the driver says
            log.warning("%s: cannot interrupt the reader: %s", self.name, exc)

    def _close(self) -> None:
        self._stop.set()
        self._buffer.finish(None)
        self._interrupt_quietly()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_TIMEOUT_S)
            if thread.is_alive():
                # Releasing a device a thread still reads from can crash the driver.
                log.warning("%s: reader thread still busy; device left open", self.name)
                return
        self._disconnect()


def parse_gain(gain_db: float | str | None, where: str) -> float | str | None:
    """A gain option as given: None (leave it), ``"auto"``, or a finite number of dB.

    Raises
    ------
    SourceError
        Anything else (``"loud"``, NaN, infinity), naming ``where``.
    """
    if gain_db is None or gain_db == "auto":
        return gain_db
    try:
        value = float(gain_db)
    except (TypeError, ValueError):
        raise SourceError(
            f"{where}: gain must be a number of dB or 'auto', got {gain_db!r}"
        ) from None
    if not math.isfinite(value):
        raise SourceError(f"{where}: gain must be finite, got {gain_db!r}")
    return value
