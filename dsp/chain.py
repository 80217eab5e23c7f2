"""The receive chain of one radio channel: gate -> sync search -> packet decoding.

Signal picture (one channel, complex64 at its own rate, absolute sample indices)::

    samples --SampleBuffer--> NoiseGate (0.25 ms blocks, decided LOOKAHEAD blocks late)
                                  |  blocks near an open one
                                  v
                              SyncScanner --SyncCandidate--> queue (in order)
                                                               |  head, once its
                                                               v  samples are in
                              PacketDecoder.probe --> .finish --> PacketResult

Candidates are decoded strictly in the order they were found, each as soon as the
samples it needs have arrived.  A good frame suppresses the candidates that lie
inside it.  Each step is decided at a channel sample count that the samples alone
fix (never earlier than the previous step's), so the results do not depend on the
input's block sizes; ``horizon`` tells the receiver how early a result still to come
could start, so that it can give the frames of all channels in time order.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dsp.buffer import SampleBuffer
from dsp.channel_plan import ChannelOutput
from dsp.chipfamily import CHIP_FAMILIES
from dsp.framing import PacketDecoder, PacketResult, Probe
from dsp.squelch import LOOKAHEAD_BLOCKS, NoiseGate
from dsp.sync import SyncCandidate, SyncScanner

__all__ = ["ChainResult", "ChannelChain"]


@dataclass(frozen=True, slots=True)
class ChainResult:
    """A decoded packet with the channel facts the receiver reports.

    Attributes
    ----------
    packet : PacketResult
    noise_power : float
        Channel noise floor when the packet was found (mean |z|^2).
    """

    packet: PacketResult
    noise_power: float


@dataclass(slots=True)
class _Pending:
    cand: SyncCandidate
    noise_power: float
    found_at: int  # channel sample count by which the scan has surely produced it
    probe: Probe | None = None


class ChannelChain:
    """Gate, sync search and decoding of one channel (see the module docstring).

    Parameters
    ----------
    output : ChannelOutput
        The channel as the channelizer extracts it.
    phys : tuple of str
        Receiver chains wanted on it.
    emit_bad_crc : bool
        Report frames whose CRCs fail (when they look like real frames).
    """

    def __init__(
        self, output: ChannelOutput, phys: tuple[str, ...], emit_bad_crc: bool
    ) -> None:
        self.output = output
        rate = output.sample_rate_hz
        family = CHIP_FAMILIES[output.channel.name]
        self.buffer = SampleBuffer()
        self.gate = NoiseGate(rate)
        self.scanner = SyncScanner(family, rate)
        self.decoder = PacketDecoder(family, phys, rate, emit_bad_crc)
        self._queue: deque[_Pending] = deque()
        self._scan_block = 0  # next block whose scan decision is due
        self._scanning = False
        self._suppress_until = -1.0
        self._last_ready = 0

    def process(
        self, z: npt.NDArray[np.complex64], final: bool = False
    ) -> list[ChainResult]:
        """Take the channel's next samples; return the packets decided by now.

        ``final`` ends the stream: the sync search runs to the last sample, and
        pending candidates are decided with what has arrived (the receiver then
        replaces the chain with a fresh one).
        """
        self.buffer.append(z)
        blk = self.gate.block_len
        done = self.gate.n_blocks * blk
        whole = (self.buffer.end - done) // blk * blk
        self.gate.measure(self.buffer.get(done, done + whole))
        self._scan(final)
        results = self._decode(final)
        self._trim()
        return results

    # -- sync search ------------------------------------------------------------------
    def _scan(self, final: bool) -> None:
        gate, blk = self.gate, self.gate.block_len
        first = self._scan_block
        last = max(first, gate.n_blocks if final else gate.n_blocks - LOOKAHEAD_BLOCKS)
        wanted = gate.wants_scan(first, last)
        # runs of wanted blocks: [starts[i], stops[i])
        edges = np.diff(np.concatenate([[False], wanted, [False]]).astype(np.int8))
        starts = first + np.flatnonzero(edges == 1)
        stops = first + np.flatnonzero(edges == -1)
        for run_start, run_stop in zip(starts, stops, strict=True):
            if not (self._scanning and run_start == first):
                self._add(self.scanner.reset(int(run_start) * blk))
            self._scanning = True
            self._scan_samples(int(run_stop) * blk)
            if run_stop < last:
                self._add(self.scanner.reset(int(run_stop) * blk))
                self._scanning = False
        if self._scanning and starts.size == 0 and last > first:
            self._add(self.scanner.reset(first * blk))
            self._scanning = False
        self._scan_block = last
        if final:
            stop = self.buffer.end
            if self._scanning and self.scanner.next_sample() < stop:
                self._scan_samples(stop)
            self._add(self.scanner.reset(stop))
            self._scanning = False

    def _scan_samples(self, stop: int) -> None:
        lo = self.scanner.next_sample() - self.scanner.history_samples
        lo = max(lo, self.buffer.start)
        self._add(self.scanner.scan(self.buffer.get(lo, stop), lo, stop))

    def _add(self, cands: list[SyncCandidate]) -> None:
        blk = self.gate.block_len
        # Latest moment the scan can have produced a candidate: its merge window
        # closed and the gate's lookahead was measured.  A pure function of the
        # candidate, so it orders results the same for any input block sizes.
        lag = self.scanner.decision_lag
        for cand in cands:
            last_block = (cand.end_sample + lag) // blk
            found_at = (last_block + LOOKAHEAD_BLOCKS + 2) * blk
            noise = self.gate.floor(min(cand.end_sample // blk, self.gate.n_blocks - 1))
            self._queue.append(_Pending(cand, noise, found_at))

    # -- decoding ---------------------------------------------------------------------
    def _decode(self, final: bool) -> list[ChainResult]:
        out = []
        while self._queue:
            item = self._queue[0]
            if item.cand.end_sample <= self._suppress_until:
                self._queue.popleft()
                continue
            decided, result = self._step(item, final)
            if not decided:
                break
            self._queue.popleft()
            if result is not None:
                out.append(result)
                if result.packet.crc_ok:
                    self._suppress_until = result.packet.end_time
        return out

    def _step(self, item: _Pending, final: bool) -> tuple[bool, ChainResult | None]:
        """Advance the head candidate; (decided, result).  A step waits until the
        channel holds ``max(samples needed, when found, previous decision)``, so every
        decision happens at a sample count that the samples alone determine."""
        dec, buf = self.decoder, self.buffer
        start = dec.span_start(item.cand)
        if item.probe is None:
            data_need = dec.probe_need(item.cand)
            if not self._wait(max(data_need, item.found_at), final):
                return False, None
            # at the end of the stream, decode with what there is
            data_need = min(data_need, buf.end) if final else data_need
            if start < buf.start or data_need <= item.cand.end_sample:
                return True, None  # the stream began (or ended) inside it
            item.probe = dec.probe(buf.get(start, data_need), item.cand)
            if item.probe is None:
                return True, None
        data_need = item.probe.need_sample
        if not self._wait(data_need, final):
            return False, None
        data_need = min(data_need, buf.end) if final else data_need
        packet = dec.finish(buf.get(start, data_need), item.cand, item.probe)
        if packet is None:
            return True, None
        return True, ChainResult(packet, item.noise_power)

    def _wait(self, ready: int, final: bool) -> bool:
        """True when a step that is ready at channel sample ``ready`` may run now."""
        ready = max(ready, self._last_ready)
        if not final and ready > self.buffer.end:
            return False
        self._last_ready = ready
        return True

    def horizon(self) -> float:
        """Channel sample time before which no packet this chain has not yet returned
        can start its sync word (the receiver gives frames in sync-time order)."""
        pos = float(self._scan_block * self.gate.block_len)  # the scan's next start
        if self._scanning:
            pos = min(pos, self.scanner.earliest_end())
        for item in self._queue:
            pos = min(pos, item.cand.end_sample)
        # a packet's sync starts at most the pattern (and the header fit's slack)
        # before its candidate's end: lookback_samples() covers both
        return pos - self.decoder.lookback_samples()

    # -- memory -----------------------------------------------------------------------
    def _trim(self) -> None:
        keep = self._scan_block * self.gate.block_len
        if self._scanning:
            keep = min(keep, self.scanner.next_sample())
        # a candidate found later reads back over its whole pattern (header fit)
        keep -= self.scanner.history_samples + self.decoder.lookback_samples()
        if self._queue:
            keep = min(keep, self.decoder.span_start(self._queue[0].cand))
        self.buffer.trim(keep)
        self.gate.forget(keep // self.gate.block_len - 8)
