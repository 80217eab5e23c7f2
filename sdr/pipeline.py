"""The receive pipeline: samples in, decoded telegrams with their radio metadata out.

::

    SampleSource --iq--> Receiver.feed/flush --RawFrame--> sdr.reception.decode_frame
        (strip_crcs, decode_telegram with the keys and one FormatCache per stream)
        --> Reception (radio metadata + Telegram) --> an output writer

One ``FormatCache`` lives as long as the stream, so a compact frame decodes once a
full frame of the same meter has gone by.  Every frame is counted by outcome in
``RxCounters`` (see ``sdr.reception``); frames whose CRCs failed are always asked of
the receiver, so they are counted, and passed on only with ``emit_bad_crc``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from sdr.reception import (
    RawFrameLike,
    Reception,
    RxCounters,
    decode_frame,
    parse_phys,
)
from stack.errors import SourceError
from stack.keyring import KeyRing
from stack.telegram import FormatCache

if TYPE_CHECKING:
    from sdr.source import SampleSource

__all__ = [
    "ReceiverFactory",
    "ReceivePipeline",
    "run_pipeline",
]


class ReceiverLike(Protocol):
    """What the pipeline uses of a ``dsp.receiver.Receiver``."""

    def feed(self, iq: npt.NDArray[np.complex64]) -> list[Any]: ...

    def flush(self) -> list[Any]: ...


#: ``factory(sample_rate_hz, center_freq_hz, phys=..., emit_bad_crc=...)``
ReceiverFactory = Callable[..., ReceiverLike]


def _default_receiver(
    sample_rate_hz: float, center_freq_hz: float, **options: Any
) -> ReceiverLike:
    # Imported here: numba compiles the receiver's kernels on first use, and the
    # pipeline's decoding side needs none of it.
    from dsp.receiver import Receiver

    return Receiver(sample_rate_hz, center_freq_hz, **options)


class ReceivePipeline:
    """Streaming receiver plus decoder for one sample stream.

    Parameters
    ----------
    sample_rate_hz : float
        Sample rate of the stream in samples per second.
    center_freq_hz : float
        RF frequency in Hz of baseband 0 Hz.
    keys : KeyRing or None
        AES keys by meter id.
    phys : sequence of str, optional
        Receiver chains to run (names of ``PHYS``); default all.
    emit_bad_crc : bool
        Also return frames whose CRCs failed (``--all``).  They are counted either way.
    receiver_factory : callable, optional
        ``factory(sample_rate_hz, center_freq_hz, phys=..., emit_bad_crc=True)``
        returning an object with ``feed(iq)`` and ``flush()``; default
        ``dsp.receiver.Receiver``.  Tests pass a stand-in here.

    Attributes
    ----------
    receiver : Receiver
        The streaming receiver.
    counters : RxCounters
        Frames by outcome so far.
    formats : FormatCache
        Layouts of the full frames seen so far, for compact frames.

    Raises
    ------
    ValueError
        From the receiver, for a sample rate or centre it cannot work with.
    """

    def __init__(
        self,
        sample_rate_hz: float,
        center_freq_hz: float,
        *,
        keys: KeyRing | None = None,
        phys: Sequence[str] | None = None,
        emit_bad_crc: bool = False,
        receiver_factory: ReceiverFactory | None = None,
    ) -> None:
        self.phys = parse_phys(phys)
        self.keys = keys
        self.emit_bad_crc = emit_bad_crc
        self.counters = RxCounters()
        self.formats = FormatCache()
        factory = receiver_factory or _default_receiver
        # Frames with bad CRCs are always asked for, so that they are counted.
        self.receiver = factory(
            sample_rate_hz, center_freq_hz, phys=list(self.phys), emit_bad_crc=True
        )

    def feed(self, iq: npt.NDArray[np.complex64]) -> list[Reception]:
        """Receive a block of samples; return the frames that ended in it."""
        return self._handle(self.receiver.feed(iq))

    def flush(self) -> list[Reception]:
        """End of stream: return the frames still in the receiver."""
        return self._handle(self.receiver.flush())

    def _handle(self, frames: Iterable[RawFrameLike]) -> list[Reception]:
        out = []
        for frame in frames:
            if frame.phy not in self.phys:
                continue  # a chain shares a channel with one not asked for
            reception = decode_frame(frame, self.keys, self.formats)
            self.counters.count(reception.outcome)
            if reception.crc_ok or self.emit_bad_crc:
                out.append(reception)
        return out


def run_pipeline(
    source: SampleSource,
    pipeline: ReceivePipeline,
    emit: Callable[[Reception], object],
    progress: Callable[[int], object] | None = None,
) -> RxCounters:
    """Read a source to its end through the pipeline; hand each reception to ``emit``.

    Parameters
    ----------
    source : SampleSource
        Read in its own chunk size until it ends.
    pipeline : ReceivePipeline
        Made for the source's sample rate and centre frequency.
    emit : callable
        Called with each ``Reception`` as soon as it is complete.
    progress : callable, optional
        Called with the number of samples read after each chunk.

    Returns
    -------
    RxCounters
        The pipeline's counters.

    Raises
    ------
    SourceError
        If the source fails or is truncated; every frame in the samples read before
        has been emitted first (the receiver is flushed).
    """
    failure: SourceError | None = None
    try:
        for iq in source:
            for reception in pipeline.feed(iq):
                emit(reception)
            if progress is not None:
                progress(source.samples_read)
    except SourceError as exc:
        failure = exc
    for reception in pipeline.flush():
        emit(reception)
    if failure is not None:
        raise failure
    return pipeline.counters
