"""Channelizer: one wide complex baseband -> one narrow baseband per wM-Bus channel.

Signal picture (default tuning, 868.95 MHz at 2.4 MS/s; the plan is
``dsp.channel_plan``)::

    input iq, complex64, fs = 2.4 MS/s, centre 868.95 MHz
              |                      |                     |
     mix by +650 kHz (NCO table) mix by 0              mix by -575 kHz
     low-pass, decimate by 4     low-pass, /4          low-pass, /4
              v                      v                     v
     S channel, 600 kS/s       T/C channel, 600 kS/s  C2 channel, 600 kS/s

Output sample ``m`` of a channel is the filtered sample whose last input is input
index ``m * D + D - 1``; its centre (group delay removed) is input time
``m * D + D - 1 - (n_taps - 1) / 2`` (``ChannelOutput.input_time``).  A tone of
amplitude 1 in the passband comes out with amplitude 1 (0 dBFS stays 0 dBFS).

State (NCO position, filter history, decimation phase, DC estimate) carries across
blocks, so the output does not depend on how the input is cut.

A channel whose passband holds 0 Hz of the input also holds a tuner's DC spike; it
gets a DC blocker: the mean of each block of 1024 output samples feeds a one-pole
average (time constant 4096 samples, a running mean before that) that is subtracted
from the following block.  It removes a constant (or a slow drift) without touching
the much shorter FSK tones.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from dsp.channel_plan import ChannelOutput, nco_table
from dsp.kernels import helper, kernel

__all__ = [
    "channelize_reference",
    "block_dc_reference",
    "Channelizer",
]

# DC blocker: block means of this many samples, averaged with a time constant of
# _DC_SAMPLES (a running mean over the first blocks).
_DC_BLOCK = 1024
_DC_SAMPLES = 4096
# The mixer table repeats its period up to at least this many entries.
_NCO_MIN_TABLE = 4096
# Input samples per kernel chunk: small enough for the scratch arrays to stay in cache.
_CHUNK_SAMPLES = 8192


@kernel(
    "UniTuple(i8, 3)(c8[::1], f4[::1], f4[::1], i8, f4[::1], i8, f4[::1], f4[::1], "
    "i8, f4[:, :, ::1], c8[::1])"
)
def _channelize_kernel(
    iq, nco_re, nco_im, nco_pos, taps_rev, decim, work_re, work_im, phase, poly, out
):
    """Run ``_channelize_chunk`` over ``iq`` in chunks that fit the work arrays
    (len(work_re) - n_taps + 1 samples each); same arguments and results."""
    chunk = work_re.shape[0] - taps_rev.shape[0] + 1
    n_done = 0
    for lo in range(0, iq.shape[0], chunk):
        n_out, nco_pos, phase = _channelize_chunk(
            iq[lo : lo + chunk],
            nco_re,
            nco_im,
            nco_pos,
            taps_rev,
            decim,
            work_re,
            work_im,
            phase,
            poly,
            out[n_done:],
        )
        n_done += n_out
    return n_done, nco_pos, phase


@helper
def _channelize_chunk(
    iq, nco_re, nco_im, nco_pos, taps_rev, decim, work_re, work_im, phase, poly, out
):
    """Mix by the NCO table, then run the decimating FIR.

    ``work_re``/``work_im`` (float32) hold n_taps - 1 mixed history samples followed by
    room for len(iq) more; ``poly`` (float32, shape (2, decim + 1, >= len(work) /
    decim + 1)) is scratch, its last row the accumulators.  ``nco_re``/``nco_im``
    hold whole periods of the mixer, read from ``nco_pos`` on.  ``phase`` is the
    index in ``iq`` of the last input sample of the next output.  Returns (n_out, new
    nco_pos, new phase) and shifts the history.

    The loops are laid out for SIMD without reassociating sums: every inner loop runs
    over array views with unit stride (numba/LLVM then vectorise them; indexing with
    offsets instead is several times slower), the mixer over contiguous table
    segments, the filter as axpy passes over the polyphase streams, each output
    accumulating its taps in the same order whatever the block boundaries.
    """
    n = iq.shape[0]
    n_taps = taps_rev.shape[0]
    n_hist = n_taps - 1
    table_len = nco_re.shape[0]
    i = 0
    pos = nco_pos
    while i < n:
        seg = min(n - i, table_len - pos)
        src = iq[i : i + seg]
        c_re = nco_re[pos : pos + seg]
        c_im = nco_im[pos : pos + seg]
        d_re = work_re[n_hist + i : n_hist + i + seg]
        d_im = work_im[n_hist + i : n_hist + i + seg]
        for j in range(seg):
            x = src[j]
            d_re[j] = x.real * c_re[j] - x.imag * c_im[j]
            d_im[j] = x.real * c_im[j] + x.imag * c_re[j]
        i += seg
        pos += seg
        if pos == table_len:
            pos = 0
    n_out = 0
    if phase < n:
        n_out = (n - 1 - phase) // decim + 1
    if n_out > 0:
        # Output m uses work[phase + m * decim + k], k < n_taps: split the work array
        # into its decim polyphase streams so that every tap is a contiguous pass.
        n_work = n_hist + n
        for r in range(decim):
            count = (n_work - r + decim - 1) // decim
            src_re = work_re[r:n_work:decim]
            src_im = work_im[r:n_work:decim]
            dst_re = poly[0, r, :count]
            dst_im = poly[1, r, :count]
            for q in range(count):
                dst_re[q] = src_re[q]
                dst_im[q] = src_im[q]
        acc_re = poly[0, decim, :n_out]
        acc_im = poly[1, decim, :n_out]
        for m in range(n_out):
            acc_re[m] = 0.0
            acc_im[m] = 0.0
        for k in range(n_taps):
            h = taps_rev[k]
            r = (phase + k) % decim
            off = (phase + k) // decim
            src_re = poly[0, r, off : off + n_out]
            src_im = poly[1, r, off : off + n_out]
            for m in range(n_out):
                acc_re[m] += h * src_re[m]
                acc_im[m] += h * src_im[m]
        dst = out[:n_out]
        for m in range(n_out):
            dst[m] = complex(acc_re[m], acc_im[m])
    hist_re = work_re[n : n + n_hist]
    hist_im = work_im[n : n + n_hist]
    for k in range(n_hist):
        work_re[k] = hist_re[k]
        work_im[k] = hist_im[k]
    return n_out, pos, phase + n_out * decim - n


@kernel("void(c8[::1], f8[::1])")
def _dc_block_kernel(z, state):
    """Subtract a DC estimate in place.  ``state`` (float64) = [estimate re, im, sum
    re, im of the current block, samples in it, blocks done].  The estimate changes
    only at block boundaries (every _DC_BLOCK samples of the stream): the running
    mean of the blocks at first, then a one-pole average with a time constant of
    _DC_SAMPLES samples."""
    block = 1024  # _DC_BLOCK (numba freezes globals: written in)
    n = z.shape[0]
    i = 0
    while i < n:
        take = min(n - i, block - int(state[4]))
        seg = z[i : i + take]
        dc = complex(state[0], state[1])
        acc_re = state[2]
        acc_im = state[3]
        for j in range(take):
            acc_re += seg[j].real
            acc_im += seg[j].imag
            seg[j] = seg[j] - dc
        state[2] = acc_re
        state[3] = acc_im
        state[4] += take
        i += take
        if state[4] == block:
            state[5] += 1.0
            weight = 1.0 / min(state[5], 4.0)  # _DC_SAMPLES / _DC_BLOCK blocks
            state[0] += weight * (acc_re / block - state[0])
            state[1] += weight * (acc_im / block - state[1])
            state[2] = 0.0
            state[3] = 0.0
            state[4] = 0.0


def channelize_reference(
    iq: npt.NDArray[np.complex64], out: ChannelOutput, sample_rate_hz: float
) -> npt.NDArray[np.complex64]:
    """Plain-numpy twin of ``Channelizer`` for one channel and a whole array.

    Mixes with exp(-2 pi j f n / fs) computed directly at the NCO's frequency
    (``offset_hz + nco_error_hz``), convolves with the taps (zero history) and keeps
    every D-th sample starting at index D - 1; the DC blocker is not applied (see
    ``block_dc_reference``).

    Returns
    -------
    numpy.ndarray of complex64, shape (len(iq) // D,)
    """
    freq_hz = out.offset_hz + out.nco_error_hz
    n = np.arange(iq.size, dtype=np.float64)
    mixed = iq.astype(np.complex128) * np.exp(
        -2j * np.pi * freq_hz / sample_rate_hz * n
    )
    full = np.convolve(mixed, out.taps.astype(np.float64))[: iq.size]
    return full[out.decimation - 1 :: out.decimation].astype(np.complex64)


def block_dc_reference(z: npt.NDArray[np.complex64]) -> npt.NDArray[np.complex64]:
    """Plain-numpy twin of the DC blocker over a whole array (fresh state)."""
    out = z.astype(np.complex128)
    dc = 0j
    for k, lo in enumerate(range(0, z.size, _DC_BLOCK)):
        block = z[lo : lo + _DC_BLOCK].astype(np.complex128)
        out[lo : lo + block.size] = block - dc
        if block.size == _DC_BLOCK:
            dc += (block.mean() - dc) / min(k + 1, _DC_SAMPLES // _DC_BLOCK)
    return out.astype(np.complex64)


class _ChannelState:
    """Streaming state of one channel: NCO position, filter history, phase, DC."""

    def __init__(self, spec: ChannelOutput, sample_rate_hz: float) -> None:
        self.spec = spec
        nco, _ = nco_table(spec.offset_hz, sample_rate_hz)
        # Whole periods, at least 4096 entries: the mixer then runs long segments.
        reps = -(-_NCO_MIN_TABLE // nco.size)
        self.nco_re = np.ascontiguousarray(np.tile(nco.real, reps), dtype=np.float32)
        self.nco_im = np.ascontiguousarray(np.tile(nco.imag, reps), dtype=np.float32)
        self.taps_rev = np.ascontiguousarray(spec.taps[::-1])
        n_hist = spec.taps.size - 1
        self.work_re = np.zeros(n_hist, dtype=np.float32)
        self.work_im = np.zeros(n_hist, dtype=np.float32)
        self.poly = np.zeros((2, spec.decimation + 1, 1), dtype=np.float32)
        self.nco_pos = 0
        self.phase = spec.decimation - 1
        self.dc_state = np.zeros(6, dtype=np.float64)

    def process(self, iq: npt.NDArray[np.complex64]) -> npt.NDArray[np.complex64]:
        decim = self.spec.decimation
        n_hist = self.taps_rev.size - 1
        need = n_hist + max(1, min(iq.size, _CHUNK_SAMPLES))
        if self.work_re.size < need:
            grow_re = np.zeros(need, dtype=np.float32)
            grow_im = np.zeros(need, dtype=np.float32)
            grow_re[:n_hist] = self.work_re[:n_hist]
            grow_im[:n_hist] = self.work_im[:n_hist]
            self.work_re, self.work_im = grow_re, grow_im
            self.poly = np.zeros((2, decim + 1, need // decim + 2), dtype=np.float32)
        out = np.empty(iq.size // decim + 1, dtype=np.complex64)
        # the kernel works in chunks of the work arrays' size: they stay in cache
        n_out, self.nco_pos, self.phase = _channelize_kernel(
            iq,
            self.nco_re,
            self.nco_im,
            self.nco_pos,
            self.taps_rev,
            decim,
            self.work_re[:need],
            self.work_im[:need],
            self.phase,
            self.poly,
            out,
        )
        out = out[:n_out]
        if self.spec.dc_block:
            _dc_block_kernel(out, self.dc_state)
        return out


class Channelizer:
    """Streaming extraction of every planned channel from one input stream.

    Parameters
    ----------
    sample_rate_hz : float
        Input rate, Hz.
    outputs : sequence of ChannelOutput
        From ``plan_channels`` (same sample rate).

    Examples
    --------
    >>> from dsp.channel_plan import plan_channels
    >>> chan = Channelizer(2.4e6, plan_channels(2.4e6, 868.95e6))
    >>> [z.size for z in chan.process(np.zeros(2400, np.complex64))]
    [600, 600, 600]
    """

    def __init__(self, sample_rate_hz: float, outputs: list[ChannelOutput]) -> None:
        self.sample_rate_hz = float(sample_rate_hz)
        self.outputs = list(outputs)
        self._states = [_ChannelState(o, self.sample_rate_hz) for o in self.outputs]

    def process(self, iq: npt.NDArray[np.complex64]) -> list[npt.NDArray[np.complex64]]:
        """Channelize the next block of input samples.

        Parameters
        ----------
        iq : numpy.ndarray of complex64, shape (n,)
            C-contiguous input samples, any n (0 allowed).

        Returns
        -------
        list of numpy.ndarray of complex64
            New output samples of each channel, in the order of ``outputs``.

        Raises
        ------
        ValueError
            If ``iq`` is not a 1-D complex64 array.
        """
        if not isinstance(iq, np.ndarray) or iq.dtype != np.complex64 or iq.ndim != 1:
            raise ValueError(
                "iq must be a 1-D complex64 numpy array; convert with "
                "np.asarray(iq, dtype=np.complex64)"
            )
        iq = np.ascontiguousarray(iq)
        return [state.process(iq) for state in self._states]
