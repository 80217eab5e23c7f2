"""Sample sinks: where transmitted baseband goes (a file, a radio, a loopback).

The mirror of ``sdr.source``.  ``SampleSink`` owns the shared part: checking and
converting ``complex64`` to the backend's raw format through ``dsp.convert``, counting
samples, the closed check, I/O errors as ``SinkError``, and the commit/abort rule of the
context manager: leaving the ``with`` block normally commits (``close()``), leaving it
with an exception discards (``abort()``), so a half-written recording never looks
complete.  A backend implements ``_write_raw(data)``, ``_close()`` (commit) and, if
discarding differs from closing, ``_abort()``.

Specs for ``open_sink``::

    file:PATH or PATH    a recording (raw IQ or SigMF, by extension or file_format=)
    soapy:driver=...     a SoapySDR device that can transmit
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any, Self

import numpy.typing as npt

from dsp.convert import bytes_per_sample, iq_to_bytes
from sdr.annotation import Annotation
from sdr.source import create_backend, split_spec
from stack.errors import SinkError

__all__ = ["SINK_BACKENDS", "SampleSink", "open_sink"]

log = logging.getLogger(__name__)

#: Backend name -> "module:Class".  Each class offers ``from_spec(arg, **options)``.
SINK_BACKENDS: dict[str, str] = {
    "file": "sdr.sink_file:FileSink",
    "soapy": "sdr.sink_soapy:SoapySink",
}


class SampleSink(ABC):
    """Base class of every consumer of complex baseband samples.

    Parameters
    ----------
    sample_rate_hz : float
        Sample rate in samples per second (> 0).
    center_freq_hz : float
        RF frequency in Hz of baseband 0 Hz.
    name : str
        Human-readable name for messages.
    sample_format : str
        Raw format ``_write_raw`` receives (see ``dsp.convert``).

    Attributes
    ----------
    samples_written : int
        Complex samples accepted so far: the index the next sample will have.
    annotations : list of Annotation
        Annotations given to ``annotate()``, in call order.
    supports_annotations : bool
        Whether the sink stores annotations (SigMF files, loopback).
    """

    supports_annotations: bool = False

    def __init__(
        self,
        *,
        sample_rate_hz: float,
        center_freq_hz: float,
        name: str,
        sample_format: str,
    ):
        if not sample_rate_hz > 0:
            raise SinkError(
                f"{name}: sample rate must be positive, got {sample_rate_hz}"
            )
        self.sample_rate_hz = float(sample_rate_hz)
        self.center_freq_hz = float(center_freq_hz)
        self.name = name
        self.sample_format = sample_format
        self.samples_written = 0
        self.annotations: list[Annotation] = []
        self._sample_size = bytes_per_sample(sample_format)
        self._closed = False

    @abstractmethod
    def _write_raw(self, data: bytes) -> None:
        """Write all of ``data`` (a whole number of samples in ``sample_format``)."""

    @abstractmethod
    def _close(self) -> None:
        """Commit: make what was written final (rename a file, drain a device)."""

    def _abort(self) -> None:
        """Discard what was written; by default the same as ``_close``."""
        self._close()

    def write(self, iq: npt.ArrayLike) -> None:
        """Write samples.

        Parameters
        ----------
        iq : array_like of complex, shape (n_samples,)
            Samples, full scale +-1.0 per component; integer formats round and clip.

        Raises
        ------
        SinkError
            If the sink is closed or the write fails.
        ValueError
            If ``iq`` is not a 1-D complex array, or has NaN/inf for an integer format.
        """
        if self._closed:
            raise SinkError(f"{self.name}: write to a closed sink")
        data = iq_to_bytes(iq, self.sample_format)
        try:
            self._write_raw(data)
        except OSError as exc:
            raise SinkError(f"{self.name}: write failed: {exc}") from exc
        self.samples_written += len(data) // self._sample_size

    def annotate(self, annotation: Annotation) -> None:
        """Attach an annotation (e.g. one per telegram) to the recording.

        Raises
        ------
        SinkError
            If this sink cannot store annotations (a raw IQ file, a radio); check
            ``supports_annotations`` first.
        """
        if not self.supports_annotations:
            raise SinkError(
                f"{self.name}: this sink cannot store annotations; write SigMF "
                "(.sigmf-meta) to keep them"
            )
        self.annotations.append(annotation)

    def close(self) -> None:
        """Commit what was written.  Idempotent.

        Raises
        ------
        SinkError
            If committing fails; what was written is then discarded.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self._close()
        except BaseException:
            self._abort_quietly()
            raise

    def abort(self) -> None:
        """Discard what was written (a file is removed, not left half-written)."""
        if not self._closed:
            self._closed = True
            self._abort_quietly()

    def _abort_quietly(self) -> None:
        try:
            self._abort()
        except (OSError, SinkError) as exc:
            log.warning("%s: discarding the output failed: %s", self.name, exc)

    @property
    def closed(self) -> bool:
        """True once committed or aborted."""
        return self._closed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.name!r}, "
            f"sample_rate_hz={self.sample_rate_hz:g}, "
            f"center_freq_hz={self.center_freq_hz:g}, format={self.sample_format})"
        )


def open_sink(spec: str, **options: Any) -> SampleSink:
    """Open a sample sink from a spec string.

    Parameters
    ----------
    spec : str
        ``file:PATH``, a bare path, or ``soapy:ARGS``.
    **options
        Passed to the backend's ``from_spec``; for files ``sample_rate_hz``,
        ``center_freq_hz``, ``file_format``, ``sample_format``, ``overwrite``.

    Returns
    -------
    SampleSink
        Use it as a context manager: a normal exit commits, an exception discards.

    Raises
    ------
    SinkError
        Unknown backend, missing optional library, or the backend's own failure.
    """
    kind, arg = split_spec(spec, SINK_BACKENDS, SinkError)
    return create_backend(SINK_BACKENDS, kind, arg, options, SinkError)
