"""In-process loopback: replay arrays as a source; join a sink to a source by a queue.

For tests, benchmarks and the demo, with no file or radio involved::

    LoopbackSource(iq, rate, chunk=[1000, 37])   replays ``iq`` in reads of 1000, 37,
                                                 1000, 37, ... samples: the chunk
                                                 boundaries of a streaming receiver
    sink, source = loopback_pair(rate)           sink.write(iq) ... sink.close();
                                                 source.read() gets the same samples

Samples travel as raw bytes in ``sample_format`` (default cf32, lossless); choosing
``cu8`` makes the loopback quantise exactly as an 8-bit SDR recording would.  A read
never spans two ``write()`` calls.  The pair works across threads (``queue.Queue``);
a read waits at most ``timeout_s`` for data, then raises ``SourceError``, so a test
that forgets ``sink.close()`` fails instead of hanging.
"""

from __future__ import annotations

import itertools
import operator
import queue
from collections.abc import Iterator, Sequence
from typing import Any

import numpy.typing as npt

from dsp.convert import iq_to_bytes
from sdr.annotation import Annotation
from sdr.sink import SampleSink
from sdr.source import DEFAULT_CHUNK_SAMPLES, SampleSource
from stack.errors import SourceError

__all__ = ["LoopbackSource", "LoopbackSink", "loopback_pair"]

#: Default centre: the T1/C1 meter->other channel, 868.95 MHz (EN 13757-4; see
#: wmbus-reference.md, "Modes").
DEFAULT_CENTER_FREQ_HZ = 868.95e6

_END = None  # queue item marking the end of the stream


class LoopbackSource(SampleSource):
    """A source replaying arrays from memory, in the chunk sizes a test chooses.

    Parameters
    ----------
    iq : array_like of complex, shape (n_samples,), or None
        Samples to replay, then end of stream.  ``None``: samples come from a
        ``LoopbackSink`` (see ``loopback_pair``).
    sample_rate_hz : float
        Samples per second.
    center_freq_hz : float
        Centre frequency in Hz (default 868.95 MHz).
    chunk : int or sequence of int, optional
        Largest block each ``read()`` returns, cycled (``[1000, 37]`` gives 1000, 37,
        1000, ...); default: as much as asked for.
    sample_format : str
        Format the samples pass through (``cf32`` lossless, ``cu8`` quantises).
    timeout_s : float or None
        Longest wait for a sink's data in seconds; ``None`` waits for ever.
    name : str
        Name in messages.
    maxsize : int
        Sink writes held before ``write()`` blocks (0: unbounded; ignored with ``iq``).

    Attributes
    ----------
    annotations : list of Annotation
        Annotations given to the paired sink (ground truth for tests).

    Raises
    ------
    ValueError
        If ``iq`` is not a 1-D complex array or a chunk size is < 1.
    """

    def __init__(
        self,
        iq: npt.ArrayLike | None,
        sample_rate_hz: float,
        *,
        center_freq_hz: float = DEFAULT_CENTER_FREQ_HZ,
        chunk: int | Sequence[int] | None = None,
        sample_format: str = "cf32",
        timeout_s: float | None = 5.0,
        name: str = "loopback",
        maxsize: int = 0,
    ):
        super().__init__(
            sample_rate_hz=sample_rate_hz,
            center_freq_hz=center_freq_hz,
            name=name,
            sample_format=sample_format,
            chunk_samples=DEFAULT_CHUNK_SAMPLES,
        )
        self.annotations: list[Annotation] = []
        self.timeout_s = timeout_s
        self._chunks = _chunk_cycle(chunk)
        # A pre-filled replay must not block on its own end marker.
        self._queue: queue.Queue[bytes | None] = queue.Queue(
            maxsize if iq is None else 0
        )
        self._current = memoryview(b"")
        if iq is not None:
            self._put(iq_to_bytes(iq, sample_format))
            self._put(_END)

    @classmethod
    def from_spec(cls, arg: str, **options: Any) -> LoopbackSource:
        """Open ``loopback`` with ``iq=`` and ``sample_rate_hz=`` options."""
        if arg or "iq" not in options or "sample_rate_hz" not in options:
            raise SourceError(
                "loopback takes no argument, and needs iq= and sample_rate_hz="
            )
        return cls(options.pop("iq"), options.pop("sample_rate_hz"), **options)

    def _put(self, data: bytes | None) -> None:
        """Queue raw bytes in ``sample_format``, or ``None`` for the end of stream."""
        self._queue.put(data)

    def _read_raw(self, n_bytes: int) -> bytes | bytearray | memoryview:
        if self._chunks is not None:
            n_bytes = min(n_bytes, next(self._chunks) * self._sample_size)
        if not self._current:
            try:
                item = self._queue.get(timeout=self.timeout_s)
            except queue.Empty:
                raise SourceError(
                    f"{self.name}: no samples within {self.timeout_s} s "
                    "(was the loopback sink closed?)"
                ) from None
            if item is _END:
                return b""
            self._current = memoryview(item)
        out, self._current = self._current[:n_bytes], self._current[n_bytes:]
        return out


class LoopbackSink(SampleSink):
    """The transmit end of ``loopback_pair``: what it writes, its source reads.

    Parameters
    ----------
    source : LoopbackSource
        The receiving end (created with ``iq=None``).
    """

    supports_annotations = True

    def __init__(self, source: LoopbackSource):
        super().__init__(
            sample_rate_hz=source.sample_rate_hz,
            center_freq_hz=source.center_freq_hz,
            name=f"{source.name} sink",
            sample_format=source.sample_format,
        )
        self._source = source
        # Shared list: the receiving side sees the transmitter's ground truth.
        self.annotations = source.annotations

    def _write_raw(self, data: bytes) -> None:
        if data:
            self._source._put(data)

    def _close(self) -> None:
        self._source._put(_END)


def loopback_pair(
    sample_rate_hz: float,
    center_freq_hz: float = DEFAULT_CENTER_FREQ_HZ,
    *,
    sample_format: str = "cf32",
    chunk: int | Sequence[int] | None = None,
    timeout_s: float | None = 5.0,
    maxsize: int = 0,
) -> tuple[LoopbackSink, LoopbackSource]:
    """A sink and a source joined by a queue: transmit -> receive in-process.

    Parameters
    ----------
    sample_rate_hz : float
        Samples per second, shared by both ends.
    center_freq_hz : float
        Centre frequency in Hz.
    sample_format : str
        Format on the "wire" (cf32 lossless, cu8/cs8/cs16 quantise).
    chunk : int or sequence of int, optional
        Read sizes of the source (see ``LoopbackSource``).
    timeout_s : float or None
        Longest wait of a read for data, in seconds.
    maxsize : int
        Writes the queue holds before ``write()`` blocks (0: unbounded); bounds memory
        when a producer thread runs ahead of the receiver.

    Returns
    -------
    (LoopbackSink, LoopbackSource)
        Closing the sink ends the source's stream (an exception in the sink's
        ``with`` block ends it too).
    """
    source = LoopbackSource(
        None,
        sample_rate_hz,
        center_freq_hz=center_freq_hz,
        chunk=chunk,
        sample_format=sample_format,
        timeout_s=timeout_s,
        maxsize=maxsize,
    )
    return LoopbackSink(source), source


def _chunk_cycle(chunk: int | Sequence[int] | None) -> Iterator[int] | None:
    if chunk is None:
        return None
    try:
        sizes = [
            operator.index(n)
            for n in (chunk if isinstance(chunk, Sequence) else [chunk])
        ]
    except TypeError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise ValueError(f"chunk sizes must be integers >= 1, got {chunk!r}")
    return itertools.cycle(sizes)
