"""The wM-Bus receiver: complex baseband in, raw frames of every mode and channel out.

Signal picture::

    iq (complex64, any fs and centre) --Channelizer--> one stream per channel
        868.3 MHz    S   (S1, S1-m, S2, T2 other->meter)  Manchester, 32.768 kcps
        868.95 MHz   T/C (T1, T2, C1, C2 meter->other)    3-of-6 / NRZ, 100 kcps
        869.525 MHz  C2  (C2 other->meter)                NRZ, 50 kcps
    each channel --ChannelChain--> gate, sync search, packet decoding --> RawFrame

A channel outside the sampled band is not received (``Receiver.channels`` lists what
is).  ``feed`` takes blocks of any size and returns the frames known by the end of the
block to come before any frame still to be found, in the order their sync words start
(``sample_index``); the output, concatenated over all calls, is the same for any block
sizes.  ``flush`` ends the stream.  Memory grows neither with the stream's length nor
with the block size (a long block is received in pieces).

With ``emit_bad_crc=False`` only frames whose every block CRC is right come out: the
CRC is the gate against false frames from noise.  With ``emit_bad_crc=True``, frames
with a bad CRC come out too, marked, when their header was clean and (format A) their
first block checked (never from noise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dsp import kernels
from dsp.chain import ChainResult, ChannelChain
from dsp.channel import Channelizer
from dsp.channel_plan import MIN_SAMPLE_RATE_HZ, RADIO_CHANNELS, plan_channels

__all__ = ["RawFrame", "Receiver", "PHYS"]

#: Receiver chains, by the name ``phys`` takes: S (868.3 MHz), T and C (868.95 MHz),
#: C2 (869.525 MHz downlink).
PHYS: tuple[str, ...] = ("S", "T", "C", "C2")

# dBFS floor for an all-zero burst (log of 0).
_MIN_DB = -200.0
# Largest block one pass of the receiver takes: a longer block is received in pieces
# of this size (the same frames, as for any block sizes), so that its work arrays stay
# small (a few MB) whatever block the caller gives.
_MAX_BLOCK = 1 << 16
# Sample components beyond this magnitude (or NaN, inf) are garbage, not radio: they
# are clipped (or zeroed) so that no stage's sums overflow float32.
_MAX_COMPONENT = 1e6


@dataclass(frozen=True, slots=True)
class RawFrame:
    """One demodulated frame and its radio metadata.

    Attributes
    ----------
    data : bytes
        On-air frame bytes from L to the last CRC, as demodulated.
    phy : str
        "S" (868.3 MHz Manchester 32.768 kcps: S1/S1-m/S2/T2 downlink), "T" (868.95
        MHz 3-of-6), "C" (868.95 MHz NRZ 100 kcps), "C2" (869.525 MHz NRZ 50 kcps).
    frame_format : str
        "A" or "B".
    crc_ok : bool
        All block CRCs good (``stack.frame.strip_crcs``).
    sample_index : int
        Input-stream index of the first sample of the frame's sync word.
    time_s : float
        sample_index / sample rate, s.
    channel_hz : float
        Nominal channel frequency, Hz (868.3e6, 868.95e6, 869.525e6).
    freq_offset_hz : float
        Estimated carrier offset from the channel, Hz.
    rssi_dbfs : float
        Burst power, dB full scale (|iq| = 1 is 0 dBFS).
    snr_db : float
        Burst power over the channel's noise estimate, dB.
    chip_errors : int
        Invalid 3-of-6 words / Manchester pairs seen (0 for NRZ).
    """

    data: bytes
    phy: str
    frame_format: str
    crc_ok: bool
    sample_index: int
    time_s: float
    channel_hz: float
    freq_offset_hz: float
    rssi_dbfs: float
    snr_db: float
    chip_errors: int


def _check_phys(phys: Sequence[str] | None) -> tuple[str, ...]:
    if phys is None:
        return PHYS
    if isinstance(phys, str):
        phys = [p for p in phys.split(",") if p]
    unknown = [p for p in phys if p not in PHYS]
    if unknown:
        raise ValueError(
            f"unknown receiver chain(s) {unknown}; choose from {list(PHYS)}"
        )
    return tuple(p for p in PHYS if p in phys)


def _sanitize(iq: npt.NDArray[np.complex64]) -> npt.NDArray[np.complex64]:
    """``iq`` itself, or a cleaned copy when it holds NaN, inf or absurd values."""
    if iq.size == 0:
        return iq
    parts = np.ascontiguousarray(iq).view(np.float32)
    # max and min propagate NaN, so the test below fails for NaN too
    if parts.max() < _MAX_COMPONENT and parts.min() > -_MAX_COMPONENT:
        return iq
    clean = np.nan_to_num(parts, nan=0.0, posinf=0.0, neginf=0.0)
    np.clip(clean, -_MAX_COMPONENT, _MAX_COMPONENT, out=clean)
    return clean.view(np.complex64)


def _db(value: float) -> float:
    return 10.0 * float(np.log10(value)) if value > 0 else _MIN_DB


class Receiver:
    """Streaming receiver of every wM-Bus mode on every channel in the sampled band.

    Parameters
    ----------
    sample_rate_hz : float
        Input rate, Hz: 1.6 MS/s at 868.625 MHz holds S and T/C, 2.4 MS/s at
        868.95 MHz all three channels; one channel needs about 380 kS/s centred on
        it (the C2 downlink 273 kS/s; ``dsp.channel_plan``).
    center_freq_hz : float
        Input centre frequency, Hz (868.95 MHz at 2.4 MS/s covers all three channels;
        868.625 MHz at 1.6 MS/s covers S and T/C).
    phys : sequence of str or None
        Chains to run, from "S", "T", "C", "C2"; None for all.
    emit_bad_crc : bool
        Also return frames whose CRC failed (``crc_ok=False``).

    Attributes
    ----------
    channels : list of (str, float)
        (phy, channel_hz) of every chain actually received.

    Raises
    ------
    ValueError
        A sample rate too low for any channel, a non-positive centre, or an
        unknown chain name.

    Examples
    --------
    >>> rx = Receiver(2.4e6, 868.95e6)
    >>> rx.channels[:2]
    [('S', 868300000.0), ('T', 868950000.0)]
    >>> rx.feed(np.zeros(24_000, np.complex64))
    []
    """

    def __init__(
        self,
        sample_rate_hz: float,
        center_freq_hz: float,
        phys: Sequence[str] | None = None,
        emit_bad_crc: bool = False,
    ) -> None:
        if not sample_rate_hz >= MIN_SAMPLE_RATE_HZ:
            raise ValueError(
                f"sample rate {sample_rate_hz!r} Hz is too low for any wM-Bus "
                f"channel (the narrowest needs {MIN_SAMPLE_RATE_HZ / 1e3:.0f} kS/s); "
                "record at 1.6, 2.0 or 2.4 MS/s"
            )
        if not center_freq_hz > 0:
            raise ValueError(
                f"centre frequency must be positive, got {center_freq_hz!r}"
            )
        self.sample_rate_hz = float(sample_rate_hz)
        self.center_freq_hz = float(center_freq_hz)
        self.phys = _check_phys(phys)
        self.emit_bad_crc = bool(emit_bad_crc)
        kernels.start()
        names = tuple(c.name for c in RADIO_CHANNELS if set(c.phys) & set(self.phys))
        self._outputs = plan_channels(self.sample_rate_hz, self.center_freq_hz, names)
        self.channels: list[tuple[str, float]] = [
            (p, o.channel.channel_hz)
            for o in self._outputs
            for p in o.channel.phys
            if p in self.phys
        ]
        self._reset()

    def _reset(self) -> None:
        self._waiting: list[tuple[int, int, RawFrame]] = []
        self._channelizer = Channelizer(self.sample_rate_hz, self._outputs)
        self._chains = [
            ChannelChain(
                o, tuple(p for p in o.channel.phys if p in self.phys), self.emit_bad_crc
            )
            for o in self._outputs
        ]

    def feed(self, iq: npt.NDArray[np.complex64]) -> list[RawFrame]:
        """Receive the next block of samples.

        Parameters
        ----------
        iq : numpy.ndarray of complex64, shape (n,)
            Any n, 0 included.

        Returns
        -------
        list of RawFrame
            Frames decided by the end of this block that no frame still to be found
            can precede, in sync-word order (a frame waits at most about the length
            of the longest frame on another channel).

        Raises
        ------
        ValueError
            If ``iq`` is not a 1-D complex64 numpy array.
        """
        if not isinstance(iq, np.ndarray) or iq.dtype != np.complex64 or iq.ndim != 1:
            got = getattr(iq, "dtype", type(iq).__name__)
            raise ValueError(
                f"feed() takes a 1-D complex64 numpy array, got {got}; "
                "convert with np.asarray(iq, dtype=np.complex64) or read "
                "files with sdr.source_file.FileSource"
            )
        frames = []
        for lo in range(0, max(iq.size, 1), _MAX_BLOCK):
            frames += self._run(_sanitize(iq[lo : lo + _MAX_BLOCK]), final=False)
        return frames

    def flush(self) -> list[RawFrame]:
        """End of stream: decide what can still be decided, then start afresh."""
        frames = self._run(np.zeros(0, dtype=np.complex64), final=True)
        self._reset()
        return frames

    def _run(self, iq: npt.NDArray[np.complex64], final: bool) -> list[RawFrame]:
        outs = self._channelizer.process(iq)
        for index, (chain, z) in enumerate(zip(self._chains, outs, strict=True)):
            for result in chain.process(z, final):
                frame = self._frame(chain, result)
                self._waiting.append((frame.sample_index, index, frame))
        # Frames go out in the order their sync words start: a frame waits until no
        # chain can still find one that starts earlier (a long frame on one channel
        # is decided after a short one that began later on another).
        if final:
            horizon = np.inf
        else:
            horizon = min(
                (c.output.input_time(c.horizon()) for c in self._chains),
                default=np.inf,
            )
        self._waiting.sort(key=lambda item: item[:2])
        n_out = 0
        while n_out < len(self._waiting) and self._waiting[n_out][0] < horizon:
            n_out += 1
        out, self._waiting = self._waiting[:n_out], self._waiting[n_out:]
        return [item[2] for item in out]

    def _frame(self, chain: ChannelChain, result: ChainResult) -> RawFrame:
        out, packet = chain.output, result.packet
        index = int(round(out.input_time(packet.sync_time)))
        snr = packet.power / result.noise_power - 1.0 if result.noise_power > 0 else 0
        return RawFrame(
            data=packet.data,
            phy=packet.reading.phy,
            frame_format=packet.reading.frame_format,
            crc_ok=packet.crc_ok,
            sample_index=index,
            time_s=index / self.sample_rate_hz,
            channel_hz=out.channel.channel_hz,
            freq_offset_hz=packet.cfo_hz + out.nco_error_hz,
            rssi_dbfs=_db(packet.power),
            snr_db=_db(snr),
            chip_errors=packet.chip_errors,
        )
