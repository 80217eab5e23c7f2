"""Sample sources: one interface for files, radios and in-process loopback.

``SampleSource`` owns what every source shares (python-can's ``recv``/``_recv_internal``
split): turning the backend's raw bytes into ``complex64`` through ``dsp.convert``,
keeping a partial sample for the next read, chunked iteration, the read-after-close and
I/O-error checks, and the end-of-stream rule (an empty array).  A backend implements
only ``_read_raw(n_bytes)`` and, if it holds a resource, ``_close()``.

Every block ``read()`` returns is placed in the stream and in time::

    block_sample_index   index of its first sample (samples delivered before it)
    timestamp_s          wall-clock time (Unix s) of its first sample, or None when
                         the source has no clock (a recording without a start time)
    time_of_sample(i)    wall-clock time of any sample index, from the last block
    dropped_samples      samples lost before delivery (USB or driver overflow, a full
                         queue, a reconnect gap), counted by the backend, never hidden
    drop_events          how many times samples were lost (a driver that reports an
                         overflow without a count adds an event and no samples)

The sample index counts delivered samples only: after a loss the stream goes on
without a hole, and the wall-clock time (set per block by a live backend through
``_raw_time_s``) stays right across the gap.

Backends are found through ``SOURCE_BACKENDS`` (name -> ``"module:Class"``) and imported
only when chosen, so a radio library is needed only by the user of that radio.
``open_source`` parses the specs people type::

    file:PATH or PATH       a recording (raw IQ or SigMF); ``-`` is standard input
    rtlsdr:0                an RTL-SDR dongle by index or serial
    rtltcp:HOST:PORT        an rtl_tcp server
    soapy:driver=...        any SoapySDR device
    loopback                in-process replay of an array (``iq=...`` option)
"""

from __future__ import annotations

import importlib
import io
import logging
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from dsp.convert import bytes_per_sample, bytes_to_iq
from stack.errors import SourceError

__all__ = [
    "SOURCE_BACKENDS",
    "DEFAULT_CHUNK_SAMPLES",
    "SampleSource",
    "TruncatedError",
    "open_source",
    "load_backend",
    "create_backend",
    "split_spec",
    "open_data_file",
]

log = logging.getLogger(__name__)

#: Samples per chunk when iterating or when ``read()`` is given no size: 2**16 is
#: 27 ms at 2.4 MS/s, small enough for flat memory and large enough to amortise calls.
DEFAULT_CHUNK_SAMPLES = 1 << 16

#: Backend name -> "module:Class".  Each class offers ``from_spec(arg, **options)``.
SOURCE_BACKENDS: dict[str, str] = {
    "file": "sdr.source_file:FileSource",
    "loopback": "sdr.loopback:LoopbackSource",
    "rtlsdr": "sdr.source_rtlsdr:RtlSdrSource",
    "rtltcp": "sdr.source_rtltcp:RtlTcpSource",
    "soapy": "sdr.source_soapy:SoapySource",
}

# The optional Python package behind a backend, and how to get it.
_BACKEND_INSTALL = {
    "rtlsdr": ("pyrtlsdr", "pip install 'wmbus-sdr[rtlsdr]'"),
    "soapy": ("SoapySDR", "apt install python3-soapysdr (see README: SoapySDR)"),
}

_SCHEME_RE = re.compile(r"([a-z][a-z0-9_]*)(?::(.*))?", re.DOTALL)


class TruncatedError(SourceError):
    """The stream ended inside a sample: the bytes after the last whole sample.

    Attributes
    ----------
    source_name : str
        Name of the source (the file path for files).
    n_trailing_bytes : int
        Bytes left over after the last complete sample.
    sample_size_bytes : int
        Size of one complex sample in the stream's format.
    n_samples : int
        Complete samples delivered before the end.
    """

    def __init__(
        self,
        source_name: str,
        n_trailing_bytes: int,
        sample_size_bytes: int,
        n_samples: int,
    ):
        self.source_name = source_name
        self.n_trailing_bytes = n_trailing_bytes
        self.sample_size_bytes = sample_size_bytes
        self.n_samples = n_samples
        super().__init__(
            f"{source_name}: truncated: {n_trailing_bytes} byte(s) after the last "
            f"complete sample ({sample_size_bytes} bytes each; "
            f"{n_samples} samples read)"
        )


class SampleSource(ABC):
    """Base class of every source of complex baseband samples.

    Parameters
    ----------
    sample_rate_hz : float
        Sample rate in samples per second (> 0).
    center_freq_hz : float
        RF frequency in Hz that baseband 0 Hz corresponds to.
    name : str
        Human-readable name for messages (a path, a device string).
    sample_format : str
        Raw format of the bytes ``_read_raw`` returns (see ``dsp.convert``).
    chunk_samples : int
        Default chunk size in samples for ``read()`` and iteration.

    Attributes
    ----------
    samples_read : int
        Complex samples delivered so far: the index of the next sample.
    block_sample_index : int
        Index of the first sample of the block ``read()`` returned last.
    timestamp_s : float or None
        Wall-clock time (Unix seconds) of that sample; None if the source has no
        clock.
    dropped_samples : int
        Samples the backend lost before delivery (overflow, full queue, reconnect
        gap); they are not part of the sample index.
    drop_events : int
        Number of losses, including overflows whose size the driver did not report.
    """

    def __init__(
        self,
        *,
        sample_rate_hz: float,
        center_freq_hz: float,
        name: str,
        sample_format: str,
        chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
    ):
        if not sample_rate_hz > 0:
            raise SourceError(
                f"{name}: sample rate must be positive, got {sample_rate_hz}"
            )
        if chunk_samples < 1:
            raise ValueError(f"chunk_samples must be >= 1, got {chunk_samples}")
        self.sample_rate_hz = float(sample_rate_hz)
        self.center_freq_hz = float(center_freq_hz)
        self.name = name
        self.sample_format = sample_format
        self.chunk_samples = int(chunk_samples)
        self.samples_read = 0
        self.block_sample_index = 0
        self.timestamp_s: float | None = None
        self.dropped_samples = 0
        self.drop_events = 0
        # Wall-clock time (Unix s) of the first byte the last _read_raw returned; a
        # live backend sets it in _read_raw, a recording leaves it None.
        self._raw_time_s: float | None = None
        self._sample_size = bytes_per_sample(sample_format)
        self._pending = b""
        self._ended = False
        self._closed = False

    @abstractmethod
    def _read_raw(self, n_bytes: int) -> bytes | bytearray | memoryview:
        """Return up to ``n_bytes`` raw bytes (maybe fewer); empty = end of stream."""

    def _close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release the backend's resource (file, device); called once."""

    def read(self, max_samples: int | None = None) -> npt.NDArray[np.complex64]:
        """Read the next block of samples.

        Parameters
        ----------
        max_samples : int, optional
            Upper bound on the samples returned (default ``chunk_samples``).

        Returns
        -------
        ndarray of complex64, shape (n,), 0 <= n <= max_samples
            The samples; an empty array means the stream has ended.

        Raises
        ------
        SourceError
            If the source is closed, its device or file fails, or (``TruncatedError``)
            the stream ends inside a sample; all complete samples are returned first.
        ValueError
            If ``max_samples`` < 1.
        """
        if self._closed:
            raise SourceError(f"{self.name}: read from a closed source")
        n_max = self.chunk_samples if max_samples is None else int(max_samples)
        if n_max < 1:
            raise ValueError(f"max_samples must be >= 1, got {max_samples}")
        while not self._ended:
            n_pending = len(self._pending)
            raw = self._read_checked(n_max * self._sample_size - n_pending)
            if not raw:
                self._ended = True
                break
            iq = self._convert(raw)
            if iq.size:
                self._place_block(n_pending)
                self.samples_read += iq.size
                return iq
        if self._pending:
            # Raised on every read after the end, so no caller can miss it.
            raise TruncatedError(
                self.name, len(self._pending), self._sample_size, self.samples_read
            )
        return np.zeros(0, dtype=np.complex64)

    def _place_block(self, n_pending_bytes: int) -> None:
        """Set the index and wall-clock time of the block about to be returned."""
        self.block_sample_index = self.samples_read
        if self._raw_time_s is None:
            self.timestamp_s = None
            return
        # A partial sample kept from the previous read began a little earlier.
        byte_rate = self._sample_size * self.sample_rate_hz
        self.timestamp_s = self._raw_time_s - n_pending_bytes / byte_rate

    def time_of_sample(self, sample_index: int) -> float | None:
        """Wall-clock time of a sample, extrapolated from the last block's time.

        Parameters
        ----------
        sample_index : int
            Index in the delivered stream (as ``samples_read`` counts).

        Returns
        -------
        float or None
            Unix time in seconds; None before the first block or without a clock.
        """
        if self.timestamp_s is None:
            return None
        offset = sample_index - self.block_sample_index
        return self.timestamp_s + offset / self.sample_rate_hz

    def _count_dropped(self, n_samples: int, reason: str) -> None:
        """Count a loss of ``n_samples`` samples (0: unknown); log it sparingly."""
        self.drop_events += 1
        self.dropped_samples += max(0, int(n_samples))
        # Powers of two: a loss storm cannot flood the log, and none goes unseen.
        if self.drop_events & (self.drop_events - 1) == 0:
            log.warning(
                "%s: %s: %d samples lost so far (%d events)",
                self.name,
                reason,
                self.dropped_samples,
                self.drop_events,
            )

    def _read_checked(self, n_bytes: int) -> bytes | bytearray | memoryview:
        try:
            return self._read_raw(n_bytes)
        except OSError as exc:
            raise SourceError(f"{self.name}: read failed: {exc}") from exc

    def _convert(
        self, raw: bytes | bytearray | memoryview
    ) -> npt.NDArray[np.complex64]:
        """Convert whole samples; keep a trailing partial sample for the next call."""
        raw = memoryview(raw).cast("B")  # count bytes, whatever the backend's view
        if self._pending:
            raw = memoryview(self._pending + bytes(raw))
        n_whole = len(raw) - len(raw) % self._sample_size
        self._pending = bytes(raw[n_whole:])
        return bytes_to_iq(memoryview(raw)[:n_whole], self.sample_format)

    def close(self) -> None:
        """Release the source; further reads raise ``SourceError``.  Idempotent."""
        if not self._closed:
            self._closed = True
            self._close()

    @property
    def closed(self) -> bool:
        """True once ``close()`` has been called."""
        return self._closed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[npt.NDArray[np.complex64]]:
        """Yield chunks of up to ``chunk_samples`` samples until the end of stream."""
        while True:
            iq = self.read()
            if not iq.size:
                return
            yield iq

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.name!r}, "
            f"sample_rate_hz={self.sample_rate_hz:g}, "
            f"center_freq_hz={self.center_freq_hz:g}, format={self.sample_format})"
        )


def _missing_package(kind: str, exc: ModuleNotFoundError, error: type[Exception]):
    package, command = _BACKEND_INSTALL.get(kind, (exc.name, f"pip install {exc.name}"))
    return error(
        f"backend {kind!r} needs the Python package {package}, which is not "
        f"installed; install it with: {command}"
    )


def load_backend(
    registry: dict[str, str], kind: str, error: type[Exception] = SourceError
) -> Any:
    """Import the class registered as ``kind``; a missing library becomes ``error``.

    Parameters
    ----------
    registry : dict of str to str
        Name -> ``"module:Class"``.
    kind : str
        Backend name, a key of ``registry``.
    error : type of Exception
        ``SourceError`` or ``SinkError``.

    Returns
    -------
    type
        The backend class.

    Raises
    ------
    SourceError or SinkError
        If ``kind`` is unknown, its module does not exist in this build, or the
        optional package it needs is not installed (the message names the package
        and the command to install it).
    """
    if kind not in registry:
        raise error(f"unknown backend {kind!r}; known: {', '.join(sorted(registry))}")
    module_name, _, class_name = registry[kind].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name or module_name.startswith(f"{exc.name}."):
            raise error(f"backend {kind!r} is not available in this build") from exc
        raise _missing_package(kind, exc, error) from exc
    return getattr(module, class_name)


def create_backend(
    registry: dict[str, str],
    kind: str,
    arg: str,
    options: dict[str, Any],
    error: type[Exception],
) -> Any:
    """Load backend ``kind`` and call its ``from_spec(arg, **options)``.

    A library the backend imports only when opening a device is reported like one
    it imports at module level: as ``error`` naming the package to install.
    """
    cls = load_backend(registry, kind, error)
    try:
        return cls.from_spec(arg, **options)
    except ModuleNotFoundError as exc:
        raise _missing_package(kind, exc, error) from exc


def split_spec(
    spec: str, registry: dict[str, str], error: type[Exception] = SourceError
) -> tuple[str, str]:
    """Split ``"kind:arg"`` into ``(kind, arg)``; a bare path gives ``("file", path)``.

    Parameters
    ----------
    spec : str
        The spec as typed.
    registry : dict of str to str
        Known backend names.
    error : type of Exception
        Raised for an unknown backend.

    Returns
    -------
    tuple of (str, str)
        Backend name and the rest of the spec.

    Raises
    ------
    SourceError or SinkError
        If the spec starts with an unknown ``name:`` and no such file exists (so
        ``hackrf:0`` says "unknown backend", not "no such file").
    """
    match = _SCHEME_RE.fullmatch(spec)
    if match is None:
        return "file", spec
    kind, arg = match[1], match[2]
    if arg is None:
        # A bare word is a backend only if no file of that name exists.
        return (
            (kind, "")
            if kind in registry and not Path(spec).exists()
            else ("file", spec)
        )
    if kind in registry:
        return kind, arg
    if len(kind) > 1 and not Path(spec).exists():
        raise error(
            f"unknown backend {kind!r} in {spec!r}; known: "
            f"{', '.join(sorted(registry))} (or a file path)"
        )
    return "file", spec


def open_source(spec: str, **options: Any) -> SampleSource:
    """Open a sample source from a spec string.

    Parameters
    ----------
    spec : str
        ``file:PATH``, a bare path, ``-`` (standard input), ``rtlsdr:0``,
        ``rtltcp:HOST:PORT``, ``soapy:ARGS`` or ``loopback``.
    **options
        Passed to the backend's ``from_spec``, e.g. ``file_format``,
        ``sample_rate_hz``, ``center_freq_hz`` for files.

    Returns
    -------
    SampleSource
        The opened source; use it as a context manager.

    Raises
    ------
    SourceError
        Unknown backend, missing optional library, or the backend's own failure
        (missing file, unknown format, device not found).
    """
    kind, arg = split_spec(spec, SOURCE_BACKENDS, SourceError)
    return create_backend(SOURCE_BACKENDS, kind, arg, options, SourceError)


def open_data_file(path: Path) -> tuple[io.BufferedReader, int]:
    """Open a recording for reading; return it and its size in bytes.

    Raises ``SourceError`` saying what went wrong (no such file, cannot open, cannot
    read), for every file source and header reader alike.
    """
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file") from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot open: {exc.strerror or exc}") from exc
    try:
        size = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        fh.close()
        raise SourceError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return fh, size
